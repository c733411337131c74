//! The storage port on DynamoDB: one table, five overloaded global secondary indexes,
//! strongly consistent reads of the table, and conditional `TransactWriteItems`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Get, Put, ReturnConsumedCapacity, ReturnValue, TransactGetItem,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use vigilo_app::store::{
    check_snapshot_shape, check_transaction_shape, Condition, Item, Key, Page, Position, Query, SortKeyCondition,
    StoreError, Table, WriteOp, MAX_TRANSACTION_ITEMS,
};

use crate::attrs::{self, Attrs, DATA, PK, SK};
use crate::large;
use crate::usage::{Side, Usage};

/// Attempts of a transaction that DynamoDB cancelled for a conflict or throttling,
/// not for a condition. Conditions are never retried here: the service re-reads.
const MAX_ATTEMPTS: u32 = 8;
const BACKOFF_BASE_MS: u64 = 10;
const BACKOFF_CAP_MS: u64 = 500;
/// Reads of a large item whose parts a concurrent write replaced before giving up.
const LARGE_READ_ATTEMPTS: usize = 8;

#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    name: String,
    usage: Arc<Usage>,
}

impl DynamoTable {
    pub fn new(client: Client, name: impl Into<String>) -> DynamoTable {
        DynamoTable { client, name: name.into(), usage: Arc::new(Usage::default()) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests and capacity units consumed so far, for benchmarks and logs.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// The transaction items of one operation: itself, then the parts of a large item.
    fn write_items(&self, op: &WriteOp) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let condition = match op {
            WriteOp::Put { condition, .. } | WriteOp::Delete { condition, .. } => condition.as_ref(),
            WriteOp::Check { condition, .. } => Some(condition),
        };
        let expr = condition.map(|c| condition_expr(c, &mut names, &mut values));
        let names = (!names.is_empty()).then_some(names);
        let values = (!values.is_empty()).then_some(values);
        // Put, Delete and ConditionCheck are distinct SDK types with the same setters.
        macro_rules! conditioned {
            ($builder:expr) => {
                $builder
                    .table_name(&self.name)
                    .set_condition_expression(expr)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(backend)?
            };
        }
        let mut parts = Vec::new();
        let built = match op {
            WriteOp::Put { item, .. } => {
                let (main, p) = large::encode(item)?;
                parts = p;
                TransactWriteItem::builder().put(conditioned!(Put::builder().set_item(Some(main))))
            }
            WriteOp::Delete { key, .. } => TransactWriteItem::builder()
                .delete(conditioned!(Delete::builder().set_key(Some(attrs::key_attrs(key))))),
            WriteOp::Check { key, .. } => TransactWriteItem::builder()
                .condition_check(conditioned!(ConditionCheck::builder().set_key(Some(attrs::key_attrs(key))))),
        };
        let mut out = vec![built.build()];
        for part in parts {
            let put = Put::builder().table_name(&self.name).set_item(Some(part)).build().map_err(backend)?;
            out.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(out)
    }

    /// Reads items by key in one consistent snapshot, as stored (parts not followed).
    async fn get_raw(&self, keys: &[Key]) -> Result<Vec<Option<Attrs>>, StoreError> {
        let gets = keys
            .iter()
            .map(|k| {
                let get = Get::builder().table_name(&self.name).set_key(Some(attrs::key_attrs(k))).build();
                get.map(|g| TransactGetItem::builder().get(g).build()).map_err(backend)
            })
            .collect::<Result<Vec<_>, _>>()?;
        with_retries(|| async {
            match self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
            {
                Ok(out) => {
                    self.usage.record(Side::Read, out.consumed_capacity());
                    let responses = out.responses();
                    if responses.len() != keys.len() {
                        let e = StoreError::Backend(format!("{} items for {} keys", responses.len(), keys.len()));
                        return Err(Cancelled::Fatal(e));
                    }
                    Ok(responses.iter().map(|r| r.item().cloned()).collect())
                }
                Err(e) => {
                    self.usage.record(Side::Read, &[]);
                    // A read that collides with a running write transaction is cancelled;
                    // like throttling, that passes.
                    let transient = e.as_service_error().is_some_and(|s| {
                        s.is_transaction_canceled_exception()
                            || s.is_provisioned_throughput_exceeded_exception()
                            || s.is_throttling_exception()
                            || s.is_request_limit_exceeded()
                            || s.is_internal_server_error()
                    });
                    Err(if transient { Cancelled::Retry } else { Cancelled::Fatal(sdk_error(e)) })
                }
            }
        })
        .await
    }

    /// An item from its stored attributes, its data reassembled from its parts when it
    /// is kept out of line. `None` when the parts read belong to a later version: the
    /// caller reads the item again.
    async fn complete(&self, stored: &Attrs) -> Result<Option<Item>, StoreError> {
        let mut item = attrs::decode(stored)?;
        let Some((keys, digest)) = large::pointer(stored)? else { return Ok(Some(item)) };
        let parts = self.get_raw(&keys).await?;
        match large::assemble(&parts, &digest)? {
            Some(data) => {
                item.data = data;
                Ok(Some(item))
            }
            None => Ok(None),
        }
    }

    /// Reads `keys` as one snapshot, large items whole: a snapshot whose large items'
    /// parts moved on under it is read again.
    async fn read_whole(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        for _ in 0..LARGE_READ_ATTEMPTS {
            let raw = self.get_raw(keys).await?;
            let mut out = Vec::with_capacity(raw.len());
            let mut torn = false;
            for a in &raw {
                match a {
                    None => out.push(None),
                    Some(a) => match self.complete(a).await? {
                        Some(item) => out.push(Some(item)),
                        None => {
                            torn = true;
                            break;
                        }
                    },
                }
            }
            if !torn {
                return Ok(out);
            }
        }
        Err(StoreError::Throttled)
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Includes the service's error code and message, which `Display` of an SDK error omits.
fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static, R>(e: SdkError<E, R>) -> StoreError
where
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => StoreError::Backend(format!("{}: {}", s.code().unwrap_or("error"), s.message().unwrap_or(""))),
        None => StoreError::Backend(format!("{e:?}")),
    }
}

/// A DynamoDB condition expression for `c`, naming the data attributes it compares.
fn condition_expr(c: &Condition, names: &mut HashMap<String, String>, values: &mut Attrs) -> String {
    names.insert("#pk".into(), PK.into());
    match c {
        Condition::NotExists => "attribute_not_exists(#pk)".into(),
        Condition::Exists => "attribute_exists(#pk)".into(),
        Condition::Equals(pairs) => {
            names.insert("#d".into(), DATA.into());
            let mut expr = String::from("attribute_exists(#pk)");
            for (i, (name, value)) in pairs.iter().enumerate() {
                names.insert(format!("#c{i}"), name.clone());
                values.insert(format!(":c{i}"), attrs::to_attr(value));
                expr += &format!(" AND #d.#c{i} = :c{i}");
            }
            expr
        }
    }
}

/// What a cancelled transaction means for the caller.
enum Cancelled {
    Condition(usize),
    Retry,
    Fatal(StoreError),
}

fn classify(err: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>) -> Cancelled {
    let Some(service) = err.as_service_error() else {
        // Timeouts and dropped connections: the SDK already retried these.
        return Cancelled::Fatal(sdk_error(err));
    };
    match service {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            if let Some(i) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                return Cancelled::Condition(i);
            }
            let transient = ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];
            if reasons.iter().any(|r| r.code().is_some_and(|c| transient.contains(&c))) {
                return Cancelled::Retry;
            }
            Cancelled::Fatal(StoreError::Backend(format!(
                "transaction cancelled: {:?}",
                reasons.iter().map(|r| r.code().unwrap_or("None")).collect::<Vec<_>>()
            )))
        }
        TransactWriteItemsError::TransactionInProgressException(_)
        | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
        | TransactWriteItemsError::ThrottlingException(_)
        | TransactWriteItemsError::RequestLimitExceeded(_)
        | TransactWriteItemsError::InternalServerError(_) => Cancelled::Retry,
        _ => Cancelled::Fatal(sdk_error(err)),
    }
}

/// Full jitter: a random wait up to an exponentially growing, capped bound.
fn backoff(attempt: u32) -> Duration {
    let bound = (BACKOFF_BASE_MS << attempt.min(10)).min(BACKOFF_CAP_MS);
    let mut b = [0u8; 8];
    let r = getrandom::fill(&mut b).map(|_| u64::from_le_bytes(b)).unwrap_or(bound / 2);
    Duration::from_millis(r % (bound + 1))
}

/// The position a query result resumes after.
fn position(attrs: &Attrs, index_sk_attr: &str) -> Result<Position, StoreError> {
    let item_key = |name: &str| match attrs.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Backend(format!("query result lacks {name}"))),
    };
    Ok(Position { key: Key::new(item_key(PK)?, item_key(SK)?), index_sk: item_key(index_sk_attr)? })
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &vigilo_app::store::Key) -> Result<Option<vigilo_app::store::Item>, StoreError> {
        tracing::trace!(pk = %key.pk, sk = %key.sk, "GetItem");
        for _ in 0..LARGE_READ_ATTEMPTS {
            let out = self
                .client
                .get_item()
                .table_name(&self.name)
                .set_key(Some(attrs::key_attrs(key)))
                .consistent_read(true)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(sdk_error)?;
            self.usage.record(Side::Read, out.consumed_capacity().map(std::slice::from_ref).unwrap_or_default());
            let Some(stored) = out.item() else { return Ok(None) };
            if let Some(item) = self.complete(stored).await? {
                return Ok(Some(item));
            }
        }
        // Rewritten under every read: as with throttling, the caller may try again.
        Err(StoreError::Throttled)
    }

    async fn snapshot(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        check_snapshot_shape(keys)?;
        tracing::trace!(keys = ?keys, "snapshot");
        self.read_whole(keys).await
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        tracing::trace!(pk = %q.pk, sk = ?q.sk, index = ?q.index, "Query");
        let (pk_attr, sk_attr, index) = match &q.index {
            None => (PK.to_owned(), SK.to_owned(), None),
            Some(name) => {
                let slot = attrs::slot_of(name)?;
                let (p, s) = attrs::slot_attrs(slot);
                (p, s, Some(attrs::slot_index(slot)))
            }
        };
        let mut expr = String::from("#p = :p");
        let mut names = HashMap::from([("#p".to_owned(), pk_attr.clone())]);
        let mut values = HashMap::from([(":p".to_owned(), attrs::s(&q.pk))]);
        match &q.sk {
            SortKeyCondition::Any => {}
            SortKeyCondition::BeginsWith(prefix) => {
                expr += " AND begins_with(#s, :a)";
                names.insert("#s".into(), sk_attr.clone());
                values.insert(":a".into(), attrs::s(prefix));
            }
            SortKeyCondition::Between(lo, hi) => {
                expr += " AND #s BETWEEN :a AND :b";
                names.insert("#s".into(), sk_attr.clone());
                values.insert(":a".into(), attrs::s(lo));
                values.insert(":b".into(), attrs::s(hi));
            }
        }
        let start = q.after.as_ref().map(|after| {
            let mut k = attrs::key_attrs(&after.key);
            if index.is_some() {
                k.insert(pk_attr.clone(), attrs::s(&q.pk));
                k.insert(sk_attr.clone(), attrs::s(&after.index_sk));
            }
            k
        });
        let limit = q.limit.clamp(1, 10_000);
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(index.clone())
            .key_condition_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(q.forward)
            // One more than asked tells whether more follow without a second request.
            .limit(limit as i32 + 1)
            .set_exclusive_start_key(start)
            // Global secondary indexes only offer eventually consistent reads.
            .consistent_read(index.is_none())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk_error)?;
        self.usage.record(Side::Read, out.consumed_capacity().map(std::slice::from_ref).unwrap_or_default());
        let raw = out.items();
        let mut items = Vec::with_capacity(raw.len().min(limit));
        for a in raw.iter().take(limit) {
            match self.complete(a).await? {
                Some(item) => items.push(item),
                // Its parts moved on since the query read it: read it again by key (a
                // consistent read; an item deleted meanwhile is left out).
                None => items.extend(self.get(&attrs::decode(a)?.key).await?),
            }
        }
        // More may follow when the extra item came back, or when DynamoDB stopped early
        // (its 1 MB page limit); the page then resumes after its last returned item.
        let more = raw.len() > limit || out.last_evaluated_key().is_some();
        let last_returned = items.len().checked_sub(1).and_then(|i| raw.get(i));
        let last = match (more, last_returned.or(out.last_evaluated_key())) {
            (true, Some(at)) => Some(position(at, &sk_attr)?),
            _ => None,
        };
        Ok(Page { items, last })
    }

    async fn add(&self, key: &Key, field: &str, by: u64) -> Result<u64, StoreError> {
        let names = HashMap::from([
            ("#pk".to_owned(), PK.to_owned()),
            ("#d".to_owned(), DATA.to_owned()),
            ("#f".to_owned(), field.to_owned()),
        ]);
        for _ in 0..LARGE_READ_ATTEMPTS {
            // The item exists (the usual case): one update adds in place.
            let update = self
                .client
                .update_item()
                .table_name(&self.name)
                .set_key(Some(attrs::key_attrs(key)))
                .update_expression("SET #d.#f = if_not_exists(#d.#f, :zero) + :by")
                .condition_expression("attribute_exists(#pk)")
                .set_expression_attribute_names(Some(names.clone()))
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
                .return_values(ReturnValue::UpdatedNew)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match update {
                Ok(out) => {
                    self.usage
                        .record(Side::Write, out.consumed_capacity().map(std::slice::from_ref).unwrap_or_default());
                    let value = out
                        .attributes()
                        .and_then(|a| a.get(DATA))
                        .and_then(|d| d.as_m().ok())
                        .and_then(|m| m.get(field))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok());
                    return value
                        .ok_or_else(|| StoreError::Backend(format!("counter {field} came back without a value")));
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    self.usage.record(Side::Write, &[]);
                }
                Err(e) => {
                    self.usage.record(Side::Write, &[]);
                    return Err(sdk_error(e));
                }
            }
            // The first add creates it; a racing first add makes ours update instead.
            let mut item = attrs::key_attrs(key);
            item.insert(
                DATA.to_owned(),
                AttributeValue::M(HashMap::from([(field.to_owned(), AttributeValue::N(by.to_string()))])),
            );
            let put = self
                .client
                .put_item()
                .table_name(&self.name)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match put {
                Ok(out) => {
                    self.usage
                        .record(Side::Write, out.consumed_capacity().map(std::slice::from_ref).unwrap_or_default());
                    return Ok(by);
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    self.usage.record(Side::Write, &[]);
                }
                Err(e) => {
                    self.usage.record(Side::Write, &[]);
                    return Err(sdk_error(e));
                }
            }
        }
        Err(StoreError::Throttled)
    }

    fn extra_items(&self, op: &WriteOp) -> usize {
        match op {
            WriteOp::Put { item, .. } => large::extra_items(&item.data),
            _ => 0,
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction_shape(&ops)?;
        tracing::trace!(ops = ops.len(), first = ?ops.first().map(WriteOp::key), "TransactWriteItems");
        // Each operation's items, parts included, and which operation each came from
        // (a failed condition is reported by the caller's index).
        let mut items = Vec::with_capacity(ops.len());
        let mut origin = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            for item in self.write_items(op)? {
                items.push(item);
                origin.push(i);
            }
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::InvalidTransaction);
        }
        let estimate: f64 = items
            .iter()
            .map(|i| match (i.put(), i.delete(), i.condition_check()) {
                (Some(p), _, _) => attrs::transactional_write_units(p.item()),
                _ => 2.0,
            })
            .sum();
        let result = with_retries(|| async {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
            {
                Ok(out) => {
                    if out.consumed_capacity().is_empty() {
                        self.usage.record_estimate(estimate);
                    } else {
                        self.usage.record(Side::Write, out.consumed_capacity());
                    }
                    Ok(())
                }
                Err(e) => {
                    self.usage.record(Side::Write, &[]);
                    Err(classify(e))
                }
            }
        })
        .await;
        match result {
            Err(StoreError::ConditionFailed { index }) => {
                Err(StoreError::ConditionFailed { index: origin.get(index).copied().unwrap_or(index) })
            }
            other => other,
        }
    }
}

/// Runs `attempt` until it succeeds or fails for good, backing off (with jitter)
/// between attempts that hit a conflict or throttling, at most [`MAX_ATTEMPTS`] times.
async fn with_retries<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Cancelled>>,
{
    let mut n = 0;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Cancelled::Condition(index)) => return Err(StoreError::ConditionFailed { index }),
            Err(Cancelled::Fatal(e)) => return Err(e),
            Err(Cancelled::Retry) if n + 1 >= MAX_ATTEMPTS => return Err(StoreError::Throttled),
            Err(Cancelled::Retry) => {
                tracing::debug!(attempt = n, "conflict or throttling; backing off");
                tokio::time::sleep(backoff(n)).await;
                n += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn conflicts_are_retried_a_bounded_number_of_times_and_conditions_never() {
        let calls = std::cell::Cell::new(0);
        let flaky = with_retries(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(Cancelled::Retry)
                } else {
                    Ok(n)
                }
            }
        });
        assert_eq!(flaky.await.unwrap(), 3);

        calls.set(0);
        let stuck = with_retries(|| {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(Cancelled::Retry) }
        });
        assert!(matches!(stuck.await, Err(StoreError::Throttled)));
        assert_eq!(calls.get(), MAX_ATTEMPTS);

        calls.set(0);
        let refused = with_retries(|| {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(Cancelled::Condition(2)) }
        });
        assert!(matches!(refused.await, Err(StoreError::ConditionFailed { index: 2 })));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        for attempt in 0..20 {
            assert!(backoff(attempt) <= Duration::from_millis(BACKOFF_CAP_MS));
        }
        assert!(backoff(0) <= Duration::from_millis(BACKOFF_BASE_MS));
    }

    #[test]
    fn conditions_name_data_attributes() {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let c = Condition::Equals(vec![("seq".into(), serde_json::json!(3)), ("hash".into(), serde_json::json!("h"))]);
        let expr = condition_expr(&c, &mut names, &mut values);
        assert_eq!(expr, "attribute_exists(#pk) AND #d.#c0 = :c0 AND #d.#c1 = :c1");
        assert_eq!(names["#c1"], "hash");
        assert_eq!(values[":c0"], AttributeValue::N("3".into()));
    }
}
