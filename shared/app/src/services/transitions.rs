//! `POST /changes/{number}/{action}`: the lifecycle, with every guard of the contract.
//! One attempt reads the change (and its steps), checks, and commits the new state
//! with its audit rows; a lost race re-runs the attempt from a fresh read.

use serde::Deserialize;
use serde_json::{json, Value};
use tracing::instrument;
use vigilo_domain::approval::ApprovalStep;
use vigilo_domain::change::{ChangeRequest, Status};
use vigilo_domain::dora::Ended;
use vigilo_domain::eligibility;
use vigilo_domain::freeze::{guarded_span, FreezeWindow};
use vigilo_domain::fsm::{self, Action};
use vigilo_domain::ids::{ChangeNumber, Slug};
use vigilo_domain::link::Grant;
use vigilo_domain::notice::NoticeKind;
use vigilo_domain::role::Permission;
use vigilo_domain::task::Task;
use vigilo_domain::transition::{self, Gates, Move, MoveInput, Mover, Needs, StepWrite};
use vigilo_domain::workspace::Member;
use vigilo_domain::{text, DomainError, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::retrying;
use crate::services::access::Access;
use crate::services::changes::require_author_or;
use crate::services::changes::Epochs;
use crate::services::conflicts::{kept_unless_lost, occupancy, touched, write_occupancy, Calendars};
use crate::services::freeze;
use crate::services::notices::grant_item;
use crate::services::notices::Event;
use crate::services::records::{change_item, load, step_item, to_data};
use crate::services::tasks::{review_task, task_created, task_item, write_tasks};
use crate::services::views::diff;
use crate::store::{Condition, Item, Query};
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
    calendars: &Calendars,
    now: jiff::Timestamp,
) {
    new.version = old.version + 1;
    new.updated_at = now;
    let (before, after) = diff(old, new);
    tx.put(change_item(new), Some(Condition::version(old.version)));
    // A change that ends frees its assets; a reopened one holds them again.
    write_occupancy(tx, &new.workspace_id, new.number, occupancy(old), occupancy(new), calendars);
    write_ended(tx, old, new);
    let entry = AuditEntry::new(format!("change.{}", action.audit_verb()), "ChangeRequest", &new.id);
    tx.audit(entry.values(before, after).subject(&new.id).meta(meta));
}

/// Keeps the index by completion time as the move leaves the change: filed when it
/// ends, dropped when it is reopened. In the move's transaction, so the metrics never
/// count a change that did not end or miss one that did.
fn write_ended(tx: &mut Tx<'_>, old: &ChangeRequest, new: &ChangeRequest) {
    let (was, is) = (Ended::of(old), Ended::of(new));
    if was == is {
        return;
    }
    let key = |e: &Ended| keys::change_ended(&new.workspace_id, &vigilo_domain::time::format(e.ended_at), e.number);
    if let Some(e) = &was {
        tx.delete(key(e), None);
    }
    if let Some(e) = &is {
        tx.put(Item::new(key(e), to_data(e)), None);
    }
}

/// The tasks a move read with the change, and whether its gate rests on them.
struct TasksRead<'e> {
    held: bool,
    epochs: &'e Epochs,
}

/// What the service read beyond the gates, for writing the move: the members (for the
/// notices), the tasks (for the review task) and the delegations a decision may ride on.
#[derive(Default)]
struct Read {
    members: Option<Vec<Member>>,
    tasks: Vec<Task>,
    delegating: Vec<Member>,
    seats: Option<eligibility::Seats>,
    /// What the notices of the move show the approvers.
    details: Option<vigilo_domain::notice::ChangeDetails>,
    /// The round's steps as read.
    round: Vec<ApprovalStep>,
    /// The freeze windows over the planned window, when the freeze gate read them.
    freezes: Option<Vec<FreezeWindow>>,
    /// Members following the change's assets, to be told of the move.
    watchers: std::collections::BTreeSet<vigilo_domain::ids::UserId>,
    /// The epochs of the assets whose window entries the conflict gate read.
    asset_epochs: Vec<(crate::store::Key, Option<String>)>,
    /// The calendars of the assets the gate read or the move books or frees.
    calendars: Option<Calendars>,
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
        let mut attempts = 0;
        let moved = retrying!({
            attempts += 1;
            let (access, mut tx, old, epochs) = self.change_for_write(actor, slug, number).await?;
            check_len("comment", &input.comment)?;
            check_len("reason", &input.reason)?;
            check_len("closure_notes", &input.closure_notes)?;
            if let Some(v) = if_match.filter(|v| *v != old.version) {
                return Err(AppError::VersionConflict { expected: v, current: old.version });
            }
            if !action.is_decision() {
                require_executor(&access, &old, action)?;
            }
            let now = self.now();
            let needs = transition::needs(&old, action, now)?;
            let (gates, mut read) = self.gather(&access, &old, &needs, &epochs, now).await?;
            let by = Mover { user: access.user(), role: access.role(), now };
            let mut mv = match transition::transition(&old, action, &move_input(&input), by, gates) {
                Err(e @ (DomainError::NotAnApprover | DomainError::AlreadyDecided)) => {
                    // The change and its steps are two reads: if the change moved in
                    // between (another approver closed the round), retry from a
                    // consistent state.
                    if self.load_change(access.ws(), old.number).await?.version != old.version {
                        return Err(AppError::Contended);
                    }
                    return Err(e.into());
                }
                other => other?,
            };
            // A move that books or frees assets rewrites their calendars from a read.
            let booked = touched(occupancy(&old), occupancy(&mv.change));
            if !booked.is_empty() && !read.calendars.as_ref().is_some_and(|c| c.covers(booked.iter())) {
                let mut assets = booked;
                assets.extend(mv.change.affected_assets.iter().cloned());
                read.calendars = Some(self.asset_calendars(access.ws(), &assets).await?);
            }
            // Members following the change's assets hear of the moves they follow.
            if self.delivery.is_some() && mv.moved && action.watched() {
                read.watchers = epochs.followers.of(&mv.change.affected_assets);
            }
            if self.delivery.is_some() && (mv.notifies() || !read.watchers.is_empty()) {
                if read.members.is_none() {
                    read.members = Some(self.all_members(access.ws()).await?);
                }
                // What the others decided so far is the round as the move leaves it.
                let round = mv.round_after(read.round.clone());
                let members = read.members.as_deref().unwrap_or_default();
                // The windows over the planned window: as the gate read them, else
                // from the calendar read with the change.
                let freezes = read.freezes.take().or_else(|| {
                    let cal = epochs.calendar.as_deref()?;
                    match (mv.change.planned_start, mv.change.planned_end) {
                        (Some(from), Some(to)) => Some(freeze::blocking(cal, &mv.change, from, to)),
                        _ => Some(vec![]),
                    }
                });
                let (details, conflicts) =
                    self.change_details(&mv.change, &round, members, freezes, read.calendars.as_ref()).await?;
                read.details = Some(details);
                // The answer carries the same conflicts: read once.
                mv.conflicts.get_or_insert(conflicts);
            }
            // Each gate holds the epoch of the set it read: a task added or reopened, a
            // freeze window filed, a change filed on an asset since fails the commit,
            // and the move is decided again from a fresh read.
            if needs.freeze_span.is_some() {
                tx.hold_epoch(keys::freezes_epoch(access.ws()), epochs.freezes.clone());
            }
            for (key, stamp) in std::mem::take(&mut read.asset_epochs) {
                tx.hold_epoch(key, stamp);
            }
            // The answer's conflicts, from calendars read for the move: they are held,
            // so they stand as read once the move commits.
            if mv.conflicts.is_none() && read.calendars.is_some() {
                mv.conflicts = Some(self.conflicts_with(&mv.change, read.calendars.as_ref()).await?);
            }
            let tasks = TasksRead { held: needs.tasks, epochs: &epochs };
            let new = self.write_move(&access, &mut tx, &old, action, &input, mv, read, tasks, attempts, now);
            tx.commit(now).await?;
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
        // Notices written by the move go out now, and webhooks hear of it, unless the
        // stream function does both (on AWS); whatever fails waits for the sweep.
        let may_notify = action.may_notify() || action.watched();
        if let (Ok(c), true) = (&moved, self.delivers_inline && self.delivery.is_some() && may_notify) {
            if let Err(e) = self.deliver_pending(&c.workspace_id).await {
                tracing::warn!(error = %e, "notice delivery deferred");
            }
        }
        if let (Ok(c), true) = (&moved, self.delivers_inline && self.webhooks.is_some()) {
            if let Err(e) = self.dispatch_webhooks(&c.workspace_id).await {
                tracing::warn!(error = %e, "webhook delivery deferred");
            }
        }
        moved
    }

    /// Loads exactly what the move's gates read.
    async fn gather(
        &self,
        access: &Access,
        c: &ChangeRequest,
        needs: &Needs,
        epochs: &Epochs,
        now: jiff::Timestamp,
    ) -> AppResult<(Gates, Read)> {
        let ws = access.ws();
        let mut g = Gates::default();
        let mut read = Read::default();
        if let Some((from, to)) = needs.freeze_span {
            g.freezes = self.freezes_over(epochs.calendar.as_deref(), c, from, to).await?;
            if needs.freeze_span == guarded_span(c, None) {
                read.freezes = Some(g.freezes.clone());
            }
        }
        if needs.tasks {
            g.tasks = self.tasks_of(ws, c.number, epochs).await?;
            read.tasks = g.tasks.clone();
        }
        if needs.dependencies {
            for n in &c.dependencies {
                let status = load::<ChangeRequest>(&*self.table, &keys::change(ws, *n)).await?.map(|d| d.status);
                g.dependencies.push((n.to_string(), status.unwrap_or(Status::Cancelled)));
            }
        }
        if needs.conflicts {
            let (report, calendars) = self.conflicts_held(c).await?;
            g.conflicts = report.items;
            read.asset_epochs = report.epochs;
            read.calendars = Some(calendars);
        }
        if needs.planning {
            let (planning, members) = self.planning(ws).await?;
            g.planning = Some(planning);
            read.members = Some(members);
        }
        if needs.round {
            g.round = self.round_steps(c).await?;
            read.round = g.round.clone();
        }
        if needs.seats {
            // A decision that may notify reads every member for its notices: the
            // delegations it may ride on are among them, with no query of their own.
            read.delegating = if self.delivery.is_some() {
                let all = match read.members.take() {
                    Some(all) => all,
                    None => self.all_members(ws).await?,
                };
                let found = crate::services::access::delegators_among(all.iter(), access.user(), now);
                read.members = Some(all);
                found
            } else {
                self.delegators(ws, access.user()).await?
            };
            let seats = eligibility::seats(access.user(), access.role(), &read.delegating, &c.author, now);
            read.seats = seats.as_ref().ok().cloned();
            g.seats = Some(seats);
        }
        Ok((g, read))
    }

    /// Writes a decided move into the transaction: the change (or a check that it did not
    /// move), its steps with their rows, the review task, a spent link, the checks on
    /// the delegations a decision rode on, and the notices. Returns the change as it
    /// now stands.
    #[allow(clippy::too_many_arguments)]
    fn write_move(
        &self,
        access: &Access,
        tx: &mut Tx<'_>,
        old: &ChangeRequest,
        action: Action,
        input: &ActionInput,
        mv: Move,
        mut read: Read,
        tasks: TasksRead<'_>,
        attempts: u32,
        now: jiff::Timestamp,
    ) -> ChangeRequest {
        let ws = access.ws();
        let notifies = mv.notifies() || !read.watchers.is_empty();
        let mut new = mv.change;
        let (mut steps, closing): (Vec<StepWrite>, Vec<StepWrite>) =
            mv.steps.into_iter().partition(|w| w.verb != "cancel");
        for w in steps.iter_mut().filter(|w| w.before.is_none()) {
            w.after.id = uuid::Uuid::new_v4().to_string();
        }
        if let Some(meta) = mv.freeze_override {
            tx.audit(AuditEntry::new("change.freeze_override", "ChangeRequest", &old.id).subject(&old.id).meta(meta));
        }
        // A decision's rows come first (the steps decided, then the change they moved);
        // any other move's row comes before the steps it opens or closes.
        if action.is_decision() {
            write_steps(tx, &old.id, &steps);
        }
        if mv.moved {
            let calendars = read.calendars.take().unwrap_or_default();
            let rewrite = kept_unless_lost(&calendars, attempts);
            write_change(tx, old, &mut new, action, Value::Object(mv.meta), rewrite, now);
        } else {
            // Still in review: the change itself is untouched, but it must not have
            // moved under us (a concurrent cancel, say).
            tx.check(keys::change(ws, old.number), Condition::version(old.version));
        }
        // The review task joins the tasks as kept with the change (or as the gate
        // queried them, for a change filed before the copy was kept).
        let known = tasks.epochs.task_list.as_deref().unwrap_or(&read.tasks);
        match review_task(&new, known, now).filter(|_| mv.review_due) {
            Some(t) => {
                tx.put(task_item(&t), Some(Condition::NotExists));
                if let Some(entry) = crate::services::reviews::entry_item(&t) {
                    tx.put(entry, Some(Condition::NotExists));
                }
                tx.audit(task_created(&t));
                let mut all = known.to_vec();
                all.push(t);
                write_tasks(tx, old, tasks.epochs, &all);
            }
            None if tasks.held => tx.hold_epoch(keys::tasks_epoch(ws, old.number), tasks.epochs.tasks.clone()),
            None => {}
        }
        // The round's other steps as read: a decision on one of them meanwhile (the
        // stage passing, the round closing) fails this commit, so two approvers
        // deciding at once cannot each miss the other's decision.
        let written: std::collections::HashSet<&str> =
            steps.iter().chain(&closing).map(|w| w.after.id.as_str()).collect();
        for s in read.round.iter().filter(|s| !written.contains(s.id.as_str())) {
            tx.check(step_item(s).key, Condition::version(s.version));
        }
        write_steps(tx, &new.id, &closing);
        if !action.is_decision() {
            write_steps(tx, &new.id, &steps);
        }
        if let Some(g) = &input.link {
            // Spent with the decision: a second use finds the grant changed and fails.
            let spent = Grant { used_at: Some(now), version: g.version + 1, ..g.clone() };
            tx.put(grant_item(&spent), Some(Condition::version(g.version)));
        }
        // Delegations are found through an index, which may lag the table: each one a
        // decision rode on must still be, at commit, the member record that was read.
        if let Some(seats) = &read.seats {
            for m in read.delegating.iter().filter(|m| seats.delegators.contains(&m.user_id)) {
                let alone = seats.only_for(&m.user_id);
                if steps.iter().any(|w| w.before.as_ref().is_some_and(|b| w.verb != "open" && b.offered_to(&alone))) {
                    tx.check(keys::member(ws, &m.user_id), Condition::version(m.version));
                }
            }
        }
        if self.delivery.is_some() && notifies {
            let members = read.members.unwrap_or_default();
            let about = if action.is_decision() { old } else { &new };
            let ask: Vec<&ApprovalStep> = steps.iter().filter(|w| w.asks()).map(|w| &w.after).collect();
            let w = &access.workspace;
            let event = Event { ws: w, change: about, members: &members, details: read.details.as_ref(), now };
            let mut notes = self.approval_requests(&event, &ask, NoticeKind::ApprovalRequested);
            if let Some(kind) = mv.tell {
                let words =
                    fsm::reason(if action == Action::Rollback { &input.reason } else { &input.comment }.as_deref());
                notes.extend(self.change_notices(&event, kind, words));
            }
            notes.extend(self.watcher_notices(&event, &read.watchers, action, access.user()));
            for op in notes {
                tx.derived(op);
            }
        }
        // Derived, so never stored: schedule answers with what its gate found, a move
        // that notified with what its notices show.
        let mut answer = if mv.moved { new } else { old.clone() };
        answer.conflicts = mv.conflicts;
        answer
    }

    /// The steps of a change's current round, in stage order.
    pub(crate) async fn round_steps(&self, c: &ChangeRequest) -> AppResult<Vec<ApprovalStep>> {
        let q = Query::table(keys::steps(&c.workspace_id, c.number)).begins_with(keys::round_prefix(c.approval_round));
        crate::paging::query_all(&*self.table, q.limit(500)).await
    }
}

/// The move's input in the domain's terms.
fn move_input(input: &ActionInput) -> MoveInput {
    MoveInput {
        comment: input.comment.clone(),
        reason: input.reason.clone(),
        closure_code: input.closure_code.clone(),
        closure_notes: input.closure_notes.clone(),
        override_freeze: input.override_freeze.unwrap_or(false),
        only_step: input.link.as_ref().map(|g| g.step_id.clone()),
    }
}

/// Writes steps, each guarded by the version read (a new one by its absence), with its
/// `approval_step.<verb>` row.
fn write_steps(tx: &mut Tx<'_>, change_id: &str, steps: &[StepWrite]) {
    for w in steps {
        match &w.before {
            None => {
                tx.put(step_item(&w.after), Some(Condition::NotExists));
                let entry = AuditEntry::new("approval_step.create", "ApprovalStep", &w.after.id);
                tx.audit(entry.values(json!(null), to_data(&w.after)).subject(change_id));
            }
            Some(before) => {
                let after = ApprovalStep { version: before.version + 1, ..w.after.clone() };
                tx.put(step_item(&after), Some(Condition::version(before.version)));
                let (b, a) = diff(before, &after);
                let entry = AuditEntry::new(format!("approval_step.{}", w.verb), "ApprovalStep", &after.id);
                tx.audit(entry.values(b, a).subject(change_id));
            }
        }
    }
}
