//! Vigilo's pure rules. Nothing here does I/O, awaits, or knows about AWS or HTTP:
//! every rule can be tested with plain values, and every host (Lambda, `vigilo serve`,
//! the offline CLI) applies exactly the same rules.

pub mod agenda;
pub mod approval;
pub mod audit;
pub mod audit_alert;
pub mod canonical;
pub mod change;
pub mod checkpoint;
pub mod conflict;
pub mod dora;
pub mod eligibility;
pub mod error;
pub mod freeze;
pub mod fsm;
pub mod ical;
pub mod ids;
pub mod link;
pub mod locale;
pub mod merkle;
pub mod notice;
pub mod policy;
pub mod recurrence;
pub mod risk;
pub mod role;
pub mod sla;
pub mod stored_row;
pub mod task;
pub mod text;
pub mod time;
pub mod transition;
pub mod webhook;
pub mod workspace;

pub use error::{DomainError, FieldErrors};

#[cfg(test)]
pub(crate) mod test_support;
