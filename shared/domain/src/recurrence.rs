//! Recurring freeze windows: an RFC 5545 RRULE over the workspace's wall clock.
//!
//! A change manager who writes "every Friday 18:00 to Monday 06:00" means the clock on
//! the wall, summer and winter alike. So a rule is expanded on civil date-times (the
//! first occurrence's wall-clock start as DTSTART, floating), and each occurrence is
//! resolved to an instant in the workspace's zone only afterwards, start and end each
//! on their own: an occurrence across a DST change is an hour shorter or longer in
//! UTC, never shifted. A wall-clock time that does not exist (the spring gap) resolves
//! forward, one that exists twice to its first instant (RFC 5545, 3.3.5).
//!
//! Expansion is bounded wherever it runs: only rules of at most daily frequency are
//! accepted, an expansion never takes more than [`MAX_STEPS`] steps of the rule, and a
//! check asks only for the occurrences meeting one span.

use std::str::FromStr;

use chrono::TimeZone as _;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Unit};
use rrule::{Frequency, RRule, RRuleSet, Tz, Unvalidated};

/// The most steps one expansion takes: a daily rule over 270 years. A rule that needs
/// more to reach a span (or to end) is treated as going on for ever.
pub const MAX_STEPS: usize = 100_000;

/// The longest rule text accepted.
pub const RULE_MAX: usize = 500;

/// A checked rule with the first occurrence it repeats.
#[derive(Debug, Clone)]
pub struct Series {
    set: RRuleSet,
    /// The rule before validation and its first occurrence's floating start, to
    /// start the walk later ([`Series::walk_from`]).
    rule: RRule<Unvalidated>,
    dtstart: chrono::DateTime<Tz>,
    /// Days between one period's start and the next, for a rule whose occurrences
    /// repeat whole periods unchanged (daily and weekly, without COUNT): such a walk
    /// may begin at any period's start instead of the first.
    period_days: Option<i64>,
    /// The rule as given, in its normal form: what calendars carry.
    text: String,
    tz: TimeZone,
    length: Span,
}

/// A rule as filed: its normal form (`RRULE:FREQ=WEEKLY;BYDAY=FR`) and the end of its
/// last occurrence, `None` when it goes on for ever.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub rule: String,
    pub last_end: Option<Timestamp>,
}

fn floating(dt: DateTime) -> Option<chrono::DateTime<Tz>> {
    let secs = dt.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second();
    Tz::UTC.timestamp_opt(secs, 0).single()
}

fn civil(dt: &chrono::DateTime<Tz>) -> Option<DateTime> {
    let ts = Timestamp::from_second(dt.timestamp()).ok()?;
    Some(ts.to_zoned(TimeZone::UTC).datetime())
}

fn wall(dt: DateTime) -> DateTime {
    dt.round(Unit::Second).unwrap_or(dt)
}

impl Series {
    /// Reads `rule` (`RRULE:...`) as repeating the occurrence from `start` to `end`
    /// (instants), both read on the wall clock of `tz`.
    pub fn parse(rule: &str, start: Timestamp, end: Timestamp, tz: &TimeZone) -> Result<Series, String> {
        let rule = rule.trim();
        if rule.len() > RULE_MAX || rule.contains(['\r', '\n']) {
            return Err(format!("one RRULE line of at most {RULE_MAX} characters"));
        }
        let body = match rule.get(..6) {
            Some(p) if p.eq_ignore_ascii_case("RRULE:") => &rule[6..],
            _ => return Err("an RFC 5545 rule starting with RRULE:, e.g. RRULE:FREQ=WEEKLY;BYDAY=FR".into()),
        };
        let mut parsed = RRule::<Unvalidated>::from_str(body).map_err(|e| format!("not a valid RRULE: {e}"))?;
        if matches!(parsed.get_freq(), Frequency::Hourly | Frequency::Minutely | Frequency::Secondly) {
            return Err("a freeze recurs at most daily: FREQ=DAILY, WEEKLY, MONTHLY or YEARLY".into());
        }
        let text = format!("RRULE:{parsed}");
        let local_start = wall(start.to_zoned(tz.clone()).datetime());
        let local_end = wall(end.to_zoned(tz.clone()).datetime());
        // UNTIL given as an instant bounds the series in real time: read on the wall
        // clock like everything else. A floating UNTIL already is a wall-clock time.
        if let Some(until) = parsed.get_until().copied() {
            let local = if until.timezone().is_local() {
                civil(&until)
            } else {
                Timestamp::from_second(until.timestamp()).ok().map(|t| t.to_zoned(tz.clone()).datetime())
            };
            let until = local.and_then(|l| floating(wall(l))).ok_or("UNTIL is out of range")?;
            parsed = parsed.until(until);
        }
        let dtstart = floating(local_start).ok_or("start is out of range")?;
        let valid = parsed.clone().validate(dtstart).map_err(|e| format!("not a valid RRULE: {e}"))?;
        let length = local_start.until((Unit::Day, local_end)).map_err(|e| e.to_string())?;
        let interval = i64::from(valid.get_interval().max(1));
        let period_days = match (valid.get_freq(), valid.get_count()) {
            (Frequency::Daily, None) => Some(interval),
            (Frequency::Weekly, None) => Some(7 * interval),
            _ => None,
        };
        let set = RRuleSet::new(dtstart).rrule(valid);
        Ok(Series { set, rule: parsed, dtstart, period_days, text, tz: tz.clone(), length })
    }

    /// The normal form of the rule, as stored and as calendars show it.
    pub fn rule(&self) -> String {
        self.text.clone()
    }

    fn resolve(&self, local: DateTime) -> Option<Timestamp> {
        self.tz.to_ambiguous_zoned(local).compatible().ok().map(|z| z.timestamp())
    }

    /// One occurrence from its wall-clock start.
    fn occurrence(&self, local_start: DateTime) -> Option<(Timestamp, Timestamp)> {
        let start = self.resolve(local_start)?;
        let end = self.resolve(local_start.checked_add(self.length).ok()?)?;
        Some((start, end))
    }

    /// The occurrences meeting `[from, to)`, earliest first, at most `limit`; a span
    /// touching an occurrence's end does not meet it.
    pub fn between(&self, from: Timestamp, to: Timestamp, limit: usize) -> Vec<(Timestamp, Timestamp)> {
        // A day's slack either side covers any zone offset between the wall clock
        // the rule runs on and the instants asked about.
        let Some(upper) = civil_of(to).and_then(|t| t.checked_add(Span::new().days(1)).ok()) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for (step, dt) in self.walk_from(from).into_iter().enumerate() {
            if step >= MAX_STEPS || found.len() >= limit {
                break;
            }
            let Some(local) = civil(&dt) else { break };
            if local > upper {
                break;
            }
            match self.occurrence(local) {
                Some((s, e)) if e > from && s < to => found.push((s, e)),
                Some((s, _)) if s >= to => break,
                _ => {}
            }
        }
        found
    }

    /// The rule's walk, begun at the last whole period that starts before any
    /// occurrence could meet `from` (for rules that repeat whole periods), else at
    /// the first occurrence: a check costs the same however old its window is.
    fn walk_from(&self, from: Timestamp) -> RRuleSet {
        let Some(period) = self.period_days else { return self.set.clone() };
        let Some(first) = civil(&self.dtstart) else { return self.set.clone() };
        // Back by the occurrence's length and a day of zone slack.
        let reach = self.length.total((Unit::Day, first)).map(|d| d.ceil() as i64).unwrap_or(0) + 1;
        let Some(wanted) = civil_of(from).and_then(|f| f.checked_sub(Span::new().days(reach)).ok()) else {
            return self.set.clone();
        };
        let days = match first.date().until((Unit::Day, wanted.date())) {
            Ok(span) => i64::from(span.get_days()),
            Err(_) => return self.set.clone(),
        };
        let whole = days.div_euclid(period);
        if whole <= 0 {
            return self.set.clone();
        }
        let later = first.checked_add(Span::new().days(whole * period)).ok().and_then(floating);
        match later.map(|start| (start, self.rule.clone().validate(start))) {
            Some((start, Ok(valid))) => RRuleSet::new(start).rrule(valid),
            _ => self.set.clone(),
        }
    }

    /// The first occurrence meeting `[from, to)`.
    pub fn first_between(&self, from: Timestamp, to: Timestamp) -> Option<(Timestamp, Timestamp)> {
        self.between(from, to, 1).into_iter().next()
    }

    /// Checks a rule as filed: its normal form and its last occurrence's end.
    pub fn check(rule: &str, start: Timestamp, end: Timestamp, tz: &TimeZone) -> Result<Checked, String> {
        let series = Series::parse(rule, start, end, tz)?;
        let r = &series.set.get_rrule()[0];
        let bounded = r.get_until().is_some() || r.get_count().is_some();
        let last_end = if bounded { series.last_end() } else { None };
        if bounded && last_end.is_none() {
            return Err("the rule has no occurrence, or more than can be checked".into());
        }
        Ok(Checked { rule: series.rule(), last_end })
    }

    /// The end of a bounded rule's last occurrence; `None` when it lies beyond
    /// [`MAX_STEPS`] or there is none.
    fn last_end(&self) -> Option<Timestamp> {
        let mut last = None;
        for (step, dt) in self.set.clone().into_iter().enumerate() {
            if step >= MAX_STEPS {
                return None;
            }
            last = Some(dt);
        }
        last.and_then(|dt| civil(&dt)).and_then(|l| self.occurrence(l)).map(|(_, e)| e)
    }
}

/// `t` as a civil date-time in UTC: the upper bound of a scan, with slack added.
fn civil_of(t: Timestamp) -> Option<DateTime> {
    Some(t.to_zoned(TimeZone::UTC).datetime())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn berlin() -> TimeZone {
        crate::time::zone("Europe/Berlin")
    }

    #[test]
    fn occurrences_keep_the_wall_clock_across_both_dst_changes() {
        // Fridays 18:00 to Mondays 06:00 in Berlin, first in winter time.
        let s = Series::parse(
            "RRULE:FREQ=WEEKLY;BYDAY=FR",
            ts("2027-03-19T17:00:00Z"),
            ts("2027-03-22T05:00:00Z"),
            &berlin(),
        )
        .unwrap();
        let got = s.between(ts("2027-03-19T00:00:00Z"), ts("2027-04-05T00:00:00Z"), 10);
        assert_eq!(
            got,
            vec![
                (ts("2027-03-19T17:00:00Z"), ts("2027-03-22T05:00:00Z")),
                // Summer time begins on Sunday 28 March: 18:00 CET, 06:00 CEST.
                (ts("2027-03-26T17:00:00Z"), ts("2027-03-29T04:00:00Z")),
                (ts("2027-04-02T16:00:00Z"), ts("2027-04-05T04:00:00Z")),
            ]
        );
        // Winter time is back on Sunday 31 October: 18:00 CEST, 06:00 CET.
        let got = s.between(ts("2027-10-29T00:00:00Z"), ts("2027-11-06T00:00:00Z"), 10);
        assert_eq!(
            got,
            vec![
                (ts("2027-10-29T16:00:00Z"), ts("2027-11-01T05:00:00Z")),
                (ts("2027-11-05T17:00:00Z"), ts("2027-11-08T05:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_span_meets_only_the_occurrences_it_overlaps() {
        let s = Series::parse(
            "rrule:FREQ=DAILY;INTERVAL=2",
            ts("2027-01-01T22:00:00Z"),
            ts("2027-01-02T02:00:00Z"),
            &TimeZone::UTC,
        )
        .unwrap();
        assert_eq!(s.rule(), "RRULE:FREQ=DAILY;INTERVAL=2");
        // Between occurrences, and touching an end: nothing.
        assert_eq!(s.first_between(ts("2027-01-02T02:00:00Z"), ts("2027-01-03T22:00:00Z")), None);
        assert_eq!(
            s.first_between(ts("2027-01-03T23:00:00Z"), ts("2027-01-04T00:00:00Z")),
            Some((ts("2027-01-03T22:00:00Z"), ts("2027-01-04T02:00:00Z")))
        );
        // Far in the future, still found, in bounded steps.
        assert!(s.first_between(ts("2090-06-01T00:00:00Z"), ts("2090-06-03T00:00:00Z")).is_some());
        assert_eq!(s.between(ts("2027-01-01T00:00:00Z"), ts("2027-02-01T00:00:00Z"), 3).len(), 3);
    }

    /// Every occurrence meeting `[from, to)` from the whole walk, from the first one.
    fn whole_walk(s: &Series, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        s.set
            .clone()
            .into_iter()
            .take(MAX_STEPS)
            .filter_map(|dt| s.occurrence(civil(&dt)?))
            .skip_while(|(_, e)| *e <= from)
            .take_while(|(st, _)| *st < to)
            .collect()
    }

    #[test]
    fn a_walk_begun_at_a_later_period_finds_what_the_whole_walk_finds() {
        let start = ts("2026-01-02T17:00:00Z");
        for (rule, hours) in [
            ("RRULE:FREQ=DAILY;INTERVAL=3", 5),
            ("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", 60),
            ("RRULE:FREQ=WEEKLY;BYDAY=SU,MO;WKST=MO", 30),
            ("RRULE:FREQ=WEEKLY;UNTIL=20270601T000000Z", 10),
        ] {
            let s = Series::parse(rule, start, start + jiff::SignedDuration::from_hours(hours), &berlin()).unwrap();
            assert!(s.period_days.is_some(), "{rule}");
            for days in [0, 3, 40, 200, 400, 517, 800] {
                let from = start + jiff::SignedDuration::from_hours(24 * days);
                let to = from + jiff::SignedDuration::from_hours(24 * 9);
                assert_eq!(s.between(from, to, 50), whole_walk(&s, from, to), "{rule}, {days} days on");
            }
        }
    }

    #[test]
    fn bounded_rules_end_and_unbounded_ones_do_not() {
        let start = ts("2027-01-01T09:00:00Z");
        let end = ts("2027-01-01T17:00:00Z");
        let c = Series::check("RRULE:FREQ=WEEKLY;COUNT=3", start, end, &berlin()).unwrap();
        assert_eq!(c.last_end, Some(ts("2027-01-15T17:00:00Z")));
        // UNTIL as an instant, read on the wall clock (10:00 CET on the 8th).
        let c = Series::check("RRULE:FREQ=WEEKLY;UNTIL=20270108T090000Z", start, end, &berlin()).unwrap();
        assert_eq!(c.last_end, Some(ts("2027-01-08T17:00:00Z")));
        let c = Series::check("RRULE:FREQ=MONTHLY;BYMONTHDAY=1", start, end, &berlin()).unwrap();
        assert_eq!((c.rule.as_str(), c.last_end), ("RRULE:FREQ=MONTHLY;BYMONTHDAY=1", None));
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        let (s, e, tz) = (ts("2027-01-01T09:00:00Z"), ts("2027-01-01T17:00:00Z"), TimeZone::UTC);
        for bad in [
            "FREQ=WEEKLY",
            "RRULE:FREQ=HOURLY",
            "RRULE:FREQ=MINUTELY;COUNT=2",
            "RRULE:FREQ=WEEKLY;BYDAY=XX",
            "RRULE:FREQ=WEEKLY\nRRULE:FREQ=DAILY",
            "RRULE:FREQ=DAILY;UNTIL=20260101T000000Z",
            "RRULE:",
            "",
        ] {
            assert!(Series::check(bad, s, e, &tz).is_err(), "{bad:?}");
        }
        assert!(Series::check(&format!("RRULE:FREQ=DAILY;{}", "X".repeat(600)), s, e, &tz).is_err());
    }
}
