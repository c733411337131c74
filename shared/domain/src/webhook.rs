//! Webhooks: an owner subscribes a URL to event types (audit actions such as
//! `change.approve`, or patterns like `change.*` and `*`). Each matching audit row is
//! delivered in order, signed with the subscription's secret and a timestamp, and
//! retried with exponential backoff until the receiver takes it.

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ids::UserId;
use crate::FieldErrors;

pub const EVENTS_MAX: usize = 50;
pub const URL_MAX: usize = 2_000;
pub const SECRET_MIN: usize = 16;
pub const SECRET_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Kept to sign deliveries; never shown again after creation.
    pub secret: String,
    /// The last audit row (`seq`) handled: delivered, or not matching.
    pub cursor: u64,
    /// Failed attempts at the row after the cursor.
    pub attempts: u32,
    pub next_at: Timestamp,
    pub last_error: Option<String>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub version: u64,
}

impl Webhook {
    pub fn wants(&self, action: &str) -> bool {
        self.events.iter().any(|p| matches(p, action))
    }

    /// The subscription as its owner sees it: the secret reduced to a hint.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        let tail: String = self.secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        v["secret"] = serde_json::json!(format!("…{tail}"));
        v["status"] = serde_json::json!(if self.attempts == 0 { "active" } else { "failing" });
        v
    }
}

/// `*` matches every action, `change.*` every action of `change`, anything else itself.
pub fn matches(pattern: &str, action: &str) -> bool {
    pattern == "*"
        || pattern == action
        || pattern.strip_suffix(".*").is_some_and(|noun| action.strip_prefix(noun).is_some_and(|r| r.starts_with('.')))
}

/// Waits after the n-th failed attempt: 1, 2, 4, ... minutes, at most 6 hours.
pub fn backoff(attempts: u32) -> SignedDuration {
    SignedDuration::from_mins(1i64 << attempts.saturating_sub(1).min(9)).min(SignedDuration::from_hours(6))
}

/// The `Vigilo-Signature` header of a delivery: `t={unix},v1={hex HMAC-SHA256 of
/// "{t}.{body}"}`. Receivers recompute it and refuse old timestamps.
pub fn signature(secret: &str, at: Timestamp, body: &[u8]) -> String {
    let t = at.as_second();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("any key"));
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
}

/// Whether a host may receive deliveries: never the link-local range (cloud metadata
/// services live there) or a bare `metadata` name.
fn host_allowed(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    !(h.starts_with("169.254.") || h.starts_with("fe80:") || h == "metadata" || h.starts_with("metadata."))
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn check_event(e: &str) -> bool {
    if e == "*" {
        return true;
    }
    let body = e.strip_suffix(".*").unwrap_or(e);
    !body.is_empty()
        && body.len() <= 100
        && body.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

impl RawWebhook {
    /// Checks the subscription: an `https` URL (plain `http` only to this machine, for
    /// local receivers), 1-50 event patterns, a secret of 16-200 characters.
    pub fn parse(self) -> Result<(String, Vec<String>, String), FieldErrors> {
        let mut e = FieldErrors::default();
        let url = self.url.unwrap_or_default().trim().to_owned();
        let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_only = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or(host)
        } else {
            host.split(':').next().unwrap_or(host)
        };
        let ok_scheme = scheme == "https" || (scheme == "http" && is_loopback(host_only));
        if url.len() > URL_MAX
            || !ok_scheme
            || host_only.is_empty()
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            e.add("url", "must be an https URL (http only to 127.0.0.1 or localhost)");
        } else if !host_allowed(host_only) {
            e.add("url", "may not point at a link-local or metadata address");
        }
        let mut events: Vec<String> = Vec::new();
        let raw_events = self.events.unwrap_or_default();
        if raw_events.len() > EVENTS_MAX {
            // Counted before any pattern is checked: a huge list costs nothing more.
            e.add("events", format!("required: 1 to {EVENTS_MAX} event types"));
        }
        for ev in raw_events.into_iter().take(EVENTS_MAX) {
            if !check_event(&ev) {
                e.add("events", "each must be an action such as change.approve, a pattern such as change.*, or *");
            } else if !events.contains(&ev) {
                events.push(ev);
            }
        }
        if events.is_empty() || events.len() > EVENTS_MAX {
            e.add("events", format!("required: 1 to {EVENTS_MAX} event types"));
        }
        let secret = self.secret.unwrap_or_default();
        if crate::text::check_line(&secret, SECRET_MIN, SECRET_MAX).is_err() {
            e.add("secret", format!("required: {SECRET_MIN} to {SECRET_MAX} characters on one line"));
        }
        if !e.is_empty() {
            return Err(e);
        }
        Ok((url, events, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_actions() {
        assert!(matches("*", "change.approve"));
        assert!(matches("change.*", "change.approve"));
        assert!(!matches("change.*", "changes.approve"));
        assert!(!matches("change.*", "approval_step.approve"));
        assert!(matches("change.approve", "change.approve"));
        assert!(!matches("change.approve", "change.approved"));
    }

    #[test]
    fn subscriptions_are_checked() {
        let raw = |url: &str, events: &[&str], secret: &str| RawWebhook {
            url: Some(url.into()),
            events: Some(events.iter().map(|s| s.to_string()).collect()),
            secret: Some(secret.into()),
        };
        assert!(raw("https://hooks.example.com/x", &["change.*"], "0123456789abcdef").parse().is_ok());
        assert!(raw("http://127.0.0.1:8080/x", &["*"], "0123456789abcdef").parse().is_ok());
        let e = raw("http://hooks.example.com/x", &["Change!"], "short").parse().unwrap_err();
        for f in ["url", "events", "secret"] {
            assert!(e.0.contains_key(f), "{f}");
        }
        assert!(raw("https://169.254.169.254/latest", &["*"], "0123456789abcdef").parse().is_err());
        assert!(raw("https://hooks.example.com", &[], "0123456789abcdef").parse().is_err());
    }

    #[test]
    fn signatures_cover_time_and_body_and_backoff_doubles() {
        let at: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let a = signature("0123456789abcdef", at, b"{}");
        assert!(a.starts_with(&format!("t={},v1=", at.as_second())));
        assert_ne!(a, signature("0123456789abcdef", at, b"{ }"));
        assert_ne!(a, signature("0123456789abcdef", at + SignedDuration::from_secs(1), b"{}"));
        assert_eq!(
            (backoff(1), backoff(2), backoff(3)),
            (SignedDuration::from_mins(1), SignedDuration::from_mins(2), SignedDuration::from_mins(4))
        );
        assert_eq!(backoff(30), SignedDuration::from_hours(6));
    }
}
