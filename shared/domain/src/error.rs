//! The refusals the rules can give. Each variant maps to exactly one HTTP status and
//! error code in `vigilo-http`, so a guard never degrades into a generic failure.

use std::collections::BTreeMap;

use serde::Serialize;

/// Per-field reasons for a `validation_failed` refusal, keyed by field name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| reason.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else the `validation_failed` refusal.
    pub fn into_result(self) -> Result<(), DomainError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self))
        }
    }

    pub fn single(field: &str, reason: &str) -> DomainError {
        let mut f = FieldErrors::default();
        f.add(field, reason);
        DomainError::Validation(f)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("the request has invalid fields")]
    Validation(FieldErrors),
    #[error("planned_start is {actual_hours:.1} h away; this change needs at least {required_hours} h of lead time")]
    LeadTimeViolation { required_hours: u32, actual_hours: f64 },
    #[error("cannot {action} a change in status {status}")]
    InvalidTransition { status: String, action: String, allowed: Vec<String> },
    #[error("closure_code and closure_notes are required to complete a change")]
    ClosureRequired,
    #[error("a rollback needs a reason")]
    RollbackReasonRequired,
    #[error("this action needs a reason")]
    ReasonRequired,
    #[error("you hold no pending approval step on this change")]
    NotAnApprover,
    #[error("the author of a change cannot decide on its approval")]
    SelfApprovalForbidden,
    #[error("you have already decided on this change's pending step")]
    AlreadyDecided,
    #[error(
        "no eligible approvers: the workspace needs {needed} approver(s) other than the author, it has {available}"
    )]
    NoEligibleApprovers { needed: usize, available: usize },
    #[error("only a draft can be edited; this change is {status}")]
    NotEditable { status: String },
    #[error("some dependencies are not completed or cancelled")]
    DependenciesUnmet { blockers: Vec<(String, String)> },
    #[error("your role does not allow this")]
    Forbidden,
    #[error("a freeze window holds this change; an override needs override_freeze and a reason")]
    FreezeWindowBlocked { windows: Vec<serde_json::Value> },
    #[error("this change conflicts with other changes on the same assets; accept each conflict or move the window")]
    ConflictDetected { conflicts: Vec<serde_json::Value> },
    #[error("runbook tasks of the {gate} gate are not finished")]
    TasksPending { gate: String, tasks: Vec<serde_json::Value> },
    #[error("a predecessor of this task is not finished")]
    PredecessorsUnmet { tasks: Vec<serde_json::Value> },
    #[error("a required task cannot be skipped")]
    TaskRequired,
    #[error("cannot {action} a task in status {status}")]
    InvalidTaskTransition { status: String, action: String, allowed: Vec<String> },
    #[error("the change is {status}; its runbook is closed")]
    ChangeClosed { status: String },
    #[error("tasks were already generated from this change's implementation plan")]
    TasksAlreadyGenerated,
}
