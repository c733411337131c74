//! Email replies: an approver answers a notice with `approve` or `reject` on the
//! first line. The reply is bound to its decision token by the address it was sent to
//! (`r+{token}@...`), must pass the receiving service's SPF, DKIM and DMARC checks, and
//! must come from the approver the token was issued to. Quoted text is ignored.

use mail_parser::{Address, MessageParser};
use serde::Serialize;
use vigilo_domain::link::Refusal;

use crate::actor::RequestInfo;
use crate::error::AppResult;
use crate::services::links::{LinkOutcome, Via};
use crate::Vigilo;

/// The mail checks as the receiving service reported them (`PASS`, `FAIL`, `GRAY`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    pub spf: Option<String>,
    pub dkim: Option<String>,
    pub dmarc: Option<String>,
}

impl Verdicts {
    /// Reads the receiving service's `Authentication-Results` header
    /// (`spf=pass ...; dkim=pass ...; dmarc=pass ...`).
    pub fn from_header(value: &str) -> Verdicts {
        let find = |name: &str| {
            value.split([';', ' ', '\t', '\r', '\n']).find_map(|part| {
                let (k, v) = part.trim().split_once('=')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_ascii_uppercase())
            })
        };
        Verdicts { spf: find("spf"), dkim: find("dkim"), dmarc: find("dmarc") }
    }

    /// DKIM and SPF must pass, and DMARC must pass where the domain publishes a policy
    /// (`GRAY`: none published). Anything missing fails.
    pub fn pass(&self) -> bool {
        let is = |v: &Option<String>, ok: &[&str]| v.as_deref().is_some_and(|v| ok.contains(&v));
        is(&self.dkim, &["PASS"]) && is(&self.spf, &["PASS"]) && is(&self.dmarc, &["PASS", "GRAY"])
    }
}

/// What a reply said: its decision word and the comment that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyText {
    pub decision: Option<&'static str>,
    pub comment: Option<String>,
}

/// Lines that start the quoted message a mail client appends.
fn starts_quote(line: &str) -> bool {
    let l = line.trim();
    l.starts_with('>')
        || l.starts_with("-----Original Message-----")
        || l.starts_with("________________________________")
        || (l.starts_with("On ") && l.ends_with("wrote:"))
        || (l.starts_with("Am ") && l.ends_with("schrieb:"))
        || l == "--"
        || l == "-- "
}

/// Reads the decision from the first non-empty line (`approve`, `approved`, `reject`,
/// `rejected`, and the German `genehmigt` / `abgelehnt`), and the comment from what
/// follows it, up to the quoted message.
pub fn read_reply(body: &str) -> ReplyText {
    let mut lines =
        body.lines().map(str::trim_end).take_while(|l| !starts_quote(l)).skip_while(|l| l.trim().is_empty());
    let Some(first) = lines.next() else { return ReplyText { decision: None, comment: None } };
    let first = first.trim();
    let word = first.chars().take_while(|c| c.is_alphabetic()).collect::<String>().to_lowercase();
    let decision = match word.as_str() {
        "approve" | "approved" | "genehmigt" | "freigeben" => Some("approve"),
        "reject" | "rejected" | "abgelehnt" | "ablehnen" => Some("reject"),
        _ => None,
    };
    let word_end = first.char_indices().find(|(_, c)| !c.is_alphabetic()).map_or(first.len(), |(i, _)| i);
    let rest_of_first = first[word_end..].trim_start_matches([':', ',', '.', '-', '!', ' ']).trim();
    let mut comment: Vec<&str> = Vec::new();
    if !rest_of_first.is_empty() {
        comment.push(rest_of_first);
    }
    comment.extend(lines);
    let text = comment.join("\n").trim().to_owned();
    ReplyText { decision, comment: (!text.is_empty()).then_some(text) }
}

/// The decision token in the address a reply was sent to: `r+{token}@...`.
fn token_of(addresses: &[Option<&Address<'_>>]) -> Option<String> {
    addresses.iter().flatten().flat_map(|a| a.iter()).find_map(|addr| {
        let (local, _) = addr.address()?.split_once('@')?;
        local.strip_prefix("r+").map(str::to_owned)
    })
}

impl Vigilo {
    /// Handles one inbound reply. `verdicts` are the receiving service's (from SES's
    /// event); without them, the message's own `Authentication-Results` header is read.
    pub async fn receive_reply(
        &self,
        raw: &[u8],
        verdicts: Option<Verdicts>,
        request: RequestInfo,
    ) -> AppResult<LinkOutcome> {
        let Some(message) = MessageParser::default().parse(raw) else {
            tracing::warn!("an inbound message could not be parsed");
            return Ok(LinkOutcome::Refused(Refusal::Forged));
        };
        let sender = message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_owned);
        let via = Via {
            channel: "email".into(),
            request: RequestInfo { channel: Some("email".into()), ..request },
            sender,
            slack_user: None,
        };
        let Some(token) = token_of(&[message.to(), message.cc(), message.bcc()]) else {
            tracing::warn!(sender = ?via.sender, "an inbound message without a decision address");
            return Ok(LinkOutcome::Refused(Refusal::Forged));
        };
        let verdicts = verdicts.unwrap_or_else(|| {
            message
                .header_values("Authentication-Results")
                .filter_map(|v| v.as_text())
                .next()
                .map(Verdicts::from_header)
                .unwrap_or_default()
        });
        if !verdicts.pass() {
            let grant = self.grant_of(&token).await?.map(|(g, _)| g);
            return self.refuse(grant.as_ref(), Refusal::Unauthenticated, &via, &token).await;
        }
        let body = message.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
        let reply = read_reply(&body);
        let decision = reply.decision.unwrap_or("");
        self.decide_by_link(&token, decision, reply.comment, &via).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_decides_and_quoted_text_is_ignored() {
        let r =
            read_reply("\n\nApproved - go ahead after 18:00\nthanks\n\nOn Mon, 1 Dec 2026, Vigilo wrote:\n> reject\n");
        assert_eq!(r.decision, Some("approve"));
        assert_eq!(r.comment.as_deref(), Some("go ahead after 18:00\nthanks"));
        let r = read_reply("reject\nnot before the freeze ends\n-- \nBob");
        assert_eq!((r.decision, r.comment.as_deref()), (Some("reject"), Some("not before the freeze ends")));
        assert_eq!(read_reply("> approve\n").decision, None);
        assert_eq!(read_reply("maybe later").decision, None);
        assert_eq!(read_reply("Genehmigt.").decision, Some("approve"));
    }

    #[test]
    fn every_mail_check_must_pass() {
        let v = Verdicts::from_header("amazonses.com; spf=pass (spfCheck: domain of example.com); dkim=pass header.i=@example.com; dmarc=pass header.from=example.com");
        assert!(v.pass());
        assert!(Verdicts::from_header("x; spf=pass; dkim=fail; dmarc=pass").pass().eq(&false));
        assert!(Verdicts::from_header("x; spf=pass; dkim=pass; dmarc=gray").pass());
        assert!(!Verdicts::from_header("x; spf=pass; dmarc=pass").pass(), "a missing check fails");
        assert!(!Verdicts::default().pass());
    }
}
