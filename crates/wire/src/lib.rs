#![doc = include_str!("../README.md")]

mod executions;
mod health;
mod keys;
mod lifecycle;
mod lists;
mod number;
mod problem;
mod workers;

pub use executions::{
    FlowExecutionBody, FlowStatusBody, NewFlowExecutionBody, NewTaskBody, Status, TaskExecutionBody,
};
pub use health::HealthBody;
pub use keys::{ApiKeyBody, ApiKeyListBody, IssuedApiKeyBody, NewApiKeyBody, RoleBody};
pub use lifecycle::{ChangeStatusBody, EventBody, EventPageBody, RetryBody, MAX_REASON_CHARS};
pub use lists::{
    CountParams, CountsBody, EventParams, FlowExecutionPageBody, FlowExecutionSummaryBody,
    FlowListParams, ListRequest, TaskExecutionPageBody, TaskListParams,
};
pub use problem::{FieldError, Problem};
pub use workers::{BackoffBody, JitterBody, RetryPolicyBody};
