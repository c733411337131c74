//! Cursor pagination over key-condition queries. A cursor is the opaque position of
//! the last item returned, bound to the partition it came from so it cannot be
//! replayed against another list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::store::{Item, Position, Query, Table};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

/// A page of results in the contract's shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Checks `?limit=` (1..=200, default 50).
pub fn limit(raw: Option<i64>) -> AppResult<usize> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(AppError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}"))),
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// Fingerprint of the query's partition and direction.
    q: String,
    p: Position,
}

fn fingerprint(q: &Query) -> String {
    let text = format!("{}|{}|{}", q.index.as_deref().unwrap_or("-"), q.pk, q.forward);
    format!("{:x}", Sha256::digest(text.as_bytes()))[..16].to_owned()
}

pub fn encode_cursor(q: &Query, p: &Position) -> String {
    let body = CursorBody { q: fingerprint(q), p: p.clone() };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

/// Decodes a cursor for this query; a foreign or mangled cursor is a 400.
pub fn decode_cursor(q: &Query, cursor: &str) -> AppResult<Position> {
    let bad = || AppError::BadRequest("cursor is not valid for this list".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if body.q != fingerprint(q) {
        return Err(bad());
    }
    Ok(body.p)
}

/// Where an item sits in `q`'s order, to resume after it.
pub fn position_of(q: &Query, item: &Item) -> Position {
    let index_sk = match &q.index {
        None => item.key.sk.clone(),
        Some(name) => item.indexes.get(name).map(|k| k.sk.clone()).unwrap_or_default(),
    };
    Position { key: item.key.clone(), index_sk }
}

/// Every item of a query's partition, decoded, read page by page. For partitions that
/// are small by construction (members, groups, one change's steps).
pub async fn query_all<T: serde::de::DeserializeOwned>(table: &dyn Table, q: Query) -> AppResult<Vec<T>> {
    items_all(table, q).await?.into_iter().map(crate::services::records::decode).collect()
}

/// Every item of a query's partition as stored, keys and all, read page by page: for a
/// range holding items of several kinds.
pub async fn items_all(table: &dyn Table, mut q: Query) -> AppResult<Vec<crate::store::Item>> {
    let mut out = Vec::new();
    loop {
        let page = table.query(&q).await?;
        out.extend(page.items);
        match page.last {
            Some(p) => q.after = Some(p),
            None => return Ok(out),
        }
    }
}

/// Runs `q` page by page, keeping what `keep` makes of each item, until `limit` are
/// kept or the partition ends. Each call reads only the queried partition; the next
/// cursor resumes after the last item kept. `keep` may read further (an index entry
/// followed to its record); a purely local decision returns `std::future::ready`.
pub async fn collect<T, F>(
    table: &dyn Table,
    mut q: Query,
    limit: usize,
    cursor: Option<&str>,
    mut keep: impl FnMut(&Item) -> F,
) -> AppResult<(Vec<T>, Option<String>)>
where
    F: std::future::Future<Output = AppResult<Option<T>>>,
{
    let proto = q.clone();
    q.after = cursor.map(|c| decode_cursor(&proto, c)).transpose()?;
    let mut kept = Vec::new();
    loop {
        q.limit = (limit - kept.len()).max(25);
        let page = table.query(&q).await?;
        let n = page.items.len();
        for (i, item) in page.items.iter().enumerate() {
            if let Some(t) = keep(item).await? {
                kept.push(t);
                if kept.len() == limit {
                    let more = i + 1 < n || page.last.is_some();
                    let next = more.then(|| encode_cursor(&proto, &position_of(&proto, item)));
                    return Ok((kept, next));
                }
            }
        }
        match page.last {
            Some(p) => q.after = Some(p),
            None => return Ok((kept, None)),
        }
    }
}
