//! The sequencer of the audit chain.
//!
//! A write commits its audit entries into the workspace's queue (`keys::audit_queue`),
//! in the same transaction as the state they record, conditioned only on what its rules
//! read. Sealing takes what waits in the queue, oldest first, gives each entry the next
//! `seq`, its `prev_hash` and `hash`, and in one transaction writes the rows, removes
//! the entries and moves the chain head, conditioned on the head it read. Only sealing
//! writes the head, so unrelated writes in a workspace no longer race each other; two
//! sealers racing on one head lose nothing: the loser's transaction fails as a whole
//! and it reads again, finding the entries sealed.
//!
//! The chain stays gapless and unforked (one head, moved only by a transaction that
//! extends it by exactly the rows it writes), every entry is sealed exactly once (it
//! leaves the queue in the transaction that writes its row), and `created_at` never
//! goes backwards along the chain (a row takes the later of its entry's time and the
//! row before it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vigilo_domain::audit::{genesis_hash, AuditRow, ChainHead, HashInput};
use vigilo_domain::merkle::{self, Hash};

use crate::error::{AppError, AppResult};
use crate::keys;
use crate::store::{Condition, InPlace, Item, Query, StoreError, Table, WriteOp, MAX_TRANSACTION_ITEMS};
use crate::txn::{decode_head, load_head};

/// An audit entry as it waits in the queue: the row without its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    pub id: String,
    pub workspace_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub actor: Option<String>,
    pub old_value: Value,
    pub new_value: Value,
    pub metadata: Value,
    /// When the write committed it (RFC 3339, as the row will carry it unless the row
    /// before it is later).
    pub created_at: String,
    /// The change the row concerns, for the activity index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// How long a queued entry may wait before the store may drop it by itself: far beyond
/// any sealing delay, so only a queue no sealer ever reached again would lose one.
const QUEUE_TTL_SECS: i64 = 90 * 24 * 3600;

impl Queued {
    /// The queue item: ordered by commit time, then by the writing transaction and the
    /// entry's place in it, so one transaction's rows are sealed in the order written.
    pub fn item(&self, tx_id: &str, index: usize, now_unix: i64) -> Item {
        let data = serde_json::to_value(self).unwrap_or(Value::Null);
        Item::new(keys::audit_queued(&self.workspace_id, &self.created_at, tx_id, index), data)
            .expires(now_unix + QUEUE_TTL_SECS)
    }
}

/// Rows sealed at most per transaction: a row and its queue entry each take one of the
/// store's items, and the head one more.
const SEAL_BATCH: usize = 49;
/// Lost races in a row before a sealing pass gives up (the next write or the sweep
/// seals what is left).
const MAX_LOST_RACES: u32 = 30;

/// What one sealing pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sealed {
    pub rows: u64,
    /// The chain's length after the pass.
    pub head_seq: u64,
}

/// Seals everything waiting in a workspace's queue. Safe to run anywhere, any number of
/// times at once: sealers race only on the head, and a lost race re-reads.
pub async fn seal(table: &dyn Table, workspace_id: &str) -> AppResult<Sealed> {
    let mut sealed = Sealed::default();
    let mut lost = 0;
    // The head this pass wrote last, so the next round need not read it again.
    let mut known: Option<Option<ChainHead>> = None;
    loop {
        let mut head = match known.take() {
            Some(head) => head,
            None => load_head(table, workspace_id).await?,
        };
        if let Some(h) = head.as_mut().filter(|h| h.frontier.is_none()) {
            h.frontier = Some(legacy_frontier(table, workspace_id, h.seq).await?);
        }
        sealed.head_seq = head.as_ref().map_or(0, |h| h.seq);
        let page = table.query(&queue_page(workspace_id)).await?;
        if page.items.is_empty() {
            return Ok(sealed);
        }
        // Nothing more was queued when the page was read. An entry queued since is
        // followed by a pass of its own (its writer's, or its stream record's).
        let whole_queue = page.last.is_none();
        let queued = page.items.len();
        let round = Round::plan(workspace_id, head.as_ref(), page.items, |op| table.extra_items(op))?;
        let (count, new_head) = (round.count, round.head.clone());
        match table.transact(round.ops).await {
            Ok(()) => {
                sealed.rows += count as u64;
                sealed.head_seq = new_head.seq;
                lost = 0;
                if whole_queue && count == queued {
                    return Ok(sealed);
                }
                known = Some(Some(new_head));
            }
            Err(StoreError::ConditionFailed { .. }) => {
                // Another sealer moved the head or took these entries first.
                lost += 1;
                if lost >= MAX_LOST_RACES {
                    return Err(AppError::Contended);
                }
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Seals a workspace's queue inside a transaction of a store with one writer, where
/// nothing else can move the head meanwhile: the same rows as [`seal`], written in the
/// commit that queued them, so a write costs one commit, not two. `fresh` holds the
/// entries that very commit queues, not yet written: they are sealed from memory, in
/// their place among the stored ones, and so never written to the queue only to be
/// removed again; what is left in `fresh` afterwards (entries a full round could not
/// take, or all of them after an error) the caller writes to the queue. Each round is
/// decoded and planned before anything of it is written: an entry that cannot be read
/// leaves the queue as it was from that round on.
pub fn seal_in_place(view: &mut dyn InPlace, workspace_id: &str, fresh: &mut Vec<Item>) -> AppResult<Sealed> {
    let mut head = decode_head(view.get(&keys::chain_head(workspace_id))?)?;
    if let Some(h) = head.as_mut().filter(|h| h.frontier.is_none()) {
        h.frontier = Some(legacy_frontier_in_place(&*view, workspace_id, h.seq)?);
    }
    let mut sealed = Sealed { rows: 0, head_seq: head.as_ref().map_or(0, |h| h.seq) };
    loop {
        let stored = view.query(&queue_page(workspace_id))?;
        // Fresh entries join the page where they sort among the stored ones it holds;
        // a stored page that stops short of the queue's end bounds them.
        let bound = stored.last.as_ref().map(|p| p.key.sk.clone());
        let (joining, later): (Vec<Item>, Vec<Item>) =
            std::mem::take(fresh).into_iter().partition(|i| bound.as_ref().is_none_or(|b| i.key.sk < *b));
        *fresh = later;
        let mut page = stored.items;
        page.extend(joining.iter().cloned());
        page.sort_by(|a, b| a.key.sk.cmp(&b.key.sk));
        page.truncate(SEAL_BATCH);
        if page.is_empty() {
            return Ok(sealed);
        }
        let round = match Round::plan(workspace_id, head.as_ref(), page, |op| view.extra_items(op)) {
            Ok(round) => round,
            Err(e) => {
                fresh.extend(joining);
                return Err(e);
            }
        };
        // The conditions hold by construction: the writer read the head itself. A fresh
        // entry's removal is its not being written.
        let mut taken = std::collections::HashSet::new();
        for op in &round.ops {
            match op {
                WriteOp::Delete { key, .. } if joining.iter().any(|i| &i.key == key) => {
                    taken.insert(key.clone());
                }
                op => view.write(op)?,
            }
        }
        fresh.extend(joining.into_iter().filter(|i| !taken.contains(&i.key)));
        fresh.sort_by(|a, b| a.key.sk.cmp(&b.key.sk));
        sealed.rows += round.count as u64;
        sealed.head_seq = round.head.seq;
        head = Some(round.head);
    }
}

/// The first page of a workspace's queue, oldest first.
fn queue_page(workspace_id: &str) -> Query {
    Query::table(keys::audit_queue(workspace_id)).limit(SEAL_BATCH)
}

/// One round of sealing: the rows for the first entries of a page of the queue, each
/// entry's removal, and the head moved over them, conditioned on the head as read.
struct Round {
    ops: Vec<WriteOp>,
    /// How many entries of the page it seals (what fits in one transaction).
    count: usize,
    head: ChainHead,
}

impl Round {
    fn plan(
        workspace_id: &str,
        head: Option<&ChainHead>,
        page: Vec<Item>,
        extra_items: impl Fn(&WriteOp) -> usize,
    ) -> AppResult<Round> {
        let (mut seq, mut prev, mut last_time) = match head {
            Some(h) => (h.seq, h.hash.clone(), h.created_at.clone().unwrap_or_default()),
            None => (0, genesis_hash(workspace_id), String::new()),
        };
        let mut frontier = decode_frontier(head)?;
        let mut ops = Vec::with_capacity(2 * page.len() + 1);
        let mut weight = 1;
        let mut count = 0;
        for item in page {
            let entry: Queued =
                serde_json::from_value(item.data).map_err(|e| AppError::Corrupt(format!("queued audit entry: {e}")))?;
            let created_at = if entry.created_at > last_time { entry.created_at.clone() } else { last_time.clone() };
            let hash = HashInput {
                prev_hash: &prev,
                action: &entry.action,
                target_type: &entry.target_type,
                target_id: &entry.target_id,
                actor_id: entry.actor.as_deref(),
                old_value: &entry.old_value,
                new_value: &entry.new_value,
                metadata: &entry.metadata,
                created_at: &created_at,
            }
            .hash();
            let row = AuditRow {
                id: entry.id,
                seq: seq + 1,
                workspace_id: workspace_id.to_owned(),
                action: entry.action,
                target_type: entry.target_type,
                target_id: entry.target_id,
                actor: entry.actor,
                old_value: entry.old_value,
                new_value: entry.new_value,
                metadata: entry.metadata,
                created_at: created_at.clone(),
                prev_hash: prev.clone(),
                hash: hash.clone(),
            };
            let mut grown = frontier.clone();
            let leaf = merkle::parse_hex(&hash).ok_or_else(|| AppError::Corrupt("a row hash is not hex".into()))?;
            let completed = merkle::append(&mut grown, seq, merkle::leaf_hash(&leaf));
            let row_item = row_item(&row, entry.subject.as_deref(), &completed);
            let put = WriteOp::Put { item: row_item, condition: Some(Condition::NotExists) };
            let w = 2 + extra_items(&put);
            if weight + w > MAX_TRANSACTION_ITEMS && count > 0 {
                // The rest waits for the next round.
                break;
            }
            weight += w;
            count += 1;
            seq += 1;
            frontier = grown;
            prev = hash;
            last_time = created_at;
            ops.push(put);
            ops.push(WriteOp::Delete { key: item.key, condition: Some(Condition::Exists) });
        }
        let expected = match head {
            Some(h) => Condition::Equals(vec![("seq".into(), json!(h.seq)), ("hash".into(), json!(h.hash))]),
            None => Condition::NotExists,
        };
        let frontier = hex_all(&frontier);
        let new_head = json!({"seq": seq, "hash": prev, "created_at": last_time, "workspace_id": workspace_id,
            "frontier": frontier});
        ops.push(WriteOp::Put { item: Item::new(keys::chain_head(workspace_id), new_head), condition: Some(expected) });
        let head = ChainHead { seq, hash: prev, created_at: Some(last_time), frontier: Some(frontier) };
        Ok(Round { ops, count, head })
    }
}

fn hex_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// The tree's frontier as the head stores it (empty before the first row).
pub fn decode_frontier(head: Option<&ChainHead>) -> AppResult<Vec<Hash>> {
    let Some(list) = head.and_then(|h| h.frontier.as_ref()) else { return Ok(Vec::new()) };
    let frontier: Option<Vec<Hash>> = list.iter().map(|h| merkle::parse_hex(h)).collect();
    match frontier {
        Some(f) if f.len() as u32 == head.map_or(0, |h| h.seq.count_ones()) => Ok(f),
        _ => Err(AppError::Corrupt("the chain head's tree frontier is malformed".into())),
    }
}

/// The frontier of a chain sealed before the tree was kept, folded once from its
/// rows' hashes page by page; every sealing pass keeps it from then on. (Rows sealed
/// before carry no stored subtree hashes; proofs compute those they need from rows.)
#[derive(Default)]
struct LegacyFold {
    tree: Vec<Hash>,
    size: u64,
}

impl LegacyFold {
    fn query(workspace_id: &str) -> Query {
        Query::table(keys::audit_rows(workspace_id)).limit(1000)
    }

    /// Folds a page in; the position to read on from, while rows up to `seq` remain.
    fn page(&mut self, page: crate::store::Page, seq: u64) -> Option<crate::store::Position> {
        for item in &page.items {
            let hash = item.data.get("hash").and_then(Value::as_str).and_then(merkle::parse_hex);
            if let Some(hash) = hash.filter(|_| self.size < seq) {
                merkle::append(&mut self.tree, self.size, merkle::leaf_hash(&hash));
                self.size += 1;
            }
        }
        page.last.filter(|_| self.size < seq)
    }

    fn finish(self, seq: u64) -> AppResult<Vec<String>> {
        if self.size != seq {
            return Err(AppError::Corrupt(format!("the chain head records {seq} rows but {} are readable", self.size)));
        }
        Ok(hex_all(&self.tree))
    }
}

async fn legacy_frontier(table: &dyn Table, workspace_id: &str, seq: u64) -> AppResult<Vec<String>> {
    let mut fold = LegacyFold::default();
    let q = LegacyFold::query(workspace_id);
    let mut at = fold.page(table.query(&q).await?, seq);
    while let Some(p) = at {
        at = fold.page(table.query(&q.clone().after(Some(p))).await?, seq);
    }
    fold.finish(seq)
}

fn legacy_frontier_in_place(view: &dyn InPlace, workspace_id: &str, seq: u64) -> AppResult<Vec<String>> {
    let mut fold = LegacyFold::default();
    let q = LegacyFold::query(workspace_id);
    let mut at = fold.page(view.query(&q)?, seq);
    while let Some(p) = at {
        at = fold.page(view.query(&q.clone().after(Some(p)))?, seq);
    }
    fold.finish(seq)
}

/// How many entries wait to be sealed, counting up to `limit`.
pub async fn waiting(table: &dyn Table, workspace_id: &str, limit: usize) -> AppResult<u64> {
    let page = table.query(&Query::table(keys::audit_queue(workspace_id)).limit(limit)).await?;
    Ok(page.items.len() as u64)
}

/// The stored form of an audit row, with the tree's subtree hashes its leaf completes
/// (`tree`, level 0 first) and an entry in each audit index it belongs to.
pub fn row_item(row: &AuditRow, subject: Option<&str>, tree: &[Hash]) -> Item {
    let w = &row.workspace_id;
    let mut data = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut data {
        if let Some(s) = subject {
            m.insert("subject".into(), json!(s));
        }
        m.insert("tree".into(), json!(hex_all(tree)));
    }
    let mut item = Item::new(keys::audit_row(w, row.seq), data)
        .index(keys::AUDIT_ID, keys::audit_by_id(&row.id))
        .index(keys::AUDIT_TARGET, keys::audit_by_target(w, &row.target_type, &row.target_id, row.seq))
        .index(keys::AUDIT_ACTION, keys::audit_by_action(w, &row.action, row.seq));
    if let Some(actor) = &row.actor {
        item = item.index(keys::AUDIT_ACTOR, keys::audit_by_actor(w, actor, row.seq));
    }
    if let Some(s) = subject {
        item = item.index(keys::AUDIT_SUBJECT, keys::audit_by_subject(w, s, row.seq));
    }
    item
}

/// Seals in the process that wrote: one sealer per workspace at a time, so writers
/// racing in one process wait for the pass already running (which seals their entries
/// too) instead of racing it on the head.
#[derive(Default)]
pub struct Sealer {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Sealer {
    fn lock_for(&self, workspace_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() > 10_000 {
            // Forget idle workspaces; a lock someone holds or waits on stays shared.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(workspace_id.to_owned()).or_default().clone()
    }

    /// Seals the workspace's queue, after any pass of this process already running.
    pub async fn seal(&self, table: &dyn Table, workspace_id: &str) -> AppResult<Sealed> {
        let lock = self.lock_for(workspace_id);
        let _turn = lock.lock().await;
        seal(table, workspace_id).await
    }
}
