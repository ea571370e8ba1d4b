//! Retries, decided here: a retry is never a transition back but a new
//! attempt of the same (flow execution, task name) with the next
//! `execution_index`, queued. [`RetryRequest::plan`] checks that the attempt
//! may be retried and returns the row and event to insert.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::access::Actor;
use crate::entities::{TaskExecution, TaskExecutionEvent};
use crate::status::TaskStatus;
use crate::transition::IfMatch;

/// The statuses from which an attempt may be retried.
pub const RETRYABLE: [TaskStatus; 3] =
    [TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Stale];

/// A request to retry a task execution.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RetryRequest {
    /// The new attempt's input: `None` copies the attempt's; `Some(None)`
    /// is no input.
    pub input: Option<Option<Value>>,
    /// Free text recorded on the new attempt's creation event.
    pub reason: Option<String>,
    /// The versions the retried attempt may have (`If-Match`).
    pub if_match: IfMatch,
}

/// Why an attempt may not be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryRefusal {
    /// The attempt is not completed, failed or stale (it is queued, running
    /// or deleted).
    NotFinished { status: TaskStatus },
    /// A newer attempt of the same task exists.
    Superseded { latest_execution_index: i32 },
    /// Its flow execution was cancelled: nothing more runs in it.
    FlowCancelled,
    /// A stale attempt of a run of a stored definition: the engine makes
    /// it again, its input rendered again (a rerun), not copied.
    StaleInFlow,
}

impl fmt::Display for RetryRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFinished { status } => write!(
                f,
                "the attempt is {status}; only a completed, failed or stale attempt may be retried"
            ),
            Self::Superseded {
                latest_execution_index,
            } => write!(
                f,
                "a newer attempt of this task exists (execution_index {latest_execution_index}); only the latest attempt may be retried"
            ),
            Self::FlowCancelled => write!(
                f,
                "its flow execution was cancelled; nothing more runs in it"
            ),
            Self::StaleInFlow => write!(
                f,
                "a stale attempt of a run of a flow definition is made again by a rerun (POST /flow-executions/{{id}}/rerun), its input rendered again"
            ),
        }
    }
}

/// What a retry writes: the new attempt and its creation event.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub task_execution: TaskExecution,
    pub event: TaskExecutionEvent,
}

impl RetryRequest {
    /// The retry of `attempt`, whose task's highest `execution_index` is
    /// `latest_execution_index`, made by `actor` at `at`; or why not.
    /// (`if_match` is checked by the caller first: a precondition comes
    /// before the request's own rules.)
    pub fn plan(
        &self,
        attempt: &TaskExecution,
        latest_execution_index: i32,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<Retry, RetryRefusal> {
        self.plan_numbered(
            attempt,
            latest_execution_index,
            latest_execution_index.saturating_add(1),
            actor,
            at,
        )
    }

    /// [`plan`](Self::plan) for an attempt of a `for_each` iteration: the
    /// latest attempt of its iteration is `latest_execution_index`, and the
    /// new one takes `next_index` (after every attempt of the task).
    pub fn plan_numbered(
        &self,
        attempt: &TaskExecution,
        latest_execution_index: i32,
        next_index: i32,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<Retry, RetryRefusal> {
        if latest_execution_index > attempt.execution_index {
            return Err(RetryRefusal::Superseded {
                latest_execution_index,
            });
        }
        if !RETRYABLE.contains(&attempt.status) {
            return Err(RetryRefusal::NotFinished {
                status: attempt.status,
            });
        }
        let mut task_execution = attempt.next_attempt(
            self.input.clone().unwrap_or_else(|| attempt.input.clone()),
            actor,
            at,
            None,
        );
        task_execution.execution_index = next_index;
        let event = TaskExecutionEvent {
            task_execution_id: task_execution.id,
            from: None,
            to: TaskStatus::Queued,
            actor,
            reason: Some(
                self.reason
                    .clone()
                    .unwrap_or_else(|| format!("retry of attempt {}", attempt.execution_index)),
            ),
            created_at: at,
        };
        Ok(Retry {
            task_execution,
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::{FlowExecutionId, OrganizationId, TaskExecutionId};
    use crate::names::TaskName;

    fn attempt(status: TaskStatus, index: i32) -> TaskExecution {
        let at = DateTime::from_timestamp(1, 0).unwrap_or_default();
        TaskExecution {
            id: TaskExecutionId::generate(),
            flow_execution_id: FlowExecutionId::generate(),
            organization_id: OrganizationId::generate(),
            task_name: TaskName::parse("t").unwrap_or_else(|_| unreachable!()),
            execution_index: index,
            status,
            input: Some(json!({"day": 1})),
            output: Some(json!("old")),
            error: None,
            modified_by: Actor::System,
            created_at: at,
            updated_at: at,
            started_at: Some(at),
            completed_at: Some(at),
            version: 4,
            lease: crate::Lease::default(),
            iteration: None,
            not_before: None,
            run: crate::RunOptions::default(),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(100, 0).unwrap_or_default()
    }

    #[test]
    fn a_finished_latest_attempt_gets_the_next_index_queued_with_its_input() {
        for status in RETRYABLE {
            let old = attempt(status, 2);
            let retry = RetryRequest::default()
                .plan(&old, 2, Actor::Integration, at())
                .unwrap_or_else(|e| panic!("{status}: {e}"));
            let new = &retry.task_execution;
            assert_ne!(new.id, old.id);
            assert_eq!(
                (new.flow_execution_id, &new.task_name, new.execution_index),
                (old.flow_execution_id, &old.task_name, 3)
            );
            assert_eq!((new.status, new.version), (TaskStatus::Queued, 1));
            assert_eq!(new.input, old.input);
            assert_eq!((new.output.as_ref(), new.started_at), (None, None));
            assert_eq!(
                (new.created_at, new.modified_by),
                (at(), Actor::Integration)
            );
            assert_eq!(retry.event.from, None);
            assert_eq!(retry.event.to, TaskStatus::Queued);
            assert_eq!(retry.event.reason.as_deref(), Some("retry of attempt 2"));
        }
    }

    #[test]
    fn a_given_input_and_reason_replace_the_defaults() {
        let old = attempt(TaskStatus::Failed, 0);
        let request = RetryRequest {
            input: Some(None),
            reason: Some("fixed upstream".into()),
            if_match: IfMatch::Any,
        };
        let retry = request
            .plan(&old, 0, Actor::System, at())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(retry.task_execution.input, None);
        assert_eq!(retry.event.reason.as_deref(), Some("fixed upstream"));
    }

    #[test]
    fn unfinished_deleted_and_superseded_attempts_are_refused() {
        for status in [TaskStatus::Queued, TaskStatus::Running, TaskStatus::Deleted] {
            assert_eq!(
                RetryRequest::default().plan(&attempt(status, 0), 0, Actor::System, at()),
                Err(RetryRefusal::NotFinished { status })
            );
        }
        assert_eq!(
            RetryRequest::default().plan(&attempt(TaskStatus::Failed, 0), 1, Actor::System, at()),
            Err(RetryRefusal::Superseded {
                latest_execution_index: 1
            })
        );
    }
}
