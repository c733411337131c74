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

#[tokio::test]
async fn one_damaged_workspace_does_not_hold_back_the_others() {
    let (s, clock) = setup("2026-12-01T08:00:00Z").await;
    s.workspace("olga", "zeta", &[("bob", "approver"), ("carol", "approver"), ("mia", "member")]).await;
    let hotfix = json!({"title": "hotfix", "change_type": "emergency", "affected_assets": ["api"],
                        "planned_start": "2026-12-01T09:00:00Z", "planned_end": "2026-12-01T10:00:00Z",
                        "rollback_plan": "revert"});
    for ws in ["acme", "zeta"] {
        let n = s.change("mia", ws, hotfix.clone()).await;
        s.act("mia", ws, &n, "submit", json!({})).await.expect(200);
    }
    // Someone with write access to the table garbles acme's workspace record.
    let acme = s.get("olga", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    let key = vigilo_app::keys::workspace(&acme);
    let mut item = s.table().get(&key).await.unwrap().expect("the workspace item");
    item.data = json!({"garbled": true});
    s.table().transact(vec![vigilo_app::store::WriteOp::Put { item, condition: None }]).await.unwrap();
    clock.advance(SignedDuration::from_hours(3));
    let r = s.app.escalate_all().await.expect("a damaged workspace does not fail the sweep");
    assert_eq!((r.workspaces, r.escalated, r.failed.clone()), (1, 1, vec![acme.clone()]));
    let rows = s.get("olga", "/ws/zeta/audit?action=approval_step.escalate").await.expect(200);
    assert_eq!(rows["items"].as_array().unwrap().len(), 1, "zeta was escalated all the same");
    // The other sweeps walk the same way.
    assert!(s.app.deliver_all().await.is_ok() && s.app.dispatch_all_webhooks().await.is_ok());
}
