//! The stream function end to end: request functions' writes (sealing and delivery
//! left elsewhere) answered with their audit entries queued and their notices waiting,
//! then the stream event in `events/stream/` through the handler. A pass on a table
//! that refuses writes hands the batch back and loses nothing; the next pass seals,
//! sends and feeds; a redelivered batch does nothing twice. On SQLite, and on DynamoDB
//! (emulated).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use vigilo_app::notify::Delivery;
use vigilo_app::services::members::MemberInput;
use vigilo_app::services::transitions::ActionInput;
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::store::{Item, Key, Page, Query, StoreError, WriteOp};
use vigilo_app::{Actor, RequestInfo, SystemClock, Table, Vigilo};
use vigilo_domain::change::RawChange;
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};

fn actor(id: &str) -> Actor {
    Actor { user_id: UserId::parse(id).unwrap(), email: None, name: None, request: RequestInfo::default() }
}

fn acme() -> Slug {
    Slug::parse("acme").unwrap()
}

/// A table whose writes all fail, as DynamoDB does when throttling outlasts the
/// retries: the stream function's pass on it must fail without losing anything.
struct Refusing(Arc<dyn Table>);

#[async_trait::async_trait]
impl Table for Refusing {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.0.get(key).await
    }
    async fn snapshot(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.0.snapshot(keys).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.0.query(query).await
    }
    async fn transact(&self, _ops: Vec<WriteOp>) -> Result<(), StoreError> {
        Err(StoreError::Throttled)
    }
    async fn add(&self, _key: &Key, _field: &str, _by: u64) -> Result<u64, StoreError> {
        Err(StoreError::Throttled)
    }
}

fn delivery(outbox: &Path) -> Delivery {
    let folder = Arc::new(vigilo_local::OutboxFolder::new(outbox));
    Delivery {
        mailer: folder.clone(),
        chat: folder,
        from: "vigilo@example.com".into(),
        base_url: "https://vigilo.example.com".into(),
        reply_domain: None,
        link_secret: Arc::new(b"a link secret for the stream story".to_vec()),
    }
}

/// The sample event, naming the queue entries now waiting in the workspace (one
/// record each, as the stream delivers them).
async fn event(table: &dyn Table, ws: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/stream/audit-queue.json");
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let queued = table.query(&Query::table(vigilo_app::keys::audit_queue(ws)).limit(100)).await.unwrap().items;
    assert!(!queued.is_empty(), "nothing is queued");
    let records: Vec<Value> = queued
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut r = sample["Records"][0].clone();
            r["dynamodb"]["Keys"] = json!({"pk": {"S": item.key.pk}, "sk": {"S": item.key.sk}});
            r["dynamodb"]["SequenceNumber"] = json!(format!("{}", 4_421_584_500_000_000_000u64 + i as u64));
            r
        })
        .collect();
    json!({"Records": records})
}

fn files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

async fn story(table: Arc<dyn Table>) {
    let tmp = tempfile::tempdir().unwrap();
    let outbox = tmp.path().join("outbox");
    let wire = |t: Arc<dyn Table>| Vigilo::new(t, Arc::new(SystemClock)).with_delivery(delivery(&outbox));
    let requests = vigilo_lambda::off_the_request(wire(table.clone()));
    let (alice, bob) = (actor("alice"), actor("bob"));

    let ws = NewWorkspace { slug: "acme".into(), name: "Acme".into(), locale: None, timezone: None };
    requests.create_workspace(&alice, ws, None).await.unwrap();
    let member = MemberInput { email: "bob@example.com".into(), role: "approver".into(), name: None };
    requests.put_member(&alice, &acme(), "bob", member).await.unwrap();
    let raw = RawChange { title: Some("Rotate cert".into()), ..RawChange::default() };
    requests.create_change(&alice, &acme(), raw, None).await.unwrap();
    let one = ChangeNumber::new(1).unwrap();
    let submitted = requests.act(&alice, &acme(), one, "submit", ActionInput::default(), None).await.unwrap();
    assert_eq!(submitted.status.to_string(), "review");
    let ws = requests.workspace_ids().await.unwrap().pop().unwrap();

    // Answered, but nothing sealed or sent: the stream function's work is waiting.
    let page = requests.list_audit(&alice, &acme(), &Default::default(), 50, None).await.unwrap();
    assert!(page.items.is_empty(), "{:?}", page.items);
    let waiting: Vec<&str> = page.sealing.iter().map(|s| s.action.as_str()).collect();
    assert!(waiting.contains(&"change.submit") && waiting.contains(&"change.create"), "{waiting:?}");
    assert!(files(&outbox).is_empty(), "a request sent mail itself: {:?}", files(&outbox));
    let pending = vigilo_app::services::notices::outbox(&requests, &ws).await.unwrap();
    assert_eq!(pending.len(), 1, "bob's approval request waits in the outbox");

    // A pass that cannot write hands the batch back at the workspace's first record,
    // and everything it was to do is still there.
    let batch = event(&*table, &ws).await;
    let broken = wire(Arc::new(Refusing(table.clone())));
    let answer = vigilo_lambda::stream::stream(&broken, batch.clone()).await.unwrap();
    let first = batch["Records"][0]["dynamodb"]["SequenceNumber"].clone();
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": first}]}));
    let page = requests.list_audit(&alice, &acme(), &Default::default(), 50, None).await.unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.sealing.len(), waiting.len());
    assert!(files(&outbox).is_empty());

    // Lambda hands the batch back: sealed, sent, verified.
    let stream = wire(table.clone());
    let answer = vigilo_lambda::stream::stream(&stream, batch.clone()).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let page = requests.list_audit(&alice, &acme(), &Default::default(), 50, None).await.unwrap();
    assert!(page.sealing.is_empty(), "{:?}", page.sealing);
    assert_eq!(page.items.len(), waiting.len());
    let seqs: Vec<u64> = page.items.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=waiting.len() as u64).rev().collect::<Vec<_>>(), "newest first, gapless");
    let sent = files(&outbox);
    assert_eq!(sent.len(), 2, "bob's email and chat message: {sent:?}");
    let mail = sent.iter().find(|n| n.ends_with(".eml")).unwrap();
    let mail = std::fs::read_to_string(outbox.join(mail)).unwrap();
    assert!(mail.contains("To: bob@example.com"), "{mail}");
    assert!(vigilo_app::services::notices::outbox(&requests, &ws).await.unwrap().is_empty());
    let report = requests.verify_audit(&alice, &acme()).await.unwrap();
    assert!(report.ok && report.rows_checked == waiting.len() as u64, "{report:?}");

    // The same batch again (Lambda delivers at least once): nothing twice.
    let answer = vigilo_lambda::stream::stream(&stream, batch).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(files(&outbox), sent);
    let again = requests.list_audit(&alice, &acme(), &Default::default(), 50, None).await.unwrap();
    assert_eq!(again.items, page.items);

    // A request's approval, then the sweep instead of the stream: the notices sweep
    // follows every workspace up, so a batch Lambda gave up on is made up for.
    requests.act(&bob, &acme(), one, "approve", ActionInput::default(), None).await.unwrap();
    let before = requests.list_audit(&alice, &acme(), &Default::default(), 50, None).await.unwrap();
    assert!(!before.sealing.is_empty());
    let swept = stream.follow_up_all().await.unwrap();
    assert_eq!(swept.sealed, before.sealing.len() as u64);
    assert!(swept.failed_workspaces.is_empty());
    let after = requests.list_audit(&alice, &acme(), &Default::default(), 50, None).await.unwrap();
    assert!(after.sealing.is_empty());
    assert_eq!(after.items[0]["action"], "change.approve");
    assert!(requests.verify_audit(&alice, &acme()).await.unwrap().ok);

    // Anything but a DynamoDB stream event is refused, not followed up.
    assert!(vigilo_lambda::stream::stream(&stream, json!({"sweep": "notices"})).await.is_err());
}

#[tokio::test]
async fn the_stream_function_seals_and_sends_what_requests_left_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    story(Arc::new(vigilo_local::SqliteTable::open(&dir.path().join("t.db")).unwrap())).await;
}

#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn the_stream_function_seals_and_sends_what_requests_left_on_dynamodb() {
    story(Arc::new(vigilo_aws::emulator::fresh_table().await)).await;
}
