//! Status changes, decided here: a [`Transition`] names a change and carries
//! only what that change records; [`Transition::plan`] turns it into a
//! [`StatusChange`], everything a store writes for it — the compare-and-set
//! (the statuses the row may have, the status it gets) and every field it
//! sets, and the event it records. A store applies the plan as one
//! compare-and-set with its event; it decides nothing.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::access::Actor;
use crate::entities::{TaskExecution, TaskExecutionEvent};
use crate::error::RepoError;
use crate::ids::TaskExecutionId;
use crate::status::TaskStatus;

/// A requested status change of one task execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// queued → running: sets `started_at`.
    Start,
    /// running → completed: sets `completed_at` and `output` (none is null).
    Complete { output: Option<Value> },
    /// running → failed: sets `completed_at` and `error` (none is null).
    Fail { error: Option<Value> },
    /// any but deleted → deleted (soft delete).
    Delete,
    /// completed or failed → stale: its data is outdated.
    MarkStale,
}

impl Transition {
    /// The status the change leads to.
    pub const fn to(&self) -> TaskStatus {
        match self {
            Self::Start => TaskStatus::Running,
            Self::Complete { .. } => TaskStatus::Completed,
            Self::Fail { .. } => TaskStatus::Failed,
            Self::Delete => TaskStatus::Deleted,
            Self::MarkStale => TaskStatus::Stale,
        }
    }

    /// What the change writes when `actor` makes it at `at`.
    pub fn plan(
        self,
        task_execution_id: TaskExecutionId,
        actor: Actor,
        reason: Option<String>,
        at: DateTime<Utc>,
    ) -> StatusChange {
        let to = self.to();
        let (starts, finishes, result) = match self {
            Self::Start => (true, false, ResultWrite::Keep),
            Self::Complete { output } => (false, true, ResultWrite::Output(output)),
            Self::Fail { error } => (false, true, ResultWrite::Error(error)),
            Self::Delete | Self::MarkStale => (false, false, ResultWrite::Keep),
        };
        StatusChange {
            task_execution_id,
            from: TaskStatus::allowed_from(to),
            to,
            modified_by: actor,
            at,
            starts,
            finishes,
            result,
            reason,
        }
    }
}

/// What a change writes to `output` and `error`.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultWrite {
    /// Both stay as they are.
    Keep,
    /// `output` is set (`None`: null).
    Output(Option<Value>),
    /// `error` is set (`None`: null).
    Error(Option<Value>),
}

/// Everything one status change writes, as decided by [`Transition::plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub task_execution_id: TaskExecutionId,
    /// The statuses the row may have for the change to apply: the
    /// compare-and-set's condition.
    pub from: Vec<TaskStatus>,
    pub to: TaskStatus,
    /// Becomes `modified_by` and the event's actor.
    pub modified_by: Actor,
    /// Becomes `updated_at`, the event's time, and `started_at` or
    /// `completed_at` when the change sets them.
    pub at: DateTime<Utc>,
    /// Sets `started_at`.
    pub starts: bool,
    /// Sets `completed_at`.
    pub finishes: bool,
    pub result: ResultWrite,
    /// Free text recorded on the event.
    pub reason: Option<String>,
}

impl StatusChange {
    /// Whether a row in status `current` may take the change.
    pub fn applies_to(&self, current: TaskStatus) -> bool {
        self.from.contains(&current)
    }

    /// The refusal for a row in status `current`.
    pub fn refusal(&self, current: TaskStatus) -> RepoError {
        RepoError::InvalidTransition {
            current,
            requested: self.to,
        }
    }

    /// The row after the change, given the row before it. (Stores that write
    /// the columns one by one take their values from here.)
    pub fn applied_to(&self, before: &TaskExecution) -> TaskExecution {
        let mut after = before.clone();
        after.status = self.to;
        after.modified_by = self.modified_by;
        after.updated_at = self.at;
        if self.starts {
            after.started_at = Some(self.at);
        }
        if self.finishes {
            after.completed_at = Some(self.at);
        }
        match &self.result {
            ResultWrite::Keep => {}
            ResultWrite::Output(output) => after.output = output.clone(),
            ResultWrite::Error(error) => after.error = error.clone(),
        }
        after
    }

    /// The event the change records, given the status the row had.
    pub fn event(&self, from: TaskStatus) -> TaskExecutionEvent {
        TaskExecutionEvent {
            task_execution_id: self.task_execution_id,
            from: Some(from),
            to: self.to,
            actor: self.modified_by,
            reason: self.reason.clone(),
            created_at: self.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::{FlowExecutionId, OrganizationId};
    use crate::names::TaskName;

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(second, 0).unwrap_or_default()
    }

    fn queued() -> TaskExecution {
        TaskExecution {
            id: TaskExecutionId::generate(),
            flow_execution_id: FlowExecutionId::generate(),
            organization_id: OrganizationId::generate(),
            task_name: TaskName::parse("t").unwrap_or_else(|_| unreachable!()),
            execution_index: 0,
            status: TaskStatus::Queued,
            input: Some(json!({"in": 1})),
            output: None,
            error: None,
            modified_by: Actor::System,
            created_at: at(1),
            updated_at: at(1),
            started_at: None,
            completed_at: None,
        }
    }

    #[test]
    fn every_transition_leads_to_its_status_from_the_statuses_the_machine_allows() {
        for (transition, to) in [
            (Transition::Start, TaskStatus::Running),
            (Transition::Complete { output: None }, TaskStatus::Completed),
            (Transition::Fail { error: None }, TaskStatus::Failed),
            (Transition::Delete, TaskStatus::Deleted),
            (Transition::MarkStale, TaskStatus::Stale),
        ] {
            let plan = transition.plan(TaskExecutionId::generate(), Actor::System, None, at(2));
            assert_eq!(plan.to, to);
            assert_eq!(plan.from, TaskStatus::allowed_from(to));
            for from in TaskStatus::ALL {
                assert_eq!(
                    plan.applies_to(from),
                    from.can_transition_to(to),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn starting_sets_started_at_and_nothing_of_the_result() {
        let before = queued();
        let user = Actor::User(uuid::Uuid::new_v4());
        let plan = Transition::Start.plan(before.id, user, Some("claimed".into()), at(5));
        let after = plan.applied_to(&before);
        assert_eq!(after.status, TaskStatus::Running);
        assert_eq!((after.started_at, after.completed_at), (Some(at(5)), None));
        assert_eq!((after.updated_at, after.modified_by), (at(5), user));
        assert_eq!((after.output, after.error), (None, None));
        assert_eq!(after.input, before.input);
        assert_eq!(
            plan.event(TaskStatus::Queued),
            TaskExecutionEvent {
                task_execution_id: before.id,
                from: Some(TaskStatus::Queued),
                to: TaskStatus::Running,
                actor: user,
                reason: Some("claimed".into()),
                created_at: at(5),
            }
        );
    }

    #[test]
    fn completing_and_failing_set_completed_at_and_their_own_result_only() {
        let mut running = queued();
        running.status = TaskStatus::Running;
        running.started_at = Some(at(2));
        let done = Transition::Complete {
            output: Some(json!([1, 2])),
        }
        .plan(running.id, Actor::System, None, at(9))
        .applied_to(&running);
        assert_eq!(
            (done.started_at, done.completed_at),
            (Some(at(2)), Some(at(9)))
        );
        assert_eq!((done.output, done.error), (Some(json!([1, 2])), None));

        let failed = Transition::Fail {
            error: Some(json!({"message": "boom"})),
        }
        .plan(running.id, Actor::System, None, at(9))
        .applied_to(&running);
        assert_eq!(failed.output, None);
        assert_eq!(failed.error, Some(json!({"message": "boom"})));
    }

    #[test]
    fn deleting_and_marking_stale_keep_the_result_and_times() {
        let mut completed = queued();
        completed.status = TaskStatus::Completed;
        completed.output = Some(json!("kept"));
        completed.completed_at = Some(at(3));
        for transition in [Transition::MarkStale, Transition::Delete] {
            let after = transition
                .plan(completed.id, Actor::Integration, None, at(7))
                .applied_to(&completed);
            assert_eq!(after.output, Some(json!("kept")));
            assert_eq!(after.completed_at, Some(at(3)));
            assert_eq!(after.updated_at, at(7));
        }
    }
}
