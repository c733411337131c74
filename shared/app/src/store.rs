//! The storage port. It mirrors DynamoDB's item model on purpose (partition and sort
//! keys, global secondary indexes, key-condition queries with cursors, all-or-nothing
//! conditional transactions), so that the same services run on DynamoDB and on SQLite
//! with the same guarantees. Keys are built only in [`crate::keys`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Key {
        Key { pk: pk.into(), sk: sk.into() }
    }
}

/// A global secondary index, by name. Items appear in an index only when they carry
/// a key for it (sparse indexes, as in DynamoDB).
pub type IndexName = &'static str;

/// One stored item: its key, its keys in secondary indexes, and its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub indexes: BTreeMap<String, Key>,
    pub data: Value,
    /// Unix seconds after which the store may drop the item by itself (DynamoDB's
    /// time to live). A hint for housekeeping only: readers still check expiry, and
    /// reads do not return it.
    pub expires: Option<i64>,
}

impl Item {
    pub fn new(key: Key, data: Value) -> Item {
        Item { key, indexes: BTreeMap::new(), data, expires: None }
    }

    pub fn expires(mut self, unix_seconds: i64) -> Item {
        self.expires = Some(unix_seconds);
        self
    }

    pub fn index(mut self, name: &str, key: Key) -> Item {
        self.indexes.insert(name.to_owned(), key);
        self
    }
}

/// A condition on the current state of one item, checked inside the transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No item with this key exists.
    NotExists,
    /// An item with this key exists.
    Exists,
    /// The item exists and each named top-level attribute equals the given value.
    Equals(Vec<(String, Value)>),
}

impl Condition {
    /// The usual optimistic-locking condition on the `version` attribute.
    pub fn version(v: u64) -> Condition {
        Condition::Equals(vec![("version".into(), Value::from(v))])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put { item: Item, condition: Option<Condition> },
    Delete { key: Key, condition: Option<Condition> },
    Check { key: Key, condition: Condition },
}

impl WriteOp {
    pub fn key(&self) -> &Key {
        match self {
            WriteOp::Put { item, .. } => &item.key,
            WriteOp::Delete { key, .. } | WriteOp::Check { key, .. } => key,
        }
    }
}

/// How the sort key (of the table or the index) is constrained in a query.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SortKeyCondition {
    #[default]
    Any,
    BeginsWith(String),
    /// Inclusive on both ends.
    Between(String, String),
}

/// Where a query resumes: the position of the last item already returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The key of the item in the table.
    pub key: Key,
    /// Its sort key within the queried index (equal to `key.sk` for the table).
    pub index_sk: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `None` queries the table itself.
    pub index: Option<String>,
    pub pk: String,
    pub sk: SortKeyCondition,
    /// Ascending sort-key order when true.
    pub forward: bool,
    pub limit: usize,
    pub after: Option<Position>,
}

impl Query {
    pub fn table(pk: impl Into<String>) -> Query {
        Query { index: None, pk: pk.into(), sk: SortKeyCondition::Any, forward: true, limit: 100, after: None }
    }

    pub fn index(name: &str, pk: impl Into<String>) -> Query {
        Query { index: Some(name.to_owned()), ..Query::table(pk) }
    }

    pub fn begins_with(mut self, prefix: impl Into<String>) -> Query {
        self.sk = SortKeyCondition::BeginsWith(prefix.into());
        self
    }

    pub fn between(mut self, lo: impl Into<String>, hi: impl Into<String>) -> Query {
        self.sk = SortKeyCondition::Between(lo.into(), hi.into());
        self
    }

    pub fn backward(mut self) -> Query {
        self.forward = false;
        self
    }

    pub fn limit(mut self, n: usize) -> Query {
        self.limit = n;
        self
    }

    pub fn after(mut self, p: Option<Position>) -> Query {
        self.after = p;
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Set when more items may follow; pass it back as [`Query::after`].
    pub last: Option<Position>,
}

/// An item's key and its data as the JSON text it is kept as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextItem {
    pub key: Key,
    pub text: String,
}

/// A page of [`TextItem`]s, resumed as a [`Page`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPage {
    pub items: Vec<TextItem>,
    pub last: Option<Position>,
}

/// Most items one transaction may touch; DynamoDB's `TransactWriteItems` limit.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Items one consistent read ([`Table::snapshot`]) asks for at most, where a caller
/// reads a set that may be larger: DynamoDB's `TransactGetItems` takes 100 items today,
/// but 25 on its emulator and on DynamoDB before 2022.
pub const SNAPSHOT_CHUNK: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The condition of the operation at `index` did not hold; nothing was written.
    #[error("condition failed on operation {index}")]
    ConditionFailed { index: usize },
    #[error("a transaction touches one item twice or has more than {MAX_TRANSACTION_ITEMS} operations")]
    InvalidTransaction,
    /// The store kept refusing for load (throttling, conflicts) after bounded retries.
    #[error("the store is throttling requests")]
    Throttled,
    #[error("storage failure: {0}")]
    Backend(String),
}

/// The table: one per deployment, shared by every workspace.
#[async_trait]
pub trait Table: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Reads several items as one consistent snapshot (DynamoDB's `TransactGetItems`),
    /// in the order of `keys`. One round trip where a request needs a handful of items.
    /// At most [`MAX_TRANSACTION_ITEMS`] distinct keys.
    async fn snapshot(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError>;

    async fn query(&self, query: &Query) -> Result<Page, StoreError>;

    /// As [`Table::query`], with each item's data as JSON text rather than decoded:
    /// for readers that scan many items and need few of their fields (verification
    /// hashes rows from their text). A store that keeps text hands it over as it lies;
    /// any other writes its items compact, with sorted keys.
    async fn query_text(&self, query: &Query) -> Result<TextPage, StoreError> {
        let page = self.query(query).await?;
        let items = page
            .items
            .into_iter()
            .map(|i| {
                let text = serde_json::to_string(&i.data).map_err(|e| StoreError::Backend(e.to_string()))?;
                Ok(TextItem { key: i.key, text })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(TextPage { items, last: page.last })
    }

    /// Applies every operation or none: each condition is checked against the state
    /// before the transaction, and the first that fails is reported by its index.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// As [`Table::transact`], for a transaction that queues audit entries of
    /// `workspace_id`: a store whose writes all go through one writer seals the
    /// workspace's queue in the same commit ([`crate::seal::seal_in_place`]) and says
    /// what it sealed. `None`: nothing was sealed, and the caller's own pass seals (as
    /// on DynamoDB, where writers race and only a conditioned pass may move the head).
    async fn transact_sealing(
        &self,
        ops: Vec<WriteOp>,
        _workspace_id: &str,
    ) -> Result<Option<crate::seal::Sealed>, StoreError> {
        self.transact(ops).await.map(|()| None)
    }

    /// Adds `by` to the number `field` of the item at `key`, creating the item as
    /// `{field: by}` when it is missing, atomically and outside any transaction, and
    /// returns the new value (DynamoDB's atomic counter). Racing adds never fail and
    /// never get the same value: the way to hand out numbers without every taker
    /// conditioning on (and racing for) the one counter.
    async fn add(&self, key: &Key, field: &str, by: u64) -> Result<u64, StoreError>;

    /// How many items beyond one the store writes for `op` (DynamoDB keeps a large
    /// item's data out of line, in parts). A transaction of `ops` may touch
    /// [`MAX_TRANSACTION_ITEMS`] items in all, parts included; writers that fill a
    /// transaction up to the limit count these in.
    fn extra_items(&self, _op: &WriteOp) -> usize {
        0
    }
}

/// The state as one writer sees it in the middle of its transaction: what sealing in
/// place reads and writes. Writes are applied as they come, without conditions (the
/// writer is alone, so what it read still holds).
pub trait InPlace {
    fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    fn query(&self, query: &Query) -> Result<Page, StoreError>;
    fn write(&mut self, op: &WriteOp) -> Result<(), StoreError>;
    /// As [`Table::extra_items`].
    fn extra_items(&self, _op: &WriteOp) -> usize {
        0
    }
}

/// Checks a condition against the current item, the same way for every adapter.
pub fn condition_holds(condition: &Condition, current: Option<&Value>) -> bool {
    match (condition, current) {
        (Condition::NotExists, cur) => cur.is_none(),
        (Condition::Exists, cur) => cur.is_some(),
        (Condition::Equals(_), None) => false,
        (Condition::Equals(pairs), Some(data)) => pairs.iter().all(|(k, v)| data.get(k) == Some(v)),
    }
}

/// Refuses snapshots DynamoDB would refuse: none, too many, or one key twice.
pub fn check_snapshot_shape(keys: &[Key]) -> Result<(), StoreError> {
    let mut sorted: Vec<&Key> = keys.iter().collect();
    sorted.sort();
    if keys.is_empty() || keys.len() > MAX_TRANSACTION_ITEMS || sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::InvalidTransaction);
    }
    Ok(())
}

/// Refuses transactions DynamoDB would refuse: too many operations, or one item twice.
pub fn check_transaction_shape(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::InvalidTransaction);
    }
    let mut keys: Vec<&Key> = ops.iter().map(WriteOp::key).collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::InvalidTransaction);
    }
    Ok(())
}
