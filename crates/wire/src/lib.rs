#![doc = include_str!("../README.md")]

mod executions;
mod health;
mod problem;

pub use executions::{
    FlowExecutionBody, NewFlowExecutionBody, NewTaskBody, Status, TaskExecutionBody,
};
pub use health::HealthBody;
pub use problem::{FieldError, Problem};
