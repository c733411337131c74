//! Reading and verifying the audit log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigilo_domain::audit::{AuditRow, ChainBreak, ChainVerifier, VerifyReport};
use vigilo_domain::checkpoint::Checkpoint;
use vigilo_domain::ids::{ChangeNumber, Slug};
use vigilo_domain::role::{allows, Permission};
use vigilo_domain::stored_row::{hash_stored, hex, is_hex_of, StoredRow};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging::{self, Paged};
use crate::services::checkpoints::check_checkpoints;
use crate::services::records::{decode, decode_ref};
use crate::store::{Position, Query, TextItem};
use crate::txn::load_head;
use crate::Vigilo;

/// Entries still being sealed that a page lists at most.
const SEALING_SHOWN: usize = 100;

/// An audit entry committed with its write and waiting for its place in the chain:
/// its row appears with its `seq` and `hash` once sealed, normally within a second.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sealing {
    pub id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub actor: Option<String>,
    pub created_at: String,
}

/// `GET /audit`: sealed rows, newest first, and what is still being sealed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<AuditRow>)]
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
    /// Entries committed but not yet sealed into the chain, oldest first (at most 100).
    pub sealing: Vec<Sealing>,
    /// The last row moved to the archive, if any: rows up to it are in write-once
    /// segments, not in this list.
    pub archived_through: Option<u64>,
}

/// `GET /audit` filters, as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[param(format = DateTime)]
    pub from: Option<String>,
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Words to find in the row.
    pub q: Option<String>,
}

struct Checked {
    actor: Option<String>,
    action: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn instant(name: &str, s: &Option<String>) -> AppResult<Option<String>> {
    match nonempty(s) {
        None => Ok(None),
        Some(t) => vigilo_domain::time::parse(&t)
            .map(|ts| Some(vigilo_domain::time::format(ts)))
            .ok_or_else(|| AppError::BadRequest(format!("{name} must be an RFC 3339 time"))),
    }
}

impl AuditFilter {
    fn check(&self) -> AppResult<Checked> {
        Ok(Checked {
            actor: nonempty(&self.actor),
            action: nonempty(&self.action),
            target_type: nonempty(&self.target_type),
            target_id: nonempty(&self.target_id),
            from: instant("from", &self.from)?,
            to: instant("to", &self.to)?,
            q: nonempty(&self.q).map(|q| q.to_lowercase()),
        })
    }
}

impl Checked {
    /// Whether a row passes every filter. The text search looks into old and new
    /// values only for callers allowed to see them, so it cannot be used to probe them.
    fn matches(&self, row: &AuditRow, detail: bool) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.action, &row.action)
            && eq(&self.target_type, &row.target_type)
            && eq(&self.target_id, &row.target_id)
            && self.actor.as_deref().is_none_or(|a| row.actor.as_deref() == Some(a))
            && self.from.as_deref().is_none_or(|f| row.created_at.as_str() >= f)
            && self.to.as_deref().is_none_or(|t| row.created_at.as_str() <= t)
            && self.q.as_deref().is_none_or(|q| {
                let values = if detail { format!("{} {}", row.old_value, row.new_value) } else { String::new() };
                let hay = format!("{} {} {} {} {values}", row.action, row.target_type, row.target_id, row.metadata);
                hay.to_lowercase().contains(q)
            })
    }

    /// The narrowest partition for these filters, newest first.
    fn query(&self, w: &str) -> Query {
        let q = match (&self.target_type, &self.target_id, &self.actor, &self.action) {
            (Some(t), Some(id), _, _) => Query::index(keys::AUDIT_TARGET, keys::audit_target_partition(w, t, id)),
            (_, _, Some(a), _) => Query::index(keys::AUDIT_ACTOR, keys::audit_actor_partition(w, a)),
            (_, _, _, Some(a)) => Query::index(keys::AUDIT_ACTION, keys::audit_action_partition(w, a)),
            _ => Query::table(keys::audit_rows(w)),
        };
        q.backward()
    }
}

/// Viewers see who did what and when; values need `member` or more.
fn redact(mut row: Value, detail: bool) -> Value {
    if let Value::Object(m) = &mut row {
        m.remove("subject");
        m.remove("tree");
        if !detail {
            m.remove("old_value");
            m.remove("new_value");
        }
    }
    row
}

impl Vigilo {
    /// Audit rows newest first, narrowed by one index and filtered by the rest.
    pub async fn list_audit(
        &self,
        actor: &Actor,
        slug: &Slug,
        filter: &AuditFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<AuditPage> {
        let access = self.access(actor, slug).await?;
        let f = filter.check()?;
        let detail = allows(access.role(), Permission::ReadAuditDetail);
        let (items, next_cursor) = paging::collect(&*self.table, f.query(access.ws()), limit, cursor, |item| {
            let kept = decode_ref::<AuditRow>(item)
                .map(|row| f.matches(&row, detail).then(|| redact(item.data.clone(), detail)));
            std::future::ready(kept)
        })
        .await?;
        let q = Query::table(keys::audit_queue(access.ws())).limit(SEALING_SHOWN);
        let sealing = self.table.query(&q).await?.items.into_iter().map(decode::<Sealing>).collect::<AppResult<_>>()?;
        let archived_through = self.archived_through(access.ws()).await?;
        Ok(AuditPage { items, next_cursor, sealing, archived_through })
    }

    pub async fn get_audit_row(&self, actor: &Actor, slug: &Slug, id: &str) -> AppResult<Value> {
        let access = self.access(actor, slug).await?;
        let q = Query::index(keys::AUDIT_ID, keys::audit_by_id(id).pk).limit(1);
        let item = self.table.query(&q).await?.items.into_iter().next().ok_or(AppError::NotFound)?;
        if item.data.get("workspace_id").and_then(Value::as_str) != Some(access.ws()) {
            return Err(AppError::NotFound);
        }
        Ok(redact(item.data, allows(access.role(), Permission::ReadAuditDetail)))
    }

    /// A change's own rows and its approval steps' rows, oldest first.
    pub async fn change_activity(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Paged<Value>> {
        let access = self.access(actor, slug).await?;
        let c = self.load_change(access.ws(), number).await?;
        let detail = allows(access.role(), Permission::ReadAuditDetail);
        let q = Query::index(keys::AUDIT_SUBJECT, keys::audit_subject_partition(access.ws(), &c.id));
        let (items, next_cursor) = paging::collect(&*self.table, q, limit, cursor, |item| {
            std::future::ready(Ok(Some(redact(item.data.clone(), detail))))
        })
        .await?;
        Ok(Paged { items, next_cursor })
    }

    /// Verifies a workspace's chain (admin+).
    pub async fn verify_audit(&self, actor: &Actor, slug: &Slug) -> AppResult<VerifyReport> {
        let access = self.access(actor, slug).await?;
        access.require(Permission::VerifyAudit)?;
        self.verify_chain(access.ws(), |_, _| {}).await
    }

    /// Walks the whole chain in `seq` order, in pages, then checks the head and every
    /// checkpoint (its signature, and its root and last row against the tree the walk
    /// recomputed from the rows). `progress(checked, total)` is called after each page;
    /// `total` is the head's seq.
    ///
    /// Each row's hash depends on the row alone (its `prev_hash` is stored), so only
    /// the linking is sequential. A long chain is walked as two halves at once, each
    /// on a reader and a core of its own, and the halves are joined where they meet
    /// ([`ChainVerifier::join`]: the same report as one walk). Within a half the next
    /// page is read while this one is hashed and linked, so memory stays at two pages
    /// a half whatever the chain's length. Rows are hashed from their stored text where
    /// it is canonical ([`vigilo_domain::stored_row`]) and decoded only where it is not.
    /// The walk stops at the head read first: rows sealed meanwhile are the next
    /// verification's.
    pub async fn verify_chain(
        &self,
        workspace_id: &str,
        progress: impl FnMut(u64, u64) + Send,
    ) -> AppResult<VerifyReport> {
        let notes = self.checkpoint_notes(workspace_id).await?;
        let marks: Vec<u64> = notes.iter().filter_map(|n| Checkpoint::parse(n).ok()).map(|c| c.tree_size).collect();
        let head = load_head(&*self.table, workspace_id).await?;
        let total = head.as_ref().map_or(0, |h| h.seq);
        let checked = AtomicU64::new(0);
        let progress = Mutex::new(progress);
        let on_page = |rows: u64| {
            let done = checked.fetch_add(rows, Ordering::Relaxed) + rows;
            (progress.lock().unwrap_or_else(|p| p.into_inner()))(done, total);
        };
        let rows = Query::table(keys::audit_rows(workspace_id)).limit(VERIFY_PAGE);
        let end = (total > 0).then(|| keys::audit_row(workspace_id, total).sk);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let mut first = ChainVerifier::new(workspace_id).with_marks(&marks);
        let segments = self.archive_segments(workspace_id).await?;
        let mut report = if let Some(archived) = segments.last().map(|s| s.last) {
            // The archive first, segment by segment, then the live rows after it.
            for s in &segments {
                match self.read_segment(s).await? {
                    Ok(body) => {
                        let items = segment_items(workspace_id, &body);
                        let rows = items.len() as u64;
                        let (v, _) = tokio::task::spawn_blocking(move || {
                            let on = link_page(&mut first, &items, cores);
                            (first, on)
                        })
                        .await
                        .map_err(|e| AppError::Corrupt(format!("audit segment hash: {e}")))?;
                        first = v;
                        on_page(rows);
                    }
                    Err(b) => first.record_break(b),
                }
                if first.broken() {
                    break;
                }
            }
            let after = keys::audit_row(workspace_id, archived);
            let live = rows.after(Some(Position { index_sk: after.sk.clone(), key: after }));
            let walked =
                if first.broken() { first } else { self.verify_part(live, end, first, cores, &on_page).await? };
            walked.finish(head.as_ref())
        } else if cores < 2 || total < 2 * VERIFY_PAGE as u64 {
            self.verify_part(rows, end, first, cores, &on_page).await?.finish(head.as_ref())
        } else {
            // The halves meet after row total / 2: the first reads up to it, the later
            // on from the next key, so every stored row is read once, in key order.
            let mid = keys::audit_row(workspace_id, total / 2);
            let later_rows = rows.clone().after(Some(Position { index_sk: mid.sk.clone(), key: mid.clone() }));
            let threads = cores / 2;
            let later = ChainVerifier::later_part(workspace_id).with_marks(&marks);
            let first = self.verify_part(rows, Some(mid.sk), first, threads, &on_page);
            let later = self.verify_part(later_rows, end, later, threads, &on_page);
            let (first, later) = tokio::try_join!(first, later)?;
            first.join(later, head.as_ref())
        };
        if report.ok {
            report.chain_break = self.row_beyond_head(workspace_id, total).await?;
            report.ok = report.chain_break.is_none();
        }
        let (checked, broken) = check_checkpoints(workspace_id, &notes, &report, &self.audit_keys());
        report.checkpoints_checked = checked;
        if let (Some(b), None) = (broken, &report.chain_break) {
            report.ok = false;
            report.chain_break = Some(b);
        }
        Ok(report)
    }

    /// A row stored beyond the head the walk ended at, that no seal since accounts for:
    /// rows added behind the sequencer's back.
    async fn row_beyond_head(&self, w: &str, seq: u64) -> AppResult<Option<ChainBreak>> {
        let after = keys::audit_row(w, seq);
        let q =
            Query::table(keys::audit_rows(w)).limit(1).after(Some(Position { index_sk: after.sk.clone(), key: after }));
        let Some(item) = self.table.query(&q).await?.items.into_iter().next() else { return Ok(None) };
        let found: u64 = item.key.sk.parse().unwrap_or(seq + 1);
        if load_head(&*self.table, w).await?.is_some_and(|h| h.seq >= found) {
            return Ok(None);
        }
        let row_id = item.data.get("id").and_then(Value::as_str).map(str::to_owned);
        let detail = format!("row {found} is stored beyond the chain head (seq {seq})");
        Ok(Some(ChainBreak { row_id, seq: found, reason: "head_mismatch".into(), detail }))
    }

    /// Walks the rows `q` reads, up to the sort key `until`, into `verifier`, hashing
    /// each page on `threads` threads; stops at the first break.
    async fn verify_part(
        &self,
        q: Query,
        until: Option<String>,
        mut verifier: ChainVerifier,
        threads: usize,
        on_page: &(dyn Fn(u64) + Sync),
    ) -> AppResult<ChainVerifier> {
        let fetch = |q: Query| {
            let table = self.table.clone();
            tokio::spawn(async move { table.query_text(&q).await })
        };
        let mut next = Some(fetch(q.clone()));
        while let Some(reading) = next.take() {
            let mut page = reading.await.map_err(|e| AppError::Corrupt(format!("audit page read: {e}")))??;
            let ends = until.as_ref().and_then(|u| page.items.iter().position(|i| &i.key.sk > u));
            if let Some(end) = ends {
                page.items.truncate(end);
            } else if let Some(p) = page.last.clone() {
                next = Some(fetch(q.clone().after(Some(p))));
            }
            let rows = page.items.len() as u64;
            let (v, on) = tokio::task::spawn_blocking(move || {
                let on = link_page(&mut verifier, &page.items, threads);
                (verifier, on)
            })
            .await
            .map_err(|e| AppError::Corrupt(format!("audit page hash: {e}")))?;
            verifier = v;
            on_page(rows);
            if !on {
                break;
            }
        }
        Ok(verifier)
    }
}

/// A segment's lines as stored rows, each under the key its `seq` would have live.
fn segment_items(w: &str, body: &[u8]) -> Vec<TextItem> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let seq = serde_json::from_str::<Value>(line).ok().and_then(|v| v.get("seq").and_then(Value::as_u64));
            TextItem { key: keys::audit_row(w, seq.unwrap_or(0)), text: line.to_owned() }
        })
        .collect()
}

/// Rows per page while verifying.
const VERIFY_PAGE: usize = 2000;

/// A stored row hashed: from its text, decoded, or not readable as a row at all (then
/// its id, when it has one, and its seq from its key).
enum Hashed<'a> {
    Stored(StoredRow<'a>),
    Decoded(Box<AuditRow>, String),
    Unreadable(Option<String>, u64),
}

fn hash_one(item: &TextItem) -> Hashed<'_> {
    if let Some(row) = hash_stored(&item.text) {
        return Hashed::Stored(row);
    }
    match serde_json::from_str::<AuditRow>(&item.text) {
        Ok(row) => {
            let h = row.hash_input().hash();
            Hashed::Decoded(Box::new(row), h)
        }
        Err(_) => {
            let id = serde_json::from_str::<Value>(&item.text)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
            Hashed::Unreadable(id, item.key.sk.parse().unwrap_or(0))
        }
    }
}

/// Hashes a page's rows on `threads` threads, then links them in order; `false` once
/// the chain is broken.
fn link_page(verifier: &mut ChainVerifier, items: &[TextItem], threads: usize) -> bool {
    let hashed: Vec<Hashed<'_>> = if threads <= 1 || items.len() < 64 {
        items.iter().map(hash_one).collect()
    } else {
        let per = items.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> =
                items.chunks(per).map(|c| s.spawn(move || c.iter().map(hash_one).collect::<Vec<_>>())).collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        })
    };
    for h in hashed {
        let on = match h {
            Hashed::Stored(r) => {
                verifier.push_link(&r.link, |stored| is_hex_of(stored, &r.computed), || hex(&r.computed))
            }
            Hashed::Decoded(row, computed) => verifier.push_hashed(&row, &computed),
            // An unreadable row is a break in itself, reported by position.
            Hashed::Unreadable(id, seq) => {
                verifier.unreadable(id, seq);
                false
            }
        };
        if !on {
            return false;
        }
    }
    true
}
