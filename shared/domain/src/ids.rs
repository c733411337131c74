//! Validated identifiers, parsed at the edge so the rules never re-check raw strings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A workspace slug: 3-40 characters of `a-z`, `0-9` and inner `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", example = "acme")]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Slug, &'static str> {
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !(3..=40).contains(&s.len()) {
            Err("must be 3 to 40 characters")
        } else if !ok_chars {
            Err("may contain only lowercase letters, digits and '-'")
        } else if s.starts_with('-') || s.ends_with('-') {
            Err("must not start or end with '-'")
        } else {
            Ok(Slug(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = &'static str;

    fn try_from(s: String) -> Result<Slug, &'static str> {
        Slug::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A change's number within its workspace, shown as `CHG-00001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^CHG-[0-9]{5,12}$", example = "CHG-00001")]
pub struct ChangeNumber(u64);

impl ChangeNumber {
    /// Beyond any number a workspace hands out: stands for one not handed out yet.
    pub const MAX: ChangeNumber = ChangeNumber(u64::MAX);

    pub fn new(n: u64) -> Option<ChangeNumber> {
        (n > 0).then_some(ChangeNumber(n))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// Accepts `CHG-00042` (case-insensitive prefix) and nothing else.
    pub fn parse(s: &str) -> Option<ChangeNumber> {
        let digits = s.strip_prefix("CHG-").or_else(|| s.strip_prefix("chg-"))?;
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ChangeNumber::new(digits.parse().ok()?)
    }
}

impl fmt::Display for ChangeNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CHG-{:05}", self.0)
    }
}

impl Serialize for ChangeNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChangeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChangeNumber::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a change number: {s}")))
    }
}

/// A user id as the identity provider gives it (`sub`): 1-200 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, min_length = 1, max_length = 200, example = "alice")]
pub struct UserId(String);

impl UserId {
    pub fn parse(s: &str) -> Result<UserId, &'static str> {
        if s.is_empty() || s.chars().count() > 200 {
            Err("must be 1 to 200 characters")
        } else if s.chars().any(|c| crate::text::breaks_a_line(c) || c == '#' || c == '/') {
            Err("must not contain control characters, '#' or '/'")
        } else {
            Ok(UserId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_numbers_round_trip_and_refuse_garbage() {
        let n = ChangeNumber::parse("CHG-00042").unwrap();
        assert_eq!(n.get(), 42);
        assert_eq!(n.to_string(), "CHG-00042");
        assert_eq!(ChangeNumber::new(123456).unwrap().to_string(), "CHG-123456");
        for bad in ["", "CHG-", "CHG-0", "CHG-00000", "42", "CHG-12a", "CHG--1", "XYZ-00001"] {
            assert!(ChangeNumber::parse(bad).is_none(), "{bad} should be refused");
        }
    }

    #[test]
    fn slugs_are_lowercase_words() {
        assert!(Slug::parse("acme-prod").is_ok());
        for bad in ["ab", "Acme", "-acme", "acme-", "ac me", "acmé"] {
            assert!(Slug::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn user_ids_refuse_separators() {
        assert!(UserId::parse("auth0|abc").is_ok());
        assert!(UserId::parse("a#b").is_err());
        assert!(UserId::parse("bob\u{202E}").is_err(), "no bidirectional overrides in an id shown to approvers");
        assert!(UserId::parse("").is_err());
    }
}
