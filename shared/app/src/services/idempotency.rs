//! `Idempotency-Key` on creating POSTs: a retry with the same key and body within 24 h
//! returns the first response and creates nothing. The record is written in the same
//! transaction as the thing it creates, so a crash can never leave one without the other.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vigilo_domain::ids::UserId;

use crate::error::{AppError, AppResult};
use crate::keys;
use crate::store::{Condition, Item, Table};
use crate::txn::Tx;

/// How long a key is remembered.
pub const TTL: SignedDuration = SignedDuration::from_hours(24);

/// The key a client sent, and a fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// Checks the header value (1-255 visible ASCII characters) and fingerprints the
    /// request by its target and canonical body.
    pub fn new(key: &str, target: &str, body: &Value) -> AppResult<IdempotencyKey> {
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into()));
        }
        let canon = vigilo_domain::canonical::canonical_json(body);
        let fingerprint = format!("{:x}", Sha256::digest(format!("{target}\n{canon}").as_bytes()));
        Ok(IdempotencyKey { key: key.to_owned(), fingerprint })
    }
}

/// What a creating call produced: something new, or the first response again.
#[derive(Debug, Clone)]
pub enum Created<T> {
    New(T),
    Replay(Value),
}

/// Where a key stands before the write.
#[derive(Debug, Clone)]
pub enum Slot {
    /// No key was sent.
    None,
    /// Never seen (or expired: overwrite the record at this version).
    Free { version: Option<u64> },
    /// Seen with the same request: answer with this.
    Replay(Value),
}

/// How long a claim on a key holds off identical requests: longer than any request
/// runs, short enough that a claimant that died frees its key soon.
const CLAIM_TTL: SignedDuration = SignedDuration::from_secs(30);
/// How long an identical request waits for the one in flight before answering 503.
const WAIT_FOR_CLAIM: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn lookup(
    table: &dyn Table,
    user: &UserId,
    scope: &str,
    key: Option<&IdempotencyKey>,
    now: Timestamp,
) -> AppResult<Slot> {
    let Some(k) = key else { return Ok(Slot::None) };
    let waited = std::time::Instant::now();
    loop {
        let Some(item) = table.get(&keys::idempotency(user, scope, &k.key)).await? else {
            return Ok(Slot::Free { version: None });
        };
        let d = &item.data;
        let version = d.get("version").and_then(Value::as_u64).unwrap_or(0);
        let expires = d.get("expires_at").and_then(Value::as_str).and_then(vigilo_domain::time::parse);
        if expires.is_none_or(|e| e <= now) {
            return Ok(Slot::Free { version: Some(version) });
        }
        if d.get("fingerprint").and_then(Value::as_str) != Some(k.fingerprint.as_str()) {
            return Err(AppError::IdempotencyKeyReused);
        }
        if d.get("state").and_then(Value::as_str) != Some("in_flight") {
            return Ok(Slot::Replay(d.get("response").cloned().unwrap_or(Value::Null)));
        }
        // The same request is being served right now: answer with its response.
        if waited.elapsed() > WAIT_FOR_CLAIM {
            return Err(AppError::Contended);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Claims a free key before the request takes anything it cannot give back (a change
/// number): an identical request racing it waits for its response instead of doing
/// the work twice. Losing the claim is a lost race (the caller retries and waits).
pub async fn claim(
    table: &dyn Table,
    user: &UserId,
    scope: &str,
    key: Option<&IdempotencyKey>,
    slot: Slot,
    now: Timestamp,
) -> AppResult<Slot> {
    let (Some(k), Slot::Free { version }) = (key, &slot) else { return Ok(slot) };
    let expires = now.checked_add(CLAIM_TTL).unwrap_or(now);
    let claimed = version.map_or(1, |v| v + 1);
    let data = json!({
        "fingerprint": k.fingerprint,
        "state": "in_flight",
        "expires_at": vigilo_domain::time::format(expires),
        "version": claimed,
    });
    let condition = match version {
        None => Condition::NotExists,
        Some(v) => Condition::version(*v),
    };
    let item = Item::new(keys::idempotency(user, scope, &k.key), data).expires(expires.as_second());
    table.transact(vec![crate::store::WriteOp::Put { item, condition: Some(condition) }]).await?;
    Ok(Slot::Free { version: Some(claimed) })
}

/// Gives a claimed key back when its request ended without a response to replay, so
/// an identical retry is served afresh at once.
pub async fn release(table: &dyn Table, user: &UserId, scope: &str, key: Option<&IdempotencyKey>, slot: &Slot) {
    let (Some(k), Slot::Free { version: Some(v) }) = (key, slot) else { return };
    let op = crate::store::WriteOp::Delete {
        key: keys::idempotency(user, scope, &k.key),
        condition: Some(Condition::version(*v)),
    };
    if let Err(e) = table.transact(vec![op]).await {
        tracing::debug!(error = %e, "an idempotency claim was not released; it expires by itself");
    }
}

pub fn remember(
    tx: &mut Tx<'_>,
    user: &UserId,
    scope: &str,
    key: Option<&IdempotencyKey>,
    slot: &Slot,
    response: &Value,
    now: Timestamp,
) {
    let (Some(k), Slot::Free { version }) = (key, slot) else {
        return;
    };
    let expires = now.checked_add(TTL).unwrap_or(now);
    let data = json!({
        "fingerprint": k.fingerprint,
        "response": response,
        "expires_at": vigilo_domain::time::format(expires),
        "version": version.map_or(1, |v| v + 1),
    });
    let condition = match version {
        None => Condition::NotExists,
        Some(v) => Condition::version(*v),
    };
    let item = Item::new(keys::idempotency(user, scope, &k.key), data).expires(expires.as_second());
    tx.put(item, Some(condition));
}
