#![doc = include_str!("../README.md")]

pub mod access;
pub mod clock;
pub mod entities;
pub mod error;
pub mod ids;
pub mod json;
pub mod names;
pub mod ports;
pub mod query;
pub mod retry;
pub mod status;
pub mod transition;

pub use access::{Actor, Principal, Role, Tenant};
pub use clock::{Clock, FixedClock, SystemClock};
pub use entities::{
    ApiKeyCredentials, ApiKeyInfo, FlowExecution, FlowExecutionCreation, FlowExecutionDetail,
    FlowStatus, NewApiKey, NewFlowExecution, NewTask, Organization, RecordedEvent, TaskExecution,
    TaskExecutionEvent,
};
pub use error::{ParseError, RepoError};
pub use ids::{ApiKeyId, FlowExecutionId, OrganizationId, TaskExecutionId};
pub use names::{FlowName, OrganizationName, TaskName};
pub use query::{
    Attempts, CountBy, FlowExecutionFilter, ListQuery, Order, Position, TaskExecutionFilter,
    TimeRange,
};
pub use retry::{Retry, RetryRefusal, RetryRequest};
pub use status::TaskStatus;
pub use transition::{ChangeOutcome, IfMatch, ResultWrite, StatusChange, Transition};
