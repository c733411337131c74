//! `/ws/{slug}/audit`: list with filters, read one row, verify the chain; the signing
//! key, signed checkpoints, and inclusion and consistency proofs over the tree.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use vigilo_app::services::audit::{AuditFilter, AuditPage};
use vigilo_app::services::checkpoints::{KeyAnswer, StoredCheckpoint};
use vigilo_app::services::proofs::{ConsistencyAnswer, InclusionAnswer};
use vigilo_domain::audit::{AuditRow, VerifyReport};

use super::ok;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{PageParams, PathParams, QueryParams};
use crate::paths::{IdPath, WsPath};
use crate::AppState;

type Result<T = Response> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
pub struct ListParams {
    #[serde(flatten)]
    filter: AuditFilter,
    #[serde(flatten)]
    page: PageParams,
}

/// Audit rows, newest first, filtered (viewer+; old and new values for member+), and
/// the entries still being sealed.
#[utoipa::path(get, path = "/ws/{slug}/audit", operation_id = "ListAudit",
    params(WsPath, AuditFilter, PageParams), responses((status = 200, body = AuditPage)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<ListParams>,
) -> Result {
    Ok(ok(s.app.list_audit(&actor, &slug, &p.filter, p.page.limit()?, p.page.cursor()).await?))
}

/// One audit row.
#[utoipa::path(get, path = "/ws/{slug}/audit/{id}", operation_id = "GetAuditRow",
    params(IdPath), responses((status = 200, body = AuditRow)))]
pub async fn show(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
) -> Result {
    Ok(ok(s.app.get_audit_row(&actor, &slug, &id).await?))
}

/// Walks the workspace's whole chain and reports the first break (admin+).
#[utoipa::path(post, path = "/ws/{slug}/audit/verify", operation_id = "VerifyAudit",
    params(WsPath), responses((status = 200, body = VerifyReport)))]
pub async fn verify(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    Ok(ok(s.app.verify_audit(&actor, &slug).await?))
}

/// The public key that signs the workspace's checkpoints (viewer+).
#[utoipa::path(get, path = "/ws/{slug}/audit/key", operation_id = "GetAuditKey",
    params(WsPath), responses((status = 200, body = KeyAnswer)))]
pub async fn key(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    Ok(ok(s.app.audit_key(&actor, &slug).await?))
}

/// The workspace's signed checkpoints, newest first (viewer+).
#[utoipa::path(get, path = "/ws/{slug}/audit/checkpoints", operation_id = "ListCheckpoints",
    params(WsPath, PageParams), responses((status = 200, body = CheckpointPage)))]
pub async fn checkpoints(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<PageParams>,
) -> Result {
    Ok(ok(s.app.list_checkpoints(&actor, &slug, p.limit()?, p.cursor()).await?))
}

/// A page of checkpoints.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CheckpointPage {
    items: Vec<StoredCheckpoint>,
    next_cursor: Option<String>,
}

/// The newest signed checkpoint (viewer+); 404 before the first.
#[utoipa::path(get, path = "/ws/{slug}/audit/checkpoints/latest", operation_id = "GetLatestCheckpoint",
    params(WsPath), responses((status = 200, body = StoredCheckpoint)))]
pub async fn latest_checkpoint(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
) -> Result {
    Ok(ok(s.app.get_latest_checkpoint(&actor, &slug).await?))
}

/// A tree size from the query: a decimal integer, if given.
fn size(name: &str, raw: Option<&str>) -> Result<Option<u64>> {
    match raw {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name} must be a non-negative integer"))),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProofParams {
    /// The tree the proof is for: at least the row's seq, at most the tree's size
    /// (default: the latest checkpoint's size).
    #[param(value_type = Option<i64>, minimum = 1)]
    tree_size: Option<String>,
}

/// The row's RFC 9162 inclusion proof (viewer+).
#[utoipa::path(get, path = "/ws/{slug}/audit/{id}/proof", operation_id = "GetAuditProof",
    params(IdPath, ProofParams), responses((status = 200, body = InclusionAnswer)))]
pub async fn proof(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(IdPath { slug, id }): PathParams<IdPath>,
    QueryParams(p): QueryParams<ProofParams>,
) -> Result {
    let tree_size = size("tree_size", p.tree_size.as_deref())?;
    Ok(ok(s.app.audit_proof(&actor, &slug, &id, tree_size).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The earlier tree's size, at least 1.
    #[param(value_type = i64, minimum = 1)]
    from: Option<String>,
    /// The later tree's size, at most the tree's size.
    #[param(value_type = i64, minimum = 1)]
    to: Option<String>,
}

/// The RFC 9162 consistency proof between two tree sizes (viewer+).
#[utoipa::path(get, path = "/ws/{slug}/audit/consistency", operation_id = "GetAuditConsistency",
    params(WsPath, ConsistencyParams), responses((status = 200, body = ConsistencyAnswer)))]
pub async fn consistency(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(WsPath { slug }): PathParams<WsPath>,
    QueryParams(p): QueryParams<ConsistencyParams>,
) -> Result {
    let required = |name: &str, raw: Option<&str>| {
        size(name, raw)?.ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))
    };
    let (from, to) = (required("from", p.from.as_deref())?, required("to", p.to.as_deref())?);
    Ok(ok(s.app.audit_consistency(&actor, &slug, from, to).await?))
}
