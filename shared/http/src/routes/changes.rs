//! `/ws/{slug}/changes`: changes and their activity, their lifecycle actions, and
//! approvals. The three are served by separate functions on AWS (see `crate::api`).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use vigilo_app::paging::Paged;
use vigilo_app::services::approvals::QueueEntry;
use vigilo_app::services::changes::ChangeFilter;
use vigilo_app::services::transitions::ActionInput;
use vigilo_app::IdempotencyKey;
use vigilo_domain::approval::ApprovalStep;
use vigilo_domain::audit::AuditRow;
use vigilo_domain::change::{ChangeRequest, RawChange};

use super::{all, created, ok, versioned};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{
    IdempotencyHeader, IdempotencyParams, IfMatch, IfMatchParams, JsonBody, PageParams, PathParams, QueryParams,
};
use crate::paths::{ActionPath, ChangePath, WsPath};
use crate::AppState;

type Result<T = Response> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
pub struct ListParams {
    #[serde(flatten)]
    filter: ChangeFilter,
    #[serde(flatten)]
    page: PageParams,
}

/// The workspace's changes, newest first, filtered.
#[utoipa::path(get, path = "/ws/{slug}/changes", operation_id = "ListChanges",
    params(WsPath, ChangeFilter, PageParams),
    responses((status = 200, body = Paged<ChangeRequest>)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<ListParams>,
) -> Result {
    let page = s.app.list_changes(&actor, &slug, &p.filter, p.page.limit()?, p.page.cursor()).await?;
    Ok(ok(page))
}

/// Files a change in `draft`; the caller is its author.
#[utoipa::path(post, path = "/ws/{slug}/changes", operation_id = "CreateChange",
    params(WsPath, IdempotencyParams), request_body = RawChange,
    responses(
        (status = 201, body = ChangeRequest),
        (status = 422, body = ErrorEnvelope,
            description = "validation_failed (details.fields), idempotency_key_reused"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawChange>,
) -> Result {
    let target = format!("POST /ws/{slug}/changes");
    let idem = key.map(|k| IdempotencyKey::new(&k, &target, &raw)).transpose()?;
    Ok(created(s.app.create_change(&actor, &slug, input, idem.as_ref()).await?))
}

/// One change, with the conflicts of its window.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}", operation_id = "GetChange",
    params(ChangePath), responses((status = 200, body = ChangeRequest)))]
pub async fn show(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
) -> Result {
    let c = s.app.get_change(&actor, &slug, number).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

/// Edits a draft.
#[utoipa::path(patch, path = "/ws/{slug}/changes/{number}", operation_id = "UpdateChange",
    params(ChangePath, IfMatchParams), request_body = RawChange,
    responses(
        (status = 200, body = ChangeRequest),
        (status = 409, body = ErrorEnvelope, description = "not_editable: the change is no longer a draft"),
        (status = 412, body = ErrorEnvelope, description = "version_conflict"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn update(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    IfMatch(if_match): IfMatch,
    JsonBody(patch, _): JsonBody<RawChange>,
) -> Result {
    let c = s.app.patch_change(&actor, &slug, number, patch, if_match).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

/// Moves a change through its lifecycle (see the contract's action table).
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/{action}", operation_id = "Act",
    params(ActionPath, IfMatchParams), request_body(content = ActionInput, description = "Optional unless the action needs a reason, comment or closure"),
    responses(
        (status = 200, body = ChangeRequest),
        (status = 403, body = ErrorEnvelope, description = "forbidden, not_an_approver, self_approval_forbidden"),
        (status = 409, body = ErrorEnvelope, description = "invalid_transition (details.status, details.allowed), lead_time_violation, \
            freeze_window_blocked, no_eligible_approvers, conflict_detected, dependencies_unmet, tasks_pending, already_decided"),
        (status = 412, body = ErrorEnvelope, description = "version_conflict"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed, closure_required, reason_required, rollback_reason_required"),
    ))]
pub async fn act(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ActionPath { slug, number, action }): PathParams<ActionPath>,
    IfMatch(if_match): IfMatch,
    JsonBody(input, _): JsonBody<ActionInput>,
) -> Result {
    let c = s.app.act(&actor, &slug, number, &action, input, if_match).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

/// Approves the caller's pending step of the current round.
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/approve", operation_id = "Approve",
    params(ChangePath, IfMatchParams), request_body(content = ActionInput, description = "`{comment?}`"),
    responses(
        (status = 200, body = ChangeRequest),
        (status = 403, body = ErrorEnvelope, description = "not_an_approver, self_approval_forbidden"),
        (status = 409, body = ErrorEnvelope, description = "invalid_transition, already_decided"),
        (status = 412, body = ErrorEnvelope, description = "version_conflict"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn approve(
    s: State<AppState>,
    caller: Caller,
    path: PathParams<ChangePath>,
    if_match: IfMatch,
    body: JsonBody<ActionInput>,
) -> Result {
    decide("approve", s, caller, path, if_match, body).await
}

/// Rejects the change: one rejection ends the round.
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/reject", operation_id = "Reject",
    params(ChangePath, IfMatchParams), request_body(content = ActionInput, description = "`{comment}`"),
    responses(
        (status = 200, body = ChangeRequest),
        (status = 403, body = ErrorEnvelope, description = "not_an_approver, self_approval_forbidden"),
        (status = 409, body = ErrorEnvelope, description = "invalid_transition, already_decided"),
        (status = 412, body = ErrorEnvelope, description = "version_conflict"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed: a rejection needs a comment"),
    ))]
pub async fn reject(
    s: State<AppState>,
    caller: Caller,
    path: PathParams<ChangePath>,
    if_match: IfMatch,
    body: JsonBody<ActionInput>,
) -> Result {
    decide("reject", s, caller, path, if_match, body).await
}

async fn decide(
    action: &str,
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    IfMatch(if_match): IfMatch,
    JsonBody(input, _): JsonBody<ActionInput>,
) -> Result {
    let c = s.app.act(&actor, &slug, number, action, input, if_match).await?;
    let v = c.version;
    Ok(versioned(c, v))
}

/// Every approval step of the change, with its decision.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}/approvals", operation_id = "ChangeApprovals",
    params(ChangePath), responses((status = 200, body = Paged<ApprovalStep>)))]
pub async fn change_approvals(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
) -> Result {
    Ok(all(s.app.change_approvals(&actor, &slug, number).await?))
}

/// The change's audit rows, oldest first.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}/activity", operation_id = "Activity",
    params(ChangePath, PageParams), responses((status = 200, body = Paged<AuditRow>)))]
pub async fn activity(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.change_activity(&actor, &slug, number, p.limit()?, p.cursor()).await?))
}

/// The caller's pending steps, delegated ones included.
#[utoipa::path(get, path = "/ws/{slug}/approvals", operation_id = "MyApprovals",
    params(WsPath, PageParams), responses((status = 200, body = Paged<QueueEntry>)))]
pub async fn my_approvals(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.my_approvals(&actor, &slug, p.limit()?, p.cursor()).await?))
}
