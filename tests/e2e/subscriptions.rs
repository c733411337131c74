//! Asset subscriptions: who may set them, what is refused, and who hears of which
//! moves, by email and chat, in the workspace's language; a race between two members
//! subscribing to one asset keeps both.

use serde_json::Value;
use vigilo_e2e::{actor, json, normal_change, TestServer};

async fn team() -> TestServer {
    let s = TestServer::start().await;
    let people = [("alice", "admin"), ("bob", "approver"), ("mia", "member"), ("sam", "member"), ("vic", "viewer")];
    s.workspace("olga", "acme", &people).await;
    s
}

fn watched_mails(s: &TestServer, who: &str) -> Vec<String> {
    let to = format!("To: {who}@example.com");
    s.outbox()
        .into_iter()
        .filter(|(n, t)| n.ends_with(".eml") && t.contains(&to) && t.contains("A change on an asset you follow"))
        .map(|(_, t)| t)
        .collect()
}

fn change_on(title: &str, assets: &[&str]) -> Value {
    let mut b = normal_change(title);
    b["affected_assets"] = json!(assets);
    b
}

#[tokio::test]
async fn members_set_their_own_subscriptions_and_admins_anyones() {
    let s = team().await;
    let path = "/ws/acme/members/sam/subscriptions";
    let empty = s.get("sam", path).await.expect(200);
    assert_eq!((&empty["assets"], &empty["version"]), (&json!([]), &json!(0)));
    let set = s.put("sam", path, json!({"assets": ["db", " cache ", "db"]})).await.expect(200);
    assert_eq!((&set["assets"], &set["version"]), (&json!(["db", "cache"]), &json!(1)));
    assert_eq!(s.get("sam", path).await.expect(200)["assets"], json!(["db", "cache"]));
    assert_eq!(s.put("vic", "/ws/acme/members/vic/subscriptions", json!({"assets": ["web"]})).await.status, 200);

    s.get("mia", path).await.refused(403, "forbidden");
    s.put("mia", path, json!({"assets": []})).await.refused(403, "forbidden");
    s.get("outsider", path).await.refused(404, "not_found");
    s.put("alice", "/ws/acme/members/ghost/subscriptions", json!({"assets": []})).await.refused(404, "not_found");
    assert_eq!(s.put("alice", path, json!({"assets": ["db"]})).await.expect(200)["version"], 2);

    s.put("sam", path, json!({"assets": "db"})).await.refused(400, "bad_request");
    s.put("sam", path, json!({"assets": ["db"], "extra": 1})).await.refused(400, "bad_request");
    for bad in [
        json!({"assets": ["db\nx"]}),
        json!({"assets": [""]}),
        json!({"assets": (0..101).map(|i| format!("a{i}")).collect::<Vec<_>>()}),
    ] {
        let r = s.put("sam", path, bad.clone()).await;
        r.refused(422, "validation_failed");
        assert!(r.body["error"]["details"]["fields"]["assets"].is_string(), "{bad}: {}", r.body);
    }
    // A hundred assets are kept, but added at most ninety at a time.
    let many: Vec<String> = (0..100).map(|i| format!("svc-{i}")).collect();
    let r = s.put("sam", path, json!({"assets": many})).await;
    r.refused(422, "validation_failed");
    assert!(r.body["error"]["details"]["fields"]["assets"].as_str().unwrap().contains("at most 90"), "{}", r.body);
    s.put("sam", path, json!({"assets": many[..89]})).await.expect(200);
    let all = s.put("sam", path, json!({"assets": many})).await.expect(200);
    assert_eq!(all["assets"].as_array().unwrap().len(), 100);
    let n =
        s.change("mia", "acme", change_on("everywhere", &many.iter().map(String::as_str).collect::<Vec<_>>())).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!(watched_mails(&s, "sam").len(), 1, "one notice however many followed assets it touches");
    let rows = s.get("olga", "/ws/acme/audit?action=member.subscriptions").await.expect(200);
    assert_eq!(rows["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn followers_hear_of_each_move_they_follow_and_no_one_else_does() {
    let s = team().await;
    for (who, assets) in [("sam", json!(["db"])), ("vic", json!(["web"])), ("mia", json!(["db"]))] {
        s.put(who, &format!("/ws/acme/members/{who}/subscriptions"), json!({"assets": assets})).await.expect(200);
    }
    let n = s.change("mia", "acme", change_on("db <upgrade>", &["db", "cache"])).await;
    assert!(watched_mails(&s, "sam").is_empty(), "a draft is nobody's news");
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let mails = watched_mails(&s, "sam");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("It was submitted for approval."), "{}", mails[0]);
    s.act("bob", "acme", &n, "approve", json!({})).await.expect(200);
    assert_eq!(watched_mails(&s, "sam").len(), 1, "a decision is not a followed move");
    for action in ["schedule", "start"] {
        s.act("mia", "acme", &n, action, json!({})).await.expect(200);
    }
    let done = json!({"closure_code": "successful", "closure_notes": "done"});
    s.act("mia", "acme", &n, "complete", done).await.expect(200);
    let mails = watched_mails(&s, "sam");
    assert_eq!(mails.len(), 4, "submitted, scheduled, started, completed");
    assert!(mails.iter().any(|m| m.contains("It was completed.")));
    assert!(watched_mails(&s, "vic").is_empty(), "another asset");
    assert!(watched_mails(&s, "mia").is_empty(), "the author is on the change already");
    let chat: Vec<_> =
        s.outbox().into_iter().filter(|(n, t)| n.ends_with(".json") && t.contains("change.watched")).collect();
    assert_eq!(chat.len(), 4, "and by chat");
    assert!(chat[0].1.contains("db &lt;upgrade&gt;"), "{}", chat[0].1);

    // In German for a German workspace; and a member who leaves hears no more.
    s.patch("olga", "/ws/acme", json!({"locale": "de"})).await.expect(200);
    let m = s.change("mia", "acme", change_on("db again", &["db"])).await;
    s.act("mia", "acme", &m, "submit", json!({})).await.expect(200);
    let to_sam = "To: sam@example.com";
    let german = s.outbox().into_iter().filter(|(n, t)| n.ends_with(".eml") && t.contains(to_sam)).count();
    assert_eq!(german, 5);
    assert!(s.outbox().iter().any(|(_, t)| t.contains(to_sam) && t.contains("Sie wurde zur Genehmigung eingereicht.")));
    assert_eq!(s.delete("olga", "/ws/acme/members/sam").await.status, 204);
    s.act("bob", "acme", &m, "approve", json!({})).await.expect(200);
    s.act("mia", "acme", &m, "schedule", json!({})).await.expect(200);
    let after = s.outbox().into_iter().filter(|(n, t)| n.ends_with(".eml") && t.contains(to_sam)).count();
    assert_eq!(after, 5, "a former member is not told");
}

#[tokio::test]
async fn two_members_subscribing_to_one_asset_at_once_are_both_kept() {
    let s = team().await;
    let rival = s.before_next_write(move |app| async move {
        let input = serde_json::from_value(json!({"assets": ["db"]})).unwrap();
        app.put_subscriptions(&actor("vic"), &vigilo_e2e::slug("acme"), "vic", input).await.expect("the rival commits");
    });
    s.put("sam", "/ws/acme/members/sam/subscriptions", json!({"assets": ["db"]})).await.expect(200);
    assert!(rival.ran());
    let n = s.change("mia", "acme", change_on("db work", &["db"])).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    assert_eq!((watched_mails(&s, "sam").len(), watched_mails(&s, "vic").len()), (1, 1));
}
