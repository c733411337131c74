//! `vigilo bench`: speed and memory of the service layer on local storage, printed as
//! figures. Everything runs in a fresh temporary data folder unless `--data` is given.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vigilo_app::services::changes::ChangeFilter;
use vigilo_app::services::members::MemberInput;
use vigilo_app::services::transitions::ActionInput;
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::{Actor, RequestInfo, SystemClock, Vigilo};
use vigilo_domain::change::RawChange;
use vigilo_domain::ids::UserId;
use vigilo_local::{DataDir, SqliteTable};

pub fn actor(id: &str) -> Actor {
    Actor {
        user_id: UserId::parse(id).unwrap_or_else(|_| unreachable!("fixed ids are valid")),
        email: Some(format!("{id}@example.com")),
        name: None,
        request: RequestInfo::default(),
    }
}

/// Latencies of one phase, summarised.
struct Phase {
    name: &'static str,
    samples: Vec<Duration>,
    wall: Duration,
}

impl Phase {
    fn print(&mut self) {
        self.samples.sort();
        let pick = |q: f64| {
            let i = ((self.samples.len() as f64 - 1.0) * q).round() as usize;
            self.samples.get(i).copied().unwrap_or_default()
        };
        let rate = self.samples.len() as f64 / self.wall.as_secs_f64().max(1e-9);
        println!(
            "{:<34} {:>6} ops {:>10.0} ops/s   p50 {:>8.2} ms   p99 {:>8.2} ms",
            self.name,
            self.samples.len(),
            rate,
            pick(0.5).as_secs_f64() * 1e3,
            pick(0.99).as_secs_f64() * 1e3
        );
    }
}

async fn timed<F, Fut>(name: &'static str, n: usize, mut op: F) -> Result<Phase, String>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        op(i).await?;
        samples.push(t.elapsed());
    }
    Ok(Phase { name, samples, wall: start.elapsed() })
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn run(changes: usize, data: Option<PathBuf>) -> Result<ExitCode, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = DataDir::create(data.as_deref().unwrap_or(tmp.path())).map_err(|e| e.to_string())?;
    if dir.table_path().exists() {
        return Err(format!("{} already holds Vigilo data; bench needs an empty folder", dir.root().display()));
    }
    let table = SqliteTable::open(&dir.table_path()).map_err(|e| e.to_string())?;
    let app = Vigilo::new(Arc::new(table), Arc::new(SystemClock));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(bench(app, changes.max(10)))?;
    if data.is_some() {
        println!(
            "the data stays in {}: try vigilo audit verify --data {} --workspace bench",
            dir.root().display(),
            dir.root().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench(app: Vigilo, n: usize) -> Result<(), String> {
    let err = |e: vigilo_app::AppError| e.to_string();
    let (owner, approver) = (actor("bench-owner"), actor("bench-approver"));
    let bench_slug = vigilo_domain::ids::Slug::parse("bench").map_err(String::from)?;
    let slug = &bench_slug;
    app.create_workspace(
        &owner,
        NewWorkspace { slug: slug.to_string(), name: "Bench".into(), locale: None, timezone: None },
        None,
    )
    .await
    .map_err(err)?;
    let member = MemberInput { email: "bench-approver@example.com".into(), role: "approver".into(), name: None };
    app.put_member(&owner, slug, "bench-approver", member).await.map_err(err)?;
    // Each change gets a one-hour window of its own, two hours after the one before,
    // on a host and a pool shared with others: the conflict checks of create and
    // schedule read their assets' window entries, and find nothing to refuse.
    let base = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    let draft = |i: usize| {
        let start = base + jiff::SignedDuration::from_hours(2 * i as i64);
        RawChange {
            title: Some(format!("bench change {i}")),
            affected_assets: Some(vec![format!("host-{}", i % 50), format!("pool-{}", i % 7)]),
            planned_start: Some(Some(vigilo_domain::time::format(start))),
            planned_end: Some(Some(vigilo_domain::time::format(start + jiff::SignedDuration::from_hours(1)))),
            ..RawChange::default()
        }
    };

    println!("vigilo bench: {n} changes on SQLite (WAL, synchronous=FULL)\n");
    let mut create = timed("create change", n, |i| {
        let (app, owner, raw) = (&app, &owner, draft(i));
        async move { app.create_change(owner, slug, raw, None).await.map(drop).map_err(err) }
    })
    .await?;
    create.print();

    let writers = 8;
    let per = n / writers;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (app, owner, slug) = (app.clone(), owner.clone(), slug.clone());
        let raws: Vec<RawChange> = (0..per).map(|i| draft(n + w * per + i)).collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(raws.len());
            for raw in raws {
                let s = Instant::now();
                app.create_change(&owner, &slug, raw, None).await.map_err(|e| e.to_string())?;
                lat.push(s.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.map_err(|e| e.to_string())??);
    }
    Phase { name: "create change, 8 racing writers", samples, wall: t.elapsed() }.print();

    let lifecycle = n / 4;
    let mut life = timed("lifecycle, 5 transitions each", lifecycle, |i| {
        let (app, owner, approver) = (&app, &owner, &approver);
        async move {
            let number = vigilo_domain::ids::ChangeNumber::new(i as u64 + 1).ok_or("no change number")?;
            let plain = ActionInput::default;
            app.act(owner, slug, number, "submit", plain(), None).await.map_err(err)?;
            app.act(approver, slug, number, "approve", plain(), None).await.map_err(err)?;
            app.act(owner, slug, number, "schedule", plain(), None).await.map_err(err)?;
            app.act(owner, slug, number, "start", plain(), None).await.map_err(err)?;
            let close =
                ActionInput { closure_code: Some("successful".into()), closure_notes: Some("ok".into()), ..plain() };
            app.act(owner, slug, number, "complete", close, None).await.map_err(err)?;
            Ok(())
        }
    })
    .await?;
    life.print();

    let filter = ChangeFilter { status: Some("completed".into()), ..ChangeFilter::default() };
    timed("list 50 completed (status index)", 200, |_| {
        let (app, owner, filter) = (&app, &owner, &filter);
        async move { app.list_changes(owner, slug, filter, 50, None).await.map(drop).map_err(err) }
    })
    .await?
    .print();
    let by_asset = ChangeFilter { asset: Some("host-7".into()), ..ChangeFilter::default() };
    timed("list 50 by asset (asset entries)", 200, |_| {
        let (app, owner, filter) = (&app, &owner, &by_asset);
        async move { app.list_changes(owner, slug, filter, 50, None).await.map(drop).map_err(err) }
    })
    .await?
    .print();

    let ws = app.workspace_by_slug(slug).await.map_err(err)?.ok_or("bench workspace vanished")?;
    let t = Instant::now();
    let report = app.verify_chain(&ws.id, |_, _| {}).await.map_err(err)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{:<34} {:>6} rows {:>9.0} rows/s  intact: {}",
        "verify audit chain",
        report.rows_checked,
        report.rows_checked as f64 / secs.max(1e-9),
        report.ok
    );
    if let Some(kib) = peak_rss_kib() {
        println!("{:<34} {:>7.1} MiB", "peak resident memory", kib as f64 / 1024.0);
    }
    println!("\n{}", json!({"changes": n * 2, "audit_rows": report.rows_checked}));
    Ok(())
}
