//! The change lifecycle: which action leads where, and the guards each one enforces.
//! Guards that need other records (approvers, dependencies) take them as arguments.

use jiff::Timestamp;

use crate::change::{ChangeRequest, ChangeType, ClosureCode, RiskLevel, Status};
use crate::{DomainError, FieldErrors};

/// An action on a change, as named in the URL `/changes/{number}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Submit,
    Approve,
    Reject,
    RequestChanges,
    Schedule,
    Start,
    Complete,
    Fail,
    Rollback,
    Reopen,
    Cancel,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::Submit,
        Action::Approve,
        Action::Reject,
        Action::RequestChanges,
        Action::Schedule,
        Action::Start,
        Action::Complete,
        Action::Fail,
        Action::Rollback,
        Action::Reopen,
        Action::Cancel,
    ];

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Submit => "submit",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::RequestChanges => "request-changes",
            Action::Schedule => "schedule",
            Action::Start => "start",
            Action::Complete => "complete",
            Action::Fail => "fail",
            Action::Rollback => "rollback",
            Action::Reopen => "reopen",
            Action::Cancel => "cancel",
        }
    }

    /// The audit verb: `change.<verb>`.
    pub fn audit_verb(self) -> &'static str {
        match self {
            Action::RequestChanges => "request_changes",
            other => other.as_str(),
        }
    }

    /// The statuses this action may start from.
    fn sources(self) -> &'static [Status] {
        use Status::*;
        match self {
            Action::Submit => &[Draft],
            Action::Approve | Action::Reject | Action::RequestChanges => &[Review],
            Action::Schedule => &[Approved],
            Action::Start => &[Scheduled],
            Action::Complete | Action::Fail | Action::Rollback => &[InProgress],
            Action::Reopen => &[Completed],
            Action::Cancel => &[Draft, Review, Approved, Scheduled],
        }
    }

    /// Whether this action can tell people something: open approval steps, decide a
    /// round, or roll a change back.
    pub fn may_notify(self) -> bool {
        matches!(self, Action::Submit | Action::Approve | Action::Reject | Action::RequestChanges | Action::Rollback)
    }

    /// Whether members following a change's assets hear of this action.
    pub fn watched(self) -> bool {
        matches!(
            self,
            Action::Submit | Action::Schedule | Action::Start | Action::Complete | Action::Fail | Action::Rollback
        )
    }

    /// Whether this action is an approver's decision rather than the author's move.
    pub fn is_decision(self) -> bool {
        matches!(self, Action::Approve | Action::Reject | Action::RequestChanges)
    }
}

/// Actions that may be taken from `status`, in contract order.
pub fn allowed_actions(status: Status) -> Vec<&'static str> {
    Action::ALL.iter().filter(|a| a.sources().contains(&status)).map(|a| a.as_str()).collect()
}

/// Refuses an action that does not start from the change's status.
pub fn check_transition(status: Status, action: Action) -> Result<(), DomainError> {
    if action.sources().contains(&status) {
        Ok(())
    } else {
        Err(DomainError::InvalidTransition {
            status: status.as_str().to_owned(),
            action: action.as_str().to_owned(),
            allowed: allowed_actions(status).into_iter().map(str::to_owned).collect(),
        })
    }
}

/// Where a change lands after submit: standard changes are pre-approved.
pub fn status_after_submit(change_type: ChangeType) -> Status {
    if change_type == ChangeType::Standard {
        Status::Approved
    } else {
        Status::Review
    }
}

/// The content checks of submit (422 with per-field reasons).
pub fn check_submittable(c: &ChangeRequest) -> Result<(), DomainError> {
    let mut e = FieldErrors::default();
    if matches!(c.risk_level, RiskLevel::Medium | RiskLevel::High) && c.rollback_plan.trim().is_empty() {
        e.add("rollback_plan", "required for medium and high risk changes");
    }
    if c.change_type == ChangeType::Emergency && c.affected_assets.is_empty() {
        e.add("affected_assets", "required for emergency changes");
    }
    if c.planned_start.is_some() != c.planned_end.is_some() {
        let missing = if c.planned_start.is_none() { "planned_start" } else { "planned_end" };
        e.add(missing, "planned_start and planned_end go together");
    }
    if let (Some(s), Some(end)) = (c.planned_start, c.planned_end) {
        if end <= s {
            e.add("planned_end", "must be after planned_start");
        }
    }
    e.into_result()
}

/// Lead time: `planned_start - reference >= min_lead_time_hours`, except for emergencies.
/// At submit the reference is now; at schedule it is `submitted_at`.
pub fn check_lead_time(c: &ChangeRequest, reference: Timestamp) -> Result<(), DomainError> {
    let Some(start) = c.planned_start else {
        return Ok(());
    };
    if c.change_type == ChangeType::Emergency {
        return Ok(());
    }
    let actual = crate::time::hours_between(reference, start);
    if actual + 1e-9 < f64::from(c.min_lead_time_hours) {
        return Err(DomainError::LeadTimeViolation { required_hours: c.min_lead_time_hours, actual_hours: actual });
    }
    Ok(())
}

/// Schedule needs a planned window.
pub fn check_schedulable(c: &ChangeRequest) -> Result<(), DomainError> {
    let mut e = FieldErrors::default();
    if c.planned_start.is_none() {
        e.add("planned_start", "required to schedule");
    }
    if c.planned_end.is_none() {
        e.add("planned_end", "required to schedule");
    }
    e.into_result()?;
    check_submittable(c)
}

/// Trims a free-text reason; `None` when it is absent or blank.
pub fn reason(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Complete needs a closure code and notes.
pub fn check_closure(code: Option<&str>, notes: Option<&str>) -> Result<(ClosureCode, String), DomainError> {
    let (Some(code), Some(notes)) = (code.map(str::trim).filter(|s| !s.is_empty()), reason(notes)) else {
        return Err(DomainError::ClosureRequired);
    };
    let code = ClosureCode::parse(code)
        .ok_or_else(|| FieldErrors::single("closure_code", &format!("must be one of: {}", ClosureCode::choices())))?;
    Ok((code, notes))
}

/// Dependencies must all be completed or cancelled before start.
pub fn check_dependencies(deps: &[(String, Status)]) -> Result<(), DomainError> {
    let blockers: Vec<(String, String)> = deps
        .iter()
        .filter(|(_, s)| !matches!(s, Status::Completed | Status::Cancelled))
        .map(|(n, s)| (n.clone(), s.as_str().to_owned()))
        .collect();
    if blockers.is_empty() {
        Ok(())
    } else {
        Err(DomainError::DependenciesUnmet { blockers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::draft;

    #[test]
    fn every_status_allows_exactly_the_contract_actions() {
        use Status::*;
        let expect: &[(Status, &[&str])] = &[
            (Draft, &["submit", "cancel"]),
            (Review, &["approve", "reject", "request-changes", "cancel"]),
            (Approved, &["schedule", "cancel"]),
            (Scheduled, &["start", "cancel"]),
            (InProgress, &["complete", "fail", "rollback"]),
            (Completed, &["reopen"]),
            (Rejected, &[]),
            (Failed, &[]),
            (RolledBack, &[]),
            (Cancelled, &[]),
        ];
        for (status, actions) in expect {
            assert_eq!(allowed_actions(*status), *actions, "{status}");
            assert_eq!(status.is_terminal(), actions.is_empty(), "{status}");
        }
    }

    #[test]
    fn a_refused_transition_names_status_and_allowed_actions() {
        let err = check_transition(Status::Draft, Action::Start).unwrap_err();
        assert_eq!(
            err,
            DomainError::InvalidTransition {
                status: "draft".into(),
                action: "start".into(),
                allowed: vec!["submit".into(), "cancel".into()]
            }
        );
    }

    #[test]
    fn submit_requires_rollback_plan_for_risky_changes_and_assets_for_emergencies() {
        let mut c = draft();
        c.risk_level = RiskLevel::High;
        c.change_type = ChangeType::Emergency;
        let DomainError::Validation(f) = check_submittable(&c).unwrap_err() else { panic!() };
        assert!(f.0.contains_key("rollback_plan"));
        assert!(f.0.contains_key("affected_assets"));
        c.rollback_plan = "revert".into();
        c.affected_assets = vec!["db".into()];
        assert!(check_submittable(&c).is_ok());
    }

    #[test]
    fn lead_time_is_measured_from_the_reference_and_skipped_for_emergencies() {
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let mut c = draft();
        c.min_lead_time_hours = 24;
        c.planned_start = Some("2026-12-01T23:00:00Z".parse().unwrap());
        assert!(matches!(check_lead_time(&c, now), Err(DomainError::LeadTimeViolation { required_hours: 24, .. })));
        c.planned_start = Some("2026-12-02T00:00:00Z".parse().unwrap());
        assert!(check_lead_time(&c, now).is_ok(), "exactly the lead time is enough");
        c.planned_start = Some("2026-11-30T00:00:00Z".parse().unwrap());
        c.change_type = ChangeType::Emergency;
        assert!(check_lead_time(&c, now).is_ok());
    }

    #[test]
    fn closure_needs_code_and_notes() {
        assert_eq!(check_closure(None, Some("x")), Err(DomainError::ClosureRequired));
        assert_eq!(check_closure(Some("successful"), Some("  ")), Err(DomainError::ClosureRequired));
        assert!(matches!(check_closure(Some("great"), Some("x")), Err(DomainError::Validation(_))));
        assert_eq!(check_closure(Some("successful"), Some(" ok ")), Ok((ClosureCode::Successful, "ok".into())));
    }

    #[test]
    fn dependencies_block_until_completed_or_cancelled() {
        let deps = vec![
            ("CHG-00001".to_owned(), Status::Completed),
            ("CHG-00002".to_owned(), Status::Scheduled),
            ("CHG-00003".to_owned(), Status::Cancelled),
        ];
        assert_eq!(
            check_dependencies(&deps),
            Err(DomainError::DependenciesUnmet { blockers: vec![("CHG-00002".into(), "scheduled".into())] })
        );
    }
}
