//! `vigilo bench --suite contention`: writers racing in one workspace.
//!
//! Locally, the real router serves a fresh SQLite data folder on 127.0.0.1 and N HTTP
//! clients each file changes (each on an asset of its own) and move them through
//! submit, approve, schedule, start and complete; beside the figures the run measures
//! the disk's own limit, durable SQLite commits per second in the same folder. With
//! `--backend aws`, N writers create changes at once in one workspace on the table
//! `VIGILO_TABLE` names, and the run reports DynamoDB calls per create and latency
//! beside the uncontended run's.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use vigilo_app::services::members::MemberInput;
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::{SystemClock, Vigilo};
use vigilo_domain::change::RawChange;
use vigilo_domain::ids::Slug;
use vigilo_http::{AppState, AuthMode};
use vigilo_local::{DataDir, SqliteTable};

use crate::bench::actor;

/// What happened to the requests of one phase.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    unavailable: usize,
    failed: usize,
    first_failure: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.unavailable += other.unavailable;
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn quantile(&mut self, q: f64) -> Duration {
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }

    fn refusals(&self) -> String {
        match &self.first_failure {
            Some(f) => format!("   {} answered 503, {} failed (first: {f})", self.unavailable, self.failed),
            None => String::new(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(backend: crate::backend::Backend, writers: &[usize], changes: usize) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        match backend {
            crate::backend::Backend::Local => local(writers, changes).await,
            crate::backend::Backend::Aws => aws(writers, changes).await,
        }
    })
}

/// The disk's limit: durable (`synchronous=FULL`) single-row SQLite commits per second
/// in `dir`, the ceiling for one transaction per request without group commit.
fn durable_commits_per_second(dir: &std::path::Path) -> Result<f64, String> {
    vigilo_local::sqlite::durable_commit_rate(&dir.join("probe.sqlite"), 2000).map_err(|e| e.to_string())
}

async fn local(writers: &[usize], changes: usize) -> Result<ExitCode, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let limit = durable_commits_per_second(tmp.path())?;
    println!("vigilo bench --suite contention: SQLite (WAL, synchronous=FULL) over HTTP on 127.0.0.1");
    println!("machine limit: {limit:.0} durable SQLite commits/s in this folder\n");
    println!(
        "{:>7} {:>8} {:>11} {:>9} {:>9} {:>12} {:>9} {:>9} {:>9}",
        "clients", "creates", "creates/s", "p50 ms", "p99 ms", "transitions", "moves/s", "p99 ms", "vs limit"
    );
    let mut one_client: Option<f64> = None;
    for &n in writers {
        let dir = tmp.path().join(format!("run-{n}"));
        let (create, mut moves, create_wall, move_wall) = local_run(&dir, n, changes).await?;
        let mut create = create;
        let rate = moves.latencies.len() as f64 / move_wall.as_secs_f64().max(1e-9);
        println!(
            "{:>7} {:>8} {:>11.0} {:>9.2} {:>9.2} {:>12} {:>9.0} {:>9.2} {:>8.2}x{}{}",
            n,
            create.latencies.len(),
            create.latencies.len() as f64 / create_wall.as_secs_f64().max(1e-9),
            ms(create.quantile(0.5)),
            ms(create.quantile(0.99)),
            moves.latencies.len(),
            rate,
            ms(moves.quantile(0.99)),
            rate / limit,
            create.refusals(),
            moves.refusals(),
        );
        if n == 1 {
            one_client = Some(rate);
        } else if let Some(one) = one_client {
            println!("{:>7} racing clients move {:.2}x as fast as one", n, rate / one);
        }
    }
    println!("\n(moves: submit, approve, schedule, start and complete, each one audited request)");
    Ok(ExitCode::SUCCESS)
}

/// One run: a fresh server and `n` clients, each filing `changes / n` changes and
/// moving them to completed. Returns the creates, the moves and each phase's wall time.
async fn local_run(
    dir: &std::path::Path,
    n: usize,
    changes: usize,
) -> Result<(Tally, Tally, Duration, Duration), String> {
    let data = DataDir::create(dir).map_err(|e| e.to_string())?;
    let key = data.token_secret().map_err(|e| e.to_string())?;
    let table = SqliteTable::open(&data.table_path()).map_err(|e| e.to_string())?;
    let app = Vigilo::new(Arc::new(table), Arc::new(SystemClock));
    let slug = setup(&app).await?;
    let state = AppState::new(app, AuthMode::Hs256 { key: key.clone() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let service = vigilo_http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, service).await });

    let now = jiff::Timestamp::now().as_second().max(0) as u64;
    let token = |who: &str| vigilo_http::auth::mint(&key, who, &format!("{who}@example.com"), None, now);
    let (owner, approver) = (token("bench-owner")?, token("bench-approver")?);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}/ws/{slug}/changes");
    let per = (changes / n).max(1);

    // Phase one: every client files its changes at once.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..n {
        let (client, base, owner) = (client.clone(), base.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut numbers = Vec::new();
            for i in 0..per {
                let body = change_body(c * per + i);
                match send(&client, &base, &owner, &body, &mut tally).await {
                    Some(v) => numbers.extend(v.get("number").and_then(Value::as_str).map(str::to_owned)),
                    None => continue,
                }
            }
            (tally, numbers)
        }));
    }
    let mut creates = Tally::default();
    let mut filed = Vec::new();
    for t in tasks {
        let (tally, numbers) = t.await.map_err(|e| e.to_string())?;
        creates.merge(tally);
        filed.push(numbers);
    }
    let create_wall = start.elapsed();

    // Phase two: every client moves its own changes through the lifecycle at once.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for numbers in filed {
        let (client, base, owner, approver) = (client.clone(), base.clone(), owner.clone(), approver.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for number in numbers {
                let url = |action: &str| format!("{base}/{number}/{action}");
                let close = json!({"closure_code": "successful", "closure_notes": "done"});
                let steps = [
                    ("submit", &owner, json!({})),
                    ("approve", &approver, json!({})),
                    ("schedule", &owner, json!({})),
                    ("start", &owner, json!({})),
                    ("complete", &owner, close),
                ];
                for (action, who, body) in steps {
                    if send(&client, &url(action), who, &body, &mut tally).await.is_none() {
                        break;
                    }
                }
            }
            tally
        }));
    }
    let mut moves = Tally::default();
    for t in tasks {
        moves.merge(t.await.map_err(|e| e.to_string())?);
    }
    let move_wall = start.elapsed();
    server.abort();
    Ok((creates, moves, create_wall, move_wall))
}

/// POSTs `body`, timing it into `tally`; the answer's JSON when it succeeded.
async fn send(client: &reqwest::Client, url: &str, token: &str, body: &Value, tally: &mut Tally) -> Option<Value> {
    let t = Instant::now();
    let res = client.post(url).bearer_auth(token).json(body).send().await;
    let took = t.elapsed();
    let failure = match res {
        Ok(r) if r.status().is_success() => {
            tally.latencies.push(took);
            return Some(r.json().await.unwrap_or(Value::Null));
        }
        Ok(r) => {
            if r.status() == StatusCode::SERVICE_UNAVAILABLE {
                tally.unavailable += 1;
            }
            format!("{} {}", r.status().as_u16(), r.text().await.unwrap_or_default())
        }
        Err(e) => e.to_string(),
    };
    tally.failed += 1;
    tally.first_failure.get_or_insert(failure);
    None
}

/// A change on an asset of its own, with a one-hour window of its own.
fn change_body(i: usize) -> Value {
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48 + 2 * i as i64);
    json!({
        "title": format!("contention change {i}"),
        "affected_assets": [format!("asset-{i}")],
        "planned_start": vigilo_domain::time::format(start),
        "planned_end": vigilo_domain::time::format(start + jiff::SignedDuration::from_hours(1)),
    })
}

fn raw_change(i: usize) -> RawChange {
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48 + 2 * i as i64);
    RawChange {
        title: Some(format!("contention change {i}")),
        affected_assets: Some(vec![format!("asset-{i}")]),
        planned_start: Some(Some(vigilo_domain::time::format(start))),
        planned_end: Some(Some(vigilo_domain::time::format(start + jiff::SignedDuration::from_hours(1)))),
        ..RawChange::default()
    }
}

/// A workspace with an owner and an approver, named after the time so runs on a
/// shared table never meet.
async fn setup(app: &Vigilo) -> Result<Slug, String> {
    let err = |e: vigilo_app::AppError| e.to_string();
    let owner = actor("bench-owner");
    let slug = format!("bench-{}", jiff::Timestamp::now().as_millisecond());
    let ws = NewWorkspace { slug: slug.clone(), name: "Bench".into(), locale: None, timezone: None };
    app.create_workspace(&owner, ws, None).await.map_err(err)?;
    let slug = Slug::parse(&slug).map_err(String::from)?;
    let member = MemberInput { email: "bench-approver@example.com".into(), role: "approver".into(), name: None };
    app.put_member(&owner, &slug, "bench-approver", member).await.map_err(err)?;
    Ok(slug)
}

/// How long a run may take before the writers still waiting are counted as failed.
const AWS_DEADLINE: Duration = Duration::from_secs(300);

async fn aws(writers: &[usize], changes: usize) -> Result<ExitCode, String> {
    let settings = vigilo_aws::Settings::from_env();
    let aws = vigilo_aws::Aws::load().await;
    let table = aws.table(&settings);
    println!("vigilo bench --suite contention --backend aws: racing creates in one workspace, table {}", table.name());
    println!("({changes} changes in all per run, split among the writers, each on an asset of its own)\n");
    println!(
        "{:>7} {:>6} {:>10} {:>12} {:>9} {:>9} {:>10} {:>13}",
        "writers", "done", "calls/op", "vs 1 writer", "p50 ms", "p99 ms", "slowest s", "p99 vs linear"
    );
    let mut base: Option<(f64, f64)> = None;
    for &n in writers {
        let app = Vigilo::new(Arc::new(table.clone()), Arc::new(SystemClock));
        let slug = setup(&app).await?;
        let before = table.usage().snapshot();
        let start = Instant::now();
        let per = (changes / n).max(1);
        let mut tasks = Vec::new();
        for w in 0..n {
            let (app, slug) = (app.clone(), slug.clone());
            tasks.push(tokio::spawn(async move {
                let owner = actor("bench-owner");
                let mut tally = Tally::default();
                for i in 0..per {
                    let t = Instant::now();
                    match app.create_change(&owner, &slug, raw_change(w * per + i), None).await {
                        Ok(_) => tally.latencies.push(t.elapsed()),
                        Err(e) => {
                            if matches!(e, vigilo_app::AppError::Contended | vigilo_app::AppError::Store(_)) {
                                tally.unavailable += 1;
                            }
                            tally.failed += 1;
                            tally.first_failure.get_or_insert(e.to_string());
                        }
                    }
                }
                tally
            }));
        }
        let mut tally = Tally::default();
        let deadline = tokio::time::Instant::now() + AWS_DEADLINE;
        for mut t in tasks {
            match tokio::time::timeout_at(deadline, &mut t).await {
                Ok(done) => tally.merge(done.map_err(|e| e.to_string())?),
                Err(_) => {
                    // Stopped, so it does not load the emulator under the next run.
                    t.abort();
                    tally.failed += per;
                    tally.first_failure.get_or_insert(format!("not done within {} s", AWS_DEADLINE.as_secs()));
                }
            }
        }
        let slowest = start.elapsed();
        let used = table.usage().snapshot() - before;
        let done = tally.latencies.len();
        let calls = used.requests as f64 / done.max(1) as f64;
        let p99 = ms(tally.quantile(0.99));
        let (one_calls, one_p99) = *base.get_or_insert((calls, p99));
        println!(
            "{:>7} {:>6} {:>10.1} {:>11.2}x {:>9.1} {:>9.1} {:>10.2} {:>12.2}x{}",
            n,
            format!("{done}/{}", n * per),
            calls,
            calls / one_calls,
            ms(tally.quantile(0.5)),
            p99,
            slowest.as_secs_f64(),
            p99 / (one_p99 * n as f64).max(1e-9),
            tally.refusals(),
        );
    }
    println!("\n(vs 1 writer: calls per create over the uncontended run's, the goal at most 2x under 32 writers;");
    println!(" p99 vs linear: p99 over the uncontended p99 times the writers, at most 1x when latency grows linearly)");
    Ok(ExitCode::SUCCESS)
}
