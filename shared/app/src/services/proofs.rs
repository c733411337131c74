//! Inclusion and consistency proofs over the audit log's Merkle tree, read from the
//! subtree hashes sealing stores on each row ([`vigilo_domain::merkle`]): a proof reads
//! O(log n) rows, never the chain.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use vigilo_domain::ids::Slug;
use vigilo_domain::merkle::{self, Hash, Nodes};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::store::{Query, SNAPSHOT_CHUNK};
use crate::txn::load_head;
use crate::Vigilo;

/// `GET /audit/{id}/proof`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InclusionAnswer {
    pub seq: u64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// RFC 9162 inclusion proof, standard base64, leaf side first.
    pub hashes: Vec<String>,
    /// The signed checkpoint of this tree size, when there is one.
    pub checkpoint: Option<String>,
}

/// `GET /audit/consistency`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConsistencyAnswer {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}

/// Aligned subtree hashes read for one proof.
struct ReadNodes(HashMap<(u32, u64), Hash>);

impl Nodes for ReadNodes {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.0.get(&(level, index)).copied()
    }
}

fn base64_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// The subtree hash at `level` a stored row carries, if it does.
fn stored_level(data: &Value, level: u32) -> Option<Hash> {
    data.get("tree")?.as_array()?.get(level as usize)?.as_str().and_then(merkle::parse_hex)
}

impl Vigilo {
    /// Reads the aligned subtrees `needed` of a workspace's tree from the rows that
    /// store them. A row sealed before the tree was kept stores none: its subtree is
    /// computed from the rows it covers.
    async fn tree_nodes(&self, w: &str, needed: &[(u32, u64)]) -> AppResult<ReadNodes> {
        let mut found = HashMap::new();
        // Archived rows are out of the table; the subtrees over them that proofs of
        // later rows need are the frontier kept at the cut.
        let archive = self.archive_state(w).await?;
        let archived = archive.archived_through;
        let kept: HashMap<(u32, u64), Hash> =
            merkle::frontier_nodes(archived).into_iter().zip(archive.frontier()?).collect();
        let mut wanted: Vec<(u32, u64)> = needed.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut seqs: Vec<u64> = wanted.iter().map(|&(l, i)| merkle::stored_at(l, i)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut rows = HashMap::new();
        for chunk in seqs.chunks(SNAPSHOT_CHUNK) {
            let keys: Vec<_> = chunk.iter().map(|&s| keys::audit_row(w, s)).collect();
            for (seq, item) in chunk.iter().zip(self.table.snapshot(&keys).await?) {
                if let Some(item) = item {
                    rows.insert(*seq, item.data);
                }
            }
        }
        for (level, index) in wanted {
            let at = merkle::stored_at(level, index);
            let hash = match rows.get(&at).and_then(|d| stored_level(d, level)) {
                Some(h) => h,
                None if at <= archived => *kept.get(&(level, index)).ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "rows up to {archived} are archived: prove them from an export (vigilo audit export)"
                    ))
                })?,
                None => self.subtree_from_rows(w, level, index).await?,
            };
            found.insert((level, index), hash);
        }
        Ok(ReadNodes(found))
    }

    /// An aligned subtree's hash folded from the rows it covers.
    async fn subtree_from_rows(&self, w: &str, level: u32, index: u64) -> AppResult<Hash> {
        let (first, count) = ((index << level) + 1, 1u64 << level);
        let start = keys::audit_row(w, first - 1);
        let q = Query::table(keys::audit_rows(w))
            .limit(1000)
            .after((first > 1).then(|| crate::store::Position { index_sk: start.sk.clone(), key: start }));
        let mut range = merkle::CompactRange::new(0);
        let mut page = self.table.query(&q).await?;
        loop {
            for item in &page.items {
                if range.end() == count {
                    break;
                }
                let hash = item.data.get("hash").and_then(Value::as_str).and_then(merkle::parse_hex);
                let seq = item.data.get("seq").and_then(Value::as_u64);
                match (hash, seq) {
                    (Some(h), Some(s)) if s == first + range.end() => range.push(merkle::leaf_hash(&h)),
                    _ => {
                        return Err(AppError::Corrupt(format!(
                            "audit row {} is missing or unreadable",
                            first + range.end()
                        )))
                    }
                }
            }
            match page.last.take() {
                Some(p) if range.end() < count => page = self.table.query(&q.clone().after(Some(p))).await?,
                _ => break,
            }
        }
        if range.end() != count {
            return Err(AppError::Corrupt(format!("audit row {} is missing", first + range.end())));
        }
        Ok(range.root_after(&[]))
    }

    /// The root of the first `size` rows of a workspace's tree.
    pub async fn tree_root(&self, w: &str, size: u64) -> AppResult<Hash> {
        let nodes = self.tree_nodes(w, &merkle::frontier_nodes(size)).await?;
        merkle::range_hash(&nodes, 0, size).ok_or_else(|| AppError::Corrupt("the tree is incomplete".into()))
    }

    /// The consistency proof between two sizes of a workspace's tree.
    pub async fn tree_consistency(&self, w: &str, from: u64, to: u64) -> AppResult<Vec<Hash>> {
        let nodes = self.tree_nodes(w, &merkle::consistency_nodes(from, to)).await?;
        merkle::consistency_proof(&nodes, from, to).map_err(|e| AppError::Corrupt(e.to_string()))
    }

    /// `GET /audit/{id}/proof?tree_size=N` (viewer+): the row's inclusion proof in the
    /// tree of `tree_size` rows, by default the latest checkpoint's (or the whole tree
    /// when no checkpoint covers the row yet).
    pub async fn audit_proof(
        &self,
        actor: &Actor,
        slug: &Slug,
        id: &str,
        tree_size: Option<u64>,
    ) -> AppResult<InclusionAnswer> {
        let row = self.get_audit_row(actor, slug, id).await?;
        let access = self.access(actor, slug).await?;
        let w = access.ws();
        let seq = row.get("seq").and_then(Value::as_u64).ok_or_else(|| AppError::Corrupt("row without seq".into()))?;
        let head = load_head(&*self.table, w).await?.map_or(0, |h| h.seq);
        let latest = self.latest_checkpoint(w).await?;
        let size = match tree_size {
            Some(n) if n < seq || n > head => {
                return Err(AppError::BadRequest(format!(
                    "tree_size must be between the row's seq ({seq}) and the tree's size ({head})"
                )))
            }
            Some(n) => n,
            None => latest.as_ref().map(|c| c.tree_size).filter(|&n| n >= seq).unwrap_or(head),
        };
        let nodes = self.tree_nodes(w, &merkle::inclusion_nodes(seq - 1, size)).await?;
        let proof = merkle::inclusion_proof(&nodes, seq - 1, size).map_err(|e| AppError::Corrupt(e.to_string()))?;
        let checkpoint = match latest {
            Some(c) if c.tree_size == size => Some(c.note),
            _ => self.checkpoint_of_size(w, size).await?.map(|c| c.note),
        };
        Ok(InclusionAnswer { seq, leaf_index: seq - 1, tree_size: size, hashes: base64_all(&proof), checkpoint })
    }

    /// `GET /audit/consistency?from=M&to=N` (viewer+).
    pub async fn audit_consistency(
        &self,
        actor: &Actor,
        slug: &Slug,
        from: u64,
        to: u64,
    ) -> AppResult<ConsistencyAnswer> {
        let access = self.access(actor, slug).await?;
        let w = access.ws();
        let head = load_head(&*self.table, w).await?.map_or(0, |h| h.seq);
        if from == 0 || from > to || to > head {
            return Err(AppError::BadRequest(format!("from and to must satisfy 1 <= from <= to <= {head}")));
        }
        let proof = self.tree_consistency(w, from, to).await?;
        Ok(ConsistencyAnswer { from, to, hashes: base64_all(&proof) })
    }
}
