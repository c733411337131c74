//! Vigilo's HTTP surface. Every route is declared once, in the route table of [`api`]:
//! one `axum::Router` per route group (a Lambda function each), [`router`] their union
//! (what `vigilo serve` runs), and the OpenAPI document. One code path, two hosts.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod outbound;
pub mod paths;
mod routes;

use std::sync::Arc;

use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use vigilo_app::Vigilo;

pub use api::{
    approvals_router, audit_router, changes_router, governance_router, planning_router, router, transitions_router,
    workspaces_router, Group,
};
pub use auth::{AuthMode, GatewayClaims};
pub use error::ApiError;

/// What every handler can reach: the application and how callers are authenticated.
#[derive(Clone)]
pub struct AppState {
    pub app: Vigilo,
    pub auth: Arc<AuthMode>,
    /// Verifies Slack's requests; without it, Slack actions are refused.
    pub slack_secret: Option<Arc<Vec<u8>>>,
}

impl AppState {
    pub fn new(app: Vigilo, auth: AuthMode) -> AppState {
        AppState { app, auth: Arc::new(auth), slack_secret: None }
    }

    /// Accepts Slack actions signed with this signing secret.
    pub fn with_slack_secret(mut self, secret: Option<Vec<u8>>) -> AppState {
        self.slack_secret = secret.filter(|s| !s.is_empty()).map(Arc::new);
        self
    }
}

/// Headers every response carries, unless the handler chose its own (the decision
/// page sets a policy that lets its form post): no content sniffing, no framing, no
/// referrer, no caching of what may be private, HTTPS only once seen over HTTPS, and a
/// content policy that loads nothing (the API serves no scripts, styles or frames).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{self, HeaderValue};
    let h = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
        (header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// A request's span: method and path, never the query, which may carry a calendar feed
/// token (a secret a log reader must not be able to replay).
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), version = ?req.version())
}

/// The layers every group shares: JSON 404/405, request ids, tracing, the security
/// headers, and a last-resort panic guard that still answers in the error shape.
pub(crate) fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::map_response(security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
