//! The CAB's week: the agenda of normal changes awaiting review (risk score, plans,
//! approvers still to decide, conflicts), and its Monday 08:00 mail to the `cab` group
//! on each workspace's clock, once a week, in the workspace's language.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use vigilo_app::clock::ManualClock;
use vigilo_e2e::{json, normal_change, TestServer};

/// Monday 1 March 2027, 07:30 in Berlin.
const MONDAY: &str = "2027-03-01T06:30:00Z";

async fn setup() -> (TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(MONDAY.parse().unwrap()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    let people = [("alice", "admin"), ("bob", "approver"), ("carol", "approver"), ("mia", "member"), ("vic", "viewer")];
    s.workspace("olga", "acme", &people).await;
    s.patch("olga", "/ws/acme", json!({"timezone": "Europe/Berlin"})).await.expect(200);
    s.put("alice", "/ws/acme/groups/cab", json!({"members": ["bob", "carol", "vic"]})).await.expect(200);
    (s, clock)
}

fn at(h: i64) -> String {
    let t: Timestamp = MONDAY.parse().unwrap();
    vigilo_domain::time::format(t + SignedDuration::from_hours(h))
}

/// A change by mia of `kind` on `asset`, `from`..`from + 1` hours after Monday 07:30.
async fn filed(s: &TestServer, title: &str, kind: &str, asset: &str, from: i64, submit: bool) -> String {
    let mut b = normal_change(title);
    b["change_type"] = json!(kind);
    b["affected_assets"] = json!([asset]);
    b["planned_start"] = json!(at(from));
    b["planned_end"] = json!(at(from + 1));
    let n = s.change("mia", "acme", b).await;
    if submit {
        s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    }
    n
}

fn numbers(agenda: &Value) -> Vec<&str> {
    agenda["items"].as_array().unwrap().iter().map(|i| i["number"].as_str().unwrap()).collect()
}

fn agenda_mails(s: &TestServer, who: &str, subject: &str) -> usize {
    let to = format!("To: {who}@example.com");
    s.outbox().iter().filter(|(n, t)| n.ends_with(".eml") && t.contains(&to) && t.contains(subject)).count()
}

#[tokio::test]
async fn the_agenda_holds_the_normal_changes_awaiting_review_with_what_the_board_weighs() {
    let (s, _) = setup().await;
    let this_week = filed(&s, "db <upgrade>", "normal", "db", 50, true).await;
    let rival = filed(&s, "db index", "normal", "db", 50, true).await;
    let next_week = filed(&s, "web deploy", "normal", "web", 200, true).await;
    filed(&s, "still a draft", "normal", "cache", 60, false).await;
    let decided = filed(&s, "already approved", "normal", "dns", 60, true).await;
    s.act("bob", "acme", &decided, "approve", json!({})).await.expect(200);
    let path = format!("/ws/acme/changes/{this_week}/risk-assessment");
    let answers = json!({"answers": {"asset_criticality": "high", "tested": true}});
    let assessed = s.put("mia", &path, answers).await.expect(200);

    let agenda = s.get("vic", "/ws/acme/cab/agenda?week=2027-W09").await.expect(200);
    assert_eq!(numbers(&agenda), [this_week.as_str(), rival.as_str(), next_week.as_str()], "planned start first");
    assert_eq!((&agenda["week"], &agenda["timezone"]), (&json!("2027-W09"), &json!("Europe/Berlin")));
    assert_eq!(agenda["starts_at"], "2027-02-28T23:00:00Z", "Monday 00:00 in Berlin");
    let first = &agenda["items"][0];
    assert_eq!((&first["title"], &first["planned_this_week"]), (&json!("db <upgrade>"), &json!(true)));
    assert_eq!(first["risk_score"], assessed["score"]);
    assert_eq!(first["rollback_plan"], "redeploy the previous build");
    // Everyone who may still decide, never the author.
    assert_eq!(first["pending_approvers"][0]["approvers"], json!(["alice", "bob", "carol", "olga"]));
    assert_eq!(first["conflicts"][0]["number"], json!(rival));
    assert_eq!(agenda["items"][2]["planned_this_week"], false);
    assert_eq!(agenda["items"][1]["risk_score"], Value::Null, "not assessed");

    // The current week by default; and bad weeks refused.
    let now = s.get("vic", "/ws/acme/cab/agenda").await.expect(200);
    assert_eq!(now["week"], "2027-W09");
    for bad in ["2027-W60", "W09", "2027-09", "2027-W9"] {
        let r = s.get("vic", &format!("/ws/acme/cab/agenda?week={bad}")).await;
        r.refused(422, "validation_failed");
        assert!(r.body["error"]["details"]["fields"]["week"].is_string(), "{bad}");
    }
    s.get("outsider", "/ws/acme/cab/agenda").await.refused(404, "not_found");
}

#[tokio::test]
async fn the_agenda_goes_to_the_cab_group_on_monday_from_eight_once_a_week() {
    let (s, clock) = setup().await;
    filed(&s, "db upgrade", "normal", "db", 50, true).await;
    s.workspace("olga", "beta", &[("bob", "approver")]).await;
    s.patch("olga", "/ws/beta", json!({"timezone": "Europe/Berlin"})).await.expect(200);
    let subject = "CAB agenda 2027-W09: 1 awaiting review";

    let early = s.app.cab_sweep_all().await.unwrap();
    assert!(early.mailed.is_empty(), "07:30 in Berlin: {early:?}");
    clock.advance(SignedDuration::from_mins(35));
    let rival = s.before_next_write({
        let other = s.app.clone();
        |_| async move {
            let r = other.cab_sweep_all().await.expect("the rival sweep");
            assert_eq!(r.mailed.len(), 1, "{r:?}");
        }
    });
    let r = s.app.cab_sweep_all().await.unwrap();
    assert!(rival.ran());
    assert!(r.mailed.is_empty(), "the rival mailed it first: {r:?}");
    assert_eq!(r.without_cab, 1, "beta has no cab group");
    for who in ["bob", "carol", "vic"] {
        assert_eq!(agenda_mails(&s, who, subject), 1, "{who}");
    }
    assert_eq!(agenda_mails(&s, "mia", "CAB agenda"), 0, "not in the group");
    assert!(s.app.cab_sweep_all().await.unwrap().mailed.is_empty(), "once a week");

    // Next Monday, the next week's agenda, in German.
    s.patch("olga", "/ws/acme", json!({"locale": "de"})).await.expect(200);
    clock.advance(SignedDuration::from_hours(24 * 7));
    let r = s.app.cab_sweep_all().await.unwrap();
    assert_eq!(r.recipients, 3, "{r:?}");
    assert_eq!(agenda_mails(&s, "bob", "CAB-Agenda 2027-W10: 1 warten auf Pr"), 1);
}
