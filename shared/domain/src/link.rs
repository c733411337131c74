//! Decision links: a token that lets one approver decide one approval step without
//! signing in, from a link, an email reply or a chat button. A token is a random id and
//! a MAC over what it grants, so it is short enough for an email address
//! (`r+{token}@...`), cannot be minted without the service's secret, and names the grant
//! the service keeps (which records its single use).

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ids::{ChangeNumber, UserId};

/// Bytes of randomness in a token's id, and of the MAC kept.
pub const ID_BYTES: usize = 10;
pub const MAC_BYTES: usize = 8;

/// What a token grants, as the service stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub workspace_id: String,
    pub change_number: ChangeNumber,
    pub step_id: String,
    pub approver: UserId,
    pub expires_at: Timestamp,
    /// Set when the token was used for a decision; a grant works once.
    pub used_at: Option<Timestamp>,
    pub version: u64,
}

/// Why a token did not decide anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Malformed, unknown, or its MAC does not match.
    Forged,
    Expired,
    Used,
    /// The step was decided or closed, or the approver no longer holds a seat on it.
    StepClosed,
    /// Used by someone other than the approver it was issued to.
    WrongSender,
    /// The message did not pass the mail checks (SPF, DKIM, DMARC).
    Unauthenticated,
    /// No decision could be read.
    NoDecision,
    /// A rejection without the comment that explains it.
    CommentRequired,
    /// The comment is not one the service keeps (too long, or control characters).
    CommentInvalid,
    /// Too many refused uses from this source lately; nothing was checked.
    RateLimited,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Forged => "forged",
            Refusal::Expired => "expired",
            Refusal::Used => "used",
            Refusal::StepClosed => "step_closed",
            Refusal::WrongSender => "wrong_sender",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::NoDecision => "no_decision",
            Refusal::CommentRequired => "comment_required",
            Refusal::CommentInvalid => "comment_invalid",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

fn mac(secret: &[u8], g: &Grant) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    let text = format!(
        "vigilo-link\n{}\n{}\n{}\n{}\n{}",
        g.id,
        g.workspace_id,
        g.step_id,
        g.approver,
        g.expires_at.as_second()
    );
    m.update(text.as_bytes());
    m
}

/// The token for a grant: `{id}-{mac}`, lowercase hex, 37 characters.
pub fn token(secret: &[u8], g: &Grant) -> String {
    let tag = mac(secret, g).finalize().into_bytes();
    format!("{}-{}", g.id, hex::encode(&tag[..MAC_BYTES]))
}

/// Splits a token into its id and MAC; `None` when it cannot be one of ours.
pub fn parse(token: &str) -> Option<(String, Vec<u8>)> {
    let token = token.trim().to_ascii_lowercase();
    let (id, tag) = token.split_once('-')?;
    if id.len() != ID_BYTES * 2 || tag.len() != MAC_BYTES * 2 || hex::decode(id).is_err() {
        return None;
    }
    Some((id.to_owned(), hex::decode(tag).ok()?))
}

/// Whether `tag` is the grant's MAC (compared in constant time).
pub fn verify(secret: &[u8], g: &Grant, tag: &[u8]) -> bool {
    mac(secret, g).verify_truncated_left(tag).is_ok()
}

/// Checks a presented token against its stored grant: MAC, expiry and single use.
pub fn check(secret: &[u8], g: &Grant, tag: &[u8], now: Timestamp) -> Result<(), Refusal> {
    if !verify(secret, g, tag) {
        return Err(Refusal::Forged);
    }
    if g.used_at.is_some() {
        return Err(Refusal::Used);
    }
    if now >= g.expires_at {
        return Err(Refusal::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            id: "00112233445566778899".into(),
            workspace_id: "w".into(),
            change_number: ChangeNumber::new(1).unwrap(),
            step_id: "s".into(),
            approver: UserId::parse("bob").unwrap(),
            expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            used_at: None,
            version: 1,
        }
    }

    #[test]
    fn tokens_round_trip_and_fit_an_email_address() {
        let t = token(b"secret", &grant());
        assert_eq!(t.len(), 37);
        let (id, tag) = parse(&t.to_ascii_uppercase()).unwrap();
        assert_eq!(id, grant().id);
        let now = "2026-11-30T00:00:00Z".parse().unwrap();
        assert_eq!(check(b"secret", &grant(), &tag, now), Ok(()));
        assert_eq!(check(b"other", &grant(), &tag, now), Err(Refusal::Forged));
        let mut moved = grant();
        moved.step_id = "another".into();
        assert_eq!(check(b"secret", &moved, &tag, now), Err(Refusal::Forged), "bound to its step");
        let later = "2026-12-01T00:00:00Z".parse().unwrap();
        assert_eq!(check(b"secret", &grant(), &tag, later), Err(Refusal::Expired));
        let mut used = grant();
        used.used_at = Some(now);
        assert_eq!(check(b"secret", &used, &tag, now), Err(Refusal::Used));
    }

    #[test]
    fn malformed_tokens_are_not_parsed() {
        for bad in ["", "-", "zz112233445566778899-0011223344556677", "0011-0011223344556677", "nodash"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
