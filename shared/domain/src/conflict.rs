//! Conflicts: two live changes that touch a shared asset in overlapping planned windows.
//! They are derived, never stored on the changes: a conflict is gone the moment either
//! change moves its window, drops the asset, or ends. What is stored is an acceptance,
//! which holds only for the two windows it was given for.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::change::{ChangeRequest, Status};
use crate::ids::{ChangeNumber, UserId};

/// A planned window, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn of(c: &ChangeRequest) -> Option<Window> {
        Some(Window { start: c.planned_start?, end: c.planned_end? })
    }

    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Whether a change still holds its assets for its window: from draft until it ends.
/// A completed change is done with them; reopening it makes it live again.
pub fn is_live(status: Status) -> bool {
    !status.is_terminal() && status != Status::Completed
}

/// Who accepted a conflict, for which two windows, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Acceptance {
    pub workspace_id: String,
    pub number: ChangeNumber,
    pub other: ChangeNumber,
    pub window: Window,
    pub other_window: Window,
    pub shared_assets: Vec<String>,
    pub accepted_by: UserId,
    pub comment: String,
    pub accepted_at: Timestamp,
}

impl Acceptance {
    /// Still valid when neither change has moved its window since.
    pub fn holds_for(&self, window: &Window, other_window: &Window) -> bool {
        (&self.window, &self.other_window) == (window, other_window)
            || (&self.window, &self.other_window) == (other_window, window)
    }
}

/// One conflict as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conflict {
    pub number: ChangeNumber,
    pub title: String,
    pub status: Status,
    pub shared_assets: Vec<String>,
    pub window: Window,
    pub accepted: bool,
    pub accepted_by: Option<UserId>,
    pub accepted_at: Option<Timestamp>,
    pub comment: Option<String>,
}

impl Conflict {
    pub fn summary(&self) -> Value {
        json!({ "number": self.number, "shared_assets": self.shared_assets, "window": self.window })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: &str, b: &str) -> Window {
        Window {
            start: format!("2026-12-01T{a}:00:00Z").parse().unwrap(),
            end: format!("2026-12-01T{b}:00:00Z").parse().unwrap(),
        }
    }

    #[test]
    fn touching_windows_do_not_overlap() {
        assert!(w("09", "11").overlaps(&w("10", "12")));
        assert!(w("09", "12").overlaps(&w("10", "11")));
        assert!(!w("09", "10").overlaps(&w("10", "11")));
        assert!(!w("11", "12").overlaps(&w("09", "10")));
    }

    #[test]
    fn an_acceptance_lapses_when_a_window_moves() {
        let a = Acceptance {
            workspace_id: "w".into(),
            number: ChangeNumber::new(1).unwrap(),
            other: ChangeNumber::new(2).unwrap(),
            window: w("09", "11"),
            other_window: w("10", "12"),
            shared_assets: vec!["db".into()],
            accepted_by: UserId::parse("bob").unwrap(),
            comment: "ok".into(),
            accepted_at: "2026-11-01T00:00:00Z".parse().unwrap(),
        };
        assert!(a.holds_for(&w("09", "11"), &w("10", "12")));
        assert!(a.holds_for(&w("10", "12"), &w("09", "11")));
        assert!(!a.holds_for(&w("09", "11"), &w("10", "13")));
        assert!(is_live(Status::Scheduled) && !is_live(Status::Completed) && !is_live(Status::Cancelled));
    }
}
