//! What every Vigilo Lambda function shares. A function's `main` names its route
//! group and calls [`run`]: JSON logs, settings from the environment, AWS clients built
//! once per container, then `lambda_http::run` over the same axum router that
//! `vigilo serve` uses.

pub mod stand_in;
pub mod stream;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::Router;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use lambda_http::request::RequestContext;
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use vigilo_app::services::sweeps::Sweep;
use vigilo_app::Blobs;
use vigilo_app::{SystemClock, Table, Vigilo};
use vigilo_aws::{Aws, S3Blobs, Settings};
pub use vigilo_http::Group;
use vigilo_http::{AppState, AuthMode, GatewayClaims};

/// A route group's router over its state (one of `vigilo_http::*_router`).
pub type GroupRouter = fn(AppState) -> Router;

/// A group's router behind API Gateway, over the table alone: for tests, which pick
/// the group at run time (a bootstrap names its router directly, see [`run`]).
pub fn router(group: Group, table: Arc<dyn Table>) -> Router {
    router_for(group, Vigilo::new(table, Arc::new(SystemClock)))
}

/// A group's router behind API Gateway, over an application already wired.
pub fn router_for(group: Group, app: Vigilo) -> Router {
    gateway_router(|state| group.router(state), app, &Settings::from_env())
}

/// How a function builds its application: [`plain`] (the table only) or
/// [`application`] (with mail, chat and webhook clients, for functions that move
/// changes and so may notify).
pub type Wiring = fn(&Aws, &Settings) -> Vigilo;

/// A group's router behind API Gateway: callers from its verified claims.
fn gateway_router(group: impl FnOnce(AppState) -> Router, app: Vigilo, settings: &Settings) -> Router {
    let slack = settings.slack_signing_secret.as_ref().map(|s| s.expose().as_bytes().to_vec());
    let state = AppState::new(app, AuthMode::Gateway).with_slack_secret(slack);
    group(state).layer(axum::middleware::map_request(from_gateway))
}

/// Carries what API Gateway vouches for into what the router reads: the JWT
/// authorizer's verified claims (for the `Caller` extractor), the caller's source IP
/// (as the connection's address) and API Gateway's request id (so audit rows and logs
/// name the same request). A request without claims (a route without an authorizer,
/// such as `/health`) gets none and is refused wherever a caller is needed.
async fn from_gateway(mut req: Request) -> Request {
    let (claims, ip, request_id) = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|jwt| jwt.claims.clone()),
            ctx.http.source_ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()),
            ctx.request_id.clone(),
        ),
        _ => (None, None, None),
    };
    req.extensions_mut().remove::<GatewayClaims>();
    if let Some(c) = claims {
        req.extensions_mut().insert(GatewayClaims(c.into_iter().collect()));
    }
    if let Some(ip) = ip {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        req.headers_mut().insert("x-request-id", id);
    }
    req
}

/// JSON logs on stdout, which Lambda ships to the function's log group.
pub fn init_tracing(settings: &Settings) {
    let filter =
        settings.log.as_deref().and_then(|f| EnvFilter::try_new(f).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_ansi(false)
        .without_time() // Lambda stamps every line itself.
        .with_env_filter(filter)
        .try_init();
}

/// The application on DynamoDB alone, for functions that never notify.
pub fn plain(aws: &Aws, settings: &Settings) -> Vigilo {
    Vigilo::new(Arc::new(aws.table(settings)), Arc::new(SystemClock))
}

/// The application on DynamoDB, with notices when the settings configure them.
pub fn application(aws: &Aws, settings: &Settings) -> Vigilo {
    let mut app = Vigilo::new(Arc::new(aws.table(settings)), Arc::new(SystemClock));
    match vigilo_http::outbound::HttpSender::new() {
        Ok(sender) => app = app.with_webhooks(Arc::new(sender)),
        Err(e) => tracing::error!(error = %e, "no webhook deliveries: the HTTP client did not start"),
    }
    match aws.delivery(settings) {
        Some(d) => app.with_delivery(d),
        None => app,
    }
}

/// A request function's application: it writes, queues its audit entries and notices,
/// and answers; the stream function seals the entries and sends the notices.
pub fn off_the_request(app: Vigilo) -> Vigilo {
    app.sealing_elsewhere().delivering_elsewhere()
}

/// Runs the sweep a schedule's event names (`{"sweep": "checkpoint"}`) and returns
/// its report, which Lambda logs as the invocation's result.
pub async fn sweep(app: &Vigilo, event: &Value) -> Result<Value, lambda_http::Error> {
    let name = event.get("sweep").and_then(Value::as_str);
    let Some(sweep) = name.and_then(Sweep::parse) else {
        return Err(format!("unknown sweep {name:?}; expected one of {}", Sweep::names()).into());
    };
    let report = app.run_sweep(sweep).await?;
    tracing::info!(sweep = sweep.name(), %report, "sweep done");
    Ok(report)
}

/// Starts the sweeps function: the same start-up, then a loop over scheduled events.
pub async fn run_sweeps() -> Result<(), lambda_http::Error> {
    let settings = Settings::from_env();
    init_tracing(&settings);
    let aws = Aws::load().await;
    // The one function whose role the signing key's policy lets sign.
    let (signer, archive) = aws.audit_keeping(&settings).await?;
    let app = application(&aws, &settings).with_audit_keeping(signer, archive);
    tracing::info!(function = "sweeps", "ready");
    let handler = service_fn(|event: LambdaEvent<Value>| {
        let app = &app;
        async move { sweep(app, &event.payload).await }
    });
    lambda_runtime::run(handler).await
}

/// Starts the stream function: the table's stream invokes it with new audit-queue
/// entries, and it seals, sends and feeds what they left ([`stream::stream`]). It is
/// the one function that does this work; the request functions answer without it.
pub async fn run_stream() -> Result<(), lambda_http::Error> {
    let settings = Settings::from_env();
    init_tracing(&settings);
    let aws = Aws::load().await;
    let app = application(&aws, &settings);
    tracing::info!(function = "stream", "ready");
    let handler = service_fn(|event: LambdaEvent<Value>| {
        let app = &app;
        async move { stream::stream(app, event.payload).await }
    });
    lambda_runtime::run(handler).await
}

/// Where SES's receipt rule stores each inbound message: `inbound/{messageId}`.
pub const INBOUND_PREFIX: &str = "inbound/";

/// Handles an SES receiving event: each record's message is read from the inbound
/// bucket (the receipt rule's S3 action stored it) and decided with the SPF, DKIM and
/// DMARC verdicts SES reported. Returns what each message did.
pub async fn replies(app: &Vigilo, inbound: &dyn Blobs, event: &Value) -> Result<Value, lambda_http::Error> {
    let records = event.get("Records").and_then(Value::as_array).ok_or("not an SES receiving event: no Records")?;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let ses = &record["ses"];
        let id = ses["mail"]["messageId"].as_str().ok_or("an SES record without mail.messageId")?;
        let verdict = |name: &str| ses["receipt"][name]["status"].as_str().map(str::to_ascii_uppercase);
        let verdicts = vigilo_app::services::replies::Verdicts::from_receiver(
            verdict("spfVerdict"),
            verdict("dkimVerdict"),
            verdict("dmarcVerdict"),
        );
        let Some(raw) = inbound.get(&format!("{INBOUND_PREFIX}{id}")).await? else {
            tracing::error!(message_id = id, "inbound message missing from the bucket");
            out.push(serde_json::json!({"message_id": id, "outcome": "missing"}));
            continue;
        };
        let request = vigilo_app::RequestInfo {
            request_id: Some(id.to_owned()),
            channel: Some("email".into()),
            ..Default::default()
        };
        let outcome = match app.receive_reply(&raw, Some(verdicts), request).await? {
            vigilo_app::services::links::LinkOutcome::Decided { change, decision } => {
                serde_json::json!({"decided": decision, "change": change.number, "status": change.status})
            }
            vigilo_app::services::links::LinkOutcome::Refused(r) => serde_json::json!({"refused": r.as_str()}),
        };
        tracing::info!(message_id = id, %outcome, "reply handled");
        out.push(serde_json::json!({"message_id": id, "outcome": outcome}));
    }
    Ok(Value::Array(out))
}

/// Starts the replies function: SES invokes it for each message to the reply domain.
pub async fn run_replies() -> Result<(), lambda_http::Error> {
    let settings = Settings::from_env();
    init_tracing(&settings);
    let bucket = settings.inbound_bucket.clone().ok_or("VIGILO_INBOUND_BUCKET is not set")?;
    let aws = Aws::load().await;
    let app = off_the_request(application(&aws, &settings));
    let inbound = S3Blobs::new(aws.s3(), bucket);
    tracing::info!(function = "replies", "ready");
    let handler = service_fn(|event: LambdaEvent<Value>| {
        let (app, inbound) = (&app, &inbound);
        async move { replies(app, inbound, &event.payload).await }
    });
    lambda_runtime::run(handler).await
}

/// Starts the function: logs, configuration, adapters (built once per container),
/// then the Lambda runtime loop over its route group. Naming the group and the wiring
/// here, rather than choosing them at run time, keeps every other group's code (and a
/// non-notifying function's mail and HTTP clients) out of the bootstrap.
pub async fn run(function: Group, group: GroupRouter, wiring: Wiring) -> Result<(), lambda_http::Error> {
    let settings = Settings::from_env();
    init_tracing(&settings);
    let aws = Aws::load().await;
    let mut app = off_the_request(wiring(&aws, &settings));
    if function == Group::Audit {
        // Checkpoints, proofs and verification read the archive and the key's public
        // half; the key's policy does not let this function sign.
        let (signer, archive) = aws.audit_keeping(&settings).await?;
        app = app.with_audit_keeping(signer, archive);
    }
    let router = gateway_router(group, app, &settings);
    tracing::info!(function = function.name(), "ready");
    lambda_http::run(router).await
}

pub use vigilo_http as http;
