//! Notices and decision links: approvers are emailed and messaged for each pending
//! step, and decide from a link; every misuse of a link is refused and audited.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use vigilo_app::clock::ManualClock;
use vigilo_e2e::{json, normal_change, TestServer, REPLY_DOMAIN};

async fn team(s: &TestServer) {
    s.workspace("alice", "acme", &[("bob", "approver"), ("carol", "approver"), ("mia", "member")]).await;
}

/// The outbox files of one kind addressed to `who`.
fn mail_to(s: &TestServer, who: &str) -> Vec<String> {
    let to = format!("To: {who}@example.com");
    s.outbox().into_iter().filter(|(n, t)| n.ends_with(".eml") && t.contains(&to)).map(|(_, t)| t).collect()
}

/// The decision token in an email's Reply-To address.
fn token_in(mail: &str) -> String {
    let at = format!("@{REPLY_DOMAIN}");
    let line = mail.lines().find(|l| l.starts_with("Reply-To:")).expect("a Reply-To header");
    let start = line.find("r+").expect("r+ address") + 2;
    let end = line.find(&at).expect("reply domain");
    line[start..end].to_owned()
}

async fn rows(s: &TestServer, action: &str) -> Vec<Value> {
    s.get("alice", &format!("/ws/acme/audit?action={action}")).await.expect(200)["items"].as_array().unwrap().clone()
}

async fn post_form(s: &TestServer, path: &str, form: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get_page(s: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::get(format!("{}{path}", s.base)).await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn each_approver_gets_an_email_and_a_chat_message_with_their_own_link() {
    let s = TestServer::start().await;
    team(&s).await;
    let n = s.change("mia", "acme", normal_change("Rotate <the> cert")).await;
    assert!(s.outbox().is_empty(), "a draft tells nobody");
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    for who in ["bob", "carol", "alice"] {
        let mails = mail_to(&s, who);
        assert_eq!(mails.len(), 1, "{who}");
        let m = &mails[0];
        assert!(m.contains(&format!("Subject: [acme] Approval requested: {n} Rotate <the> cert")), "{m}");
        assert!(m.contains("multipart/alternative") && m.contains("text/plain") && m.contains("text/html"));
        assert_eq!(token_in(m).len(), 37);
    }
    assert!(mail_to(&s, "mia").is_empty(), "the author is never asked");
    assert_ne!(token_in(&mail_to(&s, "bob")[0]), token_in(&mail_to(&s, "carol")[0]), "one link per approver");
    let chats: Vec<Value> = s
        .outbox()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".json"))
        .map(|(_, t)| serde_json::from_str(&t).unwrap())
        .collect();
    assert_eq!(chats.len(), 3);
    let bob = chats.iter().find(|c| c["recipient"] == "bob").unwrap();
    assert_eq!(bob["kind"], "approval.requested");
    assert_eq!(bob["blocks"][2]["elements"][0]["value"].as_str().unwrap(), token_in(&mail_to(&s, "bob")[0]));
    assert!(vigilo_app::services::notices::outbox(&s.app, &workspace_id(&s).await).await.unwrap().is_empty());
}

async fn workspace_id(s: &TestServer) -> String {
    s.get("alice", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn german_workspaces_get_german_mail() {
    let s = TestServer::start().await;
    team(&s).await;
    s.patch("alice", "/ws/acme", json!({"locale": "de", "timezone": "Europe/Berlin"})).await.expect(200);
    let mut body = normal_change("Zertifikat");
    body["planned_start"] = json!("2030-01-15T09:00:00Z");
    body["planned_end"] = json!("2030-01-15T10:00:00Z");
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let m = &mail_to(&s, "bob")[0];
    assert!(m.contains("Freigabe angefordert"), "{m}");
    let text = mail_parser::MessageParser::default().parse(m.as_bytes()).unwrap().body_text(0).unwrap().into_owned();
    assert!(
        text.contains("Geplant: 15.01.2030, 10:00 CET \u{2013} 15.01.2030, 11:00 CET"),
        "the workspace's wall clock: {text}"
    );
    assert!(text.contains("Angefordert von: mia") && text.contains("Bisherige Entscheidungen:"), "{text}");
    // The page speaks the browser's language, else the workspace's.
    let path = format!("{}/a/{}", s.base, token_in(m));
    let client = reqwest::Client::new();
    let de = client.get(&path).send().await.unwrap();
    assert_eq!(de.headers()["content-language"], "de");
    let html = de.text().await.unwrap();
    assert!(
        html.contains("lang=\"de\"") && html.contains("<dd>15.01.2030, 10:00 CET \u{2013} 15.01.2030, 11:00 CET</dd>"),
        "{html}"
    );
    assert!(html.contains(">Freigeben</button>") && html.contains("Entscheidung zu"), "{html}");
    let en = client.get(&path).header("accept-language", "en-GB,en;q=0.9").send().await.unwrap();
    let html = en.text().await.unwrap();
    assert!(
        html.contains("lang=\"en\"")
            && html.contains("<dd>Tue 15 Jan 2030, 10:00 CET \u{2013} Tue 15 Jan 2030, 11:00 CET</dd>"),
        "{html}"
    );
    let (status, html) = post_form(&s, &format!("/a/{}-0", token_in(m)), "decision=approve").await;
    assert!(status == 403 && html.contains("This link is not valid"), "no workspace known: English");
    // The form's answer reads in the language the page was shown in.
    let (status, html) = post_form(&s, &format!("/a/{}", token_in(m)), "lang=de&decision=approve").await;
    assert!(status == 200 && html.contains("Die Änderung ist jetzt freigegeben."), "{html}");
}

#[tokio::test]
async fn a_link_page_changes_nothing_and_its_form_decides_once() {
    let s = TestServer::start().await;
    team(&s).await;
    let n = s.change("mia", "acme", normal_change("Rotate cert")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let token = token_in(&mail_to(&s, "bob")[0]);
    let before = s.get("alice", "/ws/acme/audit").await.expect(200)["items"].as_array().unwrap().len();
    let (status, headers, html) = get_page(&s, &format!("/a/{token}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Rotate cert") && html.contains("name=\"decision\" value=\"approve\""));
    assert!(html.contains("<label for=\"comment\">") && html.contains("lang=\"en\""), "labelled form");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let after = s.get("alice", "/ws/acme/audit").await.expect(200)["items"].as_array().unwrap().len();
    assert_eq!(before, after, "GET writes nothing");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");

    let (status, html) = post_form(&s, &format!("/a/{token}"), "decision=approve&comment=fine+by+me").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("is recorded"));
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "approved");
    let decided = rows(&s, "approval_step.approve").await;
    assert_eq!(decided[0]["actor"], "bob");
    assert_eq!(decided[0]["metadata"]["channel"], "link");
    // The author hears about it.
    assert!(mail_to(&s, "mia").iter().any(|m| m.contains(&format!("Approved: {n}"))));

    let (status, html) = post_form(&s, &format!("/a/{token}"), "decision=approve").await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("already been used"));
    let refused = rows(&s, "decision_link.refuse").await;
    assert_eq!(refused[0]["metadata"]["reason"], "used");
    assert_eq!(refused[0]["actor"], Value::Null);
    // carol's link is for a step that is now closed.
    let carol = token_in(&mail_to(&s, "carol")[0]);
    let r =
        s.send(None, reqwest::Method::POST, &format!("/a/{carol}"), Some(json!({"decision": "approve"})), &[]).await;
    r.refused(409, "link_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "step_closed");
    assert_eq!(rows(&s, "decision_link.refuse").await[0]["metadata"]["reason"], "step_closed");
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

#[tokio::test]
async fn forged_and_malformed_tokens_decide_nothing() {
    let s = TestServer::start().await;
    team(&s).await;
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let token = token_in(&mail_to(&s, "bob")[0]);
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let (status, html) = post_form(&s, &format!("/a/{forged}"), "decision=approve").await;
    assert_eq!(status, 403, "{html}");
    assert_eq!(rows(&s, "decision_link.refuse").await[0]["metadata"]["reason"], "forged");
    for bad in ["nope", "00000000000000000000-0000000000000000", "%00"] {
        let (status, _, _) = get_page(&s, &format!("/a/{bad}")).await;
        assert_eq!(status, 403, "{bad}");
        let (status, _) = post_form(&s, &format!("/a/{bad}"), "decision=approve").await;
        assert_eq!(status, 403, "{bad}");
    }
    assert_eq!(rows(&s, "decision_link.refuse").await.len(), 1, "unknown tokens name no workspace");
    // A decision is required, and a rejection needs its comment.
    let r = s.send(None, reqwest::Method::POST, &format!("/a/{token}"), Some(json!({"decision": "maybe"})), &[]).await;
    r.refused(422, "link_refused");
    let r = s.send(None, reqwest::Method::POST, &format!("/a/{token}"), Some(json!({"decision": "reject"})), &[]).await;
    r.refused(422, "link_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "comment_required");
    assert_eq!(rows(&s, "decision_link.refuse").await[0]["metadata"]["reason"], "comment_required", "audited");
    let path = format!("/a/{token}");
    let r = s.send(None, reqwest::Method::POST, &path, Some(json!({"decision": "reject", "comment": "not now"})), &[]);
    assert_eq!(r.await.expect(200)["change"]["status"], "rejected");
    assert!(mail_to(&s, "mia").iter().any(|m| m.contains(&format!("Rejected: {n}"))));
}

#[tokio::test]
async fn an_expired_link_is_refused_and_audited() {
    let clock = Arc::new(ManualClock::new("2026-12-01T08:00:00Z".parse::<Timestamp>().unwrap()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    team(&s).await;
    let mut body = normal_change("t");
    body["planned_start"] = json!("2026-12-20T09:00:00Z");
    body["planned_end"] = json!("2026-12-20T10:00:00Z");
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let token = token_in(&mail_to(&s, "bob")[0]);
    clock.advance(SignedDuration::from_hours(24 * 7));
    let (status, _, html) = get_page(&s, &format!("/a/{token}")).await;
    assert_eq!(status, 410);
    assert!(html.contains("expired"));
    let (status, _) = post_form(&s, &format!("/a/{token}"), "decision=approve").await;
    assert_eq!(status, 410);
    let refused = rows(&s, "decision_link.refuse").await;
    assert_eq!((refused.len(), refused[0]["metadata"]["reason"].as_str()), (1, Some("expired")));
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
}

#[tokio::test]
async fn a_rollback_tells_the_author_and_the_admins() {
    let s = TestServer::start().await;
    team(&s).await;
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "schedule", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "start", json!({})).await.expect(200);
    s.act("mia", "acme", &n, "rollback", json!({"reason": "latency doubled"})).await.expect(200);
    for who in ["mia", "alice"] {
        let m = mail_to(&s, who);
        assert!(m.iter().any(|m| m.contains(&format!("Rolled back: {n}")) && m.contains("latency doubled")), "{who}");
    }
    assert!(!mail_to(&s, "bob").iter().any(|m| m.contains("Rolled back")));
}

/// A mail service that refuses while `down` is set.
struct Flaky {
    down: std::sync::atomic::AtomicBool,
    inner: vigilo_local::OutboxFolder,
}

#[async_trait::async_trait]
impl vigilo_app::notify::Mailer for Flaky {
    async fn send(&self, email: &vigilo_app::notify::OutgoingEmail) -> Result<String, String> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("mail service unavailable".into());
        }
        self.inner.send(email).await
    }
}

#[tokio::test]
async fn a_notice_that_fails_waits_and_goes_out_later_once() {
    use vigilo_app::notify::Delivery;
    let clock = Arc::new(ManualClock::new("2026-12-01T08:00:00Z".parse::<Timestamp>().unwrap()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    team(&s).await;
    let dir = s.data_dir().join("flaky-outbox");
    let flaky = Arc::new(Flaky { down: true.into(), inner: vigilo_local::OutboxFolder::new(&dir) });
    let chat = Arc::new(vigilo_local::OutboxFolder::new(&dir));
    let delivery = Delivery {
        mailer: flaky.clone(),
        chat,
        from: "vigilo@example.com".into(),
        base_url: s.base.clone(),
        reply_domain: None,
        link_secret: Arc::new(b"another key, for this app only".to_vec()),
    };
    let app = vigilo_app::Vigilo::new(s.app.table.clone(), clock.clone()).with_delivery(delivery);
    let mut body = normal_change("t");
    body["planned_start"] = json!("2026-12-20T09:00:00Z");
    body["planned_end"] = json!("2026-12-20T10:00:00Z");
    let n = s.change("mia", "acme", body).await;
    let mia = vigilo_e2e::actor("mia");
    app.act(&mia, &vigilo_e2e::slug("acme"), vigilo_e2e::number(&n), "submit", Default::default(), None).await.unwrap();
    let ws = workspace_id(&s).await;
    let waiting = vigilo_app::services::notices::outbox(&app, &ws).await.unwrap();
    assert_eq!(waiting.len(), 3, "one per approver, kept after the failure");
    assert!(waiting.iter().all(|p| p["attempts"] == 1 && p["email_sent"] == false && p["chat_sent"] == true));
    assert!(waiting[0]["last_error"].as_str().unwrap().contains("unavailable"));
    // Not due yet: nothing is tried.
    let r = app.deliver_all().await.unwrap();
    assert_eq!((r.sent, r.failed, r.waiting), (0, 0, 3));
    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(SignedDuration::from_mins(3));
    let r = app.deliver_all().await.unwrap();
    assert_eq!((r.sent, r.failed), (3, 0));
    assert!(vigilo_app::services::notices::outbox(&app, &ws).await.unwrap().is_empty());
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
    let (mails, chats) = files.iter().fold((0, 0), |(m, c), f| {
        let name = f.file_name().to_string_lossy().into_owned();
        (m + usize::from(name.ends_with(".eml")), c + usize::from(name.ends_with(".json")))
    });
    assert_eq!((mails, chats), (3, 3), "each email and chat message exactly once");
}

/// Who is asked is who may decide: a delegate whose delegation holds is emailed even
/// with a role that could not approve alone, decides in the delegator's seat from that
/// link, and a delegation to the author hands the author nothing.
#[tokio::test]
async fn a_delegate_is_asked_exactly_when_they_may_decide() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("mia", "member"), ("erin", "member")]).await;
    let hours = |h: i64| vigilo_e2e::in_hours(h);
    let window = json!({"delegate": "erin", "from": hours(-1), "until": hours(8)});
    s.put("bob", "/ws/acme/members/bob/delegate", window).await.expect(200);
    let to_author = json!({"delegate": "mia", "from": hours(-1), "until": hours(8)});
    s.put("alice", "/ws/acme/members/alice/delegate", to_author).await.expect(200);
    let n = s.change("mia", "acme", normal_change("Rotate the cert")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!(mail_to(&s, "erin").len(), 1, "erin holds bob's seat, so she is asked");
    assert!(mail_to(&s, "mia").is_empty(), "the author is asked for nothing, delegated to or not");
    let (status, _) = post_form(&s, &format!("/a/{}", token_in(&mail_to(&s, "erin")[0])), "decision=approve").await;
    assert_eq!(status, 200);
    let step = &s.get("alice", &format!("/ws/acme/changes/{n}/approvals")).await.expect(200)["items"][0];
    assert_eq!(
        (step["decisions"][0]["user"].as_str(), step["decisions"][0]["on_behalf_of"].as_str()),
        (Some("erin"), Some("bob"))
    );
}

/// The email's buttons open the page with the decision chosen and record nothing; the
/// email and the page show the whole change (author, window, assets, plans as rendered
/// Markdown, conflicts, what others decided).
#[tokio::test]
async fn the_email_buttons_choose_on_the_page_and_record_nothing() {
    let s = TestServer::start().await;
    team(&s).await;
    let mut body = normal_change("Rotate cert");
    body["description"] = json!("Swap the **leaf** certificate.\n\n<script>alert(1)</script>");
    body["test_plan"] = json!("`curl -v` against each node");
    let n = s.change("mia", "acme", body).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let mail = &mail_to(&s, "bob")[0];
    let parsed = mail_parser::MessageParser::default().parse(mail.as_bytes()).unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    assert!(html.contains("<strong>leaf</strong>") && !html.contains("<script"), "{html}");
    assert!(html.contains("?decision=approve") && html.contains("?decision=reject"), "{html}");
    let before = s.get("alice", "/ws/acme/audit").await.expect(200)["items"].as_array().unwrap().len();
    let (status, _, page) = get_page(&s, &format!("/a/{}?decision=reject", token_in(mail))).await;
    assert_eq!(status, 200);
    assert!(page.contains("You chose to reject") && page.contains("class=\"reject chosen\""), "{page}");
    assert!(page.contains("<code>curl -v</code>") && page.contains("Requested by"), "{page}");
    let after = s.get("alice", "/ws/acme/audit").await.expect(200)["items"].as_array().unwrap().len();
    assert_eq!(before, after, "opening the page records nothing");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
    let (status, _, page) = get_page(&s, &format!("/a/{}?decision=<script>", token_in(mail))).await;
    assert!(status == 200 && !page.contains("<script>") && !page.contains("You chose"), "{page}");
}
