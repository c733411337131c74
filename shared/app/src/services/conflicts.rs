//! Conflict detection. Every live change with a planned window is booked on each of its
//! assets twice over: a window entry filed under the window's end, and a booking in the
//! asset's calendar, a copy of its entries kept in the asset's epoch item. Finding what
//! overlaps a window on some assets is one consistent read of their calendars, however
//! many assets; an asset busier than a calendar keeps ([`CALENDAR_MAX`]) is looked up by
//! a range query over its entries (those ending after the window starts) instead. Either
//! way the cost follows the changes on those assets, never the size of the workspace.
//!
//! A write that moves a change's bookings rewrites each calendar it touches on the
//! condition that the calendar is as it read it, in the change's own transaction: two
//! writers on one asset cannot both rewrite it from the same read, and a move whose
//! gate read a calendar fails if the calendar moved since.

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
use crate::txn::{epoch_copy, epoch_stamp, AuditEntry, Tx};
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

/// Most bookings an asset's calendar keeps. An asset with more is no longer given a
/// calendar: its conflicts are found by the range query over its entries from then on.
pub const CALENDAR_MAX: usize = 250;

/// Calendars read in one consistent read at most.
pub const CALENDARS_PER_READ: usize = crate::store::SNAPSHOT_CHUNK;

/// A live change's window on one asset, as the asset's calendar keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub number: ChangeNumber,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
}

/// An asset's epoch as read, with its calendar when one is kept (`None`: too busy, or
/// written before calendars were kept; look its entries up).
#[derive(Debug, Clone, PartialEq)]
pub struct AssetCalendar {
    pub asset: String,
    pub stamp: Option<String>,
    pub bookings: Option<Vec<Booking>>,
}

/// The calendars of some assets, read in one consistent snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendars(Vec<AssetCalendar>);

impl Calendars {
    pub fn get(&self, asset: &str) -> Option<&AssetCalendar> {
        self.0.iter().find(|c| c.asset == asset)
    }

    /// Whether every one of `assets` was read.
    pub fn covers<'a>(&self, mut assets: impl Iterator<Item = &'a String>) -> bool {
        assets.all(|a| self.get(a).is_some())
    }
}

/// The assets a move from `old` to `new` books or frees: their calendars are rewritten.
pub fn touched<'a>(old: Option<(Window, &'a [String])>, new: Option<(Window, &'a [String])>) -> Vec<String> {
    let mut assets: Vec<String> = Vec::new();
    if old != new {
        for (_, a) in old.into_iter().chain(new) {
            assets.extend(a.iter().cloned());
        }
    }
    assets.sort();
    assets.dedup();
    assets
}

/// The calendars a write rewrites: those it read, on its first attempt. A write retried
/// after losing a race rewrites none (so the calendars it touches are no longer kept):
/// an asset that writers race on is looked up by its entries from then on, and writers
/// on it never race on one item again. The race lost may have been on something else;
/// giving a calendar up is never wrong, only slower.
pub fn kept_unless_lost(read: &Calendars, attempts: u32) -> &Calendars {
    static NONE: Calendars = Calendars(Vec::new());
    if attempts <= 1 {
        read
    } else {
        &NONE
    }
}

/// An asset's epoch item with a calendar of `bookings`, for seeding a table directly
/// (benchmarks); the service writes calendars through [`write_occupancy`].
pub fn calendar_item(w: &str, asset: &str, mut bookings: Vec<Booking>) -> Item {
    bookings.sort_by_key(|b| (b.end, b.number));
    let mut data = json!({"stamp": uuid::Uuid::new_v4().simple().to_string()});
    if bookings.len() <= CALENDAR_MAX {
        data["bookings"] = json!(bookings);
    }
    Item::new(keys::asset_epoch(w, asset), data)
}

/// Writes a change's window entries as its occupancy moves from `old` to `new`, and
/// rewrites the calendar of every asset whose bookings change, on the condition that
/// it is as `read` (in the main transaction). A schedule that read those calendars,
/// and holds their epochs, fails if they moved. An asset whose calendar was not read,
/// or is not kept, has its epoch moved and keeps no calendar, so it is looked up by
/// its entries: never a calendar that misses a booking.
pub fn write_occupancy(
    tx: &mut Tx<'_>,
    w: &str,
    n: ChangeNumber,
    old: Option<(Window, &[String])>,
    new: Option<(Window, &[String])>,
    read: &Calendars,
) {
    for (_, op) in window_entries(w, n, old, new) {
        tx.derived(op);
    }
    for asset in touched(old, new) {
        let key = keys::asset_epoch(w, &asset);
        match read.get(&asset) {
            Some(AssetCalendar { stamp, bookings: Some(kept), .. }) => {
                let mut bookings: Vec<Booking> = kept.iter().filter(|b| b.number != n).cloned().collect();
                if let Some((win, _)) = new.filter(|(_, assets)| assets.contains(&asset)) {
                    bookings.push(Booking { number: n, start: win.start, end: win.end });
                }
                bookings.sort_by_key(|b| (b.end, b.number));
                let content = if bookings.len() <= CALENDAR_MAX { json!({ "bookings": bookings }) } else { json!({}) };
                tx.rewrite_spare_copy(key, stamp.clone(), content);
            }
            _ => tx.move_epoch(key),
        }
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
    /// The calendars of `assets`, in one consistent read per [`CALENDARS_PER_READ`]
    /// assets (each calendar is held by its own stamp, so the reads need not be one).
    /// An asset never booked has no epoch item, and so an empty calendar.
    pub async fn asset_calendars(&self, ws: &str, assets: &[String]) -> AppResult<Calendars> {
        let assets = vigilo_domain::change::dedup_keeping_order(assets.to_vec());
        let mut out = Vec::with_capacity(assets.len());
        for chunk in assets.chunks(CALENDARS_PER_READ) {
            let keys: Vec<Key> = chunk.iter().map(|a| keys::asset_epoch(ws, a)).collect();
            for (asset, item) in chunk.iter().zip(self.table.snapshot(&keys).await?) {
                let bookings = match &item {
                    None => Some(vec![]),
                    Some(_) => epoch_copy::<Vec<Booking>>(item.as_ref(), "bookings")?,
                };
                out.push(AssetCalendar { asset: asset.clone(), stamp: epoch_stamp(item.as_ref()), bookings });
            }
        }
        Ok(Calendars(out))
    }

    /// The live changes other than `own` that share an asset with `assets` in a window
    /// overlapping `window`, with any acceptance `own` has for them.
    pub async fn find_conflicts(
        &self,
        ws: &str,
        own: Option<ChangeNumber>,
        window: Window,
        assets: &[String],
    ) -> AppResult<ConflictReport> {
        let calendars = self.asset_calendars(ws, assets).await?;
        self.conflicts_in(ws, own, window, assets, &calendars).await
    }

    /// As [`Vigilo::find_conflicts`], over calendars already read (which must cover
    /// `assets`; one not read is looked up by its entries).
    pub async fn conflicts_in(
        &self,
        ws: &str,
        own: Option<ChangeNumber>,
        window: Window,
        assets: &[String],
        calendars: &Calendars,
    ) -> AppResult<ConflictReport> {
        let mut shared: BTreeMap<ChangeNumber, Vec<String>> = BTreeMap::new();
        let mut items_read = 0;
        let mut epochs = Vec::with_capacity(assets.len());
        let (lo, hi) = keys::ending_after(&time::format(window.start));
        for asset in assets {
            let calendar = calendars.get(asset);
            if let Some(bookings) = calendar.and_then(|c| c.bookings.as_ref()) {
                items_read += 1;
                for b in bookings.iter().filter(|b| b.end > window.start && b.start < window.end) {
                    if Some(b.number) != own {
                        shared.entry(b.number).or_default().push(asset.clone());
                    }
                }
                epochs.push((keys::asset_epoch(ws, asset), calendar.and_then(|c| c.stamp.clone())));
                continue;
            }
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
            // Held as first read: if the calendar moved since, the move is retried.
            let held = calendar.map_or(epoch, |c| c.stamp.clone());
            epochs.push((keys::asset_epoch(ws, asset), held));
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
    /// whose gate refuses on conflicts (schedule), and the calendars read.
    pub(crate) async fn conflicts_held(&self, c: &ChangeRequest) -> AppResult<(ConflictReport, Calendars)> {
        let calendars = self.asset_calendars(&c.workspace_id, &c.affected_assets).await?;
        let report = match occupancy(c) {
            Some((w, assets)) => self.conflicts_in(&c.workspace_id, Some(c.number), w, assets, &calendars).await?,
            None => ConflictReport { items: vec![], items_read: 0, epochs: vec![] },
        };
        Ok((report, calendars))
    }

    /// The conflicts of a change, over calendars already read when they cover its
    /// assets (a move that read them answers without reading them again).
    pub(crate) async fn conflicts_with(&self, c: &ChangeRequest, read: Option<&Calendars>) -> AppResult<Vec<Conflict>> {
        match (occupancy(c), read) {
            (Some((w, assets)), Some(cals)) if cals.covers(assets.iter()) => {
                Ok(self.conflicts_in(&c.workspace_id, Some(c.number), w, assets, cals).await?.items)
            }
            _ => self.conflicts_of(c).await,
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
