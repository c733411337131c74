//! Email replies: an approver answers a notice from their inbox. Each kind of bad
//! reply is refused and audited with its reason; a good one decides once.

use serde_json::Value;
use vigilo_app::services::links::LinkOutcome;
use vigilo_app::RequestInfo;
use vigilo_domain::link::Refusal;
use vigilo_e2e::{json, normal_change, TestServer, REPLY_DOMAIN};

const PASS: &str = "amazonses.com; spf=pass smtp.mailfrom=example.com; dkim=pass header.i=@example.com; dmarc=pass header.from=example.com";

fn reply(from: &str, token: &str, auth: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Vigilo <r+{token}@{REPLY_DOMAIN}>\r\nSubject: Re: Approval requested\r\n\
         Authentication-Results: {auth}\r\nMessage-ID: <{}@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
    .into_bytes()
}

async fn setup() -> (TestServer, String) {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("carol", "approver"), ("mia", "member")]).await;
    let n = s.change("mia", "acme", normal_change("Rotate cert")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    (s, n)
}

fn token_for(s: &TestServer, who: &str) -> String {
    let to = format!("To: {who}@example.com");
    let mail = s.outbox().into_iter().find(|(n, t)| n.ends_with(".eml") && t.contains(&to)).unwrap().1;
    let line = mail.lines().find(|l| l.starts_with("Reply-To:")).unwrap().to_owned();
    line[line.find("r+").unwrap() + 2..line.find('@').unwrap()].to_owned()
}

async fn receive(s: &TestServer, raw: Vec<u8>) -> LinkOutcome {
    s.app.receive_reply(&raw, None, RequestInfo::default()).await.unwrap()
}

async fn refusals(s: &TestServer) -> Vec<Value> {
    s.get("alice", "/ws/acme/audit?action=decision_link.refuse").await.expect(200)["items"].as_array().unwrap().clone()
}

fn refused(o: LinkOutcome) -> Refusal {
    match o {
        LinkOutcome::Refused(r) => r,
        LinkOutcome::Decided { change, .. } => panic!("decided: {}", change.status),
    }
}

#[tokio::test]
async fn a_reply_decides_with_its_comment_and_ignores_the_quote() {
    let (s, n) = setup().await;
    let token = token_for(&s, "bob");
    let body = "Reject: not during the sale\nlet's do it next week\n\nOn Mon, 1 Dec 2026, Vigilo wrote:\n> approve\n";
    match receive(&s, reply("Bob <BOB@example.com>", &token, PASS, body)).await {
        LinkOutcome::Decided { change, decision } => {
            assert_eq!((decision.as_str(), change.status.as_str()), ("reject", "rejected"))
        }
        LinkOutcome::Refused(r) => panic!("refused: {r:?}"),
    }
    let rows = s.get("alice", "/ws/acme/audit?action=approval_step.reject").await.expect(200);
    let row = &rows["items"][0];
    assert_eq!((row["actor"].as_str(), row["metadata"]["channel"].as_str()), (Some("bob"), Some("email")));
    let steps = s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    assert_eq!(steps["items"][0]["decisions"][0]["comment"], "not during the sale\nlet's do it next week");
    // The same reply again is a replay of a used token.
    let again = receive(&s, reply("bob@example.com", &token, PASS, "approve")).await;
    assert_eq!(refused(again), Refusal::Used);
    assert_eq!(refusals(&s).await[0]["metadata"]["reason"], "used");
}

#[tokio::test]
async fn bad_replies_are_refused_and_audited_each_with_its_reason() {
    let (s, n) = setup().await;
    let bob = token_for(&s, "bob");
    let carol = token_for(&s, "carol");
    // A forged From: carol's link answered from mallory's address (her own domain's
    // mail checks pass, but she is not carol).
    let r = receive(&s, reply("Carol <mallory@example.com>", &carol, PASS, "approve")).await;
    assert_eq!(refused(r), Refusal::WrongSender);
    // A failed DKIM verdict, and a message with no verdicts at all.
    let r =
        receive(&s, reply("bob@example.com", &bob, "amazonses.com; spf=pass; dkim=fail; dmarc=fail", "approve")).await;
    assert_eq!(refused(r), Refusal::Unauthenticated);
    let r = receive(&s, reply("bob@example.com", &bob, "none", "approve")).await;
    assert_eq!(refused(r), Refusal::Unauthenticated);
    // No decision on the first line.
    let r = receive(&s, reply("bob@example.com", &bob, PASS, "> approve\nsee above")).await;
    assert_eq!(refused(r), Refusal::NoDecision);
    let reasons: Vec<String> =
        refusals(&s).await.iter().map(|r| r["metadata"]["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["no_decision", "unauthenticated", "unauthenticated", "wrong_sender"]);
    assert_eq!(refusals(&s).await[3]["metadata"]["sender"], "mallory@example.com");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
    // bob decides; carol's token is now for a step that is closed.
    assert!(matches!(receive(&s, reply("bob@example.com", &bob, PASS, "approved")).await, LinkOutcome::Decided { .. }));
    let r = receive(&s, reply("carol@example.com", &carol, PASS, "approve")).await;
    assert_eq!(refused(r), Refusal::StepClosed);
    // A token with a tampered MAC, and one we never issued.
    let mut forged = carol.clone();
    forged.replace_range(30..31, if &carol[30..31] == "a" { "b" } else { "a" });
    assert_eq!(refused(receive(&s, reply("carol@example.com", &forged, PASS, "approve")).await), Refusal::Forged);
    let unknown = "0123456789abcdef0123-0123456789abcdef";
    assert_eq!(refused(receive(&s, reply("carol@example.com", unknown, PASS, "approve")).await), Refusal::Forged);
    assert_eq!(refusals(&s).await[0]["metadata"]["reason"], "forged", "a tampered grant of ours is audited");
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

#[tokio::test]
async fn an_expired_token_in_a_reply_is_refused() {
    let clock = std::sync::Arc::new(vigilo_app::clock::ManualClock::new("2026-12-01T08:00:00Z".parse().unwrap()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("mia", "member")]).await;
    let mut body = normal_change("t");
    body["planned_start"] = json!("2026-12-20T09:00:00Z");
    body["planned_end"] = json!("2026-12-20T10:00:00Z");
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let token = token_for(&s, "bob");
    clock.advance(jiff::SignedDuration::from_hours(24 * 8));
    assert_eq!(refused(receive(&s, reply("bob@example.com", &token, PASS, "approve")).await), Refusal::Expired);
    assert_eq!(refusals(&s).await[0]["metadata"]["reason"], "expired");
}

/// Every token `who` was sent, oldest first.
fn tokens_for(s: &TestServer, who: &str) -> Vec<String> {
    let to = format!("To: {who}@example.com");
    s.outbox()
        .into_iter()
        .filter(|(n, t)| n.ends_with(".eml") && t.contains(&to) && t.contains("Reply-To:"))
        .map(|(_, mail)| {
            let line = mail.lines().find(|l| l.starts_with("Reply-To:")).unwrap().to_owned();
            line[line.find("r+").unwrap() + 2..line.find('@').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_token_of_another_step_or_round_decides_nothing() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("carol", "approver"), ("mia", "member")]).await;
    // Two stages, bob eligible in both: his stage-one token must not decide stage two.
    let stages = json!([
        {"name": "peers", "mode": "any", "approvers": {"users": ["bob", "carol"]}},
        {"name": "owner", "mode": "any", "approvers": {"users": ["bob"]}}
    ]);
    let policy = json!({"name": "two stages", "priority": 1, "match": {}, "stages": stages});
    s.post("alice", "/ws/acme/approval-policies", policy).await.expect(201);
    let n = s.change("mia", "acme", normal_change("Rotate cert")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let first = tokens_for(&s, "bob").pop().unwrap();
    s.act("carol", "acme", &n, "approve", json!({})).await.expect(200);
    let second = tokens_for(&s, "bob").pop().unwrap();
    assert_ne!(first, second, "stage two sends a link of its own");
    assert_eq!(refused(receive(&s, reply("bob@example.com", &first, PASS, "approve")).await), Refusal::StepClosed);
    let st = s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    assert_eq!(
        (st["items"][1]["status"].as_str(), st["items"][1]["decisions"].as_array().map(Vec::len)),
        (Some("pending"), Some(0))
    );

    // A request for changes closes the round: its tokens are spent for the next one.
    s.act("bob", "acme", &n, "request-changes", json!({"comment": "add a test plan"})).await.expect(200);
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!(refused(receive(&s, reply("bob@example.com", &second, PASS, "approve")).await), Refusal::StepClosed);
    let reasons: Vec<String> =
        refusals(&s).await.iter().map(|r| r["metadata"]["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["step_closed", "step_closed"]);
    let c = s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200);
    assert_eq!((c["status"].as_str(), c["approval_round"].as_u64()), (Some("review"), Some(2)));
    // The new round's own token decides its own step.
    let third = tokens_for(&s, "bob").pop().unwrap();
    assert!(matches!(
        receive(&s, reply("bob@example.com", &third, PASS, "approve")).await,
        LinkOutcome::Decided { .. }
    ));
    let st = s.get("mia", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200);
    let decided: Vec<(u64, &str)> = st["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["decisions"].as_array().is_some_and(|d| d.iter().any(|d| d["user"] == "bob")))
        .map(|x| (x["round"].as_u64().unwrap(), x["name"].as_str().unwrap()))
        .collect();
    // Round one: his request for changes on the second stage; round two: the reply, on the first.
    assert_eq!(decided, [(1, "owner"), (2, "peers")]);
}

/// Mallory's message with a second `From: Bob` must not decide as Bob, whichever of
/// the two a parser would pick.
#[tokio::test]
async fn a_reply_with_two_from_headers_is_refused() {
    let (s, n) = setup().await;
    let bob = token_for(&s, "bob");
    // `reply` writes `From: {from}`: a line break in `from` adds the second header.
    for froms in [
        "mallory@example.com\r\nFrom: bob@example.com",
        "bob@example.com\r\nFrom: mallory@example.com",
        "bob@example.com, mallory@example.com",
    ] {
        let r = receive(&s, reply(froms, &bob, PASS, "approve")).await;
        assert_eq!(refused(r), Refusal::WrongSender, "{froms}");
    }
    assert_eq!(refusals(&s).await.len(), 3, "each is audited");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
}

/// DMARC must have passed for the domain of the `From` address itself: a pass for
/// another domain, or SPF and DKIM of some other domain, prove nothing about `From`.
#[tokio::test]
async fn a_reply_must_be_aligned_with_its_from_domain() {
    let (s, n) = setup().await;
    let bob = token_for(&s, "bob");
    for auth in [
        "mx.example.com; spf=pass; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example",
        "mx.example.com; spf=pass smtp.mailfrom=evil.example; dkim=pass header.d=evil.example; dmarc=gray",
        "mx.example.com; spf=pass; dkim=pass header.d=example.com; dmarc=pass",
    ] {
        let r = receive(&s, reply("bob@example.com", &bob, auth, "approve")).await;
        assert_eq!(refused(r), Refusal::Unauthenticated, "{auth}");
    }
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
    // Aligned DKIM where the domain publishes no DMARC policy is enough.
    let aligned = "mx.example.com; spf=pass; dkim=pass header.d=example.com; dmarc=gray";
    assert!(matches!(
        receive(&s, reply("bob@example.com", &bob, aligned, "approve")).await,
        LinkOutcome::Decided { .. }
    ));
}

/// Only whole decision words decide; anything else is refused and audited, and a
/// rejection without its reason is a refusal too (never an error that audits nothing).
#[tokio::test]
async fn only_whole_decision_words_decide_and_a_rejection_needs_its_reason() {
    let (s, n) = setup().await;
    let bob = token_for(&s, "bob");
    for body in ["approved?", "approvedly", "Approve-ish", "genehmigt"] {
        let r = receive(&s, reply("bob@example.com", &bob, PASS, body)).await;
        assert_eq!(refused(r), Refusal::NoDecision, "{body:?}");
    }
    let r = receive(&s, reply("bob@example.com", &bob, PASS, "reject\n\n> quoted")).await;
    assert_eq!(refused(r), Refusal::CommentRequired);
    let r = receive(&s, reply("bob@example.com", &bob, PASS, "reject: ok\u{7}")).await;
    assert_eq!(refused(r), Refusal::CommentInvalid);
    let reasons: Vec<String> =
        refusals(&s).await.iter().map(|r| r["metadata"]["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        reasons,
        ["comment_invalid", "comment_required", "no_decision", "no_decision", "no_decision", "no_decision"]
    );
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
    // In a German workspace the German words decide too.
    s.patch("alice", "/ws/acme", json!({"locale": "de"})).await.expect(200);
    let r = receive(&s, reply("bob@example.com", &bob, PASS, "Abgelehnt: nicht vor dem Release")).await;
    assert!(matches!(r, LinkOutcome::Decided { ref decision, .. } if decision == "reject"));
}

/// Anyone can write `From: bob@example.com`: forged replies are braked together, never
/// under Bob's address, so they cannot lock Bob out of replying.
#[tokio::test]
async fn forged_replies_in_bobs_name_do_not_brake_bobs_own() {
    let (s, n) = setup().await;
    let bob = token_for(&s, "bob");
    let forged = "mx.example.com; spf=fail; dkim=fail; dmarc=fail header.from=example.com";
    let limit = vigilo_app::services::attempts::REFUSALS_MAX;
    for _ in 0..limit {
        assert_eq!(
            refused(receive(&s, reply("bob@example.com", &bob, forged, "approve")).await),
            Refusal::Unauthenticated
        );
    }
    assert_eq!(refused(receive(&s, reply("bob@example.com", &bob, forged, "approve")).await), Refusal::RateLimited);
    assert_eq!(refusals(&s).await.len(), limit, "braked attempts are not audited");
    let genuine = receive(&s, reply("bob@example.com", &bob, PASS, "approve")).await;
    assert!(matches!(genuine, LinkOutcome::Decided { .. }), "Bob's own reply still decides");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "approved");
}
