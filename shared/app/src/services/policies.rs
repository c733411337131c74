//! Approval policies: admins file, replace and withdraw them; submit reads them with
//! [`Vigilo::planning`] for the domain's planner.

use std::collections::BTreeMap;

use serde_json::json;
use tracing::instrument;
use vigilo_domain::ids::{Slug, UserId};
use vigilo_domain::policy::{ApprovalPolicy, Planning, RawPolicy};
use vigilo_domain::role::{Permission, Role};
use vigilo_domain::workspace::{Group, Member};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::retrying;
use crate::services::idempotency::{self, Created, IdempotencyKey, Slot};
use crate::services::records::{decode, load, to_data};
use crate::services::views::diff;
use crate::store::{Condition, Item, Query};
use crate::txn::AuditEntry;
use crate::Vigilo;

fn policy_item(p: &ApprovalPolicy) -> Item {
    Item::new(keys::policy(&p.workspace_id, &p.id), to_data(p))
}

impl Vigilo {
    #[instrument(skip(self, actor, raw, idem), fields(user = %actor.user_id))]
    pub async fn create_policy(
        &self,
        actor: &Actor,
        slug: &Slug,
        raw: RawPolicy,
        idem: Option<&IdempotencyKey>,
    ) -> AppResult<Created<ApprovalPolicy>> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let fields = raw.clone().parse()?;
            let ws = access.ws().to_owned();
            let now = self.now();
            let scope = format!("policies:{ws}");
            let slot = idempotency::lookup(&*self.table, &actor.user_id, &scope, idem, now).await?;
            if let Slot::Replay(v) = slot {
                return Ok(Created::Replay(v));
            }
            let p = ApprovalPolicy {
                id: uuid::Uuid::new_v4().to_string(),
                workspace_id: ws,
                name: fields.name,
                priority: fields.priority,
                matcher: fields.matcher,
                stages: fields.stages,
                created_by: actor.user_id.clone(),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            tx.put(policy_item(&p), Some(Condition::NotExists));
            tx.audit(
                AuditEntry::new("approval_policy.create", "ApprovalPolicy", &p.id).values(json!(null), to_data(&p)),
            );
            idempotency::remember(&mut tx, &actor.user_id, &scope, idem, &slot, &to_data(&p), now);
            tx.commit(now).await?;
            Ok(Created::New(p))
        })
    }

    /// Every policy of the workspace, in the order they are tried.
    pub async fn list_policies(&self, actor: &Actor, slug: &Slug) -> AppResult<Vec<ApprovalPolicy>> {
        let access = self.access(actor, slug).await?;
        self.all_policies(access.ws()).await
    }

    pub async fn get_policy(&self, actor: &Actor, slug: &Slug, id: &str) -> AppResult<ApprovalPolicy> {
        let access = self.access(actor, slug).await?;
        load(&*self.table, &keys::policy(access.ws(), id)).await?.ok_or(AppError::NotFound)
    }

    pub(crate) async fn all_policies(&self, ws: &str) -> AppResult<Vec<ApprovalPolicy>> {
        let (pk, prefix) = keys::policies(ws);
        let mut all: Vec<ApprovalPolicy> =
            paging::query_all(&*self.table, Query::table(pk).begins_with(prefix).limit(500)).await?;
        all.sort_by(|a, b| (a.priority, &a.name, &a.id).cmp(&(b.priority, &b.name, &b.id)));
        Ok(all)
    }

    /// Replaces a policy whole; `If-Match` guards against overwriting someone's edit.
    #[instrument(skip(self, actor, raw), fields(user = %actor.user_id))]
    pub async fn put_policy(
        &self,
        actor: &Actor,
        slug: &Slug,
        id: &str,
        raw: RawPolicy,
        if_match: Option<u64>,
    ) -> AppResult<ApprovalPolicy> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let old: ApprovalPolicy =
                load(&*self.table, &keys::policy(access.ws(), id)).await?.ok_or(AppError::NotFound)?;
            let fields = raw.clone().parse()?;
            if let Some(v) = if_match.filter(|v| *v != old.version) {
                return Err(AppError::VersionConflict { expected: v, current: old.version });
            }
            let now = self.now();
            let mut new = old.clone();
            new.name = fields.name;
            new.priority = fields.priority;
            new.matcher = fields.matcher;
            new.stages = fields.stages;
            if new == old {
                return Ok(old);
            }
            new.version += 1;
            new.updated_at = now;
            let (before, after) = diff(&old, &new);
            tx.put(policy_item(&new), Some(Condition::version(old.version)));
            tx.audit(AuditEntry::new("approval_policy.update", "ApprovalPolicy", &new.id).values(before, after));
            tx.commit(now).await?;
            Ok(new)
        })
    }

    #[instrument(skip(self, actor), fields(user = %actor.user_id))]
    pub async fn delete_policy(&self, actor: &Actor, slug: &Slug, id: &str) -> AppResult<()> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let old: ApprovalPolicy =
                load(&*self.table, &keys::policy(access.ws(), id)).await?.ok_or(AppError::NotFound)?;
            tx.delete(keys::policy(access.ws(), id), Some(Condition::version(old.version)));
            tx.audit(
                AuditEntry::new("approval_policy.delete", "ApprovalPolicy", &old.id).values(to_data(&old), json!(null)),
            );
            tx.commit(self.now()).await?;
            Ok(())
        })
    }

    /// What planning a new round of a change reads: members with their roles, groups
    /// and policies (the members whole too, for the notices of the same submit).
    ///
    /// The three sit side by side in the workspace's partition (`GROUP#`, `MEMBER#`,
    /// `POLICY#`, and nothing else sorts between them), so one range query, paged,
    /// reads them all.
    pub(crate) async fn planning(&self, ws: &str) -> AppResult<(Planning, Vec<Member>)> {
        let (pk, group_prefix) = keys::groups(ws);
        let (_, member_prefix) = keys::members(ws);
        let (_, policy_prefix) = keys::policies(ws);
        let q = Query::table(pk).between(group_prefix, format!("{policy_prefix}\u{10FFFF}")).limit(500);
        let (mut all, mut groups, mut policies) = (Vec::<Member>::new(), BTreeMap::new(), Vec::<ApprovalPolicy>::new());
        for item in paging::items_all(&*self.table, q).await? {
            let sk = item.key.sk.as_str();
            if sk.starts_with(member_prefix) {
                all.push(decode(item)?);
            } else if sk.starts_with(policy_prefix) {
                policies.push(decode(item)?);
            } else if sk.starts_with(group_prefix) {
                let g: Group = decode(item)?;
                groups.insert(g.name, g.members);
            }
        }
        policies.sort_by(|a, b| (a.priority, &a.name, &a.id).cmp(&(b.priority, &b.name, &b.id)));
        let members: Vec<(UserId, Role)> = all.iter().map(|m| (m.user_id.clone(), m.role)).collect();
        Ok((Planning { members, groups, policies }, all))
    }
}
