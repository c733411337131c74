//! The audited transaction: every state change commits its business items and its
//! audit entries together, conditioned on exactly what its rules read (the versions of
//! the items it changes, the caller's membership, an epoch where a rule reads a set).
//! The entries wait in the workspace's queue until sealed into the chain (`seal`), so
//! writers of one workspace race only where they touch the same thing. A lost race
//! fails a condition; the service retries from a fresh read.

use std::time::Duration;

use serde_json::{json, Value};
use vigilo_domain::audit::{AuditRow, ChainHead};
use vigilo_domain::time;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::seal::{Queued, Sealer};
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

/// Builds one workspace transaction: business items, their audit entries (queued for
/// sealing, in the same transaction) and the conditions the decision rests on.
pub struct Tx<'a> {
    table: &'a dyn Table,
    /// Seals the queue right after the commit, in this process; `None` where sealing
    /// runs elsewhere (off the table's stream) or is the caller's to run.
    sealer: Option<&'a Sealer>,
    /// The caller's membership as read when their permission was checked: the
    /// transaction only commits if it is unchanged, so a role revoked mid-request
    /// cannot still authorise the write.
    guard: Option<(Key, u64)>,
    workspace_id: String,
    actor: Option<&'a Actor>,
    ops: Vec<WriteOp>,
    derived: Vec<WriteOp>,
    audit: Vec<AuditEntry>,
    /// Epochs the decision read (held, with the stamp it must still have) and epochs
    /// its writes move, so one transaction touches each epoch once however many rules
    /// name it.
    epochs: std::collections::BTreeMap<Key, EpochUse>,
}

/// What one transaction does with an epoch.
#[derive(Default)]
struct EpochUse {
    /// The stamp as read (`Some(None)`: it did not exist), when a rule rests on it.
    held: Option<Option<String>>,
    moved: bool,
    /// What the epoch's item carries beside its stamp, when it keeps a copy of its set
    /// (a change's tasks); written whenever the epoch moves.
    content: Option<Value>,
    /// A copy kept only to read faster (an asset's calendar), rewritten on the
    /// condition that its stamp is as read (`Some(None)`: it did not exist) when the
    /// main transaction has room, else given up (the epoch moves with no copy).
    spare_copy: Option<(Option<String>, Value)>,
}

impl<'a> Tx<'a> {
    /// A transaction of `workspace_id`; its entries wait in the queue until sealed.
    pub fn new(table: &'a dyn Table, workspace_id: &str, actor: Option<&'a Actor>) -> Tx<'a> {
        Tx {
            table,
            sealer: None,
            guard: None,
            workspace_id: workspace_id.to_owned(),
            actor,
            ops: vec![],
            derived: vec![],
            audit: vec![],
            epochs: Default::default(),
        }
    }

    /// A transaction on behalf of a member whose permission was checked from `access`;
    /// it commits only while that membership is unchanged.
    pub fn as_member(table: &'a dyn Table, access: &Access, actor: &'a Actor) -> Tx<'a> {
        let mut tx = Tx::new(table, access.ws(), Some(actor));
        tx.guard = Some((keys::member(access.ws(), access.user()), access.member.version));
        tx
    }

    /// Seals the workspace's queue with `sealer` once committed.
    pub fn sealed_by(mut self, sealer: Option<&'a Sealer>) -> Tx<'a> {
        self.sealer = sealer;
        self
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

    /// Holds an epoch as read (`stamp`, `None` when it did not exist): the commit fails
    /// if another write moved it since. Holding alone is a condition check, so readers
    /// of one set (every schedule reading the freeze windows) never fail each other.
    pub fn hold_epoch(&mut self, key: Key, stamp: Option<String>) {
        self.epochs.entry(key).or_default().held = Some(stamp);
    }

    /// Moves an epoch: every transaction holding it since fails. Held and moved by the
    /// same transaction, it is written on the condition that it is as read.
    pub fn move_epoch(&mut self, key: Key) {
        self.epochs.entry(key).or_default().moved = true;
    }

    /// Moves an epoch whose item keeps a copy of its set, writing the copy as it is
    /// after this transaction. Hold it too, so that two writers of the set cannot both
    /// rewrite the copy from the same read.
    pub fn rewrite_epoch(&mut self, key: Key, content: Value) {
        let epoch = self.epochs.entry(key).or_default();
        epoch.moved = true;
        epoch.content = Some(content);
    }

    /// Moves an epoch whose item keeps a copy of its set only to read faster, writing
    /// the copy as it is after this transaction on the condition that the item is as
    /// read (`stamp`). Where the main transaction has no room left for it, the copy is
    /// given up instead: the epoch moves without it, and readers look the set up.
    pub fn rewrite_spare_copy(&mut self, key: Key, stamp: Option<String>, content: Value) {
        let epoch = self.epochs.entry(key).or_default();
        epoch.moved = true;
        epoch.spare_copy = Some((stamp, content));
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

    /// Commits everything at once, then seals when this transaction has a sealer.
    /// Returns the ids of the audit rows written.
    pub async fn commit(mut self, now: jiff::Timestamp) -> AppResult<Vec<String>> {
        let created_at = time::format(now);
        let actor_id = self.actor.map(|a| a.user_id.as_str().to_owned());
        let tx_id = uuid::Uuid::new_v4().simple().to_string();
        let mut ids = Vec::with_capacity(self.audit.len());
        for (i, e) in std::mem::take(&mut self.audit).into_iter().enumerate() {
            let entry = Queued {
                // Time-ordered (UUIDv7), so the rows' id index grows at its end rather
                // than at a random page per row: fewer pages written per commit.
                id: uuid::Uuid::now_v7().to_string(),
                workspace_id: self.workspace_id.clone(),
                action: e.action,
                target_type: e.target_type.to_owned(),
                target_id: e.target_id,
                actor: actor_id.clone(),
                old_value: e.old_value,
                new_value: e.new_value,
                metadata: e.metadata,
                created_at: created_at.clone(),
                subject: e.subject,
            };
            ids.push(entry.id.clone());
            self.ops.push(WriteOp::Put {
                item: entry.item(&tx_id, i, now.as_second()),
                condition: Some(Condition::NotExists),
            });
        }
        // A held epoch is a guard and rides in the main transaction (a check, or the
        // move itself when this transaction moves it too); one only moved goes first
        // among the derived writes (in the main transaction while there is room),
        // like the entries it stands for.
        let mut moved = Vec::new();
        let as_read = |stamp: Option<String>| match stamp {
            Some(s) => Condition::Equals(vec![("stamp".into(), json!(s))]),
            None => Condition::NotExists,
        };
        let (spare, epochs): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.epochs).into_iter().partition(|(_, e)| e.spare_copy.is_some());
        for (key, epoch) in epochs {
            let condition = epoch.held.map(as_read);
            match (condition, epoch.moved) {
                (Some(c), true) => {
                    self.ops.push(WriteOp::Put { item: epoch_item(key, epoch.content), condition: Some(c) })
                }
                (Some(c), false) => self.ops.push(WriteOp::Check { key, condition: c }),
                (None, _) => moved.push(WriteOp::Put { item: epoch_item(key, epoch.content), condition: None }),
            }
        }
        // Spare copies take what room the main transaction has left (counting the
        // member's check below); the rest are given up, moving their epochs bare.
        let mut room = MAX_TRANSACTION_ITEMS
            .saturating_sub(self.ops.iter().map(|op| 1 + self.table.extra_items(op)).sum::<usize>())
            .saturating_sub(usize::from(self.guard.is_some()));
        for (key, epoch) in spare {
            let Some((stamp, content)) = epoch.spare_copy else { continue };
            let gate_held = epoch.held.is_some();
            // A gate's hold on the same epoch is the stricter read: it conditions.
            let condition = as_read(epoch.held.unwrap_or(stamp));
            if room > 0 {
                room -= 1;
                self.ops.push(WriteOp::Put { item: epoch_item(key, Some(content)), condition: Some(condition) });
            } else if gate_held {
                self.ops.push(WriteOp::Put { item: epoch_item(key, None), condition: Some(condition) });
            } else {
                moved.push(WriteOp::Put { item: epoch_item(key, None), condition: None });
            }
        }
        moved.append(&mut self.derived);
        self.derived = moved;
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
        // The entries ride in the main transaction; a store with one writer seals them
        // in its commit, and then no pass of our own is needed.
        let mut sealed = false;
        if let Some(main) = batches.next().filter(|ops| !ops.is_empty()) {
            if self.sealer.is_some() && !ids.is_empty() {
                sealed = self.table.transact_sealing(main, &self.workspace_id).await?.is_some();
            } else {
                self.table.transact(main).await?;
            }
        }
        for later in batches {
            derived_write(self.table, later).await?;
        }
        if let (Some(sealer), false) = (self.sealer, ids.is_empty() || sealed) {
            // Committed: a sealing pass that fails leaves the entries queued for the
            // next write's pass or the sweep, never lost.
            if let Err(e) = sealer.seal(self.table, &self.workspace_id).await {
                tracing::warn!(error = %e, workspace = %self.workspace_id, "audit entries left for the next sealing pass");
            }
        }
        Ok(ids)
    }
}

/// An epoch's item: a fresh stamp each time it moves, beside the copy it keeps.
fn epoch_item(key: Key, content: Option<Value>) -> Item {
    let mut data = match content {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    data.insert("stamp".into(), json!(uuid::Uuid::new_v4().simple().to_string()));
    Item::new(key, Value::Object(data))
}

/// The stamp of an epoch as read, `None` when it was never moved.
pub fn epoch_stamp(item: Option<&Item>) -> Option<String> {
    item.and_then(|i| i.data.get("stamp")).and_then(Value::as_str).map(str::to_owned)
}

/// The copy of its set an epoch's item keeps under `field` (the freeze calendar's
/// windows, a change's tasks), `None` when the item keeps none: written before the
/// copy was kept, or never moved.
pub fn epoch_copy<T: serde::de::DeserializeOwned>(item: Option<&Item>, field: &str) -> AppResult<Option<T>> {
    match item.and_then(|i| i.data.get(field)) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| AppError::Corrupt(format!("the {field} kept with an epoch: {e}"))),
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

/// The sealed row `seq` of a workspace's chain, as stored.
pub async fn load_row(table: &dyn Table, workspace_id: &str, seq: u64) -> AppResult<Option<AuditRow>> {
    match table.get(&keys::audit_row(workspace_id, seq)).await? {
        None => Ok(None),
        Some(item) => serde_json::from_value(item.data).map(Some).map_err(|e| AppError::Corrupt(e.to_string())),
    }
}

/// The chain head from its item, as read in a snapshot.
pub fn decode_head(item: Option<Item>) -> AppResult<Option<ChainHead>> {
    match item {
        None => Ok(None),
        Some(item) => serde_json::from_value(item.data).map(Some).map_err(|e| AppError::Corrupt(e.to_string())),
    }
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
