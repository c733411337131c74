//! Every notice, page and chat answer in both languages: snapshots of what people get,
//! and the checks that hold the languages together (the same keys, no English in
//! German output, everything user-supplied escaped).

use jiff::Timestamp;
use vigilo_domain::approval::Verdict;
use vigilo_domain::ids::{ChangeNumber, UserId};
use vigilo_domain::link::Refusal;
use vigilo_domain::locale::Locale;
use vigilo_domain::notice::{
    ChangeDetails, ConflictBrief, DecisionBrief, DecisionLinks, FreezeBrief, Notice, NoticeKind,
};

use crate::page::{self, Confirmation};
use crate::{chat, email, engine, explain, recorded_text, refused_text, terms};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn details() -> ChangeDetails {
    ChangeDetails {
        author: Some(user("mia")),
        author_name: Some("Mia Müller".into()),
        priority: "high".into(),
        affected_assets: vec!["api.acme.com".into(), "lb-1".into()],
        planned_end: Some(at("2026-12-03T10:00:00Z")),
        description:
            "Rotate the **TLS certificate** before it expires.\n\n- drain `lb-1`\n- swap\n\n<script>alert(1)</script>"
                .into(),
        implementation_plan: "1. Drain\n2. Swap\n3. Verify".into(),
        rollback_plan: "Restore the previous certificate from the vault.".into(),
        test_plan: "Run `curl -v https://api.acme.com` and check the chain.".into(),
        conflicts: vec![ConflictBrief {
            number: ChangeNumber::new(9).unwrap(),
            title: "Patch <lb-1>".into(),
            status: "scheduled".into(),
            shared_assets: vec!["lb-1".into()],
            accepted: false,
        }],
        freezes: vec![FreezeBrief {
            name: "Black Friday".into(),
            start: at("2026-12-03T00:00:00Z"),
            end: at("2026-12-04T00:00:00Z"),
            allow_override: true,
        }],
        decisions: vec![DecisionBrief {
            step: "approval".into(),
            user: user("carol"),
            on_behalf_of: None,
            verdict: Verdict::Approve,
            comment: Some("Fine by me".into()),
            at: at("2026-11-30T15:00:00Z"),
        }],
    }
}

fn notice(kind: NoticeKind, locale: Locale) -> Notice {
    let asks = matches!(kind, NoticeKind::ApprovalRequested | NoticeKind::ApprovalEscalated);
    Notice {
        id: "n1".into(),
        kind,
        workspace_id: "w".into(),
        workspace_name: "Acme".into(),
        locale,
        timezone: "Europe/Berlin".into(),
        change_number: ChangeNumber::new(7).unwrap(),
        change_title: "Rotate <the> cert".into(),
        change_type: "normal".into(),
        risk_level: "medium".into(),
        planned_start: Some(at("2026-12-03T09:00:00Z")),
        recipient: user("bob"),
        recipient_email: "bob@example.com".into(),
        recipient_name: Some("Bob".into()),
        step_name: Some("approval".into()),
        detail: (!asks).then(|| "went & stayed <fine>".into()),
        links: asks.then(|| DecisionLinks {
            token: "tok".into(),
            page_url: "https://vigilo.example/a/tok".into(),
            reply_to: Some("r+tok@reply.example".into()),
            expires_at: at("2026-12-01T00:00:00Z"),
        }),
        details: Some(details()),
        created_at: at("2026-11-22T00:00:00Z"),
    }
}

const KINDS: [NoticeKind; 10] = [
    NoticeKind::ApprovalRequested,
    NoticeKind::ApprovalEscalated,
    NoticeKind::ChangeApproved,
    NoticeKind::ChangeRejected,
    NoticeKind::ChangeRolledBack,
    NoticeKind::ChangeUnscheduled,
    NoticeKind::FreezeUpcoming,
    NoticeKind::ChangeWatched,
    NoticeKind::ReviewDue,
    NoticeKind::ReviewOverdue,
];

fn agenda(locale: Locale, empty: bool) -> vigilo_domain::agenda::AgendaMail {
    use vigilo_domain::agenda::{Agenda, AgendaItem, AgendaMail, Waiting};
    let d = details();
    let item = AgendaItem {
        number: ChangeNumber::new(7).unwrap(),
        title: "Rotate <the> cert".into(),
        priority: "high".into(),
        risk_level: "medium".into(),
        risk_score: Some(14),
        planned_start: Some(at("2026-12-09T09:00:00Z")),
        planned_end: Some(at("2026-12-09T10:00:00Z")),
        planned_this_week: true,
        affected_assets: d.affected_assets.clone(),
        author: user("mia"),
        author_name: Some("Mia <Müller>".into()),
        submitted_at: Some(at("2026-12-02T08:30:00Z")),
        implementation_plan: d.implementation_plan.clone(),
        test_plan: d.test_plan.clone(),
        rollback_plan: "<img src=x onerror=alert(1)> restore".into(),
        pending_approvers: vec![Waiting { step: "approval".into(), approvers: vec![user("bob"), user("carol")] }],
        conflicts: d.conflicts.clone(),
    };
    let later = AgendaItem {
        number: ChangeNumber::new(8).unwrap(),
        title: "Resize the queue".into(),
        risk_score: None,
        planned_start: None,
        planned_end: None,
        planned_this_week: false,
        pending_approvers: vec![],
        conflicts: vec![],
        implementation_plan: String::new(),
        test_plan: String::new(),
        rollback_plan: String::new(),
        ..item.clone()
    };
    AgendaMail {
        id: "m1".into(),
        workspace_id: "w".into(),
        workspace_name: "Acme".into(),
        locale,
        recipient: user("bob"),
        recipient_email: "bob@example.com".into(),
        recipient_name: Some("Bob <b>".into()),
        agenda: Agenda {
            week: "2026-W50".into(),
            starts_at: at("2026-12-06T23:00:00Z"),
            ends_at: at("2026-12-13T23:00:00Z"),
            timezone: "Europe/Berlin".into(),
            items: if empty { vec![] } else { vec![item, later] },
        },
        created_at: at("2026-12-07T07:00:00Z"),
    }
}

fn confirmation_page(locale: Locale, chosen: Option<&str>) -> String {
    let d = details();
    let c = Confirmation {
        approver: "Bob <b>",
        number: ChangeNumber::new(7).unwrap(),
        title: "Rotate <the> cert",
        workspace: "Acme",
        timezone: "Europe/Berlin",
        step: "approval",
        change_type: "normal",
        risk_level: "high",
        planned_start: Some(at("2026-12-03T09:00:00Z")),
        expires_at: at("2026-12-01T00:00:00Z"),
        details: &d,
        chosen,
    };
    c.render(locale).html
}

/// Everything a language renders, labelled.
fn everything(locale: Locale) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kind in KINDS {
        let n = notice(kind, locale);
        let e = email(&n);
        out.push((format!("{kind}.subject"), e.subject));
        out.push((format!("{kind}.txt"), e.text));
        out.push((format!("{kind}.html"), e.html));
        out.push((format!("{kind}.chat"), serde_json::to_string_pretty(&chat(&n)).unwrap()));
    }
    for (name, empty) in [("cab.agenda", false), ("cab.agenda.empty", true)] {
        let e = crate::agenda_email(&agenda(locale, empty));
        out.push((format!("{name}.subject"), e.subject));
        out.push((format!("{name}.txt"), e.text));
        out.push((format!("{name}.html"), e.html));
    }
    out.push(("page.confirm".into(), confirmation_page(locale, None)));
    out.push(("page.confirm.reject".into(), confirmation_page(locale, Some("reject"))));
    out.push((
        "page.recorded".into(),
        page::recorded("approve", ChangeNumber::new(7).unwrap(), "approved", locale).html,
    ));
    out.push(("page.not_recorded".into(), page::not_recorded(true, locale).html));
    for r in [Refusal::Forged, Refusal::Expired, Refusal::Used, Refusal::StepClosed, Refusal::RateLimited] {
        out.push((format!("page.refused.{}", r.as_str()), page::refused(r, locale).html));
        out.push((format!("chat.refused.{}", r.as_str()), refused_text(r, locale)));
    }
    out.push(("chat.recorded".into(), recorded_text("reject", ChangeNumber::new(7).unwrap(), "rejected", locale)));
    out.push(("chat.error".into(), crate::not_recorded_text(&crate::error_text("already_decided", locale), locale)));
    out
}

#[test]
fn every_notice_and_page_in_both_languages() {
    for locale in [Locale::En, Locale::De] {
        for (name, text) in everything(locale) {
            insta::assert_snapshot!(format!("{}__{name}", locale.as_str()), text);
        }
    }
}

#[test]
fn every_template_renders_without_error_in_every_language() {
    for locale in [Locale::En, Locale::De] {
        for (name, text) in everything(locale) {
            assert!(!text.contains("template ") || !text.contains("failed:"), "{name}: {text}");
            assert!(!text.trim().is_empty(), "{name} is empty");
        }
    }
    assert!(engine::TEMPLATES
        .iter()
        .all(|(n, _)| n.starts_with("common/") || n.starts_with("en/") || n.starts_with("de/")));
    let per = |l: &str| {
        let mut v: Vec<&str> = engine::TEMPLATES.iter().filter_map(|(n, _)| n.strip_prefix(l)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(per("en/"), per("de/"), "each language has every template");
}

#[test]
fn both_languages_have_the_same_terms() {
    assert_eq!(terms::keys(Locale::En), terms::keys(Locale::De));
    for r in [Refusal::Forged, Refusal::CommentInvalid, Refusal::RateLimited, Refusal::WrongSender] {
        assert_ne!(explain(r, Locale::En), explain(r, Locale::De), "{r:?}");
        assert!(!explain(r, Locale::En).starts_with("refusal."), "{r:?} has no words");
    }
}

/// The English template texts and terms: every run of at least two words outside
/// tags and placeholders.
fn english_phrases() -> Vec<String> {
    let strip = |s: &str| {
        let mut out = String::new();
        let mut depth = 0;
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('{', Some('{' | '%')) | ('<', _) => {
                    depth += 1;
                    out.push('|');
                }
                ('}', Some('}')) | ('%', Some('}')) if depth > 0 => {
                    chars.next();
                    depth -= 1;
                }
                ('>', _) if depth > 0 => depth -= 1,
                ('&', _) => {
                    for c in chars.by_ref() {
                        if c == ';' {
                            break;
                        }
                    }
                    out.push('|');
                }
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    };
    let mut phrases = Vec::new();
    let sources = engine::TEMPLATES.iter().filter(|(n, _)| n.starts_with("en/")).map(|(_, s)| strip(s));
    let terms = include_str!("../templates/en/terms.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v.to_owned()));
    for text in sources.chain(terms) {
        for part in text.split(['|', '\n', '.', ':', ',', '(', ')', '"', ';', '*', '?']) {
            let words: Vec<&str> = part.split_whitespace().collect();
            if words.len() >= 2
                && words.iter().all(|w| w.chars().all(|c| c.is_ascii_alphabetic() || c == '-' || c == '\''))
            {
                phrases.push(words.join(" "));
            }
        }
    }
    phrases.sort();
    phrases.dedup();
    phrases
}

#[test]
fn german_output_holds_no_english_sentence() {
    let phrases = english_phrases();
    assert!(phrases.len() > 60, "only {} phrases: {phrases:?}", phrases.len());
    assert!(phrases.iter().any(|p| p == "Decisions so far"), "{phrases:?}");
    for (name, text) in everything(Locale::De) {
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for p in &phrases {
            // Names that are the same in both languages (the product's own, ECAB).
            if ["Vigilo", "ECAB"].iter().any(|n| p.contains(n)) {
                continue;
            }
            assert!(!flat.contains(p.as_str()), "German {name} says {p:?} in English:\n{text}");
        }
    }
}

#[test]
fn what_authors_write_is_escaped_or_sanitised_everywhere() {
    for locale in [Locale::En, Locale::De] {
        for (name, text) in everything(locale) {
            // Plain text shows what was typed; HTML, pages and chat never carry it as markup.
            if name.ends_with(".html") || name.starts_with("page.") || name.ends_with(".chat") {
                assert!(!text.contains("<script"), "{name}");
            }
            if name.ends_with(".html") || name.starts_with("page.") {
                assert!(!text.contains("<the>") && !text.contains("<lb-1>") && !text.contains("<b>"), "{name}: {text}");
            }
            if name.ends_with(".chat") {
                assert!(!text.contains("<the>"), "{name}: {text}");
            }
        }
    }
    let html = email(&notice(NoticeKind::ApprovalRequested, Locale::En)).html;
    assert!(html.contains("<strong>TLS certificate</strong>"), "Markdown is rendered: {html}");
    assert!(html.contains("a&#x2f;tok?decision=approve"), "an approve button: {html}");
    assert!(html.contains("a&#x2f;tok?decision=reject"), "a reject button");
    assert!(!html.contains("<script") && !html.contains("javascript:"));
}

#[test]
fn subjects_and_times_read_in_the_workspace_language_and_clock() {
    let en = email(&notice(NoticeKind::ApprovalRequested, Locale::En));
    assert_eq!(en.subject, "[Acme] Approval requested: CHG-00007 Rotate <the> cert");
    assert!(en.text.contains("Thu 3 Dec 2026, 10:00 CET \u{2013} Thu 3 Dec 2026, 11:00 CET"), "{}", en.text);
    let de = email(&notice(NoticeKind::ApprovalRequested, Locale::De));
    assert!(de.subject.contains("Freigabe angefordert") && de.text.starts_with("Hallo Bob"));
    assert!(de.text.contains("03.12.2026, 10:00 CET"), "{}", de.text);
    assert!(de.text.contains("Normal, Risiko mittel") && en.text.contains("normal, medium risk"), "{}", de.text);
    assert!(de.text.contains("Schritt: Freigabe\n") && en.text.contains("Step: approval\n"));
}

#[test]
fn chat_messages_carry_buttons_only_when_a_decision_is_asked() {
    use vigilo_domain::notice::{CHAT_COMMENT_ACTION, CHAT_COMMENT_BLOCK};
    let ask = chat(&notice(NoticeKind::ApprovalRequested, Locale::En));
    assert_eq!(ask["blocks"][1]["block_id"], CHAT_COMMENT_BLOCK);
    assert_eq!(ask["blocks"][1]["element"]["action_id"], CHAT_COMMENT_ACTION);
    let buttons = &ask["blocks"][2]["elements"];
    assert_eq!((buttons[0]["action_id"].as_str(), buttons[0]["value"].as_str()), (Some("approve"), Some("tok")));
    let done = chat(&notice(NoticeKind::ChangeApproved, Locale::De));
    assert_eq!(done["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(done["kind"], "change.approved");
    let mut hostile = notice(NoticeKind::ApprovalRequested, Locale::En);
    hostile.change_title = "<!channel> <https://evil.example|Approve here> & more".into();
    let c = chat(&hostile);
    for text in [&c["text"], &c["blocks"][0]["text"]["text"]] {
        let text = text.as_str().unwrap();
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(text.contains("&lt;!channel&gt; &lt;https://evil.example|Approve here&gt; &amp; more"), "{text}");
    }
}

#[test]
fn freezes_are_named_on_the_workspace_clock_in_each_language() {
    let f = vigilo_domain::notice::FreezeBrief {
        name: "Year <end>".into(),
        start: at("2026-12-24T17:00:00Z"),
        end: at("2027-01-02T05:00:00Z"),
        allow_override: false,
    };
    let two = [f.clone(), vigilo_domain::notice::FreezeBrief { name: "B".into(), ..f.clone() }];
    assert_eq!(
        crate::freezes_named(Locale::En, "Europe/Berlin", &two[..1]),
        "Freeze \u{201c}Year <end>\u{201d}: Thu 24 Dec 2026, 18:00 CET \u{2013} Sat 2 Jan 2027, 06:00 CET"
    );
    assert_eq!(
        crate::freezes_named(Locale::De, "Europe/Berlin", &two[..1]),
        "\u{c4}nderungssperre \u{201e}Year <end>\u{201c}: 24.12.2026, 18:00 CET \u{2013} 02.01.2027, 06:00 CET"
    );
    assert!(crate::freezes_named(Locale::En, "UTC", &two)
        .contains("; Freeze \u{201c}B\u{201d}: Thu 24 Dec 2026, 17:00 UTC"));
}
