//! `vigilo bench --backend aws`: what each API operation costs on DynamoDB, in
//! requests and in the read and write capacity units DynamoDB reports for them
//! (`ReturnConsumedCapacity`), on the table `VIGILO_TABLE` names (a real account or
//! an emulator; create it with `vigilo aws init`). Each run uses a new workspace.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigilo_app::services::audit::AuditFilter;
use vigilo_app::services::changes::ChangeFilter;
use vigilo_app::services::members::MemberInput;
use vigilo_app::services::transitions::ActionInput;
use vigilo_app::services::workspaces::NewWorkspace;
use vigilo_app::{SystemClock, Vigilo};
use vigilo_aws::{Aws, DynamoTable, Settings, UsageSnapshot};
use vigilo_domain::change::RawChange;

use crate::bench::actor;

/// Cost and latency of one kind of operation, summed over its runs.
#[derive(Default)]
struct Cost {
    runs: u64,
    usage: UsageSnapshot,
    latencies: Vec<Duration>,
}

struct Meter<'a> {
    table: &'a DynamoTable,
    costs: BTreeMap<usize, (&'static str, Cost)>,
}

impl Meter<'_> {
    /// Runs `op`, charging its requests and capacity to `name`.
    async fn charge<T>(
        &mut self,
        order: usize,
        name: &'static str,
        op: impl std::future::Future<Output = Result<T, vigilo_app::AppError>>,
    ) -> Result<T, String> {
        let before = self.table.usage().snapshot();
        let t = Instant::now();
        let out = op.await.map_err(|e| format!("{name}: {e}"))?;
        let took = t.elapsed();
        let used = self.table.usage().snapshot() - before;
        let (_, cost) = self.costs.entry(order).or_insert_with(|| (name, Cost::default()));
        cost.runs += 1;
        cost.usage.requests += used.requests;
        cost.usage.read_units += used.read_units;
        cost.usage.write_units += used.write_units;
        cost.latencies.push(took);
        Ok(out)
    }

    fn print(&mut self) {
        println!(
            "{:<30} {:>5} {:>11} {:>9} {:>9} {:>10}",
            "operation", "runs", "requests/op", "RCU/op", "WCU/op", "p50 ms"
        );
        for (name, c) in self.costs.values_mut() {
            c.latencies.sort();
            let runs = c.runs.max(1) as f64;
            let p50 = c.latencies.get(c.latencies.len() / 2).copied().unwrap_or_default();
            println!(
                "{:<30} {:>5} {:>11.1} {:>9.1} {:>9.1} {:>10.2}",
                name,
                c.runs,
                c.usage.requests as f64 / runs,
                c.usage.read_units / runs,
                c.usage.write_units / runs,
                p50.as_secs_f64() * 1e3
            );
        }
    }
}

pub fn run(changes: usize) -> Result<ExitCode, String> {
    let settings = Settings::from_env();
    // `RUST_LOG=vigilo_aws=trace` names every request the table makes.
    if let Some(filter) = settings.log.as_deref().and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok()) {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).compact().try_init();
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let aws = Aws::load().await;
        let (table, stream_table) = (aws.table(&settings), aws.table(&settings));
        let outbox = tempfile::tempdir().map_err(|e| e.to_string())?;
        let wire = |t: &DynamoTable| {
            Vigilo::new(Arc::new(t.clone()), Arc::new(SystemClock)).with_delivery(delivery(outbox.path()))
        };
        // As the functions run: requests answer, the stream function seals and sends.
        let app = wire(&table).sealing_elsewhere().delivering_elsewhere();
        let stream = Stream { app: wire(&stream_table), meter: Meter { table: &stream_table, costs: BTreeMap::new() } };
        bench(&app, &table, stream, changes.clamp(1, 1000)).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Notices are written as the functions write them; they go to a folder, so only the
/// table's requests are counted.
fn delivery(dir: &std::path::Path) -> vigilo_app::notify::Delivery {
    let outbox = Arc::new(vigilo_local::OutboxFolder::new(dir));
    vigilo_app::notify::Delivery {
        mailer: outbox.clone(),
        chat: outbox,
        from: "Vigilo <vigilo@example.com>".into(),
        base_url: "https://vigilo.example.com".into(),
        reply_domain: None,
        link_secret: Arc::new(b"bench-link-secret-bench-link-secret".to_vec()),
    }
}

/// The stream function's side: each write's follow-up, charged to what set it off.
struct Stream<'a> {
    app: Vigilo,
    meter: Meter<'a>,
}

impl Stream<'_> {
    async fn follow_up(&mut self, order: usize, name: &'static str, ws: &str) -> Result<(), String> {
        self.meter.charge(order, name, self.app.follow_up(ws)).await.map(drop)
    }
}

async fn bench(app: &Vigilo, table: &DynamoTable, mut stream: Stream<'_>, n: usize) -> Result<(), String> {
    let (owner, approver) = (actor("bench-owner"), actor("bench-approver"));
    let slug = format!("bench-{}", jiff::Timestamp::now().as_millisecond());
    let err = |e: vigilo_app::AppError| e.to_string();
    let ws = NewWorkspace { slug: slug.clone(), name: "Bench".into(), locale: None, timezone: None };
    app.create_workspace(&owner, ws, None).await.map_err(err)?;
    let slug = vigilo_domain::ids::Slug::parse(&slug).map_err(String::from)?;
    let member = MemberInput { email: "bench-approver@example.com".into(), role: "approver".into(), name: None };
    app.put_member(&owner, &slug, "bench-approver", member).await.map_err(err)?;
    let start = vigilo_domain::time::format(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48));
    let end = vigilo_domain::time::format(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(49));

    println!("vigilo bench: DynamoDB cost per operation, {n} changes, table {}\n", table.name());
    let mut m = Meter { table, costs: BTreeMap::new() };
    let plain = ActionInput::default;
    for i in 0..n {
        let raw = RawChange {
            title: Some(format!("bench change {i}")),
            description: Some("Rotate the certificate on the shared load balancer.".into()),
            affected_assets: Some(vec![format!("host-{}", i % 50), "shared-lb".into()]),
            planned_start: Some(Some(start.clone())),
            planned_end: Some(Some(end.clone())),
            rollback_plan: Some("Restore the previous certificate.".into()),
            ..RawChange::default()
        };
        let c = m.charge(0, "create change", app.create_change(&owner, &slug, raw, None)).await?;
        let vigilo_app::Created::New(c) = c else { return Err("a new change was replayed".into()) };
        let (number, ws) = (c.number, c.workspace_id.clone());
        stream.follow_up(0, "after create change", &ws).await?;
        m.charge(1, "get change", app.get_change(&owner, &slug, number)).await?;
        m.charge(2, "submit", app.act(&owner, &slug, number, "submit", plain(), None)).await?;
        stream.follow_up(2, "after submit", &ws).await?;
        m.charge(3, "approval queue (50)", app.my_approvals(&approver, &slug, 50, None)).await?;
        m.charge(4, "approve", app.act(&approver, &slug, number, "approve", plain(), None)).await?;
        stream.follow_up(4, "after approve", &ws).await?;
        m.charge(5, "schedule", app.act(&owner, &slug, number, "schedule", plain(), None)).await?;
        stream.follow_up(5, "after schedule", &ws).await?;
        m.charge(6, "start", app.act(&owner, &slug, number, "start", plain(), None)).await?;
        stream.follow_up(6, "after start", &ws).await?;
        let close =
            ActionInput { closure_code: Some("successful".into()), closure_notes: Some("ok".into()), ..plain() };
        m.charge(7, "complete", app.act(&owner, &slug, number, "complete", close, None)).await?;
        stream.follow_up(7, "after complete", &ws).await?;
        let filter = ChangeFilter { status: Some("completed".into()), ..ChangeFilter::default() };
        m.charge(8, "list changes (status, 50)", app.list_changes(&owner, &slug, &filter, 50, None)).await?;
        let audit = AuditFilter::default();
        m.charge(9, "audit page (50)", app.list_audit(&owner, &slug, &audit, 50, None)).await?;
    }
    println!("In the request (the functions answer before their audit entries are sealed and notices sent):\n");
    m.print();
    println!("\nIn the stream function, per write it follows up (seal, send notices, feed webhooks):\n");
    stream.meter.print();
    println!("\nTransactional writes cost 2 WCU per started KB of each item, plus 1 per KB per index it is in.");
    if table.usage().estimated() > 0 {
        println!(
            "{} write transactions came back without consumed capacity (emulators report none);\n\
             their WCU are worked out from item sizes by those rules.",
            table.usage().estimated()
        );
    }
    Ok(())
}
