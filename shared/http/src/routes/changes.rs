//! `/ws/{slug}/changes`: changes and their activity ([`routes`]), their lifecycle
//! actions ([`transition_routes`]), and approvals ([`approval_routes`]). The three
//! groups are served by separate functions on AWS.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use vigilo_app::services::changes::ChangeFilter;
use vigilo_app::services::transitions::ActionInput;
use vigilo_app::IdempotencyKey;
use vigilo_domain::change::RawChange;

use super::{all, created, ok, versioned};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{IdempotencyHeader, IfMatch, JsonBody, PageParams, PathParams, QueryParams};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/{slug}/changes", get(list).post(create))
        .route("/ws/{slug}/changes/{number}", get(show).patch(update))
        .route("/ws/{slug}/changes/{number}/activity", get(activity))
}

/// Every lifecycle action; `approve` and `reject` are matched first by
/// [`approval_routes`] where both groups are merged.
pub fn transition_routes() -> Router<AppState> {
    Router::new().route("/ws/{slug}/changes/{number}/{action}", post(act))
}

/// Decisions, a change's steps, and the caller's approval queue.
pub fn approval_routes() -> Router<AppState> {
    Router::new()
        .route("/ws/{slug}/changes/{number}/approve", post(decide))
        .route("/ws/{slug}/changes/{number}/reject", post(decide))
        .route("/ws/{slug}/changes/{number}/approvals", get(change_approvals))
        .route("/ws/{slug}/approvals", get(my_approvals))
}

type Result<T = Response> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
struct ListParams {
    #[serde(flatten)]
    filter: ChangeFilter,
    #[serde(flatten)]
    page: PageParams,
}

async fn list(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    QueryParams(p): QueryParams<ListParams>,
) -> Result {
    let page = s.app.list_changes(&actor, &slug, &p.filter, p.page.limit()?, p.page.cursor()).await?;
    Ok(ok(page))
}

async fn create(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawChange>,
) -> Result {
    let target = format!("POST /ws/{slug}/changes");
    let idem = key.map(|k| IdempotencyKey::new(&k, &target, &raw)).transpose()?;
    Ok(created(s.app.create_change(&actor, &slug, input, idem.as_ref()).await?))
}

async fn show(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
) -> Result {
    let c = s.app.get_change(&actor, &slug, &number).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

async fn update(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(patch, _): JsonBody<RawChange>,
) -> Result {
    let c = s.app.patch_change(&actor, &slug, &number, patch, if_match).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

async fn act(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number, action)): PathParams<(String, String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(input, _): JsonBody<ActionInput>,
) -> Result {
    let c = s.app.act(&actor, &slug, &number, &action, input, if_match).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

/// `approve` or `reject`: the action is the last path segment.
async fn decide(
    State(s): State<AppState>,
    Caller(actor): Caller,
    uri: axum::http::Uri,
    PathParams((slug, number)): PathParams<(String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(input, _): JsonBody<ActionInput>,
) -> Result {
    let action = uri.path().rsplit('/').next().unwrap_or_default();
    let c = s.app.act(&actor, &slug, &number, action, input, if_match).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

async fn change_approvals(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
) -> Result {
    Ok(all(s.app.change_approvals(&actor, &slug, &number).await?))
}

async fn activity(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, number)): PathParams<(String, String)>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.change_activity(&actor, &slug, &number, p.limit()?, p.cursor()).await?))
}

async fn my_approvals(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.my_approvals(&actor, &slug, p.limit()?, p.cursor()).await?))
}
