//! Asset subscriptions: a member follows assets ("subscribe to a service rather than to
//! a specific change") and is told, by email and chat, when a change touching one of
//! them is submitted, scheduled, started, completed, failed or rolled back.
//!
//! Kept twice, in one transaction: the member's own list (what `GET` answers) and the
//! workspace's followers item (asset → members), which a move reads in the same
//! snapshot as the change, so telling followers costs a move no call of its own and
//! never a read of every member. The followers item is written on the condition that
//! it is as read, so two members subscribing at once cannot drop each other.

use std::collections::{BTreeMap, BTreeSet};

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
use crate::store::{Condition, Item};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// Assets one `PUT` may add or drop.
pub const MOVED_MAX: usize = 90;

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

/// The workspace's followers: for each followed asset, the members following it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Followers {
    assets: BTreeMap<String, BTreeSet<UserId>>,
    version: u64,
}

impl Followers {
    /// The followers item as read (`None`: nobody follows anything yet).
    pub(crate) fn from_item(item: Option<Item>) -> AppResult<Followers> {
        Ok(item.map(decode).transpose()?.unwrap_or_default())
    }

    /// The members following any of `assets`.
    pub(crate) fn of(&self, assets: &[String]) -> BTreeSet<UserId> {
        assets.iter().filter_map(|a| self.assets.get(a)).flatten().cloned().collect()
    }
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
            let read = self.table.snapshot(&[keys::subscription(&ws, &user), keys::followers(&ws)]).await?;
            let mut read = read.into_iter();
            let old = match read.next().flatten() {
                Some(i) => decode::<Subscriptions>(i)?,
                None => Subscriptions { user_id: user.to_string(), ..Subscriptions::default() },
            };
            let mut followers = Followers::from_item(read.next().flatten())?;
            let before: BTreeSet<&String> = old.assets.iter().collect();
            let after: BTreeSet<&String> = assets.iter().collect();
            let touched: Vec<&String> = before.symmetric_difference(&after).copied().collect();
            // A PUT moves a bounded number of assets, so one call's change to the
            // followers item stays small.
            if touched.len() > MOVED_MAX {
                let mut e = FieldErrors::default();
                e.add("assets", format!("add or drop at most {MOVED_MAX} assets at once"));
                return Err(e.into());
            }
            for asset in &touched {
                let users = followers.assets.entry((*asset).clone()).or_default();
                if after.contains(asset) {
                    users.insert(user.clone());
                } else {
                    users.remove(&user);
                }
                if users.is_empty() {
                    followers.assets.remove(*asset);
                }
            }
            let now = self.now();
            let mut tx = self.tx_as(&access, actor);
            let held = followers.version;
            followers.version += 1;
            let condition = if held == 0 { Condition::NotExists } else { Condition::version(held) };
            tx.put(Item::new(keys::followers(&ws), to_data(&followers)), Some(condition));
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
}
