//! The values a template sees about a change, already in the reader's language: terms
//! translated, times on the workspace's wall clock, Markdown rendered and sanitised.
//! Templates only lay them out.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Map, Value};
use vigilo_domain::locale::Locale;
use vigilo_domain::notice::ChangeDetails;
use vigilo_domain::time::readable;

use crate::escape;
use crate::markdown;
use crate::terms::term;

/// How values are prepared for the target: HTML (escaped by the engine), plain text,
/// or Slack text (escaped here, as the engine does not know Slack's markup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Html,
    Text,
    Slack,
}

pub(crate) struct Facts<'a> {
    pub locale: Locale,
    pub tz: &'a TimeZone,
    pub target: Target,
}

impl Facts<'_> {
    /// A user-supplied text, ready for the target.
    pub fn text(&self, s: &str) -> Value {
        match self.target {
            Target::Slack => json!(escape::slack(s)),
            _ => json!(s),
        }
    }

    pub fn when(&self, t: Timestamp) -> String {
        readable(t, self.tz, self.locale)
    }

    pub fn term(&self, word: &str) -> String {
        term(self.locale, word).into_owned()
    }

    /// A conflicting change as the templates list it.
    pub fn conflict(&self, c: &vigilo_domain::notice::ConflictBrief) -> Value {
        json!({"number": c.number.to_string(), "title": self.text(&c.title), "status": self.term(&c.status),
               "shared_assets": self.text(&c.shared_assets.join(", ")), "accepted": c.accepted})
    }

    /// The planned window as people read it.
    pub fn window(&self, start: Option<Timestamp>, end: Option<Timestamp>) -> String {
        match (start, end) {
            (Some(s), Some(e)) => format!("{} \u{2013} {}", self.when(s), self.when(e)),
            (Some(s), None) => self.when(s),
            _ => self.term("label.unplanned"),
        }
    }

    /// What the details add to a template's values: author, priority, assets, window,
    /// the texts (Markdown as HTML for HTML targets), freezes, conflicts, decisions.
    pub fn details(&self, ctx: &mut Map<String, Value>, d: &ChangeDetails, start: Option<Timestamp>) {
        let author = d.author_name.clone().or_else(|| d.author.as_ref().map(|a| a.to_string()));
        if let Some(a) = author {
            ctx.insert("author".into(), self.text(&a));
        }
        ctx.insert("priority".into(), json!(self.term(&d.priority)));
        ctx.insert("window".into(), json!(self.window(start, d.planned_end)));
        if !d.affected_assets.is_empty() {
            ctx.insert("assets".into(), self.text(&d.affected_assets.join(", ")));
        }
        for (key, value) in [
            ("description", &d.description),
            ("implementation_plan", &d.implementation_plan),
            ("test_plan", &d.test_plan),
            ("rollback_plan", &d.rollback_plan),
        ] {
            if value.trim().is_empty() {
                continue;
            }
            ctx.insert(key.into(), self.text(value));
            if self.target == Target::Html {
                ctx.insert(format!("{key}_html"), json!(markdown::to_html(value)));
            }
        }
        let freezes: Vec<Value> = d
            .freezes
            .iter()
            .map(|f| {
                json!({"name": self.text(&f.name), "start": self.when(f.start), "end": self.when(f.end),
                       "allow_override": f.allow_override})
            })
            .collect();
        let conflicts: Vec<Value> = d.conflicts.iter().map(|c| self.conflict(c)).collect();
        let decisions: Vec<Value> = d
            .decisions
            .iter()
            .map(|x| {
                json!({"user": self.text(x.user.as_str()), "for": x.on_behalf_of.as_ref().map(|u| self.text(u.as_str())),
                       "verdict": self.term(&format!("verdict.{}", x.verdict.as_str())), "step": self.term(&x.step),
                       "comment": x.comment.as_deref().map(|c| self.text(c)), "at": self.when(x.at)})
            })
            .collect();
        if self.target == Target::Slack {
            // A chat message names them in a line each; the details are on the page.
            let names = |v: &[Value], key: &str| {
                v.iter().filter_map(|x| x[key].as_str().map(str::to_owned)).collect::<Vec<_>>().join(", ")
            };
            if !conflicts.is_empty() {
                ctx.insert("conflicts".into(), json!(names(&conflicts, "number")));
            }
            if !freezes.is_empty() {
                ctx.insert("freezes".into(), json!(names(&freezes, "name")));
            }
        } else {
            ctx.insert("freezes".into(), json!(freezes));
            ctx.insert("conflicts".into(), json!(conflicts));
            ctx.insert("decisions".into(), json!(decisions));
        }
    }
}
