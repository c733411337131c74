//! `/ws/{slug}/audit`: list with filters, read one row, verify the chain.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use vigilo_app::services::audit::AuditFilter;

use super::ok;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{PageParams, PathParams, QueryParams};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/{slug}/audit", get(list))
        .route("/ws/{slug}/audit/verify", post(verify))
        .route("/ws/{slug}/audit/{id}", get(show))
}

type Result<T = Response> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
struct ListParams {
    #[serde(flatten)]
    filter: AuditFilter,
    #[serde(flatten)]
    page: PageParams,
}

async fn list(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams(slug): PathParams<String>,
    QueryParams(p): QueryParams<ListParams>,
) -> Result {
    Ok(ok(s.app.list_audit(&actor, &slug, &p.filter, p.page.limit()?, p.page.cursor()).await?))
}

async fn show(
    State(s): State<AppState>,
    Caller(actor): Caller,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Result {
    Ok(ok(s.app.get_audit_row(&actor, &slug, &id).await?))
}

async fn verify(State(s): State<AppState>, Caller(actor): Caller, PathParams(slug): PathParams<String>) -> Result {
    Ok(ok(s.app.verify_audit(&actor, &slug).await?))
}
