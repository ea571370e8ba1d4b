#![doc = include_str!("../README.md")]

mod executions;
mod flows;
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
pub use flows::{
    AttemptRefBody, CreateFlowExecutionBody, FlowBody, FlowGraphBody, FlowPageBody,
    FlowSummaryBody, GraphEdgeBody, GraphNodeBody, NodeStateBody, RerunBody, StartFlowBody,
};
pub use health::HealthBody;
pub use keys::{ApiKeyBody, ApiKeyListBody, IssuedApiKeyBody, NewApiKeyBody, RoleBody};
pub use lifecycle::{ChangeStatusBody, EventBody, EventPageBody, RetryBody, MAX_REASON_CHARS};
pub use lists::{
    CountParams, CountsBody, EventParams, FlowExecutionPageBody, FlowExecutionSummaryBody,
    FlowListParams, ListRequest, TaskExecutionPageBody, TaskListParams,
};
pub use problem::{FieldError, Problem};
pub use workers::{
    BackoffBody, ClaimBody, ClaimCommand, ClaimedBody, CompleteBody, FailBody, HeartbeatBody,
    JitterBody, ReportCommand, ResultAnswerBody, ResultBody, ResultStatus, ResultsAnswerBody,
    ResultsBody, RetryPolicyBody, TaskNameText, DEFAULT_CLAIM_LIMIT, DEFAULT_LEASE_SECONDS,
    MAX_RESULTS, MAX_WAIT_SECONDS,
};
