//! Handing work to workers, decided here: a [`Claim`] says which queued
//! tasks a worker may take and what taking one writes (the task running
//! under the worker's lease, and its event); a [`Heartbeat`] extends a
//! lease; [`next_attempt`] is the retry a failure brings under its
//! policy. Stores choose the rows (the oldest claimable of the highest
//! priority, skipping rows another claim holds) and write what is decided
//! here.

use chrono::{DateTime, Duration, Utc};

use crate::access::Actor;
use crate::entities::{Lease, TaskExecution, TaskExecutionEvent};
use crate::ids::TaskExecutionId;
use crate::names::{TaskName, WorkerId};
use crate::policy::RetryPolicy;
use crate::status::TaskStatus;

/// Most tasks one claim may take.
pub const MAX_CLAIM_LIMIT: usize = 500;
/// The shortest and longest lease a worker may ask for, in seconds.
pub const LEASE_SECONDS: std::ops::RangeInclusive<u32> = 5..=3600;

/// A worker's request for up to `limit` queued tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub worker_id: WorkerId,
    /// Only tasks of these names; empty: any.
    pub task_names: Vec<TaskName>,
    pub limit: usize,
    /// Becomes `modified_by` and the events' actor.
    pub actor: Actor,
    pub at: DateTime<Utc>,
    /// When the leases of the claimed tasks lapse.
    pub lease_expires_at: DateTime<Utc>,
}

impl Claim {
    /// A claim by `worker_id` at `at` with a lease of `lease_seconds`.
    pub fn new(
        worker_id: WorkerId,
        task_names: Vec<TaskName>,
        limit: usize,
        lease_seconds: u32,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            worker_id,
            task_names,
            limit,
            actor,
            at,
            lease_expires_at: at + Duration::seconds(i64::from(lease_seconds)),
        }
    }

    /// Whether `row` may be taken by this claim: queued, due, and of one of
    /// the names asked for.
    pub fn may_take(&self, row: &TaskExecution) -> bool {
        row.status == TaskStatus::Queued
            && row.not_before.is_none_or(|t| t <= self.at)
            && (self.task_names.is_empty() || self.task_names.contains(&row.task_name))
    }

    /// The row once claimed: running under the worker's lease, started now,
    /// its version bumped.
    pub fn applied_to(&self, before: &TaskExecution) -> TaskExecution {
        let mut after = before.clone();
        after.status = TaskStatus::Running;
        after.version = before.version + 1;
        after.modified_by = self.actor;
        after.updated_at = self.at;
        after.started_at = Some(self.at);
        after.lease = Lease {
            worker_id: Some(self.worker_id.clone()),
            expires_at: Some(self.lease_expires_at),
            heartbeat_at: Some(self.at),
        };
        after
    }

    /// The event of claiming task `id`.
    pub fn event(&self, id: TaskExecutionId) -> TaskExecutionEvent {
        TaskExecutionEvent {
            task_execution_id: id,
            from: Some(TaskStatus::Queued),
            to: TaskStatus::Running,
            actor: self.actor,
            reason: Some(self.reason()),
            created_at: self.at,
        }
    }

    /// The reason recorded on each claim's event.
    pub fn reason(&self) -> String {
        format!("claimed by worker {}", self.worker_id)
    }
}

/// A worker's heartbeat on a task it holds: the lease now lapses at
/// `lease_expires_at`. Extends a lease without a change of status, so the
/// version (the `ETag`) stays as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub task_execution_id: TaskExecutionId,
    pub worker_id: WorkerId,
    pub at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
}

impl Heartbeat {
    pub fn new(
        task_execution_id: TaskExecutionId,
        worker_id: WorkerId,
        lease_seconds: u32,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            task_execution_id,
            worker_id,
            at,
            lease_expires_at: at + Duration::seconds(i64::from(lease_seconds)),
        }
    }

    /// Whether the lease of `row` may be extended: running, held by this
    /// worker.
    pub fn applies_to(&self, row: &TaskExecution) -> bool {
        row.status == TaskStatus::Running && row.lease.worker_id.as_ref() == Some(&self.worker_id)
    }

    /// The row with its lease extended.
    pub fn applied_to(&self, before: &TaskExecution) -> TaskExecution {
        let mut after = before.clone();
        after.lease.expires_at = Some(self.lease_expires_at);
        after.lease.heartbeat_at = Some(self.at);
        after
    }
}

/// Why a running task is overdue: the sweeper fails it with this as its
/// `error` and retries it by its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// The run lasted longer than the task's `timeout_seconds`.
    TimedOut,
    /// The worker neither reported nor sent a heartbeat before its lease
    /// lapsed (it died, hung or lost the network).
    LeaseExpired,
}

impl Overdue {
    /// Whether `row` is overdue at `at`: running, and past its time limit
    /// (counted from `started_at`; this comes first) or its lease.
    pub fn of(row: &TaskExecution, at: DateTime<Utc>) -> Option<Self> {
        if row.status != TaskStatus::Running {
            return None;
        }
        let limit = row.started_at.zip(row.run.timeout_seconds);
        if limit
            .is_some_and(|(started, seconds)| started + Duration::seconds(i64::from(seconds)) <= at)
        {
            return Some(Self::TimedOut);
        }
        row.lease
            .expires_at
            .is_some_and(|expires| expires < at)
            .then_some(Self::LeaseExpired)
    }

    pub const fn code(self) -> &'static str {
        match self {
            Self::TimedOut => "timed_out",
            Self::LeaseExpired => "lease_expired",
        }
    }

    /// The failure's `error`: `{"code": "timed_out"}` or `{"code":
    /// "lease_expired"}`, with the worker that held the task.
    pub fn error(self, row: &TaskExecution) -> serde_json::Value {
        let mut error = serde_json::json!({"code": self.code()});
        if let Some(worker) = &row.lease.worker_id {
            error["worker_id"] = serde_json::Value::String(worker.to_string());
        }
        error
    }
}

/// The attempt that follows `failed` (just moved to failed at `at`) under
/// `policy`, when attempts remain: the next `execution_index`, the same
/// input and run options, queued until the policy's delay has passed
/// (`draw`: a uniform random number in [0, 1) for the jitter), created by
/// `actor`; and its creation event. `None` when the policy allows no more.
pub fn next_attempt(
    failed: &TaskExecution,
    policy: &RetryPolicy,
    actor: Actor,
    at: DateTime<Utc>,
    draw: f64,
) -> Option<(TaskExecution, TaskExecutionEvent)> {
    next_attempt_numbered(failed, Numbering::after(failed), policy, actor, at, draw)
}

/// Where a new attempt stands: how many attempts its run has had (the
/// task's, or its `for_each` iteration's), and the `execution_index` it
/// takes (the next of the task's, whose iterations share the numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    pub attempts: u32,
    pub next_index: i32,
}

impl Numbering {
    /// After `failed`, the latest attempt of a task that runs once.
    pub fn after(failed: &TaskExecution) -> Self {
        let next_index = failed.execution_index.saturating_add(1);
        Self {
            attempts: u32::try_from(next_index).unwrap_or(u32::MAX),
            next_index,
        }
    }
}

/// [`next_attempt`] numbered as `numbering` says: what a failed run of a
/// `for_each` iteration brings.
pub fn next_attempt_numbered(
    failed: &TaskExecution,
    numbering: Numbering,
    policy: &RetryPolicy,
    actor: Actor,
    at: DateTime<Utc>,
    draw: f64,
) -> Option<(TaskExecution, TaskExecutionEvent)> {
    let attempt = numbering.attempts;
    if !policy.allows_another(attempt) {
        return None;
    }
    let delay = policy.delay(attempt, draw);
    let not_before = Duration::from_std(delay).ok().map(|d| at + d);
    let mut next = failed.next_attempt(
        failed.input.clone(),
        actor,
        at,
        not_before.filter(|t| *t > at),
    );
    next.execution_index = numbering.next_index;
    let event = TaskExecutionEvent {
        task_execution_id: next.id,
        from: None,
        to: TaskStatus::Queued,
        actor,
        reason: Some(format!(
            "automatic retry {attempt} of {} after attempt {} failed",
            policy.max_attempts - 1,
            failed.execution_index
        )),
        created_at: at,
    };
    Some((next, event))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::entities::RunOptions;
    use crate::ids::{FlowExecutionId, OrganizationId};
    use crate::policy::{Backoff, Jitter};

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + second, 0).unwrap_or_default()
    }

    fn worker(name: &str) -> WorkerId {
        WorkerId::parse(name).unwrap_or_else(|_| unreachable!())
    }

    fn task(status: TaskStatus, name: &str, index: i32) -> TaskExecution {
        TaskExecution {
            id: TaskExecutionId::generate(),
            flow_execution_id: FlowExecutionId::generate(),
            organization_id: OrganizationId::generate(),
            task_name: TaskName::parse(name).unwrap_or_else(|_| unreachable!()),
            execution_index: index,
            status,
            input: Some(json!({"day": 1})),
            output: None,
            error: None,
            modified_by: Actor::System,
            created_at: at(0),
            updated_at: at(0),
            started_at: None,
            completed_at: None,
            version: 1,
            run: RunOptions::default(),
            not_before: None,
            lease: Lease::default(),
            iteration: None,
        }
    }

    fn claim(names: &[&str]) -> Claim {
        Claim::new(
            worker("w1"),
            names
                .iter()
                .map(|n| TaskName::parse(*n).unwrap_or_else(|_| unreachable!()))
                .collect(),
            10,
            60,
            Actor::Integration,
            at(100),
        )
    }

    #[test]
    fn a_claim_takes_queued_due_tasks_of_the_names_asked() {
        let any = claim(&[]);
        assert!(any.may_take(&task(TaskStatus::Queued, "a", 0)));
        assert!(!any.may_take(&task(TaskStatus::Running, "a", 0)));
        let mut later = task(TaskStatus::Queued, "a", 0);
        later.not_before = Some(at(101));
        assert!(!any.may_take(&later));
        later.not_before = Some(at(100));
        assert!(any.may_take(&later));
        let only_b = claim(&["b"]);
        assert!(!only_b.may_take(&task(TaskStatus::Queued, "a", 0)));
        assert!(only_b.may_take(&task(TaskStatus::Queued, "b", 0)));
    }

    #[test]
    fn a_claimed_task_runs_under_the_workers_lease() {
        let c = claim(&[]);
        let before = task(TaskStatus::Queued, "a", 0);
        let after = c.applied_to(&before);
        assert_eq!(after.status, TaskStatus::Running);
        assert_eq!(after.version, 2);
        assert_eq!(after.started_at, Some(at(100)));
        assert_eq!(after.modified_by, Actor::Integration);
        assert_eq!(after.lease.worker_id, Some(worker("w1")));
        assert_eq!(after.lease.expires_at, Some(at(160)));
        assert_eq!(after.lease.heartbeat_at, Some(at(100)));
        let event = c.event(before.id);
        assert_eq!(
            (event.from, event.to, event.reason.as_deref()),
            (
                Some(TaskStatus::Queued),
                TaskStatus::Running,
                Some("claimed by worker w1")
            )
        );
    }

    #[test]
    fn a_heartbeat_extends_only_the_holders_lease_and_keeps_the_version() {
        let running = claim(&[]).applied_to(&task(TaskStatus::Queued, "a", 0));
        let beat = Heartbeat::new(running.id, worker("w1"), 30, at(120));
        assert!(beat.applies_to(&running));
        let after = beat.applied_to(&running);
        assert_eq!(after.lease.expires_at, Some(at(150)));
        assert_eq!(after.lease.heartbeat_at, Some(at(120)));
        assert_eq!(after.version, running.version);
        assert!(!Heartbeat::new(running.id, worker("w2"), 30, at(120)).applies_to(&running));
        let mut done = running;
        done.status = TaskStatus::Completed;
        assert!(!beat.applies_to(&done));
    }

    #[test]
    fn a_run_is_overdue_past_its_time_limit_first_then_past_its_lease() {
        let mut running = claim(&[]).applied_to(&task(TaskStatus::Queued, "a", 0));
        // Claimed at 100 with a lease to 160.
        assert_eq!(Overdue::of(&running, at(160)), None);
        assert_eq!(Overdue::of(&running, at(161)), Some(Overdue::LeaseExpired));
        running.run.timeout_seconds = Some(30);
        assert_eq!(Overdue::of(&running, at(129)), None);
        assert_eq!(Overdue::of(&running, at(130)), Some(Overdue::TimedOut));
        assert_eq!(Overdue::of(&running, at(200)), Some(Overdue::TimedOut));
        assert_eq!(
            Overdue::TimedOut.error(&running),
            json!({"code": "timed_out", "worker_id": "w1"})
        );
        let mut done = running;
        done.status = TaskStatus::Failed;
        assert_eq!(Overdue::of(&done, at(1_000)), None);
    }

    #[test]
    fn a_failure_is_followed_while_attempts_remain() {
        let policy = RetryPolicy {
            max_attempts: 3,
            backoff: Backoff {
                initial_ms: 2_000,
                factor: 3.0,
                max_ms: 60_000,
            },
            jitter: Jitter::None,
        };
        let mut failed = task(TaskStatus::Failed, "a", 0);
        failed.run.priority = 7;
        let (next, event) = next_attempt(&failed, &policy, Actor::System, at(10), 0.5)
            .unwrap_or_else(|| unreachable!());
        assert_eq!(next.execution_index, 1);
        assert_eq!(next.status, TaskStatus::Queued);
        assert_eq!(next.input, failed.input);
        assert_eq!(next.run.priority, 7);
        assert_eq!(next.not_before, Some(at(12)));
        assert_eq!(event.task_execution_id, next.id);
        failed.execution_index = 1;
        let (second, _) = next_attempt(&failed, &policy, Actor::System, at(10), 0.5)
            .unwrap_or_else(|| unreachable!());
        assert_eq!(second.not_before, Some(at(16)));
        failed.execution_index = 2;
        assert!(next_attempt(&failed, &policy, Actor::System, at(10), 0.5).is_none());
    }
}
