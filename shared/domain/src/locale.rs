//! The languages Vigilo speaks to people in: every notice, page and chat answer exists
//! in each of them.

use serde::{Deserialize, Serialize};

crate::change::wire_enum!(
    /// A workspace's language, and so the language of everything it sends.
    Locale { En = "en", De = "de" }
);

impl Locale {
    /// The locale of a stored workspace setting; anything unknown reads as English.
    pub fn of(s: &str) -> Locale {
        Locale::parse(s).unwrap_or(Locale::En)
    }

    /// The language to answer a browser in: the first language of its
    /// `Accept-Language` (by their weights) that Vigilo speaks, else `fallback` (the
    /// workspace's, where known). The email goes out in the workspace's language because
    /// nobody can know the reader's yet; a page can.
    pub fn from_accept_language(accept_language: Option<&str>, fallback: Locale) -> Locale {
        let mut ranges: Vec<(f32, &str)> = accept_language
            .unwrap_or_default()
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let weight = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (weight > 0.0).then_some((weight, tag))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, tag) in ranges {
            let primary = tag.split('-').next().unwrap_or_default();
            if let Some(l) = Locale::ALL.iter().find(|l| primary.eq_ignore_ascii_case(l.as_str())) {
                return *l;
            }
        }
        fallback
    }
}

// The enum comes from `wire_enum!`, which takes no variant attributes (`#[default]`).
#[allow(clippy::derivable_impls)]
impl Default for Locale {
    fn default() -> Locale {
        Locale::En
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_language_wins_by_weight_else_the_fallback() {
        let pick = |h: Option<&str>, f| Locale::from_accept_language(h, f);
        assert_eq!(pick(Some("de-DE,de;q=0.9,en;q=0.8"), Locale::En), Locale::De);
        assert_eq!(pick(Some("fr-FR, en;q=0.5, de;q=0.7"), Locale::En), Locale::De);
        assert_eq!(pick(Some("EN-gb"), Locale::De), Locale::En);
        assert_eq!(pick(Some("fr, *;q=0.1"), Locale::De), Locale::De);
        assert_eq!(pick(Some("de;q=0, en;q=0.2"), Locale::De), Locale::En);
        assert_eq!(pick(None, Locale::De), Locale::De);
        assert_eq!(Locale::of("xx"), Locale::En);
    }
}
