//! The CAB's week: `GET /cab/agenda` and the weekly mail of it to the `cab` group.
//!
//! The agenda holds every normal change awaiting review (the status index), each with
//! its risk score, plans, the approvers still to decide and its conflicts, planned
//! start first. The `cab` sweep runs on one schedule for every workspace and mails
//! those whose clock reads Monday from 08:00: the agenda goes to each member of the
//! workspace's `cab` group through the outbox (so a failed send is retried like any
//! notice), queued in one transaction with the week's mark, written on the condition
//! that it does not exist, so each week's agenda goes out once however often the sweep
//! runs or however many run at once.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use vigilo_domain::agenda::{self, Agenda, AgendaItem, AgendaMail, Waiting};
use vigilo_domain::approval::StepStatus;
use vigilo_domain::change::{ChangeRequest, ChangeType, Status};
use vigilo_domain::ids::Slug;
use vigilo_domain::notice::ConflictBrief;
use vigilo_domain::risk::Assessment;
use vigilo_domain::workspace::{Group, Member, Workspace};
use vigilo_domain::{time, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::services::records::load;
use crate::services::sweeps::tally;
use crate::store::{Condition, Item, Query, WriteOp};
use crate::Vigilo;

/// What one pass of the weekly mail did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CabReport {
    pub workspaces: usize,
    /// Workspaces whose agenda went out this pass, as `{workspace id} {week}`.
    pub mailed: Vec<String>,
    /// Mails queued.
    pub recipients: usize,
    /// Workspaces whose Monday morning it is but that have no `cab` group members.
    pub without_cab: usize,
    pub failed: Vec<String>,
}

tally!(CabReport { sum: [workspaces, recipients, without_cab], lists: [mailed], failed: failed });

fn item(
    c: &ChangeRequest,
    members: &[Member],
    score: Option<u32>,
    pending: Vec<Waiting>,
    conflicts: Vec<ConflictBrief>,
    week: (Timestamp, Timestamp),
) -> AgendaItem {
    AgendaItem {
        number: c.number,
        title: c.title.clone(),
        priority: c.priority.to_string(),
        risk_level: c.risk_level.to_string(),
        risk_score: score,
        planned_start: c.planned_start,
        planned_end: c.planned_end,
        planned_this_week: c.planned_start.is_some_and(|s| s >= week.0 && s < week.1),
        affected_assets: c.affected_assets.clone(),
        author: c.author.clone(),
        author_name: members.iter().find(|m| m.user_id == c.author).and_then(|m| m.name.clone()),
        submitted_at: c.submitted_at,
        implementation_plan: c.implementation_plan.clone(),
        test_plan: c.test_plan.clone(),
        rollback_plan: c.rollback_plan.clone(),
        pending_approvers: pending,
        conflicts,
    }
}

impl Vigilo {
    /// `GET /cab/agenda?week=` (viewer+); the current week of the workspace's clock by default.
    pub async fn cab_agenda(&self, actor: &Actor, slug: &Slug, week: Option<&str>) -> AppResult<Agenda> {
        let access = self.access(actor, slug).await?;
        let tz = time::zone(&access.workspace.timezone);
        let week = match week.map(str::trim).filter(|w| !w.is_empty()) {
            Some(w) => w.to_owned(),
            None => agenda::week_of(self.now(), &tz),
        };
        self.agenda_of(&access.workspace, &week).await
    }

    /// The agenda of `week` in `ws`.
    pub(crate) async fn agenda_of(&self, ws: &Workspace, week: &str) -> AppResult<Agenda> {
        let tz = time::zone(&ws.timezone);
        let Some(bounds) = agenda::week_bounds(week, &tz) else {
            let mut e = FieldErrors::default();
            e.add("week", "an ISO 8601 week, e.g. 2026-W50");
            return Err(e.into());
        };
        let q = Query::index(keys::BY_STATUS, keys::status_partition(&ws.id, Status::Review)).limit(200);
        let waiting: Vec<ChangeRequest> = paging::query_all(&*self.table, q).await?;
        let members = self.all_members(&ws.id).await?;
        let mut items = Vec::new();
        for c in waiting.iter().filter(|c| c.change_type == ChangeType::Normal) {
            let score =
                load::<Assessment>(&*self.table, &keys::risk_assessment(&ws.id, c.number)).await?.map(|a| a.score);
            let pending = self
                .round_steps(c)
                .await?
                .into_iter()
                .filter(|s| s.status == StepStatus::Pending)
                .map(|s| {
                    let approvers = s.eligible.iter().filter(|u| !s.decided_by(u)).cloned().collect();
                    Waiting { step: s.name.clone(), approvers }
                })
                .collect();
            let conflicts = self.conflicts_of(c).await?.iter().map(ConflictBrief::of).collect();
            items.push(item(c, &members, score, pending, conflicts, bounds));
        }
        items.sort_by_key(|i| (i.planned_start.is_none(), i.planned_start, i.number));
        Ok(Agenda {
            week: week.to_owned(),
            starts_at: bounds.0,
            ends_at: bounds.1,
            timezone: ws.timezone.clone(),
            items,
        })
    }

    /// Mails the week's agenda to every workspace whose clock reads Monday from 08:00.
    pub async fn cab_sweep_all(&self) -> AppResult<CabReport> {
        self.each_workspace("cab", |ws| async move { self.cab_sweep(&ws).await }).await
    }

    pub async fn cab_sweep(&self, ws: &str) -> AppResult<CabReport> {
        let mut report = CabReport { workspaces: 1, ..CabReport::default() };
        if self.delivery.is_none() {
            return Ok(report);
        }
        let workspace: Workspace = load(&*self.table, &keys::workspace(ws)).await?.ok_or(AppError::NotFound)?;
        let now = self.now();
        let tz = time::zone(&workspace.timezone);
        if !agenda::is_mail_time(now, &tz) {
            return Ok(report);
        }
        let week = agenda::week_of(now, &tz);
        let mark = keys::cab_mailed(ws, &week);
        if self.table.get(&mark).await?.is_some() {
            return Ok(report);
        }
        let group: Option<Group> = load(&*self.table, &keys::group(ws, "cab")).await?;
        let members = self.all_members(ws).await?;
        let to: Vec<&Member> = match &group {
            Some(g) => members.iter().filter(|m| g.members.contains(&m.user_id)).collect(),
            None => vec![],
        };
        if to.is_empty() {
            report.without_cab = 1;
            return Ok(report);
        }
        let agenda = self.agenda_of(&workspace, &week).await?;
        let until = (now + agenda::MARK_KEPT).as_second();
        let data = json!({"week": week, "at": time::format(now), "recipients": to.len()});
        let mut ops =
            vec![WriteOp::Put { item: Item::new(mark, data).expires(until), condition: Some(Condition::NotExists) }];
        for m in &to {
            let mail = AgendaMail {
                id: uuid::Uuid::new_v4().to_string(),
                workspace_id: ws.to_owned(),
                workspace_name: workspace.name.clone(),
                locale: workspace.locale,
                recipient: m.user_id.clone(),
                recipient_email: m.email.clone(),
                recipient_name: m.name.clone(),
                agenda: agenda.clone(),
                created_at: now,
            };
            ops.push(crate::services::notices::queued(&mail, &mail.workspace_id, &mail.id, now));
        }
        match self.table.transact(ops).await {
            Ok(()) => {}
            // Another pass mailed it first.
            Err(crate::store::StoreError::ConditionFailed { .. }) => return Ok(report),
            Err(e) => return Err(e.into()),
        }
        report.mailed.push(format!("{ws} {week}"));
        report.recipients = to.len();
        if let Err(e) = self.deliver_pending(ws).await {
            tracing::warn!(error = %e, "agenda mails deferred");
        }
        Ok(report)
    }
}
