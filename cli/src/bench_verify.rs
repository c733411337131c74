//! `vigilo bench --suite verify --rows N`: how fast and in how much memory a chain of N
//! audit rows is verified, beside what the machine can hash.
//!
//! The chain is written to a fresh SQLite data folder through the audited transaction,
//! with rows the size of a change's (about 900 bytes canonical). The machine's limit is
//! SHA-256 over rows of that size on every core, measured in the same run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};
use vigilo_app::store::{Query, Table};
use vigilo_app::txn::{AuditEntry, Tx};
use vigilo_app::{SystemClock, Vigilo};
use vigilo_local::{DataDir, SqliteTable};

/// Rows per transaction while building the chain (the store's limit is 100 items).
const BATCH: u64 = 90;

/// With `data`, the chain is kept there and a chain already there of `rows` rows is
/// verified again without being written anew (writing a million rows takes minutes).
pub fn run(rows: u64, data: Option<PathBuf>) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(bench(rows.max(1), data))
}

/// A change's worth of audit row: what `change.update` rows carry.
fn entry(i: u64) -> AuditEntry {
    let change = json!({
        "id": format!("0b7f2a4e-{:04x}-4c1e-9a55-{:012x}", i % 0xffff, i),
        "number": format!("CHG-{:06}", i),
        "title": format!("Rotate the TLS certificate on load balancer {i}"),
        "description": "Replace the expiring certificate on the shared ingress load balancer and reload.",
        "change_type": "normal", "risk_level": "medium", "priority": "p3", "status": "draft",
        "affected_assets": [format!("lb-{}", i % 40), "ingress"],
        "implementation_plan": "1. Upload the new certificate\n2. Switch the listener\n3. Watch the error rate",
        "rollback_plan": "Switch the listener back to the previous certificate.",
        "planned_start": "2030-01-15T09:00:00Z", "planned_end": "2030-01-15T10:00:00Z",
        "version": 1 + i % 7,
    });
    AuditEntry::new("change.update", "change", format!("{i}"))
        .values(json!({"title": "Rotate the certificate"}), change)
        .meta(json!({"ip": "203.0.113.7", "request_id": format!("req-{i}"), "actor_kind": "user"}))
}

/// SHA-256 over `size`-byte rows on one core for about half a second: rows per second.
fn hash_rate(size: usize) -> f64 {
    let row = vec![b'x'; size];
    let start = Instant::now();
    let mut n = 0u64;
    let mut acc = 0u8;
    while start.elapsed().as_millis() < 500 {
        for _ in 0..1000 {
            acc ^= Sha256::digest(&row)[0];
        }
        n += 1000;
    }
    std::hint::black_box(acc);
    n as f64 / start.elapsed().as_secs_f64()
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn bench(rows: u64, data: Option<PathBuf>) -> Result<ExitCode, String> {
    let err = |e: vigilo_app::AppError| e.to_string();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let folder = data.unwrap_or_else(|| tmp.path().to_owned());
    let dir = DataDir::create(&folder).map_err(|e| e.to_string())?;
    let table = Arc::new(SqliteTable::open(&dir.table_path()).map_err(|e| e.to_string())?);
    let signer = Arc::new(dir.audit_signer().map_err(|e| e.to_string())?);
    let archive = Arc::new(vigilo_local::FolderBlobs::new(dir.archive_path()));
    let app = Vigilo::new(table.clone(), Arc::new(SystemClock)).with_audit_keeping(signer, archive);
    let workspace = "bench-verify";

    println!("vigilo bench --suite verify: a chain of {rows} audit rows on SQLite\n");
    let start = Instant::now();
    let kept = vigilo_app::txn::load_head(&*table, workspace).await.map_err(err)?.map_or(0, |h| h.seq);
    if kept != 0 && kept != rows {
        return Err(format!("{} holds a chain of {kept} rows, not {rows}", folder.display()));
    }
    let mut written = kept;
    while written < rows {
        let mut tx = Tx::new(&*table, workspace, None);
        for i in written..(written + BATCH).min(rows) {
            tx.audit(entry(i));
        }
        tx.commit(jiff::Timestamp::now()).await.map_err(err)?;
        written = (written + BATCH).min(rows);
        if written % (BATCH * 100) == 0 || written == rows {
            app.seal(workspace).await.map_err(err)?;
        }
    }
    if kept == 0 {
        println!("{:<30} {:>10.1} s", "chain written in", start.elapsed().as_secs_f64());
    } else {
        println!("{:<30} {:>10}", "chain kept in", folder.display());
    }

    let sample =
        vigilo_app::txn::load_row(&*table, workspace, 1).await.map_err(err)?.ok_or("the chain has no row 1")?;
    let size =
        vigilo_domain::canonical::canonical_json(&serde_json::to_value(&sample).map_err(|e| e.to_string())?).len();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_core = hash_rate(size);
    let limit = per_core * cores as f64;
    println!("{:<30} {:>10} bytes", "canonical row", size);
    println!("{:<30} {:>10.0} rows/s ({cores} cores x {per_core:.0})", "machine limit: SHA-256", limit);

    // The two halves of the work alone: reading the rows' text from the store, and
    // hashing rows from their text on one core.
    let start = Instant::now();
    let (mut read, mut bytes, mut sample_page) = (0u64, 0u64, Vec::new());
    let first = Query::table(vigilo_app::keys::audit_rows(workspace)).limit(2000);
    let mut q = first.clone();
    loop {
        let page = table.query_text(&q).await.map_err(|e| e.to_string())?;
        read += page.items.len() as u64;
        bytes += page.items.iter().map(|i| i.text.len() as u64).sum::<u64>();
        if sample_page.is_empty() {
            sample_page = page.items.iter().map(|i| i.text.clone()).collect();
        }
        match page.last {
            Some(p) => q = first.clone().after(Some(p)),
            None => break,
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{:<30} {:>10.0} rows/s ({:.0} MiB/s of stored text, one reader)",
        "reading the rows alone",
        read as f64 / secs,
        bytes as f64 / secs / 1048576.0
    );
    let start = Instant::now();
    let mut hashed = 0u64;
    while start.elapsed().as_millis() < 500 {
        for text in &sample_page {
            let fast = vigilo_domain::stored_row::hash_stored(text).ok_or("a bench row is not canonical")?;
            std::hint::black_box(fast.computed);
        }
        hashed += sample_page.len() as u64;
    }
    println!(
        "{:<30} {:>10.0} rows/s (one core)",
        "hashing rows from their text",
        hashed as f64 / start.elapsed().as_secs_f64()
    );

    // A signed checkpoint of the whole tree: the chain verified, the tree's extension
    // of the last signed one proven, the note signed and written.
    let start = Instant::now();
    let signed = app.sign_checkpoint(workspace).await.map_err(err)?;
    let refused = matches!(signed, vigilo_app::services::checkpoints::Signed::Refused(_));
    println!(
        "{:<30} {:>10.2} s (verify, extension proof, signature{})",
        "checkpoint signed in",
        start.elapsed().as_secs_f64(),
        if refused { ": REFUSED" } else { "" }
    );
    let start = Instant::now();
    let proofs = 100u64;
    for i in 0..proofs {
        let from = 1 + (i * 7919) % rows;
        app.tree_consistency(workspace, from, rows).await.map_err(err)?;
    }
    println!(
        "{:<30} {:>10.2} ms each (O(log n) stored subtree hashes read)",
        "consistency proof",
        start.elapsed().as_secs_f64() * 1000.0 / proofs as f64
    );

    // Peak memory from here on: Linux resets the high-water mark on "5".
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let base = status_kib("VmRSS:").unwrap_or(0);
    let start = Instant::now();
    let report = app.verify_chain(workspace, |_, _| {}).await.map_err(err)?;
    let secs = start.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:").unwrap_or(0);
    let rate = report.rows_checked as f64 / secs.max(1e-9);
    println!(
        "{:<30} {:>10.0} rows/s ({} rows in {secs:.2} s, tree recomputed, {} checkpoints checked, intact: {}) = {:.2} of the limit",
        "verify",
        rate,
        report.rows_checked,
        report.checkpoints_checked,
        report.ok,
        rate / limit
    );
    println!(
        "{:<30} {:>10.1} MiB above the {:.1} MiB before it",
        "peak memory while verifying",
        peak.saturating_sub(base) as f64 / 1024.0,
        base as f64 / 1024.0
    );
    if !report.ok {
        return Err(format!("the bench chain does not verify: {:?}", report.chain_break));
    }
    Ok(ExitCode::SUCCESS)
}
