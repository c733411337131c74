//! `/ws/{slug}/freeze-windows` and `/ws/{slug}/approval-policies`: the rules admins set
//! for every change of a workspace.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vigilo_app::paging::Paged;
use vigilo_app::services::webhooks::DeliveryAttempt;
use vigilo_app::IdempotencyKey;
use vigilo_domain::freeze::{FreezeWindow, RawFreezeWindow};
use vigilo_domain::policy::{ApprovalPolicy, RawPolicy};
use vigilo_domain::webhook::{RawWebhook, Webhook};

use super::{all, created, ok, versioned};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{
    IdempotencyHeader, IdempotencyParams, IfMatch, IfMatchParams, JsonBody, PageParams, PathParams, QueryParams,
};
use crate::paths::{IdPath, WsPath};
use crate::AppState;

/// The workspace's webhooks, secrets redacted (owner).
#[utoipa::path(get, path = "/ws/{slug}/webhooks", operation_id = "ListWebhooks",
    params(WsPath), responses((status = 200, body = Paged<Webhook>)))]
pub async fn list_webhooks(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    Ok(all(s.app.list_webhooks(&actor, &slug).await?))
}

/// Subscribes a URL to audit actions, signed with HMAC-SHA256 (owner).
#[utoipa::path(post, path = "/ws/{slug}/webhooks", operation_id = "CreateWebhook",
    params(WsPath), request_body = RawWebhook,
    responses(
        (status = 201, body = Webhook, description = "The webhook; its secret is never shown again"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn create_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    JsonBody(input, _): JsonBody<RawWebhook>,
) -> Result {
    Ok(created(vigilo_app::Created::New(s.app.create_webhook(&actor, &slug, input).await?)))
}

/// Ends a subscription (owner).
#[utoipa::path(delete, path = "/ws/{slug}/webhooks/{id}", operation_id = "DeleteWebhook",
    params(IdPath), responses((status = 204, description = "Deleted")))]
pub async fn delete_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
) -> Result {
    s.app.delete_webhook(&actor, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The delivery log of a webhook, newest first (owner).
#[utoipa::path(get, path = "/ws/{slug}/webhooks/{id}/deliveries", operation_id = "WebhookDeliveries",
    params(IdPath, PageParams), responses((status = 200, body = Paged<DeliveryAttempt>)))]
pub async fn webhook_deliveries(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.webhook_deliveries(&actor, &slug, &id, p.limit()?, p.cursor()).await?))
}

type Result<T = Response> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
pub struct WindowParams {
    /// `true` lists only windows not yet over.
    current: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// Freeze windows, soonest first.
#[utoipa::path(get, path = "/ws/{slug}/freeze-windows", operation_id = "ListFreezeWindows",
    params(WsPath, ("current" = Option<bool>, Query, description = "`true` lists only windows not yet over"), PageParams),
    responses((status = 200, body = Paged<FreezeWindow>)))]
pub async fn list_windows(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<WindowParams>,
) -> Result {
    let current = match p.current.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::BadRequest("current must be true or false".into())),
    };
    Ok(ok(s.app.list_freeze_windows(&actor, &slug, current, p.page.limit()?, p.page.cursor()).await?))
}

/// Declares a freeze window (admin+).
#[utoipa::path(post, path = "/ws/{slug}/freeze-windows", operation_id = "CreateFreezeWindow",
    params(WsPath, IdempotencyParams), request_body = RawFreezeWindow,
    responses(
        (status = 201, body = FreezeWindow),
        (status = 422, body = ErrorEnvelope, description = "validation_failed, idempotency_key_reused"),
    ))]
pub async fn create_window(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawFreezeWindow>,
) -> Result {
    let idem = key.map(|k| IdempotencyKey::new(&k, &format!("POST /ws/{slug}/freeze-windows"), &raw)).transpose()?;
    Ok(created(s.app.create_freeze_window(&actor, &slug, input, idem.as_ref()).await?))
}

/// One freeze window.
#[utoipa::path(get, path = "/ws/{slug}/freeze-windows/{id}", operation_id = "GetFreezeWindow",
    params(IdPath), responses((status = 200, body = FreezeWindow)))]
pub async fn show_window(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
) -> Result {
    let w = s.app.get_freeze_window(&actor, &slug, &id).await?;
    let v = w.version;
    Ok(versioned(w, v))
}

/// Lifts a freeze window (admin+).
#[utoipa::path(delete, path = "/ws/{slug}/freeze-windows/{id}", operation_id = "DeleteFreezeWindow",
    params(IdPath), responses((status = 204, description = "Deleted")))]
pub async fn delete_window(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
) -> Result {
    s.app.delete_freeze_window(&actor, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Approval policies, by priority.
#[utoipa::path(get, path = "/ws/{slug}/approval-policies", operation_id = "ListPolicies",
    params(WsPath), responses((status = 200, body = Paged<ApprovalPolicy>)))]
pub async fn list_policies(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    Ok(all(s.app.list_policies(&actor, &slug).await?))
}

/// Adds an approval policy (admin+).
#[utoipa::path(post, path = "/ws/{slug}/approval-policies", operation_id = "CreatePolicy",
    params(WsPath, IdempotencyParams), request_body = RawPolicy,
    responses(
        (status = 201, body = ApprovalPolicy),
        (status = 422, body = ErrorEnvelope, description = "validation_failed, idempotency_key_reused"),
    ))]
pub async fn create_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawPolicy>,
) -> Result {
    let idem = key.map(|k| IdempotencyKey::new(&k, &format!("POST /ws/{slug}/approval-policies"), &raw)).transpose()?;
    Ok(created(s.app.create_policy(&actor, &slug, input, idem.as_ref()).await?))
}

/// One approval policy.
#[utoipa::path(get, path = "/ws/{slug}/approval-policies/{id}", operation_id = "GetPolicy",
    params(IdPath), responses((status = 200, body = ApprovalPolicy)))]
pub async fn show_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
) -> Result {
    let p = s.app.get_policy(&actor, &slug, &id).await?;
    let v = p.version;
    Ok(versioned(p, v))
}

/// Replaces an approval policy (admin+).
#[utoipa::path(put, path = "/ws/{slug}/approval-policies/{id}", operation_id = "PutPolicy",
    params(IdPath, IfMatchParams), request_body = RawPolicy,
    responses(
        (status = 200, body = ApprovalPolicy),
        (status = 412, body = ErrorEnvelope, description = "version_conflict"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn put_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
    IfMatch(if_match): IfMatch,
    JsonBody(input, _): JsonBody<RawPolicy>,
) -> Result {
    let p = s.app.put_policy(&actor, &slug, &id, input, if_match).await?;
    let v = p.version;
    Ok(versioned(p, v))
}

/// Removes an approval policy (admin+).
#[utoipa::path(delete, path = "/ws/{slug}/approval-policies/{id}", operation_id = "DeletePolicy",
    params(IdPath), responses((status = 204, description = "Deleted")))]
pub async fn delete_policy(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
) -> Result {
    s.app.delete_policy(&actor, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
