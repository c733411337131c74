//! Members, their roles, approval delegation, and named groups.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use vigilo_domain::ids::{Slug, UserId};
use vigilo_domain::role::{may_assign, Permission, Role};
use vigilo_domain::workspace::{
    check_email, check_group_name, check_slack_user_id, Delegation, Group, Member, NAME_MAX,
};
use vigilo_domain::{text, DomainError, FieldErrors};

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::retrying;
use crate::services::access::Access;
use crate::services::records::{group_item, load, member_item, to_data};
use crate::services::views::diff;
use crate::store::{Condition, Query};
use crate::txn::{epoch_stamp, AuditEntry, Tx};
use crate::Vigilo;

/// Most members a group may list.
pub const GROUP_MEMBERS_MAX: usize = 500;

/// `PUT /members/{user_id}/chat`: `slack_user_id`, or `null` to unlink.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatLinkInput {
    pub slack_user_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    pub email: String,
    #[schema(value_type = vigilo_domain::role::Role)]
    pub role: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateInput {
    /// `null` ends a delegation.
    pub delegate: Option<String>,
    #[schema(format = DateTime)]
    pub from: Option<String>,
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub members: Vec<String>,
}

fn parse_user(field: &str, raw: &str) -> Result<UserId, DomainError> {
    UserId::parse(raw).map_err(|r| FieldErrors::single(field, r))
}

impl Vigilo {
    pub async fn list_members(&self, actor: &Actor, slug: &Slug) -> AppResult<Vec<Member>> {
        let access = self.access(actor, slug).await?;
        self.all_members(access.ws()).await
    }

    /// Adds a member or changes one's role. Admins manage everyone below owner; only
    /// an owner grants or takes away `owner`; the last owner cannot be demoted.
    #[instrument(skip(self, actor, input), fields(user = %actor.user_id))]
    pub async fn put_member(&self, actor: &Actor, slug: &Slug, user_id: &str, input: MemberInput) -> AppResult<Member> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let mut errors = FieldErrors::default();
            let user = UserId::parse(user_id).map_err(|r| errors.add("user_id", r)).ok();
            let role = Role::parse(&input.role);
            if role.is_none() {
                errors.add("role", "must be one of: viewer, member, approver, admin, owner");
            }
            if let Err(r) = check_email(input.email.trim()) {
                errors.add("email", r);
            }
            let name = input.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
            if let Some(Err(reason)) = name.as_deref().map(|n| text::check_line(n, 1, NAME_MAX)) {
                errors.add("name", reason);
            }
            errors.into_result()?;
            let (Some(user), Some(role)) = (user, role) else {
                return Err(AppError::NotFound);
            };
            let ws = access.ws().to_owned();
            let old: Option<Member> = load(&*self.table, &keys::member(&ws, &user)).await?;
            if !may_assign(access.role(), old.as_ref().map(|m| m.role), Some(role)) {
                return Err(DomainError::Forbidden.into());
            }
            let was_owner = old.as_ref().is_some_and(|m| m.role == Role::Owner);
            if was_owner || role == Role::Owner {
                self.hold_owners(&mut tx, &ws).await?;
            }
            if was_owner && role != Role::Owner {
                self.ensure_another_owner(&ws, &user).await?;
            }
            let now = self.now();
            let new = Member {
                workspace_id: ws.clone(),
                user_id: user.clone(),
                email: input.email.trim().to_owned(),
                name,
                role,
                delegation: old.as_ref().and_then(|m| m.delegation.clone()),
                slack_user_id: old.as_ref().and_then(|m| m.slack_user_id.clone()),
                version: old.as_ref().map_or(1, |m| m.version + 1),
                created_at: old.as_ref().map_or(now, |m| m.created_at),
                updated_at: now,
            };
            let (action, before, after, condition) = match &old {
                None => ("member.add", json!(null), to_data(&new), Condition::NotExists),
                Some(o) if o.role == new.role && o.email == new.email && o.name == new.name => return Ok(o.clone()),
                Some(o) => {
                    let (b, a) = diff(o, &new);
                    ("member.update", b, a, Condition::version(o.version))
                }
            };
            tx.put(member_item(&new), Some(condition));
            tx.audit(AuditEntry::new(action, "Member", user.as_str()).values(before, after));
            tx.commit(now).await?;
            Ok(new)
        })
    }

    #[instrument(skip(self, actor), fields(user = %actor.user_id))]
    pub async fn remove_member(&self, actor: &Actor, slug: &Slug, user_id: &str) -> AppResult<()> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let user = UserId::parse(user_id).map_err(|_| AppError::NotFound)?;
            let ws = access.ws().to_owned();
            let old: Member = load(&*self.table, &keys::member(&ws, &user)).await?.ok_or(AppError::NotFound)?;
            if !may_assign(access.role(), Some(old.role), None) {
                return Err(DomainError::Forbidden.into());
            }
            if old.role == Role::Owner {
                self.hold_owners(&mut tx, &ws).await?;
                self.ensure_another_owner(&ws, &user).await?;
            }
            let now = self.now();
            tx.delete(keys::member(&ws, &user), Some(Condition::version(old.version)));
            tx.audit(AuditEntry::new("member.remove", "Member", user.as_str()).values(to_data(&old), json!(null)));
            tx.commit(now).await?;
            Ok(())
        })
    }

    /// Holds the owners' epoch, read before the members are: a write that makes or
    /// unmakes an owner commits only if no other did since, so two owners demoting
    /// each other cannot leave none.
    async fn hold_owners(&self, tx: &mut Tx<'_>, ws: &str) -> AppResult<()> {
        let epoch = self.table.get(&keys::owners_epoch(ws)).await?;
        tx.hold_epoch(keys::owners_epoch(ws), epoch_stamp(epoch.as_ref()));
        tx.move_epoch(keys::owners_epoch(ws));
        Ok(())
    }

    async fn ensure_another_owner(&self, ws: &str, leaving: &UserId) -> AppResult<()> {
        let others = self.all_members(ws).await?;
        if others.iter().any(|m| m.role == Role::Owner && &m.user_id != leaving) {
            Ok(())
        } else {
            Err(AppError::LastOwner)
        }
    }

    /// Sets (or with `delegate: null` ends) who may act on `user_id`'s approval steps.
    /// Allowed to the member themselves and to admins.
    #[instrument(skip(self, actor, input), fields(user = %actor.user_id))]
    pub async fn put_delegate(
        &self,
        actor: &Actor,
        slug: &Slug,
        user_id: &str,
        input: DelegateInput,
    ) -> AppResult<Member> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let tx = self.tx_as(&access, actor);
            let old = self.own_member(&access, user_id).await?;
            let delegation = match &input.delegate {
                None => None,
                Some(raw) => Some(self.check_delegation(access.ws(), &old.user_id, raw, &input).await?),
            };
            let new = Member { delegation, ..old.clone() };
            self.write_member(tx, &old, new, "member.delegate").await
        })
    }

    /// Links (or with `null` unlinks) a member's Slack user id, so buttons they press
    /// in Slack decide as them. The member themselves, or an admin.
    #[instrument(skip(self, actor, input), fields(user = %actor.user_id))]
    pub async fn put_chat_link(
        &self,
        actor: &Actor,
        slug: &Slug,
        user_id: &str,
        input: ChatLinkInput,
    ) -> AppResult<Member> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let tx = self.tx_as(&access, actor);
            let old = self.own_member(&access, user_id).await?;
            if let Some(id) = &input.slack_user_id {
                check_slack_user_id(id).map_err(|r| FieldErrors::single("slack_user_id", r))?;
            }
            if old.slack_user_id == input.slack_user_id {
                return Ok(old);
            }
            let new = Member { slack_user_id: input.slack_user_id.clone(), ..old.clone() };
            self.write_member(tx, &old, new, "member.link_chat").await
        })
    }

    /// A member's record for a change to their own settings: the member themselves, or
    /// an admin.
    async fn own_member(&self, access: &Access, user_id: &str) -> AppResult<Member> {
        let user = UserId::parse(user_id).map_err(|_| AppError::NotFound)?;
        if &user != access.user() {
            access.require(Permission::ManageWorkspace)?;
        }
        load(&*self.table, &keys::member(access.ws(), &user)).await?.ok_or(AppError::NotFound)
    }

    /// Writes a member's new settings over the record read, audited as `action`.
    async fn write_member(&self, mut tx: Tx<'_>, old: &Member, mut new: Member, action: &str) -> AppResult<Member> {
        let now = self.now();
        new.version = old.version + 1;
        new.updated_at = now;
        let (before, after) = diff(old, &new);
        tx.put(member_item(&new), Some(Condition::version(old.version)));
        tx.audit(AuditEntry::new(action, "Member", new.user_id.as_str()).values(before, after));
        tx.commit(now).await?;
        Ok(new)
    }

    async fn check_delegation(
        &self,
        ws: &str,
        user: &UserId,
        raw: &str,
        input: &DelegateInput,
    ) -> AppResult<Delegation> {
        let mut errors = FieldErrors::default();
        let delegate = UserId::parse(raw).map_err(|r| errors.add("delegate", r)).ok();
        let time = |field: &str, v: &Option<String>, errors: &mut FieldErrors| -> Option<Timestamp> {
            let parsed = v.as_deref().and_then(vigilo_domain::time::parse);
            if parsed.is_none() {
                errors.add(field, "required: an RFC 3339 time such as 2026-12-01T09:00:00Z");
            }
            parsed.map(vigilo_domain::time::to_millis)
        };
        let from = time("from", &input.from, &mut errors);
        let until = time("until", &input.until, &mut errors);
        if let (Some(f), Some(u)) = (from, until) {
            if u <= f {
                errors.add("until", "must be after from");
            }
        }
        if let Some(d) = &delegate {
            if d == user {
                errors.add("delegate", "a member cannot delegate to themselves");
            } else if self.table.get(&keys::member(ws, d)).await?.is_none() {
                errors.add("delegate", "must be a member of this workspace");
            }
        }
        errors.into_result()?;
        match (delegate, from, until) {
            (Some(delegate), Some(from), Some(until)) => Ok(Delegation { delegate, from, until }),
            _ => Err(AppError::BadRequest("incomplete delegation".into())),
        }
    }

    pub async fn list_groups(&self, actor: &Actor, slug: &Slug) -> AppResult<Vec<Group>> {
        let access = self.access(actor, slug).await?;
        self.all_groups(access.ws()).await
    }

    pub async fn all_groups(&self, ws: &str) -> AppResult<Vec<Group>> {
        let (pk, prefix) = keys::groups(ws);
        crate::paging::query_all(&*self.table, Query::table(pk).begins_with(prefix).limit(500)).await
    }

    /// Replaces a group's members; each must be a member of the workspace.
    #[instrument(skip(self, actor, input), fields(user = %actor.user_id))]
    pub async fn put_group(&self, actor: &Actor, slug: &Slug, name: &str, input: GroupInput) -> AppResult<Group> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let ws = access.ws().to_owned();
            let mut errors = FieldErrors::default();
            if let Err(r) = check_group_name(name) {
                errors.add("name", r);
            }
            if input.members.len() > GROUP_MEMBERS_MAX {
                // Counted before any member is looked at: a huge list costs nothing more.
                errors.add("members", format!("at most {GROUP_MEMBERS_MAX} members"));
                return Err(errors.into());
            }
            let mut users = Vec::with_capacity(input.members.len());
            for raw in &input.members {
                users.push(parse_user("members", raw)?);
            }
            users.sort();
            users.dedup();
            // One read of the workspace's members, not one per name.
            let known: std::collections::BTreeSet<UserId> =
                self.all_members(&ws).await?.into_iter().map(|m| m.user_id).collect();
            for u in users.iter().filter(|u| !known.contains(u)) {
                errors.add("members", format!("{u} is not a member of this workspace"));
            }
            errors.into_result()?;
            let old: Option<Group> = load(&*self.table, &keys::group(&ws, name)).await?;
            let now = self.now();
            let new = Group {
                workspace_id: ws.clone(),
                name: name.to_owned(),
                members: users,
                version: old.as_ref().map_or(1, |g| g.version + 1),
                updated_at: now,
            };
            if old.as_ref().is_some_and(|g| g.members == new.members) {
                return Ok(old.unwrap_or(new));
            }
            let condition = old.as_ref().map_or(Condition::NotExists, |g| Condition::version(g.version));
            let before = old.as_ref().map_or(json!(null), |g| json!({"members": g.members}));
            tx.put(group_item(&new), Some(condition));
            tx.audit(AuditEntry::new("group.put", "Group", name).values(before, json!({"members": new.members})));
            tx.commit(now).await?;
            Ok(new)
        })
    }
}
