#![doc = include_str!("../README.md")]

mod error;
mod migrate;
mod models;
mod repos;
mod schema;
mod store;
mod tenant;

pub use migrate::{inspect_role, migrate, MigrationReport, RoleReport, MIGRATIONS};
pub use store::{PgStore, PoolSettings};
