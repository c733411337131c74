//! The review sweep: an emergency's post-implementation review task (due 48 hours after
//! the change ends) reminds its assignee once it is due within a day, and tells the
//! workspace's admins and owners once it is overdue, each once.
//!
//! An open review is filed under its due time when its task is written (with the move
//! that ends the emergency), so the sweep reads the reviews due within a day and
//! nothing else. Each notice is queued in one transaction with the entry's mark, on
//! the condition that the entry is as read, so two sweeps at once tell once. A review
//! finished or skipped is dropped from the entry list when next looked at; one past its
//! overdue notice is dropped too, having nothing more to say.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::ids::ChangeNumber;
use vigilo_domain::notice::{Notice, NoticeKind};
use vigilo_domain::role::Role;
use vigilo_domain::task::{Task, TaskStatus};
use vigilo_domain::time;
use vigilo_domain::workspace::{Member, Workspace};

use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::services::records::{decode, load, to_data};
use crate::services::sweeps::tally;
use crate::store::{Condition, Item, Query, WriteOp};
use crate::Vigilo;

/// How long before its due time a review's assignee is reminded.
pub const REMIND_AHEAD: SignedDuration = SignedDuration::from_hours(24);

/// An open review, as the sweep keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    change_number: ChangeNumber,
    task_id: String,
    due_at: Timestamp,
    reminded_at: Option<Timestamp>,
    escalated_at: Option<Timestamp>,
    version: u64,
}

/// The entry of a review task when it is created.
pub(crate) fn entry_item(t: &Task) -> Option<Item> {
    let due = t.due_at?;
    let e = Entry {
        change_number: t.change_number,
        task_id: t.id.clone(),
        due_at: due,
        reminded_at: None,
        escalated_at: None,
        version: 1,
    };
    Some(Item::new(keys::review_entry(&t.workspace_id, &time::format(due), t.change_number, &t.id), to_data(&e)))
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewReport {
    pub workspaces: usize,
    /// Open reviews due within a day or overdue, looked at.
    pub due: usize,
    /// Assignees reminded, as `CHG-00012/T003`.
    pub reminded: Vec<String>,
    /// Reviews told to the admins as overdue.
    pub escalated: Vec<String>,
    /// Reviews finished or skipped since, dropped from the list.
    pub closed: usize,
    pub failed: Vec<String>,
}

tally!(ReviewReport { sum: [workspaces, due, closed], lists: [reminded, escalated], failed: failed });

impl Vigilo {
    pub async fn review_sweep_all(&self) -> AppResult<ReviewReport> {
        self.each_workspace("pir", |ws| async move { self.review_sweep(&ws).await }).await
    }

    pub async fn review_sweep(&self, ws: &str) -> AppResult<ReviewReport> {
        let mut report = ReviewReport { workspaces: 1, ..ReviewReport::default() };
        let now = self.now();
        let q = Query::table(keys::reviews(ws)).between("0", time::format(now + REMIND_AHEAD) + "#~").limit(200);
        let items = paging::items_all(&*self.table, q).await?;
        // Without a way to tell anyone, nothing is marked as told.
        if items.is_empty() || self.delivery.is_none() {
            return Ok(report);
        }
        let workspace: Workspace = load(&*self.table, &keys::workspace(ws)).await?.ok_or(AppError::NotFound)?;
        let members = self.all_members(ws).await?;
        for item in items {
            let key = item.key.clone();
            let entry: Entry = decode(item)?;
            report.due += 1;
            let task: Option<Task> = load(&*self.table, &keys::task(ws, entry.change_number, &entry.task_id)).await?;
            let label = format!("{}/{}", entry.change_number, entry.task_id);
            let open = task.as_ref().is_some_and(|t| matches!(t.status, TaskStatus::Todo | TaskStatus::InProgress));
            let (Some(task), true) = (task, open) else {
                self.table
                    .transact(vec![WriteOp::Delete { key, condition: Some(Condition::version(entry.version)) }])
                    .await
                    .ok();
                report.closed += 1;
                continue;
            };
            let change = self.load_change(ws, entry.change_number).await?;
            let (kind, to): (NoticeKind, Vec<&Member>) = if entry.reminded_at.is_none() {
                let assignee = task.assignee.as_ref().unwrap_or(&change.author);
                (NoticeKind::ReviewDue, members.iter().filter(|m| &m.user_id == assignee).collect())
            } else if now >= entry.due_at && entry.escalated_at.is_none() {
                (NoticeKind::ReviewOverdue, members.iter().filter(|m| m.role >= Role::Admin).collect())
            } else {
                continue;
            };
            if self.tell_review(&workspace, &change, key, entry, kind, to, now).await? {
                match kind {
                    NoticeKind::ReviewDue => report.reminded.push(label),
                    _ => report.escalated.push(label),
                }
            }
        }
        if !report.reminded.is_empty() || !report.escalated.is_empty() {
            if let Err(e) = self.deliver_pending(ws).await {
                tracing::warn!(error = %e, "review notices deferred");
            }
        }
        Ok(report)
    }

    /// Queues `kind` about the review of `c` to `to` with the entry's mark, once.
    #[allow(clippy::too_many_arguments)]
    async fn tell_review(
        &self,
        ws: &Workspace,
        c: &ChangeRequest,
        key: crate::store::Key,
        mut entry: Entry,
        kind: NoticeKind,
        to: Vec<&Member>,
        now: Timestamp,
    ) -> AppResult<bool> {
        let held = entry.version;
        entry.version += 1;
        let mark = match kind {
            NoticeKind::ReviewDue => {
                entry.reminded_at = Some(now);
                // Already overdue when first seen: the admins hear of it on the next pass.
                WriteOp::Put { item: Item::new(key, to_data(&entry)), condition: Some(Condition::version(held)) }
            }
            // Nothing more to say about it: the entry goes.
            _ => WriteOp::Delete { key, condition: Some(Condition::version(held)) },
        };
        let mut ops = vec![mark];
        let detail = Some(vigilo_render::due_at(ws.locale, &ws.timezone, entry.due_at));
        let fill = |n: &mut Notice| n.detail = detail.clone();
        ops.extend(self.notices_to(ws, c, kind, to.into_iter(), fill, now));
        match self.table.transact(ops).await {
            Ok(_) => Ok(true),
            Err(crate::store::StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
