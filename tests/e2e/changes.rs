use vigilo_e2e::{in_hours, json, normal_change, TestServer};

#[tokio::test]
async fn a_new_change_is_a_numbered_draft_with_type_defaults() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    let c = s.post("alice", "/ws/acme/changes", json!({"title": "  Rotate TLS cert  "})).await.expect(201);
    assert_eq!(c["number"], "CHG-00001");
    assert_eq!(c["status"], "draft");
    assert_eq!(c["title"], "Rotate TLS cert");
    assert_eq!(c["author"], "alice");
    assert_eq!((c["change_type"].as_str(), c["min_lead_time_hours"].as_u64()), (Some("normal"), Some(24)));
    assert_eq!(c["version"], 1);
    let e = s.post("alice", "/ws/acme/changes", json!({"title": "e", "change_type": "emergency"})).await.expect(201);
    assert_eq!((e["number"].as_str(), e["min_lead_time_hours"].as_u64()), (Some("CHG-00002"), Some(0)));
    let st = s.post("alice", "/ws/acme/changes", json!({"title": "s", "change_type": "standard"})).await.expect(201);
    assert_eq!(st["min_lead_time_hours"], 4);
    let got = s.get("alice", "/ws/acme/changes/CHG-00001").await;
    assert_eq!(got.headers["etag"], "\"1\"");
    assert_eq!(got.body["id"], c["id"]);
}

#[tokio::test]
async fn invalid_changes_are_refused_field_by_field() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "member")]).await;
    s.change("alice", "acme", json!({"title": "first"})).await;
    let r = s
        .post(
            "alice",
            "/ws/acme/changes",
            json!({
                "title": "x".repeat(201),
                "change_type": "weekly",
                "risk_level": "spicy",
                "planned_start": "next tuesday",
                "affected_assets": (0..101).map(|i| format!("host-{i}")).collect::<Vec<_>>(),
                "dependencies": ["CHG-00099", "banana"],
                "custom_fields": (0..51).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>(),
                "implementation_plan": "x".repeat(20_001),
                "min_lead_time_hours": -3,
            }),
        )
        .await;
    r.refused(422, "validation_failed");
    let fields = &r.body["error"]["details"]["fields"];
    for f in [
        "title",
        "change_type",
        "risk_level",
        "planned_start",
        "affected_assets",
        "dependencies",
        "custom_fields",
        "implementation_plan",
        "min_lead_time_hours",
    ] {
        assert!(fields[f].is_string(), "{f} missing in {fields}");
    }
    s.post("alice", "/ws/acme/changes", json!({})).await.refused(422, "validation_failed");
    s.post("alice", "/ws/acme/changes", json!({"title": ["x"]})).await.refused(400, "bad_request");
    s.post("alice", "/ws/acme/changes", json!({"title": "t", "colour": "red"})).await.refused(400, "bad_request");
    let window = json!({"title": "t", "planned_start": in_hours(10), "planned_end": in_hours(9)});
    s.post("alice", "/ws/acme/changes", window).await.refused(422, "validation_failed");
    let refs = s
        .post("alice", "/ws/acme/changes", json!({"title": "t", "dependencies": ["CHG-00042"], "assignee": "ghost"}))
        .await;
    refs.refused(422, "validation_failed");
    assert!(refs.body["error"]["details"]["fields"]["assignee"].is_string());
    let ok = s
        .post("alice", "/ws/acme/changes", json!({"title": "t", "dependencies": ["CHG-00001"], "assignee": "bob"}))
        .await
        .expect(201);
    assert_eq!(ok["number"], "CHG-00002", "refused requests consume no number");
}

#[tokio::test]
async fn values_at_the_limits_are_accepted() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    let assets: Vec<String> = (0..100).map(|i| format!("{i:0>200}")).collect();
    let c = s
        .post(
            "alice",
            "/ws/acme/changes",
            json!({"title": "t".repeat(200), "description": "d".repeat(20_000), "affected_assets": assets,
                   "custom_fields": (0..50).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>()}),
        )
        .await
        .expect(201);
    assert_eq!(c["affected_assets"].as_array().unwrap().len(), 100);
    let last = format!("{:0>200}", 99);
    let listed = s.get("alice", &format!("/ws/acme/changes?asset={last}")).await.expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "every asset of a 100-asset change is indexed");
}

#[tokio::test]
async fn viewers_cannot_file_changes() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("vic", "viewer")]).await;
    s.post("vic", "/ws/acme/changes", json!({"title": "t"})).await.refused(403, "forbidden");
    s.get("vic", "/ws/acme/changes").await.expect(200);
}

#[tokio::test]
async fn numbers_stay_gapless_under_concurrent_creates() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.workspace("alice", "acme", &[("bob", "member")]).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        tasks.push(tokio::spawn(async move { s.change(user, "acme", json!({"title": format!("c{i}")})).await }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    let expected: Vec<String> = (1..=24).map(|n| format!("CHG-{n:05}")).collect();
    assert_eq!(numbers, expected);
    let report = s.verify("alice", "acme").await;
    assert_eq!(report["ok"], true);
}

#[tokio::test]
async fn a_retried_create_returns_the_first_change() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    let h = [("idempotency-key", "deploy-42")];
    let body = json!({"title": "deploy"});
    let a = s.send(Some("alice"), reqwest::Method::POST, "/ws/acme/changes", Some(body.clone()), &h).await.expect(201);
    let b = s.send(Some("alice"), reqwest::Method::POST, "/ws/acme/changes", Some(body.clone()), &h).await;
    assert_eq!(b.headers["idempotent-replayed"], "true");
    assert_eq!(a, b.body);
    // Keys are per caller: the same key from someone else is a new request.
    s.put("alice", "/ws/acme/members/bob", json!({"email": "b@example.com", "role": "member"})).await.expect(200);
    let c = s.send(Some("bob"), reqwest::Method::POST, "/ws/acme/changes", Some(body), &h).await.expect(201);
    assert_eq!(c["number"], "CHG-00002");
    let list = s.get("alice", "/ws/acme/changes").await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let bad = [("idempotency-key", "")];
    s.send(Some("alice"), reqwest::Method::POST, "/ws/acme/changes", Some(json!({"title": "x"})), &bad)
        .await
        .refused(400, "bad_request");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_change() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.workspace("alice", "acme", &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let h = [("idempotency-key", "same")];
            s.send(Some("alice"), reqwest::Method::POST, "/ws/acme/changes", Some(json!({"title": "once"})), &h)
                .await
                .expect(201)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap()["number"], "CHG-00001");
    }
    assert_eq!(s.get("alice", "/ws/acme/changes").await.expect(200)["items"].as_array().unwrap().len(), 1);
}

async fn seeded() -> TestServer {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "member"), ("ann", "approver")]).await;
    let specs = [
        json!({"title": "a", "change_type": "normal", "priority": "high", "risk_level": "low", "affected_assets": ["db-1"], "assignee": "bob"}),
        json!({"title": "b", "change_type": "standard", "priority": "low", "risk_level": "low", "affected_assets": ["db-1", "lb"]}),
        json!({"title": "c", "change_type": "emergency", "priority": "critical", "risk_level": "high", "affected_assets": ["lb"], "assignee": "bob"}),
        json!({"title": "d", "change_type": "normal", "priority": "high", "risk_level": "medium", "affected_assets": ["db-1"]}),
        json!({"title": "e", "change_type": "normal", "priority": "medium", "risk_level": "low"}),
    ];
    for spec in specs {
        s.change("alice", "acme", spec).await;
    }
    s.act("alice", "acme", "CHG-00002", "submit", json!({})).await.expect(200);
    s
}

async fn titles(s: &TestServer, query: &str) -> Vec<String> {
    let page = s.get("bob", &format!("/ws/acme/changes{query}")).await.expect(200);
    page["items"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn every_filter_narrows_the_list_newest_first() {
    let s = seeded().await;
    assert_eq!(titles(&s, "").await, ["e", "d", "c", "b", "a"]);
    assert_eq!(titles(&s, "?status=approved").await, ["b"]);
    assert_eq!(titles(&s, "?status=draft").await, ["e", "d", "c", "a"]);
    assert_eq!(titles(&s, "?change_type=normal").await, ["e", "d", "a"]);
    assert_eq!(titles(&s, "?priority=high").await, ["d", "a"]);
    assert_eq!(titles(&s, "?risk_level=low").await, ["e", "b", "a"]);
    assert_eq!(titles(&s, "?assignee=bob").await, ["c", "a"]);
    assert_eq!(titles(&s, "?asset=db-1").await, ["d", "b", "a"]);
    assert_eq!(titles(&s, "?asset=lb&status=draft").await, ["c"]);
    assert_eq!(titles(&s, "?change_type=normal&priority=high&risk_level=medium").await, ["d"]);
    assert_eq!(titles(&s, "?asset=nothing").await, Vec::<String>::new());
    assert_eq!(titles(&s, "?status=&priority=high").await, ["d", "a"], "empty parameters are ignored");
}

#[tokio::test]
async fn cursors_walk_every_list_once() {
    let s = seeded().await;
    for filter in ["", "&asset=db-1", "&status=draft", "&change_type=normal"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let c = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let page = s.get("bob", &format!("/ws/acme/changes?limit=2{filter}{c}")).await.expect(200);
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|i| i["title"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let all = titles(&s, &format!("?limit=200{filter}")).await;
        assert_eq!(seen, all, "filter {filter}");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let s = seeded().await;
    for q in
        ["?limit=0", "?limit=201", "?limit=ten", "?status=sleeping", "?risk_level=9", "?cursor=%%%", "?cursor=bm9wZQ"]
    {
        s.get("bob", &format!("/ws/acme/changes{q}")).await.refused(400, "bad_request");
    }
    let page = s.get("bob", "/ws/acme/changes?limit=1").await.expect(200);
    let cursor = page["next_cursor"].as_str().unwrap();
    s.get("bob", &format!("/ws/acme/changes?status=draft&cursor={cursor}")).await.refused(400, "bad_request");
    assert_eq!(s.get("bob", "/ws/acme/changes?limit=200").await.expect(200)["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn drafts_are_edited_by_their_author_with_if_match() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[("bob", "member"), ("ada", "admin")]).await;
    let n = s.change("alice", "acme", normal_change("deploy")).await;
    let path = format!("/ws/acme/changes/{n}");
    s.patch("bob", &path, json!({"title": "mine now"})).await.refused(403, "forbidden");
    let c = s
        .patch("alice", &path, json!({"title": "deploy v2", "affected_assets": ["db-9"], "assignee": "bob"}))
        .await
        .expect(200);
    assert_eq!((c["title"].as_str(), c["version"].as_u64()), (Some("deploy v2"), Some(2)));
    assert_eq!(titles(&s, "?asset=api-gateway").await, Vec::<String>::new(), "a removed asset leaves the index");
    assert_eq!(titles(&s, "?asset=db-9").await, ["deploy v2"]);
    let stale =
        s.send(Some("alice"), reqwest::Method::PATCH, &path, Some(json!({"title": "x"})), &[("if-match", "1")]).await;
    stale.refused(412, "version_conflict");
    assert_eq!(stale.body["error"]["details"]["current"], 2);
    s.send(Some("alice"), reqwest::Method::PATCH, &path, Some(json!({"title": "x"})), &[("if-match", "two")])
        .await
        .refused(400, "bad_request");
    let same = s.patch("alice", &path, json!({"title": "deploy v2"})).await.expect(200);
    assert_eq!(same["version"], 2, "a no-op edit writes nothing");
    s.patch("ada", &path, json!({"assignee": null})).await.expect(200);
    s.patch("alice", &path, json!({"dependencies": [n.clone()]})).await.refused(422, "validation_failed");
    s.act("alice", "acme", &n, "submit", json!({})).await.expect(200);
    let r = s.patch("alice", &path, json!({"title": "late"})).await;
    r.refused(409, "not_editable");
    assert_eq!(r.body["error"]["details"]["status"], "review");
}

#[tokio::test]
async fn unknown_changes_are_404() {
    let s = TestServer::start().await;
    s.workspace("alice", "acme", &[]).await;
    for n in ["CHG-00001", "CHG-0", "42", "CHG-abc"] {
        s.get("alice", &format!("/ws/acme/changes/{n}")).await.refused(404, "not_found");
    }
    s.act("alice", "acme", "CHG-00009", "submit", json!({})).await.refused(404, "not_found");
}
