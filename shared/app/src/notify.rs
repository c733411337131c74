//! The outbound ports (mail, chat, webhooks) and how a notice becomes MIME. Notices are written to the
//! workspace's outbox in the same transaction as the event that caused them, then sent
//! by [`crate::Vigilo::deliver_pending`]: after the request, and again by the sweeps
//! for whatever failed. Sending is at least once; a notice is deleted once both its
//! email and its chat message are out.

use std::sync::Arc;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use serde_json::Value;
use vigilo_domain::notice::Notice;
use vigilo_domain::text;

/// An email ready to hand to a mail service.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEmail {
    /// The notice it renders, for file names and logs.
    pub id: String,
    pub from: String,
    pub to: String,
    /// The full message: headers, plain text and HTML.
    pub raw: Vec<u8>,
}

/// Sends email (SES on AWS; `.eml` files in the outbox folder locally).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Returns the service's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, String>;
}

/// Publishes chat messages (SNS on AWS, for the chat side to render; `.json` files in
/// the outbox folder locally).
#[async_trait]
pub trait ChatSink: Send + Sync {
    async fn publish(&self, id: &str, message: &Value) -> Result<String, String>;
}

/// Sends a webhook delivery: returns the receiver's HTTP status, or why none came back
/// (an HTTPS client in `vigilo-http` on both hosts).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String>;
}

/// Everything notices need, wired once at start-up.
#[derive(Clone)]
pub struct Delivery {
    pub mailer: Arc<dyn Mailer>,
    pub chat: Arc<dyn ChatSink>,
    /// The sender address of every email.
    pub from: String,
    /// Where decision links point: `{base_url}/a/{token}`.
    pub base_url: String,
    /// Replies go to `r+{token}@{reply_domain}` when set.
    pub reply_domain: Option<String>,
    /// Signs decision tokens.
    pub link_secret: Arc<Vec<u8>>,
}

/// Builds the MIME message of a notice: multipart/alternative, plain text and HTML.
///
/// Header values are handed to lettre as values (a mailbox, a subject), which it
/// encodes; nothing is pasted into a header line. The edge already refuses line breaks
/// in names and titles; they are flattened here as well, for anything stored before.
pub fn email(notice: &Notice, from: &str) -> Result<OutgoingEmail, String> {
    let to = Recipient { email: &notice.recipient_email, name: notice.recipient_name.as_deref() };
    let reply_to = notice.links.as_ref().and_then(|l| l.reply_to.as_deref());
    mime(&notice.id, from, to, reply_to, vigilo_render::email(notice))
}

/// The MIME message of the CAB's weekly agenda to one member of the `cab` group.
pub fn agenda_email(mail: &vigilo_domain::agenda::AgendaMail, from: &str) -> Result<OutgoingEmail, String> {
    let to = Recipient { email: &mail.recipient_email, name: mail.recipient_name.as_deref() };
    mime(&mail.id, from, to, None, vigilo_render::agenda_email(mail))
}

/// The MIME message telling an owner that a checkpoint was refused.
pub fn audit_alert_email(mail: &vigilo_domain::audit_alert::AuditAlert, from: &str) -> Result<OutgoingEmail, String> {
    let to = Recipient { email: &mail.recipient_email, name: mail.recipient_name.as_deref() };
    mime(&mail.id, from, to, None, vigilo_render::audit_alert_email(mail))
}

struct Recipient<'a> {
    email: &'a str,
    name: Option<&'a str>,
}

fn mime(
    id: &str,
    from: &str,
    recipient: Recipient<'_>,
    reply_to: Option<&str>,
    rendered: vigilo_render::EmailText,
) -> Result<OutgoingEmail, String> {
    let parse = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("the address {:?}: {e}", text::one_line(a)));
    let mut to = parse(recipient.email)?;
    to.name = recipient.name.map(text::one_line);
    let mut builder = lettre::Message::builder()
        .from(parse(from)?)
        .to(to)
        .subject(text::one_line(&rendered.subject))
        .message_id(Some(format!("<{id}@vigilo>")));
    if let Some(reply) = reply_to {
        builder = builder.reply_to(parse(reply)?);
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(rendered.text))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(rendered.html));
    let message = builder.multipart(body).map_err(|e| e.to_string())?;
    Ok(OutgoingEmail {
        id: id.to_owned(),
        from: from.to_owned(),
        to: recipient.email.to_owned(),
        raw: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigilo_domain::ids::{ChangeNumber, UserId};
    use vigilo_domain::notice::NoticeKind;

    fn notice(name: &str, title: &str) -> Notice {
        Notice {
            id: "n1".into(),
            kind: NoticeKind::ApprovalRequested,
            workspace_id: "w".into(),
            workspace_name: "Acme".into(),
            locale: vigilo_domain::locale::Locale::En,
            timezone: "UTC".into(),
            change_number: ChangeNumber::new(1).unwrap(),
            change_title: title.into(),
            change_type: "normal".into(),
            risk_level: "low".into(),
            planned_start: None,
            recipient: UserId::parse("bob").unwrap(),
            recipient_email: "bob@example.com".into(),
            recipient_name: Some(name.into()),
            step_name: None,
            detail: None,
            links: None,
            details: None,
            created_at: "2026-12-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn headers(raw: &[u8]) -> String {
        let text = String::from_utf8_lossy(raw);
        text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
    }

    #[test]
    fn names_and_titles_with_line_breaks_never_become_headers() {
        for (name, title) in
            [("Bob\nBcc: mallory@evil.example", "Rotate\r\nBcc: m@evil.example"), ("Bob\0X", "a\u{2028}b")]
        {
            let mail = email(&notice(name, title), "vigilo@example.com").unwrap();
            let head = headers(&mail.raw);
            assert!(!head.to_ascii_lowercase().contains("\r\nbcc:"), "{head}");
            assert!(!head.contains('\0'), "{head}");
        }
    }

    #[test]
    fn a_mailbox_that_cannot_be_written_is_an_error_not_a_panic() {
        let mut n = notice("Bob", "t");
        n.recipient_email = "bob@@example.com".into();
        assert!(email(&n, "vigilo@example.com").is_err());
    }
}
