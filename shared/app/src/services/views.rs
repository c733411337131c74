//! Response shapes that are more than a stored record, and the audit diff helper.

use serde::Serialize;
use serde_json::{Map, Value};
use vigilo_domain::role::Role;
use vigilo_domain::workspace::Workspace;

/// A workspace as its member sees it: with the caller's role.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    #[serde(flatten)]
    pub workspace: Workspace,
    pub role: Role,
}

/// The top-level fields that differ between two snapshots, as (old, new) objects.
/// Audit rows of updates carry just these, so a reviewer sees what changed.
pub fn diff<T: Serialize>(old: &T, new: &T) -> (Value, Value) {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return (Value::Null, Value::Null);
    };
    let mut before = Map::new();
    let mut after = Map::new();
    for (k, v) in &b {
        if a.get(k) != Some(v) && k != "updated_at" {
            before.insert(k.clone(), a.get(k).cloned().unwrap_or(Value::Null));
            after.insert(k.clone(), v.clone());
        }
    }
    (Value::Object(before), Value::Object(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_keeps_only_changed_fields() {
        let (o, n) = diff(&json!({"a": 1, "b": 2, "updated_at": "x"}), &json!({"a": 1, "b": 3, "updated_at": "y"}));
        assert_eq!((o, n), (json!({"b": 2}), json!({"b": 3})));
    }
}
