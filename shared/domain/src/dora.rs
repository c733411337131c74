//! DORA's four keys from the changes that ended in a range: how often a workspace
//! deploys, how often that fails, how long a change takes from submission to its end,
//! and how long a failure stays unrestored.
//!
//! A deployment is a change that reached `completed`, `failed` or `rolled_back`; a
//! failure is one that ended `failed` or `rolled_back`, or completed `unsuccessful`.
//! Time to restore runs from a failure's end to the next successful end of a change
//! sharing one of its assets, found among the changes of the same range (a failure not
//! restored within it is left out of the figure, not counted as restored).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::change::{ChangeRequest, ClosureCode, Status};
use crate::ids::ChangeNumber;

/// One ended change, as the index by completion time keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    pub number: ChangeNumber,
    pub status: Status,
    pub closure_code: Option<ClosureCode>,
    pub submitted_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    pub assets: Vec<String>,
}

impl Ended {
    /// The entry of a change that has ended; `None` while it has not.
    pub fn of(c: &ChangeRequest) -> Option<Ended> {
        let ended_at = c.ended_at?;
        matches!(c.status, Status::Completed | Status::Failed | Status::RolledBack).then(|| Ended {
            number: c.number,
            status: c.status,
            closure_code: c.closure_code,
            submitted_at: c.submitted_at,
            ended_at,
            assets: c.affected_assets.clone(),
        })
    }

    pub fn failed(&self) -> bool {
        match self.status {
            Status::Failed | Status::RolledBack => true,
            _ => self.closure_code == Some(ClosureCode::Unsuccessful),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeadTime {
    /// `null` without deployments.
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TimeToRestore {
    /// `null` without a failure restored within the range.
    pub median: Option<f64>,
}

/// `GET /metrics/dora`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Dora {
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    pub deployments: usize,
    pub failures: usize,
    pub deployment_frequency_per_day: f64,
    /// Failures over deployments; `null` without deployments.
    pub change_failure_rate: Option<f64>,
    pub lead_time_hours: LeadTime,
    pub time_to_restore_hours: TimeToRestore,
}

fn hours(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64() / 3600.0
}

/// The nearest-rank percentile `p` (0..=100) of sorted `v`.
fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The median of sorted `v`, the mean of the middle two for an even count.
fn median(v: &[f64]) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Hours and rates per day rounded to a hundredth, as they are read.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A ratio rounded to four places (a percentage to two).
fn ratio(part: usize, whole: usize) -> f64 {
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// The figures over the changes that ended in `[from, to)`. `ended` may hold a change
/// more than once (an index read across a reopen): its latest end counts.
pub fn metrics(ended: &[Ended], from: Timestamp, to: Timestamp) -> Dora {
    let mut latest: std::collections::BTreeMap<ChangeNumber, &Ended> = Default::default();
    for e in ended.iter().filter(|e| e.ended_at >= from && e.ended_at < to) {
        let slot = latest.entry(e.number).or_insert(e);
        if e.ended_at > slot.ended_at {
            *slot = e;
        }
    }
    let mut all: Vec<&Ended> = latest.into_values().collect();
    all.sort_by_key(|e| (e.ended_at, e.number));
    let failures: Vec<&&Ended> = all.iter().filter(|e| e.failed()).collect();
    let lead = sorted(all.iter().filter_map(|e| Some(hours(e.submitted_at?, e.ended_at))).collect());
    let restore = sorted(
        failures
            .iter()
            .filter_map(|f| {
                let fixed = all.iter().find(|s| {
                    s.ended_at > f.ended_at && !s.failed() && s.assets.iter().any(|a| f.assets.contains(a))
                })?;
                Some(hours(f.ended_at, fixed.ended_at))
            })
            .collect(),
    );
    let days = hours(from, to) / 24.0;
    let n = all.len();
    Dora {
        from,
        to,
        deployments: n,
        failures: failures.len(),
        deployment_frequency_per_day: if days > 0.0 { round(n as f64 / days) } else { 0.0 },
        change_failure_rate: (n > 0).then(|| ratio(failures.len(), n)),
        lead_time_hours: LeadTime { median: median(&lead).map(round), p90: percentile(&lead, 90.0).map(round) },
        time_to_restore_hours: TimeToRestore { median: median(&restore).map(round) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> Timestamp {
        "2027-03-01T00:00:00Z".parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_hours(h)
    }

    fn ended(n: u64, status: Status, code: Option<ClosureCode>, submitted: i64, end: i64, assets: &[&str]) -> Ended {
        Ended {
            number: ChangeNumber::new(n).unwrap(),
            status,
            closure_code: code,
            submitted_at: Some(at(submitted)),
            ended_at: at(end),
            assets: assets.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn every_figure_from_a_known_history() {
        use ClosureCode::*;
        let history = [
            ended(1, Status::Completed, Some(Successful), 0, 10, &["db"]),
            ended(2, Status::Failed, None, 0, 20, &["db", "web"]),
            ended(3, Status::Completed, Some(SuccessfulWithIssues), 10, 30, &["cache"]),
            // Restores 2 (shares web) 16 hours after it failed.
            ended(4, Status::Completed, Some(Successful), 30, 36, &["web"]),
            ended(5, Status::Completed, Some(Unsuccessful), 40, 48, &["dns"]),
            ended(6, Status::RolledBack, None, 40, 60, &["db"]),
            // Restores 6 (db) after 12 hours; nothing restores 5's dns.
            ended(7, Status::Completed, Some(Successful), 70, 72, &["db"]),
            // Outside the range on either side.
            ended(8, Status::Failed, None, -30, -1, &["db"]),
            ended(9, Status::Completed, Some(Successful), 90, 96, &["dns"]),
        ];
        let d = metrics(&history, at(0), at(96));
        assert_eq!((d.deployments, d.failures), (7, 3));
        assert_eq!(d.deployment_frequency_per_day, 1.75, "7 over 4 days");
        assert_eq!(d.change_failure_rate, Some(0.4286), "3 of 7");
        // Lead times: 10, 20, 20, 6, 8, 20, 2 → sorted 2 6 8 10 20 20 20.
        assert_eq!(d.lead_time_hours, LeadTime { median: Some(10.0), p90: Some(20.0) });
        // Restores: 16 and 12 → median 14.
        assert_eq!(d.time_to_restore_hours, TimeToRestore { median: Some(14.0) });
    }

    #[test]
    fn an_empty_range_has_no_ratios_and_a_reopened_change_counts_once() {
        let d = metrics(&[], at(0), at(24));
        assert_eq!((d.deployments, d.deployment_frequency_per_day, d.change_failure_rate), (0, 0.0, None));
        assert_eq!((d.lead_time_hours.median, d.time_to_restore_hours.median), (None, None));
        let twice = [
            ended(1, Status::Completed, Some(ClosureCode::Successful), 0, 5, &["db"]),
            ended(1, Status::Failed, None, 0, 9, &["db"]),
        ];
        let d = metrics(&twice, at(0), at(24));
        assert_eq!((d.deployments, d.failures, d.lead_time_hours.median), (1, 1, Some(9.0)));
    }
}
