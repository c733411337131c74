use vigilo_e2e::{json, TestServer};

#[tokio::test]
async fn creating_a_workspace_makes_the_caller_owner() {
    let s = TestServer::start().await;
    let w = s
        .post(
            "alice",
            "/workspaces",
            json!({"slug": "acme", "name": "Acme", "locale": "de", "timezone": "Europe/Berlin"}),
        )
        .await
        .expect(201);
    assert_eq!(
        (w["slug"].as_str(), w["role"].as_str(), w["locale"].as_str()),
        (Some("acme"), Some("owner"), Some("de"))
    );
    let list = s.get("alice", "/workspaces").await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["role"], "owner");
    assert!(s.get("bob", "/workspaces").await.expect(200)["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn slugs_are_unique_and_checked() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    s.post("bob", "/workspaces", json!({"slug": "acme", "name": "Other"})).await.refused(409, "slug_taken");
    let r = s
        .post("bob", "/workspaces", json!({"slug": "No Way", "name": "", "timezone": "Mars/Base", "locale": "fr"}))
        .await;
    r.refused(422, "validation_failed");
    for f in ["slug", "name", "timezone", "locale"] {
        assert!(r.body["error"]["details"]["fields"][f].is_string(), "{f}: {}", r.body);
    }
    s.post("bob", "/workspaces", json!({"slug": 42, "name": "x"})).await.refused(400, "bad_request");
    s.post("bob", "/workspaces", json!({"slug": "beta"})).await.refused(400, "bad_request");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response() {
    let s = TestServer::start().await;
    let body = json!({"slug": "acme", "name": "Acme"});
    let h = [("idempotency-key", "k-1")];
    let first = s.send(Some("alice"), reqwest::Method::POST, "/workspaces", Some(body.clone()), &h).await;
    let again = s.send(Some("alice"), reqwest::Method::POST, "/workspaces", Some(body), &h).await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body, again.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = s
        .send(Some("alice"), reqwest::Method::POST, "/workspaces", Some(json!({"slug": "beta", "name": "B"})), &h)
        .await;
    other.refused(422, "idempotency_key_reused");
    assert_eq!(s.get("alice", "/workspaces").await.expect(200)["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn outsiders_get_404_for_everything_under_a_workspace() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    let n = s.change("alice", "acme", json!({"title": "t"})).await;
    for path in [
        "/ws/acme",
        "/ws/acme/members",
        "/ws/acme/changes",
        &format!("/ws/acme/changes/{n}"),
        "/ws/acme/audit",
        "/ws/nope",
    ] {
        let r = s.get("mallory", path).await;
        r.refused(404, "not_found");
    }
    let missing = s.get("mallory", "/ws/nope").await.body;
    let hidden = s.get("mallory", "/ws/acme").await.body;
    assert_eq!(missing, hidden, "an existing workspace looks exactly like a missing one");
    s.post("mallory", "/ws/acme/changes", json!({"title": "x"})).await.refused(404, "not_found");
    s.post("mallory", "/ws/acme/changes", json!({"title": ""})).await.refused(404, "not_found");
    s.patch("mallory", &format!("/ws/acme/changes/{n}"), json!({"title": ""})).await.refused(404, "not_found");
    s.act("mallory", "acme", &n, "cancel", json!({"reason": "r".repeat(6000)})).await.refused(404, "not_found");
    s.post("mallory", "/ws/acme/audit/verify", json!({})).await.refused(404, "not_found");
}

#[tokio::test]
async fn workspace_settings_need_admin_and_honour_if_match() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "member"), ("ada", "admin")]).await;
    s.patch("bob", "/ws/acme", json!({"name": "x"})).await.refused(403, "forbidden");
    let w = s.patch("ada", "/ws/acme", json!({"name": "Acme Corp", "audit_retention_days": 365})).await.expect(200);
    assert_eq!((w["name"].as_str(), w["version"].as_u64()), (Some("Acme Corp"), Some(2)));
    let stale =
        s.send(Some("ada"), reqwest::Method::PATCH, "/ws/acme", Some(json!({"name": "y"})), &[("if-match", "1")]).await;
    stale.refused(412, "version_conflict");
    let ok = s
        .send(Some("ada"), reqwest::Method::PATCH, "/ws/acme", Some(json!({"locale": "de"})), &[("if-match", "\"2\"")])
        .await;
    assert_eq!(ok.expect(200)["version"], 3);
    s.patch("ada", "/ws/acme", json!({"timezone": "Nowhere/Land"})).await.refused(422, "validation_failed");
    s.patch("ada", "/ws/acme", json!({"slug": "renamed"})).await.refused(400, "bad_request");
}

#[tokio::test]
async fn roles_are_granted_by_admins_and_owners_only() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("ada", "admin"), ("mia", "member")]).await;
    let add = |role: &str| json!({"email": "x@example.com", "role": role});
    s.put("mia", "/ws/acme/members/zed", add("viewer")).await.refused(403, "forbidden");
    s.put("ada", "/ws/acme/members/zed", add("approver")).await.expect(200);
    s.put("ada", "/ws/acme/members/zed", add("owner")).await.refused(403, "forbidden");
    s.put("ada", "/ws/acme/members/alice", add("member")).await.refused(403, "forbidden");
    s.delete("ada", "/ws/acme/members/alice").await.refused(403, "forbidden");
    s.put("alice", "/ws/acme/members/zed", add("owner")).await.expect(200);
    s.put("ada", "/ws/acme/members/zed", add("wizard")).await.refused(422, "validation_failed");
    s.put("ada", "/ws/acme/members/zed2", json!({"email": "nope", "role": "viewer"}))
        .await
        .refused(422, "validation_failed");
    let members = s.get("mia", "/ws/acme/members").await.expect(200);
    assert_eq!(members["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_last_owner_cannot_leave_or_be_demoted() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "member")]).await;
    s.put("alice", "/ws/acme/members/alice", json!({"email": "alice@example.com", "role": "admin"}))
        .await
        .refused(409, "last_owner");
    s.delete("alice", "/ws/acme/members/alice").await.refused(409, "last_owner");
    s.put("alice", "/ws/acme/members/bob", json!({"email": "bob@example.com", "role": "owner"})).await.expect(200);
    s.put("alice", "/ws/acme/members/alice", json!({"email": "alice@example.com", "role": "admin"})).await.expect(200);
}

#[tokio::test]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    for _ in 0..5 {
        let s = std::sync::Arc::new(TestServer::start().await);
        s.workspace("alice", "acme", &[("bob", "owner")]).await;
        let demote = |by: &'static str, whom: &'static str| {
            let s = s.clone();
            tokio::spawn(async move {
                let body = json!({"email": format!("{whom}@example.com"), "role": "admin"});
                s.put(by, &format!("/ws/acme/members/{whom}"), body).await.status
            })
        };
        let (a, b) = (demote("alice", "bob"), demote("bob", "alice"));
        let mut codes = [a.await.unwrap(), b.await.unwrap()];
        codes.sort();
        assert_eq!(codes[0], 200);
        assert_ne!(codes[1], 200, "both demotions cannot succeed");
        let members = s.get("alice", "/ws/acme/members").await.expect(200);
        let owners = members["items"].as_array().unwrap().iter().filter(|m| m["role"] == "owner").count();
        assert_eq!(owners, 1);
    }
}

#[tokio::test]
async fn a_removed_member_loses_access() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "member")]).await;
    s.get("bob", "/ws/acme").await.expect(200);
    assert_eq!(s.delete("alice", "/ws/acme/members/bob").await.status, 204);
    s.get("bob", "/ws/acme").await.refused(404, "not_found");
    s.delete("alice", "/ws/acme/members/bob").await.refused(404, "not_found");
}

#[tokio::test]
async fn delegation_is_set_by_self_or_admin_and_checked() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("erin", "member"), ("mia", "member")]).await;
    let window = json!({"delegate": "erin", "from": vigilo_e2e::in_hours(-1), "until": vigilo_e2e::in_hours(24)});
    s.put("mia", "/ws/acme/members/bob/delegate", window.clone()).await.refused(403, "forbidden");
    let m = s.put("bob", "/ws/acme/members/bob/delegate", window).await.expect(200);
    assert_eq!(m["delegation"]["delegate"], "erin");
    let bad = json!({"delegate": "bob", "from": vigilo_e2e::in_hours(2), "until": vigilo_e2e::in_hours(1)});
    let r = s.put("bob", "/ws/acme/members/bob/delegate", bad).await;
    r.refused(422, "validation_failed");
    assert!(
        r.body["error"]["details"]["fields"]["until"].is_string()
            && r.body["error"]["details"]["fields"]["delegate"].is_string()
    );
    s.put(
        "bob",
        "/ws/acme/members/bob/delegate",
        json!({"delegate": "ghost", "from": vigilo_e2e::in_hours(0), "until": vigilo_e2e::in_hours(1)}),
    )
    .await
    .refused(422, "validation_failed");
    let cleared = s.put("alice", "/ws/acme/members/bob/delegate", json!({"delegate": null})).await.expect(200);
    assert!(cleared["delegation"].is_null());
}

#[tokio::test]
async fn groups_hold_members_only() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "approver"), ("mia", "member")]).await;
    s.put("mia", "/ws/acme/groups/ecab", json!({"members": ["bob"]})).await.refused(403, "forbidden");
    s.put("alice", "/ws/acme/groups/ecab", json!({"members": ["bob", "ghost"]}))
        .await
        .refused(422, "validation_failed");
    s.put("alice", "/ws/acme/groups/ECAB!", json!({"members": ["bob"]})).await.refused(422, "validation_failed");
    let g = s.put("alice", "/ws/acme/groups/ecab", json!({"members": ["bob", "alice", "bob"]})).await.expect(200);
    assert_eq!(g["members"], json!(["alice", "bob"]));
    assert_eq!(s.get("mia", "/ws/acme/groups").await.expect(200)["items"][0]["name"], "ecab");
}
