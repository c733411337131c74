//! Time as the rules see it: UTC instants, rendered as RFC 3339 at millisecond precision
//! so that stored, hashed and displayed forms agree.

use jiff::{Timestamp, Unit};

/// Truncates an instant to milliseconds, the precision Vigilo keeps.
pub fn to_millis(ts: Timestamp) -> Timestamp {
    ts.round(Unit::Millisecond).unwrap_or(ts)
}

/// The one textual form of an instant that Vigilo writes for keys and audit rows:
/// RFC 3339, UTC, always three fractional digits, so that text order is time order.
pub fn format(ts: Timestamp) -> String {
    format!("{:.3}", to_millis(ts))
}

/// Parses an RFC 3339 instant with an explicit offset; a civil time without offset is refused.
pub fn parse(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// Hours from `from` to `to` (negative when `to` is earlier).
pub fn hours_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 3_600_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_order_is_time_order() {
        let whole: Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-12-01T09:00:00.5Z".parse().unwrap();
        assert_eq!(format(whole), "2026-12-01T09:00:00.000Z");
        assert_eq!(format(later), "2026-12-01T09:00:00.500Z");
        assert!(format(whole) < format(later));
        assert_eq!(parse(&format(later)), Some(later));
    }

    #[test]
    fn only_instants_with_an_offset_parse() {
        assert!(parse("2026-12-01T10:00:00+01:00").is_some());
        assert!(parse("2026-12-01T10:00:00").is_none());
        assert!(parse("tomorrow").is_none());
    }
}
