//! Who is calling, as verified by the host (local HS256 or API Gateway's authorizer),
//! and the request facts that go into audit metadata.

use serde_json::{json, Map, Value};
use vigilo_domain::ids::UserId;

#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub user_id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
    pub request: RequestInfo,
}

/// Request facts recorded with every audit row the request writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestInfo {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// How the request arrived when not through the API: `link`, `email`, `slack`.
    pub channel: Option<String>,
}

impl Actor {
    /// Audit metadata common to every row this actor writes, plus `extra`.
    pub fn metadata(&self, extra: Value) -> Value {
        let mut m = Map::new();
        m.insert("actor_kind".into(), json!("user"));
        if let Some(e) = &self.email {
            m.insert("actor_email".into(), json!(e));
        }
        for (k, v) in [
            ("request_id", &self.request.request_id),
            ("ip", &self.request.ip),
            ("user_agent", &self.request.user_agent),
            ("channel", &self.request.channel),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if let Value::Object(extra) = extra {
            m.extend(extra);
        }
        Value::Object(m)
    }
}
