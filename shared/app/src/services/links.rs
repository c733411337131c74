//! Deciding through a decision link: from the confirmation page, an email reply or a
//! chat button. Opening a link changes nothing; using it decides as the approver it was
//! issued to, on its one step, once. Every refused use is audited with its reason
//! (when the token names a grant we issued; a token naming none belongs to no
//! workspace and is only logged).

use serde_json::json;
use vigilo_domain::approval::{ApprovalStep, StepStatus};
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::link::{self, Grant, Refusal};
use vigilo_domain::workspace::{Member, Workspace};
use vigilo_domain::DomainError;

use crate::actor::{Actor, RequestInfo};
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::services::records::{decode, load};
use crate::services::transitions::ActionInput;
use crate::txn::AuditEntry;
use crate::Vigilo;

/// A usable link and what it decides.
#[derive(Debug, Clone)]
pub struct OpenLink {
    pub grant: Grant,
    pub workspace: Workspace,
    pub change: ChangeRequest,
    pub step: ApprovalStep,
    pub approver: Member,
    /// Every step of the change's current round (the link's among them).
    pub round: Vec<ApprovalStep>,
}

/// What using a link did.
#[derive(Debug, Clone)]
pub enum LinkOutcome {
    Decided { change: Box<ChangeRequest>, decision: String },
    Refused(Refusal),
}

/// How a decision arrived, for checks and for the audit row.
#[derive(Debug, Clone, Default)]
pub struct Via {
    /// `link`, `email` or `slack`.
    pub channel: String,
    pub request: RequestInfo,
    /// The address an email reply came from; it must be the approver's.
    pub sender: Option<String>,
    /// The Slack user who pressed a button; it must be the one the approver linked.
    pub slack_user: Option<String>,
    /// The user a request's valid bearer token names, when it carries one: a link is
    /// the approver's alone, so anyone else signed in is refused.
    pub signed_in: Option<vigilo_domain::ids::UserId>,
    /// The email's sender passed the mail checks, aligned with its `From` domain.
    pub sender_verified: bool,
}

impl Via {
    /// Where attempts come from, for the refusal brake: the Slack user (Slack signed
    /// the press), the sender's address once the mail checks vouch for it (anyone can
    /// write `From: bob`, and must not brake Bob's own replies by doing so; unverified
    /// mail shares one count), else the caller's IP address.
    pub fn source(&self) -> String {
        match (&self.slack_user, &self.sender, &self.request.ip) {
            (Some(u), _, _) => format!("slack:{u}"),
            (None, Some(s), _) if self.sender_verified => format!("mail:{}", s.trim().to_ascii_lowercase()),
            (None, Some(_), _) => "mail:unverified".to_owned(),
            (None, None, Some(ip)) => format!("ip:{ip}"),
            (None, None, None) => format!("{}:unknown", self.channel),
        }
    }
}

impl Vigilo {
    fn link_secret(&self) -> AppResult<&[u8]> {
        self.delivery
            .as_ref()
            .map(|d| d.link_secret.as_slice())
            .ok_or_else(|| AppError::BadRequest("decision links are not configured".into()))
    }

    /// The grant a token names, if it names one we issued.
    pub(crate) async fn grant_of(&self, token: &str) -> AppResult<Option<(Grant, Vec<u8>)>> {
        let Some((id, tag)) = link::parse(token) else { return Ok(None) };
        Ok(load::<Grant>(&*self.table, &keys::link_grant(&id)).await?.map(|g| (g, tag)))
    }

    /// Checks a token without using it: the page a link opens shows this.
    pub async fn open_link(&self, token: &str) -> AppResult<Result<OpenLink, Refusal>> {
        let secret = self.link_secret()?.to_vec();
        let Some((grant, tag)) = self.grant_of(token).await? else { return Ok(Err(Refusal::Forged)) };
        if let Err(r) = link::check(&secret, &grant, &tag, self.now()) {
            return Ok(Err(r));
        }
        let w = &grant.workspace_id;
        let read = self
            .table
            .snapshot(&[keys::workspace(w), keys::member(w, &grant.approver), keys::change(w, grant.change_number)])
            .await?;
        let mut read = read.into_iter();
        let (Some(Some(ws)), Some(Some(member)), Some(Some(change))) = (read.next(), read.next(), read.next()) else {
            return Ok(Err(Refusal::StepClosed));
        };
        let (workspace, approver, change): (Workspace, Member, ChangeRequest) =
            (decode(ws)?, decode(member)?, decode(change)?);
        let round = self.round_steps(&change).await?;
        let step = round.iter().find(|s| s.id == grant.step_id).cloned();
        match step {
            Some(step) if step.status == StepStatus::Pending => {
                Ok(Ok(OpenLink { grant, workspace, change, step, approver, round }))
            }
            _ => Ok(Err(Refusal::StepClosed)),
        }
    }

    /// What the decision page shows of an opened link's change beyond the change itself.
    pub async fn link_details(&self, open: &OpenLink) -> AppResult<vigilo_domain::notice::ChangeDetails> {
        Ok(self.change_details(&open.change, &open.round, &[], None, None).await?.0)
    }

    /// Uses a token: `decision` is `approve` or `reject` (which needs a comment).
    pub async fn decide_by_link(
        &self,
        token: &str,
        decision: &str,
        comment: Option<String>,
        via: &Via,
    ) -> AppResult<LinkOutcome> {
        if let Some(braked) = self.braked(via) {
            return Ok(braked);
        }
        let open = match self.open_link(token).await? {
            Ok(open) => open,
            Err(reason) => {
                let grant = self.grant_of(token).await?.map(|(g, _)| g);
                return self.refuse(grant.as_ref(), reason, via, token).await;
            }
        };
        if via.signed_in.as_ref().is_some_and(|u| u != &open.approver.user_id) {
            return self.refuse(Some(&open.grant), Refusal::WrongSender, via, token).await;
        }
        if !matches!(decision, "approve" | "reject") {
            return self.refuse(Some(&open.grant), Refusal::NoDecision, via, token).await;
        }
        if decision == "reject" && comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
            return self.refuse(Some(&open.grant), Refusal::CommentRequired, via, token).await;
        }
        if let Some(user) = &via.slack_user {
            if open.approver.slack_user_id.as_deref() != Some(user.as_str()) {
                return self.refuse(Some(&open.grant), Refusal::WrongSender, via, token).await;
            }
        }
        if let Some(sender) = &via.sender {
            if !sender.trim().eq_ignore_ascii_case(open.approver.email.trim()) {
                return self.refuse(Some(&open.grant), Refusal::WrongSender, via, token).await;
            }
        }
        let actor = Actor {
            user_id: open.approver.user_id.clone(),
            email: Some(open.approver.email.clone()),
            name: open.approver.name.clone(),
            request: RequestInfo { channel: Some(via.channel.clone()), ..via.request.clone() },
        };
        let input = ActionInput { comment, link: Some(open.grant.clone()), ..ActionInput::default() };
        match self.act(&actor, &open.workspace.slug, open.change.number, decision, input, None).await {
            Ok(change) => Ok(LinkOutcome::Decided { change: Box::new(change), decision: decision.to_owned() }),
            // The comment is the one value a use sends that the move checks.
            Err(AppError::Domain(DomainError::Validation(_) | DomainError::ReasonRequired)) => {
                self.refuse(Some(&open.grant), Refusal::CommentInvalid, via, token).await
            }
            Err(AppError::Domain(
                DomainError::NotAnApprover
                | DomainError::AlreadyDecided
                | DomainError::SelfApprovalForbidden
                | DomainError::InvalidTransition { .. },
            ))
            | Err(AppError::NotFound) => {
                // A rival use of the same token wins the race as "used".
                let now = self.grant_of(token).await?.map(|(g, _)| g);
                let reason =
                    if now.as_ref().is_some_and(|g| g.used_at.is_some()) { Refusal::Used } else { Refusal::StepClosed };
                self.refuse(now.as_ref(), reason, via, token).await
            }
            Err(e) => Err(e),
        }
    }

    /// `rate_limited` when the source of `via` has used up its refusals (see
    /// [`crate::services::attempts`]); such attempts are logged, not audited.
    pub fn braked(&self, via: &Via) -> Option<LinkOutcome> {
        let source = via.source();
        if !self.brake.exhausted(&source, self.now()) {
            return None;
        }
        tracing::warn!(%source, channel = %via.channel, request_id = ?via.request.request_id, "decision attempts braked");
        Some(LinkOutcome::Refused(Refusal::RateLimited))
    }

    /// Counts a refusal the caller handled itself (a page opened with a bad token).
    pub fn count_refusal(&self, via: &Via) {
        self.brake.record(&via.source(), self.now());
    }

    /// Audits a refused use in the grant's workspace (a token naming no grant of ours
    /// is only logged: it belongs to no workspace).
    pub(crate) async fn refuse(
        &self,
        grant: Option<&Grant>,
        reason: Refusal,
        via: &Via,
        token: &str,
    ) -> AppResult<LinkOutcome> {
        self.brake.record(&via.source(), self.now());
        let Some(g) = grant else {
            tracing::warn!(
                reason = reason.as_str(),
                channel = %via.channel,
                ip = ?via.request.ip,
                request_id = ?via.request.request_id,
                token_prefix = %token.chars().take(8).collect::<String>(),
                "a decision token naming no grant of ours"
            );
            return Ok(LinkOutcome::Refused(reason));
        };
        let change: Option<ChangeRequest> = load(&*self.table, &keys::change(&g.workspace_id, g.change_number)).await?;
        let mut meta = json!({
            "actor_kind": "decision_link",
            "reason": reason.as_str(),
            "channel": via.channel,
            "approver": g.approver,
            "link_id": g.id,
            "token_prefix": token.chars().take(8).collect::<String>(),
        });
        for (k, v) in [
            ("sender", &via.sender),
            ("slack_user", &via.slack_user),
            ("ip", &via.request.ip),
            ("user_agent", &via.request.user_agent),
            ("request_id", &via.request.request_id),
        ] {
            if let Some(v) = v {
                meta[k] = json!(v);
            }
        }
        crate::retrying!({
            let mut tx = self.tx(&g.workspace_id, None);
            let mut entry = AuditEntry::new("decision_link.refuse", "ApprovalStep", &g.step_id).meta(meta.clone());
            if let Some(c) = &change {
                entry = entry.subject(&c.id);
            }
            tx.audit(entry);
            tx.commit(self.now()).await?;
            Ok(())
        })?;
        Ok(LinkOutcome::Refused(reason))
    }
}
