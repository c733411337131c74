//! End-to-end tests over the HTTP surface, on local storage. One binary, one module
//! per area of the contract.

mod approvals;
mod archive;
mod audit;
mod auth;
mod cab;
mod calendar;
mod changes;
mod chat;
mod escalations;
mod freeze_sweep;
mod gates;
mod hardening;
mod http_edges;
mod lifecycle;
mod metrics;
mod notices;
mod policies;
mod proofs;
mod replies;
mod reviews;
mod subscriptions;
mod time;
mod webhooks;
mod workspaces;
