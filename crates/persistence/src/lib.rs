#![doc = include_str!("../README.md")]

mod client;
mod error;
mod pool;
mod postgres;
mod rows;
mod sqlite;

pub use client::prepare_client_library;
pub use pool::PoolSettings;
pub use postgres::{
    inspect_role, migrate, migrate_up_to, MigrationReport, PgStore, PgTx, RoleReport, MIGRATIONS,
};
pub use sqlite::{SqliteStore, SqliteTx, SQLITE_MIGRATIONS};
