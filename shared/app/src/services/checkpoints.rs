//! Signed checkpoints: the sweep that verifies each workspace's audit chain and signs
//! a note naming its tree (size, root, last row), written once outside the table.
//!
//! A note is only signed when the tree it names extends the last signed one: the chain
//! verifies, every earlier checkpoint's root equals the root recomputed from the rows,
//! and the consistency proof from the last signed tree, read from the subtree hashes
//! the rows store, checks against both roots. Otherwise nothing is signed: the refusal
//! is logged as an ERROR and written to the chain as an `audit.checkpoint_refused` row
//! (once per distinct break), so a cut-off tail or a rewrite cannot be covered by a
//! fresh signature.

use serde::Serialize;
use serde_json::{json, Value};
use vigilo_domain::audit::{genesis_hash, ChainBreak};
pub use vigilo_domain::checkpoint::check_checkpoints;
use vigilo_domain::checkpoint::missing_at as at;
use vigilo_domain::checkpoint::{Checkpoint, PublicKey};
use vigilo_domain::ids::Slug;
use vigilo_domain::merkle;

use vigilo_domain::audit_alert::{AuditAlert, RefusedCheckpoint};
use vigilo_domain::role::Role;
use vigilo_domain::workspace::Workspace;

use crate::actor::Actor;
use crate::blobs::{BlobError, Blobs};
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging::{self, Paged};
use crate::services::records::load;
use crate::services::sweeps::tally;
use crate::signer::{sign_checkpoint, Signer};
use crate::store::{Item, Query, WriteOp};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// A checkpoint as the routes answer it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub created_at: String,
    /// The signed note, exactly as written.
    pub note: String,
}

/// `GET /audit/key`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeyAnswer {
    pub key_id: String,
    pub algorithm: String,
    pub public_key_pem: String,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepSummary {
    pub workspaces: usize,
    pub written: usize,
    /// Workspaces whose checkpoint of this second was written already.
    pub unchanged: usize,
    /// Workspaces whose tree does not extend their last signed one (each is also
    /// logged as an error and recorded in their chain): nothing was signed.
    pub broken: Vec<String>,
    /// Workspaces the sweep could not checkpoint this time (each is logged as an error).
    pub failed: Vec<String>,
}

tally!(SweepSummary { sum: [workspaces, written, unchanged], lists: [broken, failed], failed: failed });

/// The folder of a workspace's checkpoint notes in write-once storage.
pub fn checkpoint_folder(workspace_id: &str) -> String {
    format!("checkpoints/{workspace_id}/")
}

/// `checkpoints/{workspace_id}/{tree_size:020}-{unix seconds}.note`: in size order,
/// then time order.
pub fn checkpoint_key(workspace_id: &str, tree_size: u64, created_unix: i64) -> String {
    format!("{}{}-{created_unix}.note", checkpoint_folder(workspace_id), keys::seq_sk(tree_size))
}

/// A checkpoint's `created_at`: RFC 3339 UTC to the second.
fn created_at(now: jiff::Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn stored(item: &Item) -> Option<StoredCheckpoint> {
    let d = &item.data;
    Some(StoredCheckpoint {
        tree_size: d.get("tree_size")?.as_u64()?,
        created_at: d.get("created_at")?.as_str()?.to_owned(),
        note: d.get("note")?.as_str()?.to_owned(),
    })
}

impl Vigilo {
    fn signer(&self) -> AppResult<&dyn Signer> {
        self.signer.as_deref().ok_or_else(|| AppError::Corrupt("no audit signing key is configured".into()))
    }

    pub(crate) fn archive(&self) -> AppResult<&dyn Blobs> {
        self.archive.as_deref().ok_or_else(|| AppError::Corrupt("no archive storage is configured".into()))
    }

    /// The keys a checkpoint may be signed with: the signing key, and the keys it
    /// replaced.
    pub(crate) fn audit_keys(&self) -> Vec<PublicKey> {
        let Some(s) = &self.signer else { return Vec::new() };
        std::iter::once(s.public_key()).chain(s.retired_keys()).cloned().collect()
    }

    /// Every checkpoint note of a workspace: those the table indexes, and those in
    /// write-once storage it does not (an index item deleted hides nothing; one edited
    /// fails its signature). Reading the index rather than each object keeps this one
    /// listing and one query however many hourly notes there are.
    pub async fn checkpoint_notes(&self, w: &str) -> AppResult<Vec<String>> {
        let mut notes = Vec::new();
        let mut indexed = std::collections::HashSet::new();
        let q = Query::table(keys::checkpoints(w)).begins_with(keys::CHECKPOINT_BY_TIME).limit(1000);
        let mut page = self.table.query(&q).await?;
        loop {
            for item in &page.items {
                let Some(c) = stored(item) else { continue };
                // Counted for its object only if the note is the one that object's
                // name says (its size and second): an index item rewritten to an older
                // note must not hide the newer one in storage.
                let named = Checkpoint::parse(&c.note).ok().and_then(|n| {
                    let unix = n.created_at.parse::<jiff::Timestamp>().ok()?.as_second();
                    Some(checkpoint_key(w, n.tree_size, unix))
                });
                if let Some(object) = item.data.get("object").and_then(Value::as_str) {
                    if named.as_deref() == Some(object) {
                        indexed.insert(object.to_owned());
                    }
                }
                notes.push(c.note);
            }
            match page.last.take() {
                Some(p) => page = self.table.query(&q.clone().after(Some(p))).await?,
                None => break,
            }
        }
        if let Some(archive) = &self.archive {
            for key in archive.list(&checkpoint_folder(w)).await.map_err(blob_error)? {
                if indexed.contains(&key) {
                    continue;
                }
                if let Some(body) = archive.get(&key).await.map_err(blob_error)? {
                    notes.push(String::from_utf8_lossy(&body).into_owned());
                }
            }
        }
        notes.sort();
        notes.dedup();
        Ok(notes)
    }

    /// The newest checkpoint the table lists.
    pub async fn latest_checkpoint(&self, w: &str) -> AppResult<Option<StoredCheckpoint>> {
        let q = Query::table(keys::checkpoints(w)).begins_with(keys::CHECKPOINT_BY_TIME).backward().limit(1);
        Ok(self.table.query(&q).await?.items.first().and_then(stored))
    }

    /// The newest checkpoint of tree size `size`.
    pub async fn checkpoint_of_size(&self, w: &str, size: u64) -> AppResult<Option<StoredCheckpoint>> {
        Ok(self.table.get(&keys::checkpoint_by_size(w, size)).await?.as_ref().and_then(stored))
    }

    /// `GET /audit/checkpoints` (viewer+): newest first.
    pub async fn list_checkpoints(
        &self,
        actor: &Actor,
        slug: &Slug,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Paged<StoredCheckpoint>> {
        let access = self.access(actor, slug).await?;
        let q = Query::table(keys::checkpoints(access.ws())).begins_with(keys::CHECKPOINT_BY_TIME).backward();
        let (items, next_cursor) =
            paging::collect(&*self.table, q, limit, cursor, |item| std::future::ready(Ok(stored(item)))).await?;
        Ok(Paged { items, next_cursor })
    }

    /// `GET /audit/checkpoints/latest` (viewer+).
    pub async fn get_latest_checkpoint(&self, actor: &Actor, slug: &Slug) -> AppResult<StoredCheckpoint> {
        let access = self.access(actor, slug).await?;
        self.latest_checkpoint(access.ws()).await?.ok_or(AppError::NotFound)
    }

    /// `GET /audit/key` (viewer+).
    pub async fn audit_key(&self, actor: &Actor, slug: &Slug) -> AppResult<KeyAnswer> {
        self.access(actor, slug).await?;
        let key = self.signer()?.public_key();
        Ok(KeyAnswer {
            key_id: key.id_hex(),
            algorithm: vigilo_domain::checkpoint::ALGORITHM.into(),
            public_key_pem: key.pem(),
        })
    }

    /// Checkpoints every workspace. Safe to run at any time and more than once.
    pub async fn checkpoint_all(&self) -> AppResult<SweepSummary> {
        self.each_workspace("checkpoints", |ws| async move { self.checkpoint_workspace(&ws).await }).await
    }

    /// Verifies one workspace's chain and its checkpoints, proves the tree extends the
    /// last signed one, then signs and writes a new checkpoint (even when nothing
    /// changed: an hourly note shows the log was whole at that hour).
    pub async fn checkpoint_workspace(&self, id: &str) -> AppResult<SweepSummary> {
        let mut summary = SweepSummary { workspaces: 1, ..SweepSummary::default() };
        match self.sign_checkpoint(id).await? {
            Signed::Written(_) => summary.written += 1,
            Signed::Exists => summary.unchanged += 1,
            Signed::Refused(b) => {
                tracing::error!(workspace_id = id, reason = %b.reason, seq = b.seq, detail = %b.detail, "audit checkpoint refused");
                self.record_refusal(id, &b).await?;
                summary.broken.push(id.to_owned());
            }
        }
        Ok(summary)
    }

    /// Signs and writes the checkpoint of a workspace's tree as it is now.
    pub async fn sign_checkpoint(&self, w: &str) -> AppResult<Signed> {
        let (signer, archive) = (self.signer()?, self.archive()?);
        let report = self.verify_chain(w, |_, _| {}).await?;
        if let Some(b) = report.chain_break.clone() {
            return Ok(Signed::Refused(b));
        }
        let size = report.rows_checked;
        let root = report.roots.iter().find(|r| r.size == size).map_or_else(merkle::empty_root, |r| r.root);
        if let Some(b) = self.extends_last_signed(w, size, &root).await? {
            return Ok(Signed::Refused(b));
        }
        let now = self.now();
        let mut checkpoint = Checkpoint {
            workspace_id: w.to_owned(),
            tree_size: size,
            root,
            head_hash: report.last_hash.clone().unwrap_or_else(|| genesis_hash(w)),
            created_at: created_at(now),
            signatures: Vec::new(),
        };
        sign_checkpoint(signer, &mut checkpoint).await.map_err(|e| AppError::Corrupt(e.to_string()))?;
        let note = checkpoint.note();
        let object = checkpoint_key(w, size, now.as_second());
        let stored = match archive.put_new(&object, note.clone().into_bytes(), "text/plain; charset=utf-8").await {
            Ok(s) => s,
            Err(BlobError::Exists(_)) => return Ok(Signed::Exists),
            Err(e) => return Err(blob_error(e)),
        };
        let data = json!({
            "tree_size": size,
            "created_at": checkpoint.created_at,
            "note": note,
            "object": object,
            "object_sha256": stored.sha256,
            "object_version": stored.version_id,
        });
        let by_time = keys::checkpoint_by_time(w, &checkpoint.created_at, size);
        let ops = vec![
            WriteOp::Put { item: Item::new(by_time, data.clone()), condition: None },
            WriteOp::Put { item: Item::new(keys::checkpoint_by_size(w, size), data), condition: None },
            // Signed again: a later refusal is news.
            WriteOp::Delete { key: keys::checkpoint_refusal(w), condition: None },
        ];
        self.table.transact(ops).await?;
        Ok(Signed::Written(StoredCheckpoint { tree_size: size, created_at: checkpoint.created_at, note }))
    }

    /// Whether the tree of `size` rows with `root` extends the last signed tree: a
    /// consistency proof from the stored subtree hashes, checked against both roots.
    /// `Some(break)` when it does not.
    async fn extends_last_signed(&self, w: &str, size: u64, root: &merkle::Hash) -> AppResult<Option<ChainBreak>> {
        let keys = self.audit_keys();
        let last = self
            .checkpoint_notes(w)
            .await?
            .iter()
            .filter_map(|n| Checkpoint::parse(n).ok())
            .filter(|c| keys.iter().any(|k| c.signed_by(k)))
            .max_by_key(|c| c.tree_size);
        let Some(last) = last else { return Ok(None) };
        if last.tree_size > size {
            let detail = format!("the last signed tree has {} rows, the chain {size}", last.tree_size);
            return Ok(Some(at(size + 1, "tail_truncated", detail)));
        }
        // A tree signed before the last cut is proven by the walk alone (its root was
        // recomputed from the archived rows); the table keeps no subtrees inside it.
        if last.tree_size < self.archive_state(w).await?.archived_through {
            return Ok(None);
        }
        let proof = match self.tree_consistency(w, last.tree_size, size).await {
            Ok(p) => p,
            Err(AppError::Corrupt(e)) => return Ok(Some(at(last.tree_size, "tree_inconsistent", e))),
            Err(e) => return Err(e),
        };
        if merkle::verify_consistency(last.tree_size, size, &last.root, root, &proof) {
            Ok(None)
        } else {
            let detail = format!(
                "the stored tree does not prove that {size} rows extend the {} signed at {}",
                last.tree_size, last.created_at
            );
            Ok(Some(at(last.tree_size, "tree_inconsistent", detail)))
        }
    }

    /// Writes an `audit.checkpoint_refused` row, once for each kind of refusal until a
    /// checkpoint is signed again (the row itself moves the chain on, so the break's
    /// seq is not what makes a refusal new).
    async fn record_refusal(&self, w: &str, b: &ChainBreak) -> AppResult<()> {
        let mark = keys::checkpoint_refusal(w);
        let seen = self.table.get(&mark).await?;
        let this = json!({"reason": b.reason});
        if seen.as_ref().is_some_and(|i| i.data.get("seen") == Some(&this)) {
            return Ok(());
        }
        let now = self.now();
        let mut tx = self.tx(w, None);
        tx.derived(WriteOp::Put { item: Item::new(mark, json!({"seen": this})), condition: None });
        // The owners hear of it by email.
        let workspace: Workspace = load(&*self.table, &keys::workspace(w)).await?.ok_or(AppError::NotFound)?;
        let owners = self.all_members(w).await?.into_iter().filter(|m| m.role == Role::Owner);
        let refused = RefusedCheckpoint { reason: b.reason.clone(), seq: b.seq, detail: b.detail.clone() };
        let alerts: Vec<AuditAlert> = owners
            .map(|m| AuditAlert {
                id: uuid::Uuid::new_v4().to_string(),
                workspace_id: w.to_owned(),
                workspace_name: workspace.name.clone(),
                locale: workspace.locale,
                recipient: m.user_id,
                recipient_email: m.email,
                recipient_name: m.name,
                checkpoint_refused: refused.clone(),
                created_at: now,
            })
            .collect();
        if self.delivery.is_some() {
            for a in &alerts {
                tx.derived(crate::services::notices::queued(a, w, &a.id, now));
            }
        }
        let detail = json!({"seq": b.seq, "reason": b.reason, "detail": b.detail, "row_id": b.row_id});
        tx.audit(
            AuditEntry::new("audit.checkpoint_refused", "Workspace", w)
                .values(Value::Null, detail)
                .meta(json!({"actor_kind": "sweep:checkpoint"})),
        );
        tx.commit(now).await?;
        if self.delivery.is_some() {
            if let Err(e) = self.deliver_pending(w).await {
                tracing::warn!(error = %e, "checkpoint alerts deferred");
            }
        }
        Ok(())
    }
}

/// What signing a checkpoint came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Signed {
    Written(StoredCheckpoint),
    /// This workspace's checkpoint of this size and second exists already.
    Exists,
    /// The tree does not extend the last signed one: nothing was signed.
    Refused(ChainBreak),
}

fn blob_error(e: BlobError) -> AppError {
    AppError::Corrupt(format!("archive storage: {e}"))
}
