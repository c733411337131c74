//! Comments on a change: member+ write, viewer+ read, oldest first. Each is audited, so
//! a change's activity feed shows the discussion beside its moves.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;
use vigilo_domain::ids::{ChangeNumber, Slug, UserId};
use vigilo_domain::role::Permission;
use vigilo_domain::{time, FieldErrors};

use crate::actor::Actor;
use crate::error::AppResult;
use crate::keys;
use crate::paging::{self, Paged};
use crate::retrying;
use crate::services::idempotency::{self, Created, IdempotencyKey, Slot};
use crate::services::records::{decode_ref, to_data};
use crate::store::{Condition, Item, Query};
use crate::txn::AuditEntry;
use crate::Vigilo;

pub const COMMENT_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comment {
    pub id: String,
    pub change_number: ChangeNumber,
    pub author: UserId,
    pub author_name: Option<String>,
    pub body: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    pub body: Option<String>,
}

impl Vigilo {
    #[instrument(skip(self, actor, input), fields(user = %actor.user_id))]
    pub async fn add_comment(
        &self,
        actor: &Actor,
        slug: &Slug,
        n: ChangeNumber,
        input: CommentInput,
        idem: Option<&IdempotencyKey>,
    ) -> AppResult<Created<Comment>> {
        retrying!({
            let (access, mut tx, change, _) = self.change_for_write(actor, slug, n).await?;
            access.require(Permission::CreateChange)?;
            let scope = format!("comments:{}", access.ws());
            let slot = idempotency::lookup(&*self.table, &actor.user_id, &scope, idem, self.now()).await?;
            if let Slot::Replay(v) = slot {
                return Ok(Created::Replay(v));
            }
            let body = input.body.as_deref().map(str::trim).unwrap_or_default().to_owned();
            if let Err(reason) = vigilo_domain::text::check_lines(&body, 1, COMMENT_MAX) {
                return Err(FieldErrors::single("body", &format!("required: {reason}")).into());
            }
            let now = self.now();
            let c = Comment {
                id: uuid::Uuid::new_v4().to_string(),
                change_number: n,
                author: actor.user_id.clone(),
                author_name: actor.name.clone().or_else(|| access.member.name.clone()),
                body,
                created_at: now,
            };
            let key = keys::comment(access.ws(), n, &time::format(now), &c.id);
            tx.put(Item::new(key, to_data(&c)), Some(Condition::NotExists));
            tx.audit(
                AuditEntry::new("comment.create", "Comment", &c.id)
                    .values(json!(null), to_data(&c))
                    .subject(&change.id),
            );
            idempotency::remember(&mut tx, &actor.user_id, &scope, idem, &slot, &to_data(&c), now);
            tx.commit(now).await?;
            Ok(Created::New(c))
        })
    }

    pub async fn list_comments(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Paged<Comment>> {
        let c = self.get_stored_change(actor, slug, number).await?;
        let q = Query::table(keys::steps(&c.workspace_id, c.number)).begins_with(keys::COMMENT_PREFIX);
        let (items, next_cursor) = paging::collect(&*self.table, q, limit, cursor, |item| {
            std::future::ready(decode_ref::<Comment>(item).map(Some))
        })
        .await?;
        Ok(Paged { items, next_cursor })
    }
}
