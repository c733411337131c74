//! Rules that depend on the clock, on a clock the test moves.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use vigilo_app::clock::ManualClock;
use vigilo_e2e::{json, TestServer};

fn at(t: Timestamp) -> String {
    vigilo_domain::time::format(t)
}

async fn setup() -> (TestServer, Arc<ManualClock>, Timestamp) {
    let start: Timestamp = "2026-12-01T08:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let s = TestServer::start_with_clock(clock.clone()).await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("carol", "approver"), ("erin", "member")]).await;
    (s, clock, start)
}

#[tokio::test]
async fn an_idempotency_key_is_remembered_for_24_hours() {
    let (s, clock, _) = setup().await;
    let h = [("idempotency-key", "nightly")];
    let send = || s.send(Some("alice"), reqwest::Method::POST, "/ws/acme/changes", Some(json!({"title": "t"})), &h);
    assert_eq!(send().await.expect(201)["number"], "CHG-00001");
    clock.advance(SignedDuration::from_hours(23));
    assert_eq!(send().await.expect(201)["number"], "CHG-00001");
    clock.advance(SignedDuration::from_hours(2));
    assert_eq!(send().await.expect(201)["number"], "CHG-00002", "an expired key is a new request");
    assert_eq!(send().await.expect(201)["number"], "CHG-00002");
}

#[tokio::test]
async fn lead_time_is_exact_to_the_millisecond() {
    let (s, _, now) = setup().await;
    let body = |start: Timestamp| json!({"title": "t", "planned_start": at(start), "planned_end": at(start + SignedDuration::from_hours(1))});
    let short =
        s.change("alice", "acme", body(now + SignedDuration::from_hours(24) - SignedDuration::from_millis(1))).await;
    s.act("alice", "acme", &short, "submit", json!({})).await.refused(409, "lead_time_violation");
    let exact = s.change("alice", "acme", body(now + SignedDuration::from_hours(24))).await;
    s.act("alice", "acme", &exact, "submit", json!({})).await.expect(200);
}

#[tokio::test]
async fn a_delegation_counts_only_inside_its_window() {
    let (s, clock, now) = setup().await;
    let n = s.change("alice", "acme", json!({"title": "t", "risk_level": "high", "rollback_plan": "undo"})).await;
    s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    let window = json!({"delegate": "erin", "from": at(now + SignedDuration::from_hours(1)), "until": at(now + SignedDuration::from_hours(2))});
    s.put("bob", "/ws/acme/members/bob/delegate", window).await.expect(200);
    assert!(s.get("erin", "/ws/acme/approvals").await.expect(200)["items"].as_array().unwrap().is_empty());
    s.act("erin", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
    clock.advance(SignedDuration::from_mins(90));
    assert_eq!(s.get("erin", "/ws/acme/approvals").await.expect(200)["items"].as_array().unwrap().len(), 1);
    clock.advance(SignedDuration::from_hours(1));
    s.act("erin", "acme", &n, "approve", json!({})).await.refused(403, "not_an_approver");
}

#[tokio::test]
async fn audit_times_never_run_backwards_along_the_chain() {
    let (s, clock, _) = setup().await;
    s.change("alice", "acme", json!({"title": "before"})).await;
    clock.advance(SignedDuration::from_hours(-3));
    s.change("alice", "acme", json!({"title": "after a clock step back"})).await;
    let rows = s.get("alice", "/ws/acme/audit?limit=2").await.expect(200);
    let (newest, older) = (&rows["items"][0], &rows["items"][1]);
    assert!(newest["created_at"].as_str().unwrap() >= older["created_at"].as_str().unwrap(), "{rows}");
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}
