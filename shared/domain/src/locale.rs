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
}
