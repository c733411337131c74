//! Approval steps: the built-in matrix that decides who must approve, and the rules
//! for recording each decision on its step.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::eligibility::Seats;
use crate::ids::{ChangeNumber, UserId};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepMode {
    /// One approval from any eligible user.
    Any,
    /// Every eligible user approves.
    All,
    /// `quorum` distinct eligible users approve.
    Quorum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Waits for an earlier stage to finish.
    Waiting,
    Pending,
    Approved,
    Rejected,
    ChangesRequested,
    /// Closed without a verdict because the change left review another way.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
    RequestChanges,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
            Verdict::RequestChanges => "request_changes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub user: UserId,
    /// Set when a delegate decided for an eligible approver.
    pub on_behalf_of: Option<UserId>,
    pub verdict: Verdict,
    pub comment: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalStep {
    pub id: String,
    pub workspace_id: String,
    pub change_id: String,
    pub change_number: ChangeNumber,
    /// Submit round: a change sent back to draft and resubmitted gets fresh steps.
    pub round: u32,
    pub stage: u32,
    pub index: u32,
    pub name: String,
    pub mode: StepMode,
    pub quorum: u32,
    pub group: Option<String>,
    /// Who was asked when the step was opened (the author never is).
    pub eligible: Vec<UserId>,
    pub status: StepStatus,
    pub decisions: Vec<Decision>,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    /// The approval policy that asked for this step; `None` for the built-in matrix.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// When the step became pending (its stage opened): its SLA runs from here.
    #[serde(default)]
    pub opened_at: Option<Timestamp>,
    /// When the step was escalated for passing its SLA; it is escalated once.
    #[serde(default)]
    pub escalated_at: Option<Timestamp>,
    pub version: u64,
}

/// A step to open, before it has ids and times.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    pub stage: u32,
    pub name: String,
    pub mode: StepMode,
    pub quorum: u32,
    pub group: Option<String>,
    pub eligible: Vec<UserId>,
}

/// The group whose members approve emergency changes, when it exists.
pub const ECAB_GROUP: &str = "ecab";

/// The names of the built-in matrix's steps (notices say them in the workspace's language).
pub const STEP_APPROVAL: &str = "approval";
pub const STEP_HIGH_RISK: &str = "high-risk approval";
pub const STEP_EMERGENCY: &str = "emergency approval (ECAB)";

impl ApprovalStep {
    /// Approvals needed to pass this step.
    pub fn needed(&self) -> usize {
        match self.mode {
            StepMode::Any => 1,
            StepMode::Quorum => self.quorum as usize,
            StepMode::All => self.eligible.len(),
        }
    }

    fn has_spoken(&self, who: &UserId) -> bool {
        self.decisions.iter().any(|d| &d.user == who || d.on_behalf_of.as_ref() == Some(who))
    }

    /// Whether `caller` could decide this pending step now.
    pub fn offered_to(&self, seats: &Seats) -> bool {
        self.status == StepStatus::Pending && !seats.on(self).is_empty()
    }

    /// Whether `who` has already decided on this step, for themselves or for someone.
    pub fn decided_by(&self, who: &UserId) -> bool {
        self.has_spoken(who)
    }

    /// Records a decision. Returns `NotAnApprover` when the caller holds no seat on this
    /// step, `AlreadyDecided` when every seat they hold has already spoken.
    pub fn decide(
        &mut self,
        seats: &Seats,
        verdict: Verdict,
        comment: Option<String>,
        at: Timestamp,
    ) -> Result<(), DomainError> {
        if self.status != StepStatus::Pending {
            return Err(DomainError::NotAnApprover);
        }
        let caller = &seats.caller;
        let open = seats.on(self);
        if open.is_empty() {
            return Err(DomainError::NotAnApprover);
        }
        if self.has_spoken(caller) {
            return Err(DomainError::AlreadyDecided);
        }
        let seat = open
            .into_iter()
            .find(|s| s.as_ref().is_none_or(|p| !self.has_spoken(p)))
            .ok_or(DomainError::AlreadyDecided)?;
        self.decisions.push(Decision { user: caller.clone(), on_behalf_of: seat, verdict, comment, at });
        self.status = match verdict {
            Verdict::Reject => StepStatus::Rejected,
            Verdict::RequestChanges => StepStatus::ChangesRequested,
            Verdict::Approve => {
                let approvals = self.decisions.iter().filter(|d| d.verdict == Verdict::Approve).count();
                if approvals >= self.needed() {
                    StepStatus::Approved
                } else {
                    StepStatus::Pending
                }
            }
        };
        if self.status != StepStatus::Pending {
            self.decided_at = Some(at);
        }
        Ok(())
    }
}

/// What the steps of one round say about the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundOutcome {
    Pending,
    Approved,
    Rejected,
    ChangesRequested,
}

/// Opens the next stage when the current one has passed, and tells where the round stands.
/// Returns the indexes of steps that were opened.
pub fn advance(steps: &mut [ApprovalStep]) -> (RoundOutcome, Vec<usize>) {
    if steps.iter().any(|s| s.status == StepStatus::Rejected) {
        return (RoundOutcome::Rejected, vec![]);
    }
    if steps.iter().any(|s| s.status == StepStatus::ChangesRequested) {
        return (RoundOutcome::ChangesRequested, vec![]);
    }
    if steps.iter().any(|s| s.status == StepStatus::Pending) {
        return (RoundOutcome::Pending, vec![]);
    }
    let next = steps.iter().filter(|s| s.status == StepStatus::Waiting).map(|s| s.stage).min();
    match next {
        None => (RoundOutcome::Approved, vec![]),
        Some(stage) => {
            let opened: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].stage == stage).collect();
            for &i in &opened {
                steps[i].status = StepStatus::Pending;
            }
            (RoundOutcome::Pending, opened)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::change::{ChangeRequest, ChangeType, RiskLevel};
    use crate::role::Role;
    use crate::test_support::{draft, user};

    fn members() -> Vec<(UserId, Role)> {
        vec![
            (user("alice"), Role::Admin),
            (user("bob"), Role::Approver),
            (user("carol"), Role::Owner),
            (user("dave"), Role::Member),
        ]
    }

    fn step(plan: &StepPlan) -> ApprovalStep {
        ApprovalStep {
            id: "s".into(),
            workspace_id: "w".into(),
            change_id: "c".into(),
            change_number: ChangeNumber::new(1).unwrap(),
            round: 1,
            stage: plan.stage,
            index: 0,
            name: plan.name.clone(),
            mode: plan.mode,
            quorum: plan.quorum,
            group: plan.group.clone(),
            eligible: plan.eligible.clone(),
            status: StepStatus::Pending,
            decisions: vec![],
            created_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            decided_at: None,
            policy_id: None,
            opened_at: None,
            escalated_at: None,
            version: 1,
        }
    }

    /// The built-in matrix, through the one planner.
    fn builtin_steps(
        c: &ChangeRequest,
        members: &[(UserId, Role)],
        groups: &BTreeMap<String, Vec<UserId>>,
    ) -> Result<Vec<StepPlan>, DomainError> {
        crate::policy::plan(&crate::policy::builtin(c, groups), c, members, groups)
    }

    #[test]
    fn matrix_by_type_and_risk() {
        let groups = BTreeMap::new();
        let mut c = draft();
        c.change_type = ChangeType::Standard;
        assert!(builtin_steps(&c, &members(), &groups).unwrap().is_empty());

        c.change_type = ChangeType::Normal;
        let s = builtin_steps(&c, &members(), &groups).unwrap();
        assert_eq!((s[0].mode, s[0].eligible.clone()), (StepMode::Any, vec![user("bob"), user("carol")]));

        c.risk_level = RiskLevel::High;
        let s = builtin_steps(&c, &members(), &groups).unwrap();
        assert_eq!((s[0].mode, s[0].quorum), (StepMode::Quorum, 2));
    }

    #[test]
    fn emergencies_draw_from_ecab_when_it_exists() {
        let mut c = draft();
        c.change_type = ChangeType::Emergency;
        let mut groups = BTreeMap::new();
        groups.insert("ecab".to_owned(), vec![user("bob"), user("dave"), user("alice")]);
        // dave lacks an approving role and alice is the author: only bob is left.
        assert_eq!(
            builtin_steps(&c, &members(), &groups),
            Err(DomainError::NoEligibleApprovers { needed: 2, available: 1 })
        );
        groups.insert("ecab".to_owned(), vec![user("bob"), user("carol")]);
        let s = builtin_steps(&c, &members(), &groups).unwrap();
        assert_eq!(s[0].group.as_deref(), Some("ecab"));
        assert_eq!(s[0].quorum, 2);
    }

    #[test]
    fn nobody_but_the_author_means_no_eligible_approvers() {
        let c = draft();
        let only_author = vec![(user("alice"), Role::Owner), (user("dave"), Role::Member)];
        assert_eq!(
            builtin_steps(&c, &only_author, &BTreeMap::new()),
            Err(DomainError::NoEligibleApprovers { needed: 1, available: 0 })
        );
    }

    #[test]
    fn a_demoted_approver_no_longer_holds_a_seat() {
        let plan = StepPlan {
            stage: 0,
            name: "a".into(),
            mode: StepMode::Any,
            quorum: 1,
            group: None,
            eligible: vec![user("bob")],
        };
        let mut s = step(&plan);
        let bob = user("bob");
        let seats = Seats { caller: bob, as_self: false, delegators: vec![] };
        let at = s.created_at;
        assert_eq!(s.decide(&seats, Verdict::Approve, None, at), Err(DomainError::NotAnApprover));
    }

    #[test]
    fn quorum_needs_two_distinct_people() {
        let mut c = draft();
        c.risk_level = RiskLevel::High;
        let plan = &builtin_steps(&c, &members(), &BTreeMap::new()).unwrap()[0];
        let mut s = step(plan);
        let at = s.created_at;
        s.decide(&Seats::own(&user("bob")), Verdict::Approve, None, at).unwrap();
        assert_eq!(s.status, StepStatus::Pending);
        assert_eq!(s.decide(&Seats::own(&user("bob")), Verdict::Approve, None, at), Err(DomainError::AlreadyDecided));
        assert_eq!(s.decide(&Seats::own(&user("dave")), Verdict::Approve, None, at), Err(DomainError::NotAnApprover));
        s.decide(&Seats::own(&user("carol")), Verdict::Approve, None, at).unwrap();
        assert_eq!(s.status, StepStatus::Approved);
        assert_eq!(advance(&mut [s]).0, RoundOutcome::Approved);
    }

    #[test]
    fn a_delegate_speaks_once_for_the_delegator() {
        let plan = StepPlan {
            stage: 0,
            name: "x".into(),
            mode: StepMode::Quorum,
            quorum: 2,
            group: None,
            eligible: vec![user("bob"), user("carol")],
        };
        let mut s = step(&plan);
        let at = s.created_at;
        let erin = user("erin");
        let seats = Seats { caller: erin.clone(), as_self: true, delegators: vec![user("bob")] };
        assert!(s.offered_to(&seats));
        assert!(!s.offered_to(&Seats::own(&erin)));
        s.decide(&seats, Verdict::Approve, None, at).unwrap();
        assert_eq!(s.decisions[0].on_behalf_of, Some(user("bob")));
        // bob himself can no longer add a second vote for the same seat.
        assert_eq!(s.decide(&Seats::own(&user("bob")), Verdict::Approve, None, at), Err(DomainError::AlreadyDecided));
        s.decide(&Seats::own(&user("carol")), Verdict::Reject, Some("no".into()), at).unwrap();
        assert_eq!(advance(&mut [s]).0, RoundOutcome::Rejected);
    }

    #[test]
    fn later_stages_open_when_earlier_ones_pass() {
        let plan = StepPlan {
            stage: 0,
            name: "a".into(),
            mode: StepMode::Any,
            quorum: 1,
            group: None,
            eligible: vec![user("bob")],
        };
        let mut first = step(&plan);
        let mut second = step(&StepPlan { stage: 1, ..plan.clone() });
        second.status = StepStatus::Waiting;
        let at = first.created_at;
        first.decide(&Seats::own(&user("bob")), Verdict::Approve, None, at).unwrap();
        let mut steps = [first, second];
        assert_eq!(advance(&mut steps), (RoundOutcome::Pending, vec![1]));
        assert_eq!(steps[1].status, StepStatus::Pending);
    }
}
