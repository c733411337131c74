//! How each record is stored: its item, with the index keys that make its lists and
//! filters answerable by key-condition queries.

use serde::de::DeserializeOwned;
use serde::Serialize;
use vigilo_domain::approval::{ApprovalStep, StepStatus};
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::workspace::{Group, Member, Workspace};

use crate::error::{AppError, AppResult};
use crate::keys;
use crate::store::{Item, Key, Table};

pub fn to_data<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

pub fn decode<T: DeserializeOwned>(item: Item) -> AppResult<T> {
    serde_json::from_value(item.data).map_err(|e| AppError::Corrupt(format!("{}/{}: {e}", item.key.pk, item.key.sk)))
}

/// Decodes an item in place, for filters that look at many and keep few.
pub fn decode_ref<T: DeserializeOwned>(item: &Item) -> AppResult<T> {
    T::deserialize(&item.data).map_err(|e| AppError::Corrupt(format!("{}/{}: {e}", item.key.pk, item.key.sk)))
}

pub async fn load<T: DeserializeOwned>(table: &dyn Table, key: &Key) -> AppResult<Option<T>> {
    table.get(key).await?.map(decode).transpose()
}

pub fn workspace_item(w: &Workspace) -> Item {
    Item::new(keys::workspace(&w.id), to_data(w))
}

pub fn member_item(m: &Member) -> Item {
    let mut item = Item::new(keys::member(&m.workspace_id, &m.user_id), to_data(m))
        .index(keys::BY_USER, keys::member_by_user(&m.workspace_id, &m.user_id));
    if let Some(d) = &m.delegation {
        item = item.index(keys::BY_DELEGATE, keys::member_by_delegate(&m.workspace_id, &d.delegate, &m.user_id));
    }
    item
}

pub fn group_item(g: &Group) -> Item {
    Item::new(keys::group(&g.workspace_id, &g.name), to_data(g))
}

/// A change's item. Its `conflicts` are derived on reading and never stored.
pub fn change_item(c: &ChangeRequest) -> Item {
    let w = &c.workspace_id;
    let mut data = to_data(c);
    data["conflicts"] = serde_json::Value::Null;
    let mut item = Item::new(keys::change(w, c.number), data)
        .index(keys::BY_STATUS, keys::change_by_status(w, c.status, c.number))
        .index(keys::BY_TYPE, keys::change_by_type(w, c.change_type, c.number))
        .index(keys::BY_PRIORITY, keys::change_by_priority(w, c.priority, c.number))
        .index(keys::BY_RISK, keys::change_by_risk(w, c.risk_level, c.number));
    if let Some(a) = &c.assignee {
        item = item.index(keys::BY_ASSIGNEE, keys::change_by_assignee(w, a, c.number));
    }
    item
}

pub fn step_item(s: &ApprovalStep) -> Item {
    let key = keys::step(&s.workspace_id, s.change_number, s.round, s.stage, s.index);
    let mut item = Item::new(key, to_data(s));
    if s.status == StepStatus::Pending {
        let created = vigilo_domain::time::format(s.created_at);
        item = item.index(keys::PENDING, keys::pending_step(&s.workspace_id, &created, s.change_number, &s.id));
    }
    item
}
