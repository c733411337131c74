//! The words of each language outside its sentences (`templates/{lang}/terms.txt`):
//! change types, risk levels, statuses, step names, verdicts, labels, refusals.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use vigilo_domain::locale::Locale;

const SOURCES: &[(Locale, &str)] =
    &[(Locale::En, include_str!("../templates/en/terms.txt")), (Locale::De, include_str!("../templates/de/terms.txt"))];

fn table() -> &'static HashMap<(Locale, &'static str), &'static str> {
    static TABLE: OnceLock<HashMap<(Locale, &'static str), &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = HashMap::new();
        for (locale, source) in SOURCES {
            for line in source.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                if let Some((k, v)) = line.split_once(" = ") {
                    t.insert((*locale, k.trim()), v.trim());
                }
            }
        }
        t
    })
}

/// `word` (a change type, risk level, status, step name, or a `label.`, `refusal.`,
/// `verdict.`, `headline.` or `error.` key) as `locale` says it; the word itself where
/// the language has nothing else (a policy's own stage name, say).
pub fn term<'a>(locale: Locale, word: &'a str) -> Cow<'a, str> {
    match table().get(&(locale, word)) {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Borrowed(word),
    }
}

/// Every key of a language, for the tests that hold the languages together.
#[cfg(test)]
pub(crate) fn keys(locale: Locale) -> Vec<&'static str> {
    let mut k: Vec<&str> = table().keys().filter(|(l, _)| *l == locale).map(|(_, k)| *k).collect();
    k.sort_unstable();
    k
}
