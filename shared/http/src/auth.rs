//! Authentication: one extractor, two sources of verified claims.
//!
//! - Locally, `vigilo serve` verifies HS256 bearer tokens signed with the secret in its
//!   data folder ([`AuthMode::Hs256`]); `vigilo token` mints them with [`mint`].
//! - On AWS, API Gateway's JWT authorizer has already verified the token; the Lambda
//!   bootstrap copies the authorizer's claims into a [`GatewayClaims`] request
//!   extension and the router runs in [`AuthMode::Gateway`].
//!
//! The mode is fixed at start-up, so a local request can never pass as pre-verified.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use vigilo_app::{Actor, RequestInfo};
use vigilo_domain::ids::UserId;
use vigilo_domain::text;
use vigilo_domain::workspace::{check_email, NAME_MAX};

use crate::error::ApiError;
use crate::AppState;

pub enum AuthMode {
    /// Verify `Authorization: Bearer` tokens signed with this HS256 key.
    Hs256 { key: Vec<u8> },
    /// Trust the claims API Gateway's authorizer verified, found in [`GatewayClaims`].
    Gateway,
}

/// Claims verified by API Gateway's JWT authorizer, as its request context gives them
/// (`requestContext.authorizer.jwt.claims`: every value a string).
#[derive(Debug, Clone, Default)]
pub struct GatewayClaims(pub HashMap<String, String>);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    exp: u64,
    iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

/// How long a locally minted token lasts.
pub const TOKEN_TTL_SECS: u64 = 24 * 3600;

/// Mints a local HS256 token for `sub`, valid for 24 h from `now_secs`.
pub fn mint(key: &[u8], sub: &str, email: &str, name: Option<&str>, now_secs: u64) -> Result<String, String> {
    let claims = Claims {
        sub: sub.to_owned(),
        email: Some(email.to_owned()),
        name: name.map(str::to_owned),
        iat: now_secs,
        exp: now_secs + TOKEN_TTL_SECS,
        nbf: None,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key))
        .map_err(|e| e.to_string())
}

fn unauthenticated(msg: &str) -> ApiError {
    ApiError::Unauthenticated(msg.to_owned())
}

/// The caller from verified claims. `sub` must be a user id; `name` and `email` are
/// what the identity provider lets users type, so they pass the same checks as a
/// member's name and address (one line, no control characters, a mailbox) or are
/// left out: a name with a line break must never reach an email header.
fn actor(sub: &str, email: Option<String>, name: Option<String>, request: RequestInfo) -> Result<Actor, ApiError> {
    let user_id = UserId::parse(sub).map_err(|r| unauthenticated(&format!("the token's sub {r}")))?;
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).filter(|n| {
        let ok = text::check_line(n, 1, NAME_MAX).is_ok();
        if !ok {
            tracing::warn!(user = %user_id, "the token's name claim is not a single line of text; it is ignored");
        }
        ok
    });
    let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()).filter(|e| {
        let ok = check_email(e).is_ok();
        if !ok {
            tracing::warn!(user = %user_id, "the token's email claim is not an address; it is ignored");
        }
        ok
    });
    Ok(Actor { user_id, email, name, request })
}

/// The request facts audit rows record: request id, source IP, user agent.
pub(crate) fn request_info(parts: &Parts) -> RequestInfo {
    let header =
        |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(300).collect());
    RequestInfo {
        request_id: header("x-request-id"),
        ip: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()),
        user_agent: header("user-agent"),
        channel: None,
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("missing Authorization: Bearer token"))?
        .to_str()
        .map_err(|_| unauthenticated("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| unauthenticated("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthenticated("Authorization must be a Bearer token"));
    }
    Ok(token.trim())
}

/// Verifies a local token: HS256 with `key`, `exp` and `nbf` honoured with a small
/// leeway for clock skew (API Gateway's authorizer checks both on AWS).
fn verify_hs256(key: &[u8], token: &str) -> Result<Claims, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 30;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation)
        .map(|data| data.claims)
        .map_err(|e| unauthenticated(&format!("invalid token: {e}")))
}

/// The authenticated caller of a request.
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let info = request_info(parts);
        match state.auth.as_ref() {
            AuthMode::Hs256 { key } => {
                let c = verify_hs256(key, bearer(parts)?)?;
                actor(&c.sub, c.email, c.name, info).map(Caller)
            }
            AuthMode::Gateway => {
                let claims = parts
                    .extensions
                    .get::<GatewayClaims>()
                    .ok_or_else(|| unauthenticated("no verified claims from the authorizer"))?;
                let sub = claims.0.get("sub").ok_or_else(|| unauthenticated("the verified claims have no sub"))?;
                actor(sub, claims.0.get("email").cloned(), claims.0.get("name").cloned(), info).map(Caller)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_expire() {
        let key = b"0123456789abcdef0123456789abcdef";
        let now = jiff::Timestamp::now().as_second() as u64;
        let t = mint(key, "alice", "alice@example.com", Some("Alice"), now).unwrap();
        let v = Validation::new(Algorithm::HS256);
        let c = jsonwebtoken::decode::<Claims>(&t, &DecodingKey::from_secret(key), &v).unwrap().claims;
        assert_eq!(
            (c.sub.as_str(), c.email.as_deref(), c.exp - c.iat),
            ("alice", Some("alice@example.com"), TOKEN_TTL_SECS)
        );
        let old = mint(key, "alice", "a@example.com", None, now - 2 * TOKEN_TTL_SECS).unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&old, &DecodingKey::from_secret(key), &v).is_err());
        assert!(jsonwebtoken::decode::<Claims>(
            &t,
            &DecodingKey::from_secret(b"another-key-another-key-another!!"),
            &v
        )
        .is_err());
    }

    fn signed(key: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key)).unwrap()
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let key = b"0123456789abcdef0123456789abcdef";
        let now = jiff::Timestamp::now().as_second() as u64;
        let claims = |nbf: u64| serde_json::json!({"sub": "alice", "exp": now + 3600, "iat": now, "nbf": nbf});
        assert!(verify_hs256(key, &signed(key, claims(now + 600))).is_err(), "nbf ten minutes ahead");
        assert!(verify_hs256(key, &signed(key, claims(now + 10))).is_ok(), "within the leeway");
        assert!(verify_hs256(key, &signed(key, claims(now - 60))).is_ok());
        let no_nbf = serde_json::json!({"sub": "alice", "exp": now + 3600, "iat": now});
        assert!(verify_hs256(key, &signed(key, no_nbf)).is_ok());
    }

    #[test]
    fn claims_users_may_type_are_checked_like_member_fields() {
        let a = actor("alice", Some("a@x.com\r\nBcc: m@x.com".into()), Some("Bob\nX".into()), RequestInfo::default())
            .unwrap();
        assert_eq!((a.email, a.name), (None, None));
        let a = actor("alice", Some(" a@x.com ".into()), Some(" Alice ".into()), RequestInfo::default()).unwrap();
        assert_eq!((a.email.as_deref(), a.name.as_deref()), (Some("a@x.com"), Some("Alice")));
        assert!(actor("a\nb", None, None, RequestInfo::default()).is_err());
    }
}
