//! The one place where diesel and r2d2 errors become `RepoError`.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use flowexec_domain::RepoError;

/// The error type inside a transaction: a diesel error, or a domain answer
/// decided mid-transaction (which rolls the transaction back).
#[derive(Debug)]
pub(crate) enum StoreError {
    Diesel(DieselError),
    Repo(RepoError),
    /// A domain answer caused by the connection being gone (PostgreSQL:
    /// the unit of work may be run again on a fresh connection).
    #[cfg(feature = "postgres")]
    Lost(RepoError),
    /// A domain answer caused by PostgreSQL aborting the transaction to
    /// break a deadlock (or a serialization failure): nothing was done, and
    /// the unit of work may be run again.
    #[cfg(feature = "postgres")]
    Aborted(RepoError),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        Self::Diesel(error)
    }
}

impl From<RepoError> for StoreError {
    fn from(error: RepoError) -> Self {
        Self::Repo(error)
    }
}

impl From<StoreError> for RepoError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Repo(error) => error,
            #[cfg(feature = "postgres")]
            StoreError::Lost(error) | StoreError::Aborted(error) => error,
            StoreError::Diesel(error) => from_diesel(error),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        Self::Repo(RepoError::Unavailable(error.into()))
    }
}

fn from_diesel(error: DieselError) -> RepoError {
    match error {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            RepoError::Conflict(info.constraint_name().unwrap_or("unique key").to_owned())
        }
        // A missing parent (organization, flow execution): to the caller it
        // is as absent as a missing row.
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            RepoError::NotFound
        }
        lost if connection_lost(&lost) => {
            RepoError::Unavailable(anyhow::anyhow!("the database connection was lost: {lost}"))
        }
        other => RepoError::Unknown(other.into()),
    }
}

/// Whether `error` says the connection itself is gone (as opposed to a
/// statement failing on a healthy connection), including a commit that
/// failed for it (whose rollback then failed too).
pub(crate) fn connection_lost(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::RollbackErrorOnCommit { commit_error, .. } => connection_lost(commit_error),
        _ => false,
    }
}

/// Whether PostgreSQL aborted the transaction to break a deadlock or
/// because it could not serialize it: run again, it may well succeed.
#[cfg(feature = "postgres")]
pub(crate) fn aborted_to_retry(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// A stored value that the domain does not accept: the database holds
/// something the migrations' checks should have prevented.
pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> DieselError {
    DieselError::DeserializationError(format!("stored {what} is invalid: {error}").into())
}
