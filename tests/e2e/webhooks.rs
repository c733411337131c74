//! Webhooks: an owner subscribes a receiver; lifecycle events arrive signed, in order,
//! retried with backoff after a failure, each attempt in the delivery log. The receiver
//! here is a real HTTP server on 127.0.0.1 that checks every signature.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sha2::Sha256;
use vigilo_app::clock::ManualClock;
use vigilo_e2e::{json, normal_change, TestServer};

const SECRET: &str = "whsec-0123456789abcdef";

#[derive(Default)]
struct Receiver {
    /// Statuses to answer with, in order; 200 once they run out.
    answers: Mutex<Vec<u16>>,
    /// What arrived: event header, delivery id, body, and whether the signature held.
    got: Mutex<Vec<(String, String, Value, bool)>>,
}

fn signed_ok(headers: &HeaderMap, body: &[u8], now: i64) -> bool {
    let sig = headers.get("vigilo-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some((t, v1)) = sig.split_once(",v1=") else { return false };
    let Ok(ts) = t.trim_start_matches("t=").parse::<i64>() else { return false };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    (now - ts).abs() < 3600 * 24 * 2 && hex::decode(v1).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

async fn receiver(now: Arc<ManualClock>) -> (String, Arc<Receiver>) {
    let state = Arc::new(Receiver::default());
    let st = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (st, now) = (st.clone(), now.clone());
            async move {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let ok = signed_ok(&headers, &body, vigilo_app::Clock::now(&*now).as_second());
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                st.got.lock().unwrap().push((h("vigilo-event"), h("vigilo-delivery"), v, ok));
                let mut answers = st.answers.lock().unwrap();
                let code = if answers.is_empty() { 200 } else { answers.remove(0) };
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

#[tokio::test]
async fn subscriptions_are_the_owners_and_are_checked() {
    let s = TestServer::start().await;
    s.workspace("olga", "acme", &[("alice", "admin")]).await;
    let good = json!({"url": "https://hooks.example.com/vigilo", "events": ["change.*"], "secret": SECRET});
    s.post("alice", "/ws/acme/webhooks", good.clone()).await.refused(403, "forbidden");
    s.get("alice", "/ws/acme/webhooks").await.refused(403, "forbidden");
    let r = s.post("olga", "/ws/acme/webhooks", json!({"url": "ftp://x", "events": [], "secret": "short"})).await;
    r.refused(422, "validation_failed");
    let made = s.post("olga", "/ws/acme/webhooks", good).await.expect(201);
    assert_eq!(made["secret"], "…cdef", "the secret is never shown again");
    let listed = s.get("olga", "/ws/acme/webhooks").await.expect(200);
    assert_eq!(listed["items"][0]["secret"], "…cdef");
    let rows = s.get("olga", "/ws/acme/audit?action=webhook.create").await.expect(200);
    assert!(!rows["items"][0].to_string().contains(SECRET), "nor written to the audit log");
    let id = made["id"].as_str().unwrap();
    assert_eq!(s.delete("olga", &format!("/ws/acme/webhooks/{id}")).await.status, 204);
    s.delete("olga", &format!("/ws/acme/webhooks/{id}")).await.refused(404, "not_found");
}

#[tokio::test]
async fn events_arrive_signed_in_order_and_are_retried_with_backoff() {
    let clock = Arc::new(ManualClock::new("2026-12-01T08:00:00Z".parse::<Timestamp>().unwrap()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    s.workspace("olga", "acme", &[("bob", "approver"), ("mia", "member")]).await;
    let (url, rx) = receiver(clock.clone()).await;
    let hook = json!({"url": url, "events": ["change.submit", "change.approve", "change.schedule"], "secret": SECRET});
    let made = s.post("olga", "/ws/acme/webhooks", hook).await.expect(201);
    let id = made["id"].as_str().unwrap().to_owned();
    let mut body = normal_change("t");
    body["planned_start"] = json!("2026-12-20T09:00:00Z");
    body["planned_end"] = json!("2026-12-20T10:00:00Z");
    let n = s.change("mia", "acme", body).await;
    rx.answers.lock().unwrap().extend([500, 503]);
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    // The first attempt failed: the queue waits a minute, then two.
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(rx.got.lock().unwrap().len(), 1, "backing off: nothing sent yet");
    clock.advance(SignedDuration::from_secs(61));
    let r = s.app.dispatch_all_webhooks().await.unwrap();
    assert_eq!((r.delivered, r.failed), (0, 1));
    clock.advance(SignedDuration::from_secs(60));
    assert_eq!(s.app.dispatch_all_webhooks().await.unwrap().delivered, 0, "two minutes after the second failure");
    clock.advance(SignedDuration::from_secs(61));
    let r = s.app.dispatch_all_webhooks().await.unwrap();
    assert_eq!((r.delivered, r.failed), (2, 0), "submit, then approve, in order");
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    let got = rx.got.lock().unwrap().clone();
    let events: Vec<&str> = got.iter().map(|(e, _, _, _)| e.as_str()).collect();
    assert_eq!(events, ["change.submit", "change.submit", "change.submit", "change.approve", "change.schedule"]);
    assert!(got.iter().all(|(_, _, _, ok)| *ok), "every delivery is signed with the secret");
    let (_, delivery, body, _) = &got[3];
    assert_eq!((body["type"].as_str(), body["row"]["id"].as_str()), (Some("change.approve"), Some(delivery.as_str())));
    assert_eq!(body["row"]["actor"], "bob");
    assert!(body["row"]["hash"].as_str().is_some_and(|h| h.len() == 64), "the row as the chain has it");
    let log = s.get("olga", &format!("/ws/acme/webhooks/{id}/deliveries?limit=10")).await.expect(200);
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(
        (items[4]["ok"].as_bool(), items[4]["status"].as_u64(), items[4]["attempt"].as_u64()),
        (Some(false), Some(500), Some(1))
    );
    assert_eq!((items[3]["status"].as_u64(), items[3]["attempt"].as_u64()), (Some(503), Some(2)));
    assert_eq!((items[2]["ok"].as_bool(), items[2]["attempt"].as_u64()), (Some(true), Some(3)));
    let listed = s.get("olga", "/ws/acme/webhooks").await.expect(200);
    assert_eq!(listed["items"][0]["status"], "active");
}
