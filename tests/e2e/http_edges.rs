use reqwest::Method;
use vigilo_e2e::{json, TestServer};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_error_shape() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    s.get("alice", "/nowhere").await.refused(404, "not_found");
    s.get("alice", "/ws/acme/changes/CHG-00001/approvals/extra").await.refused(404, "not_found");
    s.send(Some("alice"), Method::DELETE, "/health", None, &[]).await.refused(405, "method_not_allowed");
    s.send(Some("alice"), Method::PUT, "/workspaces", Some(json!({})), &[]).await.refused(405, "method_not_allowed");
    s.get("alice", "/ws/acme/changes/CHG-00001/submit").await.refused(405, "method_not_allowed");
}

#[tokio::test]
async fn malformed_bodies_are_400_never_500() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    for body in ["{", "[1,2]", "\"text\"", "null", "{\"title\": }", "\u{0}"] {
        s.raw(Some("alice"), Method::POST, "/ws/acme/changes", body).await.refused(400, "bad_request");
    }
    s.raw(Some("alice"), Method::POST, "/workspaces", "{\"slug\": \"x\", \"name\": 1}")
        .await
        .refused(400, "bad_request");
    s.raw(Some("alice"), Method::POST, "/ws/acme/changes/CHG-00001/submit", "{oops").await.refused(400, "bad_request");
    let n = s.change("alice", "acme", json!({"title": "t"})).await;
    s.act("alice", "acme", &n, "cancel", json!({"reason": 5})).await.refused(400, "bad_request");
    s.act("alice", "acme", &n, "cancel", json!({"why": "x"})).await.refused(400, "bad_request");
}

#[tokio::test]
async fn oversized_input_is_refused_cleanly() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    let huge = json!({"title": "t", "description": "x".repeat(3 * 1024 * 1024)});
    let r = s.post("alice", "/ws/acme/changes", huge).await;
    r.refused(413, "payload_too_large");
    let long_key = "k".repeat(300);
    let r = s
        .send(
            Some("alice"),
            Method::POST,
            "/ws/acme/changes",
            Some(json!({"title": "t"})),
            &[("idempotency-key", &long_key)],
        )
        .await;
    r.refused(400, "bad_request");
    let reason = json!({"reason": "r".repeat(5001)});
    let n = s.change("alice", "acme", json!({"title": "t"})).await;
    s.act("alice", "acme", &n, "cancel", reason).await.refused(422, "validation_failed");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = TestServer::start().await;
    let r = s.send(None, Method::GET, "/health", None, &[]).await;
    assert!(r.headers.get("x-request-id").is_some());
    let r = s.send(None, Method::GET, "/health", None, &[("x-request-id", "trace-me")]).await;
    assert_eq!(r.headers["x-request-id"], "trace-me");
}

/// Hostile input on every route: whatever comes back, it is never a 5xx.
#[tokio::test]
async fn no_input_produces_a_server_error() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver")]).await;
    let n = s.change("alice", "acme", json!({"title": "t"})).await;
    let bodies: Vec<&'static str> = vec![
        "",
        "{}",
        "[]",
        "null",
        "1e400",
        "{\"title\": 1e400}",
        "{\"title\": null, \"change_type\": null}",
        "{\"min_lead_time_hours\": 99999999999999999999}",
        "{\"min_lead_time_hours\": -1, \"audit_retention_days\": -1}",
        "{\"affected_assets\": [\"\\u0000\", \"ok\"], \"assignee\": \"a#b\"}",
        "{\"planned_start\": \"9999-99-99T99:99:99Z\", \"planned_end\": \"-001-01-01T00:00:00Z\"}",
        "{\"custom_fields\": {\"\": {\"deep\": [[[[[[[[[[1]]]]]]]]]]}}}",
        "{\"slug\": \"\\ud800\", \"name\": \"\\u0000\"}",
        "{\"email\": \"a@b.c\", \"role\": \"owner\", \"members\": [\"\\u0001\"]}",
        "{\"delegate\": \"bob\", \"from\": \"2026\", \"until\": 5}",
        "{\"closure_code\": [], \"reason\": {}, \"comment\": 5}",
        "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}}}",
        "{\"name\": \"w\", \"start\": \"2026-02-30\", \"end\": \"2026-03-08T02:30\", \"scope\": {\"all\": true}}",
        "{\"name\": \"p\", \"priority\": -9999999999, \"stages\": [{\"mode\": \"quorum\", \"quorum\": 0}]}",
        "{\"title\": \"t\", \"predecessors\": [\"T001\", \"T001\"], \"gate\": \"start\"}",
        "{\"answers\": {\"asset_criticality\": null, \"tested\": \"yes\"}}",
        "{\"body\": \"\\u0000\"}",
    ];
    let paths = [
        "/workspaces".to_owned(),
        "/ws/acme".into(),
        "/ws/acme/members".into(),
        "/ws/acme/members/bob".into(),
        "/ws/acme/members/%00".into(),
        "/ws/acme/members/bob/delegate".into(),
        "/ws/acme/groups/ecab".into(),
        "/ws/acme/groups/%F0%9F%92%A5".into(),
        "/ws/acme/changes".into(),
        format!("/ws/acme/changes/{n}"),
        format!("/ws/acme/changes/{n}/submit"),
        format!("/ws/acme/changes/{n}/complete"),
        format!("/ws/acme/changes/{n}/approvals"),
        format!("/ws/acme/changes/{n}/activity?limit=-1&cursor=%FF"),
        "/ws/acme/changes/CHG-99999999999999999999".into(),
        "/ws/acme/changes?limit=99999999999999999999&asset=%00".into(),
        "/ws/acme/approvals?cursor=eyJxIjoiIiwicCI6MX0".into(),
        "/ws/acme/audit?from=%ZZ&to=2026-13-40T00:00:00Z".into(),
        "/ws/acme/audit/..%2F..%2Fetc".into(),
        "/ws/acme/audit/verify".into(),
        "/ws/%E2%80%AE/changes".into(),
        "/ws/acme/freeze-windows?current=maybe".into(),
        "/ws/acme/freeze-windows/%00".into(),
        "/ws/acme/approval-policies".into(),
        "/ws/acme/approval-policies/nope".into(),
        format!("/ws/acme/changes/{n}/tasks"),
        format!("/ws/acme/changes/{n}/tasks/generate"),
        format!("/ws/acme/changes/{n}/tasks/T001/done"),
        format!("/ws/acme/changes/{n}/comments?limit=0"),
        format!("/ws/acme/changes/{n}/conflicts"),
        format!("/ws/acme/changes/{n}/conflicts/CHG-00000/accept"),
        "/ws/acme/conflicts?assets=%00,a&start=2026-01-01T00:00:00Z&end=2026-01-01T00:00:00Z".into(),
        format!("/ws/acme/changes/{n}/similar"),
        format!("/ws/acme/changes/{n}/risk-assessment"),
    ];
    let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    let mut refused = std::collections::BTreeSet::new();
    for path in &paths {
        for method in &methods {
            for body in &bodies {
                let r = s.raw(Some("alice"), method.clone(), path, body).await;
                assert!(r.status < 500, "{method} {path} with {body:?} gave {}: {}", r.status, r.body);
                if r.status >= 400 {
                    // Every refusal is in the error shape, with a code a client can act on.
                    assert!(
                        !r.code().is_empty(),
                        "{method} {path} with {body:?} gave {} without a code: {}",
                        r.status,
                        r.body
                    );
                    refused.insert(r.code().to_owned());
                }
            }
        }
    }
    for code in ["bad_request", "not_found", "method_not_allowed"] {
        assert!(refused.contains(code), "no input was refused with {code}: {refused:?}");
    }
    assert_eq!(s.get("alice", "/health").await.status, 200, "the server still answers");
    assert_eq!(s.verify("alice", "acme").await["ok"], true, "whatever was accepted kept the chain intact");
}
