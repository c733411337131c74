//! The services, one module per area of the contract.

pub mod access;
pub mod approvals;
pub mod attempts;
pub mod audit;
pub mod changes;
pub mod checkpoints;
pub mod comments;
pub mod conflicts;
pub mod escalations;
pub mod follow_up;
pub mod freeze;
pub mod idempotency;
pub mod insight;
pub mod links;
pub mod members;
pub mod notices;
pub mod numbers;
pub mod policies;
pub mod records;
pub mod replies;
pub mod sweeps;
pub mod tasks;
pub mod transitions;
pub mod views;
pub mod webhooks;
pub mod workspaces;
