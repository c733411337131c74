//! The services, one module per area of the contract.

pub mod access;
pub mod approvals;
pub mod audit;
pub mod changes;
pub mod checkpoints;
pub mod idempotency;
pub mod members;
pub mod records;
pub mod transitions;
pub mod views;
pub mod workspaces;
