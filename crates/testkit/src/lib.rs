#![doc = include_str!("../README.md")]

mod db;
pub mod memory;

pub use db::{admin_base_url, TestDb, APP_ROLE};
pub use memory::MemoryStore;
