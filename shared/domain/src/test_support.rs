//! Builders shared by the unit tests of this crate.

use crate::change::{ChangeRequest, ChangeType};
use crate::ids::{ChangeNumber, UserId};

pub fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub fn draft() -> ChangeRequest {
    let t = "2026-11-01T00:00:00Z".parse().unwrap();
    let n = ChangeNumber::new(1).unwrap();
    let mut c = ChangeRequest::draft("c1".into(), "w1".into(), n, ChangeType::Normal, user("alice"), t);
    c.title = "Rotate cert".into();
    c
}
