//! `POST /changes/{number}/{action}`: the lifecycle, with every guard of the contract.
//! One attempt reads the change (and its steps), checks, and commits the new state
//! with its audit rows; a lost race re-runs the attempt from a fresh read.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tracing::instrument;
use vigilo_domain::approval::{self, ApprovalStep, RoundOutcome, Seats, StepStatus, Verdict};
use vigilo_domain::change::{ChangeRequest, Status};
use vigilo_domain::fsm::{self, Action};
use vigilo_domain::ids::{ChangeNumber, UserId};
use vigilo_domain::role::{Permission, Role};
use vigilo_domain::{DomainError, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::retrying;
use crate::services::access::Access;
use crate::services::changes::require_author_or;
use crate::services::records::{change_item, decode, load, step_item, to_data};
use crate::services::views::diff;
use crate::store::{Condition, Query};
use crate::txn::{decode_head, AuditEntry, Tx};
use crate::Vigilo;

/// The body of an action; each action reads the fields it needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    pub comment: Option<String>,
    pub reason: Option<String>,
    pub closure_code: Option<String>,
    pub closure_notes: Option<String>,
    pub override_freeze: Option<bool>,
}

fn check_len(field: &str, text: &Option<String>) -> AppResult<()> {
    if text.as_ref().is_some_and(|t| t.chars().count() > vigilo_domain::change::REASON_MAX) {
        let reason = format!("must be at most {} characters", vigilo_domain::change::REASON_MAX);
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
        slug: &str,
        number: &str,
        action: &str,
        input: ActionInput,
        if_match: Option<u64>,
    ) -> AppResult<ChangeRequest> {
        let action = Action::parse(action).ok_or(AppError::NotFound)?;
        retrying!({
            let n = ChangeNumber::parse(number).ok_or(AppError::NotFound)?;
            // Access, chain head and change in one snapshot: any write committed after
            // it moves the head, and our commit, conditioned on this head, then fails.
            let (access, mut read) =
                self.access_with(actor, slug, |ws| vec![keys::chain_head(ws), keys::change(ws, n)]).await?;
            let old: ChangeRequest = read.pop().flatten().map(decode).transpose()?.ok_or(AppError::NotFound)?;
            let head = decode_head(read.pop().flatten())?;
            let mut tx = Tx::begin_from(&*self.table, &access, actor, head);
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
                    new.status = fsm::status_after_submit(new.change_type);
                    new.submitted_at = Some(now);
                    new.approval_round += 1;
                    if new.status == Status::Approved {
                        meta.insert("pre_approved".into(), json!(true));
                    } else {
                        opened = self.plan_steps(&new).await?;
                    }
                }
                Action::Schedule => {
                    fsm::check_schedulable(&new)?;
                    fsm::check_lead_time(&new, new.submitted_at.unwrap_or(now))?;
                    new.status = Status::Scheduled;
                }
                Action::Start => {
                    self.check_dependencies(access.ws(), &new).await?;
                    new.status = Status::InProgress;
                    new.started_at = Some(now);
                }
                Action::Complete => {
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
            write_change(&mut tx, &old, &mut new, action, Value::Object(meta), now);
            close_open_steps(&mut tx, &new.id, closing, now);
            for step in &opened {
                tx.put(step_item(step), Some(Condition::NotExists));
                let entry = AuditEntry::new("approval_step.create", "ApprovalStep", &step.id);
                tx.audit(entry.values(json!(null), to_data(step)).subject(&new.id));
            }
            tx.commit(now).await?;
            Ok(new)
        })
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

    /// The approval steps of a new round, from the built-in matrix.
    async fn plan_steps(&self, c: &ChangeRequest) -> AppResult<Vec<ApprovalStep>> {
        let members: Vec<(UserId, Role)> =
            self.all_members(&c.workspace_id).await?.into_iter().map(|m| (m.user_id, m.role)).collect();
        let groups: BTreeMap<String, Vec<UserId>> =
            self.all_groups(&c.workspace_id).await?.into_iter().map(|g| (g.name, g.members)).collect();
        let plans = approval::builtin_steps(c, &members, &groups)?;
        let first_stage = plans.iter().map(|p| p.stage).min().unwrap_or(0);
        let mut steps = Vec::with_capacity(plans.len());
        for (i, p) in plans.into_iter().enumerate() {
            steps.push(ApprovalStep {
                id: uuid::Uuid::new_v4().to_string(),
                workspace_id: c.workspace_id.clone(),
                change_id: c.id.clone(),
                change_number: c.number,
                round: c.approval_round,
                stage: p.stage,
                index: i as u32,
                name: p.name,
                mode: p.mode,
                quorum: p.quorum,
                group: p.group,
                eligible: p.eligible,
                status: if p.stage == first_stage { StepStatus::Pending } else { StepStatus::Waiting },
                decisions: vec![],
                created_at: c.updated_at.max(c.submitted_at.unwrap_or(c.updated_at)),
                decided_at: None,
                version: 1,
            });
        }
        Ok(steps)
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
        if &old.author == access.user() {
            return Err(DomainError::SelfApprovalForbidden.into());
        }
        let ws = access.ws();
        let delegating: Vec<_> = self
            .delegators(ws, access.user())
            .await?
            .into_iter()
            .filter(|m| m.role.can_approve() && m.user_id != old.author)
            .collect();
        let delegators: Vec<UserId> = delegating.iter().map(|m| m.user_id.clone()).collect();
        let seats = Seats { caller: access.user(), as_self: access.role().can_approve(), delegators: &delegators };
        let now = self.now();
        let mut steps = self.round_steps(&old).await?;
        let before_steps = steps.clone();
        let mut decided = Vec::new();
        for (i, s) in steps.iter_mut().enumerate() {
            if s.offered_to(&seats) && !s.decided_by(seats.caller) {
                s.decide(&seats, verdict, comment.clone(), now)?;
                decided.push(i);
            }
        }
        if decided.is_empty() {
            // The change and its steps are two reads: if the change moved in between
            // (another approver closed the round), retry from a consistent state.
            let current = self.load_change(ws, &old.number.to_string()).await?;
            if current.version != old.version {
                return Err(AppError::Contended);
            }
            let spoke = steps.iter().any(|s| s.status == StepStatus::Pending && s.decided_by(seats.caller));
            return Err(if spoke { DomainError::AlreadyDecided } else { DomainError::NotAnApprover }.into());
        }
        // Delegations are found through an index, which may lag the table: each one a
        // decision uses must still be, at commit, the member record that was read.
        for m in &delegating {
            let alone = Seats { caller: access.user(), as_self: false, delegators: std::slice::from_ref(&m.user_id) };
            if decided.iter().any(|&i| before_steps[i].offered_to(&alone)) {
                tx.check(keys::member(ws, &m.user_id), Condition::version(m.version));
            }
        }
        let (outcome, opened) = approval::advance(&mut steps);
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
