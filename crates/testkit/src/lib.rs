#![doc = include_str!("../README.md")]

pub mod contract;
mod db;
pub mod memory;
mod sqlite;

pub use db::{admin_base_url, TestDb, APP_ROLE};
pub use memory::MemoryStore;
pub use sqlite::TestSqlite;
