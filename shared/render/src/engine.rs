//! The template engine, built once per process with every template compiled in (a
//! Lambda bootstrap carries no template files). `.html` templates escape every value
//! for HTML; `.txt` ones do not (plain text, or chat text whose values are escaped
//! for Slack before they get here).

use std::sync::OnceLock;

use minijinja::Environment;
use vigilo_domain::locale::Locale;

macro_rules! templates {
    ($($path:literal),+ $(,)?) => {
        /// Every template, by its path under `templates/`.
        pub(crate) const TEMPLATES: &[(&str, &str)] =
            &[$(($path, include_str!(concat!("../templates/", $path)))),+];
    };
}

templates!(
    "common/email.html",
    "common/page.html",
    "en/email/approval_requested.html",
    "en/email/approval_requested.txt",
    "en/email/approval_escalated.html",
    "en/email/approval_escalated.txt",
    "en/email/change_approved.html",
    "en/email/change_approved.txt",
    "en/email/change_rejected.html",
    "en/email/change_rejected.txt",
    "en/email/change_rolled_back.html",
    "en/email/change_rolled_back.txt",
    "en/email/change_unscheduled.html",
    "en/email/change_unscheduled.txt",
    "en/email/freeze_upcoming.html",
    "en/email/freeze_upcoming.txt",
    "en/email/cab_agenda.html",
    "en/email/audit_refused.html",
    "en/email/audit_refused.txt",
    "en/email/cab_agenda.txt",
    "en/email/change_watched.html",
    "en/email/change_watched.txt",
    "en/email/review_due.html",
    "en/email/review_due.txt",
    "en/email/review_overdue.html",
    "en/email/review_overdue.txt",
    "en/email/buttons.html",
    "en/email/details.html",
    "en/email/details.txt",
    "en/email/footer.html",
    "en/email/footer.txt",
    "en/page/confirm.html",
    "en/page/recorded.html",
    "en/page/refused.html",
    "en/page/not_recorded.html",
    "en/chat/approval_requested.txt",
    "en/chat/approval_escalated.txt",
    "en/chat/change_approved.txt",
    "en/chat/change_rejected.txt",
    "en/chat/change_rolled_back.txt",
    "en/chat/change_unscheduled.txt",
    "en/chat/freeze_upcoming.txt",
    "en/chat/change_watched.txt",
    "en/chat/review_due.txt",
    "en/chat/review_overdue.txt",
    "en/chat/recorded.txt",
    "en/chat/not_recorded.txt",
    "en/chat/nothing.txt",
    "en/chat/opening.txt",
    "de/email/approval_requested.html",
    "de/email/approval_requested.txt",
    "de/email/approval_escalated.html",
    "de/email/approval_escalated.txt",
    "de/email/change_approved.html",
    "de/email/change_approved.txt",
    "de/email/change_rejected.html",
    "de/email/change_rejected.txt",
    "de/email/change_rolled_back.html",
    "de/email/change_rolled_back.txt",
    "de/email/change_unscheduled.html",
    "de/email/change_unscheduled.txt",
    "de/email/freeze_upcoming.html",
    "de/email/freeze_upcoming.txt",
    "de/email/cab_agenda.html",
    "de/email/audit_refused.html",
    "de/email/audit_refused.txt",
    "de/email/cab_agenda.txt",
    "de/email/change_watched.html",
    "de/email/change_watched.txt",
    "de/email/review_due.html",
    "de/email/review_due.txt",
    "de/email/review_overdue.html",
    "de/email/review_overdue.txt",
    "de/email/buttons.html",
    "de/email/details.html",
    "de/email/details.txt",
    "de/email/footer.html",
    "de/email/footer.txt",
    "de/page/confirm.html",
    "de/page/recorded.html",
    "de/page/refused.html",
    "de/page/not_recorded.html",
    "de/chat/approval_requested.txt",
    "de/chat/approval_escalated.txt",
    "de/chat/change_approved.txt",
    "de/chat/change_rejected.txt",
    "de/chat/change_rolled_back.txt",
    "de/chat/change_unscheduled.txt",
    "de/chat/freeze_upcoming.txt",
    "de/chat/change_watched.txt",
    "de/chat/review_due.txt",
    "de/chat/review_overdue.txt",
    "de/chat/recorded.txt",
    "de/chat/not_recorded.txt",
    "de/chat/nothing.txt",
    "de/chat/opening.txt",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Keep a text's last newline: plain-text emails end with their footer line.
        let syntax = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build();
        env.set_syntax(syntax.expect("the default syntax with trailing newlines"));
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env
    })
}

/// Renders `{locale}/{name}` (or `name` itself for a `common/` one) with `ctx`. The
/// templates are compiled in and each is rendered by the tests in both languages, so
/// a failure here is a bug; it is logged into the text rather than taking the
/// request down.
pub(crate) fn render(locale: Locale, name: &str, ctx: serde_json::Value) -> String {
    let path = if name.starts_with("common/") { name.to_owned() } else { format!("{}/{name}", locale.as_str()) };
    let result =
        env().get_template(&path).and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))));
    result.unwrap_or_else(|e| format!("(template {path} failed: {e})"))
}
