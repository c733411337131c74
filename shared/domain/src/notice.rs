//! Notices to people: what happened, to whom, in which language, with everything an
//! approver needs to decide without opening anything else. How a notice reads (email,
//! chat) is `vigilo-render`'s; sending is the hosts' job.

use crate::approval::{ApprovalStep, Verdict};
use crate::change::ChangeRequest;
use crate::conflict::Conflict;
use crate::freeze::FreezeWindow;
use crate::ids::{ChangeNumber, UserId};
use crate::locale::Locale;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

crate::change::wire_enum!(NoticeKind {
    ApprovalRequested = "approval.requested",
    ChangeApproved = "change.approved",
    ChangeRejected = "change.rejected",
    ChangeRolledBack = "change.rolled_back",
    ApprovalEscalated = "approval.escalated",
    ChangeUnscheduled = "change.unscheduled",
    FreezeUpcoming = "freeze.upcoming",
    ChangeWatched = "change.watched",
    ReviewDue = "review.due",
    ReviewOverdue = "review.overdue",
});

/// Where an approver can decide without opening the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionLinks {
    /// The signed, single-use token bound to the step and the approver.
    pub token: String,
    /// `GET` shows the confirmation page; the page posts the decision.
    pub page_url: String,
    /// Replying to this address with `approve` or `reject` decides too.
    pub reply_to: Option<String>,
    pub expires_at: Timestamp,
}

/// One notice to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    pub kind: NoticeKind,
    pub workspace_id: String,
    pub workspace_name: String,
    pub locale: Locale,
    /// The workspace's IANA time zone: times in notices read as its wall clock.
    #[serde(default = "utc")]
    pub timezone: String,
    pub change_number: ChangeNumber,
    pub change_title: String,
    pub change_type: String,
    pub risk_level: String,
    pub planned_start: Option<Timestamp>,
    pub recipient: UserId,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub step_name: Option<String>,
    /// A comment or reason that came with the event.
    pub detail: Option<String>,
    pub links: Option<DecisionLinks>,
    /// The change as the approver needs to see it (notices queued before these were
    /// kept have none).
    #[serde(default)]
    pub details: Option<ChangeDetails>,
    pub created_at: Timestamp,
}

/// What a careful approver reads before deciding: who asks, what is touched and when,
/// the plans, what else is happening in the window, and what the others decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeDetails {
    pub author: Option<UserId>,
    pub author_name: Option<String>,
    pub priority: String,
    pub affected_assets: Vec<String>,
    pub planned_end: Option<Timestamp>,
    /// Markdown, as the author wrote it.
    pub description: String,
    pub implementation_plan: String,
    pub rollback_plan: String,
    pub test_plan: String,
    pub conflicts: Vec<ConflictBrief>,
    pub freezes: Vec<FreezeBrief>,
    pub decisions: Vec<DecisionBrief>,
}

/// Another live change sharing an asset in an overlapping window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictBrief {
    pub number: ChangeNumber,
    pub title: String,
    pub status: String,
    pub shared_assets: Vec<String>,
    pub accepted: bool,
}

impl ConflictBrief {
    pub fn of(x: &Conflict) -> ConflictBrief {
        ConflictBrief {
            number: x.number,
            title: x.title.clone(),
            status: x.status.to_string(),
            shared_assets: x.shared_assets.clone(),
            accepted: x.accepted,
        }
    }
}

/// A freeze window touching the change's planned window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreezeBrief {
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub allow_override: bool,
}

impl FreezeBrief {
    pub fn of(f: &FreezeWindow) -> FreezeBrief {
        FreezeBrief { name: f.name.clone(), start: f.start, end: f.end, allow_override: f.allow_override }
    }
}

/// One decision already given in the current round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionBrief {
    pub step: String,
    pub user: UserId,
    pub on_behalf_of: Option<UserId>,
    pub verdict: Verdict,
    pub comment: Option<String>,
    pub at: Timestamp,
}

impl ChangeDetails {
    /// The details of `c` with what surrounds it: its conflicts, the freeze windows over
    /// its window and the decisions of its current round so far.
    pub fn of(
        c: &ChangeRequest,
        author_name: Option<String>,
        conflicts: &[Conflict],
        freezes: &[FreezeWindow],
        steps: &[ApprovalStep],
    ) -> ChangeDetails {
        let decisions = steps
            .iter()
            .flat_map(|s| {
                s.decisions.iter().map(|d| DecisionBrief {
                    step: s.name.clone(),
                    user: d.user.clone(),
                    on_behalf_of: d.on_behalf_of.clone(),
                    verdict: d.verdict,
                    comment: d.comment.clone(),
                    at: d.at,
                })
            })
            .collect();
        ChangeDetails {
            author: Some(c.author.clone()),
            author_name,
            priority: c.priority.to_string(),
            affected_assets: c.affected_assets.clone(),
            planned_end: c.planned_end,
            description: c.description.clone(),
            implementation_plan: c.implementation_plan.clone(),
            rollback_plan: c.rollback_plan.clone(),
            test_plan: c.test_plan.clone(),
            conflicts: conflicts.iter().map(ConflictBrief::of).collect(),
            freezes: freezes.iter().map(FreezeBrief::of).collect(),
            decisions,
        }
    }
}

fn utc() -> String {
    "UTC".into()
}

/// Where a chat message's comment box is, and where its text comes back in a
/// button press (`state.values.{block}.{action}.value`).
pub const CHAT_COMMENT_BLOCK: &str = "vigilo_comment";
pub const CHAT_COMMENT_ACTION: &str = "comment";
