//! The port implementations, one file per port.

mod api_keys;
mod flow_executions;
mod health;
mod organizations;
mod task_executions;
