#![doc = include_str!("../README.md")]

pub mod access;
pub mod entities;
pub mod error;
pub mod ids;
pub mod json;
pub mod names;
pub mod ports;
pub mod status;

pub use access::{Actor, Principal, Role, Tenant};
pub use entities::{
    ApiKeyCredentials, FlowExecution, FlowExecutionDetail, NewApiKey, NewFlowExecution, NewTask,
    Organization, StatusChange, TaskExecution, TaskExecutionEvent,
};
pub use error::{ParseError, RepoError};
pub use ids::{ApiKeyId, FlowExecutionId, OrganizationId, TaskExecutionId};
pub use names::{FlowName, OrganizationName, TaskName};
pub use status::TaskStatus;
