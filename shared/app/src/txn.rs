//! The audited transaction: every state change commits its business items, its audit
//! rows and the new chain head together, conditioned so that two racing writers can
//! never fork the chain. The loser's condition fails and its service retries from a
//! fresh read.

use std::time::Duration;

use serde_json::{json, Value};
use vigilo_domain::audit::{AuditRow, ChainHead, HashInput};
use vigilo_domain::time;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::services::access::Access;
use crate::store::{Condition, Item, Key, StoreError, Table, WriteOp, MAX_TRANSACTION_ITEMS};

/// One audit row to write, before it is chained.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub action: String,
    pub target_type: &'static str,
    pub target_id: String,
    pub old_value: Value,
    pub new_value: Value,
    pub metadata: Value,
    /// The change a row concerns, so a change's activity is one query.
    pub subject: Option<String>,
}

impl AuditEntry {
    pub fn new(action: impl Into<String>, target_type: &'static str, target_id: impl Into<String>) -> AuditEntry {
        AuditEntry {
            action: action.into(),
            target_type,
            target_id: target_id.into(),
            old_value: Value::Null,
            new_value: Value::Null,
            metadata: json!({}),
            subject: None,
        }
    }

    pub fn values(mut self, old: Value, new: Value) -> AuditEntry {
        self.old_value = old;
        self.new_value = new;
        self
    }

    /// Action-specific metadata (a reason, a comment); request facts are added on commit.
    pub fn meta(mut self, metadata: Value) -> AuditEntry {
        self.metadata = metadata;
        self
    }

    pub fn subject(mut self, change_id: &str) -> AuditEntry {
        self.subject = Some(change_id.to_owned());
        self
    }
}

/// Builds one workspace transaction. Created by [`Tx::begin`], which reads the head.
pub struct Tx<'a> {
    table: &'a dyn Table,
    /// The caller's membership as read when their permission was checked: the
    /// transaction only commits if it is unchanged, so a role revoked mid-request
    /// cannot still authorise the write.
    guard: Option<(Key, u64)>,
    workspace_id: String,
    head: Option<ChainHead>,
    actor: Option<&'a Actor>,
    ops: Vec<WriteOp>,
    derived: Vec<WriteOp>,
    audit: Vec<AuditEntry>,
}

impl<'a> Tx<'a> {
    pub async fn begin(table: &'a dyn Table, workspace_id: &str, actor: Option<&'a Actor>) -> AppResult<Tx<'a>> {
        let head = load_head(table, workspace_id).await?;
        Ok(Tx {
            table,
            guard: None,
            workspace_id: workspace_id.to_owned(),
            head,
            actor,
            ops: vec![],
            derived: vec![],
            audit: vec![],
        })
    }

    /// Begins a transaction on behalf of a member whose permission was checked from
    /// `access`; it commits only while that membership is unchanged.
    pub async fn begin_as(table: &'a dyn Table, access: &Access, actor: &'a Actor) -> AppResult<Tx<'a>> {
        let head = load_head(table, access.ws()).await?;
        Ok(Tx::begin_from(table, access, actor, head))
    }

    /// As [`Tx::begin_as`], with the head already read in the same snapshot as the
    /// access and everything else the decision rests on (see `Vigilo::access_with`).
    /// No separate membership check is needed: changing a membership is an audited
    /// write of the workspace, so it moves the head this commit is conditioned on.
    pub fn begin_from(table: &'a dyn Table, access: &Access, actor: &'a Actor, head: Option<ChainHead>) -> Tx<'a> {
        Tx {
            table,
            guard: None,
            workspace_id: access.ws().to_owned(),
            head,
            actor: Some(actor),
            ops: vec![],
            derived: vec![],
            audit: vec![],
        }
    }

    pub fn put(&mut self, item: Item, condition: Option<Condition>) {
        self.ops.push(WriteOp::Put { item, condition });
    }

    pub fn delete(&mut self, key: Key, condition: Option<Condition>) {
        self.ops.push(WriteOp::Delete { key, condition });
    }

    pub fn check(&mut self, key: Key, condition: Condition) {
        self.ops.push(WriteOp::Check { key, condition });
    }

    /// A write of derived data (an index entry rebuilt from the business item). It
    /// rides in the main transaction when there is room, else right after it.
    pub fn derived(&mut self, op: WriteOp) {
        self.derived.push(op);
    }

    /// Adds an audit row; `metadata` gets the actor's request facts merged in.
    pub fn audit(&mut self, mut entry: AuditEntry) {
        entry.metadata = match self.actor {
            Some(a) => a.metadata(entry.metadata),
            None => entry.metadata,
        };
        self.audit.push(entry);
    }

    /// The time the next rows will carry: never earlier than the chain's last row, so
    /// `created_at` never goes backwards along a chain.
    fn row_time(&self, now: jiff::Timestamp) -> String {
        let now = time::format(now);
        match self.head.as_ref().and_then(|h| h.created_at.clone()) {
            Some(last) if last > now => last,
            _ => now,
        }
    }

    /// Commits everything at once. Returns the audit rows written.
    pub async fn commit(mut self, now: jiff::Timestamp) -> AppResult<Vec<AuditRow>> {
        let created_at = self.row_time(now);
        let (mut seq, mut prev) = match &self.head {
            Some(h) => (h.seq, h.hash.clone()),
            None => (0, vigilo_domain::audit::genesis_hash(&self.workspace_id)),
        };
        let actor_id = self.actor.map(|a| a.user_id.as_str().to_owned());
        let mut rows = Vec::with_capacity(self.audit.len());
        for e in std::mem::take(&mut self.audit) {
            seq += 1;
            let hash = HashInput {
                prev_hash: &prev,
                action: &e.action,
                target_type: e.target_type,
                target_id: &e.target_id,
                actor_id: actor_id.as_deref(),
                old_value: &e.old_value,
                new_value: &e.new_value,
                metadata: &e.metadata,
                created_at: &created_at,
            }
            .hash();
            let row = AuditRow {
                id: uuid::Uuid::new_v4().to_string(),
                seq,
                workspace_id: self.workspace_id.clone(),
                action: e.action,
                target_type: e.target_type.to_owned(),
                target_id: e.target_id,
                actor: actor_id.clone(),
                old_value: e.old_value,
                new_value: e.new_value,
                metadata: e.metadata,
                created_at: created_at.clone(),
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            };
            self.ops.push(WriteOp::Put {
                item: audit_item(&row, e.subject.as_deref()),
                condition: Some(Condition::NotExists),
            });
            rows.push(row);
        }
        if !rows.is_empty() {
            let expected = match &self.head {
                Some(h) => Condition::Equals(vec![("seq".into(), json!(h.seq)), ("hash".into(), json!(h.hash))]),
                None => Condition::NotExists,
            };
            let head = json!({"seq": seq, "hash": prev, "created_at": created_at, "workspace_id": self.workspace_id});
            self.ops.push(WriteOp::Put {
                item: Item::new(keys::chain_head(&self.workspace_id), head),
                condition: Some(expected),
            });
        }
        if let Some((key, version)) = self.guard.take() {
            // An operation on the member itself already carries its own condition.
            if !self.ops.iter().any(|op| op.key() == &key) {
                self.ops.push(WriteOp::Check { key, condition: Condition::version(version) });
            }
        }
        // Derived writes fill what room the store's item limit leaves, parts of large
        // items counted; the rest follow, in order, in transactions of their own.
        let weight = |op: &WriteOp| 1 + self.table.extra_items(op);
        let main_weight: usize = self.ops.iter().map(weight).sum();
        let mut batches = vec![(main_weight, std::mem::take(&mut self.ops))];
        for op in std::mem::take(&mut self.derived) {
            let w = weight(&op);
            if batches.last().is_some_and(|(used, ops)| used + w > MAX_TRANSACTION_ITEMS && !ops.is_empty()) {
                batches.push((0, Vec::new()));
            }
            if let Some((used, ops)) = batches.last_mut() {
                *used += w;
                ops.push(op);
            }
        }
        let mut batches = batches.into_iter().map(|(_, ops)| ops);
        if let Some(main) = batches.next().filter(|ops| !ops.is_empty()) {
            self.table.transact(main).await?;
        }
        for later in batches {
            derived_write(self.table, later).await?;
        }
        Ok(rows)
    }
}

/// Writes derived data after the main transaction: a refusal there is a bug.
async fn derived_write(table: &dyn Table, ops: Vec<WriteOp>) -> AppResult<()> {
    table.transact(ops).await.map_err(|e| match e {
        StoreError::ConditionFailed { .. } => AppError::Corrupt("derived write refused".into()),
        other => AppError::Store(other),
    })
}

/// The chain head of a workspace, `None` before its first row.
pub async fn load_head(table: &dyn Table, workspace_id: &str) -> AppResult<Option<ChainHead>> {
    decode_head(table.get(&keys::chain_head(workspace_id)).await?)
}

/// The chain head from its item, as read in a snapshot.
pub fn decode_head(item: Option<Item>) -> AppResult<Option<ChainHead>> {
    match item {
        None => Ok(None),
        Some(item) => serde_json::from_value(item.data).map(Some).map_err(|e| AppError::Corrupt(e.to_string())),
    }
}

/// The stored form of an audit row, with an entry in each audit index it belongs to.
fn audit_item(row: &AuditRow, subject: Option<&str>) -> Item {
    let w = &row.workspace_id;
    let mut data = serde_json::to_value(row).unwrap_or(Value::Null);
    if let (Some(s), Value::Object(m)) = (subject, &mut data) {
        m.insert("subject".into(), json!(s));
    }
    let mut item = Item::new(keys::audit_row(w, row.seq), data)
        .index(keys::AUDIT_ID, keys::audit_by_id(&row.id))
        .index(keys::AUDIT_TARGET, keys::audit_by_target(w, &row.target_type, &row.target_id, row.seq))
        .index(keys::AUDIT_ACTION, keys::audit_by_action(w, &row.action, row.seq));
    if let Some(actor) = &row.actor {
        item = item.index(keys::AUDIT_ACTOR, keys::audit_by_actor(w, actor, row.seq));
    }
    if let Some(s) = subject {
        item = item.index(keys::AUDIT_SUBJECT, keys::audit_by_subject(w, s, row.seq));
    }
    item
}

/// Retries a transaction that lost a race, with a short jittered back-off.
#[derive(Debug, Default)]
pub struct Retry {
    attempt: u32,
}

/// Enough for hundreds of writers racing on one workspace; each attempt is a fresh read.
const MAX_ATTEMPTS: u32 = 60;

impl Retry {
    /// Whether to try again after `err`; sleeps before saying yes.
    pub async fn again(&mut self, err: &AppError) -> bool {
        if !matches!(err, AppError::Contended) || self.attempt + 1 >= MAX_ATTEMPTS {
            return false;
        }
        self.attempt += 1;
        // A lost race means another writer just committed: retry soon, spread out.
        let cap_ms = 1u64 << self.attempt.min(4);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u64;
        tokio::time::sleep(Duration::from_micros(cap_ms * jitter)).await;
        true
    }
}

/// Runs an async block that reads, decides and commits one transaction, running it
/// again from a fresh read whenever it lost a race (see [`Retry`]). Inside the block,
/// `return` and `?` end the attempt, not the caller.
#[macro_export]
macro_rules! retrying {
    ($body:block) => {{
        let mut retry = $crate::txn::Retry::default();
        loop {
            let attempt = async $body.await;
            match attempt {
                Err(e) if retry.again(&e).await => continue,
                other => break other,
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lost_races_are_retried_a_bounded_number_of_times() {
        let mut retry = Retry::default();
        let mut attempts = 1;
        while retry.again(&AppError::Contended).await {
            attempts += 1;
        }
        assert_eq!(attempts, MAX_ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn only_lost_races_are_retried() {
        let mut retry = Retry::default();
        assert!(!retry.again(&AppError::NotFound).await);
        assert!(!retry.again(&AppError::VersionConflict { expected: 1, current: 2 }).await);
        assert!(retry.again(&AppError::Contended).await);
    }

    #[tokio::test(start_paused = true)]
    async fn the_retrying_block_reruns_until_it_stops_losing() {
        let mut runs = 0;
        let result: AppResult<u32> = crate::retrying!({
            runs += 1;
            if runs < 3 {
                return Err(AppError::Contended);
            }
            Ok(runs)
        });
        assert_eq!(result.unwrap(), 3);
        let mut runs = 0;
        let gave_up: AppResult<()> = crate::retrying!({
            runs += 1;
            Err(AppError::Contended)
        });
        assert!(matches!(gave_up, Err(AppError::Contended)));
        assert_eq!(runs, MAX_ATTEMPTS);
    }
}
