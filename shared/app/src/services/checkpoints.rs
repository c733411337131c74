//! The checkpoint sweep: verifies each workspace's audit chain and writes what it
//! found (the head's `seq` and `hash`, or the break) to write-once storage outside the
//! table. A later rewrite of the table, even a consistent one by someone with full
//! database access, then disagrees with checkpoints nobody can alter or delete.

use serde::{Deserialize, Serialize};
use vigilo_domain::audit::VerifyReport;

use crate::blobs::{BlobError, Blobs};
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::services::sweeps::tally;
use crate::Vigilo;

/// One checkpoint, as stored at `checkpoints/{workspace_id}/{seq:020}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub workspace_id: String,
    pub checked_at: String,
    /// The last verified row: the chain head when intact.
    pub seq: u64,
    pub hash: Option<String>,
    pub report: VerifyReport,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepSummary {
    pub workspaces: usize,
    pub written: usize,
    /// Workspaces whose chain has not moved since their last checkpoint.
    pub unchanged: usize,
    /// Workspaces whose chain is broken (each is also logged as an error).
    pub broken: Vec<String>,
    /// Workspaces the sweep could not checkpoint this time (each is logged as an error).
    pub failed: Vec<String>,
}

tally!(SweepSummary { sum: [workspaces, written, unchanged], lists: [broken, failed], failed: failed });

pub fn checkpoint_key(workspace_id: &str, seq: u64) -> String {
    format!("checkpoints/{workspace_id}/{}.json", keys::seq_sk(seq))
}

impl Vigilo {
    /// Checkpoints every workspace. Safe to run at any time and more than once.
    pub async fn checkpoint_all(&self, blobs: &dyn Blobs) -> AppResult<SweepSummary> {
        self.each_workspace("checkpoints", |ws| async move { self.checkpoint_workspace(&ws, blobs).await }).await
    }

    /// Verifies one workspace's chain and writes its checkpoint, unless the chain has
    /// not moved since the last one.
    pub async fn checkpoint_workspace(&self, id: &str, blobs: &dyn Blobs) -> AppResult<SweepSummary> {
        let mut summary = SweepSummary { workspaces: 1, ..SweepSummary::default() };
        let report = self.verify_chain(id, |_, _| {}).await?;
        if !report.ok {
            tracing::error!(workspace_id = id, ?report.chain_break, "audit chain broken");
            summary.broken.push(id.to_owned());
        }
        let seq = report.rows_checked;
        let checkpoint = Checkpoint {
            workspace_id: id.to_owned(),
            checked_at: vigilo_domain::time::format(self.now()),
            seq,
            hash: report.last_hash.clone(),
            report,
        };
        let body = serde_json::to_vec_pretty(&checkpoint).map_err(|e| AppError::Corrupt(e.to_string()))?;
        match blobs.put_new(&checkpoint_key(id, seq), body, "application/json").await {
            Ok(()) => summary.written += 1,
            Err(BlobError::Exists(_)) => summary.unchanged += 1,
            Err(BlobError::Backend(e)) => return Err(AppError::Corrupt(format!("checkpoint store: {e}"))),
        }
        Ok(summary)
    }
}
