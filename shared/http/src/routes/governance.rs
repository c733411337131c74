//! `/ws/{slug}/freeze-windows` and `/ws/{slug}/approval-policies`: the rules admins set
//! for every change of a workspace.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use vigilo_app::IdempotencyKey;
use vigilo_domain::freeze::RawFreezeWindow;
use vigilo_domain::policy::RawPolicy;

use super::{all, created, ok, versioned};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{IdempotencyHeader, IfMatch, JsonBody, PageParams, PathParams, QueryParams};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/{slug}/freeze-windows", get(list_windows).post(create_window))
        .route("/ws/{slug}/freeze-windows/{id}", get(show_window).delete(delete_window))
        .route("/ws/{slug}/approval-policies", get(list_policies).post(create_policy))
        .route("/ws/{slug}/approval-policies/{id}", get(show_policy).put(put_policy).delete(delete_policy))
        .route("/ws/{slug}/webhooks", get(list_webhooks).post(create_webhook))
        .route("/ws/{slug}/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/ws/{slug}/webhooks/{id}/deliveries", get(webhook_deliveries))
}

async fn list_webhooks(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
) -> Result {
    Ok(all(s.app.list_webhooks(&actor, &slug).await?))
}

async fn create_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    JsonBody(input, _): JsonBody<vigilo_domain::webhook::RawWebhook>,
) -> Result {
    Ok(created(vigilo_app::Created::New(s.app.create_webhook(&actor, &slug, input).await?)))
}

async fn delete_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result {
    s.app.delete_webhook(&actor, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn webhook_deliveries(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.webhook_deliveries(&actor, &slug, &id, p.limit()?, p.cursor()).await?))
}

type Result<T = Response> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
struct WindowParams {
    /// `true` lists only windows not yet over.
    current: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

async fn list_windows(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    QueryParams(p): QueryParams<WindowParams>,
) -> Result {
    let current = match p.current.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::BadRequest("current must be true or false".into())),
    };
    Ok(ok(s.app.list_freeze_windows(&actor, &slug, current, p.page.limit()?, p.page.cursor()).await?))
}

async fn create_window(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawFreezeWindow>,
) -> Result {
    let idem = key.map(|k| IdempotencyKey::new(&k, &format!("POST /ws/{slug}/freeze-windows"), &raw)).transpose()?;
    Ok(created(s.app.create_freeze_window(&actor, &slug, input, idem.as_ref()).await?))
}

async fn show_window(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result {
    let w = s.app.get_freeze_window(&actor, &slug, &id).await?;
    let v = w.version;
    Ok(versioned(w, v))
}

async fn delete_window(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result {
    s.app.delete_freeze_window(&actor, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_policies(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
) -> Result {
    Ok(all(s.app.list_policies(&actor, &slug).await?))
}

async fn create_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawPolicy>,
) -> Result {
    let idem = key.map(|k| IdempotencyKey::new(&k, &format!("POST /ws/{slug}/approval-policies"), &raw)).transpose()?;
    Ok(created(s.app.create_policy(&actor, &slug, input, idem.as_ref()).await?))
}

async fn show_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result {
    let p = s.app.get_policy(&actor, &slug, &id).await?;
    let v = p.version;
    Ok(versioned(p, v))
}

async fn put_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(input, _): JsonBody<RawPolicy>,
) -> Result {
    let p = s.app.put_policy(&actor, &slug, &id, input, if_match).await?;
    let v = p.version;
    Ok(versioned(p, v))
}

async fn delete_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result {
    s.app.delete_policy(&actor, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
