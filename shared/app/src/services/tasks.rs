//! Runbook tasks of a change: added by hand or generated from the implementation plan,
//! run through their own lifecycle, and read by the start and complete gates.

use serde_json::json;
use tracing::instrument;
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};
use vigilo_domain::role::Permission;
use vigilo_domain::task::{self, Gate, RawTask, Task, TaskAction, TaskOrigin, TaskStatus, TASKS_MAX};
use vigilo_domain::{DomainError, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging::{self, Paged};
use crate::retrying;
use crate::services::changes::require_author_or;
use crate::services::changes::Epochs;
use crate::services::idempotency::{self, Created, IdempotencyKey, Slot};
use crate::services::records::to_data;
use crate::services::views::diff;
use crate::store::{Condition, Item, Query};
use crate::txn::{epoch_copy, AuditEntry, Tx};
use crate::Vigilo;

/// At most this many tasks come from one plan (one transaction holds them all).
pub const GENERATED_MAX: usize = 90;

pub(crate) fn task_item(t: &Task) -> Item {
    Item::new(keys::task(&t.workspace_id, t.change_number, &t.id), to_data(t))
}

/// A new task of `c`, numbered after the ones it has.
fn new_task(c: &ChangeRequest, seq: u32, origin: TaskOrigin, by: Option<&UserId>, now: jiff::Timestamp) -> Task {
    Task {
        id: task::task_id(seq),
        workspace_id: c.workspace_id.clone(),
        change_id: c.id.clone(),
        change_number: c.number,
        title: String::new(),
        description: String::new(),
        is_required: true,
        gate: Gate::Complete,
        predecessors: vec![],
        assignee: None,
        status: TaskStatus::Todo,
        origin,
        due_at: None,
        started_at: None,
        finished_at: None,
        finished_by: None,
        created_by: by.cloned(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn next_seq(tasks: &[Task]) -> u32 {
    tasks.iter().filter_map(|t| task::task_seq(&t.id)).max().unwrap_or(0) + 1
}

/// The post-implementation review an emergency change owes once it ends, or `None`.
/// The copy of a change's tasks its tasks epoch keeps: `None` for a change filed before
/// the copy was kept (its tasks are queried instead).
pub(crate) fn task_list(item: Option<&Item>) -> AppResult<Option<Vec<Task>>> {
    epoch_copy(item, "tasks")
}

/// Moves a change's tasks epoch after a write of its tasks, held as read so that two
/// writers of the set never both commit from one read; where the copy is kept, it is
/// rewritten as `tasks` are now.
pub(crate) fn write_tasks(tx: &mut Tx<'_>, c: &ChangeRequest, epochs: &Epochs, tasks: &[Task]) {
    let key = keys::tasks_epoch(&c.workspace_id, c.number);
    tx.hold_epoch(key.clone(), epochs.tasks.clone());
    match epochs.task_list {
        Some(_) => tx.rewrite_epoch(key, json!({ "tasks": tasks })),
        None => tx.move_epoch(key),
    }
}

/// The tasks epoch of a new change: its copy of the tasks, none yet.
pub(crate) fn no_tasks_yet(tx: &mut Tx<'_>, ws: &str, n: ChangeNumber) {
    let key = keys::tasks_epoch(ws, n);
    tx.hold_epoch(key.clone(), None);
    tx.rewrite_epoch(key, json!({ "tasks": [] }));
}

pub(crate) fn review_task(c: &ChangeRequest, tasks: &[Task], now: jiff::Timestamp) -> Option<Task> {
    if !task::needs_review(c, tasks) {
        return None;
    }
    let mut t = new_task(c, next_seq(tasks), TaskOrigin::Review, None, now);
    t.title = format!("Post-implementation review of {}", c.number);
    t.description = "Emergency changes are reviewed within 48 hours of their end: what happened, why it was \
                     urgent, and what follow-up work it leaves."
        .into();
    t.due_at = Some(c.ended_at.unwrap_or(now) + jiff::SignedDuration::from_hours(task::REVIEW_DUE_HOURS));
    t.assignee = c.assignee.clone().or_else(|| Some(c.author.clone()));
    Some(t)
}

/// The `task.create` row of a task written in the same transaction.
pub(crate) fn task_created(t: &Task) -> AuditEntry {
    AuditEntry::new("task.create", "Task", format!("{}/{}", t.change_number, t.id))
        .values(json!(null), to_data(t))
        .subject(&t.change_id)
}

impl Vigilo {
    /// A change's tasks in the order they were added.
    /// A change's tasks as its writers and gates see them: the copy read with the
    /// change, or, for a change filed before the copy was kept, its tasks' query.
    pub(crate) async fn tasks_of(&self, ws: &str, n: ChangeNumber, epochs: &Epochs) -> AppResult<Vec<Task>> {
        match &epochs.task_list {
            Some(kept) => Ok(kept.clone()),
            None => self.change_tasks(ws, n).await,
        }
    }

    pub(crate) async fn change_tasks(&self, ws: &str, n: ChangeNumber) -> AppResult<Vec<Task>> {
        let q = Query::table(keys::steps(ws, n)).begins_with(keys::TASK_PREFIX).limit(500);
        paging::query_all(&*self.table, q).await
    }

    pub async fn list_tasks(&self, actor: &Actor, slug: &Slug, number: ChangeNumber) -> AppResult<Vec<Task>> {
        let c = self.get_stored_change(actor, slug, number).await?;
        self.change_tasks(&c.workspace_id, c.number).await
    }

    #[instrument(skip(self, actor, raw), fields(user = %actor.user_id))]
    pub async fn add_task(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        raw: RawTask,
        idem: Option<&IdempotencyKey>,
    ) -> AppResult<Created<Task>> {
        retrying!({
            let (access, mut tx, c, epochs) = self.change_for_write(actor, slug, number).await?;
            access.require(Permission::CreateChange)?;
            let scope = format!("tasks:{}", access.ws());
            let slot = idempotency::lookup(&*self.table, &actor.user_id, &scope, idem, self.now()).await?;
            if let Slot::Replay(v) = slot {
                return Ok(Created::Replay(v));
            }
            task::check_runbook_open(&c)?;
            let mut tasks = self.tasks_of(access.ws(), c.number, &epochs).await?;
            let fields = raw.clone().parse(&tasks)?;
            if let Some(a) = &fields.assignee {
                if self.table.get(&keys::member(access.ws(), a)).await?.is_none() {
                    return Err(FieldErrors::single("assignee", "must be a member of this workspace").into());
                }
            }
            let now = self.now();
            let mut t = new_task(&c, next_seq(&tasks), TaskOrigin::Manual, Some(access.user()), now);
            t.title = fields.title;
            t.description = fields.description;
            t.is_required = fields.is_required;
            t.gate = fields.gate;
            t.predecessors = fields.predecessors;
            t.assignee = fields.assignee;
            tx.put(task_item(&t), Some(Condition::NotExists));
            tx.audit(task_created(&t));
            idempotency::remember(&mut tx, &actor.user_id, &scope, idem, &slot, &to_data(&t), now);
            tasks.push(t.clone());
            write_tasks(&mut tx, &c, &epochs, &tasks);
            tx.commit(now).await?;
            Ok(Created::New(t))
        })
    }

    /// One task per step of the implementation plan, each after the one before.
    #[instrument(skip(self, actor), fields(user = %actor.user_id))]
    pub async fn generate_tasks(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        idem: Option<&IdempotencyKey>,
    ) -> AppResult<Created<Paged<Task>>> {
        retrying!({
            let (access, mut tx, c, epochs) = self.change_for_write(actor, slug, number).await?;
            access.require(Permission::CreateChange)?;
            let scope = format!("tasks:{}", access.ws());
            let slot = idempotency::lookup(&*self.table, &actor.user_id, &scope, idem, self.now()).await?;
            if let Slot::Replay(v) = slot {
                return Ok(Created::Replay(v));
            }
            task::check_runbook_open(&c)?;
            let mut tasks = self.tasks_of(access.ws(), c.number, &epochs).await?;
            if tasks.iter().any(|t| t.origin == TaskOrigin::Plan) {
                return Err(DomainError::TasksAlreadyGenerated.into());
            }
            let steps = task::plan_steps(&c.implementation_plan);
            if steps.is_empty() {
                return Err(FieldErrors::single("implementation_plan", "has no steps to turn into tasks").into());
            }
            if steps.len() > GENERATED_MAX || tasks.len() + steps.len() > TASKS_MAX {
                let reason = format!(
                    "has {} steps; at most {GENERATED_MAX} per plan and {TASKS_MAX} tasks per change",
                    steps.len()
                );
                return Err(FieldErrors::single("implementation_plan", &reason).into());
            }
            let now = self.now();
            let mut made: Vec<Task> = Vec::with_capacity(steps.len());
            for (seq, title) in (next_seq(&tasks)..).zip(steps) {
                let mut t = new_task(&c, seq, TaskOrigin::Plan, Some(access.user()), now);
                t.title = title;
                t.predecessors = made.last().map(|p| vec![p.id.clone()]).unwrap_or_default();
                tx.put(task_item(&t), Some(Condition::NotExists));
                made.push(t);
            }
            // One row for the whole runbook keeps the transaction within its limits.
            let entry = AuditEntry::new("task.generate", "ChangeRequest", &c.id)
                .values(json!(null), json!(made.iter().map(to_data).collect::<Vec<_>>()))
                .subject(&c.id);
            tx.audit(entry);
            tasks.extend(made.iter().cloned());
            write_tasks(&mut tx, &c, &epochs, &tasks);
            let page = Paged { items: made, next_cursor: None };
            idempotency::remember(&mut tx, &actor.user_id, &scope, idem, &slot, &to_data(&page), now);
            tx.commit(now).await?;
            Ok(Created::New(page))
        })
    }

    /// Start, finish or skip a task: the change's author, assignee or an admin, or the
    /// task's own assignee.
    #[instrument(skip(self, actor), fields(user = %actor.user_id))]
    pub async fn act_on_task(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        task_id: &str,
        action: &str,
        if_match: Option<u64>,
    ) -> AppResult<Task> {
        let action = TaskAction::parse(action).ok_or(AppError::NotFound)?;
        retrying!({
            let (access, mut tx, c, epochs) = self.change_for_write(actor, slug, number).await?;
            let mut tasks = self.tasks_of(access.ws(), c.number, &epochs).await?;
            let old = tasks.iter().find(|t| t.id == task_id).cloned().ok_or(AppError::NotFound)?;
            access.require(Permission::CreateChange)?;
            let own = old.assignee.as_ref() == Some(access.user()) || c.assignee.as_ref() == Some(access.user());
            if !own {
                require_author_or(&access, &c, Permission::ExecuteAny)?;
            }
            task::check_runbook_open(&c)?;
            if let Some(v) = if_match.filter(|v| *v != old.version) {
                return Err(AppError::VersionConflict { expected: v, current: old.version });
            }
            let now = self.now();
            let mut new = old.clone();
            new.apply(action, &tasks, access.user(), now)?;
            new.version += 1;
            new.updated_at = now;
            let (before, after) = diff(&old, &new);
            tx.put(task_item(&new), Some(Condition::version(old.version)));
            let verb = match action {
                TaskAction::Start => "start",
                TaskAction::Done => "done",
                TaskAction::Skip => "skip",
            };
            tx.audit(
                AuditEntry::new(format!("task.{verb}"), "Task", format!("{}/{}", c.number, new.id))
                    .values(before, after)
                    .subject(&c.id),
            );
            if let Some(kept) = tasks.iter_mut().find(|t| t.id == new.id) {
                *kept = new.clone();
            }
            write_tasks(&mut tx, &c, &epochs, &tasks);
            tx.commit(now).await?;
            Ok(new)
        })
    }
}
