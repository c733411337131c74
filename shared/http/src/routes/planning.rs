//! What surrounds one change on its way to production: runbook tasks, comments,
//! conflicts with other changes, similar changes and the risk questionnaire.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use vigilo_app::paging::Paged;
use vigilo_app::services::comments::{Comment, CommentInput};
use vigilo_app::services::conflicts::ProbeParams;
use vigilo_app::services::insight::RiskInput;
use vigilo_app::IdempotencyKey;
use vigilo_domain::conflict::Conflict;
use vigilo_domain::risk::{Assessment, Similar};
use vigilo_domain::task::{RawTask, Task};

use super::{all, created, ok, versioned};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{
    IdempotencyHeader, IdempotencyParams, IfMatch, IfMatchParams, JsonBody, PageParams, PathParams, QueryParams,
};
use crate::paths::{ChangePath, OtherPath, TaskPath, WsPath};
use crate::AppState;

type Result<T = Response> = std::result::Result<T, ApiError>;

/// The change's runbook tasks, in order.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}/tasks", operation_id = "ListTasks",
    params(ChangePath), responses((status = 200, body = Paged<Task>)))]
pub async fn tasks(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
) -> Result {
    Ok(all(s.app.list_tasks(&actor, &slug, number).await?))
}

/// Adds a runbook task (member+).
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/tasks", operation_id = "AddTask",
    params(ChangePath, IdempotencyParams), request_body = RawTask,
    responses(
        (status = 201, body = Task),
        (status = 409, body = ErrorEnvelope, description = "change_closed"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed, idempotency_key_reused"),
    ))]
pub async fn add_task(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<RawTask>,
) -> Result {
    let idem = idempotency(key, &format!("POST /ws/{slug}/changes/{number}/tasks"), &raw)?;
    Ok(created(s.app.add_task(&actor, &slug, number, input, idem.as_ref()).await?))
}

/// The `Idempotency-Key` of a creating POST, bound to its target and body.
fn idempotency(key: Option<String>, target: &str, raw: &serde_json::Value) -> Result<Option<IdempotencyKey>> {
    Ok(key.map(|k| IdempotencyKey::new(&k, target, raw)).transpose()?)
}

/// One task per step of the implementation plan.
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/tasks/generate", operation_id = "GenerateTasks",
    params(ChangePath, IdempotencyParams),
    responses(
        (status = 201, body = Paged<Task>),
        (status = 409, body = ErrorEnvelope, description = "tasks_already_generated, change_closed"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed: no plan steps, idempotency_key_reused"),
    ))]
pub async fn generate(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    IdempotencyHeader(key): IdempotencyHeader,
) -> Result {
    let idem = idempotency(key, &format!("POST /ws/{slug}/changes/{number}/tasks/generate"), &serde_json::json!({}))?;
    Ok(created(s.app.generate_tasks(&actor, &slug, number, idem.as_ref()).await?))
}

/// Starts, finishes or skips a task.
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/tasks/{task_id}/{action}", operation_id = "RunTask",
    params(TaskPath, IfMatchParams),
    responses(
        (status = 200, body = Task),
        (status = 409, body = ErrorEnvelope, description = "invalid_transition, predecessors_unmet, task_required, change_closed"),
        (status = 412, body = ErrorEnvelope, description = "version_conflict"),
    ))]
pub async fn task_action(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(TaskPath { slug, number, task_id, action }): PathParams<TaskPath>,
    IfMatch(if_match): IfMatch,
) -> Result {
    let t = s.app.act_on_task(&actor, &slug, number, &task_id, &action, if_match).await?;
    let v = t.version;
    Ok(versioned(t, v))
}

/// The change's comments, oldest first.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}/comments", operation_id = "ListComments",
    params(ChangePath, PageParams), responses((status = 200, body = Paged<Comment>)))]
pub async fn comments(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.list_comments(&actor, &slug, number, p.limit()?, p.cursor()).await?))
}

/// Comments on a change (member+).
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/comments", operation_id = "AddComment",
    params(ChangePath, IdempotencyParams), request_body = CommentInput,
    responses(
        (status = 201, body = Comment),
        (status = 422, body = ErrorEnvelope, description = "validation_failed, idempotency_key_reused"),
    ))]
pub async fn add_comment(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    IdempotencyHeader(key): IdempotencyHeader,
    JsonBody(input, raw): JsonBody<CommentInput>,
) -> Result {
    let idem = idempotency(key, &format!("POST /ws/{slug}/changes/{number}/comments"), &raw)?;
    Ok(created(s.app.add_comment(&actor, &slug, number, input, idem.as_ref()).await?))
}

/// Live changes sharing an asset in an overlapping window.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}/conflicts", operation_id = "ChangeConflicts",
    params(ChangePath), responses((status = 200, body = Paged<Conflict>)))]
pub async fn conflicts(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
) -> Result {
    Ok(all(s.app.change_conflicts(&actor, &slug, number).await?))
}

/// `{comment}`: why the overlap is acceptable.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    comment: Option<String>,
}

/// Accepts a conflict with another change, so scheduling is not refused for it.
#[utoipa::path(post, path = "/ws/{slug}/changes/{number}/conflicts/{other}/accept", operation_id = "AcceptConflict",
    params(OtherPath), request_body = AcceptInput,
    responses(
        (status = 200, body = Conflict),
        (status = 409, body = ErrorEnvelope, description = "change_closed"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn accept(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(OtherPath { slug, number, other }): PathParams<OtherPath>,
    JsonBody(input, _): JsonBody<AcceptInput>,
) -> Result {
    Ok(ok(s.app.accept_conflict(&actor, &slug, number, other, input.comment).await?))
}

/// Conflicts of a window not yet filed.
#[utoipa::path(get, path = "/ws/{slug}/conflicts", operation_id = "ProbeConflicts",
    params(WsPath, ProbeParams),
    responses(
        (status = 200, body = Paged<Conflict>),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn probe(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<ProbeParams>,
) -> Result {
    Ok(all(s.app.probe_conflicts(&actor, &slug, &p).await?))
}

/// Changes with overlapping assets or similar titles, with how they ended.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}/similar", operation_id = "SimilarChanges",
    params(ChangePath), responses((status = 200, body = Paged<Similar>)))]
pub async fn similar(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
) -> Result {
    Ok(all(s.app.similar_changes(&actor, &slug, number).await?))
}

/// The change's risk score from its facts and the last answers given.
#[utoipa::path(get, path = "/ws/{slug}/changes/{number}/risk-assessment", operation_id = "GetRisk",
    params(ChangePath), responses((status = 200, body = Assessment)))]
pub async fn risk(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
) -> Result {
    Ok(ok(s.app.get_risk_assessment(&actor, &slug, number).await?))
}

/// Answers the risk questionnaire and scores the change.
#[utoipa::path(put, path = "/ws/{slug}/changes/{number}/risk-assessment", operation_id = "AssessRisk",
    params(ChangePath), request_body = RiskInput,
    responses(
        (status = 200, body = Assessment),
        (status = 409, body = ErrorEnvelope, description = "change_closed"),
        (status = 422, body = ErrorEnvelope, description = "validation_failed"),
    ))]
pub async fn assess(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(ChangePath { slug, number }): PathParams<ChangePath>,
    JsonBody(input, _): JsonBody<RiskInput>,
) -> Result {
    Ok(ok(s.app.assess_risk(&actor, &slug, number, input).await?))
}

#[derive(Deserialize)]
pub struct DoraParams {
    from: Option<String>,
    to: Option<String>,
}

/// DORA's four keys over the changes that ended in `[from, to)` (viewer+): deployments
/// are changes that reached completed, failed or rolled_back; failures those that
/// failed, were rolled back or closed unsuccessful; lead time from submission to the
/// end; time to restore from a failure to the next successful end of a change sharing
/// one of its assets within the range. `to` defaults to now, `from` to 30 days before.
#[utoipa::path(get, path = "/ws/{slug}/metrics/dora", operation_id = "DoraMetrics",
    params(WsPath,
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339; default 30 days before `to`"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive; default now")),
    responses(
        (status = 200, body = vigilo_domain::dora::Dora),
        (status = 422, body = ErrorEnvelope, description = "validation_failed: a bound unreadable, reversed, or a range over 400 days"),
    ))]
pub async fn dora(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<DoraParams>,
) -> Result {
    Ok(ok(s.app.dora_metrics(&actor, &slug, p.from.as_deref(), p.to.as_deref()).await?))
}

#[derive(Deserialize)]
pub struct CalendarParams {
    token: Option<String>,
}

fn ics(body: String) -> Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, no-store"),
            (header::CONTENT_DISPOSITION, "inline; filename=\"calendar.ics\""),
        ],
        body,
    )
        .into_response()
}

/// The workspace calendar (RFC 5545): scheduled and in-progress changes and the freeze
/// windows not yet over, recurring ones as their RRULE on the workspace's clock. Read
/// with a bearer token where the host verifies it (`vigilo serve`), or with `?token=`
/// from `POST /calendar/feed`, which is how calendar apps read it (on AWS the route is
/// outside the gateway's authorizer so that they can).
#[utoipa::path(get, path = "/ws/{slug}/calendar.ics", operation_id = "GetCalendar",
    security((), ("bearer" = [])),
    params(WsPath, ("token" = Option<String>, Query, description = "A feed token from `POST /calendar/feed`")),
    responses(
        (status = 200, description = "The calendar", content_type = "text/calendar", body = String),
        (status = 401, body = ErrorEnvelope, description = "unauthenticated: no bearer token, or a feed token unknown, revoked or no longer a member's"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited: too many refused feed tokens from this source"),
    ))]
pub async fn calendar(
    State(s): State<AppState>,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<CalendarParams>,
    req: axum::extract::Request,
) -> Result {
    use axum::extract::FromRequestParts;
    let (mut parts, _) = req.into_parts();
    let Some(token) = p.token else {
        let Caller(actor) = Caller::from_request_parts(&mut parts, &s).await?;
        return Ok(ics(s.app.calendar_ics(&actor, &slug).await?));
    };
    let request = vigilo_app::RequestInfo { channel: Some("feed".into()), ..crate::auth::request_info(&parts) };
    let via =
        vigilo_app::services::links::Via { channel: "feed".into(), request: request.clone(), ..Default::default() };
    if s.app.braked(&via).is_some() {
        return Err(ApiError::LinkRefused(vigilo_domain::link::Refusal::RateLimited));
    }
    match s.app.calendar_ics_by_token(&slug, &token, request).await? {
        Some(body) => Ok(ics(body)),
        None => {
            tracing::warn!(ip = ?via.request.ip, request_id = ?via.request.request_id, "a calendar fetched with an unusable feed token");
            s.app.count_refusal(&via);
            Err(ApiError::Unauthenticated("the feed token is unknown or revoked".into()))
        }
    }
}

/// A feed token for the caller's calendar app (viewer+): the calendar's address with
/// `?token=`. Asking again replaces the token; the old address stops working.
#[utoipa::path(post, path = "/ws/{slug}/calendar/feed", operation_id = "CreateCalendarFeed",
    params(WsPath), responses((status = 201, body = vigilo_app::services::calendar::FeedUrl)))]
pub async fn create_feed(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    use axum::response::IntoResponse;
    let url = s.app.create_calendar_feed(&actor, &slug).await?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(url)).into_response())
}

/// Revokes the caller's feed token.
#[utoipa::path(delete, path = "/ws/{slug}/calendar/feed", operation_id = "DeleteCalendarFeed",
    params(WsPath),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorEnvelope, description = "not_found: no feed token")))]
pub async fn delete_feed(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    use axum::response::IntoResponse;
    s.app.delete_calendar_feed(&actor, &slug).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct AgendaParams {
    week: Option<String>,
}

/// The CAB's week (viewer+): every normal change awaiting review, planned start first,
/// with its risk score, plans, the approvers still to decide and its conflicts; those
/// planned to start in the week are marked. The current ISO week of the workspace's
/// clock by default.
#[utoipa::path(get, path = "/ws/{slug}/cab/agenda", operation_id = "CabAgenda",
    params(WsPath, ("week" = Option<String>, Query, description = "An ISO 8601 week, `2026-W50`")),
    responses(
        (status = 200, body = vigilo_domain::agenda::Agenda),
        (status = 422, body = ErrorEnvelope, description = "validation_failed: not an ISO week"),
    ))]
pub async fn cab_agenda(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<AgendaParams>,
) -> Result {
    Ok(ok(s.app.cab_agenda(&actor, &slug, p.week.as_deref()).await?))
}
