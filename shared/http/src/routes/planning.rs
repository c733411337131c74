//! What surrounds one change on its way to production: runbook tasks, comments,
//! conflicts with other changes, similar changes and the risk questionnaire.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use vigilo_app::services::comments::CommentInput;
use vigilo_app::services::conflicts::ProbeParams;
use vigilo_app::services::insight::RiskInput;
use vigilo_app::IdempotencyKey;
use vigilo_domain::task::RawTask;

use super::{all, created, ok, versioned};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{IdempotencyHeader, IfMatch, JsonBody, PageParams, PathParams, QueryParams};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/{slug}/changes/{number}/tasks", get(tasks).post(add_task))
        .route("/ws/{slug}/changes/{number}/tasks/generate", post(generate))
        .route("/ws/{slug}/changes/{number}/tasks/{task_id}/{action}", post(task_action))
        .route("/ws/{slug}/changes/{number}/comments", get(comments).post(add_comment))
        .route("/ws/{slug}/changes/{number}/conflicts", get(conflicts))
        .route("/ws/{slug}/changes/{number}/conflicts/{other}/accept", post(accept))
        .route("/ws/{slug}/conflicts", get(probe))
        .route("/ws/{slug}/changes/{number}/similar", get(similar))
        .route("/ws/{slug}/changes/{number}/risk-assessment", get(risk).put(assess))
}

type Result<T = Response> = std::result::Result<T, ApiError>;

async fn tasks(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
) -> Result {
    Ok(all(s.app.list_tasks(&actor, &slug, &number).await?))
}

async fn add_task(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawTask>,
) -> Result {
    let idem = idempotency(key, &format!("POST /ws/{slug}/changes/{number}/tasks"), &raw)?;
    Ok(created(s.app.add_task(&actor, &slug, &number, input, idem.as_ref()).await?))
}

/// The `Idempotency-Key` of a creating POST, bound to its target and body.
fn idempotency(key: Option<String>, target: &str, raw: &serde_json::Value) -> Result<Option<IdempotencyKey>> {
    Ok(key.map(|k| IdempotencyKey::new(&k, target, raw)).transpose()?)
}

async fn generate(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
    IdempotencyHeader(key): IdempotencyHeader,
) -> Result {
    let idem = idempotency(key, &format!("POST /ws/{slug}/changes/{number}/tasks/generate"), &serde_json::json!({}))?;
    Ok(created(s.app.generate_tasks(&actor, &slug, &number, idem.as_ref()).await?))
}

async fn task_action(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number, task_id, action)): PathParams<(String, String, String, String)>,
    IfMatch(if_match): IfMatch,
) -> Result {
    let t = s.app.act_on_task(&actor, &slug, &number, &task_id, &action, if_match).await?;
    let v = t.version;
    Ok(versioned(t, v))
}

async fn comments(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.list_comments(&actor, &slug, &number, p.limit()?, p.cursor()).await?))
}

async fn add_comment(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<CommentInput>,
) -> Result {
    let idem = idempotency(key, &format!("POST /ws/{slug}/changes/{number}/comments"), &raw)?;
    Ok(created(s.app.add_comment(&actor, &slug, &number, input, idem.as_ref()).await?))
}

async fn conflicts(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
) -> Result {
    Ok(all(s.app.change_conflicts(&actor, &slug, &number).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptInput {
    comment: Option<String>,
}

async fn accept(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number, other)): PathParams<(String, String, String)>,
    JsonBody(input, _): JsonBody<AcceptInput>,
) -> Result {
    Ok(ok(s.app.accept_conflict(&actor, &slug, &number, &other, input.comment).await?))
}

async fn probe(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    QueryParams(p): QueryParams<ProbeParams>,
) -> Result {
    Ok(all(s.app.probe_conflicts(&actor, &slug, &p).await?))
}

async fn similar(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
) -> Result {
    Ok(all(s.app.similar_changes(&actor, &slug, &number).await?))
}

async fn risk(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
) -> Result {
    Ok(ok(s.app.get_risk_assessment(&actor, &slug, &number).await?))
}

async fn assess(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
    JsonBody(input, _): JsonBody<RiskInput>,
) -> Result {
    Ok(ok(s.app.assess_risk(&actor, &slug, &number, input).await?))
}
