//! `/a/{token}`: deciding from a link, without signing in. `GET` shows a small,
//! accessible confirmation page and changes nothing (mail scanners open links);
//! `POST` (the page's form, or JSON) records the decision. The token is the only
//! credential, so pages are never cached and never send a referrer.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vigilo_app::services::links::{LinkOutcome, OpenLink, Via};
use vigilo_app::RequestInfo;
use vigilo_domain::link::Refusal;
use vigilo_domain::notice::escape_html;

use crate::error::ApiError;
use crate::extract::PathParams;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/a/{token}", get(show).post(decide))
}

#[derive(Debug, Default, Deserialize)]
struct DecisionInput {
    decision: Option<String>,
    comment: Option<String>,
}

/// The status a refusal is answered with.
fn status_of(r: Refusal) -> StatusCode {
    match r {
        Refusal::Forged | Refusal::WrongSender | Refusal::Unauthenticated => StatusCode::FORBIDDEN,
        Refusal::Expired | Refusal::Used => StatusCode::GONE,
        Refusal::StepClosed => StatusCode::CONFLICT,
        Refusal::NoDecision => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn explain(r: Refusal) -> &'static str {
    match r {
        Refusal::Forged => "This link is not valid. Open the latest email or message about this change.",
        Refusal::Expired => "This link has expired. The change is still waiting; decide in Vigilo or use a newer link.",
        Refusal::Used => "This link has already been used. Each link decides once.",
        Refusal::StepClosed => "This approval step is no longer open: it was decided, or the change moved on.",
        Refusal::WrongSender => "This decision did not come from the approver the link was sent to.",
        Refusal::Unauthenticated => "This message could not be verified as coming from its sender.",
        Refusal::NoDecision => "Choose approve or reject.",
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t} - Vigilo</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         button{{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}}textarea{{width:100%}}</style></head>\
         <body><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape_html(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

fn refusal_page(r: Refusal) -> Response {
    page(status_of(r), "This link cannot be used", &format!("<p role=\"alert\">{}</p>", escape_html(explain(r))))
}

fn confirm_page(open: &OpenLink) -> Response {
    let c = &open.change;
    let who = open.approver.name.clone().unwrap_or_else(|| open.approver.user_id.to_string());
    let planned = c.planned_start.map_or("not planned yet".to_owned(), vigilo_domain::time::format);
    let body = format!(
        "<p>{who}, your decision is requested on <strong>{num} {title}</strong> in {ws}.</p>\
         <dl><dt>Step</dt><dd>{step}</dd><dt>Type and risk</dt><dd>{ty}, {risk} risk</dd>\
         <dt>Planned start</dt><dd>{planned}</dd><dt>Link expires</dt><dd>{exp}</dd></dl>\
         <h2>Description</h2><p>{desc}</p>\
         <form method=\"post\"><p><label for=\"comment\">Comment (required to reject)</label><br>\
         <textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"5000\"></textarea></p>\
         <p><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"reject\">Reject</button></p></form>\
         <p>Nothing is recorded until you press a button. The link works once.</p>",
        who = escape_html(&who),
        num = c.number,
        title = escape_html(&c.title),
        ws = escape_html(&open.workspace.name),
        step = escape_html(&open.step.name),
        ty = c.change_type,
        risk = c.risk_level,
        planned = escape_html(&planned),
        exp = vigilo_domain::time::format(open.grant.expires_at),
        desc = escape_html(if c.description.is_empty() { "(none)" } else { &c.description }),
    );
    page(StatusCode::OK, &format!("Decide on {}", c.number), &body)
}

async fn show(State(s): State<AppState>, PathParams(token): PathParams<String>) -> Result<Response, ApiError> {
    Ok(match s.app.open_link(&token).await? {
        Ok(open) => confirm_page(&open),
        Err(r) => refusal_page(r),
    })
}

/// The page's form (`application/x-www-form-urlencoded`) answers with a page; a JSON
/// body answers in JSON.
async fn decide(
    State(s): State<AppState>,
    PathParams(token): PathParams<String>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
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
    let request = RequestInfo { channel: Some("link".into()), ..crate::auth::request_info(&parts) };
    let via = Via { channel: "link".into(), request, ..Via::default() };
    let comment = input.comment.filter(|c| !c.trim().is_empty());
    let decision = input.decision.unwrap_or_default();
    let outcome = s.app.decide_by_link(&token, &decision, comment, &via).await;
    Ok(match (outcome, form) {
        (Ok(LinkOutcome::Decided { change, decision }), true) => {
            let body = format!(
                "<p role=\"status\">Your decision ({}) on {} is recorded. The change is now {}.</p>",
                escape_html(&decision),
                change.number,
                change.status
            );
            page(StatusCode::OK, "Thank you", &body)
        }
        (Ok(LinkOutcome::Decided { change, decision }), false) => {
            Json(json!({"decision": decision, "change": change})).into_response()
        }
        (Ok(LinkOutcome::Refused(r)), true) => refusal_page(r),
        (Ok(LinkOutcome::Refused(r)), false) => {
            let body =
                json!({"error": {"code": "link_refused", "message": explain(r), "details": {"reason": r.as_str()}}});
            (status_of(r), Json(body)).into_response()
        }
        (Err(e), true) => {
            let (status, _, _) = ApiError::from(e).parts();
            let msg = if status == StatusCode::UNPROCESSABLE_ENTITY {
                "A rejection needs a comment. Go back, add one, and press Reject again."
            } else {
                "Something went wrong; nothing was recorded. Try again in a moment."
            };
            page(status, "Not recorded", &format!("<p role=\"alert\">{msg}</p>"))
        }
        (Err(e), false) => return Err(e.into()),
    })
}
