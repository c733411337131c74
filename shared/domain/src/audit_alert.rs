//! The mail that tells a workspace's owners their audit log could not be checkpointed:
//! the tree no longer extends the last signed one (rows cut off, rewritten, or a
//! checkpoint forged), so nothing was signed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::locale::Locale;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditAlert {
    pub id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub locale: Locale,
    pub recipient: UserId,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    /// What broke: the break's stable reason code, its seq and its detail.
    pub checkpoint_refused: RefusedCheckpoint,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedCheckpoint {
    pub reason: String,
    pub seq: u64,
    pub detail: String,
}
