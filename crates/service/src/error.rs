use flowexec_domain::{RepoError, RetryRefusal, TaskStatus};

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
    /// A worker reported on a task that is no longer running under it: its
    /// signal to stop working on it.
    #[error("the task execution is {current} and no longer held by this worker")]
    LeaseLost { current: TaskStatus },
    /// `If-Match` named a version the row no longer has.
    #[error("the task execution has changed: its current version is {current_version}")]
    PreconditionFailed { current_version: i64 },
    /// The attempt may not be retried.
    #[error("{0}")]
    RetryRefused(RetryRefusal),
    /// A request value outside what the use case accepts (e.g. a page
    /// size); the text says what is expected.
    #[error("{0}")]
    Invalid(String),
    /// A flow definition with errors: every one, each where it is.
    #[error("the flow definition has {} error(s)", .0.len())]
    InvalidDefinition(Vec<flowexec_flows::DefinitionError>),
    /// A run's input that its flow's `input_schema` refuses: each mismatch
    /// as (JSON pointer into the input, message).
    #[error("the input does not match the flow's input_schema")]
    InputMismatch(Vec<(String, String)>),
    /// The flow execution is in no state for this (e.g. a rerun of a
    /// cancelled one); the text says why.
    #[error("{detail}")]
    FlowState {
        status: flowexec_domain::FlowStatus,
        detail: String,
    },
    /// Request fields the use case refuses: (field, message) each.
    #[error("{} invalid field(s)", .0.len())]
    InvalidFields(Vec<(String, String)>),
    /// The key is its organization's last active admin key.
    #[error("the last active admin key of an organization cannot be revoked")]
    LastAdminKey,
    /// A list cursor that this deployment did not make for this query and
    /// organization (malformed, altered, or from another list).
    #[error("invalid cursor: {0}")]
    InvalidCursor(&'static str),
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
            RepoError::LeaseLost { current } => Self::LeaseLost { current },
            RepoError::PreconditionFailed { current_version } => {
                Self::PreconditionFailed { current_version }
            }
            RepoError::RetryRefused(refusal) => Self::RetryRefused(refusal),
            RepoError::LastAdminKey => Self::LastAdminKey,
            RepoError::Unavailable(cause) => Self::Unavailable(cause),
            RepoError::Unknown(cause) => Self::Internal(cause),
        }
    }
}
