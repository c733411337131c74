//! The mail to a workspace's owners when its audit log could not be checkpointed, in
//! the workspace's language (plain text and HTML saying the same).

use serde_json::{json, Value};
use vigilo_domain::audit_alert::AuditAlert;
use vigilo_domain::time::zone;

use crate::context::{Facts, Target};
use crate::engine::render;
use crate::notice::EmailText;
use crate::terms::term;

/// `[Acme] Audit log not checkpointed: tail_truncated`.
pub fn audit_alert_subject(m: &AuditAlert) -> String {
    let headline = term(m.locale, "headline.audit.refused");
    format!("[{}] {headline}: {}", m.workspace_name, m.checkpoint_refused.reason)
}

fn context(m: &AuditAlert, target: Target) -> Value {
    let tz = zone("UTC");
    let f = Facts { locale: m.locale, tz: &tz, target };
    let recipient = m.recipient_name.clone().unwrap_or_else(|| m.recipient.to_string());
    let r = &m.checkpoint_refused;
    json!({
        "lang": m.locale.as_str(),
        "subject": f.text(&audit_alert_subject(m)),
        "headline": f.term("headline.audit.refused"),
        "workspace": f.text(&m.workspace_name),
        "recipient": f.text(&recipient),
        "number": f.text(&r.reason),
        "title": f.when(m.created_at),
        "reason": f.text(&r.reason),
        "seq": r.seq,
        "detail": f.text(&r.detail),
    })
}

pub fn audit_alert_email(m: &AuditAlert) -> EmailText {
    EmailText {
        subject: audit_alert_subject(m),
        text: render(m.locale, "email/audit_refused.txt", context(m, Target::Text)),
        html: render(m.locale, "email/audit_refused.html", context(m, Target::Html)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigilo_domain::audit_alert::RefusedCheckpoint;
    use vigilo_domain::locale::Locale;

    fn alert(locale: Locale) -> AuditAlert {
        AuditAlert {
            id: "a1".into(),
            workspace_id: "w".into(),
            workspace_name: "Acme <script>".into(),
            locale,
            recipient: vigilo_domain::ids::UserId::parse("alice").unwrap(),
            recipient_email: "alice@example.com".into(),
            recipient_name: Some("Alice".into()),
            checkpoint_refused: RefusedCheckpoint {
                reason: "tail_truncated".into(),
                seq: 7,
                detail: "covers 10 rows but only 6 are present <b>".into(),
            },
            created_at: "2026-12-07T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_alert_reads_in_both_languages_and_escapes_what_it_quotes() {
        for (locale, hello) in [(Locale::En, "Hello Alice"), (Locale::De, "Hallo Alice")] {
            let mail = audit_alert_email(&alert(locale));
            assert!(mail.subject.contains("tail_truncated"), "{}", mail.subject);
            for body in [&mail.text, &mail.html] {
                assert!(body.contains(hello) && body.contains("tail_truncated") && body.contains('7'), "{body}");
                assert!(!body.contains("template"), "{body}");
            }
            assert!(mail.text.contains("covers 10 rows"));
            assert!(!mail.html.contains("<b>") && !mail.html.contains("<script>"), "{}", mail.html);
        }
    }
}
