//! The page a decision link opens, in the reader's language: the confirmation with its
//! form (the change in full, and the decision an email button chose, if any), the
//! answer after a use, and the refusals. Whole HTML documents; the HTTP host adds the
//! security headers.

use jiff::Timestamp;
use serde_json::{json, Map, Value};
use vigilo_domain::ids::ChangeNumber;
use vigilo_domain::link::Refusal;
use vigilo_domain::locale::Locale;
use vigilo_domain::notice::ChangeDetails;
use vigilo_domain::time::zone;

use crate::context::{Facts, Target};
use crate::engine::render;
use crate::terms::term;

/// A page: its language and the whole document.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub lang: Locale,
    pub html: String,
}

/// What the confirmation page shows before anyone decides.
#[derive(Debug, Clone)]
pub struct Confirmation<'a> {
    pub approver: &'a str,
    pub number: ChangeNumber,
    pub title: &'a str,
    pub workspace: &'a str,
    /// The workspace's IANA zone: times read as its wall clock.
    pub timezone: &'a str,
    pub step: &'a str,
    pub change_type: &'a str,
    pub risk_level: &'a str,
    pub planned_start: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub details: &'a ChangeDetails,
    /// The decision an email button chose (`approve` or `reject`): shown as chosen,
    /// still recorded only when pressed.
    pub chosen: Option<&'a str>,
}

impl Confirmation<'_> {
    /// The page with its form; the form posts back to the same address.
    pub fn render(&self, locale: Locale) -> Page {
        let tz = zone(self.timezone);
        let f = Facts { locale, tz: &tz, target: Target::Html };
        let mut ctx = Map::new();
        ctx.insert("lang".into(), json!(locale.as_str()));
        ctx.insert("approver".into(), json!(self.approver));
        ctx.insert("number".into(), json!(self.number.to_string()));
        ctx.insert("title".into(), json!(self.title));
        ctx.insert("workspace".into(), json!(self.workspace));
        ctx.insert("step".into(), json!(f.term(self.step)));
        ctx.insert("change_type".into(), json!(f.term(self.change_type)));
        ctx.insert("risk".into(), json!(f.term(self.risk_level)));
        ctx.insert("expires".into(), json!(f.when(self.expires_at)));
        ctx.insert("chosen".into(), json!(self.chosen.filter(|c| matches!(*c, "approve" | "reject"))));
        f.details(&mut ctx, self.details, self.planned_start);
        Page { lang: locale, html: render(locale, "page/confirm.html", Value::Object(ctx)) }
    }
}

/// The page a refused use answers with.
pub fn refused(r: Refusal, locale: Locale) -> Page {
    let why = crate::explain(r, locale);
    Page { lang: locale, html: render(locale, "page/refused.html", json!({ "lang": locale.as_str(), "why": why })) }
}

/// The page after a decision was recorded.
pub fn recorded(decision: &str, number: ChangeNumber, status: &str, locale: Locale) -> Page {
    let ctx = json!({
        "lang": locale.as_str(),
        "decision": term(locale, decision),
        "number": number.to_string(),
        "status": term(locale, status),
    });
    Page { lang: locale, html: render(locale, "page/recorded.html", ctx) }
}

/// The page when nothing was recorded: a rejection without its comment, or a fault.
pub fn not_recorded(needs_comment: bool, locale: Locale) -> Page {
    let ctx = json!({ "lang": locale.as_str(), "needs_comment": needs_comment });
    Page { lang: locale, html: render(locale, "page/not_recorded.html", ctx) }
}
