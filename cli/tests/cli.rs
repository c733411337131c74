//! The `vigilo` binary as a user runs it: serve, token, and audit verify.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_vigilo");

/// A running `vigilo serve`, stopped (by its PID) when dropped.
struct Server {
    child: Child,
    base: String,
    first_line: Value,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path) -> Server {
    serve_with(data, &[], &[])
}

fn serve_with(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vigilo serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    reader.read_line(&mut line).expect("first log line");
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let first_line: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line, got {line:?}"));
    let addr = first_line["fields"]["addr"].as_str().expect("addr field").to_owned();
    Server { child, base: format!("http://{addr}"), first_line }
}

fn vigilo(args: &[&str], data: &Path) -> Output {
    Command::new(BIN).args(args).arg("--data").arg(data).output().expect("run vigilo")
}

fn token(data: &Path, sub: &str) -> String {
    let out = vigilo(&["token", "--sub", sub, "--email", &format!("{sub}@example.com"), "--name", sub], data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn call(base: &str, token: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let res = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

/// A data folder under `tmp` holding workspace `acme` of alice's, written through a
/// server that is stopped again.
async fn with_workspace(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let data = tmp.path().join("data");
    let server = serve(&data);
    let alice = token(&data, "alice");
    call(&server.base, &alice, reqwest::Method::POST, "/workspaces", json!({"slug": "acme", "name": "Acme"})).await;
    drop(server);
    data
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn serve_token_and_verify_work_together() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data);
    let message = server.first_line["fields"]["message"].as_str().unwrap();
    assert!(message.contains("vigilo token --data"), "start-up says how to mint a token: {message}");
    assert!(
        message.contains(data.canonicalize().unwrap().to_str().unwrap()),
        "start-up says where data lives: {message}"
    );

    let alice = token(&data, "alice");
    let bob = token(&data, "bob");
    let b = &server.base;
    call(b, &alice, reqwest::Method::POST, "/workspaces", json!({"slug": "acme", "name": "Acme"})).await;
    call(
        b,
        &alice,
        reqwest::Method::PUT,
        "/ws/acme/members/bob",
        json!({"email": "bob@example.com", "role": "approver"}),
    )
    .await;
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes", json!({"title": "deploy"})).await;
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes/CHG-00001/submit", json!({})).await;
    call(b, &bob, reqwest::Method::POST, "/ws/acme/changes/CHG-00001/approve", json!({})).await;

    // The chain verifies offline, while the service is still running.
    let ok = vigilo(&["audit", "verify", "--workspace", "acme"], &data);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("intact: 8 rows and"), "{}", stdout(&ok));
    drop(server);

    let db = rusqlite::Connection::open(data.join("vigilo.db")).unwrap();
    // A row rewritten with the same content in other bytes (spaces and new lines, as a
    // hand edit or another tool leaves it) is still intact: it is decoded, not hashed
    // from its text.
    let third = "SELECT data FROM items WHERE pk LIKE '%#AUDIT' AND sk = '00000000000000000003'";
    let stored: String = db.query_row(third, [], |r| r.get(0)).unwrap();
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&stored).unwrap()).unwrap();
    assert_ne!(pretty, stored);
    db.execute(
        "UPDATE items SET data = ?1 WHERE pk LIKE '%#AUDIT' AND sk = '00000000000000000003'",
        rusqlite::params![pretty],
    )
    .unwrap();
    let still = vigilo(&["audit", "verify", "--workspace", "acme"], &data);
    assert_eq!(still.status.code(), Some(0), "{}", stdout(&still));
    assert!(stdout(&still).contains("intact: 8 rows and"), "{}", stdout(&still));

    let row_id: String = db
        .query_row(
            "SELECT json_extract(data, '$.id') FROM items WHERE pk LIKE '%#AUDIT' AND sk = '00000000000000000004'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute("UPDATE items SET data = json_set(data, '$.new_value', json('{\"role\":\"owner\"}')) WHERE pk LIKE '%#AUDIT' AND sk = '00000000000000000004'", [])
        .unwrap();
    let broken = vigilo(&["audit", "verify", "--workspace", "acme"], &data);
    assert_eq!(broken.status.code(), Some(1));
    let text = stdout(&broken);
    assert!(text.contains(&format!("row id: {row_id}")), "{text}");
    assert!(text.contains("seq:    4"), "{text}");
    assert!(text.contains("reason: hash_mismatch"), "{text}");
}

/// `vigilo sweep freeze` takes a change out of a freeze filed over it and prints what
/// it did; a second run has nothing to do; an unknown sweep is refused with the list.
#[tokio::test]
async fn sweep_runs_one_sweep_and_prints_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data);
    let (alice, bob) = (token(&data, "alice"), token(&data, "bob"));
    let b = &server.base;
    call(b, &alice, reqwest::Method::POST, "/workspaces", json!({"slug": "acme", "name": "Acme"})).await;
    let member = json!({"email": "bob@example.com", "role": "approver"});
    call(b, &alice, reqwest::Method::PUT, "/ws/acme/members/bob", member).await;
    let at = |h: i64| vigilo_domain::time::format(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(h));
    let change = json!({"title": "db upgrade", "affected_assets": ["db"], "planned_start": at(72),
                        "planned_end": at(74), "min_lead_time_hours": 1});
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes", change).await;
    for (who, action) in [(&alice, "submit"), (&bob, "approve"), (&alice, "schedule")] {
        call(b, who, reqwest::Method::POST, &format!("/ws/acme/changes/CHG-00001/{action}"), json!({})).await;
    }
    let freeze = json!({"name": "close", "start": at(70), "end": at(80), "scope": {"assets": ["db"]}});
    call(b, &alice, reqwest::Method::POST, "/ws/acme/freeze-windows", freeze).await;

    let out = vigilo(&["sweep", "freeze"], &data);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((report["workspaces"].as_u64(), &report["unscheduled"]), (Some(1), &json!(["CHG-00001"])), "{report}");
    let change = call(b, &alice, reqwest::Method::GET, "/ws/acme/changes/CHG-00001", json!(null)).await;
    assert_eq!(change["status"], "approved");
    let again: Value = serde_json::from_str(&stdout(&vigilo(&["sweep", "freeze"], &data))).unwrap();
    assert_eq!(again["unscheduled"], json!([]));
    let checkpoint: Value = serde_json::from_str(&stdout(&vigilo(&["sweep", "checkpoint"], &data))).unwrap();
    assert_eq!(checkpoint["written"].as_u64(), Some(1), "{checkpoint}");
    // Every sweep of the list runs by name and reports on the workspace.
    for name in ["escalate", "notices", "webhooks", "numbers", "pir", "cab"] {
        let out = vigilo(&["sweep", name], &data);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.is_object(), "{name}: {report}");
    }
    let pir: Value = serde_json::from_str(&stdout(&vigilo(&["sweep", "pir"], &data))).unwrap();
    assert_eq!((pir["workspaces"].as_u64(), &pir["reminded"]), (Some(1), &json!([])), "{pir}");

    let unknown = vigilo(&["sweep", "everything"], &data);
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unknown.stderr).into_owned();
    assert!(err.contains("no sweep named \"everything\"") && err.contains("freeze"), "{err}");
    let nowhere = vigilo(&["sweep", "freeze"], &tmp.path().join("missing"));
    assert_eq!(nowhere.status.code(), Some(2), "a data folder that is not there");
}

/// The bar is drawn on a terminal only: `script` gives the command one.
#[tokio::test]
async fn verify_draws_a_progress_bar_on_a_terminal_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = with_workspace(&tmp).await;
    let command = format!("{BIN} audit verify --progress always --workspace acme --data {}", data.display());
    let tty = Command::new("script").args(["-qec", &command, "/dev/null"]).output().expect("script (util-linux) runs");
    assert_eq!(tty.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&tty.stdout).contains("verifying"), "a bar on a terminal");
    let piped = Command::new(BIN)
        .args(["audit", "verify", "--progress", "always", "--workspace", "acme", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("verifying"), "no bar in a pipe");
    let quiet = command.replace("always", "never");
    let tty = Command::new("script").args(["-qec", &quiet, "/dev/null"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&tty.stdout).contains("verifying"));
}

#[test]
fn verify_refuses_missing_data_and_unknown_workspaces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = vigilo(&["audit", "verify", "--workspace", "acme"], &tmp.path().join("nothing"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Vigilo data"));

    let data = tmp.path().join("data");
    drop(serve(&data));
    let out = vigilo(&["audit", "verify", "--workspace", "ghost"], &data);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workspace ghost"));
}

#[tokio::test]
async fn the_service_keeps_answering_when_its_log_reader_goes_away() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let first: Value = serde_json::from_str(&line).unwrap();
    let server =
        Server { child, base: format!("http://{}", first["fields"]["addr"].as_str().unwrap()), first_line: first };
    for _ in 0..3 {
        let res = reqwest::get(format!("{}/health", server.base)).await.unwrap();
        assert_eq!(res.status(), 200);
    }
}

#[test]
fn bad_arguments_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let out = vigilo(&["token", "--sub", "alice", "--email", "not-an-email"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--email"));
    let out = Command::new(BIN).args(["serve", "--addr", "nowhere"]).arg("--data").arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--addr"));
}

#[test]
fn tokens_are_stable_per_data_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let a = token(tmp.path(), "alice");
    assert_eq!(a.split('.').count(), 3, "a JWT");
    let secret = std::fs::read_to_string(tmp.path().join("token-secret")).unwrap();
    token(tmp.path(), "bob");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("token-secret")).unwrap(),
        secret,
        "minting never rotates the secret"
    );
}

#[tokio::test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
async fn aws_init_creates_the_resources_and_serve_and_verify_run_on_dynamodb() {
    let aws = vigilo_aws::emulator::aws().await;
    let id = format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond() % 1_000_000_000);
    let (table, evidence, archive, topic) = (
        format!("vigilo-cli-{id}"),
        format!("vigilo-evidence-{id}"),
        format!("vigilo-archive-{id}"),
        format!("approvers-{id}"),
    );
    let key = format!("alias/vigilo-audit-{id}");
    let envs = [
        ("VIGILO_TABLE", table.as_str()),
        ("VIGILO_EVIDENCE_BUCKET", evidence.as_str()),
        ("VIGILO_ARCHIVE_BUCKET", archive.as_str()),
        ("VIGILO_AUDIT_KEY_ID", key.as_str()),
    ];
    let init = || Command::new(BIN).args(["aws", "init", "--topic-name", &topic]).envs(envs).output().unwrap();
    let first = init();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let out = stdout(&first);
    for line in [format!("table           created  {table}"), format!("evidence bucket created  {evidence}")] {
        assert!(out.contains(&line), "{out}");
    }
    assert!(out.contains(&format!("archive bucket  created  {archive}")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("topic") && l.ends_with(&format!(":{topic}"))), "{out}");
    let again = stdout(&init());
    assert!(again.contains(&format!("table           exists   {table}")), "{again}");
    assert!(again.contains(&format!("archive bucket  exists   {archive}")), "{again}");
    assert!(out.lines().any(|l| l.starts_with("signing key     created  arn:")), "{out}");
    assert!(again.lines().any(|l| l.starts_with("signing key     exists   arn:")), "{again}");

    let lock = aws.s3().get_object_lock_configuration().bucket(&archive).send().await.unwrap();
    let retention = lock.object_lock_configuration().unwrap().rule().unwrap().default_retention().unwrap();
    assert_eq!(retention.mode().unwrap().as_str(), "COMPLIANCE");
    let ttl = aws.dynamodb().describe_time_to_live().table_name(&table).send().await.unwrap();
    assert_eq!(ttl.time_to_live_description().unwrap().attribute_name(), Some("ttl"));

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve_with(&data, &["--backend", "aws"], &envs);
    assert!(server.first_line["fields"]["data"].as_str().unwrap().contains(&table), "{}", server.first_line);
    let alice = token(&data, "alice");
    call(&server.base, &alice, reqwest::Method::POST, "/workspaces", json!({"slug": "acme", "name": "Acme"})).await;
    drop(server);
    let item = aws
        .dynamodb()
        .get_item()
        .table_name(&table)
        .key("pk", vigilo_aws::attrs::s("SLUG#acme"))
        .key("sk", vigilo_aws::attrs::s("#SLUG"))
        .send()
        .await
        .unwrap();
    assert!(item.item().is_some(), "the workspace was written to DynamoDB");

    let verify = Command::new(BIN)
        .args(["audit", "verify", "--backend", "aws", "--workspace", "acme", "--progress", "never"])
        .envs(envs)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stderr));

    // The sweeps run on DynamoDB too; the checkpoint goes to the archive bucket.
    let sweep = |name: &str| {
        let out = Command::new(BIN)
            .args(["sweep", name, "--backend", "aws"])
            .arg("--data")
            .arg(&data)
            .envs(envs)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()
    };
    assert_eq!(sweep("freeze")["workspaces"].as_u64(), Some(1));
    assert_eq!(sweep("checkpoint")["written"].as_u64(), Some(1));
    for name in ["pir", "cab", "escalate"] {
        assert_eq!(sweep(name)["workspaces"].as_u64(), Some(1), "{name}");
    }
    let stored = aws.s3().list_objects_v2().bucket(&archive).prefix("checkpoints/").send().await.unwrap();
    assert_eq!(stored.contents().len(), 1, "one checkpoint in the archive bucket");
    // Signed by the KMS key: the CLI's verification checks it with the key's public half.
    let verify = Command::new(BIN)
        .args(["audit", "verify", "--backend", "aws", "--workspace", "acme", "--progress", "never"])
        .envs(envs)
        .output()
        .unwrap();
    assert!(stdout(&verify).contains("and 1 signed checkpoints verified"), "{}", stdout(&verify));
    assert_eq!(sweep("archive")["workspaces"].as_u64(), Some(1), "no retention: nothing archived");
}

/// Without `VIGILO_TABLE`, `vigilo aws init` creates the default table and `vigilo serve
/// --backend aws` uses the same one: against an emulator, only the endpoint is needed.
#[test]
#[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
fn the_aws_backend_defaults_to_the_table_aws_init_creates() {
    let init = Command::new(BIN).args(["aws", "init"]).env_remove("VIGILO_TABLE").output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let out = stdout(&init);
    let line = out.lines().find(|l| l.starts_with("table")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with(&format!(" {}", vigilo_aws::DEFAULT_TABLE)), "{line}");
    let tmp = tempfile::tempdir().unwrap();
    let server = serve_with(&tmp.path().join("data"), &["--backend", "aws"], &[("VIGILO_TABLE", "")]);
    let data = server.first_line["fields"]["data"].as_str().unwrap().to_owned();
    assert_eq!(data, format!("DynamoDB table {}", vigilo_aws::DEFAULT_TABLE));
}

/// The conflicts benchmark's phases run end to end on a tiny workspace and print a
/// row per stage with its figures (correctness only: the figures themselves are the
/// benchmark's, measured with `vigilo bench` on a release build).
#[test]
fn the_conflicts_benchmark_runs_every_stage() {
    let out = Command::new(BIN)
        .args(["bench", "--suite", "conflicts", "--changes", "40", "--assets", "8"])
        .output()
        .expect("run vigilo bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let probes: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("probe assets"))
        .map(|l| l.split("mean").nth(1).unwrap().split(',').next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(probes.len(), 4, "{text}");
    assert!(probes.iter().all(|m| *m > 0.0), "every probe check read the window entries it compares: {probes:?}");
    assert!(text.contains("seeded 40 changes"), "{text}");
}

/// The planning benchmark prints every figure, and the items its reads count are the
/// workspace's: all of it for the calendar, the range alone for DORA (correctness only).
#[test]
fn the_planning_benchmark_reads_what_each_figure_needs() {
    let out = Command::new(BIN).args(["bench", "--suite", "planning", "--changes", "100"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    for rule in ["one-off window", "daily", "weekly", "monthly"] {
        assert!(text.lines().any(|l| l.contains(rule) && l.contains("µs per check")), "{rule}: {text}");
    }
    let last = text.lines().find(|l| l.trim_start().starts_with("100 ")).unwrap_or_else(|| panic!("{text}"));
    let items: Vec<u64> = last.split("items").filter_map(|p| p.split_whitespace().last()?.parse().ok()).collect();
    // Each read starts with the workspace and the caller's membership; then 30 days of
    // a year's spread of 100 changes: 9; one day: 1; the calendar: all 100 scheduled
    // changes and the freeze epoch.
    assert_eq!(items, [2 + 9, 2 + 1, 2 + 100 + 1], "{last}");
}

/// The lifecycle benchmark walks every phase on a tiny workspace, gates and all, and
/// prints a figure for each, ending with an intact chain (correctness only).
#[test]
fn the_lifecycle_benchmark_runs_every_phase() {
    let out = Command::new(BIN).args(["bench", "--changes", "10"]).output().expect("run vigilo bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    for phase in ["create change ", "8 racing writers", "lifecycle, 5 transitions", "status index", "asset entries"] {
        assert!(text.lines().any(|l| l.contains(phase) && l.contains("ops/s")), "{phase}: {text}");
    }
    assert!(text.contains("intact: true") && text.contains("\"changes\":20"), "{text}");
}

/// Replies with `vigilo mail receive`: a refused reply (a rejection without its reason,
/// a message with a second `From`, a question) exits 1 and is audited; a reply from the
/// approver decides (exit 0); the same reply again is refused as a used link (exit 1).
#[tokio::test]
async fn mail_receive_decides_from_a_reply_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data);
    let alice = token(&data, "alice");
    let b = &server.base;
    call(b, &alice, reqwest::Method::POST, "/workspaces", json!({"slug": "acme", "name": "Acme"})).await;
    let bob = json!({"email": "bob@example.com", "role": "approver"});
    call(b, &alice, reqwest::Method::PUT, "/ws/acme/members/bob", bob).await;
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes", json!({"title": "deploy"})).await;
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes/CHG-00001/submit", json!({})).await;
    let mail = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .find(|t| t.contains("To: bob@example.com"))
        .expect("bob's notice in outbox/");
    let reply_to = mail.lines().find(|l| l.starts_with("Reply-To:")).unwrap().trim_start_matches("Reply-To:").trim();
    let message = |from: &str, body: &str| {
        format!(
            "{from}To: {reply_to}\r\nSubject: Re: approval\r\nAuthentication-Results: mx.example.com; spf=pass; \
             dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n\r\n{body}\r\n"
        )
    };
    let reply = message("From: bob@example.com\r\n", "approve\r\nship it");
    let receive = |text: &str| {
        let mut child = Command::new(BIN)
            .args(["mail", "receive", "--data"])
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    for (text, reason) in [
        (message("From: bob@example.com\r\n", "reject"), "comment_required"),
        (message("From: bob@example.com\r\n", "approved?"), "no_decision"),
        (message("From: mallory@example.com\r\nFrom: bob@example.com\r\n", "approve"), "wrong_sender"),
    ] {
        let refused = receive(&text);
        assert_eq!(refused.status.code(), Some(1), "{reason}: {}", stdout(&refused));
        assert_eq!(stdout(&refused).trim(), json!({"refused": reason}).to_string());
    }
    let audit = call(b, &alice, reqwest::Method::GET, "/ws/acme/audit?action=decision_link.refuse", json!(null)).await;
    let reasons: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|r| r["metadata"]["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 3, "each refused reply is audited: {audit}");
    for reason in ["comment_required", "no_decision", "wrong_sender"] {
        assert!(reasons.contains(&reason), "{reason}: {reasons:?}");
    }
    let first = receive(&reply);
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
    let out: Value = serde_json::from_str(stdout(&first).trim()).unwrap();
    assert_eq!(out, json!({"decided": "approve", "change": "CHG-00001", "status": "approved"}));
    let again = receive(&reply);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(stdout(&again).trim(), r#"{"refused":"used"}"#);
    drop(server);
}

/// Release builds (`vigilo serve` and every Lambda bootstrap) unwind on panic, so the
/// panic guard can answer 500 for one request instead of the process dying with it.
#[test]
fn release_builds_unwind_on_panic() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
    let release = manifest.split("[profile.release]").nth(1).expect("a release profile");
    let section = release.split("\n[").next().unwrap_or_default();
    let panic = section
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("panic"))
        .and_then(|l| l.split('=').nth(1))
        .map(|v| v.trim().trim_matches('"').to_owned());
    assert_eq!(panic.as_deref(), Some("unwind"), "{section}");
}

/// The limits suite runs every oversized request through the router and each is
/// refused with 422 (the suite fails otherwise); the figures are for a release build.
#[test]
fn the_limits_benchmark_refuses_every_oversized_request() {
    let out = Command::new(BIN).args(["bench", "--suite", "limits"]).output().expect("run vigilo bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.contains(" 422 ")).count(), 5, "{text}");
}

fn offline(dir: &Path, key: Option<&Path>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify", "--offline"]).arg(dir);
    if let Some(k) = key {
        cmd.arg("--key").arg(k);
    }
    cmd.output().expect("run vigilo")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// Edits a copy of the export with `tamper` and expects the offline verification to
/// exit `code`, naming `reason`.
fn tampered(export: &Path, key: &Path, name: &str, code: i32, reason: &str, tamper: impl FnOnce(&Path)) {
    let copy = export.parent().unwrap().join(name);
    copy_dir(export, &copy);
    tamper(&copy);
    let out = offline(&copy, Some(key));
    assert_eq!(out.status.code(), Some(code), "{name}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    if !reason.is_empty() {
        assert!(stdout(&out).contains(&format!("reason: {reason}")), "{name}: {}", stdout(&out));
    }
}

fn edit_line(path: &Path, index: usize, edit: impl FnOnce(&mut Value)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut row: Value = serde_json::from_str(&lines[index]).unwrap();
    edit(&mut row);
    lines[index] = row.to_string();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// The auditor's walk: checkpoints signed, old rows archived, an export written, and
/// the folder verified offline with the public key alone; then every tamper named.
#[tokio::test]
async fn an_export_verifies_offline_and_every_tamper_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data);
    let (alice, bob) = (token(&data, "alice"), token(&data, "bob"));
    let b = &server.base;
    call(b, &alice, reqwest::Method::POST, "/workspaces", json!({"slug": "acme", "name": "Acme"})).await;
    let member = json!({"email": "bob@example.com", "role": "approver"});
    call(b, &alice, reqwest::Method::PUT, "/ws/acme/members/bob", member).await;
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes", json!({"title": "one"})).await;
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes/CHG-00001/submit", json!({})).await;
    call(b, &bob, reqwest::Method::POST, "/ws/acme/changes/CHG-00001/approve", json!({})).await;
    // Everything so far is archived; then more rows stay live.
    let now = vigilo_domain::time::format(jiff::Timestamp::now() + jiff::SignedDuration::from_millis(5));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let archived = vigilo(&["audit", "archive", "--workspace", "acme", "--before", &now], &data);
    assert_eq!(archived.status.code(), Some(0), "{}{}", stdout(&archived), String::from_utf8_lossy(&archived.stderr));
    let summary: Value = serde_json::from_slice(&archived.stdout).unwrap();
    assert_eq!((summary["segments"].as_u64(), summary["rows"].as_u64()), (Some(1), Some(8)), "{summary}");
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes", json!({"title": "two"})).await;
    call(b, &alice, reqwest::Method::POST, "/ws/acme/changes/CHG-00002/submit", json!({})).await;
    let listed = call(b, &alice, reqwest::Method::GET, "/ws/acme/audit", json!({})).await;
    assert_eq!(listed["archived_through"].as_u64(), Some(8), "{listed}");
    drop(server);
    let swept = vigilo(&["sweep", "checkpoint"], &data);
    assert_eq!(swept.status.code(), Some(0), "{}", stdout(&swept));
    let online = vigilo(&["audit", "verify", "--workspace", "acme"], &data);
    assert_eq!(online.status.code(), Some(0), "{}", stdout(&online));

    let key_out = vigilo(&["audit", "key"], &data);
    let key = tmp.path().join("audit-key.pem");
    std::fs::write(&key, &key_out.stdout).unwrap();
    assert!(stdout(&key_out).starts_with("-----BEGIN PUBLIC KEY-----"));
    let export = tmp.path().join("export");
    let out = Command::new(BIN)
        .args(["audit", "export", "--workspace", "acme", "--out"])
        .arg(&export)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let segment = std::fs::read_dir(export.join("segments")).unwrap().next().unwrap().unwrap().path();
    assert!(std::fs::read_to_string(export.join("public-key.pem")).unwrap().contains("PUBLIC KEY"));

    let ok = offline(&export, Some(&key));
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), String::from_utf8_lossy(&ok.stderr));
    assert!(stdout(&ok).contains("intact: "), "{}", stdout(&ok));
    let own = offline(&export, None);
    assert_eq!(own.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&own.stderr).contains("warning"), "the folder's own key is warned of");

    let seg_name = segment.file_name().unwrap().to_owned();
    tampered(&export, &key, "edited", 1, "hash_mismatch", |d| {
        edit_line(&d.join("live.jsonl"), 0, |r| r["actor"] = json!("mallory"))
    });
    tampered(&export, &key, "edited-archive", 1, "segment_altered", |d| {
        edit_line(&d.join("segments").join(&seg_name), 2, |r| r["target_id"] = json!("x"))
    });
    tampered(&export, &key, "lost-segment", 1, "segment_missing", |d| {
        std::fs::remove_file(d.join("segments").join(&seg_name)).unwrap()
    });
    tampered(&export, &key, "reordered", 1, "seq_gap", |d| {
        let p = d.join("live.jsonl");
        let mut lines: Vec<String> = std::fs::read_to_string(&p).unwrap().lines().map(str::to_owned).collect();
        lines.swap(0, 1);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    });
    tampered(&export, &key, "cut-tail", 1, "tail_truncated", |d| {
        let p = d.join("live.jsonl");
        let mut lines: Vec<String> = std::fs::read_to_string(&p).unwrap().lines().map(str::to_owned).collect();
        lines.pop();
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    });
    tampered(&export, &key, "forged-note", 1, "checkpoint_forged", |d| {
        let note = std::fs::read_dir(d.join("checkpoints")).unwrap().next().unwrap().unwrap().path();
        let text = std::fs::read_to_string(&note).unwrap();
        let (body, sig) = text.split_once("\n\n").unwrap();
        let mut lines: Vec<&str> = body.lines().collect();
        let size: u64 = lines[1].parse().unwrap();
        let bigger = (size + 3).to_string();
        lines[1] = &bigger;
        std::fs::write(&note, format!("{}\n\n{sig}", lines.join("\n"))).unwrap();
    });
    tampered(&export, &key, "unsigned-note", 1, "checkpoint_unsigned", |d| {
        let note = std::fs::read_dir(d.join("checkpoints")).unwrap().next().unwrap().unwrap().path();
        let text = std::fs::read_to_string(&note).unwrap();
        std::fs::write(&note, format!("{}\n\n", text.split_once("\n\n").unwrap().0)).unwrap();
    });
    // Another key: every signature fails.
    let other = tmp.path().join("other.pem");
    std::fs::write(
        &other,
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\nq9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let wrong = offline(&export, Some(&other));
    assert_eq!(wrong.status.code(), Some(1), "{}", stdout(&wrong));
    assert!(stdout(&wrong).contains("reason: checkpoint_forged"), "{}", stdout(&wrong));
    // Unusable input: exit 2.
    assert_eq!(offline(&tmp.path().join("nowhere"), Some(&key)).status.code(), Some(2));
    assert_eq!(offline(&export, Some(&tmp.path().join("nokey.pem"))).status.code(), Some(2));
    std::fs::write(tmp.path().join("bad.pem"), "not a key").unwrap();
    assert_eq!(offline(&export, Some(&tmp.path().join("bad.pem"))).status.code(), Some(2));
}

/// A rotated key: checkpoints the old key signed still verify (the data folder keeps
/// its public half, the export carries it), new ones are signed by the new key, and
/// without the old key the old notes are named forged.
#[tokio::test]
async fn a_rotated_signing_key_keeps_old_checkpoints_verifiable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = with_workspace(&tmp).await;
    let run = |args: &[&str]| {
        let out = vigilo(args, &data);
        (out.status.code(), stdout(&out), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, out, err) = run(&["sweep", "checkpoint"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let old_key = tmp.path().join("old.pem");
    std::fs::write(&old_key, run(&["audit", "key"]).1).unwrap();
    let (code, out, err) = run(&["audit", "rotate-key"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("is retired"), "{out}");
    let new_key = tmp.path().join("new.pem");
    std::fs::write(&new_key, run(&["audit", "key"]).1).unwrap();
    assert_ne!(std::fs::read(&old_key).unwrap(), std::fs::read(&new_key).unwrap());
    // The sweep accepts the old key's note and signs anew with the new key (in another
    // second: a workspace has one checkpoint of a size a second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, out, _) = run(&["sweep", "checkpoint"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["written"].as_u64(), Some(1), "{out}");
    let (code, out, _) = run(&["audit", "verify", "--workspace", "acme"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("and 2 signed checkpoints"), "{out}");

    let export = tmp.path().join("export");
    let out = Command::new(BIN)
        .args(["audit", "export", "--workspace", "acme", "--out"])
        .arg(&export)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(offline(&export, None).status.code(), Some(0), "the folder carries the retired key");
    let only_new = offline(&export, Some(&new_key));
    assert_eq!(only_new.status.code(), Some(1));
    assert!(stdout(&only_new).contains("reason: checkpoint_forged"), "{}", stdout(&only_new));
    let both = Command::new(BIN)
        .args(["audit", "verify", "--offline"])
        .arg(&export)
        .arg("--key")
        .arg(&new_key)
        .arg("--key")
        .arg(&old_key)
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(0), "{}", stdout(&both));

    // The old key's public half lost: its notes can no longer be told from forgeries.
    std::fs::remove_dir_all(data.join("audit-keys-retired")).unwrap();
    let (code, out, _) = run(&["audit", "verify", "--workspace", "acme"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("reason: checkpoint_forged"), "{out}");
}
