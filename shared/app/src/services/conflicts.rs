//! Conflict detection. Every live change with a planned window has one window entry per
//! affected asset, filed under the window's end; finding what overlaps a window on some
//! assets is one range query per asset (entries ending after the window starts), so the
//! cost follows the changes on those assets, never the size of the workspace.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::conflict::{is_live, Acceptance, Conflict, Window};
use vigilo_domain::ids::{ChangeNumber, Slug};
use vigilo_domain::role::Permission;
use vigilo_domain::{time, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::retrying;
use crate::services::changes::require_author_or;
use crate::services::records::{decode, decode_ref, to_data};
use crate::store::{Condition, Item, Key, Query, Table, WriteOp};
use crate::txn::{epoch_stamp, AuditEntry, Tx};
use crate::Vigilo;

/// What a change occupies: its window on each of its assets, while it is live.
pub fn occupancy(c: &ChangeRequest) -> Option<(Window, &[String])> {
    let w = Window::of(c)?;
    (is_live(c.status) && !c.affected_assets.is_empty()).then_some((w, c.affected_assets.as_slice()))
}

/// Window entries to remove and add when a change goes from `old` to `new`.
pub fn window_entries(
    w: &str,
    n: ChangeNumber,
    old: Option<(Window, &[String])>,
    new: Option<(Window, &[String])>,
) -> Vec<(String, WriteOp)> {
    let key = |win: &Window, a: &str| keys::window_entry(w, a, &time::format(win.end), n);
    let mut ops = Vec::new();
    if let Some((ow, oa)) = old {
        for a in oa {
            if new.is_none_or(|(nw, na)| nw != ow || !na.contains(a)) {
                ops.push((a.clone(), WriteOp::Delete { key: key(&ow, a), condition: None }));
            }
        }
    }
    if let Some((nw, na)) = new {
        for a in na {
            if old.is_none_or(|(ow, oa)| ow != nw || !oa.contains(a)) {
                let data = json!({"number": n, "asset": a, "start": nw.start, "end": nw.end});
                ops.push((a.clone(), WriteOp::Put { item: Item::new(key(&nw, a), data), condition: None }));
            }
        }
    }
    ops
}

/// Writes a change's window entries as its occupancy moves from `old` to `new`, and
/// moves the epoch of every asset whose entries change (in the main transaction): a
/// schedule that read those entries, and holds the epochs, fails if they moved.
pub fn write_occupancy(
    tx: &mut Tx<'_>,
    w: &str,
    n: ChangeNumber,
    old: Option<(Window, &[String])>,
    new: Option<(Window, &[String])>,
) {
    let mut moved = std::collections::BTreeSet::new();
    for (asset, op) in window_entries(w, n, old, new) {
        tx.derived(op);
        moved.insert(asset);
    }
    for asset in moved {
        tx.move_epoch(keys::asset_epoch(w, &asset));
    }
}

#[derive(Debug, Deserialize)]
struct Entry {
    number: ChangeNumber,
    asset: String,
    start: jiff::Timestamp,
}

/// A conflict check's answer, with what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictReport {
    pub items: Vec<Conflict>,
    /// Items read from the table: window entries, then the changes they point at.
    pub items_read: usize,
    /// Each asset's epoch as read with its entries, for a move that must hold them.
    pub epochs: Vec<(Key, Option<String>)>,
}

/// `GET /conflicts?assets=&start=&end=`, as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProbeParams {
    /// Comma-separated assets.
    #[param(example = "api.acme.com,db.acme.com")]
    pub assets: Option<String>,
    #[param(format = DateTime)]
    pub start: Option<String>,
    #[param(format = DateTime)]
    pub end: Option<String>,
}

/// Loads the given changes, at most 100 keys per consistent read.
async fn load_changes(table: &dyn Table, ws: &str, numbers: &[ChangeNumber]) -> AppResult<Vec<ChangeRequest>> {
    let mut out = Vec::with_capacity(numbers.len());
    for chunk in numbers.chunks(100) {
        let keys: Vec<Key> = chunk.iter().map(|n| keys::change(ws, *n)).collect();
        for item in table.snapshot(&keys).await?.into_iter().flatten() {
            out.push(decode(item)?);
        }
    }
    Ok(out)
}

impl Vigilo {
    /// The live changes other than `own` that share an asset with `assets` in a window
    /// overlapping `window`, with any acceptance `own` has for them.
    pub async fn find_conflicts(
        &self,
        ws: &str,
        own: Option<ChangeNumber>,
        window: Window,
        assets: &[String],
    ) -> AppResult<ConflictReport> {
        let mut shared: BTreeMap<ChangeNumber, Vec<String>> = BTreeMap::new();
        let mut items_read = 0;
        let mut epochs = Vec::with_capacity(assets.len());
        let (lo, hi) = keys::ending_after(&time::format(window.start));
        for asset in assets {
            let mut q = Query::table(keys::window_partition(ws, asset)).between(lo.clone(), hi.clone()).limit(500);
            // The asset's epoch sorts after every entry, so the same query reads it.
            let mut epoch = None;
            loop {
                let page = self.table.query(&q).await?;
                items_read += page.items.len();
                for item in &page.items {
                    if item.key == keys::asset_epoch(ws, asset) {
                        epoch = epoch_stamp(Some(item));
                        continue;
                    }
                    let e: Entry = decode_ref(item)?;
                    if e.start < window.end && Some(e.number) != own {
                        shared.entry(e.number).or_default().push(e.asset);
                    }
                }
                match page.last {
                    Some(p) => q.after = Some(p),
                    None => break,
                }
            }
            epochs.push((keys::asset_epoch(ws, asset), epoch));
        }
        let numbers: Vec<ChangeNumber> = shared.keys().copied().collect();
        let changes = load_changes(&*self.table, ws, &numbers).await?;
        items_read += changes.len();
        let accepted: Vec<Acceptance> = match own {
            Some(n) if !changes.is_empty() => {
                let q = Query::table(keys::steps(ws, n)).begins_with(keys::ACCEPT_PREFIX).limit(500);
                let a: Vec<Acceptance> = paging::query_all(&*self.table, q).await?;
                items_read += a.len();
                a
            }
            _ => vec![],
        };
        let mut items = Vec::new();
        for c in changes {
            // Entries are derived and may trail the change by a moment: trust the change.
            let Some((theirs, their_assets)) = occupancy(&c) else { continue };
            if !theirs.overlaps(&window) {
                continue;
            }
            let mut assets: Vec<String> = shared.remove(&c.number).unwrap_or_default();
            assets.retain(|a| their_assets.contains(a));
            assets.sort();
            assets.dedup();
            if assets.is_empty() {
                continue;
            }
            let acc = accepted.iter().find(|a| a.other == c.number && a.holds_for(&window, &theirs));
            items.push(Conflict {
                number: c.number,
                title: c.title.clone(),
                status: c.status,
                shared_assets: assets,
                window: theirs,
                accepted: acc.is_some(),
                accepted_by: acc.map(|a| a.accepted_by.clone()),
                accepted_at: acc.map(|a| a.accepted_at),
                comment: acc.map(|a| a.comment.clone()),
            });
        }
        Ok(ConflictReport { items, items_read, epochs })
    }

    /// The conflicts of a stored change; none while it has no window or is not live.
    pub(crate) async fn conflicts_of(&self, c: &ChangeRequest) -> AppResult<Vec<Conflict>> {
        match occupancy(c) {
            Some((w, assets)) => Ok(self.find_conflicts(&c.workspace_id, Some(c.number), w, assets).await?.items),
            None => Ok(vec![]),
        }
    }

    /// A change's conflicts with the epochs of its assets as read with them, for a move
    /// whose gate refuses on conflicts (schedule).
    pub(crate) async fn conflicts_held(
        &self,
        c: &ChangeRequest,
    ) -> AppResult<(Vec<Conflict>, Vec<(Key, Option<String>)>)> {
        match occupancy(c) {
            Some((w, assets)) => {
                let report = self.find_conflicts(&c.workspace_id, Some(c.number), w, assets).await?;
                Ok((report.items, report.epochs))
            }
            None => Ok((vec![], vec![])),
        }
    }

    /// Fills the derived `conflicts` of a change about to be returned.
    pub(crate) async fn with_conflicts(&self, mut c: ChangeRequest) -> AppResult<ChangeRequest> {
        c.conflicts = Some(self.conflicts_of(&c).await?);
        Ok(c)
    }

    pub async fn change_conflicts(&self, actor: &Actor, slug: &Slug, number: ChangeNumber) -> AppResult<Vec<Conflict>> {
        let c = self.get_stored_change(actor, slug, number).await?;
        self.conflicts_of(&c).await
    }

    /// Conflicts a window would have if filed now.
    pub async fn probe_conflicts(&self, actor: &Actor, slug: &Slug, p: &ProbeParams) -> AppResult<Vec<Conflict>> {
        let access = self.access(actor, slug).await?;
        let bad = |m: &str| AppError::BadRequest(m.into());
        let assets: Vec<String> = p
            .assets
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if assets.is_empty() || assets.len() > vigilo_domain::change::ASSETS_MAX {
            return Err(bad("assets: a comma-separated list of 1 to 100 assets"));
        }
        // Each asset is one query: a name given twice is looked up once.
        let assets = vigilo_domain::change::dedup_keeping_order(assets);
        let parse = |v: &Option<String>, name: &str| {
            v.as_deref().and_then(time::parse).ok_or_else(|| bad(&format!("{name}: an RFC 3339 time is required")))
        };
        let window = Window { start: parse(&p.start, "start")?, end: parse(&p.end, "end")? };
        if window.end <= window.start {
            return Err(bad("end must be after start"));
        }
        Ok(self.find_conflicts(access.ws(), None, window, &assets).await?.items)
    }

    /// Accepts the conflict between `number` and `other` for their current windows, with
    /// a comment; both changes see it accepted.
    #[instrument(skip(self, actor, comment), fields(user = %actor.user_id))]
    pub async fn accept_conflict(
        &self,
        actor: &Actor,
        slug: &Slug,
        n: ChangeNumber,
        o: ChangeNumber,
        comment: Option<String>,
    ) -> AppResult<Conflict> {
        retrying!({
            let (access, mut tx, c, _) = self.change_for_write(actor, slug, n).await?;
            access.require(Permission::CreateChange)?;
            if c.assignee.as_ref() != Some(access.user()) {
                require_author_or(&access, &c, Permission::ExecuteAny)?;
            }
            let text = comment.as_deref().map(str::trim).unwrap_or_default().to_owned();
            if let Err(reason) = vigilo_domain::text::check_lines(&text, 1, vigilo_domain::change::REASON_MAX) {
                return Err(FieldErrors::single("comment", &format!("required to accept a conflict: {reason}")).into());
            }
            let conflicts = self.conflicts_of(&c).await?;
            let found = conflicts.into_iter().find(|x| x.number == o).ok_or(AppError::NotFound)?;
            let Some((window, _)) = occupancy(&c) else { return Err(AppError::NotFound) };
            let now = self.now();
            let ws = access.ws();
            let mine = Acceptance {
                workspace_id: ws.to_owned(),
                number: n,
                other: o,
                window,
                other_window: found.window,
                shared_assets: found.shared_assets.clone(),
                accepted_by: access.user().clone(),
                comment: text.clone(),
                accepted_at: now,
            };
            let theirs = Acceptance { number: o, other: n, window: found.window, other_window: window, ..mine.clone() };
            // Both changes must still be as read when the acceptance lands.
            tx.check(keys::change(ws, o), Condition::Exists);
            tx.put(Item::new(keys::acceptance(ws, n, o), to_data(&mine)), None);
            tx.put(Item::new(keys::acceptance(ws, o, n), to_data(&theirs)), None);
            let meta = json!({"other": o, "comment": text, "shared_assets": found.shared_assets});
            tx.audit(
                AuditEntry::new("change.conflict_accept", "ChangeRequest", &c.id)
                    .values(json!(null), to_data(&mine))
                    .subject(&c.id)
                    .meta(meta),
            );
            tx.commit(now).await?;
            Ok(Conflict {
                accepted: true,
                accepted_by: Some(mine.accepted_by),
                accepted_at: Some(now),
                comment: Some(text),
                ..found
            })
        })
    }
}
