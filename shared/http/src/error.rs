//! The one place where errors become HTTP statuses and error codes. A failed
//! condition is a 409 or 412, a bad input a 4xx; only a real fault is a 500.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use vigilo_app::store::StoreError;
use vigilo_app::AppError;
use vigilo_domain::link::Refusal;
use vigilo_domain::DomainError;

/// Every error answer: `{"error": {"code", "message", "details"}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// A stable code, e.g. `invalid_transition`.
    #[schema(example = "not_found")]
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// What the code needs to be acted on (`fields` for `validation_failed`, ...).
    #[schema(value_type = Object)]
    pub details: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than allowed")]
    PayloadTooLarge,
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A decision link, reply or button that may not decide.
    #[error("{}", vigilo_render::explain(*.0, vigilo_domain::locale::Locale::En))]
    LinkRefused(Refusal),
}

/// The status a refused use of a decision link is answered with.
pub fn refusal_status(r: Refusal) -> StatusCode {
    match r {
        Refusal::Forged | Refusal::WrongSender | Refusal::Unauthenticated => StatusCode::FORBIDDEN,
        Refusal::Expired | Refusal::Used => StatusCode::GONE,
        Refusal::StepClosed => StatusCode::CONFLICT,
        Refusal::NoDecision | Refusal::CommentRequired | Refusal::CommentInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        ApiError::App(AppError::Domain(e))
    }
}

/// Status, stable code and details for a domain refusal.
fn domain(e: &DomainError) -> (StatusCode, &'static str, Value) {
    use DomainError::*;
    match e {
        Validation(fields) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", json!({ "fields": fields })),
        LeadTimeViolation { required_hours, actual_hours } => (
            StatusCode::CONFLICT,
            "lead_time_violation",
            json!({ "required_hours": required_hours, "actual_hours": (actual_hours * 100.0).round() / 100.0 }),
        ),
        InvalidTransition { status, action, allowed } => (
            StatusCode::CONFLICT,
            "invalid_transition",
            json!({ "status": status, "action": action, "allowed": allowed }),
        ),
        ClosureRequired => (StatusCode::UNPROCESSABLE_ENTITY, "closure_required", json!({})),
        RollbackReasonRequired => (StatusCode::UNPROCESSABLE_ENTITY, "rollback_reason_required", json!({})),
        ReasonRequired => (StatusCode::UNPROCESSABLE_ENTITY, "reason_required", json!({})),
        NotAnApprover => (StatusCode::FORBIDDEN, "not_an_approver", json!({})),
        SelfApprovalForbidden => (StatusCode::FORBIDDEN, "self_approval_forbidden", json!({})),
        AlreadyDecided => (StatusCode::CONFLICT, "already_decided", json!({})),
        NoEligibleApprovers { needed, available } => {
            (StatusCode::CONFLICT, "no_eligible_approvers", json!({ "needed": needed, "available": available }))
        }
        NotEditable { status } => (StatusCode::CONFLICT, "not_editable", json!({ "status": status })),
        DependenciesUnmet { blockers } => {
            let b: Vec<Value> = blockers.iter().map(|(n, s)| json!({ "number": n, "status": s })).collect();
            (StatusCode::CONFLICT, "dependencies_unmet", json!({ "blockers": b }))
        }
        Forbidden => (StatusCode::FORBIDDEN, "forbidden", json!({})),
        FreezeWindowBlocked { windows } => {
            (StatusCode::CONFLICT, "freeze_window_blocked", json!({ "windows": windows }))
        }
        ConflictDetected { conflicts } => {
            (StatusCode::CONFLICT, "conflict_detected", json!({ "conflicts": conflicts }))
        }
        TasksPending { gate, tasks } => {
            (StatusCode::CONFLICT, "tasks_pending", json!({ "gate": gate, "tasks": tasks }))
        }
        PredecessorsUnmet { tasks } => (StatusCode::CONFLICT, "predecessors_unmet", json!({ "predecessors": tasks })),
        TaskRequired => (StatusCode::CONFLICT, "task_required", json!({})),
        InvalidTaskTransition { status, action, allowed } => (
            StatusCode::CONFLICT,
            "invalid_transition",
            json!({ "status": status, "action": action, "allowed": allowed }),
        ),
        ChangeClosed { status } => (StatusCode::CONFLICT, "change_closed", json!({ "status": status })),
        TasksAlreadyGenerated => (StatusCode::CONFLICT, "tasks_already_generated", json!({})),
    }
}

impl ApiError {
    /// The status, code and details of this error.
    pub fn parts(&self) -> (StatusCode, &'static str, Value) {
        match self {
            ApiError::App(e) => match e {
                AppError::Domain(d) => domain(d),
                AppError::NotFound => (StatusCode::NOT_FOUND, "not_found", json!({})),
                AppError::SlugTaken(_) => (StatusCode::CONFLICT, "slug_taken", json!({})),
                AppError::VersionConflict { expected, current } => (
                    StatusCode::PRECONDITION_FAILED,
                    "version_conflict",
                    json!({ "expected": expected, "current": current }),
                ),
                AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", json!({})),
                AppError::IdempotencyKeyReused => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", json!({}))
                }
                AppError::LastOwner => (StatusCode::CONFLICT, "last_owner", json!({})),
                // Losing every retry of a race is load, not a guard: the caller may send
                // the same request again.
                AppError::Contended | AppError::Busy | AppError::Store(StoreError::Throttled) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "unavailable", json!({}))
                }
                AppError::Store(_) | AppError::Corrupt(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", json!({})),
            },
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated", json!({})),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", json!({})),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", json!({})),
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "not_found", json!({})),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", json!({})),
            ApiError::LinkRefused(Refusal::RateLimited) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", json!({})),
            ApiError::LinkRefused(r) => (refusal_status(*r), "link_refused", json!({ "reason": r.as_str() })),
        }
    }
}

fn body(code: &str, message: String, details: Value) -> Value {
    json!({ "error": { "code": code, "message": message, "details": details } })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, details) = self.parts();
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, "request shed");
            self.to_string()
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "an internal error occurred; it has been logged".to_owned()
        } else {
            self.to_string()
        };
        // Load passes in a moment; a braked source may come back once its refusals
        // have aged out.
        let retry_after = match (&self, status) {
            (ApiError::LinkRefused(Refusal::RateLimited), _) => {
                Some(vigilo_app::services::attempts::WINDOW_SECS as u64)
            }
            (_, StatusCode::SERVICE_UNAVAILABLE) => Some(1),
            _ => None,
        };
        let mut response = (status, Json(body(code, message, details))).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A panic is a bug: it ends only its own request, which is answered in the error
/// shape, and is logged as an error with its message (release builds unwind, so the
/// process, or the Lambda instance, keeps serving).
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    tracing::error!(panic = %message, "a handler panicked");
    let b = body("internal", "an internal error occurred; it has been logged".into(), json!({}));
    (StatusCode::INTERNAL_SERVER_ERROR, Json(b)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigilo_app::store::StoreError;
    use vigilo_domain::FieldErrors;

    #[test]
    fn every_error_has_its_status_and_code() {
        let d = |e: DomainError| ApiError::from(e);
        let a = |e: AppError| ApiError::App(e);
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (d(DomainError::Validation(FieldErrors::default())), 422, "validation_failed"),
            (d(DomainError::LeadTimeViolation { required_hours: 24, actual_hours: 1.0 }), 409, "lead_time_violation"),
            (
                d(DomainError::InvalidTransition { status: "draft".into(), action: "start".into(), allowed: vec![] }),
                409,
                "invalid_transition",
            ),
            (d(DomainError::ClosureRequired), 422, "closure_required"),
            (d(DomainError::RollbackReasonRequired), 422, "rollback_reason_required"),
            (d(DomainError::ReasonRequired), 422, "reason_required"),
            (d(DomainError::NotAnApprover), 403, "not_an_approver"),
            (d(DomainError::SelfApprovalForbidden), 403, "self_approval_forbidden"),
            (d(DomainError::AlreadyDecided), 409, "already_decided"),
            (d(DomainError::NoEligibleApprovers { needed: 1, available: 0 }), 409, "no_eligible_approvers"),
            (d(DomainError::NotEditable { status: "review".into() }), 409, "not_editable"),
            (d(DomainError::DependenciesUnmet { blockers: vec![] }), 409, "dependencies_unmet"),
            (d(DomainError::Forbidden), 403, "forbidden"),
            (d(DomainError::FreezeWindowBlocked { windows: vec![] }), 409, "freeze_window_blocked"),
            (d(DomainError::ConflictDetected { conflicts: vec![] }), 409, "conflict_detected"),
            (d(DomainError::TasksPending { gate: "start".into(), tasks: vec![] }), 409, "tasks_pending"),
            (d(DomainError::PredecessorsUnmet { tasks: vec![] }), 409, "predecessors_unmet"),
            (d(DomainError::TaskRequired), 409, "task_required"),
            (
                d(DomainError::InvalidTaskTransition {
                    status: "done".into(),
                    action: "start".into(),
                    allowed: vec![],
                }),
                409,
                "invalid_transition",
            ),
            (d(DomainError::ChangeClosed { status: "cancelled".into() }), 409, "change_closed"),
            (d(DomainError::TasksAlreadyGenerated), 409, "tasks_already_generated"),
            (a(AppError::NotFound), 404, "not_found"),
            (a(AppError::SlugTaken("x".into())), 409, "slug_taken"),
            (a(AppError::VersionConflict { expected: 1, current: 2 }), 412, "version_conflict"),
            (a(AppError::BadRequest("x".into())), 400, "bad_request"),
            (a(AppError::IdempotencyKeyReused), 422, "idempotency_key_reused"),
            (a(AppError::LastOwner), 409, "last_owner"),
            (a(AppError::Contended), 503, "unavailable"),
            (a(AppError::from(StoreError::Throttled)), 503, "unavailable"),
            (a(AppError::Store(StoreError::Throttled)), 503, "unavailable"),
            (a(AppError::from(StoreError::ConditionFailed { index: 0 })), 503, "unavailable"),
            (a(AppError::Store(StoreError::Backend("disk".into()))), 500, "internal"),
            (a(AppError::Corrupt("x".into())), 500, "internal"),
            (ApiError::Unauthenticated("x".into()), 401, "unauthenticated"),
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (ApiError::RouteNotFound, 404, "not_found"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (ApiError::LinkRefused(Refusal::RateLimited), 429, "rate_limited"),
            (ApiError::LinkRefused(Refusal::Forged), 403, "link_refused"),
            (ApiError::LinkRefused(Refusal::WrongSender), 403, "link_refused"),
            (ApiError::LinkRefused(Refusal::Unauthenticated), 403, "link_refused"),
            (ApiError::LinkRefused(Refusal::Expired), 410, "link_refused"),
            (ApiError::LinkRefused(Refusal::Used), 410, "link_refused"),
            (ApiError::LinkRefused(Refusal::StepClosed), 409, "link_refused"),
            (ApiError::LinkRefused(Refusal::NoDecision), 422, "link_refused"),
            (ApiError::LinkRefused(Refusal::CommentRequired), 422, "link_refused"),
            (ApiError::LinkRefused(Refusal::CommentInvalid), 422, "link_refused"),
        ];
        for (err, status, code) in cases {
            let (s, c, _) = err.parts();
            assert_eq!((s.as_u16(), c), (status, code), "{err:?}");
        }
    }

    #[tokio::test]
    async fn a_lost_race_is_an_honest_503_with_retry_after() {
        let response = ApiError::App(AppError::Contended).into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let bytes = axum::body::to_bytes(response.into_body(), 10_000).await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
    }

    #[tokio::test]
    async fn a_server_error_hides_its_cause_from_the_caller() {
        let response = ApiError::App(AppError::Store(StoreError::Backend("/secret/path".into()))).into_response();
        assert_eq!(response.status(), 500);
        let bytes = axum::body::to_bytes(response.into_body(), 10_000).await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret"), "{body}");
    }
}
