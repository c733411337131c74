//! The CAB's week: the normal changes awaiting review, with what the board weighs
//! (risk, plans, who has still to decide, what else shares their window), and the
//! weeks it is planned by (ISO 8601 weeks on the workspace's wall clock).

use jiff::civil::{ISOWeekDate, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ids::{ChangeNumber, UserId};
use crate::locale::Locale;
use crate::notice::ConflictBrief;

/// When the weekly agenda goes out: Monday from 08:00 on the workspace's clock.
pub const MAIL_HOUR: i8 = 8;

/// A pending approval step and who may still decide it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Waiting {
    pub step: String,
    #[schema(value_type = Vec<String>)]
    pub approvers: Vec<UserId>,
}

/// One change on the agenda.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgendaItem {
    #[schema(value_type = String)]
    pub number: ChangeNumber,
    pub title: String,
    pub priority: String,
    pub risk_level: String,
    /// The risk questionnaire's score, when the change was assessed.
    pub risk_score: Option<u32>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub planned_start: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub planned_end: Option<Timestamp>,
    /// Whether its planned window starts inside the agenda's week.
    pub planned_this_week: bool,
    pub affected_assets: Vec<String>,
    #[schema(value_type = String)]
    pub author: UserId,
    pub author_name: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub submitted_at: Option<Timestamp>,
    pub implementation_plan: String,
    pub test_plan: String,
    pub rollback_plan: String,
    pub pending_approvers: Vec<Waiting>,
    #[schema(value_type = Vec<Object>)]
    pub conflicts: Vec<ConflictBrief>,
}

/// `GET /cab/agenda`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agenda {
    /// `2026-W50`.
    pub week: String,
    /// Monday 00:00 of the week on the workspace's clock, and the next Monday's.
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: Timestamp,
    pub timezone: String,
    /// Planned start first; unplanned last.
    pub items: Vec<AgendaItem>,
}

/// The agenda mailed to one member of the `cab` group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgendaMail {
    pub id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub locale: Locale,
    pub recipient: UserId,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub agenda: Agenda,
    pub created_at: Timestamp,
}

/// The ISO week `t` falls in on `tz`'s clock: `2026-W50`.
pub fn week_of(t: Timestamp, tz: &TimeZone) -> String {
    let w = t.to_zoned(tz.clone()).date().iso_week_date();
    format!("{:04}-W{:02}", w.year(), w.week())
}

/// The span of an ISO week (`2026-W50`) on `tz`'s clock: Monday 00:00 to the next
/// Monday 00:00 (DST-correct: a week with a change is an hour shorter or longer).
pub fn week_bounds(week: &str, tz: &TimeZone) -> Option<(Timestamp, Timestamp)> {
    let (y, w) = week.split_once("-W")?;
    if y.len() != 4 || w.len() != 2 || !y.bytes().chain(w.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let monday = ISOWeekDate::new(y.parse().ok()?, w.parse().ok()?, Weekday::Monday).ok()?.date();
    let start = monday.to_zoned(tz.clone()).ok()?;
    let next = monday.checked_add(jiff::Span::new().days(7)).ok()?.to_zoned(tz.clone()).ok()?;
    Some((start.timestamp(), next.timestamp()))
}

/// Whether `t` is Monday from [`MAIL_HOUR`] on `tz`'s clock: the weekly mail's time.
pub fn is_mail_time(t: Timestamp, tz: &TimeZone) -> bool {
    let z = t.to_zoned(tz.clone());
    z.weekday() == Weekday::Monday && z.hour() >= MAIL_HOUR
}

/// How long a week's "mailed" mark is kept: past any retry of that Monday.
pub const MARK_KEPT: SignedDuration = SignedDuration::from_hours(24 * 14);

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_are_iso_weeks_on_the_workspace_clock() {
        let berlin = crate::time::zone("Europe/Berlin");
        // Sunday 23:30 UTC is already Monday in Berlin.
        assert_eq!(week_of(ts("2026-12-06T23:30:00Z"), &berlin), "2026-W50");
        assert_eq!(week_of(ts("2026-12-06T23:30:00Z"), &TimeZone::UTC), "2026-W49");
        // 1 January 2027 is a Friday of 2026's last week.
        assert_eq!(week_of(ts("2027-01-01T12:00:00Z"), &TimeZone::UTC), "2026-W53");
        let (s, e) = week_bounds("2026-W50", &berlin).unwrap();
        assert_eq!((s, e), (ts("2026-12-06T23:00:00Z"), ts("2026-12-13T23:00:00Z")));
        // The week of the change to summer time is an hour short.
        let (s, e) = week_bounds("2027-W12", &berlin).unwrap();
        assert_eq!(e.duration_since(s), SignedDuration::from_hours(7 * 24 - 1));
        for bad in ["2026-W54", "2026-W00", "2026W50", "26-W50", "2026-W5", "2026-w50", "2026-W5x", ""] {
            assert_eq!(week_bounds(bad, &berlin), None, "{bad}");
        }
    }

    #[test]
    fn the_mail_goes_out_on_monday_from_eight_local() {
        let berlin = crate::time::zone("Europe/Berlin");
        assert!(!is_mail_time(ts("2026-12-07T06:59:00Z"), &berlin), "07:59 in Berlin");
        assert!(is_mail_time(ts("2026-12-07T07:00:00Z"), &berlin), "08:00 in Berlin");
        assert!(is_mail_time(ts("2026-12-07T22:59:00Z"), &berlin), "23:59 on Monday");
        assert!(!is_mail_time(ts("2026-12-07T23:00:00Z"), &berlin), "Tuesday");
        assert!(!is_mail_time(ts("2026-12-06T09:00:00Z"), &berlin), "Sunday");
    }
}
