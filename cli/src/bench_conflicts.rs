//! `vigilo bench --suite conflicts`: what one conflict check reads and how long it
//! takes as a workspace grows to `--changes` changes over `--assets` assets. Changes are
//! seeded straight into the table (as their items and window entries, without audit
//! rows) so that a hundred thousand of them take seconds; the checks themselves are
//! the service's own [`Vigilo::find_conflicts`].
//!
//! Three probe assets keep the same 30 live changes each while the rest of the
//! workspace grows around them: the items a check on them reads must stay flat.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use vigilo_app::services::conflicts::{calendar_item, occupancy, window_entries, Booking};
use vigilo_app::services::records::change_item;
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::store::WriteOp;
use vigilo_app::{SystemClock, Table, Vigilo};
use vigilo_domain::change::{ChangeRequest, ChangeType};
use vigilo_domain::conflict::Window;
use vigilo_domain::ids::{ChangeNumber, UserId};
use vigilo_local::SqliteTable;

use crate::bench::actor;

/// Changes per probe asset, fixed while the workspace grows.
const PROBE_CHANGES: usize = 30;
const PROBES: [&str; 3] = ["probe-a", "probe-b", "probe-c"];
const CHECKS: usize = 500;
/// Planned windows spread over this many days before and after now.
const SPREAD_DAYS: i64 = 365;

/// A small deterministic generator, so every run seeds the same workspace.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn window_at(rng: &mut Lcg, now: Timestamp) -> Window {
    let offset = rng.below(2 * SPREAD_DAYS as u64 * 24) as i64 - SPREAD_DAYS * 24;
    let start = now + SignedDuration::from_hours(offset);
    Window { start, end: start + SignedDuration::from_hours(1 + rng.below(4) as i64) }
}

struct Seeder {
    ws: String,
    author: UserId,
    next: u64,
    ops: Vec<WriteOp>,
    /// Every asset's bookings, and the assets booked since the calendars were written.
    bookings: BTreeMap<String, Vec<Booking>>,
    dirty: BTreeSet<String>,
}

impl Seeder {
    fn change(&mut self, assets: Vec<String>, w: Window, now: Timestamp) -> Vec<WriteOp> {
        self.next += 1;
        let n = ChangeNumber::new(self.next).unwrap_or_else(|| unreachable!("numbers start at 1"));
        let mut c =
            ChangeRequest::draft(format!("seed-{n}"), self.ws.clone(), n, ChangeType::Normal, self.author.clone(), now);
        c.title = format!("seeded change {n}");
        c.affected_assets = assets;
        c.planned_start = Some(w.start);
        c.planned_end = Some(w.end);
        let mut ops = vec![WriteOp::Put { item: change_item(&c), condition: None }];
        ops.extend(window_entries(&self.ws, n, None, occupancy(&c)).into_iter().map(|(_, op)| op));
        for a in &c.affected_assets {
            self.bookings.entry(a.clone()).or_default().push(Booking { number: n, start: w.start, end: w.end });
            self.dirty.insert(a.clone());
        }
        ops
    }

    async fn add(&mut self, table: &dyn Table, ops: Vec<WriteOp>) -> Result<(), String> {
        if self.ops.len() + ops.len() > 100 {
            self.flush(table).await?;
        }
        self.ops.extend(ops);
        Ok(())
    }

    /// Writes what waits, then the calendars of the assets booked since last time
    /// (as the service keeps them: an asset booked past the limit keeps none).
    async fn flush(&mut self, table: &dyn Table) -> Result<(), String> {
        if !self.ops.is_empty() {
            table.transact(std::mem::take(&mut self.ops)).await.map_err(|e| e.to_string())?;
        }
        let dirty: Vec<String> = std::mem::take(&mut self.dirty).into_iter().collect();
        for chunk in dirty.chunks(100) {
            let ops = chunk
                .iter()
                .map(|a| {
                    let item = calendar_item(&self.ws, a, self.bookings.get(a).cloned().unwrap_or_default());
                    WriteOp::Put { item, condition: None }
                })
                .collect();
            table.transact(ops).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

struct Stats {
    latencies: Vec<Duration>,
    items: Vec<usize>,
}

impl Stats {
    fn print(&mut self, label: &str, changes: usize) {
        self.latencies.sort();
        let pick = |q: f64| self.latencies[((self.latencies.len() - 1) as f64 * q).round() as usize];
        let mean = self.items.iter().sum::<usize>() as f64 / self.items.len() as f64;
        println!(
            "{changes:>8} changes  {label:<22} items read: mean {mean:>7.1}, max {:>5}   p50 {:>7.3} ms   p99 {:>7.3} ms",
            self.items.iter().max().unwrap_or(&0),
            pick(0.5).as_secs_f64() * 1e3,
            pick(0.99).as_secs_f64() * 1e3
        );
    }
}

async fn checks(
    app: &Vigilo,
    ws: &str,
    rng: &mut Lcg,
    assets: usize,
    probe: bool,
    now: Timestamp,
) -> Result<Stats, String> {
    let mut stats = Stats { latencies: Vec::with_capacity(CHECKS), items: Vec::with_capacity(CHECKS) };
    for _ in 0..CHECKS {
        let picked: Vec<String> = if probe {
            PROBES.iter().map(|p| p.to_string()).collect()
        } else {
            (0..1 + rng.below(3)).map(|_| format!("asset-{}", rng.below(assets as u64))).collect()
        };
        let w = window_at(rng, now);
        let t = Instant::now();
        let report = app.find_conflicts(ws, None, w, &picked).await.map_err(|e| e.to_string())?;
        stats.latencies.push(t.elapsed());
        stats.items.push(report.items_read);
    }
    Ok(stats)
}

pub fn run(changes: usize, assets: usize) -> Result<ExitCode, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let table = Arc::new(SqliteTable::open(&tmp.path().join("bench.db")).map_err(|e| e.to_string())?);
    let app = Vigilo::new(table.clone(), Arc::new(SystemClock));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let owner = actor("bench-owner");
        let new = NewWorkspace { slug: "bench".into(), name: "Bench".into(), locale: None, timezone: None };
        let ws = app.create_workspace(&owner, new, None).await.map_err(|e| e.to_string())?;
        let ws = match ws {
            vigilo_app::Created::New(view) => view.workspace.id,
            vigilo_app::Created::Replay(_) => return Err("a fresh workspace cannot be a replay".to_owned()),
        };
        let now = Timestamp::now();
        let mut rng = Lcg(42);
        let mut seeder = Seeder {
            ws: ws.clone(),
            author: owner.user_id.clone(),
            next: 0,
            ops: vec![],
            bookings: BTreeMap::new(),
            dirty: BTreeSet::new(),
        };
        for probe in PROBES {
            for _ in 0..PROBE_CHANGES {
                let ops = seeder.change(vec![probe.to_owned()], window_at(&mut rng, now), now);
                seeder.add(&*table, ops).await?;
            }
        }
        let assets = assets.max(1);
        println!(
            "vigilo bench --suite conflicts: up to {changes} changes over {assets} assets (1-3 assets each, \
             1-4 h windows over ±{SPREAD_DAYS} days, every change live); {CHECKS} checks per row\n"
        );
        let mut stages: Vec<usize> =
            [changes / 10, changes / 4, changes / 2, changes].into_iter().filter(|s| *s > 0).collect();
        stages.dedup();
        let mut seeded = 0;
        let t = Instant::now();
        for stage in stages {
            while seeded < stage {
                let k = 1 + rng.below(3);
                let picked: Vec<String> = (0..k).map(|_| format!("asset-{}", rng.below(assets as u64))).collect();
                let mut picked = picked;
                picked.sort();
                picked.dedup();
                let ops = seeder.change(picked, window_at(&mut rng, now), now);
                seeder.add(&*table, ops).await?;
                seeded += 1;
            }
            seeder.flush(&*table).await?;
            checks(&app, &ws, &mut rng, assets, false, now).await?.print("random assets", seeded);
            checks(&app, &ws, &mut rng, assets, true, now).await?.print("3 probe assets (fixed)", seeded);
        }
        println!("\nseeded {seeded} changes in {:.1} s", t.elapsed().as_secs_f64());
        Ok(ExitCode::SUCCESS)
    })
}
