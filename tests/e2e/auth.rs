use std::collections::HashMap;

use axum::extract::Request;
use axum::middleware::Next;
use vigilo_e2e::{json, TestServer};
use vigilo_http::{AuthMode, GatewayClaims};

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let s = TestServer::start().await;
    let r = s.send(None, reqwest::Method::GET, "/workspaces", None, &[]).await;
    r.refused(401, "unauthenticated");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    for header in ["Bearer", "Bearer not.a.jwt", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Token abc"] {
        s.send(None, reqwest::Method::GET, "/workspaces", None, &[("authorization", header)])
            .await
            .refused(401, "unauthenticated");
    }
    let foreign =
        vigilo_http::auth::mint(b"some-other-secret-some-other-secret", "alice", "a@example.com", None, 4_000_000_000)
            .unwrap();
    s.send(None, reqwest::Method::GET, "/workspaces", None, &[("authorization", &format!("Bearer {foreign}"))])
        .await
        .refused(401, "unauthenticated");
    assert_eq!(s.send(None, reqwest::Method::GET, "/health", None, &[]).await.expect(200)["status"], "ok");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let s = TestServer::start().await;
    let secret = std::fs::read_to_string(s.data_dir().join("token-secret")).unwrap();
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim()).unwrap();
    let long_ago = jiff::Timestamp::now().as_second() as u64 - 3 * 24 * 3600;
    let old = vigilo_http::auth::mint(&key, "alice", "a@example.com", None, long_ago).unwrap();
    let r =
        s.send(None, reqwest::Method::GET, "/workspaces", None, &[("authorization", &format!("Bearer {old}"))]).await;
    r.refused(401, "unauthenticated");
    let fresh = vigilo_http::auth::mint(&key, "alice", "a@example.com", None, long_ago + 3 * 24 * 3600).unwrap();
    s.send(None, reqwest::Method::GET, "/workspaces", None, &[("authorization", &format!("Bearer {fresh}"))])
        .await
        .expect(200);
}

/// Stands in for the Lambda bootstrap: copies claims the authorizer verified into the
/// request, here from a test header.
async fn authorizer(mut req: Request, next: Next) -> axum::response::Response {
    if let Some(sub) = req.headers().get("x-test-verified-sub").and_then(|v| v.to_str().ok()).map(str::to_owned) {
        let claims =
            HashMap::from([("sub".to_owned(), sub.clone()), ("email".to_owned(), format!("{sub}@example.com"))]);
        req.extensions_mut().insert(GatewayClaims(claims));
    }
    next.run(req).await
}

#[tokio::test]
async fn in_gateway_mode_the_authorizers_claims_identify_the_caller() {
    let s = TestServer::start_mode(AuthMode::Gateway, |r| r.layer(axum::middleware::from_fn(authorizer))).await;
    let as_alice = [("x-test-verified-sub", "alice")];
    let w =
        s.send(None, reqwest::Method::POST, "/workspaces", Some(json!({"slug": "acme", "name": "A"})), &as_alice).await;
    assert_eq!(w.expect(201)["role"], "owner");
    let members = s.send(None, reqwest::Method::GET, "/ws/acme/members", None, &as_alice).await.expect(200);
    assert_eq!(members["items"][0]["email"], "alice@example.com");
    // A bearer token means nothing in gateway mode: only verified claims count.
    s.send(Some("alice"), reqwest::Method::GET, "/workspaces", None, &[]).await.refused(401, "unauthenticated");
}
