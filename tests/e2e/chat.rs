//! Slack: members link their Slack user; the approve button of a notice decides as
//! them, only with a good, fresh signature and only when pressed by that Slack user.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use vigilo_e2e::{json, normal_change, TestServer, SLACK_SECRET};

fn sign(ts: i64, body: &str, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn form(user: &str, action: &str, token: &str) -> String {
    form_with_comment(user, action, token, None)
}

/// A button press, with what the message's comment box held (Slack sends its state).
fn form_with_comment(user: &str, action: &str, token: &str, comment: Option<&str>) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": "someone"},
        "team": {"id": "T0001"},
        "state": {"values": {"vigilo_comment": {"comment": {"type": "plain_text_input", "value": comment}}}},
        "actions": [{"action_id": action, "block_id": "vigilo_decision", "value": token, "type": "button"}],
    });
    format!("payload={}", urlencode(&payload.to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn press(s: &TestServer, body: &str, ts: i64, signature: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/chat/slack/actions", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn chat_token(s: &TestServer, who: &str) -> String {
    let (_, text) = s
        .outbox()
        .into_iter()
        .find(|(n, t)| n.ends_with(".json") && t.contains(&format!("\"recipient\": \"{who}\"")))
        .expect("a chat message");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["blocks"][2]["elements"][0]["value"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn members_link_their_own_slack_user() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("mia", "member")]).await;
    let m = s.put("bob", "/ws/acme/members/bob/chat", json!({"slack_user_id": "U0BOB"})).await.expect(200);
    assert_eq!(m["slack_user_id"], "U0BOB");
    s.put("mia", "/ws/acme/members/bob/chat", json!({"slack_user_id": "U0MIA"})).await.refused(403, "forbidden");
    s.put("bob", "/ws/acme/members/bob/chat", json!({"slack_user_id": "bob"})).await.refused(422, "validation_failed");
    s.put("alice", "/ws/acme/members/bob/chat", json!({"slack_user_id": null})).await.expect(200);
    let rows = s.get("alice", "/ws/acme/audit?action=member.link_chat").await.expect(200);
    assert_eq!(rows["items"].as_array().unwrap().len(), 2);
}

/// A change in review with bob, who linked Slack user `U0BOB`, as its approver: the
/// server, the change's number and bob's chat token.
async fn submitted_with_bob_linked() -> (TestServer, String, String) {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("mia", "member")]).await;
    s.put("bob", "/ws/acme/members/bob/chat", json!({"slack_user_id": "U0BOB"})).await.expect(200);
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let token = chat_token(&s, "bob");
    (s, n, token)
}

#[tokio::test]
async fn a_signed_button_press_by_the_linked_user_approves() {
    let (s, n, token) = submitted_with_bob_linked().await;
    let now = jiff::Timestamp::now().as_second();

    // Bad, stale and missing signatures are 401 and decide nothing.
    let body = form("U0BOB", "approve", &token);
    let (status, r) = press(&s, &body, now, &sign(now, &body, "not the secret")).await;
    assert_eq!((status, r["error"]["code"].as_str()), (401, Some("unauthenticated")));
    let stale = now - 6 * 60;
    assert_eq!(press(&s, &body, stale, &sign(stale, &body, SLACK_SECRET)).await.0, 401);
    assert_eq!(press(&s, &body, now, "").await.0, 401);
    let tampered = form("U0BOB", "approve", &token).replace("U0BOB", "U0EVE");
    assert_eq!(press(&s, &tampered, now, &sign(now, &body, SLACK_SECRET)).await.0, 401, "body changed after signing");
    assert!(s.get("alice", "/ws/acme/audit?action=decision_link.refuse").await.expect(200)["items"]
        .as_array()
        .unwrap()
        .is_empty());

    // Someone else's Slack user pressing bob's button is refused and audited.
    let eve = form("U0EVE", "approve", &token);
    let (status, r) = press(&s, &eve, now, &sign(now, &eve, SLACK_SECRET)).await;
    assert_eq!(status, 200);
    assert!(r["text"].as_str().unwrap().contains("did not come from the approver the link was sent to"), "{r}");
    let rows = s.get("alice", "/ws/acme/audit?action=decision_link.refuse").await.expect(200);
    assert_eq!(rows["items"][0]["metadata"]["slack_user"], "U0EVE");

    // A rejection takes its reason from the comment box; an empty box records nothing.
    for empty in [None, Some("   ")] {
        let reject = form_with_comment("U0BOB", "reject", &token, empty);
        let (status, r) = press(&s, &reject, now, &sign(now, &reject, SLACK_SECRET)).await;
        assert!(status == 200 && r["text"].as_str().unwrap().contains("needs a comment"), "{r}");
    }
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");

    let (status, r) = press(&s, &body, now, &sign(now, &body, SLACK_SECRET)).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["text"].as_str().unwrap().contains("(approve) on CHG-00001 is recorded"), "{r}");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "approved");
    let rows = s.get("alice", "/ws/acme/audit?action=approval_step.approve").await.expect(200);
    assert_eq!(
        (rows["items"][0]["actor"].as_str(), rows["items"][0]["metadata"]["channel"].as_str()),
        (Some("bob"), Some("slack"))
    );
}

#[tokio::test]
async fn a_rejection_from_slack_carries_the_comment_box() {
    let (s, n, token) = submitted_with_bob_linked().await;
    let now = jiff::Timestamp::now().as_second();
    let long = "x".repeat(6000);
    let too_long = form_with_comment("U0BOB", "reject", &token, Some(&long));
    let (status, r) = press(&s, &too_long, now, &sign(now, &too_long, SLACK_SECRET)).await;
    assert!(
        status == 200 && r["text"].as_str().unwrap().starts_with("Not recorded: The comment could not be kept"),
        "{r}"
    );
    let body = form_with_comment("U0BOB", "reject", &token, Some("  not during the sale  "));
    let (status, r) = press(&s, &body, now, &sign(now, &body, SLACK_SECRET)).await;
    assert_eq!(status, 200);
    assert!(r["text"].as_str().unwrap().contains("Your decision (reject) on"), "{r}");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "rejected");
    let steps = s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    assert_eq!(steps["items"][0]["decisions"][0]["comment"], "not during the sale");
    let rows = s.get("alice", "/ws/acme/audit?action=approval_step.reject").await.expect(200);
    assert_eq!(rows["items"][0]["metadata"]["channel"], "slack");
}

/// Slack's answers read in the workspace's language, like its notices.
#[tokio::test]
async fn slack_answers_speak_the_workspace_language() {
    let (s, n, token) = submitted_with_bob_linked().await;
    s.patch("alice", "/ws/acme", json!({"locale": "de"})).await.expect(200);
    let now = jiff::Timestamp::now().as_second();
    let bare = form("U0BOB", "reject", &token);
    let (_, r) = press(&s, &bare, now, &sign(now, &bare, SLACK_SECRET)).await;
    assert!(r["text"].as_str().unwrap().starts_with("Nicht aufgezeichnet: Eine Ablehnung braucht"), "{r}");
    let body = form("U0BOB", "approve", &token);
    let (_, r) = press(&s, &body, now, &sign(now, &body, SLACK_SECRET)).await;
    let text = r["text"].as_str().unwrap();
    assert!(text.contains(&format!("(Freigabe) zu {n} ist aufgezeichnet")), "{r}");
    assert!(!text.contains("recorded"), "no English in a German answer: {text}");
}

/// A press a guard refuses is answered in the workspace's language, the reason too: in
/// a German workspace no English error message reaches Slack (the renderer's own tests
/// cover every error code's sentence).
#[tokio::test]
async fn a_refused_press_answers_in_the_workspace_language() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("carol", "approver"), ("mia", "member")]).await;
    s.patch("alice", "/ws/acme", json!({"locale": "de"})).await.expect(200);
    s.put("bob", "/ws/acme/members/bob/chat", json!({"slack_user_id": "U0BOB"})).await.expect(200);
    let mut body = normal_change("Zertifikat");
    body["risk_level"] = json!("high");
    body["rollback_plan"] = json!("Altes Zertifikat zurückspielen");
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let token = chat_token(&s, "bob");
    // bob decides in the API first: two are needed, so his step stays open.
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    let now = jiff::Timestamp::now().as_second();
    let press_body = form("U0BOB", "approve", &token);
    let (status, r) = press(&s, &press_body, now, &sign(now, &press_body, SLACK_SECRET)).await;
    let text = r["text"].as_str().unwrap();
    assert_eq!(status, 200, "{r}");
    assert!(text.starts_with("Nicht aufgezeichnet: Dieser Freigabeschritt ist nicht mehr offen"), "{text}");
    assert!(!text.contains("step") && !text.contains("recorded"), "no English: {text}");
}
