//! Change requests: create, read, list with filters, and edit while in draft.

use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use vigilo_domain::change::{ChangeFields, ChangeRequest, ChangeType, Priority, RawChange, RiskLevel, Status};
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};
use vigilo_domain::role::{allows, Permission};
use vigilo_domain::{DomainError, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging::{self, Paged};
use crate::retrying;
use crate::services::access::Access;
use crate::services::conflicts::{kept_unless_lost, occupancy, touched, write_occupancy, Calendars};
use crate::services::idempotency::{self, Created, IdempotencyKey, Slot};
use crate::services::records::{change_item, decode, decode_ref, load, to_data};
use crate::services::views::diff;
use crate::store::{Condition, Item, Query, WriteOp};
use crate::txn::{epoch_stamp, AuditEntry, Tx};
use crate::Vigilo;

/// How many changes a dependency-cycle search reads at most.
const CYCLE_SEARCH_MAX: usize = 2_000;

/// `GET /changes` filters, as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeFilter {
    #[param(value_type = Option<Status>, inline)]
    pub status: Option<String>,
    #[param(value_type = Option<ChangeType>, inline)]
    pub change_type: Option<String>,
    #[param(value_type = Option<Priority>, inline)]
    pub priority: Option<String>,
    #[param(value_type = Option<RiskLevel>, inline)]
    pub risk_level: Option<String>,
    pub assignee: Option<String>,
    pub asset: Option<String>,
}

/// The filters, checked.
#[derive(Debug, Clone, Default)]
struct Filter {
    status: Option<Status>,
    change_type: Option<ChangeType>,
    priority: Option<Priority>,
    risk_level: Option<RiskLevel>,
    assignee: Option<UserId>,
    asset: Option<String>,
}

fn parse_param<T>(
    name: &str,
    raw: &Option<String>,
    parse: fn(&str) -> Option<T>,
    choices: String,
) -> AppResult<Option<T>> {
    match raw.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse(s).map(Some).ok_or_else(|| AppError::BadRequest(format!("{name} must be one of: {choices}"))),
    }
}

impl ChangeFilter {
    fn check(&self) -> AppResult<Filter> {
        Ok(Filter {
            status: parse_param("status", &self.status, Status::parse, Status::choices())?,
            change_type: parse_param("change_type", &self.change_type, ChangeType::parse, ChangeType::choices())?,
            priority: parse_param("priority", &self.priority, Priority::parse, Priority::choices())?,
            risk_level: parse_param("risk_level", &self.risk_level, RiskLevel::parse, RiskLevel::choices())?,
            assignee: match self.assignee.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(a) => Some(UserId::parse(a).map_err(|r| AppError::BadRequest(format!("assignee {r}")))?),
            },
            asset: self.asset.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
        })
    }
}

impl Filter {
    fn matches(&self, c: &ChangeRequest) -> bool {
        self.status.is_none_or(|s| s == c.status)
            && self.change_type.is_none_or(|t| t == c.change_type)
            && self.priority.is_none_or(|p| p == c.priority)
            && self.risk_level.is_none_or(|r| r == c.risk_level)
            && self.assignee.as_ref().is_none_or(|a| c.assignee.as_ref() == Some(a))
            && self.asset.as_ref().is_none_or(|a| c.affected_assets.contains(a))
    }

    /// The most selective key-condition query for these filters; the rest are applied
    /// to the items it returns. Newest first.
    fn query(&self, w: &str) -> Query {
        let q = if let Some(a) = &self.asset {
            Query::table(keys::asset_partition(w, a))
        } else if let Some(a) = &self.assignee {
            Query::index(keys::BY_ASSIGNEE, keys::assignee_partition(w, a))
        } else if let Some(s) = self.status {
            Query::index(keys::BY_STATUS, keys::status_partition(w, s))
        } else if let Some(r) = self.risk_level {
            Query::index(keys::BY_RISK, keys::risk_partition(w, r))
        } else if let Some(p) = self.priority {
            Query::index(keys::BY_PRIORITY, keys::priority_partition(w, p))
        } else if let Some(t) = self.change_type {
            Query::index(keys::BY_TYPE, keys::type_partition(w, t))
        } else {
            Query::table(keys::changes(w))
        };
        q.backward()
    }
}

/// Index entries to add and remove when a change's assets go from `old` to `new`.
pub(crate) fn asset_entries(w: &str, n: ChangeNumber, old: &[String], new: &[String]) -> Vec<WriteOp> {
    let removed = old
        .iter()
        .filter(|a| !new.contains(a))
        .map(|a| WriteOp::Delete { key: keys::asset_entry(w, a, n), condition: None });
    let added = new.iter().filter(|a| !old.contains(a)).map(|a| WriteOp::Put {
        item: Item::new(keys::asset_entry(w, a, n), json!({"number": n, "asset": a})),
        condition: None,
    });
    removed.chain(added).collect()
}

/// The author of a placeholder the gap sweep files: the request that took the number
/// is gone, and who sent it is not known.
pub const UNKNOWN_TAKER: &str = "vigilo:unknown";

/// A change number handed out to a request. Dropped unused (the request panicked
/// between taking it and committing), it is voided by a task of its own.
struct Taken {
    app: Vigilo,
    ws: String,
    number: ChangeNumber,
    actor: Actor,
    used: bool,
}

impl Drop for Taken {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (app, ws, n, actor) = (self.app.clone(), self.ws.clone(), self.number, self.actor.clone());
        runtime.spawn(async move { app.void_number(&ws, n, &actor, "the request failed before committing").await });
    }
}

/// Epoch stamps read with a change, for the moves whose gates read those sets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Epochs {
    pub tasks: Option<String>,
    pub freezes: Option<String>,
    /// The freeze calendar read with them (`None`: not kept yet, query the windows).
    pub calendar: Option<Vec<vigilo_domain::freeze::FreezeWindow>>,
    /// The change's tasks as its tasks epoch keeps them (`None`: not kept, query them).
    pub task_list: Option<Vec<vigilo_domain::task::Task>>,
    /// Who follows which assets, for the notices of a move.
    pub followers: crate::services::subscriptions::Followers,
}

impl Vigilo {
    #[instrument(skip(self, actor, raw, idem), fields(user = %actor.user_id))]
    pub async fn create_change(
        &self,
        actor: &Actor,
        slug: &Slug,
        raw: RawChange,
        idem: Option<&IdempotencyKey>,
    ) -> AppResult<Created<ChangeRequest>> {
        // The number is handed out once per request, after every check that can refuse
        // the request, by the store's atomic counter: racing creators never wait for
        // one another. A retried commit keeps it; a request that ends without the
        // change (or panics) voids it, so the numbers stay gapless. An Idempotency-Key
        // is claimed first, so identical requests racing take one number between them.
        let mut taken: Option<Taken> = None;
        let mut claimed: Option<Slot> = None;
        let scope_of = |ws: &str| format!("changes:{ws}");
        let mut attempts = 0;
        let created = retrying!({
            attempts += 1;
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::CreateChange)?;
            let fields = raw.clone().parse()?;
            if fields.title.is_none() {
                return Err(FieldErrors::single("title", "required").into());
            }
            let ws = access.ws().to_owned();
            let scope = scope_of(&ws);
            let now = self.now();
            let slot = match &claimed {
                Some(s) => s.clone(),
                None => idempotency::lookup(&*self.table, &actor.user_id, &scope, idem, now).await?,
            };
            if let Slot::Replay(v) = slot {
                return Ok(Created::Replay(v));
            }
            let change_type = fields.change_type.unwrap_or(ChangeType::Normal);
            // Time-ordered, so the audit entries of changes filed together (by target
            // and subject) lie together in their indexes.
            let id = uuid::Uuid::now_v7().to_string();
            // Checked before a number is taken; the draft's number is not known yet.
            let provisional = taken.as_ref().map_or(ChangeNumber::MAX, |t| t.number);
            let mut change = ChangeRequest::draft(id, ws.clone(), provisional, change_type, actor.user_id.clone(), now);
            change.apply(fields);
            self.check_references(&ws, &change).await?;
            let slot = match &claimed {
                Some(s) => s.clone(),
                None => {
                    let s = idempotency::claim(&*self.table, &actor.user_id, &scope, idem, slot, now).await?;
                    claimed = Some(s.clone());
                    s
                }
            };
            let number = match &taken {
                Some(t) => t.number,
                None => {
                    let last = self.table.add(&keys::change_counter(&ws), "last", 1).await?;
                    let n = ChangeNumber::new(last).ok_or_else(|| AppError::Corrupt("change counter".into()))?;
                    taken =
                        Some(Taken { app: self.clone(), ws: ws.clone(), number: n, actor: actor.clone(), used: false });
                    n
                }
            };
            change.number = number;
            tx.put(change_item(&change), Some(Condition::NotExists));
            for op in asset_entries(&ws, number, &[], &change.affected_assets) {
                tx.derived(op);
            }
            // The calendars it books are read once: for rewriting them and for the
            // conflicts the answer carries (held, so they stand as read).
            let calendars = match occupancy(&change) {
                Some(_) => self.asset_calendars(&ws, &change.affected_assets).await?,
                None => Calendars::default(),
            };
            write_occupancy(&mut tx, &ws, number, None, occupancy(&change), kept_unless_lost(&calendars, attempts));
            crate::services::tasks::no_tasks_yet(&mut tx, &ws, number);
            tx.audit(
                AuditEntry::new("change.create", "ChangeRequest", &change.id)
                    .values(json!(null), to_data(&change))
                    .subject(&change.id),
            );
            // The first response, conflicts included, is what a retry replays.
            change.conflicts = Some(self.conflicts_with(&change, Some(&calendars)).await?);
            idempotency::remember(&mut tx, &actor.user_id, &scope, idem, &slot, &to_data(&change), now);
            tx.commit(now).await?;
            Ok(Created::New(change))
        });
        if let Some(t) = taken.as_mut() {
            t.used = matches!(&created, Ok(Created::New(c)) if c.number == t.number);
            if !t.used {
                let why = match &created {
                    Ok(_) => "the request was answered from an identical one".to_owned(),
                    Err(e) => e.to_string(),
                };
                t.used = true;
                self.void_number(&t.ws, t.number, actor, &why).await;
            }
        }
        if let (Err(_), Some(slot), Ok(Some(ws))) = (&created, &claimed, self.workspace_id(slug).await) {
            idempotency::release(&*self.table, &actor.user_id, &scope_of(&ws), idem, slot).await;
        }
        created
    }

    /// Files a number that was handed out but never became a change as a cancelled
    /// placeholder, audited `change.void` with why, so the numbers have no gap and an
    /// auditor sees what happened to each. Does nothing if the change exists after all.
    pub(crate) async fn void_number(&self, ws: &str, n: ChangeNumber, requested_by: &Actor, why: &str) {
        self.void_number_for(ws, n, Some(&requested_by.user_id), why).await;
    }

    /// Files `n` as a cancelled placeholder for whoever took it (`None`: unknown, for
    /// the sweep, whose placeholder is authored by [`UNKNOWN_TAKER`]).
    pub(crate) async fn void_number_for(&self, ws: &str, n: ChangeNumber, requested_by: Option<&UserId>, why: &str) {
        let now = self.now();
        let id = uuid::Uuid::new_v4().to_string();
        let author = requested_by.cloned().unwrap_or_else(|| UserId::parse(UNKNOWN_TAKER).expect("a valid user id"));
        let mut c = ChangeRequest::draft(id, ws.to_owned(), n, ChangeType::Normal, author, now);
        c.title = format!("{n} was not used");
        c.status = Status::Cancelled;
        let mut tx = self.tx(ws, None);
        tx.put(change_item(&c), Some(Condition::NotExists));
        let meta = json!({"actor_kind": "system", "reason": why, "requested_by": requested_by.map(UserId::as_str)});
        tx.audit(
            AuditEntry::new("change.void", "ChangeRequest", &c.id)
                .values(json!(null), to_data(&c))
                .subject(&c.id)
                .meta(meta),
        );
        match tx.commit(now).await {
            Ok(_) => tracing::warn!(number = %n, reason = why, "a change number was voided"),
            Err(AppError::Contended) => {} // the change was committed after all
            Err(e) => tracing::error!(number = %n, error = %e, "a change number could not be voided; the sweep will"),
        }
    }

    /// Refs a change makes to other records must exist: its assignee is a member, its
    /// dependencies are changes of the same workspace.
    async fn check_references(&self, ws: &str, c: &ChangeRequest) -> AppResult<()> {
        let mut errors = FieldErrors::default();
        if let Err(e) = c.check_consistency() {
            errors.0.extend(e.0);
        }
        if let Some(a) = &c.assignee {
            if self.table.get(&keys::member(ws, a)).await?.is_none() {
                errors.add("assignee", "must be a member of this workspace");
            }
        }
        for d in &c.dependencies {
            if d != &c.number && self.table.get(&keys::change(ws, *d)).await?.is_none() {
                errors.add("dependencies", format!("{d} does not exist"));
            }
        }
        if errors.is_empty() {
            if let Some(cycle) = self.dependency_cycle(ws, c).await? {
                let path: Vec<String> = cycle.iter().map(ToString::to_string).collect();
                errors.add("dependencies", format!("would close a dependency cycle: {}", path.join(" -> ")));
            }
        }
        errors.into_result().map_err(Into::into)
    }

    /// A path from `c` back to itself through the dependencies, if there is one. Only
    /// changes reachable from `c`'s dependencies are read (at most `CYCLE_SEARCH_MAX`).
    async fn dependency_cycle(&self, ws: &str, c: &ChangeRequest) -> AppResult<Option<Vec<ChangeNumber>>> {
        let mut stack: Vec<Vec<ChangeNumber>> = c.dependencies.iter().map(|d| vec![c.number, *d]).collect();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(path) = stack.pop() {
            let at = *path.last().unwrap_or(&c.number);
            if at == c.number {
                return Ok(Some(path));
            }
            if !seen.insert(at) || seen.len() > CYCLE_SEARCH_MAX {
                continue;
            }
            if let Some(d) = load::<ChangeRequest>(&*self.table, &keys::change(ws, at)).await? {
                for next in d.dependencies {
                    let mut p = path.clone();
                    p.push(next);
                    stack.push(p);
                }
            }
        }
        Ok(None)
    }

    pub(crate) async fn load_change(&self, ws: &str, n: ChangeNumber) -> AppResult<ChangeRequest> {
        load(&*self.table, &keys::change(ws, n)).await?.ok_or(AppError::NotFound)
    }

    /// The first step of any write about one change: access, the change and the epochs
    /// of what its gates may read (its tasks, the freeze windows), and the workspace's
    /// followers, in one consistent snapshot. The transaction holds the caller's membership; a move holds the
    /// epochs of what its gates read.
    pub(crate) async fn change_for_write<'a>(
        &'a self,
        actor: &'a Actor,
        slug: &Slug,
        n: ChangeNumber,
    ) -> AppResult<(Access, Tx<'a>, ChangeRequest, Epochs)> {
        let (access, mut read) = self
            .access_with(actor, slug, |ws| {
                vec![keys::change(ws, n), keys::tasks_epoch(ws, n), keys::freezes_epoch(ws), keys::followers(ws)]
            })
            .await?;
        let followers = crate::services::subscriptions::Followers::from_item(read.pop().flatten())?;
        let freezes_item = read.pop().flatten();
        let (freezes, calendar) =
            (epoch_stamp(freezes_item.as_ref()), crate::services::freeze::calendar(freezes_item.as_ref())?);
        let tasks_item = read.pop().flatten();
        let (tasks, task_list) =
            (epoch_stamp(tasks_item.as_ref()), crate::services::tasks::task_list(tasks_item.as_ref())?);
        let change: ChangeRequest = read.pop().flatten().map(decode).transpose()?.ok_or(AppError::NotFound)?;
        let tx = self.tx_as(&access, actor);
        Ok((access, tx, change, Epochs { tasks, freezes, calendar, task_list, followers }))
    }

    /// One change with its derived `conflicts`.
    pub async fn get_change(&self, actor: &Actor, slug: &Slug, number: ChangeNumber) -> AppResult<ChangeRequest> {
        let c = self.get_stored_change(actor, slug, number).await?;
        self.with_conflicts(c).await
    }

    /// One change as stored, for a caller who may read it.
    pub(crate) async fn get_stored_change(
        &self,
        actor: &Actor,
        slug: &Slug,
        n: ChangeNumber,
    ) -> AppResult<ChangeRequest> {
        let (_, mut read) = self.access_with(actor, slug, |ws| vec![keys::change(ws, n)]).await?;
        read.pop().flatten().map(decode).transpose()?.ok_or(AppError::NotFound)
    }

    /// Lists changes newest first; each filter narrows the one partition queried.
    pub async fn list_changes(
        &self,
        actor: &Actor,
        slug: &Slug,
        filter: &ChangeFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Paged<ChangeRequest>> {
        let access = self.access(actor, slug).await?;
        let filter = filter.check()?;
        let ws = access.ws();
        let q = filter.query(ws);
        let table = &*self.table;
        let filter = &filter;
        let (items, next_cursor) = paging::collect(table, q, limit, cursor, |item| {
            // Asset entries point at changes: follow each one. Other partitions hold
            // the changes themselves.
            let inline = filter.asset.is_none().then(|| decode_ref::<ChangeRequest>(item));
            let number = keys::number_from_sk(&item.key.sk);
            async move {
                let change = match (inline, number) {
                    (Some(decoded), _) => Some(decoded?),
                    (None, Some(n)) => load::<ChangeRequest>(table, &keys::change(ws, n)).await?,
                    (None, None) => None,
                };
                Ok(change.filter(|c| filter.matches(c)))
            }
        })
        .await?;
        Ok(Paged { items, next_cursor })
    }

    /// Edits a draft: its author, or an admin.
    #[instrument(skip(self, actor, raw), fields(user = %actor.user_id))]
    pub async fn patch_change(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        raw: RawChange,
        if_match: Option<u64>,
    ) -> AppResult<ChangeRequest> {
        let mut attempts = 0;
        let changed = retrying!({
            attempts += 1;
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::CreateChange)?;
            let fields: ChangeFields = raw.clone().parse()?;
            let ws = access.ws().to_owned();
            let old = self.load_change(&ws, number).await?;
            require_author_or(&access, &old, Permission::ExecuteAny)?;
            if old.status != Status::Draft {
                return Err(DomainError::NotEditable { status: old.status.to_string() }.into());
            }
            if let Some(v) = if_match.filter(|v| *v != old.version) {
                return Err(AppError::VersionConflict { expected: v, current: old.version });
            }
            let mut new = old.clone();
            new.apply(fields.clone());
            if new == old {
                return Ok((old, Calendars::default()));
            }
            self.check_references(&ws, &new).await?;
            let now = self.now();
            new.version += 1;
            new.updated_at = now;
            let (before, after) = diff(&old, &new);
            tx.put(change_item(&new), Some(Condition::version(old.version)));
            for op in asset_entries(&ws, new.number, &old.affected_assets, &new.affected_assets) {
                tx.derived(op);
            }
            let booked = touched(occupancy(&old), occupancy(&new));
            let calendars = match occupancy(&new) {
                Some(_) => self.asset_calendars(&ws, &[booked, new.affected_assets.clone()].concat()).await?,
                None if !booked.is_empty() => self.asset_calendars(&ws, &booked).await?,
                None => Calendars::default(),
            };
            let rewrite = kept_unless_lost(&calendars, attempts);
            write_occupancy(&mut tx, &ws, new.number, occupancy(&old), occupancy(&new), rewrite);
            tx.audit(AuditEntry::new("change.update", "ChangeRequest", &new.id).values(before, after).subject(&new.id));
            tx.commit(now).await?;
            Ok((new, calendars))
        })?;
        let (changed, calendars) = changed;
        let conflicts = self.conflicts_with(&changed, Some(&calendars)).await?;
        Ok(ChangeRequest { conflicts: Some(conflicts), ..changed })
    }
}

/// The author may act on their change; anyone else needs `permission`.
pub(crate) fn require_author_or(access: &Access, c: &ChangeRequest, permission: Permission) -> AppResult<()> {
    if &c.author == access.user() || allows(access.role(), permission) {
        Ok(())
    } else {
        Err(DomainError::Forbidden.into())
    }
}
