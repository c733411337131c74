//! What a write leaves for after its answer: its audit entries sealed into the chain,
//! its notices sent, and the new rows fed to each webhook subscription. A local server
//! does it at the end of each request. On AWS the request functions answer first and
//! the stream function does it for each workspace the table's stream names (a new
//! audit-queue entry); the notices sweep does it again for every workspace, so a pass
//! that failed or never ran is made up within minutes. Each step is safe to repeat:
//! sealing races only on the head, notices are claimed before they are sent, and a
//! subscription's cursor moves only past what its receiver accepted.

use serde::Serialize;

use crate::error::AppResult;
use crate::services::notices::DeliveryReport;
use crate::services::sweeps::Tally;
use crate::services::webhooks::WebhookReport;
use crate::Vigilo;

/// What one follow-up pass did, for one workspace or summed over several.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FollowUp {
    /// Audit rows sealed into the chain.
    pub sealed: u64,
    pub notices: DeliveryReport,
    pub webhooks: WebhookReport,
    /// Workspaces whose pass failed (each is logged as an error).
    pub failed_workspaces: Vec<String>,
}

/// Sums like the reports it is made of (which `tally!` cannot nest).
impl Tally for FollowUp {
    fn add(&mut self, other: FollowUp) {
        self.sealed += other.sealed;
        self.notices.add(other.notices);
        self.webhooks.add(other.webhooks);
        self.failed_workspaces.extend(other.failed_workspaces);
    }

    fn failed(&mut self) -> &mut Vec<String> {
        &mut self.failed_workspaces
    }
}

impl Vigilo {
    /// Seals a workspace's queued audit entries, then sends its pending notices and
    /// feeds its webhooks, in that order: a subscription hears of a row only once it
    /// has its `seq`. A notice or delivery that fails waits for its back-off and is
    /// counted, not returned as an error; an error is the store failing, and the pass
    /// is then to be run again.
    pub async fn follow_up(&self, workspace_id: &str) -> AppResult<FollowUp> {
        let sealed = self.seal(workspace_id).await?;
        let notices = self.deliver_pending(workspace_id).await?;
        let webhooks = self.dispatch_webhooks(workspace_id).await?;
        Ok(FollowUp { sealed: sealed.rows, notices, webhooks, failed_workspaces: vec![] })
    }

    /// [`Vigilo::follow_up`] for every workspace (the notices sweep's pass).
    pub async fn follow_up_all(&self) -> AppResult<FollowUp> {
        self.each_workspace("follow-up", |ws| async move { self.follow_up(&ws).await }).await
    }
}
