//! Extractors that turn every malformed input into a 400 in the error shape: JSON
//! bodies, path and query parameters, `If-Match`, and `Idempotency-Key`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON body of type `T`, with the raw value kept for idempotency fingerprints.
/// Malformed JSON and wrong types are 400s; an empty body reads as `{}`, so actions
/// whose body is optional accept none.
pub struct JsonBody<T>(pub T, pub Value);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("unreadable body: {e}"))
            }
        })?;
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?
        };
        if !value.is_object() {
            return Err(ApiError::BadRequest("the body must be a JSON object".into()));
        }
        let typed = T::deserialize(&value).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
        Ok(JsonBody(typed, value))
    }
}

/// Path parameters, parsed into their types (see `crate::paths`). A segment that is
/// no slug or change number names nothing: a 404, as for one that names nothing
/// that exists, so a malformed path tells a prober no more than a wrong one.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| PathParams(p.0)).map_err(|e| {
            tracing::debug!(error = %e.body_text(), "a path that names nothing");
            ApiError::RouteNotFound
        })
    }
}

/// Query parameters; unknown ones are ignored, malformed ones are a 400.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        parse_query(q).map(QueryParams)
    }
}

fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}").parse().map_err(|_| ApiError::BadRequest("malformed query".into()))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `If-Match: <version>` (quotes and a weak prefix are tolerated).
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let s = v.to_str().unwrap_or("").trim();
        let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
        s.parse()
            .map(|n| IfMatch(Some(n)))
            .map_err(|_| ApiError::BadRequest("If-Match must be a resource version, e.g. 3".into()))
    }
}

/// The raw `Idempotency-Key` header, checked by the service.
pub struct IdempotencyHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get("idempotency-key") {
            None => Ok(IdempotencyHeader(None)),
            Some(v) => v
                .to_str()
                .map(|s| IdempotencyHeader(Some(s.to_owned())))
                .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into())),
        }
    }
}

/// `?limit=&cursor=`, checked.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, inline, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// The `Idempotency-Key` header, for the OpenAPI document of creating routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyParams {
    /// A retry with the same key and body within 24 h returns the first response.
    #[param(rename = "Idempotency-Key", max_length = 200)]
    pub key: Option<String>,
}

/// The `If-Match` header, for the OpenAPI document of versioned writes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IfMatchParams {
    /// The version last read (its `ETag`); a different current version is a 412.
    #[param(rename = "If-Match", example = "\"3\"")]
    pub version: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<usize, ApiError> {
        let raw = match self.limit.as_deref() {
            None | Some("") => None,
            Some(s) => Some(s.parse::<i64>().map_err(|_| ApiError::BadRequest("limit must be an integer".into()))?),
        };
        vigilo_app::paging::limit(raw).map_err(ApiError::from)
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }
}
