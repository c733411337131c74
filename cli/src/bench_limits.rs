//! `vigilo bench --suite limits`: how long the service takes to refuse requests built
//! to tie it up (lists far over their limits, each body under the 2 MiB cap), through
//! the real router on local storage, beside the machine's own floor: the time to parse
//! the same body as plain JSON. A refusal should cost about that much, not the seconds
//! a check of every item against every other would take.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};
use tower::ServiceExt;
use vigilo_app::{SystemClock, Vigilo};
use vigilo_http::{AppState, AuthMode};
use vigilo_local::{DataDir, SqliteTable};

const RUNS: usize = 5;

fn many(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("a{i}")).collect()
}

/// The oversized requests: what each sends, where, and its size.
fn cases() -> Vec<(&'static str, Method, &'static str, Value)> {
    let change = |field: &str, list: Value| {
        let mut c = json!({"title": "t", "change_type": "normal"});
        c[field] = list;
        c
    };
    let deps: Vec<String> = (1..=50_000).map(|i| format!("CHG-{i:05}")).collect();
    let stage = |users: Vec<String>| json!([{"name": "s", "mode": "any", "approvers": {"users": users}}]);
    vec![
        (
            "change, 100,000 affected assets",
            Method::POST,
            "/ws/bench/changes",
            change("affected_assets", json!(many(100_000))),
        ),
        ("change, 50,000 dependencies", Method::POST, "/ws/bench/changes", change("dependencies", json!(deps))),
        (
            "freeze window, 100,000 scope assets",
            Method::POST,
            "/ws/bench/freeze-windows",
            json!({"name": "f", "start": "2030-12-20", "end": "2031-01-02", "scope": {"assets": many(100_000)}}),
        ),
        (
            "policy, 50,000 approvers",
            Method::POST,
            "/ws/bench/approval-policies",
            json!({"name": "p", "priority": 1, "match": {}, "stages": stage(many(50_000))}),
        ),
        ("group, 100,000 members", Method::PUT, "/ws/bench/groups/cab", json!({"members": many(100_000)})),
    ]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run() -> Result<ExitCode, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = DataDir::create(tmp.path()).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let table = Arc::new(SqliteTable::open(&dir.table_path()).map_err(|e| e.to_string())?);
        let key = dir.token_secret().map_err(|e| e.to_string())?;
        let app = Vigilo::new(table, Arc::new(SystemClock));
        let router = vigilo_http::router(AppState::new(app, AuthMode::Hs256 { key: key.clone() }));
        let now = jiff::Timestamp::now().as_second() as u64;
        let token = vigilo_http::auth::mint(&key, "owner", "owner@example.com", None, now)?;
        let call = |method: Method, path: &str, body: Vec<u8>| {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body));
            let router = router.clone();
            async move {
                let request = request.map_err(|e| e.to_string())?;
                let response = router.oneshot(request).await.map_err(|e| e.to_string())?;
                Ok::<u16, String>(response.status().as_u16())
            }
        };
        let ws = serde_json::to_vec(&json!({"slug": "bench", "name": "Bench"})).map_err(|e| e.to_string())?;
        if call(Method::POST, "/workspaces", ws).await? != 201 {
            return Err("could not create the bench workspace".into());
        }
        println!("vigilo bench --suite limits: oversized requests refused through the router (median of {RUNS})\n");
        println!(
            "{:<38} {:>9} {:>8} {:>12} {:>16} {:>7}",
            "request", "body", "status", "refused in", "JSON parse alone", "ratio"
        );
        for (name, method, path, body) in cases() {
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            let mut took = Vec::with_capacity(RUNS);
            let mut floor = Vec::with_capacity(RUNS);
            let mut status = 0;
            for _ in 0..RUNS {
                let t = Instant::now();
                let parsed: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                floor.push(t.elapsed());
                drop(parsed);
                let t = Instant::now();
                status = call(method.clone(), path, bytes.clone()).await?;
                took.push(t.elapsed());
            }
            let (took, floor) = (median(took), median(floor));
            println!(
                "{:<38} {:>6} KB {:>8} {:>9.2} ms {:>13.2} ms {:>6.1}x",
                name,
                bytes.len() / 1024,
                status,
                ms(took),
                ms(floor),
                took.as_secs_f64() / floor.as_secs_f64().max(1e-9)
            );
            if status != 422 {
                return Err(format!("{name}: expected 422, got {status}"));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
