//! Readiness: whether the store answers.

use flowexec_domain::ports::HealthCheck;
use flowexec_domain::RepoError;

use crate::error::ServiceError;

/// What the HTTP layer asks for `/readyz`.
pub trait Readiness: Send + Sync + 'static {
    /// Whether the store answers; [`ServiceError::Unavailable`] if not.
    fn ready(&self) -> Result<(), ServiceError>;
}

/// Readiness of a store.
pub struct StoreReadiness<S>(pub S);

impl<S: HealthCheck> Readiness for StoreReadiness<S> {
    fn ready(&self) -> Result<(), ServiceError> {
        self.0.ping().map_err(|e| match e {
            RepoError::Unavailable(cause) | RepoError::Unknown(cause) => {
                ServiceError::Unavailable(cause)
            }
            other => ServiceError::Unavailable(other.into()),
        })
    }
}
