//! The page a decision link opens, in the reader's language (English or German): the
//! confirmation with its form, the answer after a use, and the refusals. Pure HTML
//! bodies; the HTTP host wraps them in a document with its security headers.
//!
//! The email goes out in the workspace's language because nobody can know the reader's
//! yet; the page can: the browser's `Accept-Language` decides, then the workspace's.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::ids::ChangeNumber;
use crate::link::Refusal;
use crate::notice::{escape_html, in_locale, term};
use crate::time::readable;

/// A page's language, title and body (HTML, already escaped).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub lang: &'static str,
    pub title: String,
    pub body: String,
}

struct Words {
    lang: &'static str,
    decide_on: &'static str,
    requested: &'static str,
    in_workspace: &'static str,
    step: &'static str,
    type_and_risk: &'static str,
    /// How type and risk read together: `{type}` and `{risk}` are filled in.
    type_risk: &'static str,
    planned: &'static str,
    unplanned: &'static str,
    expires: &'static str,
    description: &'static str,
    none: &'static str,
    comment: &'static str,
    approve: &'static str,
    reject: &'static str,
    nothing_yet: &'static str,
    thanks: &'static str,
    recorded: &'static str,
    now: &'static str,
    not_recorded: &'static str,
    needs_comment: &'static str,
    try_again: &'static str,
    unusable: &'static str,
    refusals: [&'static str; 10],
}

const EN: Words = Words {
    lang: "en",
    decide_on: "Decide on",
    requested: "your decision is requested on",
    in_workspace: "in",
    step: "Step",
    type_and_risk: "Type and risk",
    type_risk: "{type}, {risk} risk",
    planned: "Planned start",
    unplanned: "not planned yet",
    expires: "Link expires",
    description: "Description",
    none: "(none)",
    comment: "Comment (required to reject)",
    approve: "Approve",
    reject: "Reject",
    nothing_yet: "Nothing is recorded until you press a button. The link works once.",
    thanks: "Thank you",
    recorded: "Your decision ({decision}) on {number} is recorded.",
    now: "The change is now",
    not_recorded: "Not recorded",
    needs_comment: "A rejection needs a comment. Go back, add one, and press Reject again.",
    try_again: "Something went wrong; nothing was recorded. Try again in a moment.",
    unusable: "This link cannot be used",
    refusals: [
        "This link is not valid. Open the latest email or message about this change.",
        "This link has expired. The change is still waiting; decide in Vigilo or use a newer link.",
        "This link has already been used. Each link decides once.",
        "This approval step is no longer open: it was decided, or the change moved on.",
        "This decision did not come from the approver the link was sent to.",
        "This message could not be verified as coming from its sender.",
        "Choose approve or reject.",
        "A rejection needs a comment that says why. Nothing was recorded.",
        "The comment could not be kept: it is too long or holds control characters. Nothing was recorded.",
        "Too many refused attempts came from here. Wait a few minutes and try again.",
    ],
};

const DE: Words = Words {
    lang: "de",
    decide_on: "Entscheidung zu",
    requested: "Ihre Entscheidung wird erbeten zu",
    in_workspace: "in",
    step: "Schritt",
    type_and_risk: "Art und Risiko",
    type_risk: "{type}, Risiko {risk}",
    planned: "Geplanter Beginn",
    unplanned: "noch nicht geplant",
    expires: "Link läuft ab",
    description: "Beschreibung",
    none: "(keine)",
    comment: "Kommentar (zum Ablehnen erforderlich)",
    approve: "Freigeben",
    reject: "Ablehnen",
    nothing_yet: "Erst ein Klick auf eine Schaltfläche zeichnet etwas auf. Der Link funktioniert einmal.",
    thanks: "Vielen Dank",
    recorded: "Ihre Entscheidung ({decision}) zu {number} ist aufgezeichnet.",
    now: "Die Änderung ist jetzt",
    not_recorded: "Nicht aufgezeichnet",
    needs_comment: "Eine Ablehnung braucht einen Kommentar. Gehen Sie zurück, ergänzen Sie ihn und klicken Sie erneut auf Ablehnen.",
    try_again: "Etwas ist schiefgegangen; nichts wurde aufgezeichnet. Versuchen Sie es gleich noch einmal.",
    unusable: "Dieser Link kann nicht verwendet werden",
    refusals: [
        "Dieser Link ist ungültig. Öffnen Sie die neueste E-Mail oder Nachricht zu dieser Änderung.",
        "Dieser Link ist abgelaufen. Die Änderung wartet weiter; entscheiden Sie in Vigilo oder mit einem neueren Link.",
        "Dieser Link wurde bereits verwendet. Jeder Link entscheidet einmal.",
        "Dieser Freigabeschritt ist nicht mehr offen: Er wurde entschieden, oder die Änderung ist weiter.",
        "Diese Entscheidung kam nicht von der Person, an die der Link ging.",
        "Diese Nachricht ließ sich nicht als von ihrem Absender stammend bestätigen.",
        "Wählen Sie Freigeben oder Ablehnen.",
        "Eine Ablehnung braucht einen Kommentar mit der Begründung. Nichts wurde aufgezeichnet.",
        "Der Kommentar ließ sich nicht übernehmen: Er ist zu lang oder enthält Steuerzeichen. Nichts wurde aufgezeichnet.",
        "Von hier kamen zu viele abgewiesene Versuche. Warten Sie einige Minuten und versuchen Sie es erneut.",
    ],
};

fn words(locale: &str) -> &'static Words {
    in_locale(locale, &EN, &DE)
}

/// The language to answer in: the first language of `Accept-Language` (by its
/// weights) that Vigilo speaks, else `fallback` (the workspace's, where known).
pub fn language<'a>(accept_language: Option<&str>, fallback: &'a str) -> &'a str {
    let mut ranges: Vec<(f32, &str)> = accept_language
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let weight =
                pieces.find_map(|p| p.trim().strip_prefix("q=")).map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (weight > 0.0).then_some((weight, tag))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, tag) in ranges {
        let primary = tag.split('-').next().unwrap_or_default();
        for known in crate::workspace::LOCALES {
            if primary.eq_ignore_ascii_case(known) {
                return known;
            }
        }
    }
    fallback
}

/// What the confirmation page shows before anyone decides.
#[derive(Debug, Clone)]
pub struct Confirmation<'a> {
    pub approver: &'a str,
    pub number: ChangeNumber,
    pub title: &'a str,
    pub workspace: &'a str,
    pub step: &'a str,
    pub change_type: &'a str,
    pub risk_level: &'a str,
    pub planned_start: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub description: &'a str,
    /// The workspace's zone: times read as its wall clock.
    pub timezone: &'a TimeZone,
}

impl Confirmation<'_> {
    /// The page with its form; the form posts back to the same address.
    pub fn render(&self, locale: &str) -> Page {
        let w = words(locale);
        let when = |t| readable(t, self.timezone, w.lang);
        let planned = self.planned_start.map_or(w.unplanned.to_owned(), when);
        let body = format!(
            "<p>{who}, {requested} <strong>{num} {title}</strong> {inw} {ws}.</p>\
             <dl><dt>{l_step}</dt><dd>{step}</dd><dt>{l_tr}</dt><dd>{type_risk}</dd>\
             <dt>{l_planned}</dt><dd>{planned}</dd><dt>{l_exp}</dt><dd>{exp}</dd></dl>\
             <h2>{l_desc}</h2><p>{desc}</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"lang\" value=\"{lang}\">\
             <p><label for=\"comment\">{l_comment}</label><br>\
             <textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"5000\"></textarea></p>\
             <p><button type=\"submit\" name=\"decision\" value=\"approve\">{approve}</button>\
             <button type=\"submit\" name=\"decision\" value=\"reject\">{reject}</button></p></form>\
             <p>{nothing}</p>",
            who = escape_html(self.approver),
            requested = w.requested,
            num = self.number,
            title = escape_html(self.title),
            inw = w.in_workspace,
            ws = escape_html(self.workspace),
            l_step = w.step,
            step = escape_html(term(w.lang, self.step)),
            l_tr = w.type_and_risk,
            type_risk = w
                .type_risk
                .replace("{type}", &escape_html(term(w.lang, self.change_type)))
                .replace("{risk}", &escape_html(term(w.lang, self.risk_level))),
            l_planned = w.planned,
            planned = escape_html(&planned),
            l_exp = w.expires,
            exp = escape_html(&when(self.expires_at)),
            l_desc = w.description,
            desc = escape_html(if self.description.is_empty() { w.none } else { self.description }),
            l_comment = w.comment,
            approve = w.approve,
            reject = w.reject,
            nothing = w.nothing_yet,
            lang = w.lang,
        );
        Page { lang: w.lang, title: format!("{} {}", w.decide_on, self.number), body }
    }
}

/// Why a link may not decide, in words for the person holding it.
pub fn explain(r: Refusal, locale: &str) -> &'static str {
    let i = match r {
        Refusal::Forged => 0,
        Refusal::Expired => 1,
        Refusal::Used => 2,
        Refusal::StepClosed => 3,
        Refusal::WrongSender => 4,
        Refusal::Unauthenticated => 5,
        Refusal::NoDecision => 6,
        Refusal::CommentRequired => 7,
        Refusal::CommentInvalid => 8,
        Refusal::RateLimited => 9,
    };
    words(locale).refusals[i]
}

/// The page a refused use answers with.
pub fn refused(r: Refusal, locale: &str) -> Page {
    let w = words(locale);
    Page {
        lang: w.lang,
        title: w.unusable.to_owned(),
        body: format!("<p role=\"alert\">{}</p>", escape_html(explain(r, locale))),
    }
}

/// What a decision recorded from chat answers, as plain text in the locale.
pub fn recorded_text(decision: &str, number: ChangeNumber, status: &str, locale: &str) -> String {
    let w = words(locale);
    let said = w.recorded.replace("{decision}", term(w.lang, decision)).replace("{number}", &number.to_string());
    format!("{said} {} {}.", w.now, term(w.lang, status))
}

/// What a refused use from chat answers, as plain text in the locale.
pub fn refused_text(r: Refusal, locale: &str) -> String {
    not_recorded_text(explain(r, locale), locale)
}

/// "Not recorded", and why, as plain text in the locale.
pub fn not_recorded_text(why: &str, locale: &str) -> String {
    format!("{}: {why}", words(locale).not_recorded)
}

/// The page after a decision was recorded.
pub fn recorded(decision: &str, number: ChangeNumber, status: &str, locale: &str) -> Page {
    let w = words(locale);
    let said =
        w.recorded.replace("{decision}", &escape_html(term(w.lang, decision))).replace("{number}", &number.to_string());
    Page {
        lang: w.lang,
        title: w.thanks.to_owned(),
        body: format!("<p role=\"status\">{said} {} {}.</p>", w.now, escape_html(term(w.lang, status))),
    }
}

/// The page when nothing was recorded: a rejection without its comment, or a fault.
pub fn not_recorded(needs_comment: bool, locale: &str) -> Page {
    let w = words(locale);
    let msg = if needs_comment { w.needs_comment } else { w.try_again };
    Page { lang: w.lang, title: w.not_recorded.to_owned(), body: format!("<p role=\"alert\">{msg}</p>") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmation(tz: &TimeZone) -> Confirmation<'_> {
        Confirmation {
            approver: "Bob <b>",
            number: ChangeNumber::new(7).unwrap(),
            title: "Rotate <cert>",
            workspace: "Acme",
            step: "CAB",
            change_type: "normal",
            risk_level: "high",
            planned_start: Some("2030-01-15T09:00:00Z".parse().unwrap()),
            expires_at: "2030-01-08T09:00:00Z".parse().unwrap(),
            description: "",
            timezone: tz,
        }
    }

    #[test]
    fn the_browser_language_wins_then_the_workspace() {
        assert_eq!(language(Some("de-DE,de;q=0.9,en;q=0.8"), "en"), "de");
        assert_eq!(language(Some("fr-FR, en;q=0.5, de;q=0.7"), "en"), "de");
        assert_eq!(language(Some("EN-gb"), "de"), "en");
        assert_eq!(language(Some("fr, *;q=0.1"), "de"), "de");
        assert_eq!(language(Some("de;q=0, en;q=0.2"), "de"), "en");
        assert_eq!(language(Some("de;q=abc,;;,q=,"), "en"), "en");
        assert_eq!(language(None, "de"), "de");
    }

    #[test]
    fn the_confirmation_reads_in_the_locale_and_the_workspace_zone_escaped() {
        let tz = crate::time::zone("Europe/Berlin");
        let en = confirmation(&tz).render("en");
        assert_eq!((en.lang, en.title.as_str()), ("en", "Decide on CHG-00007"));
        assert!(en.body.contains("Bob &lt;b&gt;, your decision is requested on <strong>CHG-00007 Rotate &lt;cert&gt;"));
        assert!(en.body.contains("<dd>Tue 15 Jan 2030, 10:00 CET</dd>") && en.body.contains("<p>(none)</p>"));
        let de = confirmation(&tz).render("de");
        assert_eq!((de.lang, de.title.as_str()), ("de", "Entscheidung zu CHG-00007"));
        assert!(de.body.contains("<dd>15.01.2030, 10:00 CET</dd>") && de.body.contains(">Ablehnen</button>"));
        assert!(de.body.contains("<dd>Normal, Risiko hoch</dd>") && en.body.contains("<dd>normal, high risk</dd>"));
        assert!(de.body.contains("name=\"decision\" value=\"approve\""), "the form's values stay the same");
        assert!(de.body.contains("<input type=\"hidden\" name=\"lang\" value=\"de\">"), "its answer reads the same");
    }

    #[test]
    fn every_refusal_is_explained_in_both_languages() {
        let all = [
            Refusal::Forged,
            Refusal::Expired,
            Refusal::Used,
            Refusal::StepClosed,
            Refusal::WrongSender,
            Refusal::Unauthenticated,
            Refusal::NoDecision,
            Refusal::CommentRequired,
            Refusal::CommentInvalid,
            Refusal::RateLimited,
        ];
        for r in all {
            assert_ne!(explain(r, "en"), explain(r, "de"), "{r:?}");
            assert_eq!(refused(r, "de").lang, "de");
        }
        assert!(explain(Refusal::Used, "en").contains("already been used"));
        let page = recorded("approve", ChangeNumber::new(7).unwrap(), "approved", "de");
        assert!(page.body.contains("Ihre Entscheidung (Freigabe) zu CHG-00007 ist aufgezeichnet."));
        assert!(page.body.contains("Die Änderung ist jetzt freigegeben."), "{}", page.body);
        assert!(not_recorded(true, "en").body.contains("needs a comment"));
        let n = ChangeNumber::new(7).unwrap();
        assert_eq!(
            recorded_text("approve", n, "approved", "de"),
            "Ihre Entscheidung (Freigabe) zu CHG-00007 ist aufgezeichnet. Die Änderung ist jetzt freigegeben."
        );
        assert!(refused_text(Refusal::Used, "de").starts_with("Nicht aufgezeichnet: Dieser Link wurde bereits"));
    }
}
