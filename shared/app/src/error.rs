//! The services' one error type. Every variant is a precise refusal or a real fault;
//! `vigilo-http` maps each to exactly one status and code.

use vigilo_domain::DomainError;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("not found")]
    NotFound,
    #[error("the slug {0} is taken")]
    SlugTaken(String),
    #[error("If-Match expected version {expected}, the current version is {current}")]
    VersionConflict { expected: u64, current: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the workspace must keep at least one owner")]
    LastOwner,
    #[error("too many concurrent writers; retry the request")]
    Contended,
    /// The store is overloaded; the request may succeed if sent again later.
    #[error("the service is busy; retry the request")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            // A lost race: the service loop retries from a fresh read.
            StoreError::ConditionFailed { .. } => AppError::Contended,
            StoreError::Throttled => AppError::Busy,
            other => AppError::Store(other),
        }
    }
}

impl From<vigilo_domain::FieldErrors> for AppError {
    fn from(e: vigilo_domain::FieldErrors) -> AppError {
        AppError::Domain(DomainError::Validation(e))
    }
}

pub type AppResult<T> = Result<T, AppError>;
