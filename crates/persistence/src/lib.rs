#![doc = include_str!("../README.md")]

#[cfg(feature = "postgres")]
mod client;
mod error;
#[macro_use]
mod lists;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use client::prepare_client_library;
pub use pool::PoolSettings;
#[cfg(feature = "postgres")]
pub use postgres::{
    inspect_role, migrate, migrate_up_to, ListenEvent, MigrationReport, PgStore, PgTx, RoleReport,
    WorkListener, WORK_CHANNEL,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SqliteTx, SQLITE_MIGRATIONS};
