//! Items too large for one DynamoDB item (400 KB), or nested deeper than it allows
//! (32 levels), kept out of line, so that no request within the documented limits can
//! fail for size: a change whose four texts hold 20,000 emoji each, the audit row of
//! editing it (old and new values), the idempotency record that replays it.
//!
//! Such an item's data is stored as its exact JSON text, split into parts of at most
//! [`PART_BYTES`], each an item of its own (`pk` = `PART#{len(pk)}#{pk}{sk}`, `sk` =
//! the part's index), written in the same transaction as the item. The item itself
//! keeps its key, its index keys and, in `d`, its small top-level values (so
//! conditions on `version`, `seq` or `hash` work as for any item), plus the number of
//! parts (`lg`) and the SHA-256 of the whole text (`lgh`). A reader reassembles the
//! text and checks the digest: parts written by a later transaction than the item it
//! read do not match, and the read starts again. The text round-trips exactly, so the
//! row reads back and hashes as it was written.
//!
//! Parts are overwritten in place by the item's next large version; a version that fits
//! inline, or a delete, leaves its old parts behind unread (at most a few per item, and
//! they expire with the item where it has a time to live).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use vigilo_app::store::{Item, Key, StoreError};

use crate::attrs::{self, Attrs, PK, SK, TTL};

/// JSON text up to this size stays inline: its attribute encoding stays under the
/// 400 KB item limit even for documents of many tiny containers (at most about a third
/// larger than the text), with room for the keys and index attributes.
pub const INLINE_JSON_MAX: usize = 280_000;
/// Nesting that stays inline: DynamoDB refuses documents deeper than 32 levels.
pub const INLINE_DEPTH_MAX: usize = 24;
/// Bytes of JSON text per part item.
pub const PART_BYTES: usize = 300_000;
/// Top-level strings up to this size stay beside the parts, for conditions.
const KEPT_STRING_MAX: usize = 1024;

pub const PARTS: &str = "lg";
pub const DIGEST: &str = "lgh";
const PART_DATA: &str = "b";

/// The nesting depth of a value: a scalar is 1, `[1]` is 2.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 1,
    }
}

/// The JSON text of `data` when it must be kept out of line, else `None`.
pub fn out_of_line(data: &Value) -> Result<Option<Vec<u8>>, StoreError> {
    let json = serde_json::to_vec(data).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok((json.len() > INLINE_JSON_MAX || depth(data) > INLINE_DEPTH_MAX).then_some(json))
}

/// How many more items than one a put of `data` writes.
pub fn extra_items(data: &Value) -> usize {
    match out_of_line(data) {
        Ok(Some(json)) => json.len().div_ceil(PART_BYTES),
        _ => 0,
    }
}

/// The key of part `i` of the item at `key`. The partition names the item's whole key,
/// length-prefixed so that no two items' parts can share one.
pub fn part_key(key: &Key, i: usize) -> Key {
    Key::new(format!("PART#{}#{}{}", key.pk.len(), key.pk, key.sk), format!("{i:04}"))
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The top-level values a large item keeps in `d`: scalars and short strings.
fn kept(data: &Value) -> Value {
    let Value::Object(m) = data else { return Value::Object(Map::new()) };
    let small = m.iter().filter(|(_, v)| match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
        Value::String(s) => s.len() <= KEPT_STRING_MAX,
        _ => false,
    });
    Value::Object(small.map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The stored attributes of `item`: the item itself, and its parts when its data is
/// kept out of line.
pub fn encode(item: &Item) -> Result<(Attrs, Vec<Attrs>), StoreError> {
    let Some(json) = out_of_line(&item.data)? else { return Ok((attrs::encode(item)?, vec![])) };
    let digest = hex_digest(&json);
    let head = Item { data: kept(&item.data), ..item.clone() };
    let mut main = attrs::encode(&head)?;
    let chunks: Vec<&[u8]> = json.chunks(PART_BYTES).collect();
    main.insert(PARTS.to_owned(), AttributeValue::N(chunks.len().to_string()));
    main.insert(DIGEST.to_owned(), attrs::s(&digest));
    let parts = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut a = attrs::key_attrs(&part_key(&item.key, i));
            a.insert(PART_DATA.to_owned(), AttributeValue::B(Blob::new(chunk.to_vec())));
            a.insert(DIGEST.to_owned(), attrs::s(&digest));
            if let Some(t) = item.expires {
                a.insert(TTL.to_owned(), AttributeValue::N(t.to_string()));
            }
            a
        })
        .collect();
    Ok((main, parts))
}

/// The parts an item read from the table points to: their keys and the digest of the
/// whole text. `None` for an item stored inline.
pub fn pointer(attrs: &Attrs) -> Result<Option<(Vec<Key>, String)>, StoreError> {
    let Some(AttributeValue::N(n)) = attrs.get(PARTS) else { return Ok(None) };
    let n: usize = n.parse().map_err(|_| StoreError::Backend(format!("unreadable part count {n}")))?;
    let digest = match attrs.get(DIGEST) {
        Some(AttributeValue::S(d)) => d.clone(),
        _ => return Err(StoreError::Backend("a large item without its digest".into())),
    };
    let key = match (attrs.get(PK), attrs.get(SK)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Key::new(pk, sk),
        _ => return Err(StoreError::Backend("a large item without its key".into())),
    };
    if n == 0 || n > 1000 {
        return Err(StoreError::Backend(format!("a large item with {n} parts")));
    }
    Ok(Some(((0..n).map(|i| part_key(&key, i)).collect(), digest)))
}

/// The data of a large item from its parts, in order; `None` when they are not the
/// parts of this version (a later write replaced them: read again).
pub fn assemble(parts: &[Option<Attrs>], digest: &str) -> Result<Option<Value>, StoreError> {
    let mut json = Vec::new();
    for part in parts {
        let Some(p) = part else { return Ok(None) };
        if p.get(DIGEST) != Some(&attrs::s(digest)) {
            return Ok(None);
        }
        match p.get(PART_DATA) {
            Some(AttributeValue::B(b)) => json.extend_from_slice(b.as_ref()),
            _ => return Err(StoreError::Backend("a part without its data".into())),
        }
    }
    if hex_digest(&json) != digest {
        return Ok(None);
    }
    serde_json::from_slice(&json).map(Some).map_err(|e| StoreError::Backend(format!("unreadable large item: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn big_text(chars: usize) -> String {
        "😀".repeat(chars)
    }

    #[test]
    fn small_items_stay_inline_and_large_ones_split_into_parts() {
        let small = Item::new(Key::new("P", "a"), json!({"version": 1, "t": "x".repeat(1000)}));
        let (_, parts) = encode(&small).unwrap();
        assert!(parts.is_empty());
        let data = json!({"version": 3, "status": "draft", "description": big_text(20_000),
                          "plans": [big_text(20_000), big_text(20_000), big_text(20_000)]});
        let item = Item::new(Key::new("WS#w#CHANGES", "000000000001"), data.clone()).expires(1_900_000_000);
        let (main, parts) = encode(&item).unwrap();
        assert_eq!(parts.len(), 2, "320 KB of text in parts of 300 KB");
        assert_eq!(extra_items(&data), 2);
        for p in &parts {
            assert!(attrs::item_size(p) < 400_000);
            assert_eq!(p[TTL], AttributeValue::N("1900000000".into()), "parts expire with their item");
        }
        assert!(attrs::item_size(&main) < 2_000);
        let kept = attrs::from_attr(&main[attrs::DATA]).unwrap();
        assert_eq!(kept, json!({"version": 3, "status": "draft"}), "conditions can still name version");
        let (keys, digest) = pointer(&main).unwrap().unwrap();
        assert_eq!(keys, vec![part_key(&item.key, 0), part_key(&item.key, 1)]);
        let read: Vec<Option<Attrs>> = parts.iter().cloned().map(Some).collect();
        assert_eq!(assemble(&read, &digest).unwrap(), Some(data), "the text round-trips exactly");
    }

    #[test]
    fn parts_of_another_version_are_not_assembled() {
        let v1 = Item::new(Key::new("P", "a"), json!({"version": 1, "t": big_text(80_000)}));
        let v2 = Item::new(Key::new("P", "a"), json!({"version": 2, "t": big_text(80_000)}));
        let (main1, _) = encode(&v1).unwrap();
        let (_, parts2) = encode(&v2).unwrap();
        let (_, digest1) = pointer(&main1).unwrap().unwrap();
        let read: Vec<Option<Attrs>> = parts2.into_iter().map(Some).collect();
        assert_eq!(assemble(&read, &digest1).unwrap(), None);
        assert_eq!(assemble(&[None], &digest1).unwrap(), None, "a missing part");
    }

    #[test]
    fn deep_documents_go_out_of_line_too() {
        let mut v = json!(1);
        for _ in 0..30 {
            v = json!([v]);
        }
        let item = Item::new(Key::new("P", "a"), json!({"version": 1, "deep": v}));
        let (_, parts) = encode(&item).unwrap();
        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn part_keys_never_collide_across_items() {
        assert_ne!(part_key(&Key::new("a#b", "c"), 0), part_key(&Key::new("a", "b#c"), 0));
        assert_ne!(part_key(&Key::new("a", "b"), 1), part_key(&Key::new("a", "b"), 0));
    }
}
