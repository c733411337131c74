//! The archive: old rows leave the live table for write-once segments with an
//! `audit.archive` row and a checkpoint at the cut; the log still verifies whole, proofs
//! of live rows still check, and a segment lost or altered is named.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use vigilo_app::keys;
use vigilo_app::store::{Item, WriteOp};
use vigilo_domain::checkpoint::Checkpoint;
use vigilo_domain::merkle;
use vigilo_e2e::{json, normal_change, slug, TestServer};

async fn busy() -> TestServer {
    TestServer::with_approved_change().await.0
}

async fn workspace_id(s: &TestServer) -> String {
    s.get("alice", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned()
}

/// Archives every row made so far.
async fn archive_now(s: &TestServer) -> vigilo_app::services::archive::ArchiveSummary {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let before = jiff::Timestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.app.archive_by_slug(&slug("acme"), before).await.unwrap()
}

/// The row's inclusion proof, checked against its checkpoint's root.
async fn proof_checks(s: &TestServer, row: &Value) {
    let p = s.get("vic", &format!("/ws/acme/audit/{}/proof", row["id"].as_str().unwrap())).await.expect(200);
    let note = p["checkpoint"].as_str().expect("a checkpoint covers the row");
    let c = Checkpoint::parse(note).unwrap();
    let hashes: Vec<merkle::Hash> = p["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    let leaf = merkle::leaf_hash(&merkle::parse_hex(row["hash"].as_str().unwrap()).unwrap());
    let seq = row["seq"].as_u64().unwrap();
    assert!(merkle::verify_inclusion(seq - 1, c.tree_size, &leaf, &hashes, &c.root), "row {seq} in {}", c.tree_size);
}

#[tokio::test]
async fn old_rows_move_to_locked_segments_and_the_log_still_verifies_whole() {
    let s = busy().await;
    let before: Vec<Value> =
        s.get("alice", "/ws/acme/audit?limit=200").await.expect(200)["items"].as_array().unwrap().clone();
    let n = before.len() as u64;
    let first = archive_now(&s).await;
    assert_eq!((first.segments, first.rows, first.broken.len()), (1, n, 0), "{first:?}");

    let page = s.get("alice", "/ws/acme/audit?limit=200").await.expect(200);
    assert_eq!(page["archived_through"].as_u64(), Some(n), "{page}");
    let live = page["items"].as_array().unwrap();
    assert_eq!(live.len(), 1, "only the archive's own row is live: {page}");
    assert_eq!(live[0]["action"], "audit.archive");
    assert_eq!((live[0]["new_value"]["first"].as_u64(), live[0]["new_value"]["last"].as_u64()), (Some(1), Some(n)));
    let lock = live[0]["new_value"]["lock_mode"].as_str().unwrap();
    assert!(["COMPLIANCE", "write-once"].contains(&lock), "{lock}");
    // An archived row is no longer served; the checkpoint at the cut covers the archive row.
    s.get("vic", &format!("/ws/acme/audit/{}", before[0]["id"].as_str().unwrap())).await.refused(404, "not_found");
    let latest = s.get("vic", "/ws/acme/audit/checkpoints/latest").await.expect(200);
    assert_eq!(latest["tree_size"].as_u64(), Some(n + 1));
    proof_checks(&s, &live[0]).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["ok"].as_bool(), r["rows_checked"].as_u64()), (Some(true), Some(n + 1)), "{r}");

    // Nothing more to archive; then more rows, a second segment, and still whole.
    assert_eq!(archive_now(&s).await.segments, 1, "the archive row itself is old by now");
    let c = s.change("mia", "acme", normal_change("later")).await;
    s.act("mia", "acme", &c, "submit", json!({})).await.expect(200);
    let again = archive_now(&s).await;
    assert_eq!(again.segments, 1, "{again:?}");
    let n2 = s.get("vic", "/ws/acme/audit").await.expect(200)["archived_through"].as_u64().unwrap();
    assert!(n2 > n + 1);
    let c = s.change("mia", "acme", normal_change("live")).await;
    s.act("mia", "acme", &c, "submit", json!({})).await.expect(200);
    s.app.checkpoint_all().await.unwrap();
    for row in s.get("vic", "/ws/acme/audit?limit=200").await.expect(200)["items"].as_array().unwrap() {
        proof_checks(&s, row).await;
    }
    let r = s.verify("alice", "acme").await;
    assert_eq!(r["ok"].as_bool(), Some(true), "{r}");
    assert!(r["checkpoints_checked"].as_u64().unwrap() >= 3, "{r}");
    // A proof inside the archive is refused with a reason, not a 5xx.
    let too_old = s.get("vic", "/ws/acme/audit/consistency?from=2&to=3").await;
    too_old.refused(400, "bad_request");
}

#[tokio::test]
async fn a_lost_or_altered_segment_is_named() {
    let s = busy().await;
    archive_now(&s).await;
    let w = workspace_id(&s).await;
    let key = keys::archive_segment(&w, 1);
    let item = s.table().get(&key).await.unwrap().expect("the segment is recorded");

    // The table points at an object that is not there.
    let mut lost = item.data.clone();
    lost["object"] = json!(format!("segments/{w}/gone.jsonl"));
    s.table().transact(vec![WriteOp::Put { item: Item::new(key.clone(), lost), condition: None }]).await.unwrap();
    let r = s.verify("alice", "acme").await;
    assert_eq!(
        (r["ok"].as_bool(), r["break"]["reason"].as_str(), r["break"]["seq"].as_u64()),
        (Some(false), Some("segment_missing"), Some(1)),
        "{r}"
    );

    // The object is not the one archived.
    let mut altered = item.data.clone();
    altered["sha256"] = json!("00".repeat(32));
    s.table().transact(vec![WriteOp::Put { item: Item::new(key.clone(), altered), condition: None }]).await.unwrap();
    let r = s.verify("alice", "acme").await;
    assert_eq!(r["break"]["reason"].as_str(), Some("segment_altered"), "{r}");

    // The segment's record gone: the live rows start past a gap.
    s.table().transact(vec![WriteOp::Delete { key, condition: None }]).await.unwrap();
    let r = s.verify("alice", "acme").await;
    assert_eq!(r["break"]["reason"].as_str(), Some("seq_gap"), "{r}");
    // Nothing is archived (or signed) over a broken chain.
    let summary = archive_now(&s).await;
    assert_eq!((summary.segments, summary.broken.len()), (0, 1), "{summary:?}");
}
