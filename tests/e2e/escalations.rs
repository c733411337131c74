//! Approval SLAs: steps past their deadline are escalated once, with a reminder (and a
//! fresh link) to their approvers and a notice to the admins.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use vigilo_app::clock::ManualClock;
use vigilo_e2e::{json, TestServer};

async fn setup(start: &str) -> (TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start.parse::<Timestamp>().unwrap()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    s.workspace("olga", "acme", &[("alice", "admin"), ("bob", "approver"), ("carol", "approver"), ("mia", "member")])
        .await;
    s.patch("olga", "/ws/acme", json!({"timezone": "Europe/Berlin"})).await.expect(200);
    (s, clock)
}

fn mails(s: &TestServer, who: &str, subject: &str) -> usize {
    let to = format!("To: {who}@example.com");
    s.outbox().iter().filter(|(n, t)| n.ends_with(".eml") && t.contains(&to) && t.contains(subject)).count()
}

async fn escalations(s: &TestServer) -> Vec<serde_json::Value> {
    s.get("olga", "/ws/acme/audit?action=approval_step.escalate").await.expect(200)["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_emergency_step_escalates_after_two_hours_once() {
    let (s, clock) = setup("2026-12-01T08:00:00Z").await;
    let n = s
        .change(
            "mia",
            "acme",
            json!({"title": "hotfix", "change_type": "emergency", "affected_assets": ["api"],
                   "planned_start": "2026-12-01T09:00:00Z", "planned_end": "2026-12-01T10:00:00Z",
                   "rollback_plan": "revert"}),
        )
        .await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    clock.advance(SignedDuration::from_mins(119));
    assert_eq!(s.app.escalate_all().await.unwrap().escalated, 0, "not yet due");
    clock.advance(SignedDuration::from_mins(2));
    let r = s.app.escalate_all().await.unwrap();
    assert_eq!((r.pending, r.escalated), (1, 1));
    // Approvers are reminded with a link; the owner, not asked on the step, is told.
    for who in ["bob", "carol", "alice"] {
        assert_eq!(mails(&s, who, "Approval overdue"), 1, "{who}");
    }
    assert_eq!(mails(&s, "olga", "Approval overdue"), 1);
    let rows = escalations(&s).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["metadata"]["sla_due_at"], "2026-12-01T10:00:00.000Z");
    assert_eq!(rows[0]["actor"], serde_json::Value::Null);
    // Once per breach.
    clock.advance(SignedDuration::from_hours(3));
    assert_eq!(s.app.escalate_all().await.unwrap().escalated, 0);
    assert_eq!(mails(&s, "bob", "Approval overdue"), 1);
    // The reminder's link decides.
    let mail = s
        .outbox()
        .into_iter()
        .find(|(_, t)| t.contains("To: bob@example.com") && t.contains("Approval overdue"))
        .unwrap()
        .1;
    let line = mail.lines().find(|l| l.starts_with("Reply-To:")).unwrap().to_owned();
    let token = &line[line.find("r+").unwrap() + 2..line.find('@').unwrap()];
    let r =
        s.send(None, reqwest::Method::POST, &format!("/a/{token}"), Some(json!({"decision": "approve"})), &[]).await;
    assert_eq!(r.expect(200)["change"]["status"], "review", "ECAB needs a second approver");
    assert_eq!(s.verify("olga", "acme").await["ok"], true);
}

#[tokio::test]
async fn a_normal_step_waits_five_business_days() {
    // Friday 2026-12-04, 16:00 in Berlin.
    let (s, clock) = setup("2026-12-04T15:00:00Z").await;
    let n = s
        .change(
            "mia",
            "acme",
            json!({"title": "upgrade", "planned_start": "2026-12-20T09:00:00Z", "planned_end": "2026-12-20T10:00:00Z"}),
        )
        .await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    clock.advance(SignedDuration::from_hours(24 * 7) - SignedDuration::from_mins(1));
    assert_eq!(s.app.escalate_all().await.unwrap().escalated, 0, "due next Friday at 16:00");
    clock.advance(SignedDuration::from_mins(2));
    assert_eq!(s.app.escalate_all().await.unwrap().escalated, 1);
    assert_eq!(escalations(&s).await[0]["metadata"]["sla_due_at"], "2026-12-11T15:00:00.000Z");
    // A step decided before its deadline is never escalated.
    let m = s
        .change(
            "mia",
            "acme",
            json!({"title": "t", "planned_start": "2026-12-30T09:00:00Z", "planned_end": "2026-12-30T10:00:00Z"}),
        )
        .await;
    s.act("mia", "acme", &m, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &m, "approve", json!({})).await.expect(200);
    clock.advance(SignedDuration::from_hours(24 * 30));
    assert_eq!(s.app.escalate_all().await.unwrap().escalated, 0);
}
