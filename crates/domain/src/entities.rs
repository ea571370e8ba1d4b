//! Entities and the commands that create them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::access::{Actor, Role};
use crate::error::ParseError;
use crate::ids::{ApiKeyId, FlowExecutionId, OrganizationId, TaskExecutionId};
use crate::json::{self, JsonRejection};
use crate::names::{FlowName, OrganizationName, TaskName};
use crate::status::TaskStatus;

/// Most tasks one flow execution may be created with.
pub const MAX_TASKS_PER_FLOW: usize = 1000;

/// One attempt of one task inside a flow execution.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskExecution {
    pub id: TaskExecutionId,
    pub flow_execution_id: FlowExecutionId,
    pub organization_id: OrganizationId,
    pub task_name: TaskName,
    /// 0 = first run, 1 = first retry, …
    pub execution_index: i32,
    pub status: TaskStatus,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub modified_by: Actor,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// 1 when created, bumped by every change: the row's `ETag`.
    pub version: i64,
}

/// One run of a flow: the parent of its task executions.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowExecution {
    pub id: FlowExecutionId,
    pub organization_id: OrganizationId,
    pub flow_name: FlowName,
    pub input: Option<Value>,
    pub modified_by: Actor,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A flow execution with its task executions, ordered by task name, then
/// execution index.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowExecutionDetail {
    pub flow_execution: FlowExecution,
    pub task_executions: Vec<TaskExecution>,
}

/// One task to create inside a new flow execution.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub task_name: TaskName,
    pub input: Option<Value>,
}

/// A validated request to create a flow execution: at least one task, at
/// most [`MAX_TASKS_PER_FLOW`], task names unique.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFlowExecution {
    flow_name: FlowName,
    input: Option<Value>,
    tasks: Vec<NewTask>,
}

impl NewFlowExecution {
    pub fn new(
        flow_name: FlowName,
        input: Option<Value>,
        tasks: Vec<NewTask>,
    ) -> Result<Self, ParseError> {
        if tasks.is_empty() {
            return Err(ParseError::new("must contain at least one task"));
        }
        if tasks.len() > MAX_TASKS_PER_FLOW {
            return Err(ParseError::new(format!(
                "must contain at most {MAX_TASKS_PER_FLOW} tasks"
            )));
        }
        let mut seen = HashSet::with_capacity(tasks.len());
        if let Some(duplicate) = tasks.iter().find(|t| !seen.insert(&t.task_name)) {
            return Err(ParseError::new(format!(
                "task names must be unique; '{}' appears more than once",
                duplicate.task_name
            )));
        }
        // Whoever builds the command (the API, the CLI, a worker in-process),
        // the stores receive JSON in the one form they both keep.
        let input = stored_json(input, "input")?;
        let tasks = tasks
            .into_iter()
            .enumerate()
            .map(|(i, task)| {
                Ok(NewTask {
                    input: stored_json(task.input, &format!("tasks[{i}].input"))?,
                    ..task
                })
            })
            .collect::<Result<_, ParseError>>()?;
        Ok(Self {
            flow_name,
            input,
            tasks,
        })
    }

    pub fn flow_name(&self) -> &FlowName {
        &self.flow_name
    }

    pub fn input(&self) -> Option<&Value> {
        self.input.as_ref()
    }

    pub fn tasks(&self) -> &[NewTask] {
        &self.tasks
    }

    /// What creating it writes, when `actor` creates it at `at` in
    /// `organization_id`: the flow execution, one task execution per task
    /// (attempt 0, `queued`, fresh ids) and each one's creation event (from
    /// no status to `queued`, reason `created`).
    pub fn plan(
        &self,
        organization_id: OrganizationId,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> FlowExecutionCreation {
        let flow_execution = FlowExecution {
            id: FlowExecutionId::generate(),
            organization_id,
            flow_name: self.flow_name.clone(),
            input: self.input.clone(),
            modified_by: actor,
            created_at: at,
            updated_at: at,
        };
        let task_executions: Vec<TaskExecution> = self
            .tasks
            .iter()
            .map(|task| TaskExecution {
                id: TaskExecutionId::generate(),
                flow_execution_id: flow_execution.id,
                organization_id,
                task_name: task.task_name.clone(),
                execution_index: 0,
                status: TaskStatus::Queued,
                input: task.input.clone(),
                output: None,
                error: None,
                modified_by: actor,
                created_at: at,
                updated_at: at,
                started_at: None,
                completed_at: None,
                version: 1,
            })
            .collect();
        let events = task_executions
            .iter()
            .map(|task| TaskExecutionEvent {
                task_execution_id: task.id,
                from: None,
                to: TaskStatus::Queued,
                actor,
                reason: Some("created".to_owned()),
                created_at: at,
            })
            .collect();
        FlowExecutionCreation {
            flow_execution,
            task_executions,
            events,
        }
    }
}

/// Everything creating a flow execution writes.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowExecutionCreation {
    pub flow_execution: FlowExecution,
    /// In the order the tasks were given.
    pub task_executions: Vec<TaskExecution>,
    pub events: Vec<TaskExecutionEvent>,
}

impl FlowExecutionCreation {
    /// The flow execution as it reads back once stored: its task
    /// executions by task name, then execution index.
    pub fn detail(&self) -> FlowExecutionDetail {
        let mut task_executions = self.task_executions.clone();
        task_executions.sort_by(|a, b| {
            (a.task_name.as_str(), a.execution_index)
                .cmp(&(b.task_name.as_str(), b.execution_index))
        });
        FlowExecutionDetail {
            flow_execution: self.flow_execution.clone(),
            task_executions,
        }
    }
}

/// `value` in the canonical form of [`json::canonicalize`], or why it
/// cannot be stored, naming `field`. (The HTTP layer has already refused,
/// field by field, what would fail here; for it this is a no-op.)
fn stored_json(value: Option<Value>, field: &str) -> Result<Option<Value>, ParseError> {
    value
        .map(|v| {
            json::canonicalize(v, usize::MAX).map_err(|rejection| match rejection {
                JsonRejection::Invalid(problems) => ParseError::new(
                    problems
                        .first()
                        .map(|p| format!("{field}{}: {}", p.path, p.message))
                        .unwrap_or_else(|| format!("{field} cannot be stored")),
                ),
                JsonRejection::TooLarge => ParseError::new(format!("{field} is too large")),
            })
        })
        .transpose()
}

/// An organization, the tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: OrganizationName,
    pub created_at: DateTime<Utc>,
}

/// An API key to store. Only the SHA-256 of the secret is ever stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub organization_id: OrganizationId,
    pub role: Role,
    pub actor: Actor,
    pub secret_sha256: [u8; 32],
    pub created_at: DateTime<Utc>,
}

/// What the store knows of a key, looked up by its id before the
/// organization is known. The caller compares `secret_sha256` in constant
/// time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyCredentials {
    pub id: ApiKeyId,
    pub organization_id: OrganizationId,
    pub role: Role,
    pub actor: Actor,
    pub secret_sha256: [u8; 32],
}

/// One status change of a task execution, to record: the audit trail.
/// Creation is recorded as a change from no status (`from: None`) to
/// `queued`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskExecutionEvent {
    pub task_execution_id: TaskExecutionId,
    pub from: Option<TaskStatus>,
    pub to: TaskStatus,
    pub actor: Actor,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A recorded event with the id the store gave it: ids grow with time
/// within an organization, so they order the trail and page through it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub id: i64,
    pub event: TaskExecutionEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str) -> Result<NewTask, ParseError> {
        Ok(NewTask {
            task_name: TaskName::parse(name)?,
            input: None,
        })
    }

    #[test]
    fn a_flow_execution_needs_at_least_one_task() -> Result<(), ParseError> {
        assert!(NewFlowExecution::new(FlowName::parse("f")?, None, vec![]).is_err());
        Ok(())
    }

    #[test]
    fn a_flow_execution_rejects_duplicate_task_names() -> Result<(), ParseError> {
        let err = NewFlowExecution::new(
            FlowName::parse("f")?,
            None,
            vec![task("a")?, task("b")?, task("a")?],
        )
        .err();
        assert!(err.is_some_and(|e| e.message().contains("'a'")));
        Ok(())
    }

    #[test]
    fn inputs_are_kept_in_the_stored_form_and_unstorable_ones_refused() -> Result<(), ParseError> {
        let number = |text: &str| serde_json::from_str::<Value>(text).ok();
        let new = NewFlowExecution::new(
            FlowName::parse("f")?,
            number("1e2"),
            vec![NewTask {
                task_name: TaskName::parse("t")?,
                input: number("[-0.0, 1.50e1]"),
            }],
        )?;
        assert_eq!(new.input().map(Value::to_string).as_deref(), Some("100"));
        assert_eq!(
            new.tasks()[0]
                .input
                .as_ref()
                .map(Value::to_string)
                .as_deref(),
            Some("[0.0,15.0]")
        );
        let refused = NewFlowExecution::new(
            FlowName::parse("f")?,
            None,
            vec![NewTask {
                task_name: TaskName::parse("t")?,
                input: Some(Value::String("nul\0".into())),
            }],
        );
        assert!(refused.is_err_and(|e| e.message().starts_with("tasks[0].input")));
        Ok(())
    }

    #[test]
    fn a_flow_execution_accepts_up_to_the_task_limit_and_no_more() -> Result<(), ParseError> {
        let tasks = |n: usize| -> Result<Vec<NewTask>, ParseError> {
            (0..n).map(|i| task(&format!("t{i}"))).collect()
        };
        assert!(
            NewFlowExecution::new(FlowName::parse("f")?, None, tasks(MAX_TASKS_PER_FLOW)?).is_ok()
        );
        assert!(
            NewFlowExecution::new(FlowName::parse("f")?, None, tasks(MAX_TASKS_PER_FLOW + 1)?)
                .is_err()
        );
        Ok(())
    }
}
