use reqwest::Method;
use vigilo_e2e::{json, TestServer};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_error_shape() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    s.get("alice", "/nowhere").await.refused(404, "not_found");
    s.get("alice", "/ws/acme/changes/CHG-00001/approvals/extra")
        .await
        .refused(404, "not_found");
    s.send(Some("alice"), Method::DELETE, "/health", None, &[])
        .await
        .refused(405, "method_not_allowed");
    s.send(
        Some("alice"),
        Method::PUT,
        "/workspaces",
        Some(json!({})),
        &[],
    )
    .await
    .refused(405, "method_not_allowed");
    s.get("alice", "/ws/acme/changes/CHG-00001/submit")
        .await
        .refused(405, "method_not_allowed");
}

#[tokio::test]
async fn malformed_bodies_are_400_never_500() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    for body in ["{", "[1,2]", "\"text\"", "null", "{\"title\": }", "\u{0}"] {
        s.raw(Some("alice"), Method::POST, "/ws/acme/changes", body)
            .await
            .refused(400, "bad_request");
    }
    s.raw(
        Some("alice"),
        Method::POST,
        "/workspaces",
        "{\"slug\": \"x\", \"name\": 1}",
    )
    .await
    .refused(400, "bad_request");
    s.raw(
        Some("alice"),
        Method::POST,
        "/ws/acme/changes/CHG-00001/submit",
        "{oops",
    )
    .await
    .refused(400, "bad_request");
    let n = s.change("alice", "acme", json!({"title": "t"})).await;
    s.act("alice", "acme", &n, "cancel", json!({"reason": 5}))
        .await
        .refused(400, "bad_request");
    s.act("alice", "acme", &n, "cancel", json!({"why": "x"}))
        .await
        .refused(400, "bad_request");
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
    s.act("alice", "acme", &n, "cancel", reason)
        .await
        .refused(422, "validation_failed");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = TestServer::start().await;
    let r = s.send(None, Method::GET, "/health", None, &[]).await;
    assert!(r.headers.get("x-request-id").is_some());
    let r = s
        .send(
            None,
            Method::GET,
            "/health",
            None,
            &[("x-request-id", "trace-me")],
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "trace-me");
}
