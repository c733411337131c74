//! Who may see and do what in a workspace. A caller who is not a member gets
//! `NotFound` for everything under the workspace, so nobody can probe which exist.

use std::collections::HashMap;
use std::sync::Mutex;

use vigilo_domain::ids::{Slug, UserId};
use vigilo_domain::role::{allows, Permission, Role};
use vigilo_domain::workspace::{Member, Workspace};
use vigilo_domain::DomainError;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::services::records::{decode, load};
use crate::store::{Item, Key, Query};
use crate::Vigilo;

/// A caller's standing in one workspace.
#[derive(Debug, Clone)]
pub struct Access {
    pub workspace: Workspace,
    pub member: Member,
}

impl Access {
    pub fn role(&self) -> Role {
        self.member.role
    }

    pub fn user(&self) -> &UserId {
        &self.member.user_id
    }

    pub fn ws(&self) -> &str {
        &self.workspace.id
    }

    pub fn require(&self, p: Permission) -> AppResult<()> {
        if allows(self.role(), p) {
            Ok(())
        } else {
            Err(DomainError::Forbidden.into())
        }
    }
}

/// Slug to workspace id, remembered for the life of the process: a slug claim is
/// written once with its workspace and never rewritten (no route renames or deletes a
/// workspace), so a resolved id cannot go stale. This saves a read on every request.
#[derive(Debug, Default)]
pub struct SlugCache(Mutex<HashMap<String, String>>);

/// Enough for every workspace a container serves; past it the cache starts over.
const SLUG_CACHE_MAX: usize = 10_000;

impl SlugCache {
    fn get(&self, slug: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(slug).cloned()
    }

    fn put(&self, slug: &str, id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SLUG_CACHE_MAX {
            map.clear();
        }
        map.insert(slug.to_owned(), id.to_owned());
    }
}

impl Vigilo {
    /// Resolves a slug to the workspace and the caller's membership in it.
    pub async fn access(&self, actor: &Actor, slug: &Slug) -> AppResult<Access> {
        Ok(self.access_with(actor, slug, |_| Vec::new()).await?.0)
    }

    /// The caller's access and the items `more` names (given the workspace id), all
    /// read as one consistent snapshot in one round trip.
    pub async fn access_with(
        &self,
        actor: &Actor,
        slug: &Slug,
        more: impl FnOnce(&str) -> Vec<Key>,
    ) -> AppResult<(Access, Vec<Option<Item>>)> {
        let id = self.workspace_id(slug).await?.ok_or(AppError::NotFound)?;
        let mut wanted = vec![keys::workspace(&id), keys::member(&id, &actor.user_id)];
        wanted.extend(more(&id));
        let mut items = self.table.snapshot(&wanted).await?;
        let rest = items.split_off(2);
        let member = items.pop().flatten().map(decode::<Member>).transpose()?;
        let workspace = items.pop().flatten().map(decode::<Workspace>).transpose()?;
        match (workspace, member) {
            (Some(workspace), Some(member)) => Ok((Access { workspace, member }, rest)),
            _ => Err(AppError::NotFound),
        }
    }

    /// The id of the workspace a slug names.
    pub(crate) async fn workspace_id(&self, slug: &Slug) -> AppResult<Option<String>> {
        if let Some(id) = self.slugs.get(slug.as_str()) {
            return Ok(Some(id));
        }
        let Some(claim) = self.table.get(&keys::slug(slug)).await? else {
            return Ok(None);
        };
        let Some(id) = claim.data.get("workspace_id").and_then(|v| v.as_str()) else {
            return Err(AppError::Corrupt("slug claim without workspace_id".into()));
        };
        self.slugs.put(slug.as_str(), id);
        Ok(Some(id.to_owned()))
    }

    /// The workspace a slug names, without any access check (for offline tools).
    pub async fn workspace_by_slug(&self, slug: &Slug) -> AppResult<Option<Workspace>> {
        match self.workspace_id(slug).await? {
            Some(id) => load(&*self.table, &keys::workspace(&id)).await,
            None => Ok(None),
        }
    }

    /// Every member of a workspace (one partition query, paged internally).
    pub async fn all_members(&self, workspace_id: &str) -> AppResult<Vec<Member>> {
        let (pk, prefix) = keys::members(workspace_id);
        paging::query_all(&*self.table, Query::table(pk).begins_with(prefix).limit(500)).await
    }

    /// The members who delegated their approvals to `delegate`, while it holds now.
    pub async fn delegators(&self, workspace_id: &str, delegate: &UserId) -> AppResult<Vec<Member>> {
        let q = Query::index(keys::BY_DELEGATE, keys::delegators_of(workspace_id, delegate)).limit(500);
        let members: Vec<Member> = paging::query_all(&*self.table, q).await?;
        Ok(delegators_among(members.iter(), delegate, self.now()))
    }
}

/// The members of `members` who delegated their approvals to `delegate`, while it holds
/// at `now`: for a caller who read every member anyway.
pub(crate) fn delegators_among<'m>(
    members: impl Iterator<Item = &'m Member>,
    delegate: &UserId,
    now: jiff::Timestamp,
) -> Vec<Member> {
    members
        .filter(|m| m.delegation.as_ref().is_some_and(|d| &d.delegate == delegate && d.holds_at(now)))
        .cloned()
        .collect()
}
