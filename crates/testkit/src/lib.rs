#![doc = include_str!("../README.md")]

mod db;
mod sqlite;

pub use db::{admin_base_url, TestDb, APP_ROLE};

/// Every table of the schema, parents first: what an upgrade test counts.
pub const TABLES: [&str; 5] = [
    "organizations",
    "api_keys",
    "flow_executions",
    "task_executions",
    "task_execution_events",
];
pub use sqlite::TestSqlite;
