//! Approval queues: the caller's pending steps (their own and delegated ones), and
//! every step of one change with its decisions.

use serde::Serialize;
use vigilo_domain::approval::{ApprovalStep, Seats};
use vigilo_domain::change::ChangeRequest;
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
        let delegators: Vec<UserId> =
            self.delegators(&ws, &me).await?.into_iter().filter(|m| m.role.can_approve()).map(|m| m.user_id).collect();
        let seats = Seats { caller: &me, as_self: access.role().can_approve(), delegators: &delegators };
        let q = Query::index(keys::PENDING, keys::pending_partition(&ws));
        let (steps, next_cursor) = paging::collect(&*self.table, q, limit, cursor, |item| {
            let step = decode_ref::<ApprovalStep>(item)
                .map(|step| (step.offered_to(&seats) && !step.decided_by(&me)).then_some(step));
            std::future::ready(step)
        })
        .await?;
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let Some(c) = load::<ChangeRequest>(&*self.table, &keys::change(&ws, step.change_number)).await? else {
                continue;
            };
            if c.author == me {
                continue;
            }
            let on_behalf_of = if step.eligible.contains(&me) && seats.as_self {
                vec![]
            } else {
                delegators.iter().filter(|d| step.eligible.contains(d)).cloned().collect()
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
