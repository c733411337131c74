//! Builders shared by the unit tests of this crate.

use crate::change::{ChangeRequest, ChangeType, Priority, RiskLevel, Status};
use crate::ids::{ChangeNumber, UserId};

pub fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub fn draft() -> ChangeRequest {
    let t = "2026-11-01T00:00:00Z".parse().unwrap();
    ChangeRequest {
        id: "c1".into(),
        workspace_id: "w1".into(),
        number: ChangeNumber::new(1).unwrap(),
        title: "Rotate cert".into(),
        description: String::new(),
        change_type: ChangeType::Normal,
        priority: Priority::Medium,
        risk_level: RiskLevel::Low,
        planned_start: None,
        planned_end: None,
        affected_assets: vec![],
        implementation_plan: String::new(),
        rollback_plan: String::new(),
        test_plan: String::new(),
        min_lead_time_hours: 24,
        dependencies: vec![],
        assignee: None,
        custom_fields: Default::default(),
        status: Status::Draft,
        author: user("alice"),
        submitted_at: None,
        approval_round: 0,
        closure_code: None,
        closure_notes: None,
        failure_reason: None,
        rollback_reason: None,
        rolled_back_at: None,
        rolled_back_by: None,
        cancel_reason: None,
        started_at: None,
        ended_at: None,
        conflicts: vec![],
        version: 1,
        created_at: t,
        updated_at: t,
    }
}
