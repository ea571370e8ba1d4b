//! Flow and task executions on the wire.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use flowexec_domain::{
    FlowExecution, FlowExecutionDetail, FlowName, FlowStatus, NewFlowExecution, NewTask,
    RunOptions, TaskExecution, TaskName, TaskStatus, WorkerId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::number::{integral, optional_integral};
use crate::problem::FieldError;
use crate::workers::RetryPolicyBody;

/// Current execution state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// The worker that claimed it (kept once the run ends), or null.
    #[schema(max_length = 200, example = "host-1/pid-4242")]
    pub worker_id: Option<String>,
    /// While it runs under a worker: when the worker's lease lapses unless
    /// it sends a heartbeat or reports; null otherwise.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The worker's last heartbeat (its claim counts as the first), or null.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Queued, it is not claimed before this time (a retry's backoff); null:
    /// at once.
    pub not_before: Option<DateTime<Utc>>,
    /// Claimed before queued tasks of lower priority.
    pub priority: i32,
    /// A run that lasts longer fails with `{"code": "timed_out"}`; null: no
    /// limit.
    #[schema(minimum = 1, maximum = 604_800)]
    pub timeout_seconds: Option<u32>,
    /// Its retry policy; null: the server's default.
    pub retry: Option<RetryPolicyBody>,
    /// A run of a `for_each` task: the position of its item (0-based),
    /// kept by its retries (whose `execution_index` goes on after the last
    /// one taken); null for a task that runs once.
    #[schema(minimum = 0)]
    pub iteration: Option<i32>,
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
            worker_id: task.lease.worker_id.map(WorkerId::into_string),
            lease_expires_at: task.lease.expires_at,
            heartbeat_at: task.lease.heartbeat_at,
            not_before: task.not_before,
            priority: task.run.priority,
            timeout_seconds: task.run.timeout_seconds,
            retry: task.run.retry.map(Into::into),
            iteration: task.iteration,
        }
    }
}

/// The status of a flow execution: `cancelled` once cancelled; else, from
/// the latest attempt of each task (of each iteration of a `for_each`
/// task; deleted ones left out), `failed` when one failed; else
/// `completed` when every one completed; else `queued` when every one is
/// queued (or none is left); else `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatusBody {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl From<FlowStatus> for FlowStatusBody {
    fn from(status: FlowStatus) -> Self {
        match status {
            FlowStatus::Queued => Self::Queued,
            FlowStatus::Running => Self::Running,
            FlowStatus::Completed => Self::Completed,
            FlowStatus::Failed => Self::Failed,
            FlowStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// A flow execution with its task executions (ordered by task name, then
/// execution index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// The version of the stored flow definition it runs; null for a flow
    /// execution created with its tasks.
    #[schema(minimum = 1)]
    pub flow_version: Option<i32>,
    /// The flow's input: any JSON value, or null for none.
    pub input: Option<Value>,
    #[schema(
        example = "system",
        pattern = "^(system|integration|service-account|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
    )]
    pub modified_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: FlowStatusBody,
    /// How many tasks' latest attempts are in each status (every status
    /// named).
    pub task_counts: BTreeMap<String, usize>,
    pub task_executions: Vec<TaskExecutionBody>,
}

impl From<FlowExecutionDetail> for FlowExecutionBody {
    fn from(detail: FlowExecutionDetail) -> Self {
        let task_counts = detail
            .task_counts()
            .into_iter()
            .map(|(status, n)| (status.as_str().to_owned(), n))
            .collect();
        let FlowExecution {
            id,
            organization_id,
            flow_name,
            flow_version,
            input,
            status,
            modified_by,
            created_at,
            updated_at,
        } = detail.flow_execution;
        Self {
            id: id.into_uuid(),
            organization_id: organization_id.into_uuid(),
            flow_name: flow_name.into_string(),
            flow_version,
            input,
            modified_by: modified_by.to_string(),
            created_at,
            updated_at,
            status: status.into(),
            task_counts,
            task_executions: detail.task_executions.into_iter().map(Into::into).collect(),
        }
    }
}

/// One task of a new flow execution. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Claimed before queued tasks of lower priority; 0 by default.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "integral"
    )]
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub priority: i32,
    /// A run that lasts longer fails with `{"code": "timed_out"}`; omitted
    /// or null: no limit.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_integral"
    )]
    #[schema(minimum = 1, maximum = 604_800)]
    pub timeout_seconds: Option<u32>,
    /// Its retry policy; omitted or null: the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicyBody>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A new flow execution: its name, input, and 1–1000 tasks with distinct
/// names. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[schema(min_items = 1, max_items = 1000)]
    pub tasks: Vec<NewTaskBody>,
}

fn field_error(field: impl Into<String>, error: impl std::fmt::Display) -> FieldError {
    FieldError {
        field: field.into(),
        message: error.to_string(),
        ..FieldError::default()
    }
}

impl NewFlowExecutionBody {
    /// The domain's command, or every invalid field at once. `null` input
    /// means none.
    pub fn into_command(self) -> Result<NewFlowExecution, Vec<FieldError>> {
        let mut errors = Vec::new();
        let flow_name = FlowName::parse(self.flow_name)
            .map_err(|e| errors.push(field_error("flow_name", e)))
            .ok();
        let mut tasks = Vec::with_capacity(self.tasks.len());
        for (i, task) in self.tasks.into_iter().enumerate() {
            let task_name = TaskName::parse(task.task_name)
                .map_err(|e| errors.push(field_error(format!("tasks[{i}].task_name"), e)))
                .ok();
            let retry = match task
                .retry
                .map(|r| r.into_policy(&format!("tasks[{i}].retry")))
            {
                Some(Err(broken)) => {
                    errors.extend(broken);
                    None
                }
                Some(Ok(policy)) => Some(policy),
                None => None,
            };
            if let Some(task_name) = task_name {
                tasks.push(NewTask {
                    task_name,
                    input: task.input.filter(|v| !v.is_null()),
                    run: RunOptions {
                        priority: task.priority,
                        timeout_seconds: task.timeout_seconds,
                        retry,
                    },
                });
            }
        }
        match flow_name {
            Some(flow_name) if errors.is_empty() => {
                NewFlowExecution::new(flow_name, self.input.filter(|v| !v.is_null()), tasks)
                    .map_err(|e| vec![field_error("tasks", e)])
            }
            _ => Err(errors),
        }
    }
}

impl From<&NewFlowExecution> for NewFlowExecutionBody {
    fn from(new: &NewFlowExecution) -> Self {
        Self {
            flow_name: new.flow_name().to_string(),
            input: new.input().cloned(),
            tasks: new
                .tasks()
                .iter()
                .map(|t| NewTaskBody {
                    task_name: t.task_name.to_string(),
                    input: t.input.clone(),
                    priority: t.run.priority,
                    timeout_seconds: t.run.timeout_seconds,
                    retry: t.run.retry.map(Into::into),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: Value) -> NewFlowExecutionBody {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_valid_body_becomes_the_command_with_null_input_meaning_none() {
        let command = body(json!({
            "flow_name": "etl", "input": null,
            "tasks": [{"task_name": "a", "input": {"k": 1}}, {"task_name": "b", "input": null}]
        }))
        .into_command();
        let command = command.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(command.input(), None);
        assert_eq!(command.tasks()[0].input, Some(json!({"k": 1})));
        assert_eq!(command.tasks()[1].input, None);
        assert_eq!(NewFlowExecutionBody::from(&command).tasks[0].task_name, "a");
    }

    #[test]
    fn every_invalid_name_is_listed_at_once() {
        let errors = body(json!({
            "flow_name": "bad name",
            "tasks": [{"task_name": ""}, {"task_name": "ok"}, {"task_name": "-x"}]
        }))
        .into_command()
        .err()
        .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["flow_name", "tasks[0].task_name", "tasks[2].task_name"]
        );
    }

    #[test]
    fn repeated_task_names_are_reported_on_tasks() {
        let errors =
            body(json!({"flow_name": "f", "tasks": [{"task_name": "a"}, {"task_name": "a"}]}))
                .into_command()
                .err()
                .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "tasks");
        assert!(errors[0].message.contains("'a'"), "{:?}", errors[0]);
    }

    #[test]
    fn unknown_fields_are_refused_by_the_type_itself() {
        let parsed: Result<NewFlowExecutionBody, _> =
            serde_json::from_value(json!({"flow_name": "f", "tasks": [], "extra": 1}));
        assert!(parsed.is_err());
    }
}
