#![doc = include_str!("../README.md")]

pub mod access;
pub mod claim;
pub mod clock;
pub mod entities;
pub mod error;
pub mod flows;
pub mod ids;
pub mod json;
pub mod names;
pub mod policy;
pub mod ports;
pub mod query;
pub mod retry;
pub mod status;
pub mod transition;

pub use access::{Actor, Principal, Role, Tenant};
pub use claim::{next_attempt, next_attempt_numbered, Claim, Heartbeat, Numbering, Overdue};
pub use clock::{Clock, FixedClock, SystemClock};
pub use entities::latest_attempts;
pub use entities::{
    ApiKeyCredentials, ApiKeyInfo, FlowExecution, FlowExecutionCreation, FlowExecutionDetail,
    FlowStatus, Lease, NewApiKey, NewFlowExecution, NewTask, Organization, RecordedEvent,
    RunOptions, TaskExecution, TaskExecutionEvent,
};
pub use error::{ParseError, RepoError};
pub use flows::{Flow, FlowGraph, FlowVersion, GraphNode, NodeState, StartFlow};
pub use ids::{ApiKeyId, FlowExecutionId, OrganizationId, TaskExecutionId};
pub use names::{FlowName, OrganizationName, TaskName, WorkerId};
pub use policy::{Backoff, Jitter, RetryPolicy};
pub use query::{
    Attempts, CountBy, FlowExecutionFilter, ListQuery, Order, Position, TaskExecutionFilter,
    TimeRange,
};
pub use retry::{Retry, RetryRefusal, RetryRequest};
pub use status::TaskStatus;
pub use transition::{ChangeOutcome, IfMatch, ResultWrite, StatusChange, Transition};
