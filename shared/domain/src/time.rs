//! Time as the rules see it: UTC instants, rendered as RFC 3339 at millisecond precision
//! so that stored, hashed and displayed forms agree.

use jiff::{Timestamp, Unit};

/// Truncates an instant to milliseconds, the precision Vigilo keeps.
pub fn to_millis(ts: Timestamp) -> Timestamp {
    ts.round(Unit::Millisecond).unwrap_or(ts)
}

/// The one textual form of an instant that Vigilo writes: RFC 3339, UTC, `Z` suffix.
pub fn format(ts: Timestamp) -> String {
    to_millis(ts).to_string()
}

/// Parses an RFC 3339 instant with an explicit offset; a civil time without offset is refused.
pub fn parse(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// Hours from `from` to `to` (negative when `to` is earlier).
pub fn hours_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 3_600_000.0
}
