//! Who may see and do what in a workspace. A caller who is not a member gets
//! `NotFound` for everything under the workspace, so nobody can probe which exist.

use vigilo_domain::ids::{Slug, UserId};
use vigilo_domain::role::{allows, Permission, Role};
use vigilo_domain::workspace::{Member, Workspace};
use vigilo_domain::DomainError;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::paging;
use crate::services::records::load;
use crate::store::Query;
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

impl Vigilo {
    /// Resolves a slug to the workspace and the caller's membership in it.
    pub async fn access(&self, actor: &Actor, slug: &str) -> AppResult<Access> {
        let workspace = self.workspace_by_slug(slug).await?.ok_or(AppError::NotFound)?;
        let member: Member =
            load(&*self.table, &keys::member(&workspace.id, &actor.user_id)).await?.ok_or(AppError::NotFound)?;
        Ok(Access { workspace, member })
    }

    /// The workspace a slug names, without any access check (for offline tools).
    pub async fn workspace_by_slug(&self, slug: &str) -> AppResult<Option<Workspace>> {
        let Ok(slug) = Slug::parse(slug) else {
            return Ok(None);
        };
        let Some(claim) = self.table.get(&keys::slug(&slug)).await? else {
            return Ok(None);
        };
        let Some(id) = claim.data.get("workspace_id").and_then(|v| v.as_str()) else {
            return Err(AppError::Corrupt("slug claim without workspace_id".into()));
        };
        load(&*self.table, &keys::workspace(id)).await
    }

    /// Every member of a workspace (one partition query, paged internally).
    pub async fn all_members(&self, workspace_id: &str) -> AppResult<Vec<Member>> {
        let (pk, prefix) = keys::members(workspace_id);
        paging::query_all(&*self.table, Query::table(pk).begins_with(prefix).limit(500)).await
    }

    /// The members who delegated their approvals to `delegate`, while it holds now.
    pub async fn delegators(&self, workspace_id: &str, delegate: &UserId) -> AppResult<Vec<Member>> {
        let q = Query::index(keys::BY_DELEGATE, keys::delegators_of(workspace_id, delegate)).limit(500);
        let now = self.now();
        let members: Vec<Member> = paging::query_all(&*self.table, q).await?;
        Ok(members
            .into_iter()
            .filter(|m| m.delegation.as_ref().is_some_and(|d| &d.delegate == delegate && d.holds_at(now)))
            .collect())
    }
}
