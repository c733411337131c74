//! Approval SLAs: how long a step may wait for its decision. Normal changes get five
//! business days (Monday to Friday in the workspace's time zone), emergencies two
//! hours; standard changes are pre-approved and have none.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use crate::change::ChangeType;

pub const NORMAL_BUSINESS_DAYS: u32 = 5;
pub const EMERGENCY_HOURS: i64 = 2;

fn is_business_day(d: jiff::civil::Date) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// When a step opened at `opened` is overdue. Business days count whole weekdays
/// after the opening day, keeping its wall-clock time: a step opened on Friday at
/// 16:00 is due the next Friday at 16:00; one opened on Saturday, the Friday after.
pub fn approval_deadline(opened: Timestamp, t: ChangeType, tz: &TimeZone) -> Option<Timestamp> {
    match t {
        ChangeType::Standard => None,
        ChangeType::Emergency => Some(opened + SignedDuration::from_hours(EMERGENCY_HOURS)),
        ChangeType::Normal => {
            let local = opened.to_zoned(tz.clone());
            let mut day = local.date();
            let mut counted = 0;
            while counted < NORMAL_BUSINESS_DAYS {
                day = day.checked_add(1.day()).ok()?;
                if is_business_day(day) {
                    counted += 1;
                }
            }
            let due = day.to_datetime(local.time()).to_zoned(tz.clone()).ok()?;
            Some(due.timestamp())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn five_business_days_skip_the_weekend_in_local_time() {
        let berlin = jiff::tz::db().get("Europe/Berlin").unwrap();
        // Friday 2026-12-04 16:00 Berlin (15:00Z): due Friday 2026-12-11 16:00 Berlin.
        let due = approval_deadline(at("2026-12-04T15:00:00Z"), ChangeType::Normal, &berlin).unwrap();
        assert_eq!(due, at("2026-12-11T15:00:00Z"));
        // Saturday: counted from Monday, due Friday.
        let due = approval_deadline(at("2026-12-05T10:00:00Z"), ChangeType::Normal, &berlin).unwrap();
        assert_eq!(due, at("2026-12-11T10:00:00Z"));
        // Across the switch to summer time the wall clock is kept.
        let due = approval_deadline(at("2026-03-25T08:00:00Z"), ChangeType::Normal, &berlin).unwrap();
        assert_eq!(due, at("2026-04-01T07:00:00Z"));
    }

    #[test]
    fn emergencies_get_two_hours_and_standard_changes_none() {
        let utc = TimeZone::UTC;
        assert_eq!(
            approval_deadline(at("2026-12-05T10:00:00Z"), ChangeType::Emergency, &utc),
            Some(at("2026-12-05T12:00:00Z"))
        );
        assert_eq!(approval_deadline(at("2026-12-05T10:00:00Z"), ChangeType::Standard, &utc), None);
    }
}
