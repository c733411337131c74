//! What a hostile or careless user sends: texts that would break a header or a chat
//! message, lists built to tie up the CPU, stolen or guessed links, a handler that
//! panics, and values at every documented limit. Each is refused with a clear 4xx, or
//! works, and the server keeps serving.

use reqwest::Method;
use serde_json::Value;
use vigilo_app::store::WriteOp;
use vigilo_e2e::{json, normal_change, TestServer};

async fn team() -> TestServer {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("mia", "member")]).await;
    s
}

fn fields(r: &vigilo_e2e::Resp) -> &Value {
    &r.body["error"]["details"]["fields"]
}

#[tokio::test]
async fn single_line_texts_refuse_control_characters_at_the_edge() {
    let s = team().await;
    let member = json!({"email": "bob@example.com", "role": "approver", "name": "Bob\nBcc: mallory@evil.example"});
    let r = s.put("alice", "/ws/acme/members/bob", member).await;
    r.refused(422, "validation_failed");
    assert!(fields(&r)["name"].is_string(), "{}", r.body);
    let nul = json!({"email": "bob@example.com", "role": "approver", "name": "Bob\u{0}"});
    s.put("alice", "/ws/acme/members/bob", nul).await.refused(422, "validation_failed");
    let bad_mail = json!({"email": "bob@example.com\r\nBcc: m@evil.example", "role": "approver"});
    s.put("alice", "/ws/acme/members/bob", bad_mail).await.refused(422, "validation_failed");

    let mut change = normal_change("Rotate\r\nBcc: mallory@evil.example");
    let r = s.post("mia", "/ws/acme/changes", change.clone()).await;
    r.refused(422, "validation_failed");
    assert!(fields(&r)["title"].is_string());
    change["title"] = json!("Rotate \u{202E}txt.exe");
    s.post("mia", "/ws/acme/changes", change.clone()).await.refused(422, "validation_failed");
    change["title"] = json!("Rotate");
    change["description"] = json!("line one\nline two\tindented");
    let n = s.change("mia", "acme", change.clone()).await;
    s.patch("mia", &format!("/ws/acme/changes/{n}"), json!({"implementation_plan": "a\u{0}b"}))
        .await
        .refused(422, "validation_failed");

    s.patch("alice", "/ws/acme", json!({"name": "Acme\nInc"})).await.refused(422, "validation_failed");
    let freeze = json!({"name": "Year\nend", "start": "2030-12-20", "end": "2031-01-02", "scope": {"all": true}});
    s.post("alice", "/ws/acme/freeze-windows", freeze).await.refused(422, "validation_failed");
    let stages = json!([{"name": "C\nAB", "mode": "any", "approvers": {"users": ["bob"]}}]);
    let policy = json!({"name": "p", "priority": 1, "match": {}, "stages": stages});
    s.post("alice", "/ws/acme/approval-policies", policy).await.refused(422, "validation_failed");
    s.post("mia", &format!("/ws/acme/changes/{n}/tasks"), json!({"title": "back\nup"}))
        .await
        .refused(422, "validation_failed");
    s.post("mia", &format!("/ws/acme/changes/{n}/comments"), json!({"body": "looks \u{0} good"}))
        .await
        .refused(422, "validation_failed");
    s.post("mia", &format!("/ws/acme/changes/{n}/comments"), json!({"body": "looks\ngood"})).await.expect(201);
    s.act("mia", "acme", &n, "cancel", json!({"reason": "bell\u{7}"})).await.refused(422, "validation_failed");
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

/// A name claim an identity provider let a user type never reaches a header: it is
/// left out, and the server keeps serving.
#[tokio::test]
async fn a_name_claim_with_a_line_break_is_left_out() {
    let s = TestServer::start().await;
    let token = s.token_with_name("eve", "Eve\nBcc: mallory@evil.example");
    let res = reqwest::Client::new()
        .post(format!("{}/workspaces", s.base))
        .bearer_auth(&token)
        .json(&json!({"slug": "evecorp", "name": "Eve Corp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let members = s.get("eve", "/ws/evecorp/members").await.expect(200);
    assert_eq!(members["items"][0]["name"], Value::Null, "{members}");
    assert_eq!(s.get("eve", "/health").await.status, 200);
}

/// Lists far over their limit are refused on their length, before any item is looked
/// at, so they cannot tie up the server (each would take seconds if checked item by
/// item against the others).
#[tokio::test]
async fn huge_lists_are_refused_by_their_length() {
    let s = team().await;
    let rows_before = s.verify("alice", "acme").await["rows_checked"].clone();
    let many = |n: usize| (0..n).map(|i| format!("a{i}")).collect::<Vec<_>>();
    let mut change = normal_change("t");
    change["affected_assets"] = json!(many(100_000));
    let r = s.post("mia", "/ws/acme/changes", change).await;
    r.refused(422, "validation_failed");
    assert_eq!(fields(&r)["affected_assets"], "at most 100 assets");
    let mut change = normal_change("t");
    change["dependencies"] = json!((1..50_001).map(|i| format!("CHG-{i:05}")).collect::<Vec<_>>());
    s.post("mia", "/ws/acme/changes", change).await.refused(422, "validation_failed");
    let freeze = json!({"name": "f", "start": "2030-12-20", "end": "2031-01-02", "scope": {"assets": many(100_000)}});
    s.post("alice", "/ws/acme/freeze-windows", freeze).await.refused(422, "validation_failed");
    let stages = json!([{"name": "s", "mode": "any", "approvers": {"users": many(50_000)}}]);
    let policy = json!({"name": "p", "priority": 1, "match": {}, "stages": stages});
    s.post("alice", "/ws/acme/approval-policies", policy).await.refused(422, "validation_failed");
    let stages: Vec<Value> = (0..20_000)
        .map(|i| json!({"name": format!("s{i}"), "mode": "any", "approvers": {"roles": ["approver"]}}))
        .collect();
    let policy = json!({"name": "p", "priority": 1, "match": {}, "stages": stages});
    s.post("alice", "/ws/acme/approval-policies", policy).await.refused(422, "validation_failed");
    let r = s.put("alice", "/ws/acme/groups/cab", json!({"members": many(100_000)})).await;
    r.refused(422, "validation_failed");
    assert_eq!(fields(&r)["members"], "at most 500 members");
    let webhook =
        json!({"url": "https://hooks.example.com/x", "events": vec!["*"; 100_000], "secret": "0123456789abcdef"});
    s.post("alice", "/ws/acme/webhooks", webhook).await.refused(422, "validation_failed");
    assert_eq!(s.verify("alice", "acme").await["rows_checked"], rows_before, "nothing was written");
}

/// A panic in a handler ends that request alone: it is answered 500 in the error shape
/// and the server goes on serving.
#[tokio::test]
async fn a_panicking_handler_ends_only_its_own_request() {
    let s = team().await;
    let _rival = s.before_next_write(|_| async { panic!("injected fault") });
    let r = s.post("mia", "/ws/acme/changes", normal_change("t")).await;
    r.refused(500, "internal");
    assert!(!r.body.to_string().contains("injected"), "the cause stays in the log: {}", r.body);
    assert_eq!(s.get("mia", "/health").await.status, 200);
    let n = s.change("mia", "acme", normal_change("after the panic")).await;
    assert_eq!(n, "CHG-00002", "the next request takes the next number");
    // The panicked request wrote nothing but the void of the number it had taken, so
    // the numbers have no gap and the audit log says why.
    let mut voided = s.get("mia", "/ws/acme/changes/CHG-00001").await;
    for _ in 0..100 {
        if voided.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        voided = s.get("mia", "/ws/acme/changes/CHG-00001").await;
    }
    let voided = voided.expect(200);
    assert_eq!(
        (voided["status"].as_str(), voided["title"].as_str()),
        (Some("cancelled"), Some("CHG-00001 was not used"))
    );
    let activity = s.get("mia", "/ws/acme/changes/CHG-00001/activity").await.expect(200);
    assert_eq!(activity["items"][0]["action"], "change.void");
    assert_eq!(activity["items"][0]["metadata"]["reason"], "the request failed before committing");
    let list = s.get("mia", "/ws/acme/changes").await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

/// Titles reach Slack as typed: `<!channel>` pings nobody and a `<url|text>` link
/// shows as text.
#[tokio::test]
async fn chat_notices_escape_slack_markup_in_titles() {
    let s = team().await;
    let n = s.change("mia", "acme", normal_change("<!channel> <https://evil.example|Approve here>")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let chat = s
        .outbox()
        .into_iter()
        .find(|(name, text)| name.ends_with(".json") && text.contains("\"bob\""))
        .expect("bob's chat message")
        .1;
    let msg: Value = serde_json::from_str(&chat).unwrap();
    for text in [&msg["text"], &msg["blocks"][0]["text"]["text"]] {
        let text = text.as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt; &lt;https://evil.example|Approve here&gt;"), "{text}");
        assert!(!text.contains("<!channel>") && !text.contains("<https://"), "{text}");
    }
}

/// A notice whose email cannot be built (an address stored before the checks held)
/// is never dropped: it stays in the outbox with its error and is tried again.
#[tokio::test]
async fn a_notice_that_cannot_be_built_stays_queued_with_its_error() {
    let s = team().await;
    let ws = s.get("alice", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    let key = vigilo_app::keys::member(&ws, &vigilo_domain::ids::UserId::parse("bob").unwrap());
    let mut bob = s.table().get(&key).await.unwrap().expect("bob's member item");
    bob.data["email"] = json!("bob@@example.com");
    s.table().transact(vec![WriteOp::Put { item: bob, condition: None }]).await.unwrap();
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let queued = vigilo_app::services::notices::outbox(&s.app, &ws).await.unwrap();
    let stuck: Vec<&Value> = queued.iter().filter(|p| p["notice"]["recipient"] == "bob").collect();
    assert_eq!(stuck.len(), 1, "{queued:?}");
    assert_eq!(stuck[0]["email_sent"], false);
    assert_eq!(stuck[0]["chat_sent"], true, "the chat message went out");
    assert_eq!(stuck[0]["attempts"], 1);
    assert!(stuck[0]["last_error"].as_str().unwrap().starts_with("email:"), "{}", stuck[0]);
}

/// Bob's decision token, from the reply address of his notice.
fn bob_token(s: &TestServer) -> String {
    let mail =
        s.outbox().into_iter().find(|(n, t)| n.ends_with(".eml") && t.contains("To: bob@example.com")).unwrap().1;
    let line = mail.lines().find(|l| l.starts_with("Reply-To:")).unwrap().to_owned();
    line[line.find("r+").unwrap() + 2..line.find('@').unwrap()].to_owned()
}

/// A link is its approver's alone: a request carrying someone else's valid token is
/// refused (and audited), even though the link itself is good.
#[tokio::test]
async fn a_link_used_while_signed_in_as_someone_else_decides_nothing() {
    let s = team().await;
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let token = bob_token(&s);
    let path = format!("/a/{token}");
    let r = s.send(Some("mia"), Method::POST, &path, Some(json!({"decision": "approve"})), &[]).await;
    r.refused(403, "link_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "wrong_sender");
    let refusals = s.get("alice", "/ws/acme/audit?action=decision_link.refuse").await.expect(200);
    assert_eq!(refusals["items"][0]["metadata"]["reason"], "wrong_sender");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
    let r = s.send(Some("bob"), Method::POST, &path, Some(json!({"decision": "approve"})), &[]).await;
    assert_eq!(r.expect(200)["change"]["status"], "approved", "the approver's own token is fine");
}

/// Refused attempts are braked per source: after twenty in ten minutes, the source's
/// attempts are answered 429 without being checked.
#[tokio::test]
async fn refused_link_attempts_are_rate_limited_per_source() {
    let s = team().await;
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    for i in 0..vigilo_app::services::attempts::REFUSALS_MAX {
        let guess = format!("{i:020}-0011223344556677");
        let r = s.send(None, Method::POST, &format!("/a/{guess}"), Some(json!({"decision": "approve"})), &[]).await;
        r.refused(403, "link_refused");
    }
    let guess = "ffffffffffffffffffff-0011223344556677";
    let r = s.send(None, Method::POST, &format!("/a/{guess}"), Some(json!({"decision": "approve"})), &[]).await;
    r.refused(429, "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
    let page = s.send(None, Method::GET, &format!("/a/{}", bob_token(&s)), None, &[]).await;
    page.refused(429, "rate_limited");
    assert_eq!(s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200)["status"], "review");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = team().await;
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let json_answer = s.get("mia", "/ws/acme/changes").await;
    let error = s.get("mia", "/ws/nowhere/changes").await;
    let page = s.send(None, Method::GET, &format!("/a/{}", bob_token(&s)), None, &[]).await;
    for r in [&json_answer, &error, &page] {
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["x-frame-options"], "DENY");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
        assert_eq!(r.headers["cache-control"], "no-store");
        assert!(r.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    }
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("form-action 'self'"));
}

/// `conflicts` is a list in every answer about one change.
#[tokio::test]
async fn every_answer_about_one_change_lists_its_conflicts() {
    let s = team().await;
    let created = s.post("mia", "/ws/acme/changes", normal_change("a")).await.expect(201);
    assert_eq!(created["conflicts"], json!([]));
    let other = s.change("mia", "acme", normal_change("b")).await;
    let n = created["number"].as_str().unwrap();
    let submitted = s.act("mia", "acme", n, "submit", json!({})).await.expect(200);
    assert_eq!(submitted["conflicts"][0]["number"], other, "{submitted}");
    let approved = s.act("bob", "acme", n, "approve", json!({})).await.expect(200);
    assert_eq!(approved["conflicts"][0]["number"], other);
    let cancelled = s.act("mia", "acme", n, "cancel", json!({})).await.expect(200);
    assert_eq!(cancelled["conflicts"], json!([]), "a cancelled change holds no window");
}

/// A valid request never fails for size on any backend: a change at every limit
/// (texts of 4-byte characters, a hundred long assets, fifty full custom fields),
/// edited in full, reads back and verifies exactly as sent.
#[tokio::test]
async fn a_change_at_every_limit_works_and_reads_back_as_sent() {
    let s = team().await;
    let text = |c: &str| c.repeat(vigilo_domain::change::TEXT_MAX);
    let assets: Vec<String> = (0..100).map(|i| format!("{i:03}{}", "ä".repeat(197))).collect();
    let custom: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("{i:02}{}", "k".repeat(98)), json!("€".repeat(660)))).collect();
    let mut body = normal_change(&"€".repeat(200));
    for f in ["description", "implementation_plan", "rollback_plan", "test_plan"] {
        body[f] = json!(text("€"));
    }
    body["affected_assets"] = json!(assets);
    body["custom_fields"] = Value::Object(custom);
    let created = s.post("mia", "/ws/acme/changes", body.clone()).await.expect(201);
    let n = created["number"].as_str().unwrap().to_owned();
    let path = format!("/ws/acme/changes/{n}");
    let edit = json!({
        "title": "😀".repeat(200),
        "description": text("😀"), "implementation_plan": text("😀"),
        "rollback_plan": text("😀"), "test_plan": text("😀"),
    });
    let edited = s.patch("mia", &path, edit.clone()).await.expect(200);
    let read = s.get("mia", &path).await.expect(200);
    for f in ["title", "description", "implementation_plan", "rollback_plan", "test_plan"] {
        assert_eq!(read[f], edit[f], "{f}");
        assert_eq!(edited[f], edit[f], "{f}");
    }
    assert_eq!(read["affected_assets"], body["affected_assets"]);
    assert_eq!(read["custom_fields"], body["custom_fields"]);
    let comment = json!({"body": "😀".repeat(10_000)});
    s.post("bob", &format!("{path}/comments"), comment).await.expect(201);
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    s.act("bob", "acme", &n, "approve", json!({"comment": "🙂".repeat(5_000)})).await.expect(200);
    let activity = s.get("alice", &format!("{path}/activity")).await.expect(200);
    let update = activity["items"].as_array().unwrap().iter().find(|r| r["action"] == "change.update").unwrap();
    assert_eq!(update["new_value"]["description"], edit["description"]);
    assert_eq!(update["old_value"]["description"], body["description"]);
    let report = s.verify("alice", "acme").await;
    assert_eq!(report["ok"], true, "every row hashes as it was written: {report}");
}

/// Custom fields hold what every store keeps exactly; the rest is refused on every
/// backend.
#[tokio::test]
async fn custom_fields_hold_only_values_every_store_keeps() {
    let s = team().await;
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!({"x": deep});
    }
    for bad in [json!(1e308), json!(-1e300), json!(1e-200), deep, json!("bell\u{7}")] {
        let mut body = normal_change("t");
        body["custom_fields"] = json!({ "v": bad });
        let r = s.post("mia", "/ws/acme/changes", body).await;
        r.refused(422, "validation_failed");
        assert!(fields(&r)["custom_fields"].is_string(), "{}", r.body);
    }
    let good = json!({"big": 1e125, "small": 1e-130, "ratio": 1.618033988749895, "n": -12345678901234i64,
                      "max": u64::MAX, "zero": 0, "list": [1, "two", null, true], "nested": {"a": {"b": [0.5]}}});
    let mut body = normal_change("t");
    body["custom_fields"] = good.clone();
    let n = s.change("mia", "acme", body).await;
    let read = s.get("mia", &format!("/ws/acme/changes/{n}")).await.expect(200);
    assert_eq!(read["custom_fields"], good);
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

/// Captures what the server logs on this test's thread (the test runtime runs the
/// server on the same thread).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A link whose id part was tampered with names no grant, so no workspace can audit
/// it: it is logged as a warning with the request's id.
#[tokio::test]
async fn a_tampered_link_is_logged_with_its_request_id() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = team().await;
    let n = s.change("mia", "acme", normal_change("t")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let mut token = bob_token(&s);
    token.replace_range(0..1, if &token[0..1] == "a" { "b" } else { "a" });
    let headers = [("x-request-id", "req-tampered-0001")];
    let r = s.send(None, Method::POST, &format!("/a/{token}"), Some(json!({"decision": "approve"})), &headers).await;
    r.refused(403, "link_refused");
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text.lines().find(|l| l.contains("naming no grant")).unwrap_or_else(|| panic!("no warning in: {text}"));
    assert!(line.contains("WARN") && line.contains("req-tampered-0001"), "{line}");
}

/// Times at the ends of what RFC 3339 can say reach every gate and calculation that
/// adds to or compares them (lead time, freezes, conflicts, risk, reviews): each is
/// accepted or refused with a 4xx, never a 500.
#[tokio::test]
async fn extreme_times_are_accepted_or_refused_never_a_500() {
    let s = team().await;
    let edges = [
        ("0000-01-01T00:00:00Z", "0000-01-01T01:00:00Z"),
        ("9999-12-31T22:00:00Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999999Z"),
        ("2030-01-01T00:00:00+23:59", "2030-01-01T00:00:00-23:59"),
    ];
    for (i, (start, end)) in edges.iter().enumerate() {
        let freeze = json!({"name": format!("f{i}"), "start": start, "end": end, "scope": {"all": true}});
        let r = s.post("alice", "/ws/acme/freeze-windows", freeze).await;
        assert!(r.status < 500, "freeze {start}..{end}: {}", r.body);
        let probe = format!("/ws/acme/conflicts?assets=db&start={start}&end={end}").replace('+', "%2B");
        assert!(s.get("mia", &probe).await.status < 500, "conflict probe {start}..{end}");
        for kind in ["normal", "emergency", "standard"] {
            let mut body = normal_change(&format!("edge {i} {kind}"));
            body["change_type"] = json!(kind);
            body["planned_start"] = json!(start);
            body["planned_end"] = json!(end);
            let r = s.post("mia", "/ws/acme/changes", body).await;
            assert!(r.status < 500, "create {start}..{end}: {}", r.body);
            if r.status != 201 {
                continue;
            }
            let n = r.body["number"].as_str().unwrap().to_owned();
            let path = format!("/ws/acme/changes/{n}");
            assert!(s.get("mia", &path).await.status < 500);
            assert!(s.get("mia", &format!("{path}/similar")).await.status < 500);
            let risk = json!({"answers": {"asset_criticality": "high"}});
            assert!(s.put("mia", &format!("{path}/risk-assessment"), risk).await.status < 500);
            for (who, action, body) in [
                ("mia", "submit", json!({})),
                ("bob", "approve", json!({})),
                ("mia", "schedule", json!({"override_freeze": true, "reason": "edge"})),
                ("alice", "schedule", json!({"override_freeze": true, "reason": "edge"})),
                ("alice", "start", json!({"override_freeze": true, "reason": "edge"})),
                ("mia", "complete", json!({"closure_code": "successful", "closure_notes": "ok"})),
            ] {
                let r = s.act(who, "acme", &n, action, body).await;
                assert!(r.status < 500, "{action} on {start}..{end}: {}", r.body);
            }
        }
    }
    assert_eq!(s.get("mia", "/health").await.status, 200);
    assert_eq!(s.verify("alice", "acme").await["ok"], true);
}

/// A process that dies after taking a change number and before filing the change (or
/// its void) leaves a gap; the number sweep closes it once the grace period is over,
/// and leaves numbers that are only slow alone.
#[tokio::test]
async fn a_number_taken_by_a_process_that_died_is_voided_by_the_sweep() {
    use vigilo_app::clock::ManualClock;
    let clock = std::sync::Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let s = TestServer::start_with_clock(clock.clone()).await;
    s.workspace("olga", "acme", &[("mia", "member")]).await;
    s.change("mia", "acme", normal_change("first")).await;
    let ws = s.get("olga", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    // The dead process: it took CHG-00002 and nothing more.
    assert_eq!(s.table().add(&vigilo_app::keys::change_counter(&ws), "last", 1).await.unwrap(), 2);
    s.change("mia", "acme", normal_change("third")).await;

    let first = s.app.void_gaps(&ws).await.unwrap();
    assert_eq!((first.checked, first.voided, first.waiting), (3, 0, 1), "{first:?}");
    s.get("mia", "/ws/acme/changes/CHG-00002").await.refused(404, "not_found");
    clock.advance(vigilo_app::services::numbers::GRACE - jiff::SignedDuration::from_secs(1));
    let early = s.app.void_gaps(&ws).await.unwrap();
    assert_eq!((early.checked, early.voided, early.waiting), (1, 0, 1), "only the missing number again");
    clock.advance(jiff::SignedDuration::from_secs(1));
    let swept = s.app.void_all_gaps().await.unwrap();
    assert_eq!((swept.voided, swept.waiting), (1, 0), "{swept:?}");
    let voided = s.get("mia", "/ws/acme/changes/CHG-00002").await.expect(200);
    assert_eq!((voided["status"].as_str(), voided["author"].as_str()), (Some("cancelled"), Some("vigilo:unknown")));
    let activity = s.get("olga", "/ws/acme/changes/CHG-00002/activity").await.expect(200);
    assert_eq!(activity["items"][0]["action"], "change.void");
    assert_eq!(activity["items"][0]["metadata"]["requested_by"], json!(null));
    // Nothing left to do, and the chain still verifies.
    let again = s.app.void_gaps(&ws).await.unwrap();
    assert_eq!((again.checked, again.voided), (0, 0));
    assert_eq!(s.verify("olga", "acme").await["ok"], true);
}
