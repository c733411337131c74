//! Approval queues: the caller's pending steps (their own and delegated ones), and
//! every step of one change with its decisions.

use serde::Serialize;
use vigilo_domain::approval::ApprovalStep;
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::eligibility;
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};

use crate::actor::Actor;
use crate::error::AppResult;
use crate::keys;
use crate::paging::{self, Paged};
use crate::services::records::{decode_ref, load};
use crate::store::Query;
use crate::Vigilo;

/// A pending step offered to the caller, with enough of its change to act on it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueEntry {
    #[serde(flatten)]
    pub step: ApprovalStep,
    pub change_title: String,
    #[schema(value_type = vigilo_domain::change::ChangeType)]
    pub change_type: String,
    #[schema(value_type = vigilo_domain::change::RiskLevel)]
    pub risk_level: String,
    pub planned_start: Option<jiff::Timestamp>,
    /// Set when the step is offered because these users delegated to the caller.
    pub on_behalf_of: Vec<UserId>,
}

impl Vigilo {
    /// Pending steps the caller can decide, oldest first, from the sparse index of the
    /// workspace's pending steps.
    pub async fn my_approvals(
        &self,
        actor: &Actor,
        slug: &Slug,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Paged<QueueEntry>> {
        let access = self.access(actor, slug).await?;
        let ws = access.ws().to_owned();
        let me = access.user().clone();
        let delegating = self.delegators(&ws, &me).await?;
        let q = Query::index(keys::PENDING, keys::pending_partition(&ws));
        let (steps, next_cursor) = paging::collect(&*self.table, q, limit, cursor, |item| {
            // Never the author, whose own steps are never offered: the step records
            // who may decide, the eligibility rule below who of them the caller is.
            let step = decode_ref::<ApprovalStep>(item).map(|step| {
                (step.eligible.iter().any(|u| u == &me || delegating.iter().any(|m| &m.user_id == u))
                    && !step.decided_by(&me))
                .then_some(step)
            });
            std::future::ready(step)
        })
        .await?;
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let Some(c) = load::<ChangeRequest>(&*self.table, &keys::change(&ws, step.change_number)).await? else {
                continue;
            };
            let Ok(seats) = eligibility::seats(&me, access.role(), &delegating, &c.author, self.now()) else {
                continue;
            };
            if !step.offered_to(&seats) {
                continue;
            }
            let on_behalf_of = match seats.on(&step).first() {
                Some(None) => vec![],
                _ => seats.delegators.iter().filter(|d| step.eligible.contains(d)).cloned().collect(),
            };
            out.push(QueueEntry {
                change_title: c.title,
                change_type: c.change_type.to_string(),
                risk_level: c.risk_level.to_string(),
                planned_start: c.planned_start,
                on_behalf_of,
                step,
            });
        }
        Ok(Paged { items: out, next_cursor })
    }

    /// Every step of a change, across submit rounds, with its decisions.
    pub async fn change_approvals(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
    ) -> AppResult<Vec<ApprovalStep>> {
        let access = self.access(actor, slug).await?;
        let c = self.load_change(access.ws(), number).await?;
        let q = Query::table(keys::steps(access.ws(), c.number)).begins_with(keys::STEP_PREFIX).limit(500);
        paging::query_all(&*self.table, q).await
    }
}
