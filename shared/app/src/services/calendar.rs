//! The workspace calendar (`calendar.ics`): scheduled and in-progress changes and the
//! freeze windows not yet over, recurring ones as their rule, for calendar apps.
//!
//! Calendar apps cannot send a bearer token, so a member may hold one feed token: a
//! random 256-bit secret in the URL, stored only as its SHA-256. A fetch with it reads
//! as that member, after checking they still are one (removal ends the feed at once);
//! asking for a new feed replaces the old token, and withdrawing it revokes it. Both
//! are audited, without the token.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use vigilo_domain::change::{ChangeRequest, Status};
use vigilo_domain::freeze::FreezeWindow;
use vigilo_domain::ical::{self, Event, When};
use vigilo_domain::ids::{Slug, UserId};

use crate::actor::{Actor, RequestInfo};
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::retrying;
use crate::services::records::{decode, load, to_data};
use crate::store::{Condition, Item, Query};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// How far ahead a recurring window's zone transitions are written.
const ZONE_YEARS_AHEAD: i64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Feed {
    workspace_id: String,
    user_id: UserId,
    token_hash: String,
    created_at: Timestamp,
    version: u64,
}

impl Feed {
    /// What the audit log keeps of a feed: whose, and since when; never the token.
    fn audited(&self) -> serde_json::Value {
        json!({"user_id": self.user_id, "created_at": vigilo_domain::time::format(self.created_at)})
    }
}

/// `POST /calendar/feed`'s answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedUrl {
    /// The calendar's address with its token; give it to a calendar app, keep it secret.
    pub url: String,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn change_event(c: &ChangeRequest) -> Option<Event> {
    let (start, end) = (c.planned_start?, c.planned_end?);
    let mut description = format!("Status: {}\nType: {} · Risk: {}", c.status, c.change_type, c.risk_level);
    if !c.affected_assets.is_empty() {
        description.push_str(&format!("\nAssets: {}", c.affected_assets.join(", ")));
    }
    if let Some(a) = &c.assignee {
        description.push_str(&format!("\nAssignee: {a}"));
    }
    Some(Event {
        uid: format!("change-{}@vigilo", c.id),
        sequence: c.version,
        stamp: c.updated_at,
        start: When::Utc(start),
        end: When::Utc(end),
        summary: format!("{} {}", c.number, c.title),
        description,
        categories: vec!["change".into(), c.change_type.to_string()],
        rrule: None,
        status: "CONFIRMED",
        url: None,
    })
}

fn freeze_event(f: &FreezeWindow) -> Event {
    let (start, end) = match &f.recurrence {
        Some(_) => (When::Local(f.start, f.timezone.clone()), When::Local(f.end, f.timezone.clone())),
        None => (When::Utc(f.start), When::Utc(f.end)),
    };
    let scope = if f.scope.all {
        "every change".to_owned()
    } else {
        let mut parts = Vec::new();
        if !f.scope.assets.is_empty() {
            parts.push(format!("assets {}", f.scope.assets.join(", ")));
        }
        if !f.scope.change_types.is_empty() {
            let types: Vec<String> = f.scope.change_types.iter().map(|t| t.to_string()).collect();
            parts.push(format!("{} changes", types.join(", ")));
        }
        parts.join("; ")
    };
    let mut description = format!("Change freeze over {scope}.");
    if !f.description.is_empty() {
        description.push_str(&format!("\n{}", f.description));
    }
    Event {
        uid: format!("freeze-{}@vigilo", f.id),
        sequence: f.version,
        stamp: f.created_at,
        start,
        end,
        summary: format!("Freeze: {}", f.name),
        description,
        categories: vec!["freeze".into()],
        rrule: f.recurrence.clone(),
        status: "CONFIRMED",
        url: None,
    }
}

impl Vigilo {
    /// The calendar as the caller (viewer+) reads it.
    pub async fn calendar_ics(&self, actor: &Actor, slug: &Slug) -> AppResult<String> {
        let access = self.access(actor, slug).await?;
        self.calendar_of(&access).await
    }

    /// The calendar of the workspace `access` is to.
    async fn calendar_of(&self, access: &crate::services::access::Access) -> AppResult<String> {
        let ws = access.ws().to_owned();
        let now = self.now();
        let mut changes: Vec<ChangeRequest> = Vec::new();
        for status in [Status::Scheduled, Status::InProgress] {
            let q = Query::index(keys::BY_STATUS, keys::status_partition(&ws, status)).limit(200);
            changes.extend(paging::query_all::<ChangeRequest>(&*self.table, q).await?);
        }
        changes.sort_by_key(|c| c.number);
        let (_, mut windows) = self.calendar_with_stamp(&ws, now).await?;
        windows.retain(|f| f.holds_until() > now);
        windows.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        let mut zones: Vec<(String, Timestamp, Timestamp)> = Vec::new();
        for f in windows.iter().filter(|f| f.recurrence.is_some()) {
            let ahead = now + SignedDuration::from_hours(24 * 366 * ZONE_YEARS_AHEAD);
            let to = f.series_end.unwrap_or(ahead).max(f.end);
            let from = f.start - SignedDuration::from_hours(24);
            match zones.iter_mut().find(|(tz, _, _)| *tz == f.timezone) {
                Some(z) => {
                    z.1 = z.1.min(from);
                    z.2 = z.2.max(to);
                }
                None => zones.push((f.timezone.clone(), from, to)),
            }
        }
        let events: Vec<Event> =
            changes.iter().filter_map(change_event).chain(windows.iter().map(freeze_event)).collect();
        Ok(ical::calendar(&format!("{} changes", access.workspace.name), &zones, &events))
    }

    /// The calendar for a `?token=` fetch; `None` for a token that is unknown, revoked,
    /// of another workspace, or of someone no longer a member.
    pub async fn calendar_ics_by_token(
        &self,
        slug: &Slug,
        token: &str,
        request: RequestInfo,
    ) -> AppResult<Option<String>> {
        if token.is_empty() || token.len() > 200 {
            return Ok(None);
        }
        let Some(feed) = load::<Feed>(&*self.table, &keys::calendar_feed(&digest(token))).await? else {
            return Ok(None);
        };
        let actor = Actor { user_id: feed.user_id.clone(), email: None, name: None, request };
        let access = match self.access(&actor, slug).await {
            Ok(a) => a,
            Err(AppError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        if access.ws() != feed.workspace_id {
            return Ok(None);
        }
        self.calendar_of(&access).await.map(Some)
    }

    /// A new feed token for the caller (viewer+), replacing any they had.
    pub async fn create_calendar_feed(&self, actor: &Actor, slug: &Slug) -> AppResult<FeedUrl> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let ws = access.ws().to_owned();
            let now = self.now();
            let pointer = keys::member_feed(&ws, &actor.user_id);
            let old = self.table.get(&pointer).await?.map(decode::<Feed>).transpose()?;
            let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            let feed = Feed {
                workspace_id: ws.clone(),
                user_id: actor.user_id.clone(),
                token_hash: digest(&token),
                created_at: now,
                version: old.as_ref().map_or(1, |o| o.version + 1),
            };
            let mut tx = self.tx_as(&access, actor);
            match &old {
                Some(o) => {
                    tx.delete(keys::calendar_feed(&o.token_hash), None);
                    tx.put(Item::new(pointer, to_data(&feed)), Some(Condition::version(o.version)));
                }
                None => tx.put(Item::new(pointer, to_data(&feed)), Some(Condition::NotExists)),
            }
            tx.put(Item::new(keys::calendar_feed(&feed.token_hash), to_data(&feed)), Some(Condition::NotExists));
            let shown = json!({"user_id": feed.user_id, "created_at": vigilo_domain::time::format(now)});
            let before = old.as_ref().map_or(
                json!(null),
                |o| json!({"user_id": o.user_id, "created_at": vigilo_domain::time::format(o.created_at)}),
            );
            tx.audit(
                AuditEntry::new("calendar_feed.create", "CalendarFeed", actor.user_id.as_str()).values(before, shown),
            );
            tx.commit(now).await?;
            let base = self.delivery.as_ref().map(|d| d.base_url.trim_end_matches('/').to_owned()).unwrap_or_default();
            Ok(FeedUrl { url: format!("{base}/ws/{slug}/calendar.ics?token={token}") })
        })
    }

    /// Revokes the caller's feed token; `NotFound` when they hold none.
    pub async fn delete_calendar_feed(&self, actor: &Actor, slug: &Slug) -> AppResult<()> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let ws = access.ws().to_owned();
            let pointer = keys::member_feed(&ws, &actor.user_id);
            let old: Feed = load(&*self.table, &pointer).await?.ok_or(AppError::NotFound)?;
            let mut tx = self.tx_as(&access, actor);
            tx.delete(pointer, Some(Condition::version(old.version)));
            tx.delete(keys::calendar_feed(&old.token_hash), None);
            let before = old.audited();
            tx.audit(
                AuditEntry::new("calendar_feed.delete", "CalendarFeed", actor.user_id.as_str())
                    .values(before, json!(null)),
            );
            tx.commit(self.now()).await?;
            Ok(())
        })
    }
}
