//! The CAB's weekly agenda as an email (plain text and HTML saying the same), in the
//! workspace's language: every normal change awaiting review with what the board weighs.

use serde_json::{json, Map, Value};
use vigilo_domain::agenda::AgendaMail;
use vigilo_domain::time::zone;

use crate::context::{Facts, Target};
use crate::engine::render;
use crate::markdown;
use crate::notice::EmailText;
use crate::terms::term;

/// `[Acme] CAB agenda 2026-W50: 3 awaiting review`.
pub fn agenda_subject(m: &AgendaMail) -> String {
    let headline = term(m.locale, "headline.cab.agenda");
    let waiting = term(m.locale, "label.cab.waiting");
    format!("[{}] {headline} {}: {} {waiting}", m.workspace_name, m.agenda.week, m.agenda.items.len())
}

fn context(m: &AgendaMail, target: Target) -> Value {
    let tz = zone(&m.agenda.timezone);
    let f = Facts { locale: m.locale, tz: &tz, target };
    let recipient = m.recipient_name.clone().unwrap_or_else(|| m.recipient.to_string());
    let last_day = m.agenda.ends_at - jiff::SignedDuration::from_secs(1);
    let day = |t| vigilo_domain::time::readable_date(t, &tz, m.locale);
    let items: Vec<Value> = m
        .agenda
        .items
        .iter()
        .map(|i| {
            let author = i.author_name.clone().unwrap_or_else(|| i.author.to_string());
            let waiting: Vec<String> = i
                .pending_approvers
                .iter()
                .map(|w| {
                    let who: Vec<&str> = w.approvers.iter().map(|u| u.as_str()).collect();
                    format!("{}: {}", f.term(&w.step), who.join(", "))
                })
                .collect();
            let mut item = Map::new();
            item.insert("number".into(), json!(i.number.to_string()));
            item.insert("title".into(), f.text(&i.title));
            item.insert("this_week".into(), json!(i.planned_this_week));
            item.insert("author".into(), f.text(&author));
            item.insert("submitted".into(), json!(i.submitted_at.map(|t| f.when(t))));
            item.insert("risk".into(), json!(f.term(&i.risk_level)));
            item.insert("score".into(), json!(i.risk_score));
            item.insert("priority".into(), json!(f.term(&i.priority)));
            item.insert("window".into(), json!(f.window(i.planned_start, i.planned_end)));
            item.insert("assets".into(), f.text(&i.affected_assets.join(", ")));
            item.insert("waiting".into(), f.text(&waiting.join("; ")));
            let conflicts: Vec<Value> = i.conflicts.iter().map(|c| f.conflict(c)).collect();
            item.insert("conflicts".into(), json!(conflicts));
            for (key, value) in [
                ("implementation_plan", &i.implementation_plan),
                ("test_plan", &i.test_plan),
                ("rollback_plan", &i.rollback_plan),
            ] {
                if value.trim().is_empty() {
                    continue;
                }
                item.insert(key.into(), f.text(value));
                if target == Target::Html {
                    item.insert(format!("{key}_html"), json!(markdown::to_html(value)));
                }
            }
            Value::Object(item)
        })
        .collect();
    json!({
        "lang": m.locale.as_str(),
        "subject": f.text(&agenda_subject(m)),
        "headline": f.term("headline.cab.agenda"),
        "workspace": f.text(&m.workspace_name),
        "recipient": f.text(&recipient),
        "number": m.agenda.week,
        "title": format!("{} \u{2013} {}", day(m.agenda.starts_at), day(last_day)),
        "week": m.agenda.week,
        "count": m.agenda.items.len(),
        "items": items,
    })
}

/// The agenda mail in its language.
pub fn agenda_email(m: &AgendaMail) -> EmailText {
    EmailText {
        subject: agenda_subject(m),
        text: render(m.locale, "email/cab_agenda.txt", context(m, Target::Text)),
        html: render(m.locale, "email/cab_agenda.html", context(m, Target::Html)),
    }
}
