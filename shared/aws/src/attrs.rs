//! The stored shape of an item on DynamoDB, and JSON to attribute values and back.
//!
//! | attribute | holds |
//! |---|---|
//! | `pk`, `sk` | the item's key |
//! | `d` | the item's data, as a map (so conditions can name `d.version`) |
//! | `ix` | the names of the indexes the item is in (a string set; absent when none) |
//! | `gsi{n}pk`, `gsi{n}sk` | its key in physical index slot `n` (see `keys::INDEX_SLOTS`) |
//! | `ttl` | unix seconds after which DynamoDB may delete it |

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};
use vigilo_app::keys;
use vigilo_app::store::{Item, Key, StoreError};

pub type Attrs = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const DATA: &str = "d";
pub const INDEXES: &str = "ix";
pub const TTL: &str = "ttl";

/// The partition and sort key attributes of physical index slot `slot`.
pub fn slot_attrs(slot: u8) -> (String, String) {
    (format!("gsi{slot}pk"), format!("gsi{slot}sk"))
}

/// The name of the global secondary index for slot `slot`.
pub fn slot_index(slot: u8) -> String {
    format!("gsi{slot}")
}

/// The slot of a logical index, or a clear error for a name no slot serves.
pub fn slot_of(index: &str) -> Result<u8, StoreError> {
    keys::index_slot(index).ok_or_else(|| StoreError::Backend(format!("index {index} has no DynamoDB slot")))
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([(PK.to_owned(), s(&key.pk)), (SK.to_owned(), s(&key.sk))])
}

pub fn to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(t) => AttributeValue::S(t.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect()),
        Value::Object(o) => AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()),
    }
}

pub fn from_attr(a: &AttributeValue) -> Result<Value, StoreError> {
    Ok(match a {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(number(n)?),
        AttributeValue::S(t) => Value::String(t.clone()),
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attr).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), from_attr(v)?);
            }
            Value::Object(out)
        }
        other => return Err(StoreError::Backend(format!("unexpected attribute type {other:?}"))),
    })
}

/// DynamoDB keeps numbers as decimal strings; integers come back as integers.
fn number(n: &str) -> Result<Number, StoreError> {
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| StoreError::Backend(format!("unreadable number {n}")))
}

/// The attributes of an item as stored.
pub fn encode(item: &Item) -> Result<Attrs, StoreError> {
    let mut attrs = key_attrs(&item.key);
    attrs.insert(DATA.to_owned(), to_attr(&item.data));
    if !item.indexes.is_empty() {
        let mut used = Vec::new();
        for (name, k) in &item.indexes {
            let slot = slot_of(name)?;
            if used.contains(&slot) {
                return Err(StoreError::Backend(format!("item {:?} uses index slot {slot} twice", item.key)));
            }
            used.push(slot);
            let (pk, sk) = slot_attrs(slot);
            attrs.insert(pk, s(&k.pk));
            attrs.insert(sk, s(&k.sk));
        }
        attrs.insert(INDEXES.to_owned(), AttributeValue::Ss(item.indexes.keys().cloned().collect()));
    }
    if let Some(t) = item.expires {
        attrs.insert(TTL.to_owned(), AttributeValue::N(t.to_string()));
    }
    Ok(attrs)
}

/// An item's size as DynamoDB counts it for capacity: attribute names plus values
/// (strings by UTF-8 length, numbers by about one byte per two digits, three bytes
/// of overhead per list or map).
pub fn item_size(attrs: &Attrs) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>(),
            _ => 0,
        }
    }
    attrs.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// Write capacity DynamoDB charges for one operation of a transaction: two units per
/// started KB of the item, plus one per KB for each index slot the item is written to.
pub fn transactional_write_units(attrs: &Attrs) -> f64 {
    let kb = item_size(attrs).div_ceil(1024).max(1) as f64;
    let indexed = attrs.get(INDEXES).map_or(0, |ix| match ix {
        AttributeValue::Ss(names) => names.len(),
        _ => 0,
    });
    2.0 * kb + indexed as f64 * kb
}

fn string<'a>(attrs: &'a Attrs, name: &str) -> Result<&'a str, StoreError> {
    match attrs.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Backend(format!("stored item lacks string attribute {name}"))),
    }
}

/// An item from its stored attributes.
pub fn decode(attrs: &Attrs) -> Result<Item, StoreError> {
    let key = Key::new(string(attrs, PK)?, string(attrs, SK)?);
    let data = attrs.get(DATA).map(from_attr).transpose()?.unwrap_or(Value::Null);
    let mut indexes = BTreeMap::new();
    if let Some(AttributeValue::Ss(names)) = attrs.get(INDEXES) {
        for name in names {
            let (pk, sk) = slot_attrs(slot_of(name)?);
            indexes.insert(name.clone(), Key::new(string(attrs, &pk)?, string(attrs, &sk)?));
        }
    }
    Ok(Item { key, indexes, data, expires: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_the_round_trip() {
        let v = json!({"a": [1, -2, 1.5, "x", null, true, {"b": ""}], "big": u64::MAX, "e": {}, "l": []});
        assert_eq!(from_attr(&to_attr(&v)).unwrap(), v);
    }

    #[test]
    fn items_round_trip_with_their_indexes_and_without_expiry() {
        let item = Item::new(Key::new("P", "a"), json!({"version": 3}))
            .index(keys::BY_STATUS, Key::new("S#open", "1"))
            .index(keys::BY_TYPE, Key::new("T#x", "1"))
            .expires(1_700_000_000);
        let attrs = encode(&item).unwrap();
        assert_eq!(attrs["gsi1pk"], s("S#open"));
        assert_eq!(attrs["gsi2pk"], s("T#x"));
        assert_eq!(attrs[TTL], AttributeValue::N("1700000000".into()));
        let back = decode(&attrs).unwrap();
        assert_eq!(back, Item { expires: None, ..item });
    }

    #[test]
    fn sizes_and_write_units_follow_the_capacity_rules() {
        let small = encode(&Item::new(Key::new("P", "a"), json!({"v": 1}))).unwrap();
        assert_eq!(item_size(&small), "pk".len() + 1 + "sk".len() + 1 + "d".len() + 3 + 1 + 1 + 2);
        assert_eq!(transactional_write_units(&small), 2.0);
        let big =
            Item::new(Key::new("P", "a"), json!({"t": "x".repeat(1500)})).index(keys::BY_STATUS, Key::new("S", "1"));
        assert_eq!(transactional_write_units(&encode(&big).unwrap()), 2.0 * 2.0 + 2.0);
    }

    #[test]
    fn unknown_or_clashing_indexes_are_refused() {
        let unknown = Item::new(Key::new("P", "a"), json!({})).index("by_nothing", Key::new("x", "y"));
        assert!(encode(&unknown).is_err());
        let clash = Item::new(Key::new("P", "a"), json!({}))
            .index(keys::BY_STATUS, Key::new("x", "y"))
            .index(keys::BY_USER, Key::new("x", "y"));
        assert!(encode(&clash).is_err());
    }

    #[test]
    fn damaged_items_are_errors_not_panics() {
        assert!(decode(&HashMap::new()).is_err());
        let mut attrs = key_attrs(&Key::new("P", "a"));
        attrs.insert(DATA.into(), AttributeValue::N("not a number".into()));
        assert!(decode(&attrs).is_err());
        attrs.insert(DATA.into(), AttributeValue::Ss(vec!["x".into()]));
        assert!(decode(&attrs).is_err());
    }
}
