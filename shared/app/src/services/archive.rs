//! The archive sweep: rows older than a workspace's `audit_retention_days` leave the
//! live table for write-once JSON Lines segments (S3 Object Lock on AWS, the data
//! folder's `archive/` locally), with an `audit.archive` row in the chain and a signed
//! checkpoint at the cut.
//!
//! The order is what makes it safe: the chain is verified first (nothing broken is
//! archived); each segment is written, then read back (checksum, lock mode,
//! retain-until) before anything refers to it; the segment item, the archive state
//! and the `audit.archive` row commit together; only then are the live rows deleted.
//! A crash at any step leaves either rows still live (archived again next time: the
//! segment, written once, is found and checked) or rows archived and recorded whose
//! deletion the next run finishes.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vigilo_domain::audit::{AuditRow, ChainBreak};
use vigilo_domain::ids::Slug;
use vigilo_domain::merkle::{self, Hash};
use vigilo_domain::workspace::Workspace;

use crate::blobs::{BlobError, ObjectHead};
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::services::checkpoints::Signed;
use crate::services::records::load;
use crate::services::sweeps::tally;
use crate::store::{Condition, Item, Position, Query, WriteOp};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// Rows per segment at most: a segment stays a few megabytes, read whole to verify.
pub const SEGMENT_ROWS: usize = 5000;

/// Live rows deleted per transaction.
const DELETE_BATCH: usize = 25;

/// One archived segment, as the table records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    pub first: u64,
    pub last: u64,
    pub object: String,
    /// Lowercase hex SHA-256 of the object.
    pub sha256: String,
    pub version_id: Option<String>,
    pub lock_mode: Option<String>,
    pub retain_until: Option<String>,
}

/// How far a workspace's rows are archived, and the tree's frontier there (what
/// proofs over live rows need of the archived ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveState {
    pub archived_through: u64,
    /// Hex, largest subtree first ([`vigilo_domain::merkle`]).
    pub frontier: Vec<String>,
    #[serde(default)]
    pub version: u64,
}

impl ArchiveState {
    pub fn frontier(&self) -> AppResult<Vec<Hash>> {
        let hashes: Option<Vec<Hash>> = self.frontier.iter().map(|h| merkle::parse_hex(h)).collect();
        match hashes {
            Some(f) if f.len() == self.archived_through.count_ones() as usize => Ok(f),
            _ => Err(AppError::Corrupt("the archive state's frontier is unreadable".into())),
        }
    }
}

/// What one archive pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArchiveSummary {
    pub workspaces: usize,
    pub segments: usize,
    pub rows: u64,
    /// Workspaces not archived because their chain does not verify (nothing of theirs
    /// is moved; each is logged as an error).
    pub broken: Vec<String>,
    pub failed: Vec<String>,
}

tally!(ArchiveSummary { sum: [workspaces, segments, rows], lists: [broken, failed], failed: failed });

/// `{first:020}-{last:020}.jsonl`: a segment's name, in storage and in an export.
pub fn segment_file(first: u64, last: u64) -> String {
    format!("{}-{}.jsonl", keys::seq_sk(first), keys::seq_sk(last))
}

/// `segments/{workspace_id}/{first:020}-{last:020}.jsonl`.
pub fn segment_key(workspace_id: &str, first: u64, last: u64) -> String {
    format!("segments/{workspace_id}/{}", segment_file(first, last))
}

/// Whether the store holds `body` as written and locked: the check before any row
/// leaves the table.
fn check_head(object: &str, head: Option<ObjectHead>, sha256: &str, size: usize) -> AppResult<ObjectHead> {
    let head = head.ok_or_else(|| AppError::Corrupt(format!("the segment {object} is not there after writing")))?;
    let locked = match head.lock_mode.as_deref() {
        Some("COMPLIANCE") => head.retain_until.is_some(),
        Some("write-once") => true,
        _ => false,
    };
    if head.sha256.as_deref() != Some(sha256) || head.size != size as u64 || !locked {
        return Err(AppError::Corrupt(format!(
            "the segment {object} does not read back as written and locked: {head:?}"
        )));
    }
    Ok(head)
}

impl Segment {
    /// Why the segment's copy `body` (read from `place`) cannot stand for the archived
    /// rows: gone, or not the bytes that were archived. `None` when it is whole.
    pub fn check(&self, body: Option<&[u8]>, place: &str) -> Option<ChainBreak> {
        let (reason, detail) = match body {
            None => (
                "segment_missing",
                format!("the archived rows {}..={} ({place}) cannot be found", self.first, self.last),
            ),
            Some(b) if crate::blobs::sha256_hex(b) != self.sha256 => (
                "segment_altered",
                format!(
                    "the archived rows {}..={} in {place} are not what was archived (SHA-256 {} recorded)",
                    self.first, self.last, self.sha256
                ),
            ),
            Some(_) => return None,
        };
        Some(ChainBreak { row_id: None, seq: self.first, reason: reason.into(), detail })
    }
}

impl Vigilo {
    pub async fn archive_state(&self, w: &str) -> AppResult<ArchiveState> {
        Ok(load(&*self.table, &keys::archive_state(w)).await?.unwrap_or_default())
    }

    /// The archived segments of a workspace, in `seq` order.
    pub async fn archive_segments(&self, w: &str) -> AppResult<Vec<Segment>> {
        let q = Query::table(keys::archive(w)).begins_with(keys::ARCHIVE_SEGMENT).limit(1000);
        crate::paging::query_all(&*self.table, q).await
    }

    /// The nightly sweep: every workspace with a retention, up to its cut-off.
    pub async fn archive_all(&self) -> AppResult<ArchiveSummary> {
        self.each_workspace("archive", |ws| async move {
            let workspace: Workspace = load(&*self.table, &keys::workspace(&ws)).await?.ok_or(AppError::NotFound)?;
            let Some(days) = workspace.audit_retention_days else {
                return Ok(ArchiveSummary { workspaces: 1, ..ArchiveSummary::default() });
            };
            let before = self.now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
            self.archive_workspace(&ws, before).await
        })
        .await
    }

    /// `vigilo audit archive --before`: archives a workspace's rows made before
    /// `before`, as the sweep would.
    pub async fn archive_by_slug(&self, slug: &Slug, before: jiff::Timestamp) -> AppResult<ArchiveSummary> {
        let ws = self.workspace_by_slug(slug).await?.ok_or(AppError::NotFound)?;
        self.archive_workspace(&ws.id, before).await
    }

    /// Archives the rows of `w` made before `before`: the longest run from the last
    /// archived row on whose rows are all older (the chain is in `seq` order, so a
    /// newer row ends the run).
    pub async fn archive_workspace(&self, w: &str, before: jiff::Timestamp) -> AppResult<ArchiveSummary> {
        let mut summary = ArchiveSummary { workspaces: 1, ..ArchiveSummary::default() };
        let archive = self.archive()?;
        let mut state = self.archive_state(w).await?;
        // A pass that died after recording its segment: its rows go now.
        self.delete_archived(w, state.archived_through).await?;
        let report = self.verify_chain(w, |_, _| {}).await?;
        if let Some(b) = &report.chain_break {
            tracing::error!(workspace_id = w, reason = %b.reason, seq = b.seq, "audit chain broken: nothing archived");
            summary.broken.push(w.to_owned());
            return Ok(summary);
        }
        let cut = vigilo_domain::time::format(before);
        loop {
            let rows = self.rows_to_archive(w, state.archived_through, &cut).await?;
            let Some(last) = rows.last().map(|r| r.seq) else { break };
            let first = state.archived_through + 1;
            let mut body = Vec::new();
            let mut frontier = state.frontier()?;
            for (i, row) in rows.iter().enumerate() {
                let hash = merkle::parse_hex(&row.hash).ok_or_else(|| AppError::Corrupt("a row's hash".into()))?;
                merkle::append(&mut frontier, first - 1 + i as u64, merkle::leaf_hash(&hash));
                serde_json::to_writer(&mut body, row).map_err(|e| AppError::Corrupt(e.to_string()))?;
                body.push(b'\n');
            }
            let object = segment_key(w, first, last);
            let sha256 = crate::blobs::sha256_hex(&body);
            let size = body.len();
            let version_id = match archive.put_new(&object, body, "application/x-ndjson").await {
                Ok(stored) if stored.sha256 == sha256 => stored.version_id,
                Ok(_) => return Err(AppError::Corrupt(format!("the store hashed {object} otherwise"))),
                // Written by a pass that died before recording it: checked below.
                Err(BlobError::Exists(_)) => None,
                Err(e) => return Err(AppError::Corrupt(format!("archive storage: {e}"))),
            };
            let head = check_head(
                &object,
                archive.head(&object).await.map_err(|e| AppError::Corrupt(e.to_string()))?,
                &sha256,
                size,
            )?;
            let segment = Segment {
                first,
                last,
                object,
                sha256,
                version_id: version_id.or(head.version_id),
                lock_mode: head.lock_mode,
                retain_until: head.retain_until,
            };
            let held = state.version;
            state = ArchiveState {
                archived_through: last,
                frontier: frontier.iter().map(hex::encode).collect(),
                version: held + 1,
            };
            self.record_segment(w, &segment, &state, held).await?;
            self.delete_archived(w, last).await?;
            summary.segments += 1;
            summary.rows += rows.len() as u64;
        }
        if summary.segments > 0 {
            // The checkpoint at the cut, covering the `audit.archive` rows.
            if let Signed::Refused(b) = self.sign_checkpoint(w).await? {
                tracing::error!(workspace_id = w, reason = %b.reason, "no checkpoint at the archive cut");
                summary.broken.push(w.to_owned());
            }
        }
        Ok(summary)
    }

    /// The next rows to archive after `after`: up to a segment's worth, all made before
    /// `cut`, stopping at the first that is not.
    async fn rows_to_archive(&self, w: &str, after: u64, cut: &str) -> AppResult<Vec<AuditRow>> {
        let from = keys::audit_row(w, after);
        let q = Query::table(keys::audit_rows(w))
            .limit(500)
            .after((after > 0).then(|| Position { index_sk: from.sk.clone(), key: from }));
        let mut rows = Vec::new();
        let mut page = self.table.query(&q).await?;
        loop {
            for item in &page.items {
                let row: AuditRow =
                    serde_json::from_value(item.data.clone()).map_err(|e| AppError::Corrupt(e.to_string()))?;
                if row.created_at.as_str() >= cut || rows.len() == SEGMENT_ROWS {
                    return Ok(rows);
                }
                rows.push(row);
            }
            match page.last.take() {
                Some(p) => page = self.table.query(&q.clone().after(Some(p))).await?,
                None => return Ok(rows),
            }
        }
    }

    /// The segment, the archive's new state and the `audit.archive` row, at once.
    async fn record_segment(&self, w: &str, segment: &Segment, state: &ArchiveState, held: u64) -> AppResult<()> {
        let now = self.now();
        let mut tx = self.tx(w, None);
        let seg = serde_json::to_value(segment).map_err(|e| AppError::Corrupt(e.to_string()))?;
        tx.derived(WriteOp::Put {
            item: Item::new(keys::archive_segment(w, segment.first), seg.clone()),
            condition: Some(Condition::NotExists),
        });
        let data = serde_json::to_value(state).map_err(|e| AppError::Corrupt(e.to_string()))?;
        let condition = if held == 0 { Condition::NotExists } else { Condition::version(held) };
        tx.derived(WriteOp::Put { item: Item::new(keys::archive_state(w), data), condition: Some(condition) });
        tx.audit(
            AuditEntry::new("audit.archive", "Workspace", w)
                .values(Value::Null, seg)
                .meta(json!({"actor_kind": "sweep:archive", "rows": segment.last - segment.first + 1})),
        );
        tx.commit(now).await?;
        Ok(())
    }

    /// Deletes the live rows up to `through` that are archived already.
    async fn delete_archived(&self, w: &str, through: u64) -> AppResult<()> {
        if through == 0 {
            return Ok(());
        }
        let q = Query::table(keys::audit_rows(w)).between(keys::seq_sk(1), keys::seq_sk(through)).limit(DELETE_BATCH);
        loop {
            let page = self.table.query(&q).await?;
            if page.items.is_empty() {
                return Ok(());
            }
            let ops = page.items.into_iter().map(|i| WriteOp::Delete { key: i.key, condition: None }).collect();
            self.table.transact(ops).await?;
        }
    }

    /// `GET /audit`'s `archived_through`.
    pub(crate) async fn archived_through(&self, w: &str) -> AppResult<Option<u64>> {
        Ok(Some(self.archive_state(w).await?.archived_through).filter(|&a| a > 0))
    }

    /// Reads one segment back for verification: its rows' stored text, or why the
    /// archived range cannot be read (gone, or not what was recorded).
    pub(crate) async fn read_segment(&self, s: &Segment) -> AppResult<Result<Vec<u8>, ChainBreak>> {
        let body =
            self.archive()?.get(&s.object).await.map_err(|e| AppError::Corrupt(format!("archive storage: {e}")))?;
        Ok(match s.check(body.as_deref(), &s.object) {
            Some(b) => Err(b),
            None => Ok(body.unwrap_or_default()),
        })
    }
}
