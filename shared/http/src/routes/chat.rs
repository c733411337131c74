//! `POST /chat/slack/actions`: the approve / reject buttons of a notice in Slack.
//! Each request must carry Slack's v0 signature over its timestamp and exact body,
//! made with the app's signing secret, and be at most five minutes old; anything else
//! is a 401 before the body is even read as a payload. The button's value is the
//! decision token; the Slack user must be the one the approver linked. The message's
//! comment box comes back in the press's `state`: a rejection takes its reason from
//! there, an approval an optional note.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use vigilo_app::services::links::{LinkOutcome, Via};
use vigilo_app::RequestInfo;
use vigilo_domain::locale::Locale;
use vigilo_domain::notice::{CHAT_COMMENT_ACTION, CHAT_COMMENT_BLOCK};
use vigilo_render::{chat_line, error_text, not_recorded_text, recorded_text, refused_text};

use crate::error::{ApiError, ErrorEnvelope};
use crate::AppState;

/// How far a request's timestamp may be from now.
pub const SLACK_WINDOW_SECS: i64 = 300;

/// Checks Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`,
/// compared in constant time, with the timestamp within five minutes of `now`.
pub fn verify_slack(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| "X-Slack-Request-Timestamp is not a number")?;
    if (now - ts).abs() > SLACK_WINDOW_SECS {
        return Err("the request is older than five minutes (or from the future)");
    }
    let hex_sig = signature.trim().strip_prefix("v0=").ok_or("X-Slack-Signature is not a v0 signature")?;
    let sig = hex::decode(hex_sig).map_err(|_| "X-Slack-Signature is not hex")?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| "unusable signing secret")?;
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| "the signature does not match")
}

/// Slack's interactive request: `payload` is the action as JSON text.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Form {
    payload: String,
}

/// What the presser sees.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SlackAnswer {
    #[schema(example = "ephemeral")]
    response_type: String,
    replace_original: bool,
    text: String,
}

/// Slack's answer shape: a message only the presser sees. Its text is Slack markup,
/// rendered with whatever it quotes already escaped.
fn say(text: &str) -> Response {
    let text = text.trim_end();
    Json(json!({"response_type": "ephemeral", "replace_original": false, "text": text})).into_response()
}

/// A press of a notice's approve or reject button in Slack.
#[utoipa::path(post, path = "/chat/slack/actions", operation_id = "SlackActions", security(()),
    params(
        ("X-Slack-Request-Timestamp" = String, Header, description = "Unix seconds, at most five minutes old"),
        ("X-Slack-Signature" = String, Header, description = "`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`"),
    ),
    request_body(content = Form, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = SlackAnswer, description = "An ephemeral answer: recorded, or why not"),
        (status = 401, body = ErrorEnvelope, description = "unauthenticated: a bad or stale signature, or no signing secret"),
    ))]
pub async fn actions(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let Some(secret) = s.slack_secret.as_deref() else {
        return Err(ApiError::Unauthenticated("Slack actions are not configured (VIGILO_SLACK_SIGNING_SECRET)".into()));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let now = s.app.clock.now().as_second();
    verify_slack(secret, &header("x-slack-request-timestamp"), &header("x-slack-signature"), &body, now)
        .map_err(|m| ApiError::Unauthenticated(m.to_owned()))?;
    let form: Form =
        serde_urlencoded::from_bytes(&body).map_err(|e| ApiError::BadRequest(format!("unreadable form: {e}")))?;
    let payload: Value =
        serde_json::from_str(&form.payload).map_err(|e| ApiError::BadRequest(format!("unreadable payload: {e}")))?;
    let user = payload["user"]["id"].as_str().unwrap_or_default().to_owned();
    let Some(action) = payload["actions"].as_array().and_then(|a| a.first()) else {
        return Ok(say(&chat_line("nothing", Locale::En)));
    };
    let (decision, token) =
        (action["action_id"].as_str().unwrap_or_default(), action["value"].as_str().unwrap_or_default());
    if decision == "open" {
        let locale = s.app.locale_of(token).await.unwrap_or_default();
        return Ok(say(&chat_line("opening", locale)));
    }
    let comment = payload["state"]["values"][CHAT_COMMENT_BLOCK][CHAT_COMMENT_ACTION]["value"]
        .as_str()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let request = RequestInfo {
        request_id: header_opt(&headers, "x-request-id"),
        user_agent: header_opt(&headers, "user-agent"),
        channel: Some("slack".into()),
        ..RequestInfo::default()
    };
    let via = Via { channel: "slack".into(), request, slack_user: Some(user), ..Via::default() };
    let outcome = s.app.decide_by_link(token, decision, comment, &via).await;
    // Answers read in the workspace's language, like its notices.
    let locale = s.app.locale_of(token).await.unwrap_or_default();
    Ok(match outcome {
        Ok(LinkOutcome::Decided { change, decision }) => {
            say(&recorded_text(&decision, change.number, change.status.as_str(), locale))
        }
        Ok(LinkOutcome::Refused(r)) => say(&refused_text(r, locale)),
        Err(e) => {
            let e = ApiError::from(e);
            let (status, code, _) = e.parts();
            if !status.is_client_error() {
                return Err(e);
            }
            // In the workspace's language: the error's own message is English.
            say(&not_recorded_text(&error_text(code, locale), locale))
        }
    })
}

fn header_opt(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], ts: i64, body: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn slack_signatures_are_checked_with_their_window() {
        let (secret, body, now) = (b"8f742231b10e8888abcd99yyyzzz85a5", "payload=%7B%7D", 1_531_420_618);
        let good = sign(secret, now, body);
        assert_eq!(verify_slack(secret, &now.to_string(), &good, body.as_bytes(), now), Ok(()));
        assert!(verify_slack(secret, &now.to_string(), &good, b"payload=%7B%22x%22%7D", now).is_err(), "body changed");
        assert!(verify_slack(b"another secret", &now.to_string(), &good, body.as_bytes(), now).is_err());
        assert!(verify_slack(secret, &now.to_string(), &good, body.as_bytes(), now + 301).is_err(), "stale");
        assert!(verify_slack(secret, &now.to_string(), &good, body.as_bytes(), now + 300).is_ok());
        let old = sign(secret, now - 600, body);
        assert!(verify_slack(secret, &(now - 600).to_string(), &old, body.as_bytes(), now).is_err(), "replayed");
        for bad in ["", "v1=00", "v0=zz", "abc"] {
            assert!(verify_slack(secret, &now.to_string(), bad, body.as_bytes(), now).is_err(), "{bad}");
        }
        assert!(verify_slack(secret, "soon", &good, body.as_bytes(), now).is_err());
    }
}
