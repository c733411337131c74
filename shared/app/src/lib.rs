//! Vigilo's services. Each service method loads what it needs through the storage
//! port, applies the domain's rules, and commits one audited transaction. The ports
//! (table, clock) are traits here; adapters live in `vigilo-local` and `vigilo-aws`.

pub mod actor;
pub mod blobs;
pub mod clock;
pub mod error;
pub mod keys;
pub mod notify;
pub mod paging;
pub mod seal;
pub mod services;
pub mod settings;
pub mod signer;
pub mod store;
pub mod txn;

#[cfg(feature = "contract-tests")]
pub mod contract;

use std::sync::Arc;

pub use actor::{Actor, RequestInfo};
pub use blobs::Blobs;
pub use clock::{Clock, SystemClock};
pub use error::{AppError, AppResult};
pub use services::idempotency::{Created, IdempotencyKey};
pub use settings::{Secret, Settings};
pub use store::Table;

/// The application: ports wired once at start-up and shared by every request.
#[derive(Clone)]
pub struct Vigilo {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// Email, chat and decision links; without it, no notices are written.
    pub delivery: Option<notify::Delivery>,
    /// Sends webhook deliveries; without it, subscriptions wait.
    pub webhooks: Option<Arc<dyn notify::WebhookSender>>,
    slugs: Arc<services::access::SlugCache>,
    /// Refused decision attempts per source, to brake floods and guessing.
    pub(crate) brake: Arc<services::attempts::RefusalBrake>,
    /// Seals the audit queue right after each write, in this process; `None` where a
    /// sequencer of its own does it (the stream function on AWS).
    pub(crate) sealer: Option<Arc<seal::Sealer>>,
    /// Sends a request's notices and feeds webhooks before it answers; `false` where
    /// the stream function does it (on AWS).
    pub(crate) delivers_inline: bool,
    /// Signs audit checkpoints; without it, none are written.
    pub signer: Option<Arc<dyn signer::Signer>>,
    /// Write-once storage for checkpoints and archived rows.
    pub archive: Option<Arc<dyn Blobs>>,
}

impl Vigilo {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Vigilo {
        Vigilo {
            table,
            clock,
            delivery: None,
            webhooks: None,
            slugs: Arc::default(),
            brake: Arc::default(),
            sealer: Some(Arc::default()),
            delivers_inline: true,
            signer: None,
            archive: None,
        }
    }

    /// Keeps the audit log provable: checkpoints signed with `signer`, written with
    /// archived rows to `archive`.
    pub fn with_audit_keeping(mut self, signer: Arc<dyn signer::Signer>, archive: Arc<dyn Blobs>) -> Vigilo {
        self.signer = Some(signer);
        self.archive = Some(archive);
        self
    }

    /// Leaves sealing to a sequencer elsewhere: writes queue their audit entries and
    /// answer without waiting for their `seq`.
    pub fn sealing_elsewhere(mut self) -> Vigilo {
        self.sealer = None;
        self
    }

    /// Leaves a request's notices and webhook deliveries to the stream function: the
    /// request writes them to the outbox and answers.
    pub fn delivering_elsewhere(mut self) -> Vigilo {
        self.delivers_inline = false;
        self
    }

    /// Seals whatever waits in a workspace's audit queue (the sequencer's pass).
    pub async fn seal(&self, workspace_id: &str) -> AppResult<seal::Sealed> {
        match &self.sealer {
            Some(s) => s.seal(&*self.table, workspace_id).await,
            None => seal::seal(&*self.table, workspace_id).await,
        }
    }

    /// A transaction of a workspace with no member's permission to hold (the system's,
    /// or a new workspace's).
    pub(crate) fn tx<'a>(&'a self, workspace_id: &str, actor: Option<&'a Actor>) -> txn::Tx<'a> {
        txn::Tx::new(&*self.table, workspace_id, actor).sealed_by(self.sealer.as_deref())
    }

    /// A transaction on behalf of the member `access` describes, committed only while
    /// their membership is as read.
    pub(crate) fn tx_as<'a>(&'a self, access: &services::access::Access, actor: &'a Actor) -> txn::Tx<'a> {
        txn::Tx::as_member(&*self.table, access, actor).sealed_by(self.sealer.as_deref())
    }

    /// Turns notices on: approvers are emailed and messaged, with decision links.
    pub fn with_delivery(mut self, delivery: notify::Delivery) -> Vigilo {
        self.delivery = Some(delivery);
        self
    }

    pub(crate) fn now(&self) -> jiff::Timestamp {
        vigilo_domain::time::to_millis(self.clock.now())
    }
}
