//! The risk questionnaire and similar changes. A score of 0-100 is the sum of capped
//! factors, each explained, so the suggestion can be argued with: asset criticality,
//! how many assets, when the work happens, how similar changes fared, and preparation.

use std::collections::BTreeSet;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::change::{ChangeRequest, ChangeType, ClosureCode, RiskLevel, Status};
use crate::conflict::Window;
use crate::ids::ChangeNumber;
use crate::FieldErrors;

crate::change::wire_enum!(Criticality { Low = "low", Medium = "medium", High = "high", Critical = "critical" });

/// `PUT /risk-assessment` `{answers: {...}}`: what only people know about a change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAnswers {
    /// The most critical affected asset: low, medium, high or critical.
    #[schema(value_type = Option<Criticality>)]
    pub asset_criticality: Option<String>,
    /// The planned window lies inside an agreed maintenance window.
    pub in_maintenance_window: Option<bool>,
    /// Tested in a pre-production environment.
    pub tested: Option<bool>,
    pub rollback_tested: Option<bool>,
    pub customer_facing: Option<bool>,
    pub requires_downtime: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answers {
    pub asset_criticality: Criticality,
    pub in_maintenance_window: bool,
    pub tested: bool,
    pub rollback_tested: bool,
    pub customer_facing: bool,
    pub requires_downtime: bool,
}

impl RawAnswers {
    pub fn parse(self) -> Result<Answers, FieldErrors> {
        let mut e = FieldErrors::default();
        let asset_criticality = match self.asset_criticality.as_deref() {
            Some(c) => Criticality::parse(c).unwrap_or_else(|| {
                e.add("answers.asset_criticality", format!("must be one of: {}", Criticality::choices()));
                Criticality::Medium
            }),
            None => {
                e.add("answers.asset_criticality", format!("required: one of {}", Criticality::choices()));
                Criticality::Medium
            }
        };
        if !e.is_empty() {
            return Err(e);
        }
        Ok(Answers {
            asset_criticality,
            in_maintenance_window: self.in_maintenance_window.unwrap_or(false),
            tested: self.tested.unwrap_or(false),
            rollback_tested: self.rollback_tested.unwrap_or(false),
            customer_facing: self.customer_facing.unwrap_or(false),
            requires_downtime: self.requires_downtime.unwrap_or(false),
        })
    }
}

/// How earlier, similar changes ended.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Track {
    pub ended: usize,
    pub failed: usize,
}

/// One factor of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Factor {
    pub factor: String,
    pub points: u32,
    pub max: u32,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assessment {
    pub change_number: crate::ids::ChangeNumber,
    pub score: u32,
    pub suggested_risk_level: RiskLevel,
    pub current_risk_level: RiskLevel,
    pub factors: Vec<Factor>,
    pub answers: Answers,
    pub assessed_by: crate::ids::UserId,
    pub assessed_at: Timestamp,
}

/// Whether any part of `w` falls in business hours (Monday to Friday, 09:00-17:00
/// local time in `tz`).
pub fn touches_business_hours(w: &Window, tz: &TimeZone) -> bool {
    let start = w.start.to_zoned(tz.clone());
    let mut day = start.date();
    // Two weeks cover every weekday pattern; longer windows surely meet business hours.
    for _ in 0..15 {
        if !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
            let open = day.at(9, 0, 0, 0).to_zoned(tz.clone()).map(|z| z.timestamp());
            let close = day.at(17, 0, 0, 0).to_zoned(tz.clone()).map(|z| z.timestamp());
            if let (Ok(open), Ok(close)) = (open, close) {
                if w.start < close && open < w.end {
                    return true;
                }
                if open >= w.end {
                    return false;
                }
            }
        }
        match day.checked_add(1.day()) {
            Ok(next) => day = next,
            Err(_) => return false,
        }
    }
    true
}

/// Scores a change from the answers, its assets and window, and the track record of
/// similar changes.
pub fn score(c: &ChangeRequest, a: &Answers, tz: &TimeZone, track: Track) -> (u32, RiskLevel, Vec<Factor>) {
    let f = |factor: &str, points: u32, max: u32, detail: String| Factor { factor: factor.into(), points, max, detail };
    let criticality = match a.asset_criticality {
        Criticality::Low => 0,
        Criticality::Medium => 8,
        Criticality::High => 16,
        Criticality::Critical => 25,
    };
    let n = c.affected_assets.len();
    let assets = match n {
        0 => 0,
        1 => 3,
        2..=3 => 6,
        4..=10 => 10,
        _ => 15,
    };
    let (timing, timing_detail) = match Window::of(c) {
        _ if a.in_maintenance_window => (0, "inside an agreed maintenance window".to_owned()),
        None => (8, "no planned window yet".to_owned()),
        Some(w) if touches_business_hours(&w, tz) => (15, "during business hours (Mon-Fri 09-17 local)".to_owned()),
        Some(_) => (5, "outside business hours".to_owned()),
    };
    let (history, history_detail) = if track.ended == 0 {
        (0, "no similar change has ended yet".to_owned())
    } else {
        let rate = track.failed as f64 / track.ended as f64;
        (
            (rate * 20.0).round() as u32,
            format!("{} of {} similar changes failed or were rolled back", track.failed, track.ended),
        )
    };
    let mut prep = 0;
    let mut gaps = Vec::new();
    for (missing, points, what) in [
        (!a.tested, 10, "not tested before production"),
        (!a.rollback_tested, 5, "rollback not rehearsed"),
        (a.customer_facing, 5, "customer facing"),
        (a.requires_downtime, 5, "needs downtime"),
    ] {
        if missing {
            prep += points;
            gaps.push(what);
        }
    }
    let factors = vec![
        f("asset_criticality", criticality, 25, format!("most critical asset: {}", a.asset_criticality)),
        f("asset_count", assets, 15, format!("{n} affected asset(s)")),
        f("timing", timing, 15, timing_detail),
        f("similar_failure_rate", history, 20, history_detail),
        f("preparation", prep, 25, if gaps.is_empty() { "well prepared".into() } else { gaps.join(", ") }),
    ];
    let total: u32 = factors.iter().map(|f| f.points).sum::<u32>().min(100);
    let level = match total {
        0..=34 => RiskLevel::Low,
        35..=64 => RiskLevel::Medium,
        _ => RiskLevel::High,
    };
    (total, level, factors)
}

/// How a change ended, in one word: its closure code, or how it stopped, or where it is.
pub fn outcome(c: &ChangeRequest) -> &'static str {
    match (c.status, c.closure_code) {
        (Status::Completed, Some(code)) => code.as_str(),
        (s, _) => s.as_str(),
    }
}

/// Whether a change has ended, and whether that counts as a failure.
pub fn ended(c: &ChangeRequest) -> Option<bool> {
    match c.status {
        Status::Completed => Some(c.closure_code == Some(ClosureCode::Unsuccessful)),
        Status::Failed | Status::RolledBack => Some(true),
        _ => None,
    }
}

const STOP_WORDS: &[&str] = &["the", "and", "for", "to", "of", "on", "in", "a", "an", "with", "from", "into", "at"];

fn words(title: &str) -> BTreeSet<String> {
    title
        .split(|ch: char| !ch.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 2 && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// Title similarity from 0 to 1: shared words over all words (Jaccard).
pub fn title_similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

/// A similar change as `GET /similar` shows it.
/// A change like another one, with how it ended: what `GET /changes/{n}/similar` lists.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Similar {
    pub number: ChangeNumber,
    pub title: String,
    pub change_type: ChangeType,
    pub status: Status,
    pub closure_code: Option<ClosureCode>,
    /// The closure code of a completed change, else its status.
    pub outcome: &'static str,
    pub shared_assets: Vec<String>,
    /// 0 to 1, rounded to two places.
    pub title_similarity: f64,
    pub ended_at: Option<jiff::Timestamp>,
}

pub fn similar_view(c: &ChangeRequest, shared_assets: Vec<String>, similarity: f64) -> Similar {
    Similar {
        number: c.number,
        title: c.title.clone(),
        change_type: c.change_type,
        status: c.status,
        closure_code: c.closure_code,
        outcome: outcome(c),
        shared_assets,
        title_similarity: (similarity * 100.0).round() / 100.0,
        ended_at: c.ended_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::draft;

    fn answers(criticality: Criticality) -> Answers {
        Answers {
            asset_criticality: criticality,
            in_maintenance_window: false,
            tested: true,
            rollback_tested: true,
            customer_facing: false,
            requires_downtime: false,
        }
    }

    #[test]
    fn scores_add_up_and_suggest_a_level() {
        let mut c = draft();
        c.affected_assets = vec!["a".into()];
        // Saturday night in Berlin: outside business hours.
        c.planned_start = Some("2026-12-05T22:00:00Z".parse().unwrap());
        c.planned_end = Some("2026-12-05T23:00:00Z".parse().unwrap());
        let tz = jiff::tz::db().get("Europe/Berlin").unwrap();
        let (s, level, factors) = score(&c, &answers(Criticality::Low), &tz, Track::default());
        assert_eq!((s, level), (3 + 5, RiskLevel::Low));
        assert_eq!(factors.len(), 5);
        // Tuesday 10:00 Berlin, critical, untested, half of similar changes failed.
        c.planned_start = Some("2026-12-08T09:00:00Z".parse().unwrap());
        c.planned_end = Some("2026-12-08T10:00:00Z".parse().unwrap());
        let mut a = answers(Criticality::Critical);
        a.tested = false;
        let (s, level, _) = score(&c, &a, &tz, Track { ended: 4, failed: 2 });
        assert_eq!((s, level), (25 + 3 + 15 + 10 + 10, RiskLevel::Medium));
        a.customer_facing = true;
        let (s, level, _) = score(&c, &a, &tz, Track { ended: 4, failed: 2 });
        assert_eq!((s, level), (25 + 3 + 15 + 10 + 15, RiskLevel::High));
        a.in_maintenance_window = true;
        assert_eq!(score(&c, &a, &tz, Track { ended: 4, failed: 2 }).0, 25 + 3 + 10 + 15);
    }

    #[test]
    fn business_hours_are_local() {
        let tz = jiff::tz::db().get("America/New_York").unwrap();
        let w = |a: &str, b: &str| Window { start: a.parse().unwrap(), end: b.parse().unwrap() };
        // 08:00-08:59 New York on a Monday.
        assert!(!touches_business_hours(&w("2026-12-07T13:00:00Z", "2026-12-07T13:59:00Z"), &tz));
        assert!(touches_business_hours(&w("2026-12-07T13:00:00Z", "2026-12-07T14:30:00Z"), &tz));
        // A whole weekend.
        assert!(!touches_business_hours(&w("2026-12-05T05:00:00Z", "2026-12-07T13:00:00Z"), &tz));
    }

    #[test]
    fn titles_compare_by_shared_words() {
        assert_eq!(title_similarity("Rotate TLS cert on api", "rotate the tls cert for API"), 1.0);
        assert!(title_similarity("Upgrade postgres to 16", "Upgrade redis") > 0.0);
        assert_eq!(title_similarity("a", ""), 0.0);
    }
}
