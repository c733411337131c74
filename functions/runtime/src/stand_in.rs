//! A stand-in for the Lambda Runtime API on 127.0.0.1, so a real function bootstrap
//! can be started, handed one event, and timed, with no AWS involved: the bootstrap
//! test of a function and the bootstrap benchmark use it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

/// What the bootstrap did, as seen from the Runtime API.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// When it first asked for an invocation: its init is done.
    pub ready: Option<Instant>,
    /// When it answered the invocation, and with what.
    pub responded: Option<Instant>,
    pub response: Option<String>,
    /// An init or invocation error it reported.
    pub error: Option<String>,
}

struct Shared {
    event: String,
    handed_out: Mutex<bool>,
    observed: Mutex<Observed>,
    changed: Notify,
}

/// A running stand-in that hands out one event.
pub struct RuntimeApi {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start(event: String) -> std::io::Result<RuntimeApi> {
        let shared = Arc::new(Shared {
            event,
            handed_out: Mutex::new(false),
            observed: Mutex::new(Observed::default()),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi { addr, shared, server })
    }

    /// Waits until the bootstrap answered the event or reported an error.
    pub async fn finished(&self) -> Observed {
        loop {
            let notified = self.shared.changed.notified();
            {
                let o = self.shared.observed.lock().unwrap_or_else(|e| e.into_inner());
                if o.responded.is_some() || o.error.is_some() {
                    return o.clone();
                }
            }
            notified.await;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn observe(s: &Shared, f: impl FnOnce(&mut Observed)) {
    f(&mut s.observed.lock().unwrap_or_else(|e| e.into_inner()));
    s.changed.notify_waiters();
}

async fn next(State(s): State<Arc<Shared>>) -> (StatusCode, HeaderMap, String) {
    let first = !std::mem::replace(&mut *s.handed_out.lock().unwrap_or_else(|e| e.into_inner()), true);
    if !first {
        // One event only: the next poll waits until the process is stopped.
        std::future::pending::<()>().await;
    }
    observe(&s, |o| o.ready = Some(Instant::now()));
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    let mut h = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", "stand-in-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:vigilo".into()),
        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into()),
    ];
    for (k, v) in pairs {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    (StatusCode::OK, h, s.event.clone())
}

async fn response(State(s): State<Arc<Shared>>, Path(_id): Path<String>, body: String) -> StatusCode {
    observe(&s, |o| {
        o.responded = Some(Instant::now());
        o.response = Some(body);
    });
    StatusCode::ACCEPTED
}

async fn error(State(s): State<Arc<Shared>>, Path(_id): Path<String>, body: String) -> StatusCode {
    observe(&s, |o| o.error = Some(body));
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<Arc<Shared>>, body: String) -> StatusCode {
    observe(&s, |o| o.error = Some(body));
    StatusCode::ACCEPTED
}

/// The environment Lambda gives a function, pointed at the stand-in.
pub fn lambda_env(api: &RuntimeApi, function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "stand-in".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "stand-in".into()),
        ("AWS_SECRET_ACCESS_KEY", "stand-in".into()),
        ("VIGILO_TABLE", "vigilo-stand-in".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
