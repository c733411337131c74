//! `GET /health` and `GET /openapi.json`: no token needed.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// `{"status": "ok"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// Says the process is up.
#[utoipa::path(get, path = "/health", operation_id = "Health", security(()),
    responses((status = 200, body = Health)))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// This API's OpenAPI 3.1 document, built from the route table.
#[utoipa::path(get, path = "/openapi.json", operation_id = "OpenApi", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_document() -> Response {
    let mut r = Json(crate::api::openapi()).into_response();
    // Public and the same for everyone: caches may keep it for a while.
    r.headers_mut()
        .insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("public, max-age=300"));
    r
}
