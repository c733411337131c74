//! `/workspaces` and `/ws/{slug}`: workspaces, members, delegation, groups.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vigilo_app::paging::Paged;
use vigilo_app::services::members::{DelegateInput, GroupInput, MemberInput};
use vigilo_app::services::views::WorkspaceView;
use vigilo_app::services::workspaces::{NewWorkspace, WorkspacePatch};
use vigilo_app::IdempotencyKey;
use vigilo_domain::workspace::{Group, Member};

use super::{all, created, versioned};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{IdempotencyHeader, IdempotencyParams, IfMatch, IfMatchParams, JsonBody, PathParams};
use crate::paths::{GroupPath, MemberPath, WsPath};
use crate::AppState;

type Result<T = Response> = std::result::Result<T, ApiError>;

/// The caller's workspaces, with their role in each.
#[utoipa::path(get, path = "/workspaces", operation_id = "ListWorkspaces",
    responses((status = 200, body = Paged<WorkspaceView>)))]
pub async fn list(State(s): State<AppState>, Caller(actor): Caller) -> Result {
    Ok(all(s.app.list_workspaces(&actor).await?))
}

/// Creates a workspace; the caller becomes its owner.
#[utoipa::path(post, path = "/workspaces", operation_id = "CreateWorkspace",
    params(IdempotencyParams), request_body = NewWorkspace,
    responses(
        (status = 201, body = WorkspaceView),
        (status = 409, body = ErrorEnvelope, description = "slug_taken"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed, idempotency_key_reused"),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Caller(actor): Caller,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<NewWorkspace>,
) -> Result {
    let idem = key.map(|k| IdempotencyKey::new(&k, "POST /workspaces", &raw)).transpose()?;
    Ok(created(s.app.create_workspace(&actor, input, idem.as_ref()).await?))
}

/// The workspace and the caller's role in it.
#[utoipa::path(get, path = "/ws/{slug}", operation_id = "GetWorkspace",
    params(WsPath), responses((status = 200, body = WorkspaceView)))]
pub async fn show(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    let w = s.app.get_workspace(&actor, &slug).await?;
    let v = w.workspace.version;
    Ok(versioned(w, v))
}

/// Changes the name, locale, time zone or audit retention (admin+).
#[utoipa::path(patch, path = "/ws/{slug}", operation_id = "UpdateWorkspace",
    params(WsPath, IfMatchParams), request_body = WorkspacePatch,
    responses(
        (status = 200, body = WorkspaceView),
        (status = 412, body = ErrorEnvelope, description = "version_conflict"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn update(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    IfMatch(if_match): IfMatch,
    JsonBody(patch, _): JsonBody<WorkspacePatch>,
) -> Result {
    let w = s.app.update_workspace(&actor, &slug, patch, if_match).await?;
    let v = w.workspace.version;
    Ok(versioned(w, v))
}

/// The workspace's members.
#[utoipa::path(get, path = "/ws/{slug}/members", operation_id = "ListMembers",
    params(WsPath), responses((status = 200, body = Paged<Member>)))]
pub async fn members(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    Ok(all(s.app.list_members(&actor, &slug).await?))
}

/// Adds a member or changes their role (admin+; only an owner grants `owner`).
#[utoipa::path(put, path = "/ws/{slug}/members/{user_id}", operation_id = "PutMember",
    params(MemberPath), request_body = MemberInput,
    responses(
        (status = 200, body = Member),
        (status = 409, body = ErrorEnvelope, description = "last_owner: the last owner cannot step down"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn put_member(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(MemberPath { slug, user_id: user }): PathParams<MemberPath>,
    JsonBody(input, _): JsonBody<MemberInput>,
) -> Result {
    let m = s.app.put_member(&actor, &slug, &user, input).await?;
    let v = m.version;
    Ok(versioned(m, v))
}

/// Removes a member (admin+).
#[utoipa::path(delete, path = "/ws/{slug}/members/{user_id}", operation_id = "RemoveMember",
    params(MemberPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, body = ErrorEnvelope, description = "last_owner"),
    ))]
pub async fn remove_member(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(MemberPath { slug, user_id: user }): PathParams<MemberPath>,
) -> Result {
    s.app.remove_member(&actor, &slug, &user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Offers the member's approval steps to a delegate between two instants (self or admin+).
#[utoipa::path(put, path = "/ws/{slug}/members/{user_id}/delegate", operation_id = "Delegate",
    params(MemberPath), request_body = DelegateInput,
    responses(
        (status = 200, body = Member),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn delegate(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(MemberPath { slug, user_id: user }): PathParams<MemberPath>,
    JsonBody(input, _): JsonBody<DelegateInput>,
) -> Result {
    let m = s.app.put_delegate(&actor, &slug, &user, input).await?;
    let v = m.version;
    Ok(versioned(m, v))
}

/// Links the member's Slack user, whose button presses then decide for them.
#[utoipa::path(put, path = "/ws/{slug}/members/{user_id}/chat", operation_id = "LinkChat",
    params(MemberPath), request_body = vigilo_app::services::members::ChatLinkInput,
    responses(
        (status = 200, body = Member),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn chat_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(MemberPath { slug, user_id: user }): PathParams<MemberPath>,
    JsonBody(input, _): JsonBody<vigilo_app::services::members::ChatLinkInput>,
) -> Result {
    let m = s.app.put_chat_link(&actor, &slug, &user, input).await?;
    let v = m.version;
    Ok(versioned(m, v))
}

/// The workspace's named groups (`cab`, `ecab`, ...).
#[utoipa::path(get, path = "/ws/{slug}/groups", operation_id = "ListGroups",
    params(WsPath), responses((status = 200, body = Paged<Group>)))]
pub async fn groups(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    Ok(all(s.app.list_groups(&actor, &slug).await?))
}

/// Sets a group's members (admin+).
#[utoipa::path(put, path = "/ws/{slug}/groups/{name}", operation_id = "PutGroup",
    params(GroupPath), request_body = GroupInput,
    responses(
        (status = 200, body = Group),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn put_group(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(GroupPath { slug, name }): PathParams<GroupPath>,
    JsonBody(input, _): JsonBody<GroupInput>,
) -> Result {
    let g = s.app.put_group(&actor, &slug, &name, input).await?;
    let v = g.version;
    Ok(versioned(g, v))
}

/// The assets a member follows (self or admin+).
#[utoipa::path(get, path = "/ws/{slug}/members/{user_id}/subscriptions", operation_id = "GetSubscriptions",
    params(MemberPath),
    responses(
        (status = 200, body = vigilo_app::services::subscriptions::Subscriptions),
        (status = 403, body = ErrorEnvelope, description = "forbidden: another member's, below admin"),
    ))]
pub async fn subscriptions(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(MemberPath { slug, user_id: user }): PathParams<MemberPath>,
) -> Result {
    let subs = s.app.get_subscriptions(&actor, &slug, &user).await?;
    let v = subs.version;
    Ok(versioned(subs, v))
}

/// Replaces the assets a member follows (self or admin+): they are told, by email and
/// chat, when a change touching one of them is submitted, scheduled, started,
/// completed, failed or rolled back.
#[utoipa::path(put, path = "/ws/{slug}/members/{user_id}/subscriptions", operation_id = "PutSubscriptions",
    params(MemberPath), request_body = vigilo_app::services::subscriptions::SubscriptionsInput,
    responses(
        (status = 200, body = vigilo_app::services::subscriptions::Subscriptions),
        (status = 403, body = ErrorEnvelope, description = "forbidden: another member's, below admin"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn put_subscriptions(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(MemberPath { slug, user_id: user }): PathParams<MemberPath>,
    JsonBody(input, _): JsonBody<vigilo_app::services::subscriptions::SubscriptionsInput>,
) -> Result {
    let subs = s.app.put_subscriptions(&actor, &slug, &user, input).await?;
    let v = subs.version;
    Ok(versioned(subs, v))
}
