//! Each function's release bootstrap: its size on disk and its init time to ready,
//! started against the stand-in Lambda Runtime API and timed from process start to its
//! first poll for work (init done) and to its answer to a first event.
//!
//! Build the functions first, then run:
//!   cargo build --release -p vigilo-fn-workspaces -p vigilo-fn-changes \
//!     -p vigilo-fn-transitions -p vigilo-fn-approvals -p vigilo-fn-governance \
//!     -p vigilo-fn-planning -p vigilo-fn-audit
//!   cargo bench -p vigilo-lambda --bench bootstrap
//! `VIGILO_FUNCTIONS_DIR` points elsewhere (e.g. `target/lambda` after `cargo lambda build`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigilo_lambda::stand_in::{lambda_env, RuntimeApi};
use vigilo_lambda::Group;

const RUNS: usize = 7;
/// The size target, in MiB.
const SIZE_TARGET_MIB: f64 = 8.0;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bootstrap as `cargo build` (`NAME`) or `cargo lambda build` (`NAME/bootstrap`) lays it out.
fn bootstrap(dir: &std::path::Path, f: Group) -> Option<PathBuf> {
    let name = format!("vigilo-fn-{}", f.name());
    [dir.join(&name), dir.join(&name).join("bootstrap")].into_iter().find(|p| p.is_file())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time_one(path: &std::path::Path, f: Group, event: &str) -> Result<(Duration, Duration), String> {
    let api = RuntimeApi::start(event.to_owned()).await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut child = Command::new(path)
        .env_clear()
        .envs(lambda_env(&api, f.name()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let seen = tokio::time::timeout(Duration::from_secs(30), api.finished()).await;
    let _ = child.kill();
    let _ = child.wait();
    let seen = seen.map_err(|_| format!("{} did not answer within 30 s", path.display()))?;
    if let Some(e) = seen.error {
        return Err(format!("{} reported an error: {e}", path.display()));
    }
    let ready = seen.ready.ok_or("no poll")? - start;
    let answered = seen.responded.ok_or("no answer")? - start;
    Ok((ready, answered))
}

#[tokio::main]
async fn main() {
    let dir =
        std::env::var_os("VIGILO_FUNCTIONS_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target/release"));
    let event = std::fs::read_to_string(root().join("events/workspaces/health.json")).expect("sample event");
    println!("function bootstraps in {}\n", dir.display());
    println!("{:<13} {:>9} {:>16} {:>18}", "function", "size MiB", "init to ready ms", "first answer ms");
    let mut missing = 0;
    for &f in Group::ALL {
        let Some(path) = bootstrap(&dir, f) else {
            println!("{:<13} not built", f.name());
            missing += 1;
            continue;
        };
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / (1024.0 * 1024.0);
        let mut ready = Vec::new();
        let mut answered = Vec::new();
        for _ in 0..RUNS {
            match time_one(&path, f, &event).await {
                Ok((r, a)) => {
                    ready.push(r);
                    answered.push(a);
                }
                Err(e) => {
                    println!("{:<13} {e}", f.name());
                    break;
                }
            }
        }
        if ready.len() == RUNS {
            println!(
                "{:<13} {:>9.2} {:>16.1} {:>18.1}{}",
                f.name(),
                size,
                median(ready).as_secs_f64() * 1e3,
                median(answered).as_secs_f64() * 1e3,
                if size > SIZE_TARGET_MIB { "   over the 8 MiB target" } else { "" }
            );
        }
    }
    println!("\nmedian of {RUNS} starts each; the first event is GET /health (404 outside the workspaces function).");
    if missing > 0 {
        println!("build the missing functions with: cargo build --release (see the top of this file)");
    }
}
