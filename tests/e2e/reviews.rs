//! The review sweep: an emergency's post-implementation review reminds its assignee
//! once it is due within a day and tells the admins once it is overdue, each once, even
//! with two sweeps at once; a review finished in time is left alone.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use vigilo_app::clock::ManualClock;
use vigilo_e2e::{json, normal_change, TestServer};

async fn setup() -> (TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    let people = [("alice", "admin"), ("bob", "approver"), ("carol", "approver"), ("mia", "member")];
    s.workspace("olga", "acme", &people).await;
    (s, clock)
}

/// An emergency by mia, run and completed now.
async fn emergency(s: &TestServer, title: &str) -> String {
    let mut body = normal_change(title);
    body["change_type"] = json!("emergency");
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("carol", "acme", &n, "approve", json!({})).await.expect(200);
    for action in ["schedule", "start"] {
        s.act("mia", "acme", &n, action, json!({})).await.expect(200);
    }
    let done = json!({"closure_code": "successful", "closure_notes": "patched"});
    s.act("mia", "acme", &n, "complete", done).await.expect(200);
    n
}

fn mails(s: &TestServer, who: &str, subject: &str) -> usize {
    let to = format!("To: {who}@example.com");
    s.outbox().iter().filter(|(n, t)| n.ends_with(".eml") && t.contains(&to) && t.contains(subject)).count()
}

#[tokio::test]
async fn a_review_reminds_its_assignee_when_due_and_the_admins_when_overdue_once_each() {
    let (s, clock) = setup().await;
    let n = emergency(&s, "hotfix").await;
    let label = format!("{n}/T001");
    let r = s.app.review_sweep_all().await.unwrap();
    assert_eq!((r.due, r.reminded.len()), (0, 0), "due in 48 hours: not yet");

    clock.advance(SignedDuration::from_hours(25));
    let r = s.app.review_sweep_all().await.unwrap();
    assert_eq!(r.reminded, vec![label.clone()], "{r:?}");
    assert_eq!(mails(&s, "mia", "Post-implementation review due"), 1);
    assert!(s.outbox().iter().any(|(_, t)| t.contains("Due:")), "the due time is named");
    let again = s.app.review_sweep_all().await.unwrap();
    assert!(again.reminded.is_empty() && again.escalated.is_empty(), "{again:?}");

    clock.advance(SignedDuration::from_hours(24));
    let r = s.app.review_sweep_all().await.unwrap();
    assert_eq!(r.escalated, vec![label], "{r:?}");
    for admin in ["olga", "alice"] {
        assert_eq!(mails(&s, admin, "Post-implementation review overdue"), 1, "{admin}");
    }
    assert_eq!(mails(&s, "mia", "Post-implementation review overdue"), 0, "admins only");
    s.app.review_sweep_all().await.unwrap();
    assert_eq!(mails(&s, "olga", "Post-implementation review overdue"), 1, "once");
    assert_eq!(mails(&s, "mia", "Post-implementation review due"), 1, "once");
}

#[tokio::test]
async fn a_review_finished_in_time_is_left_alone_and_racing_sweeps_tell_once() {
    let (s, clock) = setup().await;
    let done = emergency(&s, "finished in time").await;
    let open = emergency(&s, "left open").await;
    for action in ["start", "done"] {
        s.post("mia", &format!("/ws/acme/changes/{done}/tasks/T001/{action}"), json!({})).await.expect(200);
    }
    clock.advance(SignedDuration::from_hours(25));
    // Another sweep with the same delivery, landing between this one's read and write.
    let other = s.app.clone();
    let rival = s.before_next_write(|_| async move {
        let r = other.review_sweep_all().await.expect("the rival sweep");
        assert_eq!(r.reminded.len(), 1, "{r:?}");
    });
    let r = s.app.review_sweep_all().await.unwrap();
    assert!(rival.ran());
    assert_eq!(r.closed, 1, "{r:?}");
    assert!(r.reminded.is_empty(), "the rival told first: {r:?}");
    assert_eq!(mails(&s, "mia", "Post-implementation review due"), 1);
    let reminded: Vec<_> =
        s.outbox().into_iter().filter(|(_, t)| t.contains("Post-implementation review due")).collect();
    assert!(reminded.iter().all(|(_, t)| t.contains(&open) && !t.contains(&done)), "only the open review");
}
