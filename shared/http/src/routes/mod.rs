//! Route groups and the response helpers they share.

pub mod audit;
pub mod changes;
pub mod chat;
pub mod governance;
pub mod health;
pub mod links;
pub mod planning;
pub mod workspaces;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use vigilo_app::Created;

/// 200 with a JSON body.
pub fn ok<T: Serialize>(body: T) -> Response {
    Json(body).into_response()
}

/// 200 with a list that fits in one page, in the contract's list shape.
pub fn all<T: Serialize>(items: Vec<T>) -> Response {
    ok(vigilo_app::paging::Paged { items, next_cursor: None })
}

/// 200 with a versioned resource and its version as the ETag (for `If-Match`).
pub fn versioned<T: Serialize>(body: T, version: u64) -> Response {
    let mut r = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(axum::http::header::ETAG, v);
    }
    r
}

/// 201 with what was created, or with the first response again for a replayed key.
pub fn created<T: Serialize>(c: Created<T>) -> Response {
    match c {
        Created::New(body) => (StatusCode::CREATED, Json(body)).into_response(),
        Created::Replay(body) => {
            let mut r = (StatusCode::CREATED, Json(body)).into_response();
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
    }
}
