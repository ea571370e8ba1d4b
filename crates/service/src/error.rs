use flowexec_domain::{RepoError, TaskStatus};

/// What a use case answers when it does not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No key, a malformed key, an unknown or revoked key, or a wrong secret:
    /// the caller is not told which.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The key is valid but its role does not allow the operation.
    #[error("this operation needs a key with one of the roles: {required}")]
    Forbidden { required: &'static str },
    /// Absent from the caller's organization (whether or not it exists in
    /// another).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule would be broken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The state machine forbids the change from the current status.
    #[error("cannot move from {current} to {requested}")]
    InvalidTransition {
        current: TaskStatus,
        requested: TaskStatus,
    },
    /// The store cannot be reached.
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<RepoError> for ServiceError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::NotFound => Self::NotFound,
            RepoError::Conflict(what) => Self::Conflict(what),
            RepoError::InvalidTransition { current, requested } => {
                Self::InvalidTransition { current, requested }
            }
            RepoError::Unavailable(cause) => Self::Unavailable(cause),
            RepoError::Unknown(cause) => Self::Internal(cause),
        }
    }
}
