#![doc = include_str!("../README.md")]

mod bootstrap;
pub mod cli;
mod commands;
pub mod limits;
mod serve;
pub mod settings;
pub mod store;
pub mod telemetry;

pub use commands::run;
pub use serve::{build_server, listen_for_work, run_sweeper};
