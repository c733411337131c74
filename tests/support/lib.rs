//! The one helper every end-to-end test uses: the real router on a fresh table,
//! listening on 127.0.0.1 port 0, stopped when the test's runtime ends.
//!
//! The table is SQLite in a fresh data folder, or, with `VIGILO_TEST_BACKEND=aws`, a
//! fresh DynamoDB table on the emulator: `scripts/test` runs the whole suite both ways.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::Value;
use vigilo_app::notify::Delivery;
use vigilo_app::store::{Item, Key, Page, Query, StoreError, TextPage, WriteOp};
use vigilo_app::{Clock, SystemClock, Table, Vigilo};
use vigilo_http::{AppState, AuthMode};
use vigilo_local::{DataDir, OutboxFolder, SqliteTable};

/// The domain decision-reply addresses use in tests: `r+{token}@reply.example.com`.
pub const REPLY_DOMAIN: &str = "reply.example.com";

/// The Slack signing secret the test server verifies actions with.
pub const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

pub use serde_json::json;

type Meddle = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The table the server uses: the real one, with a hook that lets a test slip a rival
/// write in before the next transaction.
struct Meddler {
    inner: Arc<dyn Table>,
    next: Mutex<Option<Meddle>>,
}

#[async_trait::async_trait]
impl Table for Meddler {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }

    async fn snapshot(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.snapshot(keys).await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }

    async fn query_text(&self, query: &Query) -> Result<TextPage, StoreError> {
        self.inner.query_text(query).await
    }

    async fn add(&self, key: &Key, field: &str, by: u64) -> Result<u64, StoreError> {
        self.inner.add(key, field, by).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let meddle = self.next.lock().unwrap().take();
        if let Some(m) = meddle {
            m().await;
        }
        self.inner.transact(ops).await
    }

    async fn transact_sealing(
        &self,
        ops: Vec<WriteOp>,
        workspace_id: &str,
    ) -> Result<Option<vigilo_app::seal::Sealed>, StoreError> {
        let meddle = self.next.lock().unwrap().take();
        if let Some(m) = meddle {
            m().await;
        }
        self.inner.transact_sealing(ops, workspace_id).await
    }

    fn extra_items(&self, op: &WriteOp) -> usize {
        self.inner.extra_items(op)
    }
}

/// An actor for services called directly by a test.
/// A workspace slug, for calling services directly.
pub fn slug(s: &str) -> vigilo_domain::ids::Slug {
    vigilo_domain::ids::Slug::parse(s).expect("a slug")
}

/// A change number, for calling services directly.
pub fn number(s: &str) -> vigilo_domain::ids::ChangeNumber {
    vigilo_domain::ids::ChangeNumber::parse(s).expect("a change number")
}

pub fn actor(user: &str) -> vigilo_app::Actor {
    vigilo_app::Actor {
        user_id: vigilo_domain::ids::UserId::parse(user).expect("user id"),
        email: Some(format!("{user}@example.com")),
        name: None,
        request: Default::default(),
    }
}

/// Which storage the servers of this test process run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Aws,
}

/// `VIGILO_TEST_BACKEND=aws` selects DynamoDB on the emulator; anything else, SQLite.
pub fn backend() -> Backend {
    match std::env::var("VIGILO_TEST_BACKEND").as_deref() {
        Ok("aws") => Backend::Aws,
        _ => Backend::Local,
    }
}

/// A rival write injected by [`TestServer::before_next_write`]; dropping it asserts
/// that the write ran.
#[must_use = "bind it (`let _rival = ...`) so the test checks that the rival write ran"]
pub struct Rival {
    ran: Arc<AtomicBool>,
}

impl Rival {
    pub fn ran(&self) -> bool {
        self.ran.load(Ordering::SeqCst)
    }
}

impl Drop for Rival {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.ran(), "the injected rival write never ran: the request did not reach its commit");
        }
    }
}

pub struct TestServer {
    /// The server's own services, for tests that drive a channel other than HTTP.
    pub app: Vigilo,
    clock: Arc<dyn Clock>,
    pub base: String,
    table: Arc<dyn Table>,
    meddler: Arc<Meddler>,
    key: Vec<u8>,
    client: reqwest::Client,
    data: DataDir,
    _tmp: tempfile::TempDir,
}

/// A response: status, headers and the parsed JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self.body
    }

    #[track_caller]
    pub fn refused(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "body: {}", self.body);
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::launch(None, Arc::new(SystemClock), |r| r).await
    }

    /// Starts the server in another auth mode, with the router wrapped by `wrap` (to
    /// add a test layer that stands in for the host).
    pub async fn start_mode(mode: AuthMode, wrap: impl FnOnce(axum::Router) -> axum::Router) -> TestServer {
        Self::launch(Some(mode), Arc::new(SystemClock), wrap).await
    }

    /// Starts the server on a clock the test moves.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> TestServer {
        Self::launch(None, clock, |r| r).await
    }

    /// `mode: None` is local HS256 auth with the new data folder's secret.
    async fn launch(
        mode: Option<AuthMode>,
        clock: Arc<dyn Clock>,
        wrap: impl FnOnce(axum::Router) -> axum::Router,
    ) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = DataDir::create(&tmp.path().join("data")).expect("data dir");
        let key = data.token_secret().expect("secret");
        let mode = mode.unwrap_or_else(|| AuthMode::Hs256 { key: key.clone() });
        let table: Arc<dyn Table> = match backend() {
            Backend::Local => Arc::new(SqliteTable::open(&data.table_path()).expect("table")),
            Backend::Aws => Arc::new(vigilo_aws::emulator::fresh_table().await),
        };
        let meddler = Arc::new(Meddler { inner: table.clone(), next: Mutex::new(None) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let outbox = Arc::new(OutboxFolder::new(data.outbox_path()));
        let delivery = Delivery {
            mailer: outbox.clone(),
            chat: outbox,
            from: "Vigilo <vigilo@example.com>".into(),
            base_url: format!("http://{addr}"),
            reply_domain: Some(REPLY_DOMAIN.into()),
            link_secret: Arc::new(data.link_secret().expect("link secret")),
        };
        let sender = Arc::new(vigilo_http::outbound::HttpSender::new().expect("http client"));
        // Checkpoints signed with a key file into the data folder locally; with a KMS key
        // into an Object Lock bucket on the emulator.
        let (signer, archive): (Arc<dyn vigilo_app::signer::Signer>, Arc<dyn vigilo_app::Blobs>) = match backend() {
            Backend::Local => (
                Arc::new(data.audit_signer().expect("signing key")),
                Arc::new(vigilo_local::FolderBlobs::new(data.archive_path())),
            ),
            Backend::Aws => {
                let (signer, archive) = vigilo_aws::emulator::fresh_audit_keeping().await;
                let archive = archive.locked_for(1);
                (Arc::new(signer), Arc::new(archive))
            }
        };
        let app = Vigilo::new(meddler.clone(), clock.clone())
            .with_delivery(delivery)
            .with_webhooks(sender)
            .with_audit_keeping(signer, archive);
        let state = AppState::new(app.clone(), mode).with_slack_secret(Some(SLACK_SECRET.as_bytes().to_vec()));
        let router = wrap(vigilo_http::router(state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
        });
        TestServer {
            app,
            clock,
            base: format!("http://{addr}"),
            table,
            meddler,
            key,
            client: reqwest::Client::new(),
            data,
            _tmp: tmp,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data.root()
    }

    /// The files in the outbox folder (`.eml` and `.json`), oldest first, with their text.
    pub fn outbox(&self) -> Vec<(String, String)> {
        let Ok(dir) = std::fs::read_dir(self.data.outbox_path()) else { return vec![] };
        let mut files: Vec<(String, String)> = dir
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .map(|n| {
                let text = std::fs::read_to_string(self.data.outbox_path().join(&n)).unwrap_or_default();
                (n, text)
            })
            .collect();
        files.sort();
        files
    }

    /// Runs `meddle` on the server's own services just before the next transaction any
    /// request commits: a rival request landing between that request's read and its
    /// write, on demand.
    ///
    /// The rival runs on the server's own clock. The returned [`Rival`] checks, when
    /// dropped, that the rival write really ran: a test whose request never reached
    /// its commit proves nothing about the race.
    pub fn before_next_write<F>(&self, meddle: impl FnOnce(Vigilo) -> F + Send + 'static) -> Rival
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let inner = Vigilo::new(self.table.clone(), self.clock.clone());
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        *self.meddler.next.lock().unwrap() = Some(Box::new(move || {
            Box::pin(async move {
                flag.store(true, Ordering::SeqCst);
                meddle(inner).await;
            })
        }));
        Rival { ran }
    }

    /// Services on the server's table that leave sealing to a sequencer elsewhere, as
    /// the functions on AWS do.
    pub fn app_sealing_elsewhere(&self) -> Vigilo {
        Vigilo::new(self.table.clone(), self.clock.clone()).sealing_elsewhere()
    }

    /// The server's table, for tests that play an attacker with write access to it.
    pub fn table(&self) -> &dyn Table {
        &*self.table
    }

    /// A token whose claims carry `name` (as an identity provider may let users set it).
    pub fn token_with_name(&self, sub: &str, name: &str) -> String {
        let now = jiff::Timestamp::now().as_second() as u64;
        vigilo_http::auth::mint(&self.key, sub, &format!("{sub}@example.com"), Some(name), now).expect("token")
    }

    pub fn token(&self, sub: &str) -> String {
        let now = jiff::Timestamp::now().as_second() as u64;
        vigilo_http::auth::mint(&self.key, sub, &format!("{sub}@example.com"), None, now).expect("token")
    }

    /// Sends a request as `user` (`None`: no token) with optional JSON body and headers.
    pub async fn send(
        &self,
        user: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(u) = user {
            req = req.bearer_auth(self.token(u));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Resp { status, headers, body }
    }

    pub async fn raw(&self, user: Option<&str>, method: Method, path: &str, body: &'static str) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).body(body);
        if let Some(u) = user {
            req = req.bearer_auth(self.token(u));
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        Resp { status, headers, body }
    }

    pub async fn get(&self, user: &str, path: &str) -> Resp {
        self.send(Some(user), Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, user: &str, path: &str, body: Value) -> Resp {
        self.send(Some(user), Method::POST, path, Some(body), &[]).await
    }

    pub async fn put(&self, user: &str, path: &str, body: Value) -> Resp {
        self.send(Some(user), Method::PUT, path, Some(body), &[]).await
    }

    pub async fn patch(&self, user: &str, path: &str, body: Value) -> Resp {
        self.send(Some(user), Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn delete(&self, user: &str, path: &str) -> Resp {
        self.send(Some(user), Method::DELETE, path, None, &[]).await
    }

    /// A workspace owned by `owner`, with each `(user, role)` added as a member.
    pub async fn workspace(&self, owner: &str, slug: &str, members: &[(&str, &str)]) {
        self.post(owner, "/workspaces", json!({"slug": slug, "name": slug})).await.expect(201);
        for (user, role) in members {
            let body = json!({"email": format!("{user}@example.com"), "role": role});
            self.put(owner, &format!("/ws/{slug}/members/{user}"), body).await.expect(200);
        }
    }

    /// Files a change as `user` and returns its number.
    pub async fn change(&self, user: &str, slug: &str, body: Value) -> String {
        let c = self.post(user, &format!("/ws/{slug}/changes"), body).await.expect(201);
        c["number"].as_str().expect("number").to_owned()
    }

    /// Runs an action on a change and returns the response.
    pub async fn act(&self, user: &str, slug: &str, number: &str, action: &str, body: Value) -> Resp {
        self.post(user, &format!("/ws/{slug}/changes/{number}/{action}"), body).await
    }

    /// Verifies the workspace's chain through the API as `admin` and returns the report.
    /// A server with workspace `acme` (alice owner, bob approver, mia member, vic
    /// viewer) and one normal change of mia's, submitted and approved by bob: a chain of
    /// a few rows of every kind. Returns the change's number too.
    pub async fn with_approved_change() -> (TestServer, String) {
        let s = TestServer::start().await;
        s.workspace("alice", "acme", &[("bob", "approver"), ("mia", "member"), ("vic", "viewer")]).await;
        let n = s.change("mia", "acme", normal_change("deploy")).await;
        s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
        s.act("bob", "acme", &n, "approve", json!({"comment": "fine"})).await.expect(200);
        (s, n)
    }

    pub async fn verify(&self, admin: &str, slug: &str) -> Value {
        self.post(admin, &format!("/ws/{slug}/audit/verify"), json!({})).await.expect(200)
    }
}

/// An RFC 3339 time `hours` from now.
pub fn in_hours(hours: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours);
    vigilo_domain::time::format(t)
}

/// A normal, low-risk change planned far enough ahead for any lead time.
pub fn normal_change(title: &str) -> Value {
    json!({
        "title": title,
        "change_type": "normal",
        "planned_start": in_hours(72),
        "planned_end": in_hours(73),
        "affected_assets": ["api-gateway"],
        "rollback_plan": "redeploy the previous build",
    })
}
