//! Notices to people: what happened, to whom, and how it reads in the workspace's
//! language (English or German), as an email (plain text and HTML) and as a chat
//! message with approve / reject buttons. Rendering is pure; sending is the hosts' job.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::approval::{STEP_APPROVAL, STEP_EMERGENCY, STEP_HIGH_RISK};
use crate::ids::{ChangeNumber, UserId};

crate::change::wire_enum!(NoticeKind {
    ApprovalRequested = "approval.requested",
    ChangeApproved = "change.approved",
    ChangeRejected = "change.rejected",
    ChangeRolledBack = "change.rolled_back",
    ApprovalEscalated = "approval.escalated",
});

/// Where an approver can decide without opening the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionLinks {
    /// The signed, single-use token bound to the step and the approver.
    pub token: String,
    /// `GET` shows the confirmation page; the page posts the decision.
    pub page_url: String,
    /// Replying to this address with `approve` or `reject` decides too.
    pub reply_to: Option<String>,
    pub expires_at: Timestamp,
}

/// One notice to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    pub kind: NoticeKind,
    pub workspace_id: String,
    pub workspace_name: String,
    pub locale: String,
    /// The workspace's IANA time zone: times in notices read as its wall clock.
    #[serde(default = "utc")]
    pub timezone: String,
    pub change_number: ChangeNumber,
    pub change_title: String,
    pub change_type: String,
    pub risk_level: String,
    pub planned_start: Option<Timestamp>,
    pub recipient: UserId,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub step_name: Option<String>,
    /// A comment or reason that came with the event.
    pub detail: Option<String>,
    pub links: Option<DecisionLinks>,
    pub created_at: Timestamp,
}

fn utc() -> String {
    "UTC".into()
}

/// Where a chat message's comment box is, and where its text comes back in a
/// button press (`state.values.{block}.{action}.value`).
pub const CHAT_COMMENT_BLOCK: &str = "vigilo_comment";
pub const CHAT_COMMENT_ACTION: &str = "comment";

/// A rendered email, before it becomes MIME.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailText {
    pub subject: String,
    pub text: String,
    pub html: String,
}

struct Words {
    requested: &'static str,
    approved: &'static str,
    rejected: &'static str,
    rolled_back: &'static str,
    escalated: &'static str,
    hello: &'static str,
    asks: &'static str,
    step: &'static str,
    planned: &'static str,
    unplanned: &'static str,
    risk: &'static str,
    decide: &'static str,
    or_reply: &'static str,
    expires: &'static str,
    approve: &'static str,
    reject: &'static str,
    comment: &'static str,
    was_approved: &'static str,
    was_rejected: &'static str,
    was_rolled_back: &'static str,
    overdue: &'static str,
    waiting_on: &'static str,
    note: &'static str,
    footer: &'static str,
}

const EN: Words = Words {
    requested: "Approval requested",
    approved: "Approved",
    rejected: "Rejected",
    rolled_back: "Rolled back",
    escalated: "Approval overdue",
    hello: "Hello",
    asks: "your approval is requested for",
    step: "Step",
    planned: "Planned start",
    unplanned: "not planned yet",
    risk: "Risk",
    decide: "Decide here",
    or_reply: "Or reply to this email with \"approve\" or \"reject\" on the first line; a comment may follow.",
    expires: "This link works once and expires at",
    approve: "Approve",
    reject: "Reject",
    comment: "Comment (required to reject)",
    was_approved: "has been approved.",
    was_rejected: "has been rejected.",
    was_rolled_back: "has been rolled back.",
    overdue: "is waiting for a decision past its approval deadline.",
    waiting_on: "Waiting on",
    note: "Note",
    footer: "Sent by Vigilo change management.",
};

const DE: Words = Words {
    requested: "Freigabe angefordert",
    approved: "Freigegeben",
    rejected: "Abgelehnt",
    rolled_back: "Zurückgerollt",
    escalated: "Freigabe überfällig",
    hello: "Hallo",
    asks: "Ihre Freigabe wird angefordert für",
    step: "Schritt",
    planned: "Geplanter Beginn",
    unplanned: "noch nicht geplant",
    risk: "Risiko",
    decide: "Hier entscheiden",
    or_reply: "Oder antworten Sie auf diese E-Mail mit \"approve\" oder \"reject\" in der ersten Zeile; ein Kommentar darf folgen.",
    expires: "Dieser Link funktioniert einmal und läuft ab am",
    approve: "Freigeben",
    reject: "Ablehnen",
    comment: "Kommentar (zum Ablehnen erforderlich)",
    was_approved: "wurde freigegeben.",
    was_rejected: "wurde abgelehnt.",
    was_rolled_back: "wurde zurückgerollt.",
    overdue: "wartet über die Freigabefrist hinaus auf eine Entscheidung.",
    waiting_on: "Es fehlen Entscheidungen von",
    note: "Hinweis",
    footer: "Gesendet von Vigilo Change-Management.",
};

/// One of a text's renderings by locale: German for `de`, English for anything else.
pub(crate) fn in_locale<T>(locale: &str, en: &'static T, de: &'static T) -> &'static T {
    if locale == "de" {
        de
    } else {
        en
    }
}

fn words(locale: &str) -> &'static Words {
    in_locale(locale, &EN, &DE)
}

/// A change type, risk level, status, decision or built-in step name as the locale
/// says it; the word itself where the locale has no other (English, or a word not
/// listed, such as a policy's own stage names).
pub fn term<'a>(locale: &str, word: &'a str) -> &'a str {
    if locale != "de" {
        return word;
    }
    match word {
        "standard" => "Standard",
        "normal" => "Normal",
        "emergency" => "Notfall",
        "low" => "niedrig",
        "medium" => "mittel",
        "high" => "hoch",
        "review" => "in Prüfung",
        "approved" => "freigegeben",
        "rejected" => "abgelehnt",
        "draft" => "Entwurf",
        STEP_APPROVAL => "Freigabe",
        STEP_HIGH_RISK => "Freigabe bei hohem Risiko",
        STEP_EMERGENCY => "Notfall-Freigabe (ECAB)",
        "approve" => "Freigabe",
        "reject" => "Ablehnung",
        _ => word,
    }
}

/// `s` with each character `replace` names swapped for its replacement.
fn escape_with(s: &str, replace: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match replace(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    })
}

/// Escapes text for Slack's markup (`mrkdwn` and message `text`): `&`, `<` and `>`
/// are its control characters, so a title like `<!channel>` or
/// `<https://evil.example|Approve here>` shows as typed instead of pinging a channel or
/// hiding a link.
pub fn escape_slack(s: &str) -> String {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    })
}

/// Who an overdue step still waits on, in the locale's words.
pub fn waiting_on(locale: &str, users: &[&str]) -> String {
    format!("{}: {}", words(locale).waiting_on, users.join(", "))
}

impl Notice {
    fn headline(&self) -> &'static str {
        let w = words(&self.locale);
        match self.kind {
            NoticeKind::ApprovalRequested => w.requested,
            NoticeKind::ChangeApproved => w.approved,
            NoticeKind::ChangeRejected => w.rejected,
            NoticeKind::ChangeRolledBack => w.rolled_back,
            NoticeKind::ApprovalEscalated => w.escalated,
        }
    }

    /// What happened, in one sentence after the change's name.
    fn sentence(&self) -> &'static str {
        let w = words(&self.locale);
        match self.kind {
            NoticeKind::ApprovalRequested => "",
            NoticeKind::ChangeApproved => w.was_approved,
            NoticeKind::ChangeRejected => w.was_rejected,
            NoticeKind::ChangeRolledBack => w.was_rolled_back,
            NoticeKind::ApprovalEscalated => w.overdue,
        }
    }

    fn change_name(&self) -> String {
        format!("{} \"{}\"", self.change_number, self.change_title)
    }

    pub fn subject(&self) -> String {
        format!("[{}] {}: {} {}", self.workspace_name, self.headline(), self.change_number, self.change_title)
    }

    /// The email: plain text and HTML saying the same.
    pub fn email(&self) -> EmailText {
        let w = words(&self.locale);
        let name = self.recipient_name.clone().unwrap_or_else(|| self.recipient.to_string());
        let tz = crate::time::zone(&self.timezone);
        let when = |t| crate::time::readable(t, &tz, &self.locale);
        let planned = self.planned_start.map_or(w.unplanned.to_owned(), when);
        let mut text = format!("{} {name},\n\n", w.hello);
        let mut html = format!(
            "<!DOCTYPE html><html lang=\"{}\"><body><p>{} {},</p>",
            escape_html(&self.locale),
            w.hello,
            escape_html(&name)
        );
        if self.kind == NoticeKind::ApprovalRequested {
            text.push_str(&format!("{} {}.\n", w.asks, self.change_name()));
            html.push_str(&format!("<p>{} <strong>{}</strong>.</p>", w.asks, escape_html(&self.change_name())));
        } else {
            text.push_str(&format!("{} {}\n", self.change_name(), self.sentence()));
            html.push_str(&format!("<p><strong>{}</strong> {}</p>", escape_html(&self.change_name()), self.sentence()));
        }
        let mut facts = vec![(w.planned, planned), (w.risk, term(&self.locale, &self.risk_level).to_owned())];
        if let Some(step) = &self.step_name {
            facts.insert(0, (w.step, term(&self.locale, step).to_owned()));
        }
        html.push_str("<ul>");
        for (k, v) in &facts {
            text.push_str(&format!("{k}: {v}\n"));
            html.push_str(&format!("<li>{k}: {}</li>", escape_html(v)));
        }
        html.push_str("</ul>");
        if let Some(d) = &self.detail {
            text.push_str(&format!("{}: {d}\n", w.note));
            html.push_str(&format!("<p>{}: {}</p>", w.note, escape_html(d)));
        }
        if let Some(l) = &self.links {
            let expires = when(l.expires_at);
            text.push_str(&format!("\n{}: {}\n", w.decide, l.page_url));
            html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", escape_html(&l.page_url), w.decide));
            if l.reply_to.is_some() {
                text.push_str(&format!("{}\n", w.or_reply));
                html.push_str(&format!("<p>{}</p>", escape_html(w.or_reply)));
            }
            text.push_str(&format!("{} {expires}.\n", w.expires));
            html.push_str(&format!("<p>{} {expires}.</p>", w.expires));
        }
        text.push_str(&format!("\n-- \n{}\n", w.footer));
        html.push_str(&format!("<hr><p>{}</p></body></html>", w.footer));
        EmailText { subject: self.subject(), text, html }
    }

    /// A chat message (Slack Block Kit shape). When the notice asks for a decision it
    /// carries a comment box (block `vigilo_comment`, whose text comes back in the
    /// button press's `state`, so a rejection can give its reason) and approve / reject
    /// buttons (block `vigilo_decision`) whose value is the decision token.
    pub fn chat(&self) -> Value {
        let w = words(&self.locale);
        // Every user-supplied text in a chat message goes through `escape_slack`.
        let name = escape_slack(&self.change_name());
        let summary = if self.kind == NoticeKind::ApprovalRequested {
            format!("{}: {name}", self.headline())
        } else {
            format!("{name} {}", self.sentence())
        };
        let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": summary}})];
        if let Some(l) = &self.links {
            blocks.push(json!({"type": "input", "block_id": CHAT_COMMENT_BLOCK, "optional": true,
                "label": {"type": "plain_text", "text": w.comment},
                "element": {"type": "plain_text_input", "action_id": CHAT_COMMENT_ACTION, "multiline": true,
                            "max_length": 3000}}));
            blocks.push(json!({"type": "actions", "block_id": "vigilo_decision", "elements": [
                {"type": "button", "action_id": "approve", "style": "primary", "value": l.token,
                 "text": {"type": "plain_text", "text": w.approve}},
                {"type": "button", "action_id": "reject", "style": "danger", "value": l.token,
                 "text": {"type": "plain_text", "text": w.reject}},
                {"type": "button", "action_id": "open", "url": l.page_url,
                 "text": {"type": "plain_text", "text": w.decide}},
            ]}));
        }
        json!({
            "kind": self.kind,
            "workspace_id": self.workspace_id,
            "change_number": self.change_number,
            "recipient": self.recipient,
            "text": summary,
            "blocks": blocks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind, locale: &str) -> Notice {
        Notice {
            id: "n1".into(),
            kind,
            workspace_id: "w".into(),
            workspace_name: "Acme".into(),
            locale: locale.into(),
            timezone: "Europe/Berlin".into(),
            change_number: ChangeNumber::new(7).unwrap(),
            change_title: "Rotate <cert>".into(),
            change_type: "normal".into(),
            risk_level: "medium".into(),
            planned_start: Some("2026-12-03T09:00:00Z".parse().unwrap()),
            recipient: UserId::parse("bob").unwrap(),
            recipient_email: "bob@example.com".into(),
            recipient_name: Some("Bob".into()),
            step_name: Some("approval".into()),
            detail: None,
            links: Some(DecisionLinks {
                token: "tok".into(),
                page_url: "https://vigilo.example/a/tok".into(),
                reply_to: Some("r+tok@reply.example".into()),
                expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            }),
            created_at: "2026-11-22T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn emails_speak_the_workspace_language_and_escape_html() {
        let en = notice(NoticeKind::ApprovalRequested, "en").email();
        assert_eq!(en.subject, "[Acme] Approval requested: CHG-00007 Rotate <cert>");
        assert!(en.text.contains("https://vigilo.example/a/tok") && en.text.contains("reply to this email"));
        assert!(en.html.contains("Rotate &lt;cert&gt;") && !en.html.contains("<cert>"));
        assert!(en.html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(en.text.contains("Planned start: Thu 3 Dec 2026, 10:00 CET"), "{}", en.text);
        assert!(en.text.contains("expires at Tue 1 Dec 2026, 01:00 CET."), "{}", en.text);
        let de = notice(NoticeKind::ApprovalRequested, "de").email();
        assert!(de.subject.contains("Freigabe angefordert") && de.text.starts_with("Hallo Bob"));
        assert!(de.text.contains("Geplanter Beginn: 03.12.2026, 10:00 CET"), "{}", de.text);
        assert!(de.text.contains("Risiko: mittel") && en.text.contains("Risk: medium"));
        assert!(de.text.contains("Schritt: Freigabe\n") && en.text.contains("Step: approval\n"));
        let rolled = notice(NoticeKind::ChangeRolledBack, "de").email();
        assert!(rolled.text.contains("wurde zurückgerollt"));
    }

    #[test]
    fn chat_messages_carry_buttons_only_when_a_decision_is_asked() {
        let ask = notice(NoticeKind::ApprovalRequested, "en").chat();
        assert_eq!(ask["blocks"][1]["block_id"], CHAT_COMMENT_BLOCK);
        assert_eq!(ask["blocks"][1]["element"]["action_id"], CHAT_COMMENT_ACTION);
        let buttons = &ask["blocks"][2]["elements"];
        assert_eq!((buttons[0]["action_id"].as_str(), buttons[0]["value"].as_str()), (Some("approve"), Some("tok")));
        let mut done = notice(NoticeKind::ChangeApproved, "en");
        done.links = None;
        assert_eq!(done.chat()["blocks"].as_array().unwrap().len(), 1);
        assert_eq!(done.chat()["kind"], "change.approved");
    }

    #[test]
    fn who_a_step_waits_on_reads_in_the_locale() {
        assert_eq!(waiting_on("en", &["bob", "carol"]), "Waiting on: bob, carol");
        assert_eq!(waiting_on("de", &["bob"]), "Es fehlen Entscheidungen von: bob");
    }

    #[test]
    fn chat_messages_show_hostile_titles_as_typed() {
        let mut n = notice(NoticeKind::ApprovalRequested, "en");
        n.change_title = "<!channel> <https://evil.example|Approve here> & more".into();
        let chat = n.chat();
        for text in [&chat["text"], &chat["blocks"][0]["text"]["text"]] {
            let text = text.as_str().unwrap();
            assert!(!text.contains('<') && !text.contains('>'), "{text}");
            assert!(text.contains("&lt;!channel&gt; &lt;https://evil.example|Approve here&gt; &amp; more"), "{text}");
        }
    }
}
