//! Who is told what, and the outbox that makes sure they are. Notices (and, for
//! approval requests, the grant behind each decision link) ride in the transaction of
//! the event; [`Vigilo::deliver_pending`] sends them afterwards.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigilo_domain::approval::ApprovalStep;
use vigilo_domain::change::{ChangeRequest, ChangeType};
use vigilo_domain::conflict::Conflict;
use vigilo_domain::eligibility;
use vigilo_domain::freeze::FreezeWindow;
use vigilo_domain::ids::UserId;
use vigilo_domain::link::{self, Grant};
use vigilo_domain::notice::{ChangeDetails, DecisionLinks, Notice, NoticeKind};
use vigilo_domain::role::Role;
use vigilo_domain::time;
use vigilo_domain::workspace::{Member, Workspace};

use crate::error::AppResult;
use crate::keys;
use crate::notify::{self, Delivery};
use crate::services::records::{decode_ref, to_data};
use crate::services::sweeps::tally;
use crate::store::{Condition, Item, Query, WriteOp};
use crate::Vigilo;

/// What a notice is about: the event's workspace, change, the members read for it,
/// the details approvers see, and when.
#[derive(Clone, Copy)]
pub(crate) struct Event<'a> {
    pub ws: &'a Workspace,
    pub change: &'a ChangeRequest,
    pub members: &'a [Member],
    pub details: Option<&'a ChangeDetails>,
    pub now: Timestamp,
}

/// How long a decision link works: a day for emergencies, a week otherwise.
pub fn link_lifetime(t: ChangeType) -> SignedDuration {
    match t {
        ChangeType::Emergency => SignedDuration::from_hours(24),
        _ => SignedDuration::from_hours(24 * 7),
    }
}

/// A message waiting in the outbox (a notice, or a digest such as the CAB's agenda),
/// with what has gone out so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "M: Serialize + serde::de::DeserializeOwned")]
pub struct Pending<M = Notice> {
    pub notice: M,
    pub email_sent: bool,
    pub chat_sent: bool,
    pub attempts: u32,
    pub next_at: Timestamp,
    /// Another sender holds it until then.
    pub claimed_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub version: u64,
}

/// What the outbox sends: a message to one person, as an email and, where it has one,
/// a chat message.
pub(crate) trait Outbound: Serialize + serde::de::DeserializeOwned + Clone {
    fn id(&self) -> &str;
    fn recipient(&self) -> &str;
    fn email(&self, from: &str) -> Result<notify::OutgoingEmail, String>;
    /// `None`: it goes by email alone.
    fn chat(&self) -> Option<Value>;
}

impl Outbound for Notice {
    fn id(&self) -> &str {
        &self.id
    }
    fn recipient(&self) -> &str {
        self.recipient.as_str()
    }
    fn email(&self, from: &str) -> Result<notify::OutgoingEmail, String> {
        notify::email(self, from)
    }
    fn chat(&self) -> Option<Value> {
        Some(vigilo_render::chat(self))
    }
}

impl Outbound for vigilo_domain::agenda::AgendaMail {
    fn id(&self) -> &str {
        &self.id
    }
    fn recipient(&self) -> &str {
        self.recipient.as_str()
    }
    fn email(&self, from: &str) -> Result<notify::OutgoingEmail, String> {
        notify::agenda_email(self, from)
    }
    fn chat(&self) -> Option<Value> {
        None
    }
}

impl Outbound for vigilo_domain::audit_alert::AuditAlert {
    fn id(&self) -> &str {
        &self.id
    }
    fn recipient(&self) -> &str {
        self.recipient.as_str()
    }
    fn email(&self, from: &str) -> Result<notify::OutgoingEmail, String> {
        notify::audit_alert_email(self, from)
    }
    fn chat(&self) -> Option<Value> {
        None
    }
}

/// The outbox entry that sends `m`, written on the condition that it is new.
pub(crate) fn queued<M: Outbound>(m: &M, workspace_id: &str, id: &str, created_at: Timestamp) -> WriteOp {
    let pending = Pending {
        next_at: created_at,
        notice: m.clone(),
        email_sent: false,
        chat_sent: m.chat().is_none(),
        attempts: 0,
        claimed_until: None,
        last_error: None,
        version: 1,
    };
    let key = keys::outbox_entry(workspace_id, &time::format(created_at), id);
    WriteOp::Put { item: Item::new(key, to_data(&pending)), condition: Some(Condition::NotExists) }
}

/// What one delivery pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub failed: usize,
    pub waiting: usize,
    /// Workspaces whose outbox could not be read this time (each is logged as an error).
    pub failed_workspaces: Vec<String>,
}

tally!(DeliveryReport { sum: [sent, failed, waiting], lists: [failed_workspaces], failed: failed_workspaces });

/// A grant's item: kept a month past its expiry (a late click still hears "expired"),
/// then dropped by the table's TTL.
pub(crate) fn grant_item(g: &Grant) -> Item {
    let keep_until = (g.expires_at + SignedDuration::from_hours(24 * 30)).as_second();
    Item::new(keys::link_grant(&g.id), to_data(g)).expires(keep_until)
}

fn random_id() -> String {
    let u = uuid::Uuid::new_v4();
    hex::encode(&u.as_bytes()[..link::ID_BYTES])
}

/// Waits after the n-th failed attempt: 1, 2, 4, ... minutes, at most 6 hours.
fn backoff(attempts: u32) -> SignedDuration {
    SignedDuration::from_mins(1i64 << attempts.min(9)).min(SignedDuration::from_hours(6))
}

/// The people a notice about `c` goes to: its author and assignee, and for a rollback
/// every admin and owner as well.
fn change_audience<'m>(c: &ChangeRequest, kind: NoticeKind, members: &'m [Member]) -> Vec<&'m Member> {
    let mut out: Vec<&Member> = members
        .iter()
        .filter(|m| {
            m.user_id == c.author
                || c.assignee.as_ref() == Some(&m.user_id)
                || (kind == NoticeKind::ChangeRolledBack && m.role >= Role::Admin)
        })
        .collect();
    out.dedup_by(|a, b| a.user_id == b.user_id);
    out
}

impl Vigilo {
    fn notice(&self, ws: &Workspace, c: &ChangeRequest, kind: NoticeKind, to: &Member, now: Timestamp) -> Notice {
        Notice {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            workspace_id: ws.id.clone(),
            workspace_name: ws.name.clone(),
            locale: ws.locale,
            timezone: ws.timezone.clone(),
            change_number: c.number,
            change_title: c.title.clone(),
            change_type: c.change_type.to_string(),
            risk_level: c.risk_level.to_string(),
            planned_start: c.planned_start,
            recipient: to.user_id.clone(),
            recipient_email: to.email.clone(),
            recipient_name: to.name.clone(),
            step_name: None,
            detail: None,
            links: None,
            details: None,
            created_at: now,
        }
    }

    fn queue(&self, n: Notice, ops: &mut Vec<WriteOp>) {
        ops.push(queued(&n, &n.workspace_id, &n.id, n.created_at));
    }

    /// A decision link for `to` on `step`: the grant to store and the links to show.
    pub(crate) fn grant_for(
        &self,
        d: &Delivery,
        c: &ChangeRequest,
        step: &ApprovalStep,
        to: &UserId,
        kind: NoticeKind,
        now: Timestamp,
    ) -> (Grant, DecisionLinks) {
        let lifetime = if kind == NoticeKind::ApprovalEscalated {
            SignedDuration::from_hours(24)
        } else {
            link_lifetime(c.change_type)
        };
        let grant = Grant {
            id: random_id(),
            workspace_id: c.workspace_id.clone(),
            change_number: c.number,
            step_id: step.id.clone(),
            approver: to.clone(),
            expires_at: time::to_millis(now + lifetime),
            used_at: None,
            version: 1,
        };
        let token = link::token(&d.link_secret, &grant);
        let links = DecisionLinks {
            page_url: format!("{}/a/{token}", d.base_url.trim_end_matches('/')),
            reply_to: d.reply_domain.as_ref().map(|domain| format!("r+{token}@{domain}")),
            token,
            expires_at: grant.expires_at,
        };
        (grant, links)
    }

    /// Approval requests for steps that just opened: each eligible approver, and each
    /// member a delegation currently hands their seat to, gets a notice with a link of
    /// their own. Nothing when notices are not configured.
    pub(crate) fn approval_requests(&self, e: &Event<'_>, steps: &[&ApprovalStep], kind: NoticeKind) -> Vec<WriteOp> {
        let Event { ws, change: c, members, details, now } = *e;
        let Some(d) = self.delivery.as_ref() else { return vec![] };
        let mut ops = Vec::new();
        for step in steps {
            for to in eligibility::asked(step, members, &c.author, now) {
                let (grant, links) = self.grant_for(d, c, step, &to.user_id, kind, now);
                ops.push(WriteOp::Put { item: grant_item(&grant), condition: Some(Condition::NotExists) });
                let mut n = self.notice(ws, c, kind, to, now);
                n.step_name = Some(step.name.clone());
                n.links = Some(links);
                n.details = details.cloned();
                self.queue(n, &mut ops);
            }
        }
        ops
    }

    /// Plain notices (no link) of `kind` to each of `to`, completed by `fill`.
    pub(crate) fn notices_to<'m>(
        &self,
        ws: &Workspace,
        c: &ChangeRequest,
        kind: NoticeKind,
        to: impl Iterator<Item = &'m Member>,
        fill: impl Fn(&mut Notice),
        now: Timestamp,
    ) -> Vec<WriteOp> {
        if self.delivery.is_none() {
            return vec![];
        }
        let mut ops = Vec::new();
        for m in to {
            let mut n = self.notice(ws, c, kind, m, now);
            fill(&mut n);
            self.queue(n, &mut ops);
        }
        ops
    }

    /// Notices of an outcome (approved, rejected, rolled back) to the people concerned.
    pub(crate) fn change_notices(&self, e: &Event<'_>, kind: NoticeKind, detail: Option<String>) -> Vec<WriteOp> {
        let Event { ws, change: c, members, details, now } = *e;
        let audience = change_audience(c, kind, members).into_iter();
        let fill = |n: &mut Notice| {
            n.detail = detail.clone();
            n.details = details.cloned();
        };
        self.notices_to(ws, c, kind, audience, fill, now)
    }

    /// A move on a change, told to the members following one of its assets who are not
    /// on it themselves (its author and assignee hear of it their own way) and did not
    /// make the move. Members no longer in the workspace are not in `members`.
    pub(crate) fn watcher_notices(
        &self,
        e: &Event<'_>,
        watchers: &std::collections::BTreeSet<UserId>,
        action: vigilo_domain::fsm::Action,
        mover: &UserId,
    ) -> Vec<WriteOp> {
        let Event { ws, change: c, members, details, now } = *e;
        let audience = members.iter().filter(|m| {
            watchers.contains(&m.user_id)
                && m.user_id != c.author
                && c.assignee.as_ref() != Some(&m.user_id)
                && &m.user_id != mover
        });
        let detail = Some(vigilo_render::watched_event(ws.locale, action.as_str()));
        let fill = |n: &mut Notice| {
            n.detail = detail.clone();
            n.details = details.cloned();
        };
        self.notices_to(ws, c, NoticeKind::ChangeWatched, audience, fill, now)
    }

    /// An overdue step, told to the workspace's admins and owners who are not asked on
    /// it themselves (those get the reminder with their link).
    pub(crate) fn admin_notices(&self, e: &Event<'_>, step: &ApprovalStep) -> Vec<WriteOp> {
        let Event { ws, change: c, members, details, now } = *e;
        let admins = members.iter().filter(|m| m.role >= Role::Admin && !step.eligible.contains(&m.user_id));
        let waiting: Vec<&str> = step.eligible.iter().map(|u| u.as_str()).collect();
        let detail = Some(vigilo_render::waiting_on(ws.locale, &waiting));
        let fill = |n: &mut Notice| {
            n.step_name = Some(step.name.clone());
            n.detail = detail.clone();
            n.details = details.cloned();
        };
        self.notices_to(ws, c, NoticeKind::ApprovalEscalated, admins, fill, now)
    }

    /// What an approver reads about `c` beside the notice: the author's name, its live
    /// conflicts, the freeze windows over its planned window, and the decisions of
    /// `round` so far. Read once per event, and kept with each notice it goes with.
    /// `freezes` are the windows over the planned window when the caller has read them
    /// already (a submit's freeze gate); the conflicts read are returned too, so the
    /// answer to the same request need not read them again.
    pub(crate) async fn change_details(
        &self,
        c: &ChangeRequest,
        round: &[ApprovalStep],
        members: &[Member],
        freezes: Option<Vec<FreezeWindow>>,
        calendars: Option<&crate::services::conflicts::Calendars>,
    ) -> AppResult<(ChangeDetails, Vec<Conflict>)> {
        let author_name = match members.iter().find(|m| m.user_id == c.author) {
            Some(m) => m.name.clone(),
            None => crate::services::records::load::<Member>(&*self.table, &keys::member(&c.workspace_id, &c.author))
                .await?
                .and_then(|m| m.name),
        };
        let conflicts = self.conflicts_with(c, calendars).await?;
        let freezes = match (freezes, c.planned_start, c.planned_end) {
            (Some(known), _, _) => known,
            (None, Some(start), Some(end)) => self.blocking_windows(&c.workspace_id, c, start, end).await?,
            _ => vec![],
        };
        let details = ChangeDetails::of(c, author_name, &conflicts, &freezes, round);
        Ok((details, conflicts))
    }

    /// Sends what waits in a workspace's outbox. Each notice is claimed first (so two
    /// senders never both send it), then its email and chat message go out; a failure
    /// waits 1, 2, 4, ... minutes (at most 6 h) before the next try.
    pub async fn deliver_pending(&self, ws: &str) -> AppResult<DeliveryReport> {
        let mut report = DeliveryReport::default();
        let Some(d) = self.delivery.clone() else { return Ok(report) };
        let now = self.now();
        let page = self.table.query(&Query::table(keys::outbox(ws)).limit(100)).await?;
        for item in page.items {
            // A digest carries its agenda, an alert its refusal, where a notice carries
            // a change.
            if item.data["notice"].get("agenda").is_some() {
                self.deliver_one::<vigilo_domain::agenda::AgendaMail>(item, &d, now, &mut report).await?;
            } else if item.data["notice"].get("checkpoint_refused").is_some() {
                self.deliver_one::<vigilo_domain::audit_alert::AuditAlert>(item, &d, now, &mut report).await?;
            } else {
                self.deliver_one::<Notice>(item, &d, now, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Sends one outbox entry, claimed first so that two senders never both send it.
    async fn deliver_one<M: Outbound>(
        &self,
        item: Item,
        d: &Delivery,
        now: Timestamp,
        report: &mut DeliveryReport,
    ) -> AppResult<()> {
        let key = item.key.clone();
        let mut p: Pending<M> = decode_ref(&item)?;
        if p.next_at > now || p.claimed_until.is_some_and(|u| u > now) {
            report.waiting += 1;
            return Ok(());
        }
        let claimed_from = p.version;
        p.claimed_until = Some(now + SignedDuration::from_secs(120));
        p.version += 1;
        let claim = WriteOp::Put {
            item: Item::new(key.clone(), to_data(&p)),
            condition: Some(Condition::version(claimed_from)),
        };
        if self.table.transact(vec![claim]).await.is_err() {
            report.waiting += 1;
            return Ok(());
        }
        let mut error = None;
        if !p.email_sent {
            match p.notice.email(&d.from) {
                Ok(mail) => match d.mailer.send(&mail).await {
                    Ok(_) => p.email_sent = true,
                    Err(e) => error = Some(format!("email: {e}")),
                },
                // Never dropped: it stays in the outbox with its error (`last_error`),
                // is retried with the same back-off as a failed send, and is logged
                // as an error to alarm on.
                Err(e) => {
                    tracing::error!(notice = %p.notice.id(), recipient = %p.notice.recipient(), error = %e, "a notice email cannot be built");
                    error = Some(format!("email: {e}"));
                }
            }
        }
        if !p.chat_sent {
            match p.notice.chat() {
                None => p.chat_sent = true,
                Some(message) => match d.chat.publish(p.notice.id(), &message).await {
                    Ok(_) => p.chat_sent = true,
                    Err(e) => error = Some(format!("chat: {e}")),
                },
            }
        }
        let held = p.version;
        let op = if p.email_sent && p.chat_sent {
            report.sent += 1;
            WriteOp::Delete { key, condition: Some(Condition::version(held)) }
        } else {
            report.failed += 1;
            tracing::warn!(notice = %p.notice.id(), error = ?error, "notice delivery failed; will retry");
            p.attempts += 1;
            p.next_at = now + backoff(p.attempts);
            p.claimed_until = None;
            p.last_error = error;
            p.version += 1;
            WriteOp::Put { item: Item::new(key, to_data(&p)), condition: Some(Condition::version(held)) }
        };
        self.table.transact(vec![op]).await?;
        Ok(())
    }

    /// Delivers every workspace's outbox (the sweep's retry pass).
    pub async fn deliver_all(&self) -> AppResult<DeliveryReport> {
        self.each_workspace("notices", |ws| async move { self.deliver_pending(&ws).await }).await
    }
}

/// The pending notices of a workspace, for tests and tools.
pub async fn outbox(app: &Vigilo, ws: &str) -> AppResult<Vec<Value>> {
    let page = app.table.query(&Query::table(keys::outbox(ws)).limit(500)).await?;
    Ok(page.items.into_iter().map(|i| i.data).collect())
}
