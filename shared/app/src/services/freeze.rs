//! Freeze windows: filed and withdrawn by admins, enforced at submit, schedule and
//! start. An override is the owner's call (an admin's too where the window allows it),
//! needs a reason, and leaves its own `change.freeze_override` audit row.

use jiff::Timestamp;
use serde_json::json;
use tracing::instrument;
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::freeze::{FreezeWindow, RawFreezeWindow};
use vigilo_domain::ids::Slug;
use vigilo_domain::role::Permission;
use vigilo_domain::time;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging::{self, Paged};
use crate::retrying;
use crate::services::idempotency::{self, Created, IdempotencyKey, Slot};
use crate::services::records::{decode_ref, load, to_data};
use crate::store::{Condition, Item, Query};
use crate::txn::{epoch_copy, epoch_stamp, AuditEntry, Tx};
use crate::Vigilo;

/// The freeze calendar: every window not yet over, kept whole in the workspace's freeze
/// epoch item (`WS#{w}` / `#EPOCH#FREEZES`), beside the stamp the gates hold. A move
/// reads it in the same snapshot as the change and the caller's membership, so the
/// freeze gate costs no read of its own; the windows' own items stay the record that
/// lists and `GET` read.
///
/// Only freeze writes write it, each on the condition that it is as read, so two admins
/// filing windows at once cannot drop each other's. A gate only checks it. `None` for an
/// epoch written before the calendar was kept: the windows' range query answers
/// instead until the next freeze write fills it. A workspace's calendar is kept from its
/// creation on.
pub(crate) fn calendar(item: Option<&Item>) -> AppResult<Option<Vec<FreezeWindow>>> {
    epoch_copy(item, "windows")
}

/// How far back a recurring window's first occurrence may lie when it is filed.
pub const RECURRING_START_MAX_DAYS: i64 = 366;

/// The windows of `windows` that hold `c` over `[from, to)`.
pub(crate) fn blocking(
    windows: &[FreezeWindow],
    c: &ChangeRequest,
    from: Timestamp,
    to: Timestamp,
) -> Vec<FreezeWindow> {
    windows.iter().filter_map(|f| f.blocking(c, from, to)).collect()
}

/// Moves the freeze epoch after a freeze write, held as read (`read`; `None`: it did
/// not exist), with the calendar of the windows not over at `now`.
pub(crate) fn write_calendar(
    tx: &mut Tx<'_>,
    ws: &str,
    read: Option<String>,
    windows: Vec<FreezeWindow>,
    now: Timestamp,
) {
    let windows: Vec<FreezeWindow> = windows.into_iter().filter(|f| f.holds_until() > now).collect();
    let key = keys::freezes_epoch(ws);
    tx.hold_epoch(key.clone(), read);
    tx.rewrite_epoch(key, json!({ "windows": windows }));
}

fn window_items(f: &FreezeWindow) -> [Item; 2] {
    let w = &f.workspace_id;
    [
        Item::new(keys::freeze_window(w, &f.id), to_data(f)),
        Item::new(keys::freeze_by_end(w, &time::format(f.holds_until()), &f.id), to_data(f)),
    ]
}

impl Vigilo {
    #[instrument(skip(self, actor, raw, idem), fields(user = %actor.user_id))]
    pub async fn create_freeze_window(
        &self,
        actor: &Actor,
        slug: &Slug,
        raw: RawFreezeWindow,
        idem: Option<&IdempotencyKey>,
    ) -> AppResult<Created<FreezeWindow>> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let ws = access.ws().to_owned();
            let fields = raw.clone().parse(&access.workspace.timezone)?;
            let now = self.now();
            // Every check walks a rule from its first occurrence: a series starting
            // long ago would make each one slow, so it starts within the last year.
            if fields.recurrence.is_some()
                && fields.start < now - jiff::SignedDuration::from_hours(24 * RECURRING_START_MAX_DAYS)
            {
                let mut e = vigilo_domain::FieldErrors::default();
                e.add(
                    "start",
                    format!(
                        "a recurring window's first occurrence lies within the last {RECURRING_START_MAX_DAYS} days"
                    ),
                );
                return Err(e.into());
            }
            let scope = format!("freeze:{ws}");
            let slot = idempotency::lookup(&*self.table, &actor.user_id, &scope, idem, now).await?;
            if let Slot::Replay(v) = slot {
                return Ok(Created::Replay(v));
            }
            let window = FreezeWindow {
                id: uuid::Uuid::new_v4().to_string(),
                workspace_id: ws.clone(),
                name: fields.name,
                description: fields.description,
                start: fields.start,
                end: fields.end,
                timezone: access.workspace.timezone.clone(),
                local_start: fields.local_start,
                local_end: fields.local_end,
                scope: fields.scope,
                allow_override: fields.allow_override,
                recurrence: fields.recurrence,
                series_end: fields.series_end,
                created_by: actor.user_id.clone(),
                created_at: now,
                version: 1,
            };
            let (stamp, mut windows) = self.calendar_with_stamp(&ws, now).await?;
            for item in window_items(&window) {
                tx.put(item, Some(Condition::NotExists));
            }
            windows.push(window.clone());
            write_calendar(&mut tx, &ws, stamp, windows, now);
            tx.audit(
                AuditEntry::new("freeze_window.create", "FreezeWindow", &window.id)
                    .values(json!(null), to_data(&window)),
            );
            idempotency::remember(&mut tx, &actor.user_id, &scope, idem, &slot, &to_data(&window), now);
            tx.commit(now).await?;
            Ok(Created::New(window))
        })
    }

    /// Windows by end time, earliest first; `current` keeps those not yet over.
    pub async fn list_freeze_windows(
        &self,
        actor: &Actor,
        slug: &Slug,
        current: bool,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Paged<FreezeWindow>> {
        let access = self.access(actor, slug).await?;
        let mut q = Query::table(keys::freeze_partition(access.ws()));
        if current {
            let (lo, hi) = keys::ending_after(&time::format(self.now()));
            q = q.between(lo, hi);
        }
        let (items, next_cursor) = paging::collect(&*self.table, q, limit, cursor, |item| {
            std::future::ready(decode_ref::<FreezeWindow>(item).map(Some))
        })
        .await?;
        Ok(Paged { items, next_cursor })
    }

    pub async fn get_freeze_window(&self, actor: &Actor, slug: &Slug, id: &str) -> AppResult<FreezeWindow> {
        let access = self.access(actor, slug).await?;
        load(&*self.table, &keys::freeze_window(access.ws(), id)).await?.ok_or(AppError::NotFound)
    }

    #[instrument(skip(self, actor), fields(user = %actor.user_id))]
    pub async fn delete_freeze_window(&self, actor: &Actor, slug: &Slug, id: &str) -> AppResult<()> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let ws = access.ws();
            let window: FreezeWindow =
                load(&*self.table, &keys::freeze_window(ws, id)).await?.ok_or(AppError::NotFound)?;
            let now = self.now();
            let (stamp, mut windows) = self.calendar_with_stamp(ws, now).await?;
            tx.delete(keys::freeze_window(ws, id), Some(Condition::version(window.version)));
            tx.delete(keys::freeze_by_end(ws, &time::format(window.holds_until()), id), None);
            windows.retain(|f| f.id != window.id);
            write_calendar(&mut tx, ws, stamp, windows, now);
            tx.audit(
                AuditEntry::new("freeze_window.delete", "FreezeWindow", &window.id)
                    .values(to_data(&window), json!(null)),
            );
            tx.commit(now).await?;
            Ok(())
        })
    }

    /// The calendar's stamp and windows, for a freeze write to rewrite or the freeze
    /// sweep to hold. A calendar not kept yet is filled from the windows' range query.
    pub(crate) async fn calendar_with_stamp(
        &self,
        ws: &str,
        now: Timestamp,
    ) -> AppResult<(Option<String>, Vec<FreezeWindow>)> {
        let item = self.table.get(&keys::freezes_epoch(ws)).await?;
        let windows = match calendar(item.as_ref())? {
            Some(w) => w,
            None => self.windows_ending_after(ws, now).await?,
        };
        Ok((epoch_stamp(item.as_ref()), windows))
    }

    async fn windows_ending_after(&self, ws: &str, from: Timestamp) -> AppResult<Vec<FreezeWindow>> {
        let (lo, hi) = keys::ending_after(&time::format(from));
        let q = Query::table(keys::freeze_partition(ws)).between(lo, hi).limit(500);
        paging::query_all(&*self.table, q).await
    }

    /// The windows that hold `c` over `[from, to)`: from the calendar when the caller
    /// read it, else the windows' range query over those that end after `from`.
    pub(crate) async fn freezes_over(
        &self,
        calendar: Option<&[FreezeWindow]>,
        c: &ChangeRequest,
        from: Timestamp,
        to: Timestamp,
    ) -> AppResult<Vec<FreezeWindow>> {
        match calendar {
            Some(windows) => Ok(blocking(windows, c, from, to)),
            None => self.blocking_windows(&c.workspace_id, c, from, to).await,
        }
    }

    /// The windows that hold `c` over `[from, to)`: one range query over the windows
    /// that end after `from`.
    pub(crate) async fn blocking_windows(
        &self,
        ws: &str,
        c: &ChangeRequest,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> AppResult<Vec<FreezeWindow>> {
        Ok(blocking(&self.windows_ending_after(ws, from).await?, c, from, to))
    }
}
