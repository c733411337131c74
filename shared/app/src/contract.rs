//! The storage contract: behaviour every [`Table`] adapter must show, written once and
//! run against each adapter by [`table_contract_tests!`](crate::table_contract_tests).

use std::sync::Arc;

use serde_json::json;

use crate::keys::{BY_STATUS, BY_USER};
use crate::store::{Condition, Item, Key, Query, StoreError, Table, WriteOp, MAX_TRANSACTION_ITEMS};
use crate::txn::{AuditEntry, Tx};

fn put(item: Item, condition: Option<Condition>) -> WriteOp {
    WriteOp::Put { item, condition }
}

fn item(pk: &str, sk: &str, v: i64) -> Item {
    Item::new(Key::new(pk, sk), json!({"v": v, "version": 1}))
}

pub async fn put_get_round_trip(t: Arc<dyn Table>) {
    let it = item("P", "a", 1).index(BY_USER, Key::new("X#1", "0001"));
    t.transact(vec![put(it.clone(), None)]).await.unwrap();
    assert_eq!(t.get(&Key::new("P", "a")).await.unwrap(), Some(it));
    assert_eq!(t.get(&Key::new("P", "b")).await.unwrap(), None);
    assert_eq!(t.get(&Key::new("Q", "a")).await.unwrap(), None);
}

pub async fn snapshots_read_items_in_key_order(t: Arc<dyn Table>) {
    let a = item("P", "a", 1).index(BY_USER, Key::new("U#1", "x"));
    t.transact(vec![put(a.clone(), None), put(item("Q", "b", 2), None)]).await.unwrap();
    let keys = [Key::new("Q", "b"), Key::new("P", "missing"), Key::new("P", "a")];
    let got = t.snapshot(&keys).await.unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().unwrap().data["v"], 2);
    assert_eq!(got[1], None);
    assert_eq!(got[2], Some(a));
    assert!(matches!(t.snapshot(&[]).await, Err(StoreError::InvalidTransaction)));
    let twice = [Key::new("P", "a"), Key::new("P", "a")];
    assert!(matches!(t.snapshot(&twice).await, Err(StoreError::InvalidTransaction)));
}

pub async fn not_exists_refuses_a_second_put_and_writes_nothing(t: Arc<dyn Table>) {
    t.transact(vec![put(item("P", "a", 1), Some(Condition::NotExists))]).await.unwrap();
    let err = t
        .transact(vec![
            put(item("P", "b", 2), Some(Condition::NotExists)),
            put(item("P", "a", 3), Some(Condition::NotExists)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed { index: 1 }), "{err:?}");
    assert_eq!(t.get(&Key::new("P", "b")).await.unwrap(), None, "a failed transaction writes nothing");
    assert_eq!(t.get(&Key::new("P", "a")).await.unwrap().unwrap().data["v"], 1);
}

pub async fn equals_conditions_guard_versions(t: Arc<dyn Table>) {
    let missing = t.transact(vec![put(item("P", "a", 1), Some(Condition::version(1)))]).await.unwrap_err();
    assert!(matches!(missing, StoreError::ConditionFailed { index: 0 }), "Equals on a missing item fails");
    t.transact(vec![put(item("P", "a", 1), None)]).await.unwrap();
    let stale = t.transact(vec![put(item("P", "a", 2), Some(Condition::version(7)))]).await.unwrap_err();
    assert!(matches!(stale, StoreError::ConditionFailed { index: 0 }));
    let mut next = item("P", "a", 2);
    next.data["version"] = json!(2);
    t.transact(vec![put(next, Some(Condition::version(1)))]).await.unwrap();
    let multi = Condition::Equals(vec![("v".into(), json!(2)), ("version".into(), json!(2))]);
    t.transact(vec![WriteOp::Check { key: Key::new("P", "a"), condition: multi }]).await.unwrap();
    let exists =
        t.transact(vec![WriteOp::Check { key: Key::new("P", "zz"), condition: Condition::Exists }]).await.unwrap_err();
    assert!(matches!(exists, StoreError::ConditionFailed { index: 0 }));
}

pub async fn a_failed_check_rejects_the_whole_transaction(t: Arc<dyn Table>) {
    t.transact(vec![put(item("P", "a", 1), None)]).await.unwrap();
    let err = t
        .transact(vec![
            put(item("P", "b", 1), None),
            WriteOp::Delete { key: Key::new("P", "a"), condition: None },
            WriteOp::Check { key: Key::new("P", "c"), condition: Condition::Exists },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed { index: 2 }));
    assert!(t.get(&Key::new("P", "a")).await.unwrap().is_some());
    assert!(t.get(&Key::new("P", "b")).await.unwrap().is_none());
}

pub async fn delete_removes_the_item_and_its_index_entries(t: Arc<dyn Table>) {
    let it = item("P", "a", 1).index(BY_USER, Key::new("X", "1"));
    t.transact(vec![put(it, None)]).await.unwrap();
    t.transact(vec![WriteOp::Delete { key: Key::new("P", "a"), condition: Some(Condition::Exists) }]).await.unwrap();
    assert_eq!(t.get(&Key::new("P", "a")).await.unwrap(), None);
    assert!(t.query(&Query::index(BY_USER, "X")).await.unwrap().items.is_empty());
}

pub async fn table_queries_honour_key_conditions_order_and_cursors(t: Arc<dyn Table>) {
    let mut ops: Vec<WriteOp> = (0..7).map(|i| put(item("P", &format!("A#{i}"), i), None)).collect();
    ops.push(put(item("P", "B#0", 9), None));
    ops.push(put(item("PX", "A#0", 9), None));
    t.transact(ops).await.unwrap();

    let all = t.query(&Query::table("P").begins_with("A#")).await.unwrap();
    let sks: Vec<&str> = all.items.iter().map(|i| i.key.sk.as_str()).collect();
    assert_eq!(sks, ["A#0", "A#1", "A#2", "A#3", "A#4", "A#5", "A#6"]);
    assert_eq!(all.last, None);

    let between = t.query(&Query::table("P").between("A#2", "A#4")).await.unwrap();
    assert_eq!(between.items.len(), 3);

    let mut q = Query::table("P").begins_with("A#").backward().limit(3);
    let mut seen = Vec::new();
    loop {
        let page = t.query(&q).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|i| i.data["v"].as_i64().unwrap()));
        match page.last {
            Some(p) => q.after = Some(p),
            None => break,
        }
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1, 0]);
}

/// A page as long as its limit allows, whole and in order, however the store reads it
/// (SQLite reads the first items of a long page apart from the rest).
pub async fn long_pages_come_whole_and_in_order(t: Arc<dyn Table>) {
    let tagged = |i: i64| item("L", &format!("{i:03}"), i).index(BY_STATUS, Key::new("S#long", format!("{i:03}")));
    t.transact((0..70).map(|i| put(tagged(i), None)).collect()).await.unwrap();
    let values = |items: &[Item]| items.iter().map(|i| i.data["v"].as_i64().unwrap()).collect::<Vec<_>>();

    let first = t.query(&Query::table("L").limit(60)).await.unwrap();
    assert_eq!(values(&first.items), (0..60).collect::<Vec<_>>());
    let rest = t.query(&Query::table("L").limit(60).after(first.last.clone())).await.unwrap();
    assert!(first.last.is_some(), "more follow a full page");
    assert_eq!(values(&rest.items), (60..70).collect::<Vec<_>>());
    assert_eq!(rest.last, None);

    let back = t.query(&Query::table("L").backward().limit(100)).await.unwrap();
    assert_eq!(values(&back.items), (0..70).rev().collect::<Vec<_>>());
    assert_eq!(back.last, None);
    let exact = t.query(&Query::table("L").limit(70)).await.unwrap();
    assert_eq!(exact.items.len(), 70);
    assert_eq!(exact.last, None, "a page that takes the last item says none follow");

    let mut q = Query::index(BY_STATUS, "S#long").limit(30);
    let mut seen = Vec::new();
    loop {
        let page = t.query(&q).await.unwrap();
        assert!(page.items.len() <= 30);
        seen.extend(values(&page.items));
        match page.last {
            Some(p) => q.after = Some(p),
            None => break,
        }
    }
    assert_eq!(seen, (0..70).collect::<Vec<_>>());
    let text = t.query_text(&Query::table("L").limit(50)).await.unwrap();
    let keys: Vec<String> = text.items.iter().map(|i| i.key.sk.clone()).collect();
    assert_eq!(keys, (0..50).map(|i| format!("{i:03}")).collect::<Vec<_>>());
    assert!(text.last.is_some());
}

/// Text queries page exactly as queries do, each item's text its data (compact JSON
/// with sorted keys, as the verifier's fast path expects of a store).
pub async fn text_queries_page_as_queries_do(t: Arc<dyn Table>) {
    let ops: Vec<WriteOp> = (0..7)
        .map(|i| {
            let data = json!({"v": i, "b": [1, "é\"\\"], "a": {"z": null, "y": true}});
            put(Item::new(Key::new("T", format!("A#{i}")), data), None)
        })
        .collect();
    t.transact(ops).await.unwrap();
    for forward in [true, false] {
        let mut q = Query::table("T").begins_with("A#").limit(3);
        if !forward {
            q = q.backward();
        }
        let (mut tq, mut seen) = (q.clone(), 0);
        loop {
            let (page, text) = (t.query(&q).await.unwrap(), t.query_text(&tq).await.unwrap());
            assert_eq!(page.last, text.last);
            assert_eq!(page.items.len(), text.items.len());
            for (item, t) in page.items.iter().zip(&text.items) {
                assert_eq!(item.key, t.key);
                assert_eq!(t.text, serde_json::to_string(&item.data).unwrap());
                assert!(t.text.starts_with(r#"{"a":{"y":true,"z":null},"b":[1,"é\"\\"],"v":"#), "{}", t.text);
            }
            seen += page.items.len();
            match page.last {
                Some(p) => {
                    q.after = Some(p.clone());
                    tq.after = Some(p);
                }
                None => break,
            }
        }
        assert_eq!(seen, 7);
    }
}

pub async fn indexes_are_sparse_and_follow_rewrites(t: Arc<dyn Table>) {
    let tagged = |sk: &str, status: &str| item("P", sk, 0).index(BY_STATUS, Key::new(format!("S#{status}"), "same"));
    t.transact(vec![
        put(tagged("a", "open"), None),
        put(tagged("b", "open"), None),
        put(tagged("c", "open"), None),
        put(item("P", "d", 0), None),
    ])
    .await
    .unwrap();
    let q = Query::index(BY_STATUS, "S#open").limit(2);
    let first = t.query(&q).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = t.query(&q.clone().after(first.last.clone())).await.unwrap();
    let mut keys: Vec<String> = first.items.iter().chain(rest.items.iter()).map(|i| i.key.sk.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["a", "b", "c"], "equal index sort keys page by primary key without loss");

    t.transact(vec![put(tagged("a", "closed"), None)]).await.unwrap();
    let open = t.query(&Query::index(BY_STATUS, "S#open")).await.unwrap();
    assert_eq!(open.items.len(), 2);
    let closed = t.query(&Query::index(BY_STATUS, "S#closed")).await.unwrap();
    assert_eq!(closed.items[0].key.sk, "a");
    assert_eq!(closed.items[0].indexes[BY_STATUS], Key::new("S#closed", "same"));

    t.transact(vec![put(item("P", "b", 0), None)]).await.unwrap();
    assert_eq!(
        t.query(&Query::index(BY_STATUS, "S#open")).await.unwrap().items.len(),
        1,
        "dropping the index key leaves the index"
    );

    let rewritten = item("P", "c", 7).index(BY_STATUS, Key::new("S#open", "same"));
    t.transact(vec![put(rewritten.clone(), None)]).await.unwrap();
    let open = t.query(&Query::index(BY_STATUS, "S#open")).await.unwrap();
    assert_eq!(open.items.len(), 1, "a rewrite that keeps its index key keeps one entry");
    assert_eq!(open.items[0].data, rewritten.data, "read through the index, the rewrite shows");
    t.transact(vec![WriteOp::Delete { key: rewritten.key.clone(), condition: None }]).await.unwrap();
    assert!(t.query(&Query::index(BY_STATUS, "S#open")).await.unwrap().items.is_empty());
    assert_eq!(t.query(&Query::index(BY_STATUS, "S#closed")).await.unwrap().items.len(), 1);
}

pub async fn malformed_transactions_are_refused(t: Arc<dyn Table>) {
    let twice = t.transact(vec![put(item("P", "a", 1), None), put(item("P", "a", 2), None)]).await.unwrap_err();
    assert!(matches!(twice, StoreError::InvalidTransaction));
    let many: Vec<WriteOp> = (0..=MAX_TRANSACTION_ITEMS).map(|i| put(item("P", &i.to_string(), 0), None)).collect();
    assert!(matches!(t.transact(many).await.unwrap_err(), StoreError::InvalidTransaction));
    assert!(matches!(t.transact(vec![]).await.unwrap_err(), StoreError::InvalidTransaction));
    assert_eq!(t.get(&Key::new("P", "a")).await.unwrap(), None);
}

/// Racing read-modify-write loops on one counter lose no update.
pub async fn racing_writers_lose_no_update(t: Arc<dyn Table>) {
    t.transact(vec![put(Item::new(Key::new("C", "n"), json!({"version": 0})), None)]).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let cur = t.get(&Key::new("C", "n")).await.unwrap().unwrap().data["version"].as_u64().unwrap();
                    let next = Item::new(Key::new("C", "n"), json!({"version": cur + 1}));
                    match t.transact(vec![put(next, Some(Condition::version(cur)))]).await {
                        Ok(()) => break,
                        Err(StoreError::ConditionFailed { .. }) => tokio::task::yield_now().await,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(t.get(&Key::new("C", "n")).await.unwrap().unwrap().data["version"], 80);
}

/// 32 writers append to one workspace's audit chain at once and each then seals: the
/// writes never race each other (they touch nothing in common), the sealers race only
/// on the head, and the chain comes out one gapless line holding every entry once.
pub async fn audit_chain_has_no_fork_under_32_concurrent_writers(t: Arc<dyn Table>) {
    let mut tasks = Vec::new();
    for i in 0..32 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let table: &dyn Table = &*t;
            let mut tx = Tx::new(table, "w", None);
            tx.audit(AuditEntry::new("test.write", "test", format!("writer-{i}")));
            let ids = tx.commit(jiff::Timestamp::now()).await?;
            crate::seal::seal(table, "w").await?;
            Ok::<_, crate::AppError>(ids)
        }));
    }
    for task in tasks {
        let ids = task.await.unwrap().expect("every writer commits and seals without losing a race for good");
        assert_eq!(ids.len(), 1);
    }
    assert_eq!(crate::seal::waiting(&*t, "w", 100).await.unwrap(), 0, "nothing is left unsealed");
    let app = crate::Vigilo::new(t.clone(), Arc::new(crate::SystemClock));
    let report = app.verify_chain("w", |_, _| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.rows_checked, 32);
    let rows = t.query(&Query::table(crate::keys::audit_rows("w"))).await.unwrap().items;
    let seqs: Vec<u64> = rows.iter().map(|r| r.data["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=32).collect::<Vec<u64>>(), "seq is gapless");
    let mut writers: Vec<&str> = rows.iter().map(|r| r.data["target_id"].as_str().unwrap()).collect();
    writers.sort();
    writers.dedup();
    assert_eq!(writers.len(), 32, "every writer's row is in the chain exactly once");
}

/// 32 audited transactions at once, each sealed by its commit where the store can
/// (`Table::transact_sealing`), half of them racing for one key: every one that
/// commits has its row in the chain, a refused one leaves neither row nor entry, and
/// the chain comes out gapless and verified with nothing left waiting.
pub async fn sealing_commits_race_and_fail_alone(t: Arc<dyn Table>) {
    let sealer = Arc::new(crate::seal::Sealer::default());
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (t, sealer) = (t.clone(), sealer.clone());
        tasks.push(tokio::spawn(async move {
            let table: &dyn Table = &*t;
            let mut tx = Tx::new(table, "w", None).sealed_by(Some(&sealer));
            tx.put(Item::new(Key::new("S", format!("own-{i}")), json!({"i": i})), Some(Condition::NotExists));
            if i % 2 == 0 {
                tx.put(Item::new(Key::new("S", "contested"), json!({"winner": i})), Some(Condition::NotExists));
            }
            tx.audit(AuditEntry::new("test.write", "test", format!("writer-{i}")));
            (i, tx.commit(jiff::Timestamp::now()).await)
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        match result {
            Ok(_) => committed.push(format!("writer-{i}")),
            Err(crate::AppError::Contended) => assert!(i % 2 == 0, "writer {i} was refused"),
            Err(e) => panic!("writer {i}: {e}"),
        }
    }
    assert_eq!(committed.len(), 17, "the 16 that race for nothing and one racer commit");
    assert_eq!(crate::seal::waiting(&*t, "w", 100).await.unwrap(), 0, "every committed entry is sealed");
    let rows = t.query(&Query::table(crate::keys::audit_rows("w"))).await.unwrap().items;
    let seqs: Vec<u64> = rows.iter().map(|r| r.data["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=17).collect::<Vec<u64>>(), "seq is gapless");
    let mut in_chain: Vec<String> = rows.iter().map(|r| r.data["target_id"].as_str().unwrap().to_owned()).collect();
    in_chain.sort();
    committed.sort();
    assert_eq!(in_chain, committed, "the chain holds exactly the committed writers");
    let app = crate::Vigilo::new(t.clone(), Arc::new(crate::SystemClock));
    let report = app.verify_chain("w", |_, _| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
}

/// 64 transactions at once, 32 of them racing for one key: each of the 32 others
/// commits, exactly one of the racers does, and a refused one writes none of its items
/// (stores that commit transactions in groups keep each one all or nothing).
pub async fn racing_transactions_fail_alone(t: Arc<dyn Table>) {
    let mut tasks = Vec::new();
    for i in 0..64 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mine = Item::new(Key::new("G", format!("own-{i}")), json!({"i": i}));
            let mut ops = vec![WriteOp::Put { item: mine, condition: Some(Condition::NotExists) }];
            if i % 2 == 0 {
                let contested = Item::new(Key::new("G", "contested"), json!({"winner": i}));
                ops.push(WriteOp::Put { item: contested, condition: Some(Condition::NotExists) });
            }
            (i, t.transact(ops).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        let own = t.get(&Key::new("G", format!("own-{i}"))).await.unwrap();
        match result {
            Ok(()) => {
                assert!(own.is_some());
                if i % 2 == 0 {
                    winners.push(i);
                }
            }
            Err(StoreError::ConditionFailed { index: 1 }) => {
                assert!(i % 2 == 0 && own.is_none(), "writer {i} was refused but wrote its own item");
            }
            Err(e) => panic!("writer {i}: {e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let contested = t.get(&Key::new("G", "contested")).await.unwrap().unwrap();
    assert_eq!(contested.data["winner"], json!(winners[0]));
}

/// A counter: created by the first add, kept with the item's other data, and 32 racing
/// adds get 32 distinct values with none skipped.
pub async fn racing_adds_hand_out_every_number_once(t: Arc<dyn Table>) {
    let key = Key::new("W", "#COUNTER");
    assert_eq!(t.add(&key, "last", 1).await.unwrap(), 1, "the first add creates the counter");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let t = t.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move { t.add(&key, "last", 1).await.unwrap() }));
    }
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.unwrap());
    }
    got.sort();
    assert_eq!(got, (2..=33).collect::<Vec<u64>>());
    assert_eq!(t.get(&key).await.unwrap().unwrap().data, json!({"last": 33}));
    // A counter beside other data, as an item written by a transaction holds it.
    let other = Key::new("W", "#OTHER");
    t.transact(vec![WriteOp::Put { item: Item::new(other.clone(), json!({"last": 7, "name": "n"})), condition: None }])
        .await
        .unwrap();
    assert_eq!(t.add(&other, "last", 3).await.unwrap(), 10);
    assert_eq!(t.get(&other).await.unwrap().unwrap().data, json!({"last": 10, "name": "n"}));
}

/// A sealing commit behind entries already waiting (a pass that failed) seals them
/// first and its own after, more than one round takes, in the order written; behind
/// an entry that cannot be read it still commits, and its entries wait in the queue.
pub async fn sealing_commits_keep_the_queue_order(t: Arc<dyn Table>) {
    let sealer = crate::seal::Sealer::default();
    let mut waiting = Tx::new(&*t, "w", None);
    for j in 0..3 {
        waiting.audit(AuditEntry::new("test.write", "test", format!("old-{j}")));
    }
    waiting.commit(jiff::Timestamp::now()).await.unwrap();
    assert_eq!(crate::seal::waiting(&*t, "w", 100).await.unwrap(), 3);

    let mut tx = Tx::new(&*t, "w", None).sealed_by(Some(&sealer));
    for j in 0..60 {
        tx.audit(AuditEntry::new("test.write", "test", format!("new-{j:02}")));
    }
    tx.commit(jiff::Timestamp::now()).await.unwrap();
    assert_eq!(crate::seal::waiting(&*t, "w", 100).await.unwrap(), 0);
    let rows = t.query(&Query::table(crate::keys::audit_rows("w"))).await.unwrap().items;
    let order: Vec<String> = rows.iter().map(|r| r.data["target_id"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> =
        (0..3).map(|j| format!("old-{j}")).chain((0..60).map(|j| format!("new-{j:02}"))).collect();
    assert_eq!(order, expected);
    let app = crate::Vigilo::new(t.clone(), Arc::new(crate::SystemClock));
    assert!(app.verify_chain("w", |_, _| {}).await.unwrap().ok);

    let corrupt = Item::new(Key::new(crate::keys::audit_queue("w"), "0000-corrupt"), json!({"not": "an entry"}));
    t.transact(vec![put(corrupt, None)]).await.unwrap();
    let mut tx = Tx::new(&*t, "w", None).sealed_by(Some(&sealer));
    tx.audit(AuditEntry::new("test.write", "test", "after-corrupt"));
    tx.put(item("P", "written", 1), None);
    tx.commit(jiff::Timestamp::now()).await.unwrap();
    assert!(t.get(&Key::new("P", "written")).await.unwrap().is_some(), "the write commits");
    assert_eq!(crate::seal::waiting(&*t, "w", 100).await.unwrap(), 2, "its entry waits behind the unreadable one");
    assert_eq!(t.query(&Query::table(crate::keys::audit_rows("w"))).await.unwrap().items.len(), 63);
}

/// Entries over DynamoDB's item size seal like small ones: in the order written, each
/// once, the chain verifying and the queue left empty.
pub async fn sealing_takes_large_entries_in_order(t: Arc<dyn Table>) {
    let big = "€".repeat(150_000);
    for i in 0..3 {
        let mut tx = Tx::new(&*t, "w", None);
        for j in 0..3 {
            let value = if j == 1 { json!({"text": big}) } else { json!({"n": j}) };
            tx.audit(AuditEntry::new("test.write", "test", format!("{i}-{j}")).values(json!(null), value));
        }
        tx.commit(jiff::Timestamp::now()).await.unwrap();
    }
    let sealed = crate::seal::seal(&*t, "w").await.unwrap();
    assert_eq!((sealed.rows, sealed.head_seq), (9, 9));
    assert_eq!(crate::seal::waiting(&*t, "w", 100).await.unwrap(), 0);
    let rows = t.query(&Query::table(crate::keys::audit_rows("w"))).await.unwrap().items;
    let order: Vec<&str> = rows.iter().map(|r| r.data["target_id"].as_str().unwrap()).collect();
    assert_eq!(order, ["0-0", "0-1", "0-2", "1-0", "1-1", "1-2", "2-0", "2-1", "2-2"]);
    assert_eq!(rows[1].data["new_value"]["text"], json!(big));
    let app = crate::Vigilo::new(t.clone(), Arc::new(crate::SystemClock));
    let report = app.verify_chain("w", |_, _| {}).await.unwrap();
    assert!(report.ok && report.rows_checked == 9, "{report:?}");
    assert_eq!(crate::seal::seal(&*t, "w").await.unwrap().rows, 0, "a second pass finds nothing");
}

/// An item far over DynamoDB's 400 KB (and nested deeper than its 32 levels) reads back
/// exactly as written, by key, in snapshots and in queries of the table and of an
/// index; conditions on its version hold; and it shrinks and grows again cleanly.
pub async fn large_items_read_back_exactly_and_keep_their_conditions(t: Arc<dyn Table>) {
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let big = |version: u64, c: &str| {
        let text: String = c.repeat(250_000);
        let data = json!({"version": version, "status": "open", "text": text, "more": [text.clone(), {"n": 1.5}], "deep": deep});
        Item::new(Key::new("P", "big"), data).index(BY_STATUS, Key::new("S#open", "big"))
    };
    let v1 = big(1, "😀");
    let first = put(v1.clone(), Some(Condition::NotExists));
    assert!(t.extra_items(&first) <= 8, "parts are counted, and few");
    t.transact(vec![first, put(item("P", "small", 1), None)]).await.unwrap();
    assert_eq!(t.get(&Key::new("P", "big")).await.unwrap(), Some(v1.clone()));
    let snap = t.snapshot(&[Key::new("P", "small"), Key::new("P", "big")]).await.unwrap();
    assert_eq!(snap[1], Some(v1.clone()));
    let page = t.query(&Query::table("P")).await.unwrap();
    assert_eq!(page.items.iter().find(|i| i.key.sk == "big"), Some(&v1));
    assert_eq!(page.items.len(), 2, "a large item's parts are not items of its partition");
    let by_status = t.query(&Query::index(BY_STATUS, "S#open")).await.unwrap();
    assert_eq!(by_status.items, vec![v1.clone()]);

    let stale = t.transact(vec![put(big(2, "€"), Some(Condition::version(7)))]).await.unwrap_err();
    assert!(matches!(stale, StoreError::ConditionFailed { index: 0 }), "{stale:?}");
    let v2 = big(2, "€");
    t.transact(vec![put(item("P", "other", 1), None), put(v2.clone(), Some(Condition::version(1)))]).await.unwrap();
    assert_eq!(t.get(&Key::new("P", "big")).await.unwrap(), Some(v2));
    let mut small = item("P", "big", 3);
    small.data["version"] = json!(3);
    t.transact(vec![put(small.clone(), Some(Condition::version(2)))]).await.unwrap();
    assert_eq!(t.get(&Key::new("P", "big")).await.unwrap(), Some(small));
    let v4 = big(4, "ä");
    t.transact(vec![put(v4.clone(), Some(Condition::version(3)))]).await.unwrap();
    assert_eq!(t.get(&Key::new("P", "big")).await.unwrap(), Some(v4));
    let failed = t
        .transact(vec![
            put(big(5, "x"), Some(Condition::version(4))),
            put(item("P", "small", 9), Some(Condition::NotExists)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(failed, StoreError::ConditionFailed { index: 1 }), "reported by the caller's index: {failed:?}");
}

/// Expands to one `#[tokio::test]` per contract case, each on a fresh table from
/// `$make` (an expression in an async context giving `(Arc<dyn Table>, guard)`).
/// Attributes given after a `;` (such as `#[ignore = "..."]`) go on every case.
#[macro_export]
macro_rules! table_contract_tests {
    ($make:expr $(; $(#[$attr:meta])*)?) => {
        $crate::table_contract_tests!(@cases [$($(#[$attr])*)?] $make;
            put_get_round_trip,
            snapshots_read_items_in_key_order,
            not_exists_refuses_a_second_put_and_writes_nothing,
            equals_conditions_guard_versions,
            a_failed_check_rejects_the_whole_transaction,
            delete_removes_the_item_and_its_index_entries,
            table_queries_honour_key_conditions_order_and_cursors,
            indexes_are_sparse_and_follow_rewrites,
            malformed_transactions_are_refused,
            racing_writers_lose_no_update,
            audit_chain_has_no_fork_under_32_concurrent_writers,
            large_items_read_back_exactly_and_keep_their_conditions,
            racing_adds_hand_out_every_number_once,
            sealing_takes_large_entries_in_order,
            racing_transactions_fail_alone,
            sealing_commits_race_and_fail_alone,
            text_queries_page_as_queries_do,
            long_pages_come_whole_and_in_order,
            sealing_commits_keep_the_queue_order,
        );
    };
    (@cases $attrs:tt $make:expr; $($case:ident),+ $(,)?) => {
        $( $crate::table_contract_tests!(@case $attrs $make; $case); )+
    };
    (@case [$($attr:tt)*] $make:expr; $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attr)*
        async fn $case() {
            let (table, _guard) = $make;
            $crate::contract::$case(table).await;
        }
    };
}
