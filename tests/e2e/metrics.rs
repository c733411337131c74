//! DORA metrics from a history built through the API on a clock the test moves: every
//! figure checked, a reopened change counted once, and bad ranges refused.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use vigilo_app::clock::{Clock, ManualClock};
use vigilo_e2e::{json, normal_change, TestServer};

struct History {
    s: TestServer,
    clock: Arc<ManualClock>,
    t0: Timestamp,
}

impl History {
    async fn new() -> History {
        let t0: Timestamp = "2027-03-01T00:00:00Z".parse().unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let s = TestServer::start_with_clock(clock.clone()).await;
        s.workspace("olga", "acme", &[("bob", "approver"), ("mia", "member"), ("vic", "viewer")]).await;
        History { s, clock, t0 }
    }

    fn at(&self, h: i64) -> Timestamp {
        self.t0 + SignedDuration::from_hours(h)
    }

    fn go_to(&self, h: i64) {
        let now = self.clock.now();
        self.clock.advance(self.at(h).duration_since(now));
    }

    /// A change on `asset` submitted at hour `h` (now), approved, scheduled and started.
    async fn running(&self, h: i64, asset: &str) -> String {
        self.go_to(h);
        let mut b = normal_change(asset);
        b["affected_assets"] = json!([asset]);
        b["min_lead_time_hours"] = json!(0);
        b["planned_start"] = json!(vigilo_domain::time::format(self.at(h) + SignedDuration::from_mins(1)));
        b["planned_end"] = json!(vigilo_domain::time::format(self.at(h + 200)));
        let n = self.s.change("mia", "acme", b).await;
        for (who, action) in [("mia", "submit"), ("bob", "approve"), ("mia", "schedule"), ("mia", "start")] {
            self.s.act(who, "acme", &n, action, json!({})).await.expect(200);
        }
        n
    }

    async fn end(&self, h: i64, n: &str, action: &str, body: Value) {
        self.go_to(h);
        self.s.act("mia", "acme", n, action, body).await.expect(200);
    }

    async fn dora(&self, from: i64, to: i64) -> Value {
        let q = format!(
            "/ws/acme/metrics/dora?from={}&to={}",
            vigilo_domain::time::format(self.at(from)),
            vigilo_domain::time::format(self.at(to))
        );
        self.s.get("vic", &q).await.expect(200)
    }
}

fn done(code: &str) -> Value {
    json!({"closure_code": code, "closure_notes": "notes"})
}

#[tokio::test]
async fn every_figure_comes_from_the_changes_that_ended_in_the_range() {
    let h = History::new().await;
    let c1 = h.running(0, "a").await;
    let c2 = h.running(0, "b").await;
    let c5 = h.running(0, "d").await;
    h.end(10, &c1, "complete", done("successful")).await;
    let c4 = h.running(10, "c").await;
    // c5 completes, is reopened (its end no longer counts), and is rolled back later.
    h.end(12, &c5, "complete", done("successful")).await;
    h.end(14, &c5, "reopen", json!({"reason": "smoke test failed"})).await;
    h.end(20, &c2, "fail", json!({"reason": "migration failed"})).await;
    let c3 = h.running(20, "b").await;
    h.end(36, &c3, "complete", done("successful")).await;
    h.end(40, &c4, "complete", done("unsuccessful")).await;
    h.end(50, &c5, "rollback", json!({"reason": "errors spiked"})).await;
    let c6 = h.running(50, "d").await;
    h.end(60, &c6, "complete", done("successful_with_issues")).await;
    let c7 = h.running(80, "a").await;
    h.end(90, &c7, "complete", done("successful")).await;

    let d = h.dora(0, 72).await;
    assert_eq!((&d["deployments"], &d["failures"]), (&json!(6), &json!(3)), "{d}");
    assert_eq!(d["deployment_frequency_per_day"], 2.0, "six over three days");
    assert_eq!(d["change_failure_rate"], 0.5, "c2 failed, c4 unsuccessful, c5 rolled back");
    // Lead times 10, 20, 16, 30, 50, 10 hours.
    assert_eq!(d["lead_time_hours"], json!({"median": 18.0, "p90": 50.0}));
    // c3 restores b 16 h after c2; c6 restores d 10 h after c5; nothing restores c.
    assert_eq!(d["time_to_restore_hours"], json!({"median": 13.0}));

    // Only what ended in the range: [72, 96) holds c7 alone; [11, 13) nothing, the
    // completion at 12 having been reopened.
    let later = h.dora(72, 96).await;
    assert_eq!((&later["deployments"], &later["change_failure_rate"]), (&json!(1), &json!(0.0)));
    let none = h.dora(11, 13).await;
    assert_eq!((&none["deployments"], &none["change_failure_rate"]), (&json!(0), &Value::Null));
    assert_eq!(none["lead_time_hours"], json!({"median": null, "p90": null}));
}

#[tokio::test]
async fn bad_ranges_are_refused_and_outsiders_see_nothing() {
    let h = History::new().await;
    let s = &h.s;
    for (q, field) in [
        ("from=yesterday", "from"),
        ("to=2027-02-30T00:00:00Z", "to"),
        ("from=2027-03-02T00:00:00Z&to=2027-03-01T00:00:00Z", "to"),
        ("from=2020-01-01T00:00:00Z", "from"),
    ] {
        let r = s.get("vic", &format!("/ws/acme/metrics/dora?{q}")).await;
        r.refused(422, "validation_failed");
        assert!(r.body["error"]["details"]["fields"][field].is_string(), "{q}: {}", r.body);
    }
    s.get("outsider", "/ws/acme/metrics/dora").await.refused(404, "not_found");
    let d = s.get("vic", "/ws/acme/metrics/dora").await.expect(200);
    assert_eq!(d["deployments"], 0);
    assert_eq!(d["to"], json!("2027-03-01T00:00:00Z"), "to defaults to now");
}
