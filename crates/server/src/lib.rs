#![doc = include_str!("../README.md")]

pub mod cli;
mod commands;
mod serve;
pub mod settings;
pub mod telemetry;

pub use commands::run;
pub use serve::{build_server, check_role, connect_store, service};
