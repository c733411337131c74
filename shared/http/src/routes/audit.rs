//! `/ws/{slug}/audit`: list with filters, read one row, verify the chain.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use vigilo_app::services::audit::{AuditFilter, AuditPage};
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
