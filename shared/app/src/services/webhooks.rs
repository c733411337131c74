//! Webhook subscriptions and their deliveries. The audit log is the outbox: each
//! subscription keeps a cursor (the last row handled) and is fed the rows after it, in
//! order, so nothing is written on the request path and nothing is skipped. A delivery
//! that fails stops its subscription's queue until the backoff has passed; every
//! attempt lands in the subscription's delivery log (kept 30 days).

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::instrument;
use vigilo_domain::ids::Slug;
use vigilo_domain::role::Role;
use vigilo_domain::webhook::{self, RawWebhook, Webhook};
use vigilo_domain::DomainError;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::notify::WebhookSender;
use crate::paging::{self, Paged};
use crate::retrying;
use crate::services::access::Access;
use crate::services::records::{decode_ref, load, to_data};
use crate::services::sweeps::tally;
use crate::store::{Condition, Item, Query, WriteOp};
use crate::txn::{load_head, AuditEntry};
use crate::Vigilo;

/// Rows fed to one subscription per pass.
const BATCH: usize = 50;
/// How long delivery log entries are kept.
const LOG_DAYS: i64 = 30;

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    pub webhook_id: String,
    pub seq: u64,
    pub event: String,
    pub row_id: String,
    pub at: Timestamp,
    pub status: Option<u16>,
    pub ok: bool,
    pub error: Option<String>,
    pub attempt: u32,
    pub duration_ms: u64,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookReport {
    pub delivered: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Workspaces whose subscriptions could not be fed this time (each is logged as an error).
    pub failed_workspaces: Vec<String>,
}

tally!(WebhookReport { sum: [delivered, failed, skipped], lists: [failed_workspaces], failed: failed_workspaces });

fn require_owner(access: &Access) -> AppResult<()> {
    if access.role() == Role::Owner {
        Ok(())
    } else {
        Err(DomainError::Forbidden.into())
    }
}

impl Vigilo {
    /// Sends webhook deliveries through `sender`.
    pub fn with_webhooks(mut self, sender: Arc<dyn WebhookSender>) -> Vigilo {
        self.webhooks = Some(sender);
        self
    }

    #[instrument(skip(self, actor, raw), fields(user = %actor.user_id))]
    pub async fn create_webhook(&self, actor: &Actor, slug: &Slug, raw: RawWebhook) -> AppResult<Value> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            require_owner(&access)?;
            let (url, events, secret) = raw.clone().parse()?;
            let now = self.now();
            // New subscriptions hear about what happens from now on.
            let cursor = load_head(&*self.table, access.ws()).await?.map_or(0, |h| h.seq);
            let w = Webhook {
                id: uuid::Uuid::new_v4().to_string(),
                workspace_id: access.ws().to_owned(),
                url,
                events,
                secret,
                cursor,
                attempts: 0,
                next_at: now,
                last_error: None,
                created_by: actor.user_id.clone(),
                created_at: now,
                version: 1,
            };
            tx.put(Item::new(keys::webhook(access.ws(), &w.id), to_data(&w)), Some(Condition::NotExists));
            tx.audit(AuditEntry::new("webhook.create", "Webhook", &w.id).values(json!(null), w.redacted()));
            tx.commit(now).await?;
            Ok(w.redacted())
        })
    }

    pub async fn list_webhooks(&self, actor: &Actor, slug: &Slug) -> AppResult<Vec<Value>> {
        let access = self.access(actor, slug).await?;
        require_owner(&access)?;
        Ok(self.all_webhooks(access.ws()).await?.iter().map(Webhook::redacted).collect())
    }

    async fn all_webhooks(&self, ws: &str) -> AppResult<Vec<Webhook>> {
        let (pk, prefix) = keys::webhooks(ws);
        paging::query_all(&*self.table, Query::table(pk).begins_with(prefix).limit(200)).await
    }

    #[instrument(skip(self, actor), fields(user = %actor.user_id))]
    pub async fn delete_webhook(&self, actor: &Actor, slug: &Slug, id: &str) -> AppResult<()> {
        retrying!({
            let access = self.access(actor, slug).await?;
            let mut tx = self.tx_as(&access, actor);
            require_owner(&access)?;
            let w: Webhook = load(&*self.table, &keys::webhook(access.ws(), id)).await?.ok_or(AppError::NotFound)?;
            tx.delete(keys::webhook(access.ws(), id), Some(Condition::version(w.version)));
            tx.audit(AuditEntry::new("webhook.delete", "Webhook", &w.id).values(w.redacted(), json!(null)));
            tx.commit(self.now()).await?;
            Ok(())
        })
    }

    /// A subscription's delivery log, newest first.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        slug: &Slug,
        id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Paged<DeliveryAttempt>> {
        let access = self.access(actor, slug).await?;
        require_owner(&access)?;
        load::<Webhook>(&*self.table, &keys::webhook(access.ws(), id)).await?.ok_or(AppError::NotFound)?;
        let q = Query::table(keys::webhook_log(access.ws(), id)).backward();
        let (items, next_cursor) = paging::collect(&*self.table, q, limit, cursor, |item| {
            std::future::ready(decode_ref::<DeliveryAttempt>(item).map(Some))
        })
        .await?;
        Ok(Paged { items, next_cursor })
    }

    /// Feeds every due subscription of a workspace the audit rows after its cursor.
    pub async fn dispatch_webhooks(&self, ws: &str) -> AppResult<WebhookReport> {
        let mut report = WebhookReport::default();
        let Some(sender) = self.webhooks.clone() else { return Ok(report) };
        for w in self.all_webhooks(ws).await? {
            if w.next_at > self.now() {
                report.skipped += 1;
                continue;
            }
            self.feed(&*sender, w, &mut report).await?;
        }
        Ok(report)
    }

    /// Every workspace's subscriptions (the sweep's pass).
    pub async fn dispatch_all_webhooks(&self) -> AppResult<WebhookReport> {
        self.each_workspace("webhooks", |ws| async move { self.dispatch_webhooks(&ws).await }).await
    }

    async fn feed(&self, sender: &dyn WebhookSender, mut w: Webhook, report: &mut WebhookReport) -> AppResult<()> {
        let key = keys::webhook(&w.workspace_id, &w.id);
        // Claim: push next_at out so a concurrent pass leaves this one alone.
        let held = w.version;
        w.next_at = self.now() + SignedDuration::from_secs(60);
        w.version += 1;
        let claim =
            WriteOp::Put { item: Item::new(key.clone(), to_data(&w)), condition: Some(Condition::version(held)) };
        if self.table.transact(vec![claim]).await.is_err() {
            report.skipped += 1;
            return Ok(());
        }
        let lo = keys::seq_sk(w.cursor + 1);
        let q = Query::table(keys::audit_rows(&w.workspace_id)).between(lo, keys::seq_sk(u64::MAX)).limit(BATCH);
        let rows = self.table.query(&q).await?.items;
        let mut log = Vec::new();
        let mut failed = false;
        for item in rows {
            let row = item.data;
            let seq = row.get("seq").and_then(Value::as_u64).unwrap_or(w.cursor + 1);
            let action = row.get("action").and_then(Value::as_str).unwrap_or_default().to_owned();
            if !w.wants(&action) {
                w.cursor = seq;
                continue;
            }
            let now = self.now();
            let row_id = row.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            let body = serde_json::to_vec(&json!({
                "id": row_id, "type": action, "workspace_id": w.workspace_id, "webhook_id": w.id, "row": row,
            }))
            .map_err(|e| AppError::Corrupt(e.to_string()))?;
            let headers = [
                ("content-type", "application/json".to_owned()),
                ("vigilo-event", action.clone()),
                ("vigilo-delivery", row_id.clone()),
                ("vigilo-signature", webhook::signature(&w.secret, now, &body)),
            ];
            let started = std::time::Instant::now();
            let result = sender.post(&w.url, &headers, &body).await;
            let ok = matches!(result, Ok(s) if (200..300).contains(&s));
            let attempt = DeliveryAttempt {
                webhook_id: w.id.clone(),
                seq,
                event: action,
                row_id,
                at: now,
                status: result.as_ref().ok().copied(),
                ok,
                error: match &result {
                    Ok(s) if !ok => Some(format!("the receiver answered {s}")),
                    Err(e) => Some(e.clone()),
                    _ => None,
                },
                attempt: w.attempts + 1,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            let entry = Item::new(
                keys::webhook_log_entry(&w.workspace_id, &w.id, &vigilo_domain::time::format(now), seq),
                to_data(&attempt),
            )
            .expires((now + SignedDuration::from_hours(24 * LOG_DAYS)).as_second());
            log.push(WriteOp::Put { item: entry, condition: None });
            if ok {
                report.delivered += 1;
                w.cursor = seq;
                w.attempts = 0;
                w.last_error = None;
            } else {
                report.failed += 1;
                w.attempts += 1;
                w.last_error = attempt.error.clone();
                failed = true;
                break;
            }
        }
        let now = self.now();
        w.next_at = if failed { now + webhook::backoff(w.attempts) } else { now };
        let held = w.version;
        w.version += 1;
        let mut ops =
            vec![WriteOp::Put { item: Item::new(key, to_data(&w)), condition: Some(Condition::version(held)) }];
        ops.extend(log);
        for chunk in ops.chunks(crate::store::MAX_TRANSACTION_ITEMS) {
            self.table.transact(chunk.to_vec()).await?;
        }
        Ok(())
    }
}
