//! Asset subscriptions: a member follows assets ("subscribe to a service rather than to
//! a specific change") and is told, by email and chat, when a change touching one of
//! them is submitted, scheduled, started, completed, failed or rolled back.
//!
//! Kept twice, in one transaction: the member's own list (what `GET` answers) and, per
//! asset, the item naming its subscribers, so the people to tell about a change are one
//! consistent read of its assets' items, never a read of every member. Each asset item
//! is written on the condition that it is as read, so two members subscribing to one
//! asset at once cannot drop each other.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigilo_domain::change::check_assets;
use vigilo_domain::ids::{Slug, UserId};
use vigilo_domain::role::Permission;
use vigilo_domain::FieldErrors;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::retrying;
use crate::services::records::{decode, to_data};
use crate::store::{Condition, Item, Key, MAX_TRANSACTION_ITEMS, SNAPSHOT_CHUNK};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// Assets one `PUT` may add or drop: what fits one transaction beside its other items.
pub const MOVED_MAX: usize = MAX_TRANSACTION_ITEMS - 10;

/// A member's subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscriptions {
    pub user_id: String,
    pub assets: Vec<String>,
    pub version: u64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

/// `PUT .../subscriptions`, as sent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsInput {
    pub assets: Vec<String>,
}

/// The members following one asset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Subscribers {
    asset: String,
    users: BTreeSet<UserId>,
    version: u64,
}

impl Vigilo {
    /// The member whose subscriptions are asked about: oneself, or anyone for admin+.
    async fn subscriber(
        &self,
        actor: &Actor,
        slug: &Slug,
        user_id: &str,
    ) -> AppResult<(crate::services::access::Access, UserId)> {
        let access = self.access(actor, slug).await?;
        let user = UserId::parse(user_id).map_err(|_| AppError::NotFound)?;
        if &user != access.user() {
            access.require(Permission::ManageWorkspace)?;
            self.table.get(&keys::member(access.ws(), &user)).await?.ok_or(AppError::NotFound)?;
        }
        Ok((access, user))
    }

    pub async fn get_subscriptions(&self, actor: &Actor, slug: &Slug, user_id: &str) -> AppResult<Subscriptions> {
        let (access, user) = self.subscriber(actor, slug, user_id).await?;
        let item = self.table.get(&keys::subscription(access.ws(), &user)).await?;
        Ok(match item {
            Some(i) => decode(i)?,
            None => Subscriptions { user_id: user.to_string(), ..Subscriptions::default() },
        })
    }

    /// Replaces a member's subscriptions with `input.assets`.
    pub async fn put_subscriptions(
        &self,
        actor: &Actor,
        slug: &Slug,
        user_id: &str,
        input: SubscriptionsInput,
    ) -> AppResult<Subscriptions> {
        let mut e = FieldErrors::default();
        let assets = check_assets(&mut e, "assets", input.assets);
        if !e.is_empty() {
            return Err(e.into());
        }
        retrying!({
            let (access, user) = self.subscriber(actor, slug, user_id).await?;
            let ws = access.ws().to_owned();
            let old = self.get_subscriptions(actor, slug, user_id).await?;
            let before: BTreeSet<&String> = old.assets.iter().collect();
            let after: BTreeSet<&String> = assets.iter().collect();
            let touched: Vec<&String> = before.symmetric_difference(&after).copied().collect();
            // One write per asset added or dropped, beside the list, the member checks
            // and the audit entry, in one transaction.
            if touched.len() > MOVED_MAX {
                let mut e = FieldErrors::default();
                e.add("assets", format!("add or drop at most {MOVED_MAX} assets at once"));
                return Err(e.into());
            }
            let keys: Vec<Key> = touched.iter().map(|a| keys::asset_subscribers(&ws, a)).collect();
            // Each asset item is held by its own version, so the reads need not be one.
            let mut read = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(SNAPSHOT_CHUNK) {
                read.extend(self.table.snapshot(chunk).await?);
            }
            let now = self.now();
            let mut tx = self.tx_as(&access, actor);
            for ((asset, key), item) in touched.iter().zip(keys).zip(read) {
                let mut subs = match item {
                    Some(i) => decode::<Subscribers>(i)?,
                    None => Subscribers { asset: (*asset).clone(), ..Subscribers::default() },
                };
                let held = subs.version;
                if after.contains(asset) {
                    subs.users.insert(user.clone());
                } else {
                    subs.users.remove(&user);
                }
                let condition = if held == 0 { Condition::NotExists } else { Condition::version(held) };
                if subs.users.is_empty() {
                    tx.delete(key, Some(condition));
                } else {
                    subs.version = held + 1;
                    tx.put(Item::new(key, to_data(&subs)), Some(condition));
                }
            }
            let new = Subscriptions {
                user_id: user.to_string(),
                assets: assets.clone(),
                version: old.version + 1,
                updated_at: Some(now),
            };
            let list = keys::subscription(&ws, &user);
            let condition = if old.version == 0 { Condition::NotExists } else { Condition::version(old.version) };
            tx.put(Item::new(list, to_data(&new)), Some(condition));
            // A member removed meanwhile must not be left subscribed (one's own record
            // is held by the transaction already).
            if &user != access.user() {
                tx.check(keys::member(&ws, &user), Condition::Exists);
            }
            tx.audit(
                AuditEntry::new("member.subscriptions", "Member", user.as_str())
                    .values(json!({"assets": old.assets}), json!({"assets": new.assets})),
            );
            tx.commit(now).await?;
            Ok(new)
        })
    }

    /// The members following any of `assets`, from the assets' subscriber items (read
    /// in chunks: a follower list read a moment apart from another is still one the
    /// member set).
    pub(crate) async fn subscribers_of(&self, ws: &str, assets: &[String]) -> AppResult<BTreeSet<UserId>> {
        let mut out = BTreeSet::new();
        for chunk in assets.chunks(SNAPSHOT_CHUNK) {
            let keys: Vec<Key> = chunk.iter().map(|a| keys::asset_subscribers(ws, a)).collect();
            for item in self.table.snapshot(&keys).await?.into_iter().flatten() {
                out.extend(decode::<Subscribers>(item)?.users);
            }
        }
        Ok(out)
    }
}
