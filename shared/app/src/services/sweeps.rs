//! The sweeps by name, and their walk over every workspace (escalations, notice
//! retries, webhook deliveries, checkpoints, freezes, reviews). A workspace whose pass fails is logged as an error and
//! named in the report, and the walk goes on: one damaged or throttled workspace must
//! not hold back every other workspace's reminders, notices, deliveries and
//! checkpoints. Only failing to list the workspaces fails a sweep.

use std::future::Future;

use serde_json::Value;

use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::store::Query;
use crate::Vigilo;

/// A sweep that schedules run (EventBridge on AWS, timers under `vigilo serve`) and an
/// operator can run once (`vigilo sweep NAME`): one list, so the three cannot drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Signs and stores every workspace's checkpoint.
    Checkpoint,
    /// Moves rows past each workspace's retention to write-once segments.
    Archive,
    /// Takes scheduled changes out of freezes and warns of freezes a day ahead.
    Freeze,
    /// Escalates approval steps past their SLA.
    Escalate,
    /// Seals what waits in the audit queues, sends the notices that failed to go out
    /// and feeds webhooks: everything a request left to be followed up.
    Notices,
    /// Feeds webhooks alone.
    Webhooks,
    /// Voids the change numbers taken by requests that died.
    Numbers,
    /// Reminds of post-implementation reviews due, and tells admins of overdue ones.
    Pir,
    /// Mails the week's agenda to the `cab` group where it is Monday from 08:00.
    Cab,
}

impl Sweep {
    pub const ALL: [Sweep; 9] = [
        Sweep::Checkpoint,
        Sweep::Archive,
        Sweep::Freeze,
        Sweep::Escalate,
        Sweep::Notices,
        Sweep::Webhooks,
        Sweep::Numbers,
        Sweep::Pir,
        Sweep::Cab,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Sweep::Checkpoint => "checkpoint",
            Sweep::Archive => "archive",
            Sweep::Freeze => "freeze",
            Sweep::Escalate => "escalate",
            Sweep::Notices => "notices",
            Sweep::Webhooks => "webhooks",
            Sweep::Numbers => "numbers",
            Sweep::Pir => "pir",
            Sweep::Cab => "cab",
        }
    }

    /// A sweep by its name; the plural names earlier schedules sent are kept, so a
    /// schedule deployed before the rename still runs its sweep.
    pub fn parse(name: &str) -> Option<Sweep> {
        match name {
            "checkpoints" => Some(Sweep::Checkpoint),
            "escalations" => Some(Sweep::Escalate),
            other => Sweep::ALL.into_iter().find(|s| s.name() == other),
        }
    }

    /// The names, for a refusal that lists them.
    pub fn names() -> String {
        Sweep::ALL.map(Sweep::name).join(", ")
    }
}

/// A sweep's report: one workspace's, and the sum of all of them.
pub trait Tally: Default {
    /// Adds another workspace's report to this one.
    fn add(&mut self, other: Self);
    /// The workspaces whose pass failed.
    fn failed(&mut self) -> &mut Vec<String>;
}

/// Implements [`Tally`] for a report: its counters add up, its lists concatenate, and
/// `failed` names the list of workspaces whose pass failed.
macro_rules! tally {
    ($report:ty { sum: [$($n:ident),*], lists: [$($l:ident),*], failed: $failed:ident }) => {
        impl $crate::services::sweeps::Tally for $report {
            fn add(&mut self, other: Self) {
                $(self.$n += other.$n;)*
                $(self.$l.extend(other.$l);)*
            }

            fn failed(&mut self) -> &mut Vec<String> {
                &mut self.$failed
            }
        }
    };
}
pub(crate) use tally;

impl Vigilo {
    /// Runs `sweep` once over every workspace and returns its report.
    pub async fn run_sweep(&self, sweep: Sweep) -> AppResult<Value> {
        let report = match sweep {
            Sweep::Checkpoint => serde_json::to_value(self.checkpoint_all().await?),
            Sweep::Archive => serde_json::to_value(self.archive_all().await?),
            Sweep::Freeze => serde_json::to_value(self.freeze_sweep_all().await?),
            Sweep::Escalate => serde_json::to_value(self.escalate_all().await?),
            Sweep::Notices => serde_json::to_value(self.follow_up_all().await?),
            Sweep::Webhooks => serde_json::to_value(self.dispatch_all_webhooks().await?),
            Sweep::Numbers => serde_json::to_value(self.void_all_gaps().await?),
            Sweep::Pir => serde_json::to_value(self.review_sweep_all().await?),
            Sweep::Cab => serde_json::to_value(self.cab_sweep_all().await?),
        };
        report.map_err(|e| AppError::Corrupt(format!("a sweep report did not serialise: {e}")))
    }

    /// Every workspace's id, from the registry partition.
    pub async fn workspace_ids(&self) -> AppResult<Vec<String>> {
        let q = Query::table(keys::WORKSPACE_REGISTRY).limit(200);
        let entries: Vec<Value> = paging::query_all(&*self.table, q).await?;
        entries
            .iter()
            .map(|e| {
                e.get("workspace_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| AppError::Corrupt("workspace registry entry without workspace_id".into()))
            })
            .collect()
    }

    /// Runs `pass` on each workspace in turn and adds up the reports.
    pub(crate) async fn each_workspace<R, F, Fut>(&self, sweep: &'static str, pass: F) -> AppResult<R>
    where
        R: Tally,
        F: Fn(String) -> Fut,
        Fut: Future<Output = AppResult<R>>,
    {
        let mut total = R::default();
        for ws in self.workspace_ids().await? {
            match pass(ws.clone()).await {
                Ok(r) => total.add(r),
                Err(e) => {
                    tracing::error!(sweep, workspace_id = %ws, error = %e, "the sweep passed over a workspace");
                    total.failed().push(ws);
                }
            }
        }
        Ok(total)
    }
}
