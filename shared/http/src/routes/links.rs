//! `/a/{token}`: deciding from a link, without signing in. `GET` shows a small,
//! accessible confirmation page and changes nothing (mail scanners open links);
//! `POST` (the page's form, or JSON) records the decision. The token is the only
//! credential, so pages are never cached and never send a referrer.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use vigilo_app::services::links::{LinkOutcome, OpenLink, Via};
use vigilo_app::RequestInfo;
use vigilo_domain::link::Refusal;
use vigilo_domain::locale::Locale;
use vigilo_domain::notice::ChangeDetails;
use vigilo_render::{self as render, Confirmation, Page};

use crate::error::ApiError;
use crate::error::ErrorEnvelope;
use crate::extract::{PathParams, QueryParams};
use crate::paths::TokenPath;
use crate::AppState;

/// `{decision, comment?}`, from the page's form or as JSON.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct DecisionInput {
    /// `approve` or `reject`.
    #[schema(example = "approve")]
    decision: Option<String>,
    comment: Option<String>,
    /// The language the confirmation page was shown in, so its answer reads the same.
    lang: Option<String>,
}

fn page(status: StatusCode, p: Page) -> Response {
    let mut r = (status, p.html).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(p.lang.as_str()));
    // `no-store` and `no-referrer` come with every response (`security_headers`); the
    // page's own policy lets its inline style load and its form post.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

/// The reader's language from their browser, else `fallback`.
fn language(headers: &HeaderMap, fallback: Locale) -> Locale {
    Locale::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()), fallback)
}

fn refusal_page(r: Refusal, locale: Locale) -> Response {
    page(crate::error::refusal_status(r), render::page::refused(r, locale))
}

fn confirm_page(open: &OpenLink, details: &ChangeDetails, chosen: Option<&str>, headers: &HeaderMap) -> Response {
    let c = &open.change;
    let who = open.approver.name.clone().unwrap_or_else(|| open.approver.user_id.to_string());
    let (ty, risk) = (c.change_type.to_string(), c.risk_level.to_string());
    let confirmation = Confirmation {
        approver: &who,
        number: c.number,
        title: &c.title,
        workspace: &open.workspace.name,
        timezone: &open.workspace.timezone,
        step: &open.step.name,
        change_type: &ty,
        risk_level: &risk,
        planned_start: c.planned_start,
        expires_at: open.grant.expires_at,
        details,
        chosen,
    };
    page(StatusCode::OK, confirmation.render(language(headers, open.workspace.locale)))
}

/// How a link request arrived, for the audit row and the refusal brake.
fn via(parts: &axum::http::request::Parts) -> Via {
    let request = RequestInfo { channel: Some("link".into()), ..crate::auth::request_info(parts) };
    Via { channel: "link".into(), request, ..Via::default() }
}

/// `?decision=approve|reject`: the choice an email button made, shown as chosen on the
/// page (nothing is recorded until it is pressed).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChosenParams {
    /// `approve` or `reject`; anything else chooses nothing.
    decision: Option<String>,
}

/// A decision recorded from a link, answered in JSON.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Decided {
    /// `approve` or `reject`.
    decision: String,
    change: vigilo_domain::change::ChangeRequest,
}

/// The confirmation page: shows the change and the decision's form, records nothing
/// (mail scanners open links).
#[utoipa::path(get, path = "/a/{token}", operation_id = "OpenLink", security(()), params(TokenPath, ChosenParams),
    responses(
        (status = 200, description = "The confirmation page", content_type = "text/html", body = String),
        (status = 403, description = "A forged or unusable token (a page saying why)", content_type = "text/html", body = String),
        (status = 409, description = "The step is already decided", content_type = "text/html", body = String),
        (status = 410, description = "The link expired or was used", content_type = "text/html", body = String),
        (status = 429, body = ErrorEnvelope, description = "rate_limited: too many refused links from this source"),
    ))]
pub async fn show(
    State(s): State<AppState>,
    PathParams(TokenPath { token }): PathParams<TokenPath>,
    QueryParams(query): QueryParams<ChosenParams>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let via = via(&parts);
    if s.app.braked(&via).is_some() {
        return Err(ApiError::LinkRefused(Refusal::RateLimited));
    }
    Ok(match s.app.open_link(&token).await? {
        Ok(open) => {
            let details = s.app.link_details(&open).await?;
            confirm_page(&open, &details, query.decision.as_deref(), &parts.headers)
        }
        Err(r) => {
            // Opening changes nothing, so nothing is audited; a bad token is still
            // logged and counted against its source.
            tracing::warn!(reason = r.as_str(), ip = ?via.request.ip, request_id = ?via.request.request_id, "a decision page opened with an unusable token");
            s.app.count_refusal(&via);
            refusal_page(r, language(&parts.headers, Locale::En))
        }
    })
}

/// The user a request's bearer token names, when it carries a valid one.
async fn signed_in(parts: &mut axum::http::request::Parts, s: &AppState) -> Option<vigilo_domain::ids::UserId> {
    parts.headers.get(header::AUTHORIZATION)?;
    crate::auth::Caller::from_request_parts(parts, s).await.ok().map(|c| c.0.user_id)
}

/// The page's form (`application/x-www-form-urlencoded`) answers with a page; a JSON
/// body answers in JSON.
#[utoipa::path(post, path = "/a/{token}", operation_id = "UseLink", security(()), params(TokenPath),
    request_body(content(
        (DecisionInput = "application/x-www-form-urlencoded"),
        (DecisionInput = "application/json"),
    )),
    responses(
        (status = 200, description = "Recorded: a page for the form, JSON otherwise",
            content((String = "text/html"), (Decided = "application/json"))),
        (status = 403, description = "link_refused: forged, or not the approver's own channel",
            content((String = "text/html"), (ErrorEnvelope = "application/json"))),
        (status = 409, description = "link_refused: the step is already decided; or a guard refused the decision",
            content((String = "text/html"), (ErrorEnvelope = "application/json"))),
        (status = 410, description = "link_refused: expired or used",
            content((String = "text/html"), (ErrorEnvelope = "application/json"))),
        (status = 422, description = "link_refused: no decision, or a rejection without a comment; validation_failed",
            content((String = "text/html"), (ErrorEnvelope = "application/json"))),
        (status = 429, body = ErrorEnvelope, description = "rate_limited"),
    ))]
pub async fn decide(
    State(s): State<AppState>,
    PathParams(TokenPath { token }): PathParams<TokenPath>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| ApiError::PayloadTooLarge)?;
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let input: DecisionInput = if form {
        serde_urlencoded::from_bytes(&body).map_err(|e| ApiError::BadRequest(format!("unreadable form: {e}")))?
    } else if body.iter().all(u8::is_ascii_whitespace) {
        DecisionInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?
    };
    let mut via = via(&parts);
    via.signed_in = signed_in(&mut parts, &s).await;
    let comment = input.comment.filter(|c| !c.trim().is_empty());
    let decision = input.decision.unwrap_or_default();
    let outcome = s.app.decide_by_link(&token, &decision, comment, &via).await;
    let shown_in = input.lang.as_deref().and_then(Locale::parse);
    let locale = shown_in.unwrap_or_else(|| language(&parts.headers, Locale::En));
    Ok(match (outcome, form) {
        (Ok(LinkOutcome::Decided { change, decision }), true) => {
            page(StatusCode::OK, render::page::recorded(&decision, change.number, change.status.as_str(), locale))
        }
        (Ok(LinkOutcome::Decided { change, decision }), false) => {
            Json(json!({"decision": decision, "change": change})).into_response()
        }
        (Ok(LinkOutcome::Refused(Refusal::RateLimited)), _) => return Err(ApiError::LinkRefused(Refusal::RateLimited)),
        (Ok(LinkOutcome::Refused(Refusal::CommentRequired)), true) => {
            page(StatusCode::UNPROCESSABLE_ENTITY, render::page::not_recorded(true, locale))
        }
        (Ok(LinkOutcome::Refused(r)), true) => refusal_page(r, locale),
        (Ok(LinkOutcome::Refused(r)), false) => return Err(ApiError::LinkRefused(r)),
        (Err(e), true) => {
            let (status, _, _) = ApiError::from(e).parts();
            page(status, render::page::not_recorded(status == StatusCode::UNPROCESSABLE_ENTITY, locale))
        }
        (Err(e), false) => return Err(e.into()),
    })
}
