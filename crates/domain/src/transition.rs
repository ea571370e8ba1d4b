//! Status changes, decided here: a [`Transition`] names a change and carries
//! only what that change records; [`Transition::plan`] turns it into a
//! [`StatusChange`], everything a store writes for it — the compare-and-set
//! (the statuses and, with `If-Match`, the versions the row may have; the
//! status it gets) and every field it sets, and the event it records. A
//! store applies the plan as one compare-and-set with its event; it decides
//! nothing. When the store refuses, [`StatusChange::refused`] decides what
//! the refusal means: a repeat of the change (answered as a success), a
//! stale version, or a transition the machine forbids.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::access::Actor;
use crate::entities::{TaskExecution, TaskExecutionEvent};
use crate::error::RepoError;
use crate::ids::TaskExecutionId;
use crate::names::WorkerId;
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
            if_match: IfMatch::Any,
            to,
            modified_by: actor,
            at,
            starts,
            finishes,
            result,
            reason,
            held_by: None,
        }
    }
}

/// An `If-Match` precondition: the versions (`ETag`s) a row may have for a
/// change to apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    /// No precondition (no header, or `*` on a row that exists).
    #[default]
    Any,
    /// One of these versions; an empty list matches none.
    Versions(Vec<i64>),
}

impl IfMatch {
    pub fn matches(&self, version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::Versions(versions) => versions.contains(&version),
        }
    }
}

/// What a store answers to a [`StatusChange`] on a row that exists.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    /// The change applied: the row after it.
    Changed(TaskExecution),
    /// The compare-and-set failed: the row as it is, unchanged (see
    /// [`StatusChange::refused`]).
    Refused(TaskExecution),
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
    /// The versions the row may have (`If-Match`).
    pub if_match: IfMatch,
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
    /// The worker that must hold the row for the change to apply (a
    /// worker's report); `None`: whoever holds it, if anyone.
    pub held_by: Option<WorkerId>,
}

impl StatusChange {
    /// Applies only if the row's version meets `if_match`.
    pub fn if_match(mut self, if_match: IfMatch) -> Self {
        self.if_match = if_match;
        self
    }

    /// Applies only if `worker` holds the row: a worker's report on a task
    /// it claimed.
    pub fn held_by(mut self, worker: WorkerId) -> Self {
        self.held_by = Some(worker);
        self
    }

    /// Whether the row is held as the change requires.
    pub fn holder_matches(&self, row: &TaskExecution) -> bool {
        self.held_by
            .as_ref()
            .is_none_or(|worker| row.lease.worker_id.as_ref() == Some(worker))
    }

    /// Whether a row in status `current` may take the change.
    pub fn applies_to(&self, current: TaskStatus) -> bool {
        self.from.contains(&current)
    }

    /// Whether a row at `version` meets the change's precondition.
    pub fn version_matches(&self, version: i64) -> bool {
        self.if_match.matches(version)
    }

    /// Whether the change applies to `row`: its compare-and-set.
    pub fn accepts(&self, row: &TaskExecution) -> bool {
        self.applies_to(row.status) && self.version_matches(row.version) && self.holder_matches(row)
    }

    /// Whether `row`, whose latest event is `last`, is what this very change
    /// left behind: the same status, the same output or error, and an event
    /// to that status by the same actor with the same reason (a delete
    /// carries no payload: any reason); with `If-Match`, the row's version
    /// must be the one right after a version it named. A client repeating a
    /// change whose answer it lost gets a success, and nothing is recorded
    /// twice; another actor, or another payload, gets the refusal.
    pub fn repeats(&self, row: &TaskExecution, last: Option<&TaskExecutionEvent>) -> bool {
        let same_result = match &self.result {
            ResultWrite::Keep => true,
            ResultWrite::Output(output) => row.output == *output,
            ResultWrite::Error(error) => row.error == *error,
        };
        let same_event = last.is_some_and(|event| {
            event.to == self.to
                && event.actor == self.modified_by
                && (self.to == TaskStatus::Deleted || event.reason == self.reason)
        });
        row.status == self.to
            && same_result
            && same_event
            && self.holder_matches(row)
            && self.if_match.matches(row.version - 1)
    }

    /// What a refusal of the store means, given the row as it is and its
    /// latest event: the row itself when the change is a repeat
    /// ([`repeats`](Self::repeats)); for a worker's report, that the task
    /// is no longer running under that worker ([`RepoError::LeaseLost`]);
    /// else a stale `If-Match` version ([`RepoError::PreconditionFailed`])
    /// before a transition the machine forbids
    /// ([`RepoError::InvalidTransition`]), as HTTP evaluates preconditions
    /// before the request's own semantics.
    pub fn refused(
        &self,
        row: TaskExecution,
        last: Option<&TaskExecutionEvent>,
    ) -> Result<TaskExecution, RepoError> {
        if self.repeats(&row, last) {
            Ok(row)
        } else if self.held_by.is_some() {
            Err(RepoError::LeaseLost {
                current: row.status,
            })
        } else if !self.version_matches(row.version) {
            Err(RepoError::PreconditionFailed {
                current_version: row.version,
            })
        } else {
            Err(RepoError::InvalidTransition {
                current: row.status,
                requested: self.to,
            })
        }
    }

    /// The row after the change, given the row before it. (Stores that write
    /// the columns one by one take their values from here.)
    pub fn applied_to(&self, before: &TaskExecution) -> TaskExecution {
        let mut after = before.clone();
        after.status = self.to;
        after.version = before.version + 1;
        after.modified_by = self.modified_by;
        after.updated_at = self.at;
        if self.starts {
            after.started_at = Some(self.at);
        }
        if self.finishes {
            after.completed_at = Some(self.at);
        }
        if self.to != TaskStatus::Running {
            // Out of running, the lease is over (finished, or deleted).
            after.lease.expires_at = None;
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
            version: 1,
            lease: crate::Lease::default(),
            iteration: None,
            not_before: None,
            run: crate::RunOptions::default(),
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

    fn event(to: TaskStatus, reason: Option<&str>) -> TaskExecutionEvent {
        TaskExecutionEvent {
            task_execution_id: TaskExecutionId::generate(),
            from: None,
            to,
            actor: Actor::System,
            reason: reason.map(str::to_owned),
            created_at: at(1),
        }
    }

    #[test]
    fn a_change_bumps_the_version_and_if_match_conditions_it() {
        let before = queued();
        let plan = Transition::Start.plan(before.id, Actor::System, None, at(2));
        assert_eq!(plan.applied_to(&before).version, before.version + 1);
        assert!(plan.accepts(&before));
        let stale = plan.clone().if_match(IfMatch::Versions(vec![7, 8]));
        assert!(!stale.accepts(&before));
        assert!(stale.if_match(IfMatch::Versions(vec![1])).accepts(&before));
        assert!(!plan.if_match(IfMatch::Versions(vec![])).accepts(&before));
    }

    #[test]
    fn a_repeat_with_the_same_payload_is_the_row_itself_and_any_other_refusal_an_error() {
        let mut done = queued();
        done.status = TaskStatus::Completed;
        done.output = Some(json!({"rows": 3}));
        done.version = 3;
        let complete = |output: Value, reason: Option<&str>| {
            Transition::Complete {
                output: Some(output),
            }
            .plan(done.id, Actor::System, reason.map(str::to_owned), at(9))
        };
        let last = event(TaskStatus::Completed, Some("ok"));
        // The same change again: the row, even with the If-Match the client
        // sent the first time (its own change bumped the version).
        let repeat = complete(json!({"rows": 3}), Some("ok")).if_match(IfMatch::Versions(vec![2]));
        assert_eq!(
            repeat.refused(done.clone(), Some(&last)).ok(),
            Some(done.clone())
        );
        // Another output or reason: a conflict naming the current status.
        for other in [
            complete(json!({"rows": 4}), Some("ok")),
            complete(json!({"rows": 3}), None),
        ] {
            assert!(matches!(
                other.refused(done.clone(), Some(&last)),
                Err(RepoError::InvalidTransition {
                    current: TaskStatus::Completed,
                    requested: TaskStatus::Completed
                })
            ));
        }
        // Not a repeat and a stale version: the precondition fails first.
        let fail = Transition::Fail { error: None }
            .plan(done.id, Actor::System, None, at(9))
            .if_match(IfMatch::Versions(vec![2]));
        assert!(matches!(
            fail.refused(done.clone(), Some(&last)),
            Err(RepoError::PreconditionFailed { current_version: 3 })
        ));
        assert!(matches!(
            fail.if_match(IfMatch::Any).refused(done, Some(&last)),
            Err(RepoError::InvalidTransition {
                current: TaskStatus::Completed,
                requested: TaskStatus::Failed
            })
        ));
    }

    #[test]
    fn another_actor_or_an_if_match_of_another_version_is_no_repeat() {
        let mut done = queued();
        done.status = TaskStatus::Running;
        done.version = 2;
        let start = |actor| Transition::Start.plan(done.id, actor, None, at(4));
        let mut last = event(TaskStatus::Running, None);
        last.actor = Actor::Integration;
        assert!(start(Actor::Integration).repeats(&done, Some(&last)));
        assert!(!start(Actor::System).repeats(&done, Some(&last)));
        let named = |versions| start(Actor::Integration).if_match(IfMatch::Versions(versions));
        assert!(named(vec![1]).repeats(&done, Some(&last)));
        assert!(!named(vec![2]).repeats(&done, Some(&last)));
    }

    #[test]
    fn deleting_twice_is_a_repeat() {
        let mut deleted = queued();
        deleted.status = TaskStatus::Deleted;
        let delete = Transition::Delete.plan(deleted.id, Actor::System, None, at(3));
        // Deleted with a reason through PATCH, deleted again through DELETE.
        let last = event(TaskStatus::Deleted, Some("obsolete"));
        assert!(delete.repeats(&deleted, Some(&last)));
        assert!(!delete.repeats(&deleted, None));
    }
}
