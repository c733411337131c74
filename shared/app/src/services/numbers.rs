//! Change numbers stay gapless when a process dies. A create takes its number from the
//! counter before it commits, and a request that fails files the number as a voided
//! placeholder itself; a process that dies between the two leaves a number taken and
//! no change. This sweep compares the counter with the changes: a number still missing
//! [`GRACE`] after it was first seen missing is filed as a cancelled placeholder,
//! audited `change.void`. What it has checked is kept in one item per workspace, so a
//! pass reads only the numbers taken since the last one (and those it is waiting on).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigilo_domain::ids::ChangeNumber;

use crate::error::AppResult;
use crate::keys;
use crate::services::sweeps::tally;
use crate::store::{Item, Key, WriteOp};
use crate::Vigilo;

/// How long a taken number may wait for its change: far past any request's life (API
/// Gateway ends a request at 30 s, a create's retries at a few seconds).
pub const GRACE: SignedDuration = SignedDuration::from_mins(10);

/// Numbers looked at per workspace and pass, past the last one checked.
const PER_PASS: u64 = 1000;

/// What the sweep has checked in a workspace.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checked {
    /// Every number up to here has its change or placeholder, or is in `missing`.
    through: u64,
    missing: Vec<Missing>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Missing {
    number: u64,
    seen_at: Timestamp,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GapReport {
    /// Numbers looked at.
    pub checked: u64,
    /// Numbers filed as placeholders.
    pub voided: u64,
    /// Numbers missing for less than the grace period.
    pub waiting: u64,
    pub failed_workspaces: Vec<String>,
}

tally!(GapReport { sum: [checked, voided, waiting], lists: [failed_workspaces], failed: failed_workspaces });

impl Vigilo {
    /// Files the numbers of a workspace that were taken and never became a change.
    pub async fn void_gaps(&self, ws: &str) -> AppResult<GapReport> {
        let counter = self.table.get(&keys::change_counter(ws)).await?;
        let last = counter.and_then(|i| i.data.get("last").and_then(Value::as_u64)).unwrap_or(0);
        let marker = self.table.get(&keys::numbers_checked(ws)).await?;
        let mut checked: Checked = match marker {
            Some(i) => serde_json::from_value(i.data).unwrap_or_default(),
            None => Checked::default(),
        };
        let upto = last.min(checked.through + PER_PASS);
        let seen: BTreeMap<u64, Timestamp> = checked.missing.iter().map(|m| (m.number, m.seen_at)).collect();
        let candidates: Vec<u64> = seen.keys().copied().chain(checked.through + 1..=upto).collect();
        let mut report = GapReport { checked: candidates.len() as u64, ..GapReport::default() };
        if candidates.is_empty() {
            return Ok(report);
        }
        let now = self.now();
        let mut missing = Vec::new();
        for chunk in candidates.chunks(100) {
            let keys: Vec<Key> =
                chunk.iter().filter_map(|n| ChangeNumber::new(*n)).map(|n| keys::change(ws, n)).collect();
            let found = self.table.snapshot(&keys).await?;
            for (n, item) in chunk.iter().zip(found) {
                if item.is_some() {
                    continue;
                }
                match (seen.get(n), ChangeNumber::new(*n)) {
                    (Some(at), Some(number)) if now.duration_since(*at) >= GRACE => {
                        let why = "the request that took it ended without filing it";
                        self.void_number_for(ws, number, None, why).await;
                        report.voided += 1;
                    }
                    (at, _) => missing.push(Missing { number: *n, seen_at: at.copied().unwrap_or(now) }),
                }
            }
        }
        report.waiting = missing.len() as u64;
        checked.through = upto;
        checked.missing = missing;
        let item = Item::new(keys::numbers_checked(ws), serde_json::to_value(&checked).unwrap_or(Value::Null));
        self.table.transact(vec![WriteOp::Put { item, condition: None }]).await?;
        Ok(report)
    }

    /// [`Vigilo::void_gaps`] for every workspace.
    pub async fn void_all_gaps(&self) -> AppResult<GapReport> {
        self.each_workspace("numbers", |ws| async move { self.void_gaps(&ws).await }).await
    }
}
