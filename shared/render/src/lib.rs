//! How Vigilo speaks to people. Every notice (email in text and HTML, chat message),
//! the decision page and the chat answers come from a template per kind and language
//! under `templates/{en,de}/`, with the words outside sentences (terms, button labels,
//! refusals) in that language's `terms.txt`. Adding a language is adding a folder.
//!
//! The domain holds what is said (a `Notice`, a refusal); this crate says it. Values
//! are escaped by the template engine for HTML and by [`escape::slack`] for chat;
//! Markdown from authors is rendered and sanitised by [`markdown::to_html`].

mod agenda;
mod audit_alert;
mod context;
mod engine;
pub mod escape;
pub mod markdown;
pub mod notice;
pub mod page;
mod terms;

pub use agenda::{agenda_email, agenda_subject};
pub use audit_alert::{audit_alert_email, audit_alert_subject};
pub use notice::{chat, email, subject, EmailText};
pub use page::{Confirmation, Page};
pub use terms::term;
use vigilo_domain::link::Refusal;
use vigilo_domain::locale::Locale;

/// Why a link may not decide, in words for the person holding it.
pub fn explain(r: Refusal, locale: Locale) -> String {
    term(locale, &format!("refusal.{}", r.as_str())).into_owned()
}

/// What a decision recorded from chat answers, as Slack text in the locale.
pub fn recorded_text(decision: &str, number: vigilo_domain::ids::ChangeNumber, status: &str, locale: Locale) -> String {
    let ctx = serde_json::json!({
        "decision": term(locale, decision),
        "number": number.to_string(),
        "status": term(locale, status),
    });
    engine::render(locale, "chat/recorded.txt", ctx)
}

/// What a refused use from chat answers, as Slack text in the locale.
pub fn refused_text(r: Refusal, locale: Locale) -> String {
    not_recorded_text(&explain(r, locale), locale)
}

/// "Not recorded", and why (a sentence in the locale), as Slack text.
pub fn not_recorded_text(why: &str, locale: Locale) -> String {
    engine::render(locale, "chat/not_recorded.txt", serde_json::json!({ "why": escape::slack(why) }))
}

/// Why a decision from chat was refused, for an error `code` of the API: a sentence in
/// the locale (never the English message of the error itself).
pub fn error_text(code: &str, locale: Locale) -> String {
    let key = format!("error.{code}");
    match term(locale, &key) {
        t if t == key => term(locale, "error.other").into_owned(),
        t => t.into_owned(),
    }
}

/// A chat answer with nothing to decide (`nothing`) or one opening the page (`opening`).
pub fn chat_line(name: &str, locale: Locale) -> String {
    engine::render(locale, &format!("chat/{name}.txt"), serde_json::json!({}))
}

/// Who an overdue step still waits on, in the locale's words.
pub fn waiting_on(locale: Locale, users: &[&str]) -> String {
    format!("{}: {}", term(locale, "label.waiting_on"), users.join(", "))
}

/// What happened to a change on a followed asset, in the locale's words: `verb` is
/// the action (`submit`, `schedule`, `start`, `complete`, `fail`, `rollback`).
pub fn watched_event(locale: Locale, verb: &str) -> String {
    term(locale, &format!("watched.{verb}")).into_owned()
}

/// When a task is due, on the workspace's wall clock: `Due: Tue 15 Jan 2030, 10:00 CET`.
pub fn due_at(locale: Locale, timezone: &str, at: jiff::Timestamp) -> String {
    let tz = vigilo_domain::time::zone(timezone);
    format!("{}: {}", term(locale, "label.due"), vigilo_domain::time::readable(at, &tz, locale))
}

/// Freeze windows named for a notice, each with its span on the workspace's wall
/// clock: `Freeze "Year end": 24 Dec 2026, 18:00 – 2 Jan 2027, 06:00`.
pub fn freezes_named(locale: Locale, timezone: &str, windows: &[vigilo_domain::notice::FreezeBrief]) -> String {
    let tz = vigilo_domain::time::zone(timezone);
    let when = |t| vigilo_domain::time::readable(t, &tz, locale);
    let label = term(locale, "label.freeze");
    let (open, close) = match locale {
        Locale::De => ("\u{201e}", "\u{201c}"),
        _ => ("\u{201c}", "\u{201d}"),
    };
    windows
        .iter()
        .map(|f| format!("{label} {open}{}{close}: {} \u{2013} {}", f.name, when(f.start), when(f.end)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
