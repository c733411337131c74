//! The sweeps' walk over every workspace (escalations, notice retries, webhook
//! deliveries, checkpoints). A workspace whose pass fails is logged as an error and
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
