//! Approval SLAs: a sweep finds pending steps past their deadline (five business days
//! for normal changes, two hours for emergencies), reminds their approvers with a fresh
//! link and tells the workspace's admins, once per breach: the step remembers that it
//! was escalated, in the same transaction as its audit row and the notices.

use serde::Serialize;
use serde_json::json;
use vigilo_domain::approval::{ApprovalStep, StepStatus};
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::notice::NoticeKind;
use vigilo_domain::sla;
use vigilo_domain::workspace::Workspace;

use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::retrying;
use crate::services::notices::Event;
use crate::services::records::{load, step_item};
use crate::services::sweeps::tally;
use crate::services::views::diff;
use crate::store::{Condition, Query};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// What one escalation pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EscalationReport {
    pub workspaces: usize,
    pub pending: usize,
    pub escalated: usize,
    /// Workspaces the sweep could not escalate this time (each is logged as an error).
    pub failed: Vec<String>,
}

tally!(EscalationReport { sum: [workspaces, pending, escalated], lists: [failed], failed: failed });

impl Vigilo {
    /// Escalates every workspace's overdue steps.
    pub async fn escalate_all(&self) -> AppResult<EscalationReport> {
        self.each_workspace("escalations", |ws| async move { self.escalate_workspace(&ws).await }).await
    }

    /// Escalates one workspace's overdue steps, read from its sparse index of pending
    /// steps (oldest first), and sends the notices.
    pub async fn escalate_workspace(&self, ws: &str) -> AppResult<EscalationReport> {
        let workspace: Workspace = load(&*self.table, &keys::workspace(ws)).await?.ok_or(AppError::NotFound)?;
        let tz = vigilo_domain::time::zone(&workspace.timezone);
        let q = Query::index(keys::PENDING, keys::pending_partition(ws)).limit(200);
        let pending: Vec<ApprovalStep> = paging::query_all(&*self.table, q).await?;
        let mut report = EscalationReport { workspaces: 1, pending: pending.len(), ..EscalationReport::default() };
        let now = self.now();
        for step in pending.into_iter().filter(|s| s.escalated_at.is_none()) {
            let Some(change) = load::<ChangeRequest>(&*self.table, &keys::change(ws, step.change_number)).await? else {
                continue;
            };
            let opened = step.opened_at.unwrap_or(step.created_at);
            let Some(due) = sla::approval_deadline(opened, change.change_type, &tz) else { continue };
            if now < due {
                continue;
            }
            if self.escalate(&workspace, &change, &step, due).await? {
                report.escalated += 1;
            }
        }
        if report.escalated > 0 {
            if let Err(e) = self.deliver_pending(ws).await {
                tracing::warn!(error = %e, "escalation notices deferred");
            }
        }
        Ok(report)
    }

    /// Marks one step escalated and queues its reminders; `false` when someone else did
    /// it first or the step is no longer pending.
    async fn escalate(
        &self,
        ws: &Workspace,
        change: &ChangeRequest,
        read: &ApprovalStep,
        due: jiff::Timestamp,
    ) -> AppResult<bool> {
        retrying!({
            let mut tx = self.tx(&ws.id, None);
            let key = keys::step(&ws.id, read.change_number, read.round, read.stage, read.index);
            let Some(old) = load::<ApprovalStep>(&*self.table, &key).await? else { return Ok(false) };
            if old.status != StepStatus::Pending || old.escalated_at.is_some() {
                return Ok(false);
            }
            let now = self.now();
            let mut new = old.clone();
            new.escalated_at = Some(now);
            new.version += 1;
            let (before, after) = diff(&old, &new);
            tx.put(step_item(&new), Some(Condition::version(old.version)));
            let overdue = now.duration_since(due);
            let meta = json!({
                "actor_kind": "system",
                "sla_due_at": vigilo_domain::time::format(due),
                "overdue_minutes": overdue.as_secs() / 60,
                "change_type": change.change_type,
            });
            tx.audit(
                AuditEntry::new("approval_step.escalate", "ApprovalStep", &new.id)
                    .values(before, after)
                    .subject(&change.id)
                    .meta(meta),
            );
            let members = self.all_members(&ws.id).await?;
            let round = self.round_steps(change).await?;
            let (details, _) = self.change_details(change, &round, &members, None, None).await?;
            let event = Event { ws, change, members: &members, details: Some(&details), now };
            let mut notes = self.approval_requests(&event, &[&new], NoticeKind::ApprovalEscalated);
            notes.extend(self.admin_notices(&event, &new));
            for op in notes {
                tx.derived(op);
            }
            tx.commit(now).await?;
            Ok(true)
        })
    }
}
