//! `vigilo bench --suite planning`: what the planning reads cost as a workspace grows.
//!
//! - A freeze check against a recurring window filed a year ago (daily, weekly on
//!   Fridays, monthly on the last Friday), asked about a span a year ahead, beside the
//!   same check against a one-off window: the price of expanding a rule, which must
//!   stay bounded (in microseconds, not in the window's age).
//! - DORA metrics over a month and over a day of a workspace with `--changes` ended
//!   changes spread over a year: the items read follow the range, not the workspace.
//! - The calendar of scheduled changes, as the workspace grows.
//!
//! Changes are seeded straight into the table (their items and index entries); the
//! reads are the service's own.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use vigilo_app::keys;
use vigilo_app::services::records::{change_item, to_data};
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::store::{Item, Key, Page, Query, StoreError, WriteOp};
use vigilo_app::{SystemClock, Table, Vigilo};
use vigilo_domain::change::{ChangeRequest, ChangeType, ClosureCode, Status};
use vigilo_domain::dora::Ended;
use vigilo_domain::freeze::{FreezeScope, FreezeWindow};
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};
use vigilo_local::SqliteTable;

use crate::bench::actor;

const CHECKS: usize = 2_000;

/// The table, counting the items its queries hand back.
struct Counting {
    inner: Arc<SqliteTable>,
    items: AtomicUsize,
}

#[async_trait::async_trait]
impl Table for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let got = self.inner.get(key).await?;
        self.items.fetch_add(usize::from(got.is_some()), Ordering::Relaxed);
        Ok(got)
    }
    async fn snapshot(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let got = self.inner.snapshot(keys).await?;
        self.items.fetch_add(got.iter().flatten().count(), Ordering::Relaxed);
        Ok(got)
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let page = self.inner.query(query).await?;
        self.items.fetch_add(page.items.len(), Ordering::Relaxed);
        Ok(page)
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.inner.transact(ops).await
    }
    async fn add(&self, key: &Key, field: &str, by: u64) -> Result<u64, StoreError> {
        self.inner.add(key, field, by).await
    }
}

fn window(start: Timestamp, hours: i64, rule: Option<&str>) -> FreezeWindow {
    let tz = vigilo_domain::time::zone("Europe/Berlin");
    let end = start + SignedDuration::from_hours(hours);
    FreezeWindow {
        id: "w".into(),
        workspace_id: "ws".into(),
        name: "bench".into(),
        description: String::new(),
        start,
        end,
        timezone: "Europe/Berlin".into(),
        local_start: vigilo_domain::freeze::local_time(start, &tz),
        local_end: vigilo_domain::freeze::local_time(end, &tz),
        scope: FreezeScope { all: true, ..FreezeScope::default() },
        allow_override: false,
        recurrence: rule.map(str::to_owned),
        series_end: None,
        created_by: UserId::parse("bench").unwrap_or_else(|_| unreachable!("a fixed id")),
        created_at: start,
        version: 1,
    }
}

fn per_check(f: impl Fn(Timestamp) -> bool, now: Timestamp) -> (Duration, usize) {
    let t = Instant::now();
    let mut hits = 0;
    for i in 0..CHECKS {
        let from = now + SignedDuration::from_hours(24 * 365 + (i as i64 % 200));
        hits += usize::from(f(from));
    }
    (t.elapsed() / CHECKS as u32, hits)
}

fn recurrence(now: Timestamp) {
    println!("freeze check, a span of 2 h a year ahead ({CHECKS} checks each):");
    let year_ago = now - SignedDuration::from_hours(24 * 365);
    let one_off = window(year_ago, 60, None);
    let (floor, _) = per_check(|from| one_off.overlaps(from, from + SignedDuration::from_hours(2)), now);
    println!("  {:<44} {:>9.2} µs per check", "one-off window (the floor)", floor.as_secs_f64() * 1e6);
    for (name, rule, hours) in [
        ("daily 22:00-02:00, filed a year ago", "RRULE:FREQ=DAILY", 4),
        ("weekly Fri-Mon, filed a year ago", "RRULE:FREQ=WEEKLY;BYDAY=FR", 60),
        ("monthly last Friday, filed a year ago", "RRULE:FREQ=MONTHLY;BYDAY=-1FR", 24),
    ] {
        let w = window(year_ago, hours, Some(rule));
        let (d, hits) = per_check(|from| w.overlaps(from, from + SignedDuration::from_hours(2)), now);
        let ratio = d.as_secs_f64() / floor.as_secs_f64().max(1e-9);
        println!(
            "  {name:<44} {:>9.2} µs per check ({ratio:.0}x the floor; {hits} of {CHECKS} spans frozen)",
            d.as_secs_f64() * 1e6
        );
    }
}

/// Seeds changes `from..to` (their numbers less one): each ended (a year's spread) and
/// as a scheduled one.
async fn seed(
    table: &dyn Table,
    ws: &str,
    owner: &UserId,
    (from, to): (usize, usize),
    total: usize,
    now: Timestamp,
) -> Result<(), String> {
    let mut ops = Vec::new();
    for i in from..to {
        let n = ChangeNumber::new(i as u64 + 1).unwrap_or_else(|| unreachable!("numbers start at 1"));
        // Ended changes spread over the last year, one in ten failed.
        let ended_at = now - SignedDuration::from_secs((i as i64 * 365 * 86_400) / total.max(1) as i64);
        let failed = i % 10 == 0;
        let e = Ended {
            number: n,
            status: if failed { Status::Failed } else { Status::Completed },
            closure_code: (!failed).then_some(ClosureCode::Successful),
            submitted_at: Some(ended_at - SignedDuration::from_hours(30)),
            ended_at,
            assets: vec![format!("asset-{}", i % 50)],
        };
        let key = keys::change_ended(ws, &vigilo_domain::time::format(ended_at), n);
        ops.push(WriteOp::Put { item: Item::new(key, to_data(&e)), condition: None });
        // And as many scheduled changes, for the calendar.
        let mut c = ChangeRequest::draft(format!("seed-{i}"), ws.to_owned(), n, ChangeType::Normal, owner.clone(), now);
        c.status = Status::Scheduled;
        c.title = format!("seeded change {n}");
        c.planned_start = Some(now + SignedDuration::from_hours(i as i64 % 2_000));
        c.planned_end = Some(now + SignedDuration::from_hours(i as i64 % 2_000 + 1));
        c.affected_assets = vec![format!("asset-{}", i % 50)];
        ops.push(WriteOp::Put { item: change_item(&c), condition: None });
        if ops.len() >= 90 {
            table.transact(std::mem::take(&mut ops)).await.map_err(|e| e.to_string())?;
        }
    }
    if !ops.is_empty() {
        table.transact(ops).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn run(changes: usize) -> Result<ExitCode, String> {
    let now = Timestamp::now();
    println!("vigilo bench --suite planning: {changes} ended and {changes} scheduled changes at most\n");
    recurrence(now);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sqlite = Arc::new(SqliteTable::open(&tmp.path().join("bench.db")).map_err(|e| e.to_string())?);
    let table = Arc::new(Counting { inner: sqlite, items: AtomicUsize::new(0) });
    let app = Vigilo::new(table.clone(), Arc::new(SystemClock));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let owner = actor("bench-owner");
        let slug = Slug::parse("bench").map_err(|e| e.to_string())?;
        let new = NewWorkspace { slug: "bench".into(), name: "Bench".into(), locale: None, timezone: None };
        let ws = match app.create_workspace(&owner, new, None).await.map_err(|e| e.to_string())? {
            vigilo_app::Created::New(view) => view.workspace.id,
            vigilo_app::Created::Replay(_) => return Err("a fresh workspace cannot be a replay".to_owned()),
        };
        println!("\nDORA metrics and the calendar as the workspace grows (median of 5):");
        println!("  {:>8}  {:>22}  {:>22}  {:>22}", "changes", "DORA, 30 days", "DORA, 1 day", "calendar.ics");
        let mut seeded = 0;
        for stage in [changes / 10, changes / 2, changes].into_iter().filter(|s| *s > 0) {
            seed(&*table, &ws, &owner.user_id, (seeded, stage), changes, now).await?;
            seeded = stage;
            let month = (
                vigilo_domain::time::format(now - SignedDuration::from_hours(24 * 30)),
                vigilo_domain::time::format(now + SignedDuration::from_secs(1)),
            );
            let day = (vigilo_domain::time::format(now - SignedDuration::from_hours(24)), month.1.clone());
            let mut cells = Vec::new();
            for range in [&month, &day] {
                let (d, items) =
                    timed(&table, || app.dora_metrics(&owner, &slug, Some(&range.0), Some(&range.1))).await?;
                cells.push(format!("{:>7.2} ms {:>7} items", d.as_secs_f64() * 1e3, items));
            }
            let (d, items) = timed(&table, || app.calendar_ics(&owner, &slug)).await?;
            cells.push(format!("{:>7.2} ms {:>7} items", d.as_secs_f64() * 1e3, items));
            println!("  {stage:>8}  {}", cells.join("  "));
        }
        println!(
            "\n(each change seeded ended, a year's spread over all {changes}, and scheduled; a stage adds to the last)"
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The median time of five runs of `read`, and the items the last one read.
async fn timed<T, F, Fut>(table: &Counting, read: F) -> Result<(Duration, usize), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = vigilo_app::AppResult<T>>,
{
    let mut times = Vec::new();
    let mut items = 0;
    for _ in 0..5 {
        table.items.store(0, Ordering::Relaxed);
        let t = Instant::now();
        read().await.map_err(|e| e.to_string())?;
        times.push(t.elapsed());
        items = table.items.load(Ordering::Relaxed);
    }
    times.sort();
    Ok((times[2], items))
}
