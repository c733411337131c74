//! `/workspaces` and `/ws/{slug}`: workspaces, members, delegation, groups.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use vigilo_app::services::members::{DelegateInput, GroupInput, MemberInput};
use vigilo_app::services::workspaces::{NewWorkspace, WorkspacePatch};
use vigilo_app::IdempotencyKey;

use super::{all, created, versioned};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{IdempotencyHeader, IfMatch, JsonBody, PathParams};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspaces", get(list).post(create))
        .route("/ws/{slug}", get(show).patch(update))
        .route("/ws/{slug}/members", get(members))
        .route("/ws/{slug}/members/{user_id}", put(put_member).delete(remove_member))
        .route("/ws/{slug}/members/{user_id}/delegate", put(delegate))
        .route("/ws/{slug}/members/{user_id}/chat", put(chat_link))
        .route("/ws/{slug}/groups", get(groups))
        .route("/ws/{slug}/groups/{name}", put(put_group))
}

type Result<T = Response> = std::result::Result<T, ApiError>;

async fn list(State(s): State<AppState>, Caller(actor): Caller) -> Result {
    Ok(all(s.app.list_workspaces(&actor).await?))
}

async fn create(
    State(s): State<AppState>,
    Caller(actor): Caller,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<NewWorkspace>,
) -> Result {
    let idem = key.map(|k| IdempotencyKey::new(&k, "POST /workspaces", &raw)).transpose()?;
    Ok(created(s.app.create_workspace(&actor, input, idem.as_ref()).await?))
}

async fn show(State(s): State<AppState>, Caller(actor): Caller, PathParams(slug): PathParams<String>) -> Result {
    let w = s.app.get_workspace(&actor, &slug).await?;
    let v = w.workspace.version;
    Ok(versioned(w, v))
}

async fn update(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(patch, _): JsonBody<WorkspacePatch>,
) -> Result {
    let w = s.app.update_workspace(&actor, &slug, patch, if_match).await?;
    let v = w.workspace.version;
    Ok(versioned(w, v))
}

async fn members(State(s): State<AppState>, Caller(actor): Caller, PathParams(slug): PathParams<String>) -> Result {
    Ok(all(s.app.list_members(&actor, &slug).await?))
}

async fn put_member(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, user)): PathParams<(String, String)>,
    JsonBody(input, _): JsonBody<MemberInput>,
) -> Result {
    let m = s.app.put_member(&actor, &slug, &user, input).await?;
    let v = m.version;
    Ok(versioned(m, v))
}

async fn remove_member(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, user)): PathParams<(String, String)>,
) -> Result {
    s.app.remove_member(&actor, &slug, &user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delegate(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, user)): PathParams<(String, String)>,
    JsonBody(input, _): JsonBody<DelegateInput>,
) -> Result {
    let m = s.app.put_delegate(&actor, &slug, &user, input).await?;
    let v = m.version;
    Ok(versioned(m, v))
}

async fn chat_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, user)): PathParams<(String, String)>,
    JsonBody(input, _): JsonBody<vigilo_app::services::members::ChatLinkInput>,
) -> Result {
    let m = s.app.put_chat_link(&actor, &slug, &user, input).await?;
    let v = m.version;
    Ok(versioned(m, v))
}

async fn groups(State(s): State<AppState>, Caller(actor): Caller, PathParams(slug): PathParams<String>) -> Result {
    Ok(all(s.app.list_groups(&actor, &slug).await?))
}

async fn put_group(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, name)): PathParams<(String, String)>,
    JsonBody(input, _): JsonBody<GroupInput>,
) -> Result {
    let g = s.app.put_group(&actor, &slug, &name, input).await?;
    let v = g.version;
    Ok(versioned(g, v))
}
