//! Workspaces: create (the caller becomes owner), list the caller's, read, update.

use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use vigilo_domain::ids::Slug;
use vigilo_domain::locale::Locale;
use vigilo_domain::role::{Permission, Role};
use vigilo_domain::workspace::{check_settings, Member, Workspace};
use vigilo_domain::FieldErrors;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::retrying;
use crate::services::idempotency::{self, Created, IdempotencyKey, Slot};
use crate::services::records::{load, member_item, to_data, workspace_item};
use crate::services::views::{diff, WorkspaceView};
use crate::store::{Condition, Item, Query};
use crate::txn::AuditEntry;
use crate::Vigilo;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    #[schema(example = "acme")]
    pub slug: String,
    pub name: String,
    #[schema(value_type = Option<vigilo_domain::locale::Locale>)]
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatch {
    pub name: Option<String>,
    #[schema(value_type = Option<vigilo_domain::locale::Locale>)]
    pub locale: Option<String>,
    pub timezone: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>)]
    pub audit_retention_days: Option<Option<u32>>,
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

const SCOPE: &str = "workspaces";

impl Vigilo {
    #[instrument(skip(self, actor, idem), fields(user = %actor.user_id))]
    pub async fn create_workspace(
        &self,
        actor: &Actor,
        input: NewWorkspace,
        idem: Option<&IdempotencyKey>,
    ) -> AppResult<Created<WorkspaceView>> {
        let mut errors = FieldErrors::default();
        let slug = Slug::parse(&input.slug).map_err(|r| errors.add("slug", r)).ok();
        let locale = input.locale.unwrap_or_else(|| "en".into());
        let timezone = input.timezone.unwrap_or_else(|| "UTC".into());
        check_settings(&mut errors, Some(&input.name), Some(&locale), Some(&timezone), None);
        errors.clone().into_result()?;
        let Some(slug) = slug else {
            return Err(errors.into());
        };

        retrying!({
            let now = self.now();
            let slot = idempotency::lookup(&*self.table, &actor.user_id, SCOPE, idem, now).await?;
            if let Slot::Replay(v) = slot {
                return Ok(Created::Replay(v));
            }
            if self.table.get(&keys::slug(&slug)).await?.is_some() {
                return Err(AppError::SlugTaken(slug.to_string()));
            }
            let workspace = Workspace {
                id: uuid::Uuid::new_v4().to_string(),
                slug: slug.clone(),
                name: input.name.trim().to_owned(),
                locale: Locale::of(&locale),
                timezone: timezone.clone(),
                audit_retention_days: None,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            let owner = Member {
                slack_user_id: None,
                workspace_id: workspace.id.clone(),
                user_id: actor.user_id.clone(),
                email: actor.email.clone().unwrap_or_default(),
                name: actor.name.clone(),
                role: Role::Owner,
                delegation: None,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            let view = WorkspaceView { workspace: workspace.clone(), role: Role::Owner };
            let mut tx = self.tx(&workspace.id, Some(actor));
            tx.put(Item::new(keys::slug(&slug), json!({"workspace_id": workspace.id})), Some(Condition::NotExists));
            tx.put(workspace_item(&workspace), Some(Condition::NotExists));
            let entry = json!({"workspace_id": workspace.id, "created_at": vigilo_domain::time::format(now)});
            tx.put(Item::new(keys::registry_entry(&workspace.id), entry), Some(Condition::NotExists));
            tx.put(member_item(&owner), Some(Condition::NotExists));
            // The freeze calendar is kept from the start, empty.
            crate::services::freeze::write_calendar(&mut tx, &workspace.id, None, vec![], now);
            tx.audit(
                AuditEntry::new("workspace.create", "Workspace", &workspace.id)
                    .values(json!(null), to_data(&workspace)),
            );
            tx.audit(
                AuditEntry::new("member.add", "Member", owner.user_id.as_str()).values(json!(null), to_data(&owner)),
            );
            idempotency::remember(&mut tx, &actor.user_id, SCOPE, idem, &slot, &to_data(&view), now);
            tx.commit(now).await?;
            Ok(Created::New(view))
        })
    }

    /// The caller's workspaces with their role, from the `by_user` index.
    pub async fn list_workspaces(&self, actor: &Actor) -> AppResult<Vec<WorkspaceView>> {
        let q = Query::index(keys::BY_USER, keys::user_workspaces(&actor.user_id)).limit(200);
        let memberships: Vec<Member> = crate::paging::query_all(&*self.table, q).await?;
        let mut out = Vec::with_capacity(memberships.len());
        for m in memberships {
            if let Some(workspace) = load::<Workspace>(&*self.table, &keys::workspace(&m.workspace_id)).await? {
                out.push(WorkspaceView { workspace, role: m.role });
            }
        }
        out.sort_by(|a, b| a.workspace.slug.as_str().cmp(b.workspace.slug.as_str()));
        Ok(out)
    }

    pub async fn get_workspace(&self, actor: &Actor, slug: &Slug) -> AppResult<WorkspaceView> {
        let access = self.access(actor, slug).await?;
        Ok(WorkspaceView { role: access.role(), workspace: access.workspace })
    }

    #[instrument(skip(self, actor, patch), fields(user = %actor.user_id))]
    pub async fn update_workspace(
        &self,
        actor: &Actor,
        slug: &Slug,
        patch: WorkspacePatch,
        if_match: Option<u64>,
    ) -> AppResult<WorkspaceView> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            access.require(Permission::ManageWorkspace)?;
            let old = access.workspace.clone();
            if let Some(v) = if_match.filter(|v| *v != old.version) {
                return Err(AppError::VersionConflict { expected: v, current: old.version });
            }
            let mut errors = FieldErrors::default();
            let retention = patch.audit_retention_days.flatten();
            check_settings(
                &mut errors,
                patch.name.as_deref(),
                patch.locale.as_deref(),
                patch.timezone.as_deref(),
                retention,
            );
            errors.into_result()?;
            let now = self.now();
            let mut new = old.clone();
            if let Some(n) = &patch.name {
                new.name = n.trim().to_owned();
            }
            if let Some(l) = &patch.locale {
                new.locale = Locale::of(l);
            }
            if let Some(t) = &patch.timezone {
                new.timezone = t.clone();
            }
            if let Some(r) = patch.audit_retention_days {
                new.audit_retention_days = r;
            }
            if new == old {
                return Ok(WorkspaceView { workspace: new, role: access.role() });
            }
            new.version += 1;
            new.updated_at = now;
            let (before, after) = diff(&old, &new);
            tx.put(workspace_item(&new), Some(Condition::version(old.version)));
            tx.audit(AuditEntry::new("workspace.update", "Workspace", &new.id).values(before, after));
            tx.commit(now).await?;
            Ok(WorkspaceView { workspace: new, role: access.role() })
        })
    }
}
