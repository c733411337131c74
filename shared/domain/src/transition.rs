//! The move of a change, decided in one pure function for all eleven actions.
//!
//! The service asks [`needs`] what an action reads (its gates), loads exactly that into
//! [`Gates`], and calls [`transition`], which checks every guard in the contract's order
//! and returns a [`Move`]: the state the change lands in with every field the move
//! sets, the approval steps to write, and what to audit and tell. The service then only
//! writes the move and commits; it decides nothing.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::approval::{self, ApprovalStep, RoundOutcome, Seats, StepStatus, Verdict};
use crate::change::{ChangeRequest, ChangeType, Status};
use crate::conflict::Conflict;
use crate::freeze::{guarded_span, FreezeWindow};
use crate::fsm::{self, Action};
use crate::ids::UserId;
use crate::notice::NoticeKind;
use crate::policy::{self, Planning};
use crate::role::Role;
use crate::task::{self, Task};
use crate::{DomainError, FieldErrors};

/// What the caller sent with the move (each action reads the fields it needs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoveInput {
    pub comment: Option<String>,
    pub reason: Option<String>,
    pub closure_code: Option<String>,
    pub closure_notes: Option<String>,
    pub override_freeze: bool,
    /// A decision link decides this step only.
    pub only_step: Option<String>,
}

/// Who moves the change, and when.
#[derive(Debug, Clone, Copy)]
pub struct Mover<'a> {
    pub user: &'a UserId,
    pub role: Role,
    pub now: Timestamp,
}

/// What an action reads before it can be decided; the service loads exactly these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The span whose blocking freeze windows the move checks.
    pub freeze_span: Option<(Timestamp, Timestamp)>,
    /// The change's tasks (the start and complete gates, the emergency review task).
    pub tasks: bool,
    /// Each dependency's status (start).
    pub dependencies: bool,
    /// The change's conflicts (schedule).
    pub conflicts: bool,
    /// What planning a new round reads (submit of a change that needs approval).
    pub planning: bool,
    /// The steps of the current round (decisions, and cancel from review).
    pub round: bool,
    /// The caller's seats on the change's steps (decisions).
    pub seats: bool,
}

/// What the service loaded for [`Needs`]; a gate an action does not need stays empty.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    /// The freeze windows that block the change over its guarded span.
    pub freezes: Vec<FreezeWindow>,
    pub tasks: Vec<Task>,
    /// Each dependency's number and status (a missing one reads as cancelled).
    pub dependencies: Vec<(String, Status)>,
    pub conflicts: Vec<Conflict>,
    /// What planning a new round reads (members, groups, policies).
    pub planning: Option<Planning>,
    pub round: Vec<ApprovalStep>,
    /// The caller's seats, or why they have none (the author).
    pub seats: Option<Result<Seats, DomainError>>,
}

/// One approval step to write, with what happened to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepWrite {
    /// The step as read (`None` for a step the move creates).
    pub before: Option<ApprovalStep>,
    pub after: ApprovalStep,
    /// The audit verb: `create`, `open`, `approve`, `reject`, `request_changes`, `cancel`.
    pub verb: &'static str,
}

impl StepWrite {
    /// Whether the step just became pending, so its approvers are asked: opened by a
    /// passing stage, or created pending by a new round.
    pub fn asks(&self) -> bool {
        self.verb == "open" || (self.verb == "create" && self.after.status == StepStatus::Pending)
    }
}

/// The outcome of a move: what to write, audit and tell.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// The change as it lands (the service stamps `version` and `updated_at`).
    pub change: ChangeRequest,
    /// Whether the change itself moved; a decision that leaves the round pending does not.
    pub moved: bool,
    /// The `metadata` of the `change.<verb>` row.
    pub meta: Map<String, Value>,
    /// The `metadata` of a `change.freeze_override` row, when the move overrode a freeze.
    pub freeze_override: Option<Value>,
    /// Steps to write, each with its audit verb; a created one has no id yet (the
    /// service assigns one as it writes it).
    pub steps: Vec<StepWrite>,
    /// Notices about the change to its people (rolled back, approved, rejected).
    pub tell: Option<NoticeKind>,
    /// An emergency that ended: its post-implementation review task is due.
    pub review_due: bool,
    /// Schedule answers with the conflicts its gate found.
    pub conflicts: Option<Vec<Conflict>>,
}

impl Move {
    /// Whether the move tells anyone: approvers of steps that just opened, or the
    /// change's people of an outcome.
    pub fn notifies(&self) -> bool {
        self.tell.is_some() || self.steps.iter().any(StepWrite::asks)
    }

    /// `round` (the steps as read) as the move leaves it: each step it writes in its
    /// new state, the ones it creates added.
    pub fn round_after(&self, mut round: Vec<ApprovalStep>) -> Vec<ApprovalStep> {
        for w in &self.steps {
            match round.iter_mut().find(|s| w.before.as_ref().is_some_and(|b| b.id == s.id)) {
                Some(s) => *s = w.after.clone(),
                None => round.push(w.after.clone()),
            }
        }
        round
    }
}

/// The gates `action` reads for `change` at `now`, after refusing an action that does
/// not start from the change's status.
pub fn needs(change: &ChangeRequest, action: Action, now: Timestamp) -> Result<Needs, DomainError> {
    fsm::check_transition(change.status, action)?;
    let mut n = Needs::default();
    match action {
        Action::Submit => {
            n.freeze_span = guarded_span(change, None);
            n.planning = fsm::status_after_submit(change.change_type) == Status::Review;
        }
        Action::Schedule => {
            n.freeze_span = guarded_span(change, None);
            n.conflicts = true;
        }
        Action::Start => {
            n.freeze_span = guarded_span(change, Some(now));
            n.tasks = true;
            n.dependencies = true;
        }
        Action::Complete | Action::Fail | Action::Rollback => n.tasks = true,
        Action::Cancel => n.round = change.status == Status::Review,
        Action::Approve | Action::Reject | Action::RequestChanges => {
            n.round = true;
            n.seats = true;
        }
        Action::Reopen => {}
    }
    Ok(n)
}

/// Decides the move of `old` by `action`: every guard in the contract's order, then
/// the landing state and everything the move writes.
pub fn transition(
    old: &ChangeRequest,
    action: Action,
    input: &MoveInput,
    by: Mover<'_>,
    gates: Gates,
) -> Result<Move, DomainError> {
    fsm::check_transition(old.status, action)?;
    let now = by.now;
    let mut new = old.clone();
    let mut m = Move {
        change: old.clone(),
        moved: true,
        meta: Map::new(),
        freeze_override: None,
        steps: vec![],
        tell: None,
        review_due: false,
        conflicts: None,
    };
    // Words given with any move are kept with its audit row.
    for (k, v) in [("reason", &input.reason), ("comment", &input.comment)] {
        if let Some(text) = fsm::reason(v.as_deref()) {
            m.meta.insert(k.into(), json!(text));
        }
    }
    let reason = fsm::reason(input.reason.as_deref());
    match action {
        Action::Submit => {
            fsm::check_submittable(&new)?;
            fsm::check_lead_time(&new, now)?;
            m.freeze_override = freeze_gate(&gates.freezes, action, by.role, input.override_freeze, &reason)?;
            new.status = fsm::status_after_submit(new.change_type);
            new.submitted_at = Some(now);
            new.approval_round += 1;
            if new.status == Status::Approved {
                m.meta.insert("pre_approved".into(), json!(true));
            } else {
                let policy::Round { steps, policy } = policy::round(&new, &gates.planning.unwrap_or_default())?;
                let policy = policy.map_or(json!("builtin"), |(id, name)| json!({"id": id, "name": name}));
                m.meta.insert("approval_policy".into(), policy);
                m.steps.extend(steps.into_iter().map(|s| StepWrite { before: None, after: s, verb: "create" }));
            }
        }
        Action::Schedule => {
            fsm::check_schedulable(&new)?;
            fsm::check_lead_time(&new, new.submitted_at.unwrap_or(now))?;
            m.freeze_override = freeze_gate(&gates.freezes, action, by.role, input.override_freeze, &reason)?;
            let open: Vec<Value> = gates.conflicts.iter().filter(|x| !x.accepted).map(Conflict::summary).collect();
            if !open.is_empty() {
                return Err(DomainError::ConflictDetected { conflicts: open });
            }
            m.conflicts = Some(gates.conflicts);
            new.status = Status::Scheduled;
        }
        Action::Start => {
            fsm::check_dependencies(&gates.dependencies)?;
            task::check_start_gate(&gates.tasks)?;
            m.freeze_override = freeze_gate(&gates.freezes, action, by.role, input.override_freeze, &reason)?;
            new.status = Status::InProgress;
            new.started_at = Some(now);
        }
        Action::Complete => {
            task::check_complete_gate(&gates.tasks)?;
            let (code, notes) = fsm::check_closure(input.closure_code.as_deref(), input.closure_notes.as_deref())?;
            new.status = Status::Completed;
            new.closure_code = Some(code);
            new.closure_notes = Some(notes);
            new.ended_at = Some(now);
        }
        Action::Fail => {
            new.status = Status::Failed;
            new.failure_reason = Some(reason.clone().ok_or(DomainError::ReasonRequired)?);
            new.ended_at = Some(now);
        }
        Action::Rollback => {
            new.status = Status::RolledBack;
            new.rollback_reason = Some(reason.clone().ok_or(DomainError::RollbackReasonRequired)?);
            new.rolled_back_at = Some(now);
            new.rolled_back_by = Some(by.user.clone());
            new.ended_at = Some(now);
            m.tell = Some(NoticeKind::ChangeRolledBack);
        }
        Action::Reopen => {
            reason.clone().ok_or(DomainError::ReasonRequired)?;
            new.status = Status::InProgress;
            new.closure_code = None;
            new.closure_notes = None;
            new.ended_at = None;
        }
        Action::Cancel => {
            new.status = Status::Cancelled;
            new.cancel_reason = reason.clone();
            m.steps = close_open(gates.round, now);
        }
        Action::Approve | Action::Reject | Action::RequestChanges => {
            return decide(old, action, input, now, gates, m);
        }
    }
    if m.freeze_override.is_some() {
        overridden(&mut new, &gates.freezes);
    }
    let ended = matches!(action, Action::Complete | Action::Fail | Action::Rollback);
    m.review_due = ended && new.change_type == ChangeType::Emergency && task::needs_review(&new, &gates.tasks);
    m.change = new;
    Ok(m)
}

/// Approve, reject or request changes: recorded on every pending step the caller holds
/// a seat on (or the one a link names); the change lands where the round now stands.
fn decide(
    old: &ChangeRequest,
    action: Action,
    input: &MoveInput,
    now: Timestamp,
    gates: Gates,
    mut m: Move,
) -> Result<Move, DomainError> {
    let verdict = match action {
        Action::Approve => Verdict::Approve,
        Action::Reject => Verdict::Reject,
        _ => Verdict::RequestChanges,
    };
    let comment = fsm::reason(input.comment.as_deref());
    if verdict != Verdict::Approve && comment.is_none() {
        return Err(FieldErrors::single("comment", "required to reject or request changes"));
    }
    let seats = gates.seats.unwrap_or(Err(DomainError::NotAnApprover))?;
    let before = gates.round;
    let mut steps = before.clone();
    let mut decided = Vec::new();
    for (i, s) in steps.iter_mut().enumerate() {
        if input.only_step.as_ref().is_some_and(|id| id != &s.id) {
            continue;
        }
        if s.offered_to(&seats) && !s.decided_by(&seats.caller) {
            s.decide(&seats, verdict, comment.clone(), now)?;
            decided.push(i);
        }
    }
    if decided.is_empty() {
        let spoke = steps.iter().any(|s| s.status == StepStatus::Pending && s.decided_by(&seats.caller));
        return Err(if spoke { DomainError::AlreadyDecided } else { DomainError::NotAnApprover });
    }
    let (outcome, opened) = approval::advance(&mut steps);
    for &i in &opened {
        steps[i].opened_at = Some(now);
    }
    let landing = match outcome {
        RoundOutcome::Pending => old.status,
        RoundOutcome::Approved => Status::Approved,
        RoundOutcome::Rejected => Status::Rejected,
        RoundOutcome::ChangesRequested => Status::Draft,
    };
    let mut rest = Vec::new();
    for (i, (b, a)) in before.into_iter().zip(steps).enumerate() {
        if decided.contains(&i) {
            m.steps.push(StepWrite { before: Some(b), after: a, verb: verdict.as_str() });
        } else if opened.contains(&i) {
            m.steps.push(StepWrite { before: Some(b), after: a, verb: "open" });
        } else {
            rest.push(a);
        }
    }
    if landing != old.status && outcome != RoundOutcome::Approved {
        // The round is over: the steps nobody decided are closed.
        m.steps.extend(close_open(rest, now));
    }
    m.tell = match outcome {
        RoundOutcome::Approved => Some(NoticeKind::ChangeApproved),
        RoundOutcome::Rejected => Some(NoticeKind::ChangeRejected),
        _ => None,
    };
    m.moved = landing != old.status;
    m.meta = comment.map_or(Map::new(), |c| Map::from_iter([("comment".to_owned(), json!(c))]));
    m.change = ChangeRequest { status: landing, ..old.clone() };
    Ok(m)
}

/// The steps of `steps` still open (pending or waiting), closed as cancelled.
fn close_open(steps: Vec<ApprovalStep>, now: Timestamp) -> Vec<StepWrite> {
    steps
        .into_iter()
        .filter(|s| matches!(s.status, StepStatus::Pending | StepStatus::Waiting))
        .map(|s| {
            let after = ApprovalStep { status: StepStatus::Cancelled, decided_at: Some(now), ..s.clone() };
            StepWrite { before: Some(s), after, verb: "cancel" }
        })
        .collect()
}

/// A freeze window in the answers and audit rows that name it.
pub fn freeze_brief(f: &FreezeWindow) -> Value {
    json!({
        "id": f.id, "name": f.name, "start": f.start, "end": f.end,
        "timezone": f.timezone, "local_start": f.local_start, "local_end": f.local_end,
        "allow_override": f.allow_override,
    })
}

/// Records on the change the windows a move overrode, so the freeze sweep leaves it
/// alone over them.
fn overridden(c: &mut ChangeRequest, blocking: &[FreezeWindow]) {
    for f in blocking {
        if !c.freeze_overrides.contains(&f.id) {
            c.freeze_overrides.push(f.id.clone());
        }
    }
}

/// The freeze gate over the windows that block the move: clear, overridden (the
/// `change.freeze_override` row's metadata), or refused. An owner may override any
/// window, an admin only windows that allow it; an override needs a reason.
fn freeze_gate(
    blocking: &[FreezeWindow],
    action: Action,
    role: Role,
    override_freeze: bool,
    reason: &Option<String>,
) -> Result<Option<Value>, DomainError> {
    if blocking.is_empty() {
        return Ok(None);
    }
    if !override_freeze {
        return Err(DomainError::FreezeWindowBlocked { windows: blocking.iter().map(freeze_brief).collect() });
    }
    let may = match role {
        Role::Owner => true,
        Role::Admin => blocking.iter().all(|f| f.allow_override),
        _ => false,
    };
    if !may {
        return Err(DomainError::Forbidden);
    }
    let Some(reason) = reason else {
        return Err(FieldErrors::single("reason", "required to override a freeze window"));
    };
    Ok(Some(json!({
        "action": action.as_str(),
        "reason": reason,
        "windows": blocking.iter().map(freeze_brief).collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::approval::StepMode;
    use crate::change::{ClosureCode, RiskLevel};
    use crate::freeze::FreezeScope;
    use crate::test_support::{draft, user};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn now() -> Timestamp {
        at("2026-11-10T00:00:00Z")
    }

    /// A normal, low-risk change planned well ahead, in `status`.
    fn change(status: Status) -> ChangeRequest {
        let mut c = draft();
        c.status = status;
        c.risk_level = RiskLevel::Low;
        c.planned_start = Some(at("2026-11-20T09:00:00Z"));
        c.planned_end = Some(at("2026-11-20T10:00:00Z"));
        c.submitted_at = (status != Status::Draft).then(|| at("2026-11-09T00:00:00Z"));
        c
    }

    fn by(role: Role) -> Mover<'static> {
        static ALICE: std::sync::OnceLock<UserId> = std::sync::OnceLock::new();
        Mover { user: ALICE.get_or_init(|| user("alice")), role, now: now() }
    }

    fn input(f: impl FnOnce(&mut MoveInput)) -> MoveInput {
        let mut i = MoveInput::default();
        f(&mut i);
        i
    }

    fn planning() -> Planning {
        Planning { members: vec![(user("alice"), Role::Owner), (user("bob"), Role::Approver)], ..Planning::default() }
    }

    fn run(c: &ChangeRequest, action: Action, i: &MoveInput, gates: Gates) -> Result<Move, DomainError> {
        transition(c, action, i, by(Role::Owner), gates)
    }

    #[test]
    fn every_move_lands_where_the_contract_says_and_sets_its_fields() {
        let reason = input(|i| i.reason = Some("superseded".into()));
        let closure = input(|i| {
            i.closure_code = Some("successful".into());
            i.closure_notes = Some("went fine".into());
        });
        let planned = Gates { planning: Some(planning()), ..Gates::default() };

        let m = run(&change(Status::Draft), Action::Submit, &MoveInput::default(), planned).unwrap();
        assert_eq!((m.change.status, m.change.submitted_at, m.change.approval_round), (Status::Review, Some(now()), 1));
        assert_eq!((m.steps.len(), m.steps[0].verb, m.steps[0].asks()), (1, "create", true));
        assert_eq!(m.steps[0].after.eligible, vec![user("bob")], "never the author");
        assert_eq!(m.meta["approval_policy"], "builtin");

        let mut standard = change(Status::Draft);
        standard.change_type = ChangeType::Standard;
        let m = run(&standard, Action::Submit, &MoveInput::default(), Gates::default()).unwrap();
        assert_eq!((m.change.status, m.meta["pre_approved"].as_bool()), (Status::Approved, Some(true)));

        let m = run(&change(Status::Approved), Action::Schedule, &MoveInput::default(), Gates::default()).unwrap();
        assert_eq!((m.change.status, m.conflicts.as_deref().map(<[_]>::len)), (Status::Scheduled, Some(0)));

        let m = run(&change(Status::Scheduled), Action::Start, &MoveInput::default(), Gates::default()).unwrap();
        assert_eq!((m.change.status, m.change.started_at), (Status::InProgress, Some(now())));

        let m = run(&change(Status::InProgress), Action::Complete, &closure, Gates::default()).unwrap();
        assert_eq!(
            (m.change.status, m.change.closure_code, m.change.closure_notes.as_deref(), m.change.ended_at),
            (Status::Completed, Some(ClosureCode::Successful), Some("went fine"), Some(now()))
        );

        let m = run(&change(Status::InProgress), Action::Fail, &reason, Gates::default()).unwrap();
        assert_eq!((m.change.status, m.change.failure_reason.as_deref()), (Status::Failed, Some("superseded")));

        let m = run(&change(Status::InProgress), Action::Rollback, &reason, Gates::default()).unwrap();
        assert_eq!((m.change.status, m.change.rolled_back_by.clone()), (Status::RolledBack, Some(user("alice"))));
        assert_eq!((m.change.rolled_back_at, m.tell), (Some(now()), Some(NoticeKind::ChangeRolledBack)));

        let mut done = change(Status::Completed);
        done.closure_code = Some(ClosureCode::Successful);
        done.ended_at = Some(now());
        let m = run(&done, Action::Reopen, &reason, Gates::default()).unwrap();
        assert_eq!((m.change.status, m.change.closure_code, m.change.ended_at), (Status::InProgress, None, None));

        let m = run(&change(Status::Scheduled), Action::Cancel, &reason, Gates::default()).unwrap();
        assert_eq!((m.change.status, m.change.cancel_reason.as_deref()), (Status::Cancelled, Some("superseded")));
        assert_eq!(m.meta["reason"], "superseded", "the words go with the audit row");
    }

    #[test]
    fn the_guards_refuse_in_the_contracts_order() {
        let none = MoveInput::default;
        let r = run(&change(Status::Draft), Action::Start, &none(), Gates::default());
        assert!(matches!(r, Err(DomainError::InvalidTransition { .. })), "{r:?}");
        assert!(needs(&change(Status::Draft), Action::Start, now()).is_err(), "nothing is read for a refused move");
        let r = run(&change(Status::InProgress), Action::Fail, &none(), Gates::default());
        assert_eq!(r, Err(DomainError::ReasonRequired));
        let r = run(&change(Status::InProgress), Action::Rollback, &none(), Gates::default());
        assert_eq!(r, Err(DomainError::RollbackReasonRequired));
        let r = run(&change(Status::InProgress), Action::Complete, &none(), Gates::default());
        assert_eq!(r, Err(DomainError::ClosureRequired));
        let deps = Gates { dependencies: vec![("CHG-00002".into(), Status::Review)], ..Gates::default() };
        let r = run(&change(Status::Scheduled), Action::Start, &none(), deps);
        assert!(matches!(r, Err(DomainError::DependenciesUnmet { .. })), "{r:?}");
        let mut soon = change(Status::Draft);
        soon.planned_start = Some(now() + jiff::SignedDuration::from_hours(2));
        soon.planned_end = Some(now() + jiff::SignedDuration::from_hours(3));
        let r = run(&soon, Action::Submit, &none(), Gates::default());
        assert!(matches!(r, Err(DomainError::LeadTimeViolation { required_hours: 24, .. })), "{r:?}");
        let nobody = Gates {
            planning: Some(Planning { members: vec![(user("alice"), Role::Owner)], ..Planning::default() }),
            ..Gates::default()
        };
        let r = run(&change(Status::Draft), Action::Submit, &none(), nobody);
        assert_eq!(r, Err(DomainError::NoEligibleApprovers { needed: 1, available: 0 }));
    }

    fn freeze(allow_override: bool) -> FreezeWindow {
        FreezeWindow {
            id: "f1".into(),
            workspace_id: "w1".into(),
            name: "Year end".into(),
            description: String::new(),
            start: at("2026-11-20T00:00:00Z"),
            end: at("2026-11-21T00:00:00Z"),
            timezone: "UTC".into(),
            local_start: "2026-11-20T00:00:00".into(),
            local_end: "2026-11-21T00:00:00".into(),
            scope: FreezeScope { all: true, ..FreezeScope::default() },
            allow_override,
            recurrence: None,
            series_end: None,
            created_by: user("alice"),
            created_at: at("2026-11-01T00:00:00Z"),
            version: 1,
        }
    }

    #[test]
    fn a_freeze_blocks_unless_overridden_by_whom_it_allows_with_a_reason() {
        let c = change(Status::Approved);
        let gates = |allow| Gates { freezes: vec![freeze(allow)], ..Gates::default() };
        let plain = MoveInput::default();
        let r = transition(&c, Action::Schedule, &plain, by(Role::Owner), gates(true));
        assert!(matches!(r, Err(DomainError::FreezeWindowBlocked { .. })), "{r:?}");
        let bare = input(|i| i.override_freeze = true);
        let r = transition(&c, Action::Schedule, &bare, by(Role::Admin), gates(false));
        assert_eq!(r, Err(DomainError::Forbidden), "an admin overrides only windows that allow it");
        let r = transition(&c, Action::Schedule, &bare, by(Role::Owner), gates(false));
        assert!(matches!(r, Err(DomainError::Validation(_))), "an override needs a reason");
        let why = input(|i| {
            i.override_freeze = true;
            i.reason = Some("the fix cannot wait".into());
        });
        let m = transition(&c, Action::Schedule, &why, by(Role::Admin), gates(true)).unwrap();
        let meta = m.freeze_override.expect("an override row");
        assert_eq!(
            (meta["action"].as_str(), meta["windows"][0]["name"].as_str()),
            (Some("schedule"), Some("Year end"))
        );
        assert_eq!(m.change.status, Status::Scheduled);
    }

    fn review_with(eligible: &[&str], quorum: u32) -> (ChangeRequest, Vec<ApprovalStep>) {
        let mut c = change(Status::Review);
        c.author = user("mia");
        c.approval_round = 1;
        let planning = Planning {
            members: eligible.iter().map(|u| (user(u), Role::Approver)).collect(),
            groups: BTreeMap::new(),
            policies: vec![],
        };
        let mut steps = policy::round(&c, &planning).unwrap().steps;
        steps[0].mode = StepMode::Quorum;
        steps[0].quorum = quorum;
        steps[0].id = "s1".into();
        (c, steps)
    }

    fn decide_as(
        c: &ChangeRequest,
        who: &str,
        action: Action,
        steps: &[ApprovalStep],
        words: Option<&str>,
    ) -> Result<Move, DomainError> {
        let caller = user(who);
        let seats = crate::eligibility::seats(&caller, Role::Approver, &[], &c.author, now());
        let gates = Gates { round: steps.to_vec(), seats: Some(seats), ..Gates::default() };
        let i = input(|i| i.comment = words.map(str::to_owned));
        let mover = Mover { user: &caller, role: Role::Approver, now: now() };
        transition(c, action, &i, mover, gates)
    }

    #[test]
    fn decisions_land_where_the_round_stands() {
        let (c, steps) = review_with(&["bob", "carol"], 2);
        let m = decide_as(&c, "bob", Action::Approve, &steps, None).unwrap();
        assert_eq!((m.moved, m.change.status, m.steps[0].verb), (false, Status::Review, "approve"), "one of two");
        let m2 = decide_as(&c, "carol", Action::Approve, &[m.steps[0].after.clone()], None).unwrap();
        assert_eq!((m2.moved, m2.change.status, m2.tell), (true, Status::Approved, Some(NoticeKind::ChangeApproved)));

        let m = decide_as(&c, "bob", Action::Reject, &steps, Some("too risky")).unwrap();
        assert_eq!(
            (m.change.status, m.tell, m.meta["comment"].as_str()),
            (Status::Rejected, Some(NoticeKind::ChangeRejected), Some("too risky"))
        );
        let m = decide_as(&c, "bob", Action::RequestChanges, &steps, Some("add a test plan")).unwrap();
        assert_eq!(m.change.status, Status::Draft);

        assert!(matches!(decide_as(&c, "bob", Action::Reject, &steps, None), Err(DomainError::Validation(_))));
        assert_eq!(
            decide_as(&c, "mia", Action::Approve, &steps, None).map(|m| m.moved),
            Err(DomainError::SelfApprovalForbidden)
        );
        assert_eq!(
            decide_as(&c, "zoe", Action::Approve, &steps, None).map(|m| m.moved),
            Err(DomainError::NotAnApprover)
        );
        let once = decide_as(&c, "bob", Action::Approve, &steps, None).unwrap().steps[0].after.clone();
        assert_eq!(
            decide_as(&c, "bob", Action::Approve, &[once], None).map(|m| m.moved),
            Err(DomainError::AlreadyDecided)
        );
    }

    #[test]
    fn each_action_reads_only_its_own_gates() {
        let n = |c: &ChangeRequest, a| needs(c, a, now()).unwrap();
        assert!(n(&change(Status::Draft), Action::Submit).planning);
        let mut standard = change(Status::Draft);
        standard.change_type = ChangeType::Standard;
        assert!(!n(&standard, Action::Submit).planning, "a standard change plans no round");
        let schedule = n(&change(Status::Approved), Action::Schedule);
        assert!(schedule.conflicts && schedule.freeze_span.is_some() && !schedule.tasks);
        let start = n(&change(Status::Scheduled), Action::Start);
        assert!(start.tasks && start.dependencies && start.freeze_span.is_some() && !start.conflicts);
        assert!(n(&change(Status::Review), Action::Cancel).round);
        assert!(!n(&change(Status::Approved), Action::Cancel).round);
        let approve = n(&change(Status::Review), Action::Approve);
        assert!(approve.round && approve.seats && !approve.planning);
        assert_eq!(n(&change(Status::InProgress), Action::Fail), Needs { tasks: true, ..Needs::default() });
    }
}
