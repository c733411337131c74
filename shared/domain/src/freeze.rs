//! Freeze windows: spans of time in which in-scope changes may not be submitted,
//! scheduled or started. Times may be given as instants or as wall-clock times of the
//! workspace's time zone (what a change manager means by "Christmas Eve from 18:00"),
//! which are resolved once, DST-correct, when the window is filed.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::change::{check_assets, ChangeRequest, ChangeType, TITLE_MAX};
use crate::ids::UserId;
use crate::recurrence::Series;
use crate::FieldErrors;

/// Which changes a window holds. With `all`, every change; otherwise a change must
/// match every criterion given (an asset in common, and its type when types are named).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FreezeScope {
    pub all: bool,
    pub assets: Vec<String>,
    pub change_types: Vec<ChangeType>,
}

impl FreezeScope {
    pub fn covers(&self, c: &ChangeRequest) -> bool {
        if self.all {
            return true;
        }
        let assets = self.assets.is_empty() || c.affected_assets.iter().any(|a| self.assets.contains(a));
        let types = self.change_types.is_empty() || self.change_types.contains(&c.change_type);
        assets && types
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FreezeWindow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The workspace time zone the window was filed in, with its bounds as wall-clock
    /// times there, so people read it as they wrote it.
    pub timezone: String,
    pub local_start: String,
    pub local_end: String,
    pub scope: FreezeScope,
    pub allow_override: bool,
    /// An RFC 5545 rule repeating the window from `start`/`end` (its first occurrence)
    /// on the wall clock of `timezone`: `RRULE:FREQ=WEEKLY;BYDAY=FR`.
    #[serde(default)]
    pub recurrence: Option<String>,
    /// The end of a recurring window's last occurrence; `null` for a one-off window
    /// (it ends at `end`) or a rule without end.
    #[serde(default)]
    pub series_end: Option<Timestamp>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub version: u64,
}

/// Where an index by end time files a window without end: after every instant.
pub const FOREVER: Timestamp = Timestamp::constant(253_370_764_800, 0);

impl FreezeWindow {
    /// The rule, when the window recurs and its rule still reads (it was checked when
    /// filed; one that no longer reads is taken as its first occurrence alone).
    pub fn series(&self) -> Option<Series> {
        let rule = self.recurrence.as_deref()?;
        Series::parse(rule, self.start, self.end, &crate::time::zone(&self.timezone)).ok()
    }

    /// After this instant the window never holds again.
    pub fn holds_until(&self) -> Timestamp {
        match &self.recurrence {
            Some(_) => self.series_end.unwrap_or(FOREVER),
            None => self.end,
        }
    }

    /// The first occurrence meeting `[from, to)` (a span touching its end does not).
    pub fn occurrence_over(&self, from: Timestamp, to: Timestamp) -> Option<(Timestamp, Timestamp)> {
        match self.series() {
            Some(series) => series.first_between(from, to),
            None => (from < self.end && self.start < to).then_some((self.start, self.end)),
        }
    }

    /// The occurrences meeting `[from, to)`, earliest first, at most `limit`.
    pub fn occurrences(&self, from: Timestamp, to: Timestamp, limit: usize) -> Vec<(Timestamp, Timestamp)> {
        match self.series() {
            Some(series) => series.between(from, to, limit),
            None => self.occurrence_over(from, to).into_iter().collect(),
        }
    }

    /// Whether `[from, to)` meets an occurrence of the window.
    pub fn overlaps(&self, from: Timestamp, to: Timestamp) -> bool {
        self.occurrence_over(from, to).is_some()
    }

    /// Whether this window blocks `c` over `[from, to)`.
    pub fn blocks(&self, c: &ChangeRequest, from: Timestamp, to: Timestamp) -> bool {
        self.scope.covers(c) && self.overlaps(from, to)
    }

    /// This window as one occurrence, `start`..`end`: what a refusal or a notice names.
    pub fn occurring(&self, (start, end): (Timestamp, Timestamp)) -> FreezeWindow {
        let tz = crate::time::zone(&self.timezone);
        FreezeWindow {
            start,
            end,
            local_start: local_time(start, &tz),
            local_end: local_time(end, &tz),
            ..self.clone()
        }
    }

    /// The occurrence of this window that blocks `c` over `[from, to)`.
    pub fn blocking(&self, c: &ChangeRequest, from: Timestamp, to: Timestamp) -> Option<FreezeWindow> {
        if !self.scope.covers(c) {
            return None;
        }
        self.occurrence_over(from, to).map(|o| self.occurring(o))
    }
}

/// The span of a change a freeze window is checked against, per action: its planned
/// window at submit and schedule; at start, from now to the planned end.
pub fn guarded_span(c: &ChangeRequest, starting_now: Option<Timestamp>) -> Option<(Timestamp, Timestamp)> {
    match starting_now {
        Some(now) => {
            let end = c.planned_end.filter(|e| *e > now).unwrap_or(now + jiff::SignedDuration::from_secs(1));
            Some((now, end))
        }
        None => Some((c.planned_start?, c.planned_end?)),
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    pub all: Option<bool>,
    pub assets: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<crate::change::ChangeType>>)]
    pub change_types: Option<Vec<String>>,
}

/// `POST /freeze-windows`, as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFreezeWindow {
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end: Option<String>,
    pub scope: Option<RawScope>,
    pub allow_override: Option<bool>,
    /// `RRULE:...` (RFC 5545): `start`/`end` are then the first occurrence.
    pub recurrence: Option<String>,
}

/// A window's checked values, before it has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeFields {
    pub name: String,
    pub description: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub local_start: String,
    pub local_end: String,
    pub scope: FreezeScope,
    pub allow_override: bool,
    pub recurrence: Option<String>,
    pub series_end: Option<Timestamp>,
}

/// Resolves a bound: an instant with an offset as is; a wall-clock date-time, or a bare
/// date, in `tz`. A bare date as the end means the end of that day (the window covers it).
fn resolve(raw: &str, tz: &TimeZone, is_end: bool) -> Option<Timestamp> {
    if let Some(t) = crate::time::parse(raw) {
        return Some(crate::time::to_millis(t));
    }
    if !raw.contains('T') {
        let date = raw.parse::<Date>().ok()?;
        let day = if is_end { date.tomorrow().ok()? } else { date };
        return day.to_zoned(tz.clone()).ok().map(|z| z.timestamp());
    }
    let dt = raw.parse::<DateTime>().ok()?;
    dt.to_zoned(tz.clone()).ok().map(|z| crate::time::to_millis(z.timestamp()))
}

/// A wall-clock rendering of `t` in `tz`, without offset: `2026-12-24T18:00:00`.
pub fn local_time(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone()).datetime().round(jiff::Unit::Second).unwrap_or_default().to_string()
}

impl RawFreezeWindow {
    /// Checks the values; wall-clock bounds are read in the workspace time zone `tz_name`.
    pub fn parse(self, tz_name: &str) -> Result<FreezeFields, FieldErrors> {
        let tz = crate::time::zone(tz_name);
        let mut e = FieldErrors::default();
        let name = self.name.map(|n| n.trim().to_owned()).unwrap_or_default();
        if let Err(reason) = crate::text::check_line(&name, 1, TITLE_MAX) {
            e.add("name", format!("required: {reason}"));
        }
        let description = self.description.unwrap_or_default();
        if let Err(reason) = crate::text::check_lines(&description, 0, crate::change::TEXT_MAX) {
            e.add("description", reason);
        }
        let mut bound = |field: &str, raw: Option<String>, is_end: bool| {
            let reason = "required: an RFC 3339 instant, or a local date-time or date in the workspace time zone";
            match raw.as_deref().and_then(|r| resolve(r.trim(), &tz, is_end)) {
                Some(t) => Some(t),
                None => {
                    e.add(field, reason);
                    None
                }
            }
        };
        let start = bound("start", self.start, false);
        let end = bound("end", self.end, true);
        if let (Some(s), Some(en)) = (start, end) {
            if en <= s {
                e.add("end", "must be after start");
            }
        }
        let raw_scope = self.scope.unwrap_or_default();
        let mut scope = FreezeScope { all: raw_scope.all.unwrap_or(false), ..FreezeScope::default() };
        if let Some(assets) = raw_scope.assets {
            scope.assets = check_assets(&mut e, "scope.assets", assets);
        }
        scope.change_types = crate::policy::enums(
            &mut e,
            "scope.change_types",
            raw_scope.change_types,
            ChangeType::parse,
            ChangeType::choices(),
        );
        if !scope.all && scope.assets.is_empty() && scope.change_types.is_empty() {
            e.add("scope", "name all: true, assets or change_types");
        }
        let mut series = None;
        if let (Some(rule), Some(s), Some(en)) = (self.recurrence.as_deref(), start, end) {
            match Series::check(rule, s, en, &tz) {
                Ok(checked) => series = Some(checked),
                Err(reason) => e.add("recurrence", reason),
            }
        }
        if !e.is_empty() {
            return Err(e);
        }
        let (start, end) = (start.unwrap_or_default(), end.unwrap_or_default());
        Ok(FreezeFields {
            name,
            description,
            start,
            end,
            local_start: local_time(start, &tz),
            local_end: local_time(end, &tz),
            scope,
            allow_override: self.allow_override.unwrap_or(false),
            recurrence: series.as_ref().map(|c| c.rule.clone()),
            series_end: series.and_then(|c| c.last_end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::draft;

    fn raw(start: &str, end: &str, scope: RawScope) -> RawFreezeWindow {
        RawFreezeWindow {
            name: Some("year end".into()),
            start: Some(start.into()),
            end: Some(end.into()),
            scope: Some(scope),
            ..RawFreezeWindow::default()
        }
    }

    fn all() -> RawScope {
        RawScope { all: Some(true), ..RawScope::default() }
    }

    #[test]
    fn wall_clock_bounds_are_read_in_the_workspace_zone() {
        let f = raw("2026-12-24T18:00", "2026-12-26", all()).parse("Europe/Berlin").unwrap();
        assert_eq!(f.start, "2026-12-24T17:00:00Z".parse::<Timestamp>().unwrap());
        // A bare end date covers that whole day.
        assert_eq!(f.end, "2026-12-26T23:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!((f.local_start.as_str(), f.local_end.as_str()), ("2026-12-24T18:00:00", "2026-12-27T00:00:00"));
        // Summer time is honoured: the same wall clock is an hour earlier in UTC.
        let f = raw("2026-07-01T18:00:00", "2026-07-02T00:00:00", all()).parse("Europe/Berlin").unwrap();
        assert_eq!(f.start, "2026-07-01T16:00:00Z".parse::<Timestamp>().unwrap());
        // Instants with an offset are taken as they are.
        let f = raw("2026-12-24T18:00:00+01:00", "2026-12-25T00:00:00Z", all()).parse("America/New_York").unwrap();
        assert_eq!(f.start, "2026-12-24T17:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(f.local_start, "2026-12-24T12:00:00");
    }

    #[test]
    fn bad_windows_name_each_field() {
        let e = RawFreezeWindow::default().parse("UTC").unwrap_err();
        for f in ["name", "start", "end", "scope"] {
            assert!(e.0.contains_key(f), "{f} in {e:?}");
        }
        let e = raw(
            "2026-12-02",
            "2026-12-01T00:00:00Z",
            RawScope { change_types: Some(vec!["odd".into()]), ..RawScope::default() },
        )
        .parse("UTC")
        .unwrap_err();
        assert!(e.0.contains_key("end") && e.0.contains_key("scope.change_types"), "{e:?}");
    }

    #[test]
    fn scope_criteria_narrow_each_other() {
        let scope = |assets: &[&str], types: &[ChangeType]| FreezeScope {
            all: false,
            assets: assets.iter().map(|s| s.to_string()).collect(),
            change_types: types.to_vec(),
        };
        let mut c = draft();
        c.affected_assets = vec!["db".into()];
        assert!(scope(&["db"], &[]).covers(&c));
        assert!(!scope(&["web"], &[]).covers(&c));
        assert!(scope(&[], &[ChangeType::Normal]).covers(&c));
        assert!(!scope(&["db"], &[ChangeType::Emergency]).covers(&c));
        assert!(FreezeScope { all: true, ..scope(&["web"], &[]) }.covers(&c));
    }
}
