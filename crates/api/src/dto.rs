//! Response and request bodies, with their OpenAPI schemas. Domain types are
//! mapped here so that the wire format is stated in one place.

use chrono::{DateTime, Utc};
use flowexec_domain::{FlowExecution, FlowExecutionDetail, TaskExecution, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// Current execution state of a task.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Completed,
    Failed,
    Deleted,
    Stale,
}

impl From<TaskStatus> for Status {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Queued => Self::Queued,
            TaskStatus::Running => Self::Running,
            TaskStatus::Completed => Self::Completed,
            TaskStatus::Failed => Self::Failed,
            TaskStatus::Deleted => Self::Deleted,
            TaskStatus::Stale => Self::Stale,
        }
    }
}

/// One attempt of one task inside a flow execution.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskExecutionBody {
    /// Unique identifier, assigned at creation.
    pub id: Uuid,
    /// The parent flow execution.
    pub flow_execution_id: Uuid,
    /// The owning organization (inherited from the flow execution).
    pub organization_id: Uuid,
    /// Name of the task as defined in the flow; case-sensitive.
    #[schema(
        example = "extract",
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub task_name: String,
    /// Zero-based attempt index: 0 = first run, 1 = first retry, …
    #[schema(minimum = 0)]
    pub execution_index: i32,
    pub status: Status,
    /// Input parameters: any JSON value, or null for none. Numbers come
    /// back with every digit, written in plain decimal notation.
    pub input: Option<Value>,
    /// Output of a completed task: any JSON value, or null.
    pub output: Option<Value>,
    /// Error of a failed task: any JSON value, or null.
    pub error: Option<Value>,
    /// Who last changed it: `system`, a user UUID, `integration` or
    /// `service-account`.
    #[schema(
        example = "system",
        pattern = "^(system|integration|service-account|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
    )]
    pub modified_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<TaskExecution> for TaskExecutionBody {
    fn from(task: TaskExecution) -> Self {
        Self {
            id: task.id.into_uuid(),
            flow_execution_id: task.flow_execution_id.into_uuid(),
            organization_id: task.organization_id.into_uuid(),
            task_name: task.task_name.into_string(),
            execution_index: task.execution_index,
            status: task.status.into(),
            input: task.input,
            output: task.output,
            error: task.error,
            modified_by: task.modified_by.to_string(),
            created_at: task.created_at,
            updated_at: task.updated_at,
            started_at: task.started_at,
            completed_at: task.completed_at,
        }
    }
}

/// A flow execution with its task executions (ordered by task name, then
/// execution index).
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowExecutionBody {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(
        example = "nightly-etl",
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub flow_name: String,
    /// The flow's input: any JSON value, or null for none.
    pub input: Option<Value>,
    #[schema(
        example = "system",
        pattern = "^(system|integration|service-account|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
    )]
    pub modified_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub task_executions: Vec<TaskExecutionBody>,
}

impl From<FlowExecutionDetail> for FlowExecutionBody {
    fn from(detail: FlowExecutionDetail) -> Self {
        let FlowExecution {
            id,
            organization_id,
            flow_name,
            input,
            modified_by,
            created_at,
            updated_at,
        } = detail.flow_execution;
        Self {
            id: id.into_uuid(),
            organization_id: organization_id.into_uuid(),
            flow_name: flow_name.into_string(),
            input,
            modified_by: modified_by.to_string(),
            created_at,
            updated_at,
            task_executions: detail.task_executions.into_iter().map(Into::into).collect(),
        }
    }
}

/// One task of a new flow execution. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the wire format; parsed field by field in handlers
pub struct NewTaskBody {
    /// 1–128 characters of `A-Z a-z 0-9 _ - .`, starting with a letter or
    /// digit; unique within the flow execution.
    #[schema(
        example = "extract",
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub task_name: String,
    /// Any JSON value; omitted or null for none. Strings and keys may not
    /// hold the NUL character; numbers may have at most 1,000 digits before
    /// and after the decimal point.
    pub input: Option<Value>,
}

/// A new flow execution: its name, input, and 1–1000 tasks with distinct
/// names. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the wire format; parsed field by field in handlers
pub struct NewFlowExecutionBody {
    /// Same character set and length as task names.
    #[schema(
        example = "nightly-etl",
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub flow_name: String,
    /// Any JSON value; omitted or null for none (same limits as a task's).
    pub input: Option<Value>,
    #[schema(min_items = 1, max_items = 1000)]
    pub tasks: Vec<NewTaskBody>,
}

/// `/healthz` and `/readyz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    #[schema(example = "ok")]
    pub status: &'static str,
}
