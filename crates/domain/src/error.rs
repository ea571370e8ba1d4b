//! Errors of the domain: a value that does not parse, and what a port may
//! answer besides success.

use crate::status::TaskStatus;

/// A value that failed validation; the message says what is expected and is
/// safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    message: String,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a repository (port) answers when it cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The row does not exist in the caller's tenant (it may exist in another
    /// tenant; the two are indistinguishable by design).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule would be broken; the text names the rule.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A status change was asked that the state machine forbids from the
    /// row's current status. Nothing was changed.
    #[error("invalid transition from {current} to {requested}")]
    InvalidTransition {
        current: TaskStatus,
        requested: TaskStatus,
    },
    /// A worker reported on a task it no longer holds: the task is not
    /// running under that worker (its lease lapsed and another claimed
    /// it, or it was deleted). Nothing was changed.
    #[error("lease lost: the task execution is {current} and not held by this worker")]
    LeaseLost { current: TaskStatus },
    /// The row's version is not one the change was conditioned on
    /// (`If-Match`). Nothing was changed.
    #[error("precondition failed: the current version is {current_version}")]
    PreconditionFailed { current_version: i64 },
    /// A retry was asked of an attempt that may not be retried. Nothing was
    /// changed.
    #[error("{0}")]
    RetryRefused(crate::retry::RetryRefusal),
    /// The key is its organization's last active admin key and may not be
    /// revoked. Nothing was changed.
    #[error("the last active admin key of an organization cannot be revoked")]
    LastAdminKey,
    /// The store could not be reached (pool exhausted, connection refused).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else; logged by the caller, never shown to a client.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}
