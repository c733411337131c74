//! Freeze windows: filed and withdrawn by admins, enforced at submit, schedule and
//! start. An override is the owner's call (an admin's too where the window allows it),
//! needs a reason, and leaves its own `change.freeze_override` audit row.

use serde_json::{json, Value};
use tracing::instrument;
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::freeze::{FreezeWindow, RawFreezeWindow};
use vigilo_domain::ids::Slug;
use vigilo_domain::role::{Permission, Role};
use vigilo_domain::time;
use vigilo_domain::{DomainError, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging::{self, Paged};
use crate::retrying;
use crate::services::access::Access;
use crate::services::idempotency::{self, Created, IdempotencyKey, Slot};
use crate::services::records::{decode_ref, load, to_data};
use crate::store::{Condition, Item, Query};
use crate::txn::{AuditEntry, Tx};
use crate::Vigilo;

fn window_items(f: &FreezeWindow) -> [Item; 2] {
    let w = &f.workspace_id;
    [
        Item::new(keys::freeze_window(w, &f.id), to_data(f)),
        Item::new(keys::freeze_by_end(w, &time::format(f.end), &f.id), to_data(f)),
    ]
}

/// What a freeze check decided for one action.
pub(crate) enum FreezeVerdict {
    Clear,
    /// Blocked, but overridden: the audit row to add.
    Overridden(AuditEntry),
}

fn brief(f: &FreezeWindow) -> Value {
    json!({
        "id": f.id, "name": f.name, "start": f.start, "end": f.end,
        "timezone": f.timezone, "local_start": f.local_start, "local_end": f.local_end,
        "allow_override": f.allow_override,
    })
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
            let mut tx = Tx::begin_as(&*self.table, &access, actor).await?;
            access.require(Permission::ManageWorkspace)?;
            let ws = access.ws().to_owned();
            let fields = raw.clone().parse(&access.workspace.timezone)?;
            let now = self.now();
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
                created_by: actor.user_id.clone(),
                created_at: now,
                version: 1,
            };
            for item in window_items(&window) {
                tx.put(item, Some(Condition::NotExists));
            }
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
            let mut tx = Tx::begin_as(&*self.table, &access, actor).await?;
            access.require(Permission::ManageWorkspace)?;
            let ws = access.ws();
            let window: FreezeWindow =
                load(&*self.table, &keys::freeze_window(ws, id)).await?.ok_or(AppError::NotFound)?;
            tx.delete(keys::freeze_window(ws, id), Some(Condition::version(window.version)));
            tx.delete(keys::freeze_by_end(ws, &time::format(window.end), id), None);
            tx.audit(
                AuditEntry::new("freeze_window.delete", "FreezeWindow", &window.id)
                    .values(to_data(&window), json!(null)),
            );
            tx.commit(self.now()).await?;
            Ok(())
        })
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
        let (lo, hi) = keys::ending_after(&time::format(from));
        let q = Query::table(keys::freeze_partition(ws)).between(lo, hi).limit(500);
        let windows: Vec<FreezeWindow> = paging::query_all(&*self.table, q).await?;
        Ok(windows.into_iter().filter(|f| f.blocks(c, from, to)).collect())
    }

    /// Enforces freeze windows on `action` over `span`: clear, overridden (with the
    /// audit row to write), or refused.
    pub(crate) async fn check_freeze(
        &self,
        access: &Access,
        c: &ChangeRequest,
        action: &str,
        span: Option<(jiff::Timestamp, jiff::Timestamp)>,
        override_freeze: bool,
        reason: Option<&str>,
    ) -> AppResult<FreezeVerdict> {
        let Some((from, to)) = span else {
            return Ok(FreezeVerdict::Clear);
        };
        let blocking = self.blocking_windows(access.ws(), c, from, to).await?;
        if blocking.is_empty() {
            return Ok(FreezeVerdict::Clear);
        }
        if !override_freeze {
            return Err(DomainError::FreezeWindowBlocked { windows: blocking.iter().map(brief).collect() }.into());
        }
        let may = match access.role() {
            Role::Owner => true,
            Role::Admin => blocking.iter().all(|f| f.allow_override),
            _ => false,
        };
        if !may {
            return Err(DomainError::Forbidden.into());
        }
        let Some(reason) = reason else {
            return Err(FieldErrors::single("reason", "required to override a freeze window").into());
        };
        let meta = json!({
            "action": action,
            "reason": reason,
            "windows": blocking.iter().map(brief).collect::<Vec<_>>(),
        });
        let entry = AuditEntry::new("change.freeze_override", "ChangeRequest", &c.id).subject(&c.id).meta(meta);
        Ok(FreezeVerdict::Overridden(entry))
    }
}
