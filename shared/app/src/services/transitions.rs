//! `POST /changes/{number}/{action}`: the lifecycle, with every guard of the contract.
//! One attempt reads the change (and its steps), checks, and commits the new state
//! with its audit rows; a lost race re-runs the attempt from a fresh read.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tracing::instrument;
use vigilo_domain::approval::{self, ApprovalStep, RoundOutcome, StepStatus, Verdict};
use vigilo_domain::change::{ChangeRequest, ChangeType, Status};
use vigilo_domain::eligibility;
use vigilo_domain::freeze::guarded_span;
use vigilo_domain::fsm::{self, Action};
use vigilo_domain::ids::{ChangeNumber, Slug};
use vigilo_domain::link::Grant;
use vigilo_domain::notice::NoticeKind;
use vigilo_domain::role::Permission;
use vigilo_domain::task;
use vigilo_domain::{text, DomainError, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::retrying;
use crate::services::access::Access;
use crate::services::changes::require_author_or;
use crate::services::conflicts::{occupancy, window_entries};
use crate::services::freeze::FreezeVerdict;
use crate::services::notices::grant_item;
use crate::services::records::{change_item, load, step_item, to_data};
use crate::services::tasks::{review_task, task_created, task_item};
use crate::services::views::diff;
use crate::store::{Condition, Query};
use crate::txn::{AuditEntry, Tx};
use crate::Vigilo;

/// The body of an action; each action reads the fields it needs.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    pub comment: Option<String>,
    pub reason: Option<String>,
    #[schema(value_type = Option<vigilo_domain::change::ClosureCode>)]
    pub closure_code: Option<String>,
    pub closure_notes: Option<String>,
    pub override_freeze: Option<bool>,
    /// Set by decision links, never by a body: decide this step only, and spend this
    /// grant in the same transaction (so a token works once).
    #[serde(skip)]
    #[schema(ignore)]
    pub link: Option<vigilo_domain::link::Grant>,
}

/// A reason, comment or closure note: at most [`REASON_MAX`] characters of text.
///
/// [`REASON_MAX`]: vigilo_domain::change::REASON_MAX
fn check_len(field: &str, value: &Option<String>) -> AppResult<()> {
    if let Some(Err(reason)) = value.as_deref().map(|t| text::check_lines(t, 0, vigilo_domain::change::REASON_MAX)) {
        return Err(FieldErrors::single(field, &reason).into());
    }
    Ok(())
}

/// Who may move a change (other than deciding on it): the author, the assignee, or an
/// admin; cancel is for the author or an admin. Everyone needs at least `member`.
fn require_executor(access: &Access, c: &ChangeRequest, action: Action) -> AppResult<()> {
    access.require(Permission::CreateChange)?;
    if action == Action::Cancel {
        return require_author_or(access, c, Permission::CancelAny);
    }
    if c.assignee.as_ref() == Some(access.user()) {
        return Ok(());
    }
    require_author_or(access, c, Permission::ExecuteAny)
}

/// Writes a change's new state, guarded by the version that was read, with its
/// `change.<verb>` audit row carrying what changed.
fn write_change(
    tx: &mut Tx<'_>,
    old: &ChangeRequest,
    new: &mut ChangeRequest,
    action: Action,
    meta: Value,
    now: jiff::Timestamp,
) {
    new.version = old.version + 1;
    new.updated_at = now;
    let (before, after) = diff(old, new);
    tx.put(change_item(new), Some(Condition::version(old.version)));
    // A change that ends frees its assets; a reopened one holds them again.
    for op in window_entries(&new.workspace_id, new.number, occupancy(old), occupancy(new)) {
        tx.derived(op);
    }
    let entry = AuditEntry::new(format!("change.{}", action.audit_verb()), "ChangeRequest", &new.id);
    tx.audit(entry.values(before, after).subject(&new.id).meta(meta));
}

/// Closes the steps of `steps` that are still open (the change left review), each with
/// its `approval_step.cancel` row.
fn close_open_steps(tx: &mut Tx<'_>, change_id: &str, steps: Vec<ApprovalStep>, now: jiff::Timestamp) {
    for mut s in steps.into_iter().filter(|s| matches!(s.status, StepStatus::Pending | StepStatus::Waiting)) {
        let old = s.clone();
        s.status = StepStatus::Cancelled;
        s.decided_at = Some(now);
        s.version += 1;
        let (before, after) = diff(&old, &s);
        tx.put(step_item(&s), Some(Condition::version(old.version)));
        let entry = AuditEntry::new("approval_step.cancel", "ApprovalStep", &s.id);
        tx.audit(entry.values(before, after).subject(change_id));
    }
}

impl Vigilo {
    #[instrument(skip(self, actor, input), fields(user = %actor.user_id))]
    pub async fn act(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        action: &str,
        input: ActionInput,
        if_match: Option<u64>,
    ) -> AppResult<ChangeRequest> {
        let action = Action::parse(action).ok_or(AppError::NotFound)?;
        let moved = retrying!({
            let (access, mut tx, old) = self.change_for_write(actor, slug, number).await?;
            check_len("comment", &input.comment)?;
            check_len("reason", &input.reason)?;
            check_len("closure_notes", &input.closure_notes)?;
            if let Some(v) = if_match.filter(|v| *v != old.version) {
                return Err(AppError::VersionConflict { expected: v, current: old.version });
            }
            if !action.is_decision() {
                require_executor(&access, &old, action)?;
            }
            fsm::check_transition(old.status, action)?;
            let now = self.now();
            let mut new = old.clone();
            let mut meta = Map::new();
            let mut opened = Vec::new();
            let mut closing = Vec::new();
            let mut extra_rows = Vec::new();
            let mut new_tasks = Vec::new();
            let mut conflicts = None;
            let mut tasks_read = None;
            let mut planned_with = None;
            let override_freeze = input.override_freeze.unwrap_or(false);
            let reason = fsm::reason(input.reason.as_deref());
            // Words given with any move are kept with its audit row.
            for (k, v) in [("reason", &input.reason), ("comment", &input.comment)] {
                if let Some(text) = fsm::reason(v.as_deref()) {
                    meta.insert(k.into(), json!(text));
                }
            }
            match action {
                Action::Submit => {
                    fsm::check_submittable(&new)?;
                    fsm::check_lead_time(&new, now)?;
                    let span = guarded_span(&new, None);
                    extra_rows.extend(self.freeze_gate(&access, &new, action, span, override_freeze, &reason).await?);
                    new.status = fsm::status_after_submit(new.change_type);
                    new.submitted_at = Some(now);
                    new.approval_round += 1;
                    if new.status == Status::Approved {
                        meta.insert("pre_approved".into(), json!(true));
                    } else {
                        let plan = self.plan_steps(&new).await?;
                        let policy = plan.policy.map(|(id, name)| json!({"id": id, "name": name}));
                        meta.insert("approval_policy".into(), policy.unwrap_or(json!("builtin")));
                        opened = plan.steps;
                        planned_with = Some(plan.members);
                    }
                }
                Action::Schedule => {
                    fsm::check_schedulable(&new)?;
                    fsm::check_lead_time(&new, new.submitted_at.unwrap_or(now))?;
                    let span = guarded_span(&new, None);
                    extra_rows.extend(self.freeze_gate(&access, &new, action, span, override_freeze, &reason).await?);
                    conflicts = Some(self.check_conflicts(&new).await?);
                    new.status = Status::Scheduled;
                }
                Action::Start => {
                    self.check_dependencies(access.ws(), &new).await?;
                    task::check_start_gate(&self.change_tasks(access.ws(), new.number).await?)?;
                    let span = guarded_span(&new, Some(now));
                    extra_rows.extend(self.freeze_gate(&access, &new, action, span, override_freeze, &reason).await?);
                    new.status = Status::InProgress;
                    new.started_at = Some(now);
                }
                Action::Complete => {
                    let tasks = self.change_tasks(access.ws(), new.number).await?;
                    task::check_complete_gate(&tasks)?;
                    tasks_read = Some(tasks);
                    let (code, notes) =
                        fsm::check_closure(input.closure_code.as_deref(), input.closure_notes.as_deref())?;
                    new.status = Status::Completed;
                    new.closure_code = Some(code);
                    new.closure_notes = Some(notes);
                    new.ended_at = Some(now);
                }
                Action::Fail => {
                    let reason = fsm::reason(input.reason.as_deref()).ok_or(DomainError::ReasonRequired)?;
                    new.status = Status::Failed;
                    new.failure_reason = Some(reason);
                    new.ended_at = Some(now);
                }
                Action::Rollback => {
                    let reason = fsm::reason(input.reason.as_deref()).ok_or(DomainError::RollbackReasonRequired)?;
                    new.status = Status::RolledBack;
                    new.rollback_reason = Some(reason);
                    new.rolled_back_at = Some(now);
                    new.rolled_back_by = Some(actor.user_id.clone());
                    new.ended_at = Some(now);
                }
                Action::Reopen => {
                    fsm::reason(input.reason.as_deref()).ok_or(DomainError::ReasonRequired)?;
                    new.status = Status::InProgress;
                    new.closure_code = None;
                    new.closure_notes = None;
                    new.ended_at = None;
                }
                Action::Cancel => {
                    new.status = Status::Cancelled;
                    new.cancel_reason = fsm::reason(input.reason.as_deref());
                    if old.status == Status::Review {
                        closing = self.round_steps(&old).await?;
                    }
                }
                Action::Approve | Action::Reject | Action::RequestChanges => {
                    return self.decide(&access, tx, old, action, &input).await;
                }
            }
            let ended = matches!(action, Action::Complete | Action::Fail | Action::Rollback);
            if ended && new.change_type == ChangeType::Emergency {
                let tasks = match tasks_read {
                    Some(t) => t,
                    None => self.change_tasks(access.ws(), new.number).await?,
                };
                new_tasks.extend(review_task(&new, &tasks, now));
            }
            for row in extra_rows {
                tx.audit(row);
            }
            write_change(&mut tx, &old, &mut new, action, Value::Object(meta), now);
            for t in &new_tasks {
                tx.put(task_item(t), Some(Condition::NotExists));
                tx.audit(task_created(t));
            }
            close_open_steps(&mut tx, &new.id, closing, now);
            for step in &opened {
                tx.put(step_item(step), Some(Condition::NotExists));
                let entry = AuditEntry::new("approval_step.create", "ApprovalStep", &step.id);
                tx.audit(entry.values(json!(null), to_data(step)).subject(&new.id));
            }
            if self.delivery.is_some() && (!opened.is_empty() || action == Action::Rollback) {
                let members = match planned_with {
                    Some(m) => m,
                    None => self.all_members(access.ws()).await?,
                };
                let pending: Vec<&ApprovalStep> = opened.iter().filter(|s| s.status == StepStatus::Pending).collect();
                let ws = &access.workspace;
                let mut notes =
                    self.approval_requests(ws, &new, &pending, &members, NoticeKind::ApprovalRequested, now);
                if action == Action::Rollback {
                    notes.extend(self.change_notices(
                        ws,
                        &new,
                        NoticeKind::ChangeRolledBack,
                        reason.clone(),
                        &members,
                        now,
                    ));
                }
                for op in notes {
                    tx.derived(op);
                }
            }
            tx.commit(now).await?;
            // Derived, so never stored: schedule returns what its gate found; the other
            // moves look them up below, after the commit.
            new.conflicts = conflicts;
            Ok(new)
        });
        // Every answer about one change carries its conflicts (a list, empty when the
        // change is not live), like a read does. The move is committed by now: a failed
        // look-up is logged and leaves the list out rather than failing the request.
        let moved = match moved {
            Ok(c) if c.conflicts.is_none() => match self.conflicts_of(&c).await {
                Ok(found) => Ok(ChangeRequest { conflicts: Some(found), ..c }),
                Err(e) => {
                    tracing::warn!(error = %e, change = %c.number, "conflicts not looked up after the move");
                    Ok(c)
                }
            },
            other => other,
        };
        // Notices written by the move go out now, and webhooks hear of it; whatever
        // fails waits for the sweep.
        if let (Ok(c), true) = (&moved, self.delivery.is_some() && action.may_notify()) {
            if let Err(e) = self.deliver_pending(&c.workspace_id).await {
                tracing::warn!(error = %e, "notice delivery deferred");
            }
        }
        if let (Ok(c), true) = (&moved, self.webhooks.is_some()) {
            if let Err(e) = self.dispatch_webhooks(&c.workspace_id).await {
                tracing::warn!(error = %e, "webhook delivery deferred");
            }
        }
        moved
    }

    /// The freeze gate of one action: the override row to write, if any.
    async fn freeze_gate(
        &self,
        access: &Access,
        c: &ChangeRequest,
        action: Action,
        span: Option<(jiff::Timestamp, jiff::Timestamp)>,
        override_freeze: bool,
        reason: &Option<String>,
    ) -> AppResult<Option<AuditEntry>> {
        match self.check_freeze(access, c, action.as_str(), span, override_freeze, reason.as_deref()).await? {
            FreezeVerdict::Clear => Ok(None),
            FreezeVerdict::Overridden(row) => Ok(Some(row)),
        }
    }

    async fn check_dependencies(&self, ws: &str, c: &ChangeRequest) -> AppResult<()> {
        let mut deps = Vec::with_capacity(c.dependencies.len());
        for n in &c.dependencies {
            let status = match load::<ChangeRequest>(&*self.table, &keys::change(ws, *n)).await? {
                Some(d) => d.status,
                None => Status::Cancelled,
            };
            deps.push((n.to_string(), status));
        }
        fsm::check_dependencies(&deps).map_err(Into::into)
    }

    /// The steps of a change's current round, in stage order.
    pub(crate) async fn round_steps(&self, c: &ChangeRequest) -> AppResult<Vec<ApprovalStep>> {
        let q = Query::table(keys::steps(&c.workspace_id, c.number)).begins_with(keys::round_prefix(c.approval_round));
        crate::paging::query_all(&*self.table, q.limit(500)).await
    }

    /// Approve, reject or request changes: recorded on every pending step the caller
    /// holds a seat on; the change moves when the round is decided.
    async fn decide(
        &self,
        access: &Access,
        mut tx: Tx<'_>,
        old: ChangeRequest,
        action: Action,
        input: &ActionInput,
    ) -> AppResult<ChangeRequest> {
        let verdict = match action {
            Action::Approve => Verdict::Approve,
            Action::Reject => Verdict::Reject,
            _ => Verdict::RequestChanges,
        };
        let comment = fsm::reason(input.comment.as_deref());
        if verdict != Verdict::Approve && comment.is_none() {
            return Err(FieldErrors::single("comment", "required to reject or request changes").into());
        }
        let ws = access.ws();
        let now = self.now();
        let delegating = self.delegators(ws, access.user()).await?;
        let seats = eligibility::seats(access.user(), access.role(), &delegating, &old.author, now)?;
        let delegating: Vec<_> = delegating.into_iter().filter(|m| seats.delegators.contains(&m.user_id)).collect();
        let mut steps = self.round_steps(&old).await?;
        let before_steps = steps.clone();
        let mut decided = Vec::new();
        let only = input.link.as_ref().map(|g| g.step_id.as_str());
        for (i, s) in steps.iter_mut().enumerate() {
            if only.is_some_and(|id| id != s.id) {
                continue;
            }
            if s.offered_to(&seats) && !s.decided_by(&seats.caller) {
                s.decide(&seats, verdict, comment.clone(), now)?;
                decided.push(i);
            }
        }
        if decided.is_empty() {
            // The change and its steps are two reads: if the change moved in between
            // (another approver closed the round), retry from a consistent state.
            let current = self.load_change(ws, old.number).await?;
            if current.version != old.version {
                return Err(AppError::Contended);
            }
            let spoke = steps.iter().any(|s| s.status == StepStatus::Pending && s.decided_by(&seats.caller));
            return Err(if spoke { DomainError::AlreadyDecided } else { DomainError::NotAnApprover }.into());
        }
        // Delegations are found through an index, which may lag the table: each one a
        // decision uses must still be, at commit, the member record that was read.
        for m in &delegating {
            let alone = seats.only_for(&m.user_id);
            if decided.iter().any(|&i| before_steps[i].offered_to(&alone)) {
                tx.check(keys::member(ws, &m.user_id), Condition::version(m.version));
            }
        }
        if let Some(g) = &input.link {
            // Spent with the decision: a second use finds the grant changed and fails.
            let spent = Grant { used_at: Some(now), version: g.version + 1, ..g.clone() };
            tx.put(grant_item(&spent), Some(Condition::version(g.version)));
        }
        let (outcome, opened) = approval::advance(&mut steps);
        for &i in &opened {
            steps[i].opened_at = Some(now);
        }
        if self.delivery.is_some()
            && (!opened.is_empty() || matches!(outcome, RoundOutcome::Approved | RoundOutcome::Rejected))
        {
            let members = self.all_members(ws).await?;
            let fresh: Vec<&ApprovalStep> = opened.iter().map(|&i| &steps[i]).collect();
            let w = &access.workspace;
            let mut notes = self.approval_requests(w, &old, &fresh, &members, NoticeKind::ApprovalRequested, now);
            let kind = match outcome {
                RoundOutcome::Approved => Some(NoticeKind::ChangeApproved),
                RoundOutcome::Rejected => Some(NoticeKind::ChangeRejected),
                _ => None,
            };
            if let Some(kind) = kind {
                notes.extend(self.change_notices(w, &old, kind, comment.clone(), &members, now));
            }
            for op in notes {
                tx.derived(op);
            }
        }
        for &i in decided.iter().chain(opened.iter()) {
            let s = &mut steps[i];
            s.version = before_steps[i].version + 1;
            tx.put(step_item(s), Some(Condition::version(before_steps[i].version)));
            let (b, a) = diff(&before_steps[i], s);
            let verb = if decided.contains(&i) { verdict.as_str() } else { "open" };
            tx.audit(
                AuditEntry::new(format!("approval_step.{verb}"), "ApprovalStep", &s.id).values(b, a).subject(&old.id),
            );
        }
        let mut new = old.clone();
        new.status = match outcome {
            RoundOutcome::Pending => old.status,
            RoundOutcome::Approved => Status::Approved,
            RoundOutcome::Rejected => Status::Rejected,
            RoundOutcome::ChangesRequested => Status::Draft,
        };
        if new.status == old.status {
            // Still in review: the change itself is untouched, but it must not have
            // moved under us (a concurrent cancel, say).
            tx.check(keys::change(ws, old.number), Condition::version(old.version));
            tx.commit(now).await?;
            return Ok(old);
        }
        let meta = comment.map_or(json!({}), |c| json!({"comment": c}));
        write_change(&mut tx, &old, &mut new, action, meta, now);
        if outcome != RoundOutcome::Approved {
            // The round is over: steps nobody decided are closed. Decided ones were
            // written above with their decision.
            let rest = steps.into_iter().enumerate().filter(|(i, _)| !decided.contains(i)).map(|(_, s)| s);
            close_open_steps(&mut tx, &new.id, rest.collect(), now);
        }
        tx.commit(now).await?;
        Ok(new)
    }
}
