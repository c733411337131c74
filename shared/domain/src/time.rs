//! Time as the rules see it: UTC instants, rendered as RFC 3339 at millisecond precision
//! so that stored, hashed and displayed forms agree.

use jiff::tz::TimeZone;
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

/// The zone an IANA name stands for; UTC for a name the bundled database does not
/// know (workspace settings are checked when saved, so this only guards old data).
pub fn zone(name: &str) -> TimeZone {
    jiff::tz::db().get(name).unwrap_or(TimeZone::UTC)
}

/// An instant as people read it in the workspace: its wall-clock time in `tz`, to
/// the minute, with the zone's abbreviation and the date written the locale's way
/// (`Tue 15 Jan 2030, 10:00 CET`, `15.01.2030, 10:00 CET`). For notices and pages,
/// never for storage: stored and hashed times stay in `format`'s form.
pub fn readable(ts: Timestamp, tz: &TimeZone, locale: crate::locale::Locale) -> String {
    let pattern = match locale {
        crate::locale::Locale::De => "%d.%m.%Y, %H:%M %Z",
        crate::locale::Locale::En => "%a %-d %b %Y, %H:%M %Z",
    };
    ts.to_zoned(tz.clone()).strftime(pattern).to_string()
}

/// A day as people read it in the workspace: `Mon 7 Dec 2026`, `07.12.2026`.
pub fn readable_date(ts: Timestamp, tz: &TimeZone, locale: crate::locale::Locale) -> String {
    let pattern = match locale {
        crate::locale::Locale::De => "%d.%m.%Y",
        crate::locale::Locale::En => "%a %-d %b %Y",
    };
    ts.to_zoned(tz.clone()).strftime(pattern).to_string()
}

/// Hours from `from` to `to` (negative when `to` is earlier).
pub fn hours_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 3_600_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locale::Locale;

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
    fn readable_times_are_wall_clock_times_in_the_zone_and_locale() {
        let t: Timestamp = "2030-01-15T09:00:00Z".parse().unwrap();
        let berlin = zone("Europe/Berlin");
        assert_eq!(readable(t, &berlin, Locale::En), "Tue 15 Jan 2030, 10:00 CET");
        assert_eq!(readable(t, &berlin, Locale::De), "15.01.2030, 10:00 CET");
        let summer: Timestamp = "2030-07-01T09:00:00Z".parse().unwrap();
        assert_eq!(readable(summer, &berlin, Locale::En), "Mon 1 Jul 2030, 11:00 CEST");
        assert_eq!(readable(t, &zone("UTC"), Locale::En), "Tue 15 Jan 2030, 09:00 UTC");
        assert_eq!(readable(t, &zone("Not/AZone"), Locale::En), "Tue 15 Jan 2030, 09:00 UTC");
    }

    #[test]
    fn only_instants_with_an_offset_parse() {
        assert!(parse("2026-12-01T10:00:00+01:00").is_some());
        assert!(parse("2026-12-01T10:00:00").is_none());
        assert!(parse("tomorrow").is_none());
    }
}
