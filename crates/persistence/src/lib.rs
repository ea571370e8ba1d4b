#![doc = include_str!("../README.md")]

mod error;
mod migrate;
mod models;
mod repos;
mod schema;
mod store;
mod tenant;

mod client;

pub use client::prepare_client_library;
pub use migrate::{inspect_role, migrate, MigrationReport, RoleReport, MIGRATIONS};
pub use store::{PgStore, PoolSettings};
