//! A notice as an email (plain text and HTML saying the same) and as a chat message
//! (Slack Block Kit) with approve / reject buttons when it asks for a decision.

use serde_json::{json, Map, Value};
use vigilo_domain::notice::{Notice, NoticeKind, CHAT_COMMENT_ACTION, CHAT_COMMENT_BLOCK};
use vigilo_domain::time::zone;

use crate::context::{Facts, Target};
use crate::engine::render;
use crate::terms::term;

/// A rendered email, before it becomes MIME.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailText {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The template of a notice kind.
fn template(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::ApprovalRequested => "approval_requested",
        NoticeKind::ChangeApproved => "change_approved",
        NoticeKind::ChangeRejected => "change_rejected",
        NoticeKind::ChangeRolledBack => "change_rolled_back",
        NoticeKind::ApprovalEscalated => "approval_escalated",
        NoticeKind::ChangeUnscheduled => "change_unscheduled",
        NoticeKind::FreezeUpcoming => "freeze_upcoming",
        NoticeKind::ChangeWatched => "change_watched",
        NoticeKind::ReviewDue => "review_due",
        NoticeKind::ReviewOverdue => "review_overdue",
    }
}

/// `[Acme] Approval requested: CHG-00007 Rotate the cert`.
pub fn subject(n: &Notice) -> String {
    let key = format!("headline.{}", n.kind.as_str());
    let headline = term(n.locale, &key);
    format!("[{}] {headline}: {} {}", n.workspace_name, n.change_number, n.change_title)
}

/// The values every template of a notice sees.
fn context(n: &Notice, target: Target) -> Value {
    let tz = zone(&n.timezone);
    let f = Facts { locale: n.locale, tz: &tz, target };
    let recipient = n.recipient_name.clone().unwrap_or_else(|| n.recipient.to_string());
    let mut ctx = Map::new();
    ctx.insert("lang".into(), json!(n.locale.as_str()));
    ctx.insert("subject".into(), f.text(&subject(n)));
    ctx.insert("headline".into(), json!(f.term(&format!("headline.{}", n.kind.as_str()))));
    ctx.insert("workspace".into(), f.text(&n.workspace_name));
    ctx.insert("number".into(), json!(n.change_number.to_string()));
    ctx.insert("title".into(), f.text(&n.change_title));
    ctx.insert("recipient".into(), f.text(&recipient));
    ctx.insert("change_type".into(), json!(f.term(&n.change_type)));
    ctx.insert("risk".into(), json!(f.term(&n.risk_level)));
    ctx.insert("window".into(), json!(f.window(n.planned_start, None)));
    if let Some(step) = &n.step_name {
        ctx.insert("step".into(), f.text(&f.term(step)));
    }
    if let Some(d) = &n.detail {
        ctx.insert("note".into(), f.text(d));
    }
    if let Some(l) = &n.links {
        ctx.insert(
            "links".into(),
            json!({
                "page_url": l.page_url,
                "approve_url": format!("{}?decision=approve", l.page_url),
                "reject_url": format!("{}?decision=reject", l.page_url),
                "reply": l.reply_to.is_some(),
                "expires": f.when(l.expires_at),
            }),
        );
    }
    if let Some(d) = &n.details {
        f.details(&mut ctx, d, n.planned_start);
    }
    Value::Object(ctx)
}

/// The email: plain text and HTML saying the same, in the notice's language.
pub fn email(n: &Notice) -> EmailText {
    let name = template(n.kind);
    EmailText {
        subject: subject(n),
        text: render(n.locale, &format!("email/{name}.txt"), context(n, Target::Text)),
        html: render(n.locale, &format!("email/{name}.html"), context(n, Target::Html)),
    }
}

/// The chat message (Slack Block Kit shape). When the notice asks for a decision it
/// carries a comment box (block `vigilo_comment`, whose text comes back in the button
/// press's `state`, so a rejection can give its reason) and approve / reject buttons
/// (block `vigilo_decision`) whose value is the decision token.
pub fn chat(n: &Notice) -> Value {
    let summary = render(n.locale, &format!("chat/{}.txt", template(n.kind)), context(n, Target::Slack));
    let summary = summary.trim_end().to_owned();
    let label = |k: &str| term(n.locale, k).into_owned();
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": summary}})];
    if let Some(l) = &n.links {
        blocks.push(json!({"type": "input", "block_id": CHAT_COMMENT_BLOCK, "optional": true,
            "label": {"type": "plain_text", "text": label("label.comment")},
            "element": {"type": "plain_text_input", "action_id": CHAT_COMMENT_ACTION, "multiline": true,
                        "max_length": 3000}}));
        blocks.push(json!({"type": "actions", "block_id": "vigilo_decision", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": l.token,
             "text": {"type": "plain_text", "text": label("label.approve")}},
            {"type": "button", "action_id": "reject", "style": "danger", "value": l.token,
             "text": {"type": "plain_text", "text": label("label.reject")}},
            {"type": "button", "action_id": "open", "url": l.page_url,
             "text": {"type": "plain_text", "text": label("label.open")}},
        ]}));
    }
    json!({
        "kind": n.kind,
        "workspace_id": n.workspace_id,
        "change_number": n.change_number,
        "recipient": n.recipient,
        "text": summary,
        "blocks": blocks,
    })
}
