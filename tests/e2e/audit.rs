use serde_json::Value;
use vigilo_app::keys;
use vigilo_app::store::{Key, Query, WriteOp};
use vigilo_e2e::{json, normal_change, TestServer};

async fn busy() -> (TestServer, String) {
    TestServer::with_approved_change().await
}

fn items(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_state_change_leaves_one_chained_row() {
    let (s, _) = busy().await;
    let rows = items(&s.get("alice", "/ws/acme/audit?limit=200").await.expect(200));
    let actions: Vec<&str> = rows.iter().rev().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "workspace.create",
            "member.add",
            "member.add",
            "member.add",
            "member.add",
            "change.create",
            "change.submit",
            "approval_step.create",
            "approval_step.approve",
            "change.approve"
        ]
    );
    let seqs: Vec<u64> = rows.iter().rev().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    for pair in rows.windows(2) {
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"], "each row links to the one before");
    }
    let first = rows.last().unwrap();
    let ws_id = first["workspace_id"].as_str().unwrap();
    use sha2::Digest;
    assert_eq!(
        first["prev_hash"].as_str().unwrap(),
        format!("{:x}", sha2::Sha256::digest(format!("vigilo:{ws_id}").as_bytes()))
    );
    let approve = &rows[0];
    assert_eq!((approve["actor"].as_str(), approve["target_type"].as_str()), (Some("bob"), Some("ChangeRequest")));
    assert_eq!(approve["old_value"], json!({"status": "review", "version": 2}));
    assert_eq!(approve["metadata"]["comment"], "fine");
    assert_eq!(approve["metadata"]["actor_email"], "bob@example.com");
    assert!(approve["metadata"]["request_id"].is_string() && approve["metadata"]["ip"] == "127.0.0.1");
}

#[tokio::test]
async fn refused_requests_write_no_rows() {
    let (s, n) = busy().await;
    let before = s.verify("alice", "acme").await["rows_checked"].as_u64().unwrap();
    s.act("mia", "acme", &n, "start", json!({})).await.refused(409, "invalid_transition");
    s.post("vic", "/ws/acme/changes", json!({"title": "x"})).await.refused(403, "forbidden");
    s.post("mia", "/ws/acme/changes", json!({"title": ""})).await.refused(422, "validation_failed");
    assert_eq!(s.verify("alice", "acme").await["rows_checked"].as_u64().unwrap(), before);
}

#[tokio::test]
async fn filters_find_rows_and_viewers_see_no_values() {
    let (s, n) = busy().await;
    let change_id =
        s.get("alice", &format!("/ws/acme/changes/{n}")).await.expect(200)["id"].as_str().unwrap().to_owned();
    let count = |q: &str| {
        let s = &s;
        let q = q.to_owned();
        async move { items(&s.get("mia", &format!("/ws/acme/audit{q}")).await.expect(200)).len() }
    };
    assert_eq!(count("?actor=bob").await, 2);
    assert_eq!(count("?action=member.add").await, 4);
    assert_eq!(count(&format!("?target_type=ChangeRequest&target_id={change_id}")).await, 3);
    assert_eq!(count("?target_type=ApprovalStep").await, 2);
    assert_eq!(count("?q=DEPLOY").await, 1, "full-text search is case-insensitive");
    assert_eq!(count("?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z").await, 10);
    assert_eq!(count("?to=2000-01-01T00:00:00Z").await, 0);
    assert_eq!(count("?actor=bob&action=change.approve").await, 1);
    s.get("mia", "/ws/acme/audit?from=yesterday").await.refused(400, "bad_request");

    let viewer_count = items(&s.get("vic", "/ws/acme/audit?q=redeploy").await.expect(200)).len();
    assert_eq!(viewer_count, 0, "a viewer's search does not look into values they cannot see");
    assert_eq!(count("?q=redeploy").await, 1, "the rollback plan is in change.create's new value");
    let member_view = items(&s.get("mia", "/ws/acme/audit?limit=1").await.expect(200));
    assert!(member_view[0].get("new_value").is_some());
    let viewer_view = items(&s.get("vic", "/ws/acme/audit?limit=1").await.expect(200));
    assert!(viewer_view[0].get("new_value").is_none() && viewer_view[0].get("old_value").is_none());
    assert_eq!(viewer_view[0]["hash"], member_view[0]["hash"]);

    let id = member_view[0]["id"].as_str().unwrap();
    let one = s.get("vic", &format!("/ws/acme/audit/{id}")).await.expect(200);
    assert_eq!(one["seq"], member_view[0]["seq"]);
    assert!(one.get("old_value").is_none());
    s.get("vic", "/ws/acme/audit/not-a-row").await.refused(404, "not_found");
    s.workspace("zed", "other", &[]).await;
    s.get("zed", &format!("/ws/other/audit/{id}")).await.refused(404, "not_found");
}

#[tokio::test]
async fn only_admins_verify() {
    let (s, _) = busy().await;
    s.post("bob", "/ws/acme/audit/verify", json!({})).await.refused(403, "forbidden");
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["ok"].as_bool(), r["rows_checked"].as_u64()), (Some(true), Some(10)));
    assert!(r["break"].is_null());
    assert_eq!(r["first_hash"].as_str().unwrap().len(), 64);
}

/// Tampering as someone with write access to the table would: past the service.
async fn workspace_id(s: &TestServer) -> String {
    s.get("alice", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned()
}

async fn rewrite_row(s: &TestServer, seq: u64, edit: impl FnOnce(&mut Value)) {
    let key = keys::audit_row(&workspace_id(s).await, seq);
    let mut item = s.table().get(&key).await.unwrap().expect("the row exists");
    edit(&mut item.data);
    s.table().transact(vec![WriteOp::Put { item, condition: None }]).await.unwrap();
}

async fn delete_rows_from(s: &TestServer, first: u64, last: u64) {
    let w = workspace_id(s).await;
    let q = Query::table(keys::audit_rows(&w)).between(keys::seq_sk(first), keys::seq_sk(last));
    let keys: Vec<Key> = s.table().query(&q).await.unwrap().items.into_iter().map(|i| i.key).collect();
    assert!(!keys.is_empty());
    let ops = keys.into_iter().map(|key| WriteOp::Delete { key, condition: None }).collect();
    s.table().transact(ops).await.unwrap();
}

#[tokio::test]
async fn verify_names_an_edited_row() {
    let (s, _) = busy().await;
    rewrite_row(&s, 6, |d| d["actor"] = json!("mallory")).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!(r["ok"], false);
    assert_eq!((r["break"]["seq"].as_u64(), r["break"]["reason"].as_str()), (Some(6), Some("hash_mismatch")));
    assert!(r["break"]["row_id"].is_string());
    assert_eq!(r["rows_checked"], 5);
}

#[tokio::test]
async fn verify_names_a_deleted_row_and_a_cut_tail() {
    let (s, _) = busy().await;
    delete_rows_from(&s, 4, 4).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["break"]["seq"].as_u64(), r["break"]["reason"].as_str()), (Some(5), Some("seq_gap")));

    let (s, _) = busy().await;
    delete_rows_from(&s, 9, u64::MAX).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["break"]["seq"].as_u64(), r["break"]["reason"].as_str()), (Some(9), Some("tail_truncated")));
    assert!(r["break"]["row_id"].is_null());
}

#[tokio::test]
async fn concurrent_writers_never_fork_the_chain() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.workspace("alice", "acme", &[("bob", "admin"), ("carol", "member")]).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => s.post("bob", "/ws/acme/changes", json!({"title": format!("b{i}")})).await.expect(201),
                1 => s.post("carol", "/ws/acme/changes", json!({"title": format!("c{i}")})).await.expect(201),
                _ => s.patch("bob", "/ws/acme", json!({"name": format!("name {i}")})).await.expect(200),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = s.verify("alice", "acme").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["rows_checked"], 4 + 30, "workspace, three members, then one row per write");
}

#[tokio::test]
async fn verify_reports_a_row_that_is_no_audit_row() {
    let (s, _) = busy().await;
    rewrite_row(&s, 7, |d| *d = json!({"id": "r7", "junk": 1})).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!(r["ok"], false);
    assert_eq!(
        (r["break"]["seq"].as_u64(), r["break"]["reason"].as_str(), r["break"]["row_id"].as_str()),
        (Some(7), Some("unreadable_row"), Some("r7"))
    );
    assert_eq!(r["rows_checked"], 6);
}

/// Where a sequencer elsewhere seals (the stream function on AWS), a write answers
/// before its row has a `seq`: `GET /audit` lists the entry under `sealing` until the
/// sequencer's pass, then as a row of the chain with the same id, and the chain
/// verifies before and after.
#[tokio::test]
async fn entries_waiting_to_be_sealed_are_listed_until_sealed() {
    let (s, _) = busy().await;
    let before = s.verify("alice", "acme").await["rows_checked"].as_u64().unwrap();
    let elsewhere = s.app_sealing_elsewhere();
    let raw = serde_json::from_value(normal_change("queued")).unwrap();
    elsewhere.create_change(&vigilo_e2e::actor("mia"), &vigilo_e2e::slug("acme"), raw, None).await.unwrap();
    let page = s.get("vic", "/ws/acme/audit").await.expect(200);
    let sealing = page["sealing"].as_array().unwrap();
    assert_eq!(sealing.len(), 1, "{page}");
    assert_eq!((sealing[0]["action"].as_str(), sealing[0]["actor"].as_str()), (Some("change.create"), Some("mia")));
    let id = sealing[0]["id"].as_str().unwrap().to_owned();
    assert!(page["items"].as_array().unwrap().iter().all(|r| r["id"] != id.as_str()));
    assert_eq!(s.verify("alice", "acme").await["rows_checked"].as_u64().unwrap(), before);

    let ws = s.get("alice", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned();
    let sealed = elsewhere.seal(&ws).await.unwrap();
    assert_eq!((sealed.rows, sealed.head_seq), (1, before + 1));
    let page = s.get("vic", "/ws/acme/audit").await.expect(200);
    assert_eq!(page["sealing"], json!([]));
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["items"][0]["seq"], before + 1);
    let report = s.verify("alice", "acme").await;
    assert_eq!((report["ok"].as_bool(), report["rows_checked"].as_u64()), (Some(true), Some(before + 1)));
}
