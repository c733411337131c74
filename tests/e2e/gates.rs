//! The gates that refuse to advance a change: freeze windows, conflicts, dependencies
//! and runbook tasks, with their overrides and acceptances found in the audit log.

use std::sync::OnceLock;

use serde_json::Value;
use vigilo_e2e::{actor, json, normal_change, TestServer};

/// A time `hours` from one instant fixed for the whole run, so that windows meant to
/// touch do touch exactly.
fn in_hours(hours: i64) -> String {
    static BASE: OnceLock<jiff::Timestamp> = OnceLock::new();
    let base = *BASE.get_or_init(|| jiff::Timestamp::now().round(jiff::Unit::Second).unwrap());
    vigilo_domain::time::format(base + jiff::SignedDuration::from_hours(hours))
}

fn instant(v: &Value) -> jiff::Timestamp {
    v.as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("not an instant: {v}"))
}

async fn team() -> TestServer {
    let s = TestServer::start().await;
    s.workspace("olga", "acme", &[("alice", "admin"), ("bob", "approver"), ("mia", "member"), ("vic", "viewer")]).await;
    s
}

/// A change by mia on `asset`, `from`..`to` hours from now.
fn change_on(title: &str, asset: &str, from: i64, to: i64) -> Value {
    let mut b = normal_change(title);
    b["affected_assets"] = json!([asset]);
    b["planned_start"] = json!(in_hours(from));
    b["planned_end"] = json!(in_hours(to));
    b
}

async fn approved(s: &TestServer, body: Value) -> String {
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    n
}

async fn audit_rows(s: &TestServer, action: &str) -> Vec<Value> {
    let page = s.get("olga", &format!("/ws/acme/audit?action={action}")).await.expect(200);
    page["items"].as_array().unwrap().clone()
}

fn freeze(name: &str, from: i64, to: i64, scope: Value, allow_override: bool) -> Value {
    json!({"name": name, "start": in_hours(from), "end": in_hours(to), "scope": scope, "allow_override": allow_override})
}

#[tokio::test]
async fn freeze_windows_are_admin_business_and_validated() {
    let s = team().await;
    let w = freeze("year end", 1, 2, json!({"all": true}), false);
    s.post("mia", "/ws/acme/freeze-windows", w.clone()).await.refused(403, "forbidden");
    s.post("outsider", "/ws/acme/freeze-windows", w.clone()).await.refused(404, "not_found");
    let r = s.post("alice", "/ws/acme/freeze-windows", json!({"name": "", "start": "soon", "scope": {}})).await;
    r.refused(422, "validation_failed");
    for f in ["name", "start", "end", "scope"] {
        assert!(r.body["error"]["details"]["fields"][f].is_string(), "{f}: {}", r.body);
    }
    let bad = json!({"name": "x", "start": in_hours(2), "end": in_hours(1), "scope": {"change_types": ["odd"]}});
    let r = s.post("alice", "/ws/acme/freeze-windows", bad).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["scope.change_types"].is_string());
    s.post("alice", "/ws/acme/freeze-windows", json!({"name": 5})).await.refused(400, "bad_request");
    let made = s.post("alice", "/ws/acme/freeze-windows", w).await.expect(201);
    let list = s.get("vic", "/ws/acme/freeze-windows").await.expect(200);
    assert_eq!(list["items"][0]["id"], made["id"]);
    let id = made["id"].as_str().unwrap();
    s.delete("mia", &format!("/ws/acme/freeze-windows/{id}")).await.refused(403, "forbidden");
    assert_eq!(s.delete("alice", &format!("/ws/acme/freeze-windows/{id}")).await.status, 204);
    s.delete("alice", &format!("/ws/acme/freeze-windows/{id}")).await.refused(404, "not_found");
    assert!(s.get("vic", "/ws/acme/freeze-windows").await.expect(200)["items"].as_array().unwrap().is_empty());
    assert_eq!(audit_rows(&s, "freeze_window.create").await.len(), 1);
    assert_eq!(audit_rows(&s, "freeze_window.delete").await.len(), 1);
}

#[tokio::test]
async fn wall_clock_windows_follow_the_workspace_time_zone() {
    let s = team().await;
    s.patch("olga", "/ws/acme", json!({"timezone": "Europe/Berlin"})).await.expect(200);
    let w = json!({"name": "Christmas", "start": "2026-12-24T18:00", "end": "2026-12-26", "scope": {"all": true}});
    let made = s.post("alice", "/ws/acme/freeze-windows", w).await.expect(201);
    assert_eq!(
        (&made["start"], &made["end"], &made["timezone"]),
        (&json!("2026-12-24T17:00:00Z"), &json!("2026-12-26T23:00:00Z"), &json!("Europe/Berlin"))
    );
    assert_eq!(
        (&made["local_start"], &made["local_end"]),
        (&json!("2026-12-24T18:00:00"), &json!("2026-12-27T00:00:00"))
    );
}

#[tokio::test]
async fn a_freeze_blocks_submit_schedule_and_start_in_scope_only() {
    let s = team().await;
    let w = freeze("db freeze", 70, 80, json!({"assets": ["db"]}), false);
    let made = s.post("alice", "/ws/acme/freeze-windows", w).await.expect(201);
    // Submit: the planned window meets the freeze.
    let n = s.change("mia", "acme", change_on("db work", "db", 72, 73)).await;
    let r = s.act("mia", "acme", &n, "submit", json!({})).await;
    r.refused(409, "freeze_window_blocked");
    assert_eq!(r.body["error"]["details"]["windows"][0]["id"], made["id"]);
    assert_eq!(r.body["error"]["details"]["windows"][0]["name"], "db freeze");
    // Out of scope: another asset, or a window that only touches the freeze's start.
    approved(&s, change_on("web work", "web", 72, 73)).await;
    approved(&s, change_on("db before", "db", 69, 70)).await;
    // Schedule: approved before the freeze was filed.
    let late = approved(&s, change_on("db late", "db-replica", 72, 73)).await;
    let w2 = freeze("replica freeze", 71, 74, json!({"assets": ["db-replica"], "change_types": ["normal"]}), true);
    s.post("alice", "/ws/acme/freeze-windows", w2).await.expect(201);
    s.act("mia", "acme", &late, "schedule", json!({})).await.refused(409, "freeze_window_blocked");
    // Start: a freeze filed over "now" holds a scheduled change.
    let sched = approved(&s, change_on("cache work", "cache", 72, 73)).await;
    s.act("mia", "acme", &sched, "schedule", json!({})).await.expect(200);
    let now = freeze("incident freeze", -1, 2, json!({"all": true}), false);
    s.post("alice", "/ws/acme/freeze-windows", now).await.expect(201);
    s.act("mia", "acme", &sched, "start", json!({})).await.refused(409, "freeze_window_blocked");
    let c = s.get("mia", &format!("/ws/acme/changes/{sched}")).await.expect(200);
    assert_eq!(c["status"], "scheduled", "a refused move changes nothing");
}

#[tokio::test]
async fn overrides_need_the_right_role_a_reason_and_are_audited() {
    let s = team().await;
    let strict =
        s.post("alice", "/ws/acme/freeze-windows", freeze("strict", 70, 80, json!({"all": true}), false)).await;
    let strict = strict.expect(201);
    let n = s.change("mia", "acme", change_on("urgent", "db", 72, 73)).await;
    let over = json!({"override_freeze": true, "reason": "security patch"});
    s.act("mia", "acme", &n, "submit", over.clone()).await.refused(403, "forbidden");
    s.act("alice", "acme", &n, "submit", over.clone()).await.refused(403, "forbidden");
    let r = s.act("olga", "acme", &n, "submit", json!({"override_freeze": true})).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["reason"].is_string());
    assert!(audit_rows(&s, "change.freeze_override").await.is_empty(), "a refused override writes nothing");
    assert_eq!(s.act("olga", "acme", &n, "submit", over.clone()).await.expect(200)["status"], "review");
    let rows = audit_rows(&s, "change.freeze_override").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["metadata"]["reason"], "security patch");
    assert_eq!(rows[0]["metadata"]["action"], "submit");
    assert_eq!(rows[0]["metadata"]["windows"][0]["id"], strict["id"]);
    assert_eq!(rows[0]["actor"], "olga");
    // An admin may override a window that allows it, and only then.
    let id = strict["id"].as_str().unwrap();
    s.delete("alice", &format!("/ws/acme/freeze-windows/{id}")).await;
    s.post("alice", "/ws/acme/freeze-windows", freeze("soft", 70, 80, json!({"all": true}), true)).await.expect(201);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "schedule", json!({})).await.refused(409, "freeze_window_blocked");
    s.act("mia", "acme", &n, "schedule", over.clone()).await.refused(403, "forbidden");
    assert_eq!(s.act("alice", "acme", &n, "schedule", over).await.expect(200)["status"], "scheduled");
    let rows = audit_rows(&s, "change.freeze_override").await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["actor"].as_str(), rows[0]["metadata"]["action"].as_str()), (Some("alice"), Some("schedule")));
    assert_eq!(s.verify("olga", "acme").await["ok"], true);
}

#[tokio::test]
async fn conflicts_are_flagged_on_both_changes_and_gate_schedule() {
    let s = team().await;
    let a = approved(&s, change_on("upgrade db", "db", 72, 74)).await;
    let mut body = change_on("reindex db", "db", 73, 75);
    body["affected_assets"] = json!(["db", "search"]);
    let b = approved(&s, body).await;
    // Touching windows are no conflict.
    approved(&s, change_on("after", "db", 75, 76)).await;
    let ca = s.get("vic", &format!("/ws/acme/changes/{a}")).await.expect(200);
    let cb = s.get("vic", &format!("/ws/acme/changes/{b}")).await.expect(200);
    assert_eq!(ca["conflicts"][0]["number"], b.as_str());
    assert_eq!(ca["conflicts"][0]["shared_assets"], json!(["db"]));
    assert_eq!(ca["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(cb["conflicts"][0]["number"], a.as_str());
    let listed = s.get("vic", &format!("/ws/acme/changes/{a}/conflicts")).await.expect(200);
    assert_eq!(listed["items"][0]["accepted"], false);
    let r = s.act("mia", "acme", &a, "schedule", json!({})).await;
    r.refused(409, "conflict_detected");
    assert_eq!(r.body["error"]["details"]["conflicts"][0]["number"], b.as_str());
    assert!(r.body["error"]["details"]["conflicts"][0]["window"]["start"].is_string());
    // Accepting takes a comment and the right person.
    let accept = format!("/ws/acme/changes/{a}/conflicts/{b}/accept");
    s.post("mia", &accept, json!({})).await.refused(422, "validation_failed");
    s.post("vic", &accept, json!({"comment": "fine"})).await.refused(403, "forbidden");
    s.post("mia", &format!("/ws/acme/changes/{a}/conflicts/CHG-00099/accept"), json!({"comment": "x"}))
        .await
        .refused(404, "not_found");
    let acc = s.post("mia", &accept, json!({"comment": "different tables, agreed with DBA"})).await.expect(200);
    assert_eq!((acc["accepted"].as_bool(), acc["accepted_by"].as_str()), (Some(true), Some("mia")));
    let cb = s.get("vic", &format!("/ws/acme/changes/{b}")).await.expect(200);
    assert_eq!(cb["conflicts"][0]["accepted"], true, "accepted on both records");
    let rows = audit_rows(&s, "change.conflict_accept").await;
    assert_eq!(rows[0]["metadata"]["comment"], "different tables, agreed with DBA");
    assert_eq!(rows[0]["metadata"]["other"], b.as_str());
    assert_eq!(s.act("mia", "acme", &a, "schedule", json!({})).await.expect(200)["status"], "scheduled");
    assert_eq!(s.act("mia", "acme", &b, "schedule", json!({})).await.expect(200)["status"], "scheduled");
}

#[tokio::test]
async fn a_conflict_is_gone_when_the_other_change_ends_or_moves() {
    let s = team().await;
    let a = approved(&s, change_on("one", "db", 72, 74)).await;
    let b = s.change("mia", "acme", change_on("two", "db", 73, 75)).await;
    s.act("mia", "acme", &a, "schedule", json!({})).await.refused(409, "conflict_detected");
    // Moving the draft away removes the conflict; moving it back brings it again.
    s.patch(
        "mia",
        &format!("/ws/acme/changes/{b}"),
        json!({"planned_start": in_hours(80), "planned_end": in_hours(81)}),
    )
    .await
    .expect(200);
    let c = s.get("mia", &format!("/ws/acme/changes/{a}")).await.expect(200);
    assert_eq!(c["conflicts"], json!([]));
    let patched = s.patch("mia", &format!("/ws/acme/changes/{b}"), change_on("two", "db", 73, 75)).await.expect(200);
    assert_eq!(patched["conflicts"][0]["number"], a.as_str());
    s.act("mia", "acme", &b, "cancel", json!({})).await.expect(200);
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{a}/conflicts")).await.expect(200)["items"], json!([]));
    s.act("mia", "acme", &a, "schedule", json!({})).await.expect(200);
}

#[tokio::test]
async fn an_acceptance_lapses_when_a_window_moves() {
    let s = team().await;
    let a = approved(&s, change_on("one", "db", 72, 74)).await;
    let b = s.change("mia", "acme", change_on("two", "db", 73, 75)).await;
    let accept = format!("/ws/acme/changes/{a}/conflicts/{b}/accept");
    s.post("mia", &accept, json!({"comment": "ok"})).await.expect(200);
    s.patch("mia", &format!("/ws/acme/changes/{b}"), json!({"planned_end": in_hours(76)})).await.expect(200);
    let c = s.get("mia", &format!("/ws/acme/changes/{a}")).await.expect(200);
    assert_eq!(c["conflicts"][0]["accepted"], false, "accepted for other windows");
    s.act("mia", "acme", &a, "schedule", json!({})).await.refused(409, "conflict_detected");
}

#[tokio::test]
async fn a_window_not_yet_filed_can_be_checked() {
    let s = team().await;
    let a = s.change("mia", "acme", change_on("one", "db", 72, 74)).await;
    let q = |assets: &str, from: i64, to: i64| {
        let (f, t) = (in_hours(from).replace(':', "%3A"), in_hours(to).replace(':', "%3A"));
        format!("/ws/acme/conflicts?assets={assets}&start={f}&end={t}")
    };
    let hit = s.get("vic", &q("web,db", 73, 80)).await.expect(200);
    assert_eq!(hit["items"][0]["number"], a.as_str());
    assert!(s.get("vic", &q("web", 73, 80)).await.expect(200)["items"].as_array().unwrap().is_empty());
    assert!(s.get("vic", &q("db", 74, 80)).await.expect(200)["items"].as_array().unwrap().is_empty());
    s.get("vic", "/ws/acme/conflicts?assets=db").await.refused(400, "bad_request");
    s.get("vic", &q("", 73, 80)).await.refused(400, "bad_request");
    s.get("vic", &q("db", 80, 73)).await.refused(400, "bad_request");
}

#[tokio::test]
async fn dependency_cycles_are_refused_when_filed() {
    let s = team().await;
    let a = s.change("mia", "acme", json!({"title": "a"})).await;
    let b = s.change("mia", "acme", json!({"title": "b", "dependencies": [a]})).await;
    let c = s.change("mia", "acme", json!({"title": "c", "dependencies": [b]})).await;
    let r = s.patch("mia", &format!("/ws/acme/changes/{a}"), json!({"dependencies": [c]})).await;
    r.refused(422, "validation_failed");
    let reason = r.body["error"]["details"]["fields"]["dependencies"].as_str().unwrap().to_owned();
    assert!(reason.contains("cycle") && reason.contains(&c) && reason.contains(&b), "{reason}");
    let r = s.patch("mia", &format!("/ws/acme/changes/{a}"), json!({"dependencies": [a]})).await;
    r.refused(422, "validation_failed");
    s.patch("mia", &format!("/ws/acme/changes/{c}"), json!({"dependencies": [a, b]})).await.expect(200);
}

#[tokio::test]
async fn tasks_run_through_their_own_lifecycle_and_predecessors() {
    let s = team().await;
    let n = approved(&s, change_on("patch", "db", 72, 73)).await;
    let tasks = format!("/ws/acme/changes/{n}/tasks");
    s.post("vic", &tasks, json!({"title": "x"})).await.refused(403, "forbidden");
    let r = s.post("mia", &tasks, json!({"title": "", "gate": "later", "predecessors": ["T999"]})).await;
    r.refused(422, "validation_failed");
    for f in ["title", "gate", "predecessors"] {
        assert!(r.body["error"]["details"]["fields"][f].is_string(), "{f}");
    }
    let t1 = s.post("mia", &tasks, json!({"title": "drain"})).await.expect(201);
    assert_eq!(
        (t1["id"].as_str(), t1["status"].as_str(), t1["is_required"].as_bool()),
        (Some("T001"), Some("todo"), Some(true))
    );
    let t2 = s.post("mia", &tasks, json!({"title": "patch", "predecessors": ["T001"]})).await.expect(201);
    let t3 = s.post("mia", &tasks, json!({"title": "notes", "is_required": false})).await.expect(201);
    let run = |id: &Value, action: &str| format!("{tasks}/{}/{action}", id.as_str().unwrap());
    let r = s.post("mia", &run(&t2["id"], "start"), json!({})).await;
    r.refused(409, "predecessors_unmet");
    assert_eq!(r.body["error"]["details"]["predecessors"][0]["id"], "T001");
    s.post("mia", &run(&t1["id"], "skip"), json!({})).await.refused(409, "task_required");
    let r = s.post("mia", &run(&t1["id"], "done"), json!({})).await;
    r.refused(409, "invalid_transition");
    assert_eq!(r.body["error"]["details"]["allowed"], json!(["start", "skip"]));
    s.post("vic", &run(&t1["id"], "start"), json!({})).await.refused(403, "forbidden");
    s.post("mia", &run(&t1["id"], "fly"), json!({})).await.refused(404, "not_found");
    s.post("mia", &format!("{tasks}/T404/start"), json!({})).await.refused(404, "not_found");
    assert_eq!(s.post("mia", &run(&t1["id"], "start"), json!({})).await.expect(200)["status"], "in_progress");
    assert_eq!(s.post("mia", &run(&t1["id"], "done"), json!({})).await.expect(200)["status"], "done");
    assert_eq!(s.post("mia", &run(&t2["id"], "start"), json!({})).await.expect(200)["status"], "in_progress");
    assert_eq!(s.post("mia", &run(&t3["id"], "skip"), json!({})).await.expect(200)["status"], "skipped");
    let list = s.get("vic", &tasks).await.expect(200);
    let states: Vec<&str> = list["items"].as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["done", "in_progress", "skipped"]);
    assert_eq!(audit_rows(&s, "task.start").await.len(), 2);
    assert_eq!(kept_tasks(&s, &n).await, list["items"], "the copy the gates read is the tasks as stored");
}

/// The tasks a change's tasks epoch keeps, which the gates and the task writes read.
async fn kept_tasks(s: &TestServer, n: &str) -> Value {
    let ws = s.get("olga", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    let key = vigilo_app::keys::tasks_epoch(&ws, vigilo_e2e::number(n));
    s.table().get(&key).await.unwrap().expect("a tasks epoch").data["tasks"].clone()
}

#[tokio::test]
async fn a_change_filed_before_its_tasks_were_kept_is_gated_by_its_tasks_query() {
    let s = team().await;
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    s.post("mia", &format!("/ws/acme/changes/{n}/tasks"), json!({"title": "backup", "gate": "start"}))
        .await
        .expect(201);
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    // As an epoch written before the copy was kept: a stamp alone.
    let ws = s.get("olga", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    let key = vigilo_app::keys::tasks_epoch(&ws, vigilo_e2e::number(&n));
    let old = vigilo_app::store::Item::new(key, json!({"stamp": "old"}));
    s.table().transact(vec![vigilo_app::store::WriteOp::Put { item: old, condition: None }]).await.unwrap();
    let r = s.act("mia", "acme", &n, "start", json!({})).await;
    r.refused(409, "tasks_pending");
    s.post("mia", &format!("/ws/acme/changes/{n}/tasks/T001/start"), json!({})).await.expect(200);
    s.post("mia", &format!("/ws/acme/changes/{n}/tasks/T001/done"), json!({})).await.expect(200);
    s.act("mia", "acme", &n, "start", json!({})).await.expect(200);
    assert_eq!(kept_tasks(&s, &n).await, Value::Null, "an epoch without the copy stays without it");
}

#[tokio::test]
async fn start_and_complete_wait_for_their_gates() {
    let s = team().await;
    let n = approved(&s, change_on("patch", "db", 72, 73)).await;
    let tasks = format!("/ws/acme/changes/{n}/tasks");
    s.post("mia", &tasks, json!({"title": "backup", "gate": "start"})).await.expect(201);
    s.post("mia", &tasks, json!({"title": "verify", "gate": "complete"})).await.expect(201);
    s.post("mia", &tasks, json!({"title": "tidy", "is_required": false})).await.expect(201);
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    let r = s.act("mia", "acme", &n, "start", json!({})).await;
    r.refused(409, "tasks_pending");
    assert_eq!(r.body["error"]["details"]["gate"], "start");
    assert_eq!(
        r.body["error"]["details"]["tasks"],
        json!([{"id": "T001", "title": "backup", "status": "todo", "gate": "start", "is_required": true}])
    );
    s.post("mia", &format!("{tasks}/T001/start"), json!({})).await.expect(200);
    s.post("mia", &format!("{tasks}/T001/done"), json!({})).await.expect(200);
    s.act("mia", "acme", &n, "start", json!({})).await.expect(200);
    let done = json!({"closure_code": "successful", "closure_notes": "ok"});
    let r = s.act("mia", "acme", &n, "complete", done.clone()).await;
    r.refused(409, "tasks_pending");
    let pending: Vec<&str> =
        r.body["error"]["details"]["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(pending, ["T002"], "optional tasks do not hold completion");
    s.post("mia", &format!("{tasks}/T002/start"), json!({})).await.expect(200);
    s.post("mia", &format!("{tasks}/T002/done"), json!({})).await.expect(200);
    assert_eq!(s.act("mia", "acme", &n, "complete", done).await.expect(200)["status"], "completed");
}

#[tokio::test]
async fn tasks_come_from_the_implementation_plan_once() {
    let s = team().await;
    let mut body = change_on("kernel", "node-1", 72, 73);
    body["implementation_plan"] = json!("Steps:\n1. Drain node\n2. Patch kernel\n3. Reboot\n\n4. Undrain");
    let n = s.change("mia", "acme", body).await;
    let made = s.post("mia", &format!("/ws/acme/changes/{n}/tasks/generate"), json!({})).await.expect(201);
    let titles: Vec<&str> = made["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Drain node", "Patch kernel", "Reboot", "Undrain"]);
    assert_eq!(kept_tasks(&s, &n).await, made["items"]);
    assert_eq!(made["items"][2]["predecessors"], json!(["T002"]));
    s.post("mia", &format!("/ws/acme/changes/{n}/tasks/generate"), json!({}))
        .await
        .refused(409, "tasks_already_generated");
    let empty = s.change("mia", "acme", json!({"title": "no plan"})).await;
    s.post("mia", &format!("/ws/acme/changes/{empty}/tasks/generate"), json!({}))
        .await
        .refused(422, "validation_failed");
    s.act("mia", "acme", &empty, "cancel", json!({})).await.expect(200);
    s.post("mia", &format!("/ws/acme/changes/{empty}/tasks"), json!({"title": "late"}))
        .await
        .refused(409, "change_closed");
    let activity = s.get("vic", &format!("/ws/acme/changes/{n}/activity")).await.expect(200);
    assert!(activity["items"].as_array().unwrap().iter().any(|r| r["action"] == "task.generate"));
}

#[tokio::test]
async fn an_emergency_gets_a_review_task_due_48_hours_after_it_ends() {
    let s = team().await;
    s.put("olga", "/ws/acme/members/carol", json!({"email": "c@example.com", "role": "approver"})).await.expect(200);
    let mut body = change_on("hotfix", "api", 1, 2);
    body["change_type"] = json!("emergency");
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("carol", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "start", json!({})).await.expect(200);
    let c = s.act("mia", "acme", &n, "complete", json!({"closure_code": "successful", "closure_notes": "ok"})).await;
    let ended: jiff::Timestamp = c.expect(200)["ended_at"].as_str().unwrap().parse().unwrap();
    let tasks = s.get("mia", &format!("/ws/acme/changes/{n}/tasks")).await.expect(200);
    let review = &tasks["items"][0];
    assert_eq!(review["origin"], "post_implementation_review");
    assert_eq!(kept_tasks(&s, &n).await, tasks["items"]);
    let due: jiff::Timestamp = review["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due.duration_since(ended), jiff::SignedDuration::from_hours(48));
    // Reopened and completed again: still one review.
    s.act("mia", "acme", &n, "reopen", json!({"reason": "regression"})).await.expect(200);
    s.act("mia", "acme", &n, "complete", json!({"closure_code": "successful", "closure_notes": "ok"}))
        .await
        .expect(200);
    assert_eq!(
        s.get("mia", &format!("/ws/acme/changes/{n}/tasks")).await.expect(200)["items"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_freeze_filed_while_a_schedule_is_in_flight_still_holds_it() {
    let s = team().await;
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    let _rival = s.before_next_write(move |app| async move {
        let raw = serde_json::from_value(freeze("sudden", 70, 80, json!({"all": true}), false)).unwrap();
        app.create_freeze_window(&actor("alice"), &vigilo_e2e::slug("acme"), raw, None)
            .await
            .expect("the rival freeze commits");
    });
    s.act("mia", "acme", &n, "schedule", json!({})).await.refused(409, "freeze_window_blocked");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "approved");
}

#[tokio::test]
async fn a_conflict_filed_while_a_schedule_is_in_flight_still_holds_it() {
    let s = team().await;
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    let _rival = s.before_next_write(move |app| async move {
        let raw = serde_json::from_value(change_on("rival", "db", 72, 74)).unwrap();
        app.create_change(&actor("mia"), &vigilo_e2e::slug("acme"), raw, None).await.expect("the rival change commits");
    });
    let r = s.act("mia", "acme", &n, "schedule", json!({})).await;
    r.refused(409, "conflict_detected");
    assert_eq!(r.body["error"]["details"]["conflicts"][0]["number"], "CHG-00002");
}

#[tokio::test]
async fn a_task_left_undone_while_start_is_in_flight_holds_it() {
    let s = team().await;
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    let number = n.clone();
    let _rival = s.before_next_write(move |app| async move {
        let raw = serde_json::from_value(json!({"title": "backup first", "gate": "start"})).unwrap();
        app.add_task(&actor("alice"), &vigilo_e2e::slug("acme"), vigilo_e2e::number(&number), raw, None)
            .await
            .expect("the rival task commits");
    });
    s.act("mia", "acme", &n, "start", json!({})).await.refused(409, "tasks_pending");
}

#[tokio::test]
async fn racing_task_creations_get_distinct_ids() {
    let s = std::sync::Arc::new(team().await);
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    let path = format!("/ws/acme/changes/{n}/tasks");
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let (s, path) = (s.clone(), path.clone());
            tokio::spawn(async move { s.post("mia", &path, json!({"title": format!("step {i}")})).await })
        })
        .collect();
    let mut ids = Vec::new();
    for r in runs {
        ids.push(r.await.unwrap().expect(201)["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, (1..=8).map(|i| format!("T{i:03}")).collect::<Vec<_>>());
    assert_eq!(s.verify("olga", "acme").await["ok"], true);
}

#[tokio::test]
async fn retried_task_and_comment_posts_create_once() {
    let s = team().await;
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    for (path, body, other) in [
        (format!("/ws/acme/changes/{n}/tasks"), json!({"title": "backup"}), json!({"title": "restore"})),
        (format!("/ws/acme/changes/{n}/comments"), json!({"body": "on it"}), json!({"body": "done"})),
    ] {
        let h = [("idempotency-key", "retry-1")];
        let first = s.send(Some("mia"), reqwest::Method::POST, &path, Some(body.clone()), &h).await.expect(201);
        let again = s.send(Some("mia"), reqwest::Method::POST, &path, Some(body), &h).await;
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.body, first);
        s.send(Some("mia"), reqwest::Method::POST, &path, Some(other), &h).await.refused(422, "idempotency_key_reused");
        assert_eq!(s.get("mia", &path).await.expect(200)["items"].as_array().unwrap().len(), 1, "{path}");
    }
}

#[tokio::test]
async fn freeze_windows_filed_at_once_are_all_kept_and_all_block() {
    let s = std::sync::Arc::new(team().await);
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    let runs: Vec<_> = (0..6)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let body = freeze(&format!("freeze {i}"), 60 + i, 100, json!({"all": true}), false);
                s.post("alice", "/ws/acme/freeze-windows", body).await.expect(201)["id"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut filed = Vec::new();
    for r in runs {
        filed.push(r.await.unwrap());
    }
    let r = s.act("mia", "acme", &n, "schedule", json!({})).await;
    r.refused(409, "freeze_window_blocked");
    let mut blocking: Vec<String> = r.body["error"]["details"]["windows"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect();
    blocking.sort();
    filed.sort();
    assert_eq!(blocking, filed, "every window filed in the race blocks the schedule");
}

#[tokio::test]
async fn a_withdrawn_freeze_no_longer_blocks_and_an_ended_one_leaves_the_calendar() {
    let s = team().await;
    let n = approved(&s, change_on("db work", "db", 72, 73)).await;
    let id = s.post("alice", "/ws/acme/freeze-windows", freeze("brief", 70, 80, json!({"all": true}), false)).await;
    let id = id.expect(201)["id"].as_str().unwrap().to_owned();
    s.act("mia", "acme", &n, "schedule", json!({})).await.refused(409, "freeze_window_blocked");
    s.delete("alice", &format!("/ws/acme/freeze-windows/{id}")).await.expect(204);
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    // A window already over is kept as a record but not in the calendar the gates read.
    let past = s.post("alice", "/ws/acme/freeze-windows", freeze("last week", -200, -100, json!({"all": true}), false));
    past.await.expect(201);
    let ws = s.get("olga", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    let calendar = s.table().get(&vigilo_app::keys::freezes_epoch(&ws)).await.unwrap();
    assert_eq!(calendar.unwrap().data["windows"], json!([]));
}

#[tokio::test]
async fn racing_creates_on_one_asset_all_see_each_other() {
    let s = std::sync::Arc::new(team().await);
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.change("mia", "acme", change_on(&format!("db work {i}"), "db", 72, 74)).await })
        })
        .collect();
    let mut numbers = Vec::new();
    for r in runs {
        numbers.push(r.await.unwrap());
    }
    // No booking was lost to the racers' rewrites of the asset's calendar (or to its
    // being given up under the race): every change conflicts with the seven others.
    for n in &numbers {
        let c = s.get("vic", &format!("/ws/acme/changes/{n}")).await.expect(200);
        let mut others: Vec<&str> =
            c["conflicts"].as_array().unwrap().iter().map(|x| x["number"].as_str().unwrap()).collect();
        others.sort();
        let mut want: Vec<&str> = numbers.iter().map(String::as_str).filter(|o| o != n).collect();
        want.sort();
        assert_eq!(others, want, "{n}");
    }
    assert_eq!(s.verify("olga", "acme").await["ok"], true);
}

#[tokio::test]
async fn a_change_filed_on_its_asset_while_another_is_filed_is_in_its_answer() {
    let s = team().await;
    let _rival = s.before_next_write(move |app| async move {
        let raw = serde_json::from_value(change_on("rival", "db", 73, 75)).unwrap();
        app.create_change(&actor("mia"), &vigilo_e2e::slug("acme"), raw, None).await.expect("the rival change commits");
    });
    let mut body = change_on("mine", "db", 72, 74);
    body["affected_assets"] = json!(["db", "web"]);
    let created = s.post("mia", "/ws/acme/changes", body).await.expect(201);
    // The create took its number, then read the calendar before the rival booked it:
    // its commit failed on the calendar's condition and it was decided again, the
    // rival included.
    assert_eq!(created["number"], "CHG-00001");
    assert_eq!(created["conflicts"][0]["number"], "CHG-00002");
    assert_eq!(created["conflicts"][0]["shared_assets"], json!(["db"]));
    let rival = s.get("mia", "/ws/acme/changes/CHG-00002").await.expect(200);
    assert_eq!(rival["conflicts"][0]["number"], created["number"]);
}

#[tokio::test]
async fn an_asset_too_busy_for_a_calendar_is_looked_up_by_its_entries() {
    use vigilo_app::services::conflicts::{calendar_item, Booking, CALENDAR_MAX};
    use vigilo_app::store::WriteOp;
    let s = team().await;
    let ws = s.get("olga", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    // The busy asset's calendar is full (bookings of changes far away in time).
    let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365);
    let full: Vec<Booking> = (0..CALENDAR_MAX as u64)
        .map(|i| Booking {
            number: vigilo_domain::ids::ChangeNumber::new(9000 + i).unwrap(),
            start: far,
            end: far + jiff::SignedDuration::from_hours(1),
        })
        .collect();
    let item = calendar_item(&ws, "busy", full);
    assert!(item.data.get("bookings").is_some(), "a full calendar is still kept");
    s.table().transact(vec![WriteOp::Put { item, condition: None }]).await.unwrap();
    // One booking more and the asset keeps no calendar...
    let a = s.change("mia", "acme", change_on("one", "busy", 72, 74)).await;
    let epoch = s.table().get(&vigilo_app::keys::asset_epoch(&ws, "busy")).await.unwrap().unwrap();
    assert!(epoch.data.get("bookings").is_none(), "{:?}", epoch.data);
    // ...yet its conflicts are all found, both ways, and gate the schedule.
    let b = approved(&s, change_on("two", "busy", 73, 75)).await;
    let cb = s.get("vic", &format!("/ws/acme/changes/{b}")).await.expect(200);
    assert_eq!(cb["conflicts"][0]["number"], a.as_str());
    let ca = s.get("vic", &format!("/ws/acme/changes/{a}")).await.expect(200);
    assert_eq!(ca["conflicts"][0]["number"], b.as_str());
    s.act("mia", "acme", &b, "schedule", json!({})).await.refused(409, "conflict_detected");
    s.act("mia", "acme", &a, "cancel", json!({})).await.expect(200);
    assert_eq!(s.act("mia", "acme", &b, "schedule", json!({})).await.expect(200)["conflicts"], json!([]));
}

#[tokio::test]
async fn a_change_on_a_hundred_assets_books_them_all() {
    let s = team().await;
    let mut body = change_on("everything", "a-000", 72, 74);
    body["affected_assets"] = json!((0..100).map(|i| format!("a-{i:03}")).collect::<Vec<_>>());
    let wide = s.change("mia", "acme", body).await;
    // Calendars beyond the transaction's room are given up, not left without the
    // booking: every asset, first and last, still finds the wide change.
    for asset in ["a-000", "a-050", "a-099"] {
        let other = s.post("mia", "/ws/acme/changes", change_on("narrow", asset, 73, 75)).await.expect(201);
        assert_eq!(other["conflicts"][0]["number"], wide.as_str(), "{asset}");
        assert_eq!(other["conflicts"][0]["shared_assets"], json!([asset]));
    }
    let c = s.get("vic", &format!("/ws/acme/changes/{wide}")).await.expect(200);
    assert_eq!(c["conflicts"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_recurring_freeze_holds_every_occurrence_and_only_those() {
    let s = team().await;
    let daily = json!({"name": "nightly batch", "start": in_hours(-48), "end": in_hours(-46),
        "scope": {"assets": ["db"]}, "recurrence": "rrule:FREQ=DAILY"});
    let made = s.post("alice", "/ws/acme/freeze-windows", daily).await.expect(201);
    assert_eq!((&made["recurrence"], &made["series_end"]), (&json!("RRULE:FREQ=DAILY"), &Value::Null));
    // Its first occurrence is over, the series is not: it stays on the current list.
    let current = s.get("vic", "/ws/acme/freeze-windows?current=true").await.expect(200);
    assert_eq!(current["items"][0]["id"], made["id"]);

    // A change meeting a later occurrence is refused, that occurrence named.
    let n = s.change("mia", "acme", change_on("db work", "db", 72, 73)).await;
    let r = s.act("mia", "acme", &n, "submit", json!({})).await;
    r.refused(409, "freeze_window_blocked");
    let named = &r.body["error"]["details"]["windows"][0];
    assert_eq!(named["id"], made["id"]);
    assert_eq!(
        (instant(&named["start"]), instant(&named["end"])),
        (instant(&json!(in_hours(72))), instant(&json!(in_hours(74))))
    );
    // Between two occurrences (touching one's end and the next's start) it passes.
    approved(&s, change_on("db between", "db", 74, 96)).await;
    approved(&s, change_on("web work", "web", 72, 73)).await;

    // The sweep sees each occurrence too: a recurring freeze filed over a scheduled change.
    let cache = approved(&s, change_on("cache work", "cache", 96, 97)).await;
    s.act("mia", "acme", &cache, "schedule", json!({})).await.expect(200);
    let weekly = json!({"name": "cache freeze", "start": in_hours(-48), "end": in_hours(-47),
        "scope": {"assets": ["cache"]}, "recurrence": "RRULE:FREQ=DAILY;INTERVAL=2"});
    s.post("alice", "/ws/acme/freeze-windows", weekly).await.expect(201);
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert_eq!(report.unscheduled, vec![cache.clone()], "{report:?}");
    let row = &audit_rows(&s, "change.unschedule").await[0];
    assert_eq!(instant(&row["metadata"]["windows"][0]["start"]), instant(&json!(in_hours(96))));
}

#[tokio::test]
async fn a_bounded_series_ends_and_bad_rules_are_refused() {
    let s = team().await;
    let twice = json!({"name": "twice", "start": in_hours(-48), "end": in_hours(-46),
        "scope": {"all": true}, "recurrence": "RRULE:FREQ=DAILY;COUNT=2"});
    let made = s.post("alice", "/ws/acme/freeze-windows", twice).await.expect(201);
    assert_eq!(instant(&made["series_end"]), instant(&json!(in_hours(-22))));
    let current = s.get("vic", "/ws/acme/freeze-windows?current=true").await.expect(200);
    assert!(current["items"].as_array().unwrap().is_empty(), "{current}");
    approved(&s, change_on("after the series", "db", 72, 73)).await;

    for bad in ["FREQ=DAILY", "RRULE:FREQ=HOURLY", "RRULE:FREQ=WEEKLY;BYDAY=XY", "RRULE:FREQ=DAILY\r\nX:Y"] {
        let body = json!({"name": "bad", "start": in_hours(1), "end": in_hours(2), "scope": {"all": true},
            "recurrence": bad});
        let r = s.post("alice", "/ws/acme/freeze-windows", body).await;
        r.refused(422, "validation_failed");
        assert!(r.body["error"]["details"]["fields"]["recurrence"].is_string(), "{bad}: {}", r.body);
    }
    let old = json!({"name": "old", "start": in_hours(-24 * 400), "end": in_hours(-24 * 400 + 1), "scope": {"all": true},
        "recurrence": "RRULE:FREQ=DAILY"});
    let r = s.post("alice", "/ws/acme/freeze-windows", old).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["start"].is_string(), "{}", r.body);
    let body =
        json!({"name": "bad", "start": in_hours(1), "end": in_hours(2), "scope": {"all": true}, "recurrence": 7});
    s.post("alice", "/ws/acme/freeze-windows", body).await.refused(400, "bad_request");
}

/// The last Sunday of March next year (Europe's change to summer time), as a date.
fn summer_time_sunday() -> jiff::civil::Date {
    let year = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).year() + 1;
    let mut d = jiff::civil::date(year, 3, 31);
    while d.weekday() != jiff::civil::Weekday::Sunday {
        d = d.yesterday().unwrap();
    }
    d
}

#[tokio::test]
async fn a_recurring_freeze_keeps_its_wall_clock_across_the_change_to_summer_time() {
    let s = team().await;
    s.patch("olga", "/ws/acme", json!({"timezone": "Europe/Berlin"})).await.expect(200);
    let sunday = summer_time_sunday();
    let friday = sunday.checked_sub(jiff::Span::new().days(2)).unwrap();
    let monday = sunday.tomorrow().unwrap();
    // Fridays 18:00 to Mondays 06:00 in Berlin, first the weekend the clocks go forward.
    let w = json!({"name": "weekend", "start": format!("{friday}T18:00"), "end": format!("{monday}T06:00"),
        "scope": {"assets": ["db"]}, "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=FR"});
    s.post("alice", "/ws/acme/freeze-windows", w).await.expect(201);
    let utc = |date: jiff::civil::Date, hm: &str| {
        let t: jiff::Timestamp = format!("{date}T{hm}:00Z").parse().unwrap();
        vigilo_domain::time::format(t)
    };
    let next_friday = friday.checked_add(jiff::Span::new().days(7)).unwrap();
    let next_monday = monday.checked_add(jiff::Span::new().days(7)).unwrap();
    let change = |title: &str, from: String, to: String| {
        let mut b = normal_change(title);
        b["affected_assets"] = json!(["db"]);
        b["planned_start"] = json!(from);
        b["planned_end"] = json!(to);
        b
    };
    // A week later it is summer time: 18:00 in Berlin is 16:00 UTC, 06:00 is 04:00 UTC.
    let cases = [
        ("friday 18:30 CEST", utc(next_friday, "16:30"), utc(next_friday, "16:45"), true),
        ("friday 17:00 CEST", utc(next_friday, "15:00"), utc(next_friday, "15:59"), false),
        ("monday 05:30 CEST", utc(next_monday, "03:30"), utc(next_monday, "03:45"), true),
        ("monday 06:30 CEST", utc(next_monday, "04:30"), utc(next_monday, "05:00"), false),
        // The first weekend, still winter time at its start: 18:00 CET is 17:00 UTC.
        ("first friday 17:30 CET", utc(friday, "16:30"), utc(friday, "16:45"), false),
        ("first friday 18:30 CET", utc(friday, "17:30"), utc(friday, "17:45"), true),
    ];
    for (title, from, to, blocked) in cases {
        let n = s.change("mia", "acme", change(title, from, to)).await;
        let r = s.act("mia", "acme", &n, "submit", json!({})).await;
        if blocked {
            r.refused(409, "freeze_window_blocked");
        } else {
            assert_eq!(r.status, 200, "{title}: {}", r.body);
        }
    }
}
