//! Email replies: an approver answers a notice with `approve` or `reject` on the
//! first line. The reply is bound to its decision token by the address it was sent to
//! (`r+{token}@...`), must pass the receiving service's SPF, DKIM and DMARC checks, and
//! must come from the approver the token was issued to. Quoted text is ignored.

use mail_parser::{Address, MessageParser};
use serde::Serialize;
use vigilo_domain::link::Refusal;
use vigilo_domain::locale::Locale;

use crate::actor::RequestInfo;
use crate::error::AppResult;
use crate::services::links::{LinkOutcome, Via};
use crate::Vigilo;

/// The mail checks as the receiving service reported them (`PASS`, `FAIL`, `GRAY`, ...),
/// and the domains they were checked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    pub spf: Option<String>,
    pub dkim: Option<String>,
    pub dmarc: Option<String>,
    /// The `From` domain DMARC was evaluated for (`dmarc=pass header.from=...`).
    pub dmarc_from: Option<String>,
    /// The domains of the DKIM signatures that passed (`dkim=pass header.d=...`).
    pub dkim_domains: Vec<String>,
    /// The verdicts come from the receiving service itself (SES's receipt), which
    /// evaluates DMARC for the message's one `From` domain, not from a header.
    pub from_receiver: bool,
}

/// Drops RFC 5322 comments (`(...)`, nested) from a header value.
fn without_comments(value: &str) -> String {
    let mut depth = 0usize;
    value
        .chars()
        .filter(|c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

/// Whether `domain` is `from` or a parent of it (DMARC's relaxed alignment, without
/// the public suffix list: a signature of `example.com` aligns `mail.example.com`).
fn aligned(domain: &str, from: &str) -> bool {
    let (d, f) = (domain.trim().trim_end_matches('.').to_ascii_lowercase(), from.trim().to_ascii_lowercase());
    !d.is_empty() && d.contains('.') && (f == d || f.ends_with(&format!(".{d}")))
}

impl Verdicts {
    /// Reads the receiving service's `Authentication-Results` header (RFC 8601:
    /// `authserv-id; spf=pass ...; dkim=pass header.d=...; dmarc=pass header.from=...`).
    pub fn from_header(value: &str) -> Verdicts {
        let mut v = Verdicts::default();
        for result in without_comments(value).split(';').skip(1) {
            let Some((method, verdict)) = result.split_whitespace().next().and_then(|t| t.split_once('=')) else {
                continue;
            };
            let verdict = verdict.to_ascii_uppercase();
            let prop = |name: &str| {
                result.split_whitespace().find_map(|t| {
                    let (k, val) = t.split_once('=')?;
                    k.eq_ignore_ascii_case(name).then(|| val.trim_matches('"').to_owned())
                })
            };
            match method.to_ascii_lowercase().as_str() {
                "spf" if v.spf.is_none() => v.spf = Some(verdict),
                "dkim" => {
                    if verdict == "PASS" {
                        let domain = prop("header.d")
                            .or_else(|| prop("header.i").map(|i| i.rsplit('@').next().unwrap_or_default().to_owned()));
                        v.dkim_domains.extend(domain);
                    }
                    // One passing signature is enough; keep the best verdict seen.
                    if v.dkim.as_deref() != Some("PASS") {
                        v.dkim = Some(verdict);
                    }
                }
                "dmarc" if v.dmarc.is_none() => {
                    v.dmarc = Some(verdict);
                    v.dmarc_from = prop("header.from");
                }
                _ => {}
            }
        }
        v
    }

    /// SES's receipt verdicts (`spfVerdict`, `dkimVerdict`, `dmarcVerdict`).
    pub fn from_receiver(spf: Option<String>, dkim: Option<String>, dmarc: Option<String>) -> Verdicts {
        Verdicts { spf, dkim, dmarc, from_receiver: true, ..Verdicts::default() }
    }

    /// DKIM and SPF must pass, and the message must be aligned with the domain of its
    /// `From` address: DMARC passed for exactly that domain (as the header names it,
    /// or as the receiving service evaluated it), or, where the domain publishes no
    /// DMARC policy (`GRAY`, `NONE`), a passing DKIM signature of that domain. SPF and
    /// DKIM alone prove only that some domain sent the message, not that `From` is
    /// true. Anything missing fails.
    pub fn pass(&self, from_domain: &str) -> bool {
        let is = |v: &Option<String>, ok: &[&str]| v.as_deref().is_some_and(|v| ok.contains(&v));
        if !(is(&self.dkim, &["PASS"]) && is(&self.spf, &["PASS"])) {
            return false;
        }
        if is(&self.dmarc, &["PASS"]) {
            return match &self.dmarc_from {
                Some(d) => d.trim().eq_ignore_ascii_case(from_domain.trim()),
                None => self.from_receiver,
            };
        }
        is(&self.dmarc, &["GRAY", "NONE"]) && self.dkim_domains.iter().any(|d| aligned(d, from_domain))
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

/// The decision a word on a reply's first line stands for: `approve`, `approved`,
/// `reject`, `rejected` in any case, and in German workspaces also `genehmigt` and
/// `abgelehnt`. Nothing else: not a prefix (`approvedly`), not a question
/// (`approved?`).
fn decision_word(word: &str, locale: Locale) -> Option<&'static str> {
    let w = word.to_lowercase();
    match w.as_str() {
        "approve" | "approved" => Some("approve"),
        "reject" | "rejected" => Some("reject"),
        "genehmigt" if locale == Locale::De => Some("approve"),
        "abgelehnt" if locale == Locale::De => Some("reject"),
        _ => None,
    }
}

/// Reads the decision from the first non-empty line, and the comment from what
/// follows it, up to the quoted message. The first word must be a whole decision word
/// (see [`decision_word`]), alone or followed by `.`, `!`, `:`, `,` or `;`; a comment
/// may follow on the same line (after a space, optionally a dash) or the next ones.
pub fn read_reply(body: &str, locale: Locale) -> ReplyText {
    let mut lines =
        body.lines().map(str::trim_end).take_while(|l| !starts_quote(l)).skip_while(|l| l.trim().is_empty());
    let Some(first) = lines.next() else { return ReplyText { decision: None, comment: None } };
    let first = first.trim();
    let (token, rest) = first.split_once(char::is_whitespace).unwrap_or((first, ""));
    let word = token.strip_suffix(['.', '!', ':', ',', ';']).unwrap_or(token);
    let decision = decision_word(word, locale);
    let rest_of_first = rest.trim_start_matches([':', ',', '.', '-', '!', ' ', '\t']).trim();
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
    /// The language of the workspace a token's grant belongs to (`en` when it names
    /// none: its use is refused anyway).
    pub async fn locale_of(&self, token: &str) -> AppResult<Locale> {
        let Some((grant, _)) = self.grant_of(token).await? else { return Ok(Locale::En) };
        let ws: Option<vigilo_domain::workspace::Workspace> =
            crate::services::records::load(&*self.table, &crate::keys::workspace(&grant.workspace_id)).await?;
        Ok(ws.map_or(Locale::En, |w| w.locale))
    }

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
        // One `From` header holding one address: with two, a check of one and a display
        // of the other would let Mallory answer as Bob.
        let from_headers = message.header_values("From").count();
        let from_addresses = message.from().map_or(0, |a| a.iter().count());
        let sender = message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_owned);
        let mut via = Via {
            channel: "email".into(),
            request: RequestInfo { channel: Some("email".into()), ..request },
            sender,
            ..Via::default()
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
        let from_domain = via.sender.as_deref().and_then(|s| s.rsplit_once('@')).map(|(_, d)| d).unwrap_or_default();
        let verified = from_headers == 1 && from_addresses == 1 && verdicts.pass(from_domain);
        via.sender_verified = verified;
        // Counted per sender once the checks vouch for the address, else all together.
        if let Some(braked) = self.braked(&via) {
            return Ok(braked);
        }
        if from_headers != 1 || from_addresses != 1 {
            tracing::warn!(from_headers, from_addresses, "an inbound reply without exactly one From address");
            let grant = self.grant_of(&token).await?.map(|(g, _)| g);
            return self.refuse(grant.as_ref(), Refusal::WrongSender, &via, &token).await;
        }
        if !verified {
            let grant = self.grant_of(&token).await?.map(|(g, _)| g);
            return self.refuse(grant.as_ref(), Refusal::Unauthenticated, &via, &token).await;
        }
        let body = message.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
        let locale = self.locale_of(&token).await?;
        let reply = read_reply(&body, locale);
        let decision = reply.decision.unwrap_or("");
        self.decide_by_link(&token, decision, reply.comment, &via).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_decides_and_quoted_text_is_ignored() {
        let r = read_reply(
            "\n\nApproved - go ahead after 18:00\nthanks\n\nOn Mon, 1 Dec 2026, Vigilo wrote:\n> reject\n",
            Locale::En,
        );
        assert_eq!(r.decision, Some("approve"));
        assert_eq!(r.comment.as_deref(), Some("go ahead after 18:00\nthanks"));
        let r = read_reply("reject\nnot before the freeze ends\n-- \nBob", Locale::En);
        assert_eq!((r.decision, r.comment.as_deref()), (Some("reject"), Some("not before the freeze ends")));
        let r = read_reply("REJECTED: clashes with the freeze", Locale::En);
        assert_eq!((r.decision, r.comment.as_deref()), (Some("reject"), Some("clashes with the freeze")));
        assert_eq!(read_reply("> approve\n", Locale::En).decision, None);
        assert_eq!(read_reply("maybe later", Locale::En).decision, None);
        assert_eq!(read_reply("Genehmigt.", Locale::De).decision, Some("approve"));
        assert_eq!(read_reply("abgelehnt, zu riskant", Locale::De).decision, Some("reject"));
    }

    #[test]
    fn only_whole_decision_words_decide() {
        for (text, locale) in [
            ("approved?", Locale::En),
            ("approve?", Locale::En),
            ("approvedly", Locale::En),
            ("approver", Locale::En),
            ("rejection", Locale::En),
            ("disapprove", Locale::En),
            ("approve,but-not-now", Locale::En),
            ("Genehmigt", Locale::En),
            ("abgelehnt", Locale::En),
            ("freigeben", Locale::De),
            ("ablehnen", Locale::De),
            ("genehmigt?", Locale::De),
            ("yes", Locale::En),
        ] {
            assert_eq!(read_reply(text, locale).decision, None, "{text:?} in {locale:?}");
        }
        assert_eq!(read_reply("Approve!", Locale::En).decision, Some("approve"));
        assert_eq!(read_reply("approve\tok", Locale::De).decision, Some("approve"), "English words work everywhere");
    }

    #[test]
    fn every_mail_check_must_pass_for_the_from_domain() {
        let v = Verdicts::from_header("amazonses.com; spf=pass (spfCheck: domain of example.com); dkim=pass header.i=@example.com; dmarc=pass header.from=example.com");
        assert!(v.pass("example.com"));
        assert!(v.pass("EXAMPLE.com"));
        assert!(!v.pass("evil.example"), "DMARC passed for another domain than the From address's");
        assert!(
            !Verdicts::from_header("x; spf=pass; dkim=fail; dmarc=pass header.from=example.com").pass("example.com")
        );
        assert!(!Verdicts::from_header("x; spf=pass; dkim=pass; dmarc=pass").pass("example.com"), "no header.from");
        let gray = Verdicts::from_header("x; spf=pass; dkim=pass header.d=example.com; dmarc=gray");
        assert!(gray.pass("example.com") && gray.pass("mail.example.com"), "aligned DKIM without a DMARC policy");
        assert!(!gray.pass("evil.example") && !gray.pass("badexample.com"));
        assert!(!Verdicts::from_header("x; spf=pass; dkim=pass; dmarc=gray").pass("example.com"), "no signing domain");
        assert!(!Verdicts::from_header("x; spf=pass; dmarc=pass header.from=example.com").pass("example.com"));
        assert!(!Verdicts::from_header(
            "x; spf=pass; dkim=pass header.d=example.com; dmarc=fail header.from=example.com"
        )
        .pass("example.com"));
        assert!(!Verdicts::default().pass("example.com"));
        let ses = Verdicts::from_receiver(Some("PASS".into()), Some("PASS".into()), Some("PASS".into()));
        assert!(ses.pass("example.com"), "SES evaluates DMARC for the one From domain itself");
        let ses_gray = Verdicts::from_receiver(Some("PASS".into()), Some("PASS".into()), Some("GRAY".into()));
        assert!(!ses_gray.pass("example.com"), "without a policy SES's verdicts cannot show alignment");
    }
}
