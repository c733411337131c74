//! Signed checkpoints and proofs over the audit log's Merkle tree. The first test is
//! an auditor's own check, written from the contract alone (RFC 9162's algorithms and
//! the checkpoint format, with its own hashing and signature check); the others tamper
//! with the table as someone with full write access would, and expect each kind named.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use vigilo_app::keys;
use vigilo_app::store::{Item, Key, Query, WriteOp};
use vigilo_e2e::{json, normal_change, TestServer};

type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut d = Sha256::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().into()
}

fn leaf(row_hash_hex: &str) -> H {
    sha(&[&[0u8], &hex::decode(row_hash_hex).unwrap()])
}

fn node(l: &H, r: &H) -> H {
    sha(&[&[1u8], l, r])
}

/// RFC 9162 2.1.1: the Merkle tree hash of `leaves`.
fn mth(leaves: &[H]) -> H {
    match leaves.len() {
        0 => sha(&[]),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 2.1.3.2: verifying an inclusion proof.
fn verify_inclusion(index: u64, size: u64, leaf: H, proof: &[H], root: &H) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && &r == root
}

/// RFC 9162 2.1.4.2: verifying a consistency proof.
fn verify_consistency(first: u64, second: u64, first_root: &H, second_root: &H, proof: &[H]) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 || first > second {
        return false;
    }
    let mut c: Vec<H> = proof.to_vec();
    if first & (first - 1) == 0 {
        c.insert(0, *first_root);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let Some(&first_c) = c.first() else { return false };
    let (mut fr, mut sr) = (first_c, first_c);
    for p in &c[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(p, &fr);
            sr = node(p, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node(&sr, p);
        }
        f >>= 1;
        s >>= 1;
    }
    &fr == first_root && &sr == second_root && s == 0
}

fn b64s(v: &Value) -> Vec<H> {
    v.as_array().unwrap().iter().map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap().try_into().unwrap()).collect()
}

/// A checkpoint note read by the contract: the body lines and the signature checked
/// with the PEM's key. Returns (tree size, root, head hash).
fn read_note(note: &str, workspace_id: &str, pem: &str) -> (u64, H, String) {
    let (body, sigs) = note.split_once("\n\n").expect("a blank line after the body");
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines.len(), 5, "{note}");
    assert_eq!(lines[0], format!("vigilo.audit/{workspace_id}"));
    let size: u64 = lines[1].parse().unwrap();
    let root: H = STANDARD.decode(lines[2]).unwrap().try_into().unwrap();
    assert!(lines[4].parse::<jiff::Timestamp>().is_ok() && lines[4].ends_with('Z'), "{}", lines[4]);
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem).unwrap();
    let spki = key.to_public_key_der().unwrap();
    let key_id = &Sha256::digest(spki.as_bytes())[..4];
    let signed = format!("{body}\n");
    let mut verified = 0;
    for line in sigs.lines() {
        let rest = line.strip_prefix("\u{2014} ").expect("a signature line starts with an em dash");
        let (_name, blob) = rest.rsplit_once(' ').unwrap();
        let blob = STANDARD.decode(blob).unwrap();
        if &blob[..4] == key_id {
            let sig = p256::ecdsa::Signature::from_der(&blob[4..]).unwrap();
            key.verify(signed.as_bytes(), &sig).expect("the signature verifies");
            verified += 1;
        }
    }
    assert_eq!(verified, 1, "one signature by the key: {note}");
    (size, root, lines[3].to_owned())
}

async fn busy() -> TestServer {
    TestServer::with_approved_change().await.0
}

async fn workspace_id(s: &TestServer) -> String {
    s.get("alice", "/ws/acme").await.expect(200)["id"].as_str().unwrap().to_owned()
}

/// Every row, in seq order, as served.
async fn rows(s: &TestServer) -> Vec<Value> {
    let mut rows = s.get("alice", "/ws/acme/audit?limit=200").await.expect(200)["items"].as_array().unwrap().clone();
    rows.sort_by_key(|r| r["seq"].as_u64());
    rows
}

async fn checkpoint(s: &TestServer) -> Value {
    let summary = s.app.checkpoint_all().await.unwrap();
    assert_eq!((summary.written, summary.broken.len()), (1, 0), "{summary:?}");
    s.get("vic", "/ws/acme/audit/checkpoints/latest").await.expect(200)
}

#[tokio::test]
async fn a_checkpoint_and_its_proofs_check_out_from_the_contract_alone() {
    let s = busy().await;
    let w = workspace_id(&s).await;
    s.get("vic", "/ws/acme/audit/checkpoints/latest").await.refused(404, "not_found");
    let key = s.get("vic", "/ws/acme/audit/key").await.expect(200);
    assert_eq!(key["algorithm"], "ecdsa-p256-sha256");
    let pem = key["public_key_pem"].as_str().unwrap();
    let spki = p256::ecdsa::VerifyingKey::from_public_key_pem(pem).unwrap().to_public_key_der().unwrap();
    assert_eq!(key["key_id"].as_str().unwrap(), hex::encode(&Sha256::digest(spki.as_bytes())[..4]));

    let first = checkpoint(&s).await;
    let note = first["note"].as_str().unwrap();
    let (size, root, head) = read_note(note, &w, pem);
    let all = rows(&s).await;
    assert_eq!((first["tree_size"].as_u64(), size), (Some(all.len() as u64), all.len() as u64));
    let leaves: Vec<H> = all.iter().map(|r| leaf(r["hash"].as_str().unwrap())).collect();
    assert_eq!(mth(&leaves), root, "the root recomputed from the rows");
    assert_eq!(head, all.last().unwrap()["hash"].as_str().unwrap());

    for r in &all {
        let p = s.get("vic", &format!("/ws/acme/audit/{}/proof", r["id"].as_str().unwrap())).await.expect(200);
        let seq = r["seq"].as_u64().unwrap();
        assert_eq!(
            (p["seq"].as_u64(), p["leaf_index"].as_u64(), p["tree_size"].as_u64()),
            (Some(seq), Some(seq - 1), Some(size))
        );
        assert_eq!(p["checkpoint"].as_str(), Some(note), "the proof comes with the checkpoint it is for");
        let proof = b64s(&p["hashes"]);
        assert!(verify_inclusion(seq - 1, size, leaves[seq as usize - 1], &proof, &root), "row {seq}");
        assert!(!verify_inclusion(seq - 1, size, leaf(&"00".repeat(32)), &proof, &root), "another leaf fails");
    }

    // More rows, a second checkpoint, and the proof that the second tree extends the first.
    let n = s.change("mia", "acme", normal_change("another")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let second = checkpoint(&s).await;
    let (size2, root2, _) = read_note(second["note"].as_str().unwrap(), &w, pem);
    assert!(size2 > size);
    let all = rows(&s).await;
    let leaves: Vec<H> = all.iter().map(|r| leaf(r["hash"].as_str().unwrap())).collect();
    assert_eq!(mth(&leaves[..size2 as usize]), root2);
    for from in 1..=size2 {
        let c = s.get("vic", &format!("/ws/acme/audit/consistency?from={from}&to={size2}")).await.expect(200);
        let from_root = mth(&leaves[..from as usize]);
        assert!(verify_consistency(from, size2, &from_root, &root2, &b64s(&c["hashes"])), "from {from}");
    }
    let c = s.get("vic", &format!("/ws/acme/audit/consistency?from={size}&to={size2}")).await.expect(200);
    assert!(!verify_consistency(size, size2, &sha(&[b"other"]), &root2, &b64s(&c["hashes"])));

    // An older tree's proof, by size, with that tree's checkpoint.
    let id = all[0]["id"].as_str().unwrap();
    let p = s.get("vic", &format!("/ws/acme/audit/{id}/proof?tree_size={size}")).await.expect(200);
    assert_eq!(p["checkpoint"].as_str(), Some(note));
    assert!(verify_inclusion(0, size, leaves[0], &b64s(&p["hashes"]), &root));

    let list = s.get("vic", "/ws/acme/audit/checkpoints?limit=1").await.expect(200);
    assert_eq!(list["items"][0]["tree_size"].as_u64(), Some(size2), "newest first");
    let cursor = list["next_cursor"].as_str().unwrap();
    let rest = s.get("vic", &format!("/ws/acme/audit/checkpoints?limit=1&cursor={cursor}")).await.expect(200);
    assert_eq!(rest["items"][0]["note"].as_str(), Some(note));

    let report = s.verify("alice", "acme").await;
    assert_eq!((report["ok"].as_bool(), report["checkpoints_checked"].as_u64()), (Some(true), Some(2)), "{report}");
}

#[tokio::test]
async fn proofs_refuse_what_is_not_a_tree_size() {
    let s = busy().await;
    let all = rows(&s).await;
    let (head, id) = (all.len(), all[2]["id"].as_str().unwrap().to_owned());
    // Before any checkpoint: the whole tree, and no note.
    let p = s.get("vic", &format!("/ws/acme/audit/{id}/proof")).await.expect(200);
    assert_eq!((p["tree_size"].as_u64(), p["checkpoint"].is_null()), (Some(head as u64), true));
    for bad in ["0", "2", "abc", "-1", "1.5", &(head + 1).to_string(), "99999999999999999999999"] {
        s.get("vic", &format!("/ws/acme/audit/{id}/proof?tree_size={bad}")).await.refused(400, "bad_request");
    }
    s.get("vic", "/ws/acme/audit/no-such-row/proof").await.refused(404, "not_found");
    let to = head.to_string();
    for q in [
        "",
        "from=1",
        &format!("to={to}"),
        &format!("from=0&to={to}"),
        "from=3&to=2",
        &format!("from=1&to={}", head + 1),
        "from=x&to=2",
        "from=-1&to=2",
    ] {
        s.get("vic", &format!("/ws/acme/audit/consistency?{q}")).await.refused(400, "bad_request");
    }
    s.get("stranger", "/ws/acme/audit/key").await.refused(404, "not_found");
    s.get("stranger", &format!("/ws/acme/audit/{id}/proof")).await.refused(404, "not_found");
}

/// Sets the chain head to row `seq` as stored, as a tamperer moving it back would.
async fn move_head_to(s: &TestServer, seq: u64) {
    let w = workspace_id(s).await;
    let row = s.table().get(&keys::audit_row(&w, seq)).await.unwrap().unwrap();
    let mut head = s.table().get(&keys::chain_head(&w)).await.unwrap().unwrap();
    head.data["seq"] = json!(seq);
    head.data["hash"] = row.data["hash"].clone();
    head.data["created_at"] = row.data["created_at"].clone();
    // Rows stored with their subtree hashes let the tamperer drop the frontier too:
    // sealing rebuilds it from the rows.
    head.data.as_object_mut().unwrap().remove("frontier");
    s.table().transact(vec![WriteOp::Put { item: head, condition: None }]).await.unwrap();
}

async fn delete_rows_from(s: &TestServer, first: u64) {
    let w = workspace_id(s).await;
    let q = Query::table(keys::audit_rows(&w)).between(keys::seq_sk(first), keys::seq_sk(u64::MAX));
    let keys: Vec<Key> = s.table().query(&q).await.unwrap().items.into_iter().map(|i| i.key).collect();
    assert!(!keys.is_empty());
    let ops = keys.into_iter().map(|key| WriteOp::Delete { key, condition: None }).collect();
    s.table().transact(ops).await.unwrap();
}

#[tokio::test]
async fn a_cut_off_tail_with_its_head_moved_back_is_caught_by_the_signed_size() {
    let s = busy().await;
    let signed = checkpoint(&s).await["tree_size"].as_u64().unwrap();
    delete_rows_from(&s, 7).await;
    move_head_to(&s, 6).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["ok"].as_bool(), r["rows_checked"].as_u64()), (Some(false), Some(6)), "{r}");
    assert_eq!((r["break"]["seq"].as_u64(), r["break"]["reason"].as_str()), (Some(7), Some("tail_truncated")));
    assert!(r["break"]["detail"].as_str().unwrap().contains(&format!("covers {signed} rows")), "{r}");

    // Nothing is signed over the cut; the refusal is in the chain, once.
    let summary = s.app.checkpoint_all().await.unwrap();
    assert_eq!((summary.written, summary.broken.len()), (0, 1), "{summary:?}");
    s.app.checkpoint_all().await.unwrap();
    let latest = s.get("vic", "/ws/acme/audit/checkpoints/latest").await.expect(200);
    assert_eq!(latest["tree_size"].as_u64(), Some(signed));
    let refused = s.get("alice", "/ws/acme/audit?action=audit.checkpoint_refused").await.expect(200);
    let items = refused["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{refused}");
    assert_eq!(items[0]["new_value"]["reason"], "tail_truncated");
    // The owner is told by email, once; nobody else is.
    let alerts: Vec<String> = s
        .outbox()
        .into_iter()
        .filter(|(_, body)| body.contains("Audit log not checkpointed"))
        .map(|(_, body)| body)
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("alice@example.com") && alerts[0].contains("tail_truncated"), "{}", alerts[0]);
}

#[tokio::test]
async fn a_wholesale_rewrite_is_caught_by_the_signed_root() {
    let s = busy().await;
    let signed = checkpoint(&s).await["tree_size"].as_u64().unwrap();
    let w = workspace_id(&s).await;
    // Edit row 3 and recompute every later hash and link, and the head: the chain
    // alone verifies again.
    let mut prev: Option<String> = None;
    for seq in 3..=signed {
        let key = keys::audit_row(&w, seq);
        let mut item = s.table().get(&key).await.unwrap().unwrap();
        if seq == 3 {
            item.data["actor"] = json!("mallory");
        }
        if let Some(p) = &prev {
            item.data["prev_hash"] = json!(p);
        }
        let mut row: vigilo_domain::audit::AuditRow = serde_json::from_value(item.data.clone()).unwrap();
        row.hash = row.hash_input().hash();
        item.data["hash"] = json!(row.hash);
        prev = Some(row.hash);
        s.table().transact(vec![WriteOp::Put { item: Item::new(key, item.data), condition: None }]).await.unwrap();
    }
    move_head_to(&s, signed).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["ok"].as_bool(), r["rows_checked"].as_u64()), (Some(false), Some(signed)), "{r}");
    assert_eq!((r["break"]["seq"].as_u64(), r["break"]["reason"].as_str()), (Some(signed), Some("root_mismatch")));
    let summary = s.app.checkpoint_all().await.unwrap();
    assert_eq!((summary.written, summary.broken.len()), (0, 1), "nothing is signed over a rewrite");
}

#[tokio::test]
async fn forged_and_unsigned_checkpoints_are_named() {
    use vigilo_domain::checkpoint::{Checkpoint, NoteSignature};
    let s = busy().await;
    let note = checkpoint(&s).await["note"].as_str().unwrap().to_owned();
    let w = workspace_id(&s).await;
    let archive = s.app.archive.clone().unwrap();
    let c = Checkpoint::parse(&note).unwrap();

    // A note signed by another key, claiming a longer tree.
    let forger = p256::ecdsa::SigningKey::from_bytes(&[5u8; 32].into()).unwrap();
    let mut forged = Checkpoint { tree_size: c.tree_size + 5, signatures: vec![], ..c.clone() };
    let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&forger, forged.body().as_bytes());
    forged.signatures.push(NoteSignature { signature: sig.to_der().as_bytes().to_vec(), ..c.signatures[0].clone() });
    let key = format!("checkpoints/{w}/{}-1.note", keys::seq_sk(forged.tree_size));
    archive.put_new(&key, forged.note().into_bytes(), "text/plain").await.unwrap();
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["ok"].as_bool(), r["break"]["reason"].as_str()), (Some(false), Some("checkpoint_forged")), "{r}");

    let s = busy().await;
    let note = checkpoint(&s).await["note"].as_str().unwrap().to_owned();
    let w = workspace_id(&s).await;
    let unsigned = Checkpoint { signatures: vec![], ..Checkpoint::parse(&note).unwrap() };
    let key = format!("checkpoints/{w}/{}-2.note", keys::seq_sk(unsigned.tree_size));
    s.app.archive.clone().unwrap().put_new(&key, unsigned.note().into_bytes(), "text/plain").await.unwrap();
    let r = s.verify("alice", "acme").await;
    assert_eq!(r["break"]["reason"].as_str(), Some("checkpoint_unsigned"), "{r}");
}

#[tokio::test]
async fn a_checkpoint_index_rewritten_to_hide_the_newest_note_hides_nothing() {
    let s = busy().await;
    let first = checkpoint(&s).await;
    let n = s.change("mia", "acme", normal_change("more")).await;
    s.act("mia", "acme", &n, "submit", json!({})).await.expect(200);
    let second = checkpoint(&s).await;
    let (small, big) = (first["tree_size"].as_u64().unwrap(), second["tree_size"].as_u64().unwrap());
    assert!(big > small);
    // Every index item now says the first note; the tail beyond it is cut off and the
    // head moved back: only the note in write-once storage still tells.
    let w = workspace_id(&s).await;
    let q = Query::table(keys::checkpoints(&w));
    for mut item in s.table().query(&q).await.unwrap().items {
        if item.data.get("note").is_some() {
            item.data["note"] = first["note"].clone();
            item.data["tree_size"] = json!(small);
            s.table().transact(vec![WriteOp::Put { item, condition: None }]).await.unwrap();
        }
    }
    delete_rows_from(&s, small + 1).await;
    move_head_to(&s, small).await;
    let r = s.verify("alice", "acme").await;
    assert_eq!((r["ok"].as_bool(), r["break"]["reason"].as_str()), (Some(false), Some("tail_truncated")), "{r}");
    assert!(r["break"]["detail"].as_str().unwrap().contains(&format!("covers {big} rows")), "{r}");
}
