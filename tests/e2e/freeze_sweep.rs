//! The freeze sweep: a freeze filed over a scheduled change takes it back to
//! `approved` (audited as the system, its people told), unless someone overrode that
//! window for it; and the people of scheduled changes in a freeze's scope hear of it
//! once, a day ahead. Races: a rival write between the sweep's read and its commit.

use serde_json::Value;
use vigilo_e2e::{actor, in_hours, json, normal_change, TestServer};

async fn team() -> TestServer {
    let s = TestServer::start().await;
    s.workspace("olga", "acme", &[("alice", "admin"), ("bob", "approver"), ("mia", "member")]).await;
    s
}

/// A change by mia on `asset`, `from`..`to` hours from now, one hour's lead time.
fn change_on(title: &str, asset: &str, from: i64, to: i64) -> Value {
    let mut b = normal_change(title);
    b["affected_assets"] = json!([asset]);
    b["planned_start"] = json!(in_hours(from));
    b["planned_end"] = json!(in_hours(to));
    b["min_lead_time_hours"] = json!(1);
    b
}

async fn scheduled(s: &TestServer, body: Value) -> String {
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    n
}

async fn file_freeze(s: &TestServer, name: &str, from: i64, to: i64, assets: &[&str]) -> String {
    let body = json!({"name": name, "start": in_hours(from), "end": in_hours(to), "scope": {"assets": assets}});
    s.post("alice", "/ws/acme/freeze-windows", body).await.expect(201)["id"].as_str().unwrap().to_owned()
}

async fn status(s: &TestServer, n: &str) -> Value {
    s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"].clone()
}

fn mails(s: &TestServer, who: &str, subject: &str) -> usize {
    let to = format!("To: {who}@example.com");
    s.outbox().iter().filter(|(n, t)| n.ends_with(".eml") && t.contains(&to) && t.contains(subject)).count()
}

async fn rows(s: &TestServer, action: &str) -> Vec<Value> {
    let page = s.get("olga", &format!("/ws/acme/audit?action={action}")).await.expect(200);
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_freeze_filed_over_a_scheduled_change_takes_it_back_to_approved_once() {
    let s = team().await;
    let frozen = scheduled(&s, change_on("db upgrade", "db", 72, 74)).await;
    let elsewhere = scheduled(&s, change_on("web deploy", "web", 72, 74)).await;
    let before = scheduled(&s, change_on("db index", "db", 60, 62)).await;
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert!(report.unscheduled.is_empty(), "no freeze yet: {report:?}");

    file_freeze(&s, "Quarter close <b>", 70, 80, &["db"]).await;
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert_eq!((report.scheduled, report.unscheduled.clone()), (3, vec![frozen.clone()]), "{report:?}");
    assert_eq!(status(&s, &frozen).await, "approved");
    assert_eq!(status(&s, &elsewhere).await, "scheduled", "another asset");
    assert_eq!(status(&s, &before).await, "scheduled", "before the freeze");

    let unscheduled = rows(&s, "change.unschedule").await;
    assert_eq!(unscheduled.len(), 1);
    let row = &unscheduled[0];
    assert_eq!(row["actor"], Value::Null);
    assert_eq!(row["metadata"]["actor_kind"], "sweep:freeze");
    assert_eq!(row["metadata"]["windows"][0]["name"], "Quarter close <b>");
    assert_eq!(
        (row["old_value"]["status"].as_str(), row["new_value"]["status"].as_str()),
        (Some("scheduled"), Some("approved"))
    );
    assert_eq!(s.verify("olga", "acme").await["ok"], true, "the row is in the chain");

    // Its author hears of it by email and chat, with the window named and escaped.
    assert_eq!(mails(&s, "mia", "Taken off the schedule by a freeze"), 1);
    let chat: Vec<_> =
        s.outbox().into_iter().filter(|(n, t)| n.ends_with(".json") && t.contains("change.unscheduled")).collect();
    assert_eq!(chat.len(), 1, "one chat message");
    assert!(chat[0].1.contains("Quarter close &lt;b&gt;"), "{}", chat[0].1);

    // Once: the next pass finds nothing to do, and the gate holds the change out.
    let again = s.app.freeze_sweep_all().await.unwrap();
    assert!(again.unscheduled.is_empty(), "{again:?}");
    assert_eq!(mails(&s, "mia", "Taken off the schedule by a freeze"), 1);
    s.act("mia", "acme", &frozen, "schedule", json!({})).await.refused(409, "freeze_window_blocked");
}

#[tokio::test]
async fn an_override_keeps_a_change_scheduled_over_that_window_only() {
    let s = team().await;
    let n = s.change("mia", "acme", change_on("db upgrade", "db", 72, 74)).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    let first = file_freeze(&s, "first", 70, 80, &["db"]).await;
    let body = json!({"override_freeze": true, "reason": "the vendor's only slot"});
    let moved = s.act("olga", "acme", &n, "schedule", body).await.expect(200);
    assert_eq!(moved["freeze_overrides"], json!([first]));
    assert!(s.app.freeze_sweep_all().await.unwrap().unscheduled.is_empty(), "overridden");
    assert_eq!(status(&s, &n).await, "scheduled");

    file_freeze(&s, "second", 73, 90, &["db"]).await;
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert_eq!(report.unscheduled, vec![n.clone()]);
    let row = &rows(&s, "change.unschedule").await[0];
    let named: Vec<&str> =
        row["metadata"]["windows"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(named, ["second"], "only the window nobody overrode");
}

#[tokio::test]
async fn people_of_changes_in_scope_hear_of_a_freeze_a_day_ahead_once() {
    let s = team().await;
    let runs_into = scheduled(&s, change_on("db before", "db", 10, 12)).await;
    let after = scheduled(&s, change_on("db after", "db", 60, 62)).await;
    let other = scheduled(&s, change_on("web", "web", 10, 12)).await;
    file_freeze(&s, "far off", 30, 40, &["db"]).await;
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert_eq!(report.warned, 0, "more than a day ahead: {report:?}");

    file_freeze(&s, "tomorrow", 20, 40, &["db"]).await;
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert_eq!((report.warned, report.unscheduled.len()), (1, 0), "{report:?}");
    assert_eq!(mails(&s, "mia", "Freeze ahead"), 1);
    let mail = s.outbox().into_iter().find(|(n, t)| n.ends_with(".eml") && t.contains("Freeze ahead")).unwrap().1;
    assert!(mail.contains(&runs_into) && mail.contains("tomorrow"), "{mail}");
    assert!(!mail.contains(&after) && !mail.contains(&other));

    let again = s.app.freeze_sweep_all().await.unwrap();
    assert_eq!(again.warned, 0, "once");
    assert_eq!(mails(&s, "mia", "Freeze ahead"), 1);
}

#[tokio::test]
async fn a_change_cancelled_while_the_sweep_decides_stays_cancelled() {
    let s = team().await;
    let n = scheduled(&s, change_on("db upgrade", "db", 72, 74)).await;
    file_freeze(&s, "close", 70, 80, &["db"]).await;
    let number = n.clone();
    let rival = s.before_next_write(move |app| async move {
        let input = serde_json::from_value(json!({"reason": "not needed"})).unwrap();
        app.act(&actor("mia"), &vigilo_e2e::slug("acme"), vigilo_e2e::number(&number), "cancel", input, None)
            .await
            .expect("the rival cancel commits");
    });
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert!(rival.ran());
    assert!(report.unscheduled.is_empty(), "decided again from a fresh read: {report:?}");
    assert_eq!(status(&s, &n).await, "cancelled");
    assert!(rows(&s, "change.unschedule").await.is_empty());
}

#[tokio::test]
async fn a_window_withdrawn_while_the_sweep_decides_leaves_the_change_scheduled() {
    let s = team().await;
    let n = scheduled(&s, change_on("db upgrade", "db", 72, 74)).await;
    let id = file_freeze(&s, "mistake", 70, 80, &["db"]).await;
    let rival = s.before_next_write(move |app| async move {
        app.delete_freeze_window(&actor("alice"), &vigilo_e2e::slug("acme"), &id)
            .await
            .expect("the rival delete commits");
    });
    let report = s.app.freeze_sweep_all().await.unwrap();
    assert!(rival.ran());
    assert!(report.unscheduled.is_empty(), "{report:?}");
    assert_eq!(status(&s, &n).await, "scheduled");
}

#[tokio::test]
async fn a_schedule_racing_the_sweep_ends_approved_or_scheduled_outside_the_freeze() {
    let s = team().await;
    let n = s.change("mia", "acme", change_on("db upgrade", "db", 72, 74)).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    // The freeze lands while the schedule is in flight: the schedule's gate holds the
    // freeze calendar, so it is refused; had it committed first, the sweep would take
    // it back. Either way the change does not stay scheduled inside the freeze.
    let _rival = s.before_next_write(move |app| async move {
        let raw = serde_json::from_value(json!({"name": "sudden", "start": in_hours(70), "end": in_hours(80),
                                                 "scope": {"assets": ["db"]}}))
        .unwrap();
        app.create_freeze_window(&actor("alice"), &vigilo_e2e::slug("acme"), raw, None)
            .await
            .expect("the freeze commits");
    });
    let r = s.act("mia", "acme", &n, "schedule", json!({})).await;
    let _ = s.app.freeze_sweep_all().await.unwrap();
    assert_eq!(status(&s, &n).await, "approved", "{}", r.body);
}
