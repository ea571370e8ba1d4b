//! Entities and the commands that create them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::access::{Actor, Role};
use crate::error::ParseError;
use crate::ids::{ApiKeyId, FlowExecutionId, OrganizationId, TaskExecutionId};
use crate::json::{self, JsonRejection};
use crate::names::{FlowName, OrganizationName, TaskName, WorkerId};
use crate::policy::RetryPolicy;
use crate::status::TaskStatus;

/// Most tasks one flow execution may be created with.
pub const MAX_TASKS_PER_FLOW: usize = 1000;
/// The longest time limit of a run: seven days.
pub const MAX_TIMEOUT_SECONDS: u32 = 604_800;
/// The highest (and, negated, the lowest) priority of a task.
pub const MAX_PRIORITY: i32 = 1_000_000;

/// How a task is run: chosen when it is created, kept by every retry.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunOptions {
    /// Claimed before queued tasks of lower priority; 0 by default.
    pub priority: i32,
    /// A run that lasts longer fails (`timed_out`); none: no limit.
    pub timeout_seconds: Option<u32>,
    /// Its retry policy; none: the server's default at the time it fails.
    pub retry: Option<RetryPolicy>,
}

impl RunOptions {
    /// The options, if every bound holds; else what is wrong, each message
    /// prefixed with `field` (e.g. `tasks[2]`).
    pub fn validate(self, field: &str) -> Result<Self, ParseError> {
        if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            return Err(ParseError::new(format!(
                "{field}.priority: must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"
            )));
        }
        if let Some(seconds) = self.timeout_seconds {
            if !(1..=MAX_TIMEOUT_SECONDS).contains(&seconds) {
                return Err(ParseError::new(format!(
                    "{field}.timeout_seconds: must be between 1 and {MAX_TIMEOUT_SECONDS}"
                )));
            }
        }
        if let Some(retry) = self.retry {
            retry.validate().map_err(|errors| {
                ParseError::new(
                    errors
                        .iter()
                        .map(|(path, e)| format!("{field}.retry.{path}: {e}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
        }
        Ok(self)
    }
}

/// The worker that holds a running task (or last held it) and its lease:
/// the time by which it must report or send a heartbeat.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lease {
    pub worker_id: Option<WorkerId>,
    /// While running under a worker: when the lease lapses. Cleared when
    /// the run ends.
    pub expires_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
}

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
    pub run: RunOptions,
    /// A queued task is not claimed before this time (a retry's backoff);
    /// none: at once.
    pub not_before: Option<DateTime<Utc>>,
    pub lease: Lease,
    /// A run of a `for_each` task: the position of its item (0-based),
    /// kept by its retries; none for a task that runs once.
    pub iteration: Option<i32>,
}

impl TaskExecution {
    /// The attempt after this one: the next `execution_index` of the same
    /// task, queued (not claimable before `not_before`), with `input` and
    /// this attempt's run options, created by `actor` at `at`. What both a
    /// retry asked for and one a failure's policy brings start from.
    pub fn next_attempt(
        &self,
        input: Option<Value>,
        actor: Actor,
        at: DateTime<Utc>,
        not_before: Option<DateTime<Utc>>,
    ) -> TaskExecution {
        TaskExecution {
            id: TaskExecutionId::generate(),
            flow_execution_id: self.flow_execution_id,
            organization_id: self.organization_id,
            task_name: self.task_name.clone(),
            execution_index: self.execution_index + 1,
            status: TaskStatus::Queued,
            input,
            output: None,
            error: None,
            modified_by: actor,
            created_at: at,
            updated_at: at,
            started_at: None,
            completed_at: None,
            version: 1,
            run: self.run,
            not_before,
            lease: Lease::default(),
            iteration: self.iteration,
        }
    }
}

/// One run of a flow: the parent of its task executions.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowExecution {
    pub id: FlowExecutionId,
    pub organization_id: OrganizationId,
    pub flow_name: FlowName,
    /// The version of the stored definition it runs; none for a flow
    /// execution created with its tasks given (ad hoc).
    pub flow_version: Option<i32>,
    pub input: Option<Value>,
    /// Stored, and changed in the unit of work that changes its tasks.
    pub status: FlowStatus,
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

/// The status of a flow execution. Unless it was cancelled, it follows
/// from the latest attempt of each of its tasks (of each iteration of a
/// `for_each` task), deleted ones left out:
///
/// 1. `failed` when one of them failed;
/// 2. else `completed` when every one completed;
/// 3. else `queued` when every one is queued (no task has run yet), or none
///    is left;
/// 4. else `running` (some run, or some are done and others wait, or a
///    stale one awaits its rerun).
///
/// A run of a stored definition creates each task in the unit of work that
/// makes it ready, so "every one completed" means every task of the
/// definition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStatus {
    Queued,
    Running,
    Completed,
    Failed,
    /// Cancelled: nothing more is created; final.
    Cancelled,
}

impl FlowStatus {
    pub const ALL: [FlowStatus; 5] = [
        FlowStatus::Queued,
        FlowStatus::Running,
        FlowStatus::Completed,
        FlowStatus::Failed,
        FlowStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Queued => "queued",
            FlowStatus::Running => "running",
            FlowStatus::Completed => "completed",
            FlowStatus::Failed => "failed",
            FlowStatus::Cancelled => "cancelled",
        }
    }

    /// The status by the rule above from the statuses of the latest
    /// attempts (deleted ones are left out: no question names them).
    pub fn of_latest(latest: impl IntoIterator<Item = TaskStatus>) -> FlowStatus {
        let latest: Vec<TaskStatus> = latest.into_iter().collect();
        let answer = Self::by_questions(|asked| {
            Ok::<_, std::convert::Infallible>(latest.iter().any(|s| asked.contains(s)))
        });
        match answer {
            Ok(status) => status,
            Err(never) => match never {},
        }
    }

    /// The rule above, asked as at most four questions "is the latest
    /// attempt of some task in one of these statuses?" — what a store
    /// answers from partial indexes without reading a flow execution's
    /// rows (the engine asks them at each change of its tasks).
    pub fn by_questions<E>(
        mut any_latest_in: impl FnMut(&[TaskStatus]) -> Result<bool, E>,
    ) -> Result<FlowStatus, E> {
        use TaskStatus::{Completed, Failed, Queued, Running, Stale};
        if any_latest_in(&[Failed])? {
            return Ok(FlowStatus::Failed);
        }
        if !any_latest_in(&[Queued, Running, Stale])? {
            // Every live latest attempt completed, or none is left.
            return Ok(if any_latest_in(&[Completed])? {
                FlowStatus::Completed
            } else {
                FlowStatus::Queued
            });
        }
        Ok(if any_latest_in(&[Running, Stale, Completed])? {
            FlowStatus::Running
        } else {
            FlowStatus::Queued
        })
    }
}

impl std::fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FlowStatus {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FlowStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ParseError::new(format!("unknown flow status {s:?}")))
    }
}

impl FlowExecutionDetail {
    /// The latest attempt (highest `execution_index`) of each task (of
    /// each iteration of a `for_each` task), by task name then iteration.
    pub fn latest_attempts(&self) -> Vec<&TaskExecution> {
        latest_attempts(&self.task_executions)
    }

    /// How many latest attempts are in each status (every status named,
    /// zero included), in life-cycle order.
    pub fn task_counts(&self) -> Vec<(TaskStatus, usize)> {
        let latest = self.latest_attempts();
        TaskStatus::ALL
            .into_iter()
            .map(|status| (status, latest.iter().filter(|t| t.status == status).count()))
            .collect()
    }
}

/// The latest attempt (highest `execution_index`) of each task of `tasks`
/// (of each iteration of a `for_each` task), by task name then iteration.
pub fn latest_attempts(tasks: &[TaskExecution]) -> Vec<&TaskExecution> {
    let mut latest: std::collections::BTreeMap<(&str, Option<i32>), &TaskExecution> =
        std::collections::BTreeMap::new();
    for task in tasks {
        let entry = latest
            .entry((task.task_name.as_str(), task.iteration))
            .or_insert(task);
        if task.execution_index > entry.execution_index {
            *entry = task;
        }
    }
    latest.into_values().collect()
}

/// One task to create inside a new flow execution.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub task_name: TaskName,
    pub input: Option<Value>,
    pub run: RunOptions,
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
                    run: task.run.validate(&format!("tasks[{i}]"))?,
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
            flow_version: None,
            input: self.input.clone(),
            status: FlowStatus::Queued,
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
                run: task.run,
                not_before: None,
                lease: Lease::default(),
                iteration: None,
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

/// What is shown of a stored key: never its secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: ApiKeyId,
    pub organization_id: OrganizationId,
    pub role: Role,
    pub actor: Actor,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyInfo {
    /// An admin key that is not revoked.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && self.revoked_at.is_none()
    }

    /// Whether this key may be revoked while its organization has
    /// `active_admins` active admin keys: never the last one, so that an
    /// organization cannot lock itself out.
    pub fn check_revocable(&self, active_admins: usize) -> Result<(), crate::RepoError> {
        if self.is_active_admin() && active_admins <= 1 {
            Err(crate::RepoError::LastAdminKey)
        } else {
            Ok(())
        }
    }
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

    #[test]
    fn run_options_are_checked_where_the_command_is_made() {
        let ok = RunOptions {
            priority: MAX_PRIORITY,
            timeout_seconds: Some(MAX_TIMEOUT_SECONDS),
            retry: Some(RetryPolicy::default()),
        };
        assert!(ok.validate("tasks[0]").is_ok());
        for (bad, field) in [
            (
                RunOptions {
                    priority: -MAX_PRIORITY - 1,
                    ..ok
                },
                "tasks[0].priority",
            ),
            (
                RunOptions {
                    timeout_seconds: Some(0),
                    ..ok
                },
                "tasks[0].timeout_seconds",
            ),
            (
                RunOptions {
                    retry: Some(RetryPolicy {
                        max_attempts: 0,
                        ..RetryPolicy::default()
                    }),
                    ..ok
                },
                "tasks[0].retry.max_attempts",
            ),
        ] {
            let error = bad
                .validate("tasks[0]")
                .err()
                .map(|e| e.message().to_owned());
            assert!(
                error.as_deref().is_some_and(|e| e.starts_with(field)),
                "{error:?}"
            );
        }
    }

    fn task(name: &str) -> Result<NewTask, ParseError> {
        Ok(NewTask {
            task_name: TaskName::parse(name)?,
            input: None,
            run: RunOptions::default(),
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
                run: RunOptions::default(),
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
                run: RunOptions::default(),
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

    /// Attempts: (task name, execution index, status).
    type Attempts<'a> = &'a [(&'a str, i32, TaskStatus)];

    fn detail_with(statuses: Attempts<'_>) -> FlowExecutionDetail {
        let new = NewFlowExecution::new(
            FlowName::parse("f").unwrap_or_else(|_| unreachable!()),
            None,
            vec![NewTask {
                task_name: TaskName::parse("x").unwrap_or_else(|_| unreachable!()),
                input: None,
                run: RunOptions::default(),
            }],
        )
        .unwrap_or_else(|_| unreachable!());
        let creation = new.plan(
            OrganizationId::generate(),
            Actor::System,
            DateTime::default(),
        );
        let template = creation.task_executions[0].clone();
        FlowExecutionDetail {
            flow_execution: creation.flow_execution,
            task_executions: statuses
                .iter()
                .map(|(name, index, status)| TaskExecution {
                    id: TaskExecutionId::generate(),
                    task_name: TaskName::parse(*name).unwrap_or_else(|_| unreachable!()),
                    execution_index: *index,
                    status: *status,
                    ..template.clone()
                })
                .collect(),
        }
    }

    #[test]
    fn a_flows_status_follows_the_latest_attempt_of_each_task() {
        use TaskStatus::*;
        let cases: [(Attempts<'_>, FlowStatus); 10] = [
            (&[("a", 0, Queued), ("b", 0, Queued)], FlowStatus::Queued),
            (&[("a", 0, Running), ("b", 0, Queued)], FlowStatus::Running),
            (
                &[("a", 0, Completed), ("b", 0, Queued)],
                FlowStatus::Running,
            ),
            (
                &[("a", 0, Completed), ("b", 0, Completed)],
                FlowStatus::Completed,
            ),
            (&[("a", 0, Failed), ("b", 0, Running)], FlowStatus::Failed),
            // A failed attempt retried: the retry counts, not the failure.
            (
                &[("a", 0, Failed), ("a", 1, Completed), ("b", 0, Completed)],
                FlowStatus::Completed,
            ),
            // A deleted task is left out.
            (
                &[("a", 0, Completed), ("b", 0, Deleted)],
                FlowStatus::Completed,
            ),
            // None left: queued.
            (&[("a", 0, Deleted)], FlowStatus::Queued),
            // A stale one awaits its rerun.
            (&[("a", 0, Stale), ("b", 0, Queued)], FlowStatus::Running),
            (&[("a", 0, Stale), ("b", 0, Completed)], FlowStatus::Running),
        ];
        for (tasks, expected) in cases {
            assert_eq!(
                FlowStatus::of_latest(
                    detail_with(tasks)
                        .latest_attempts()
                        .iter()
                        .map(|t| t.status)
                ),
                expected,
                "{tasks:?}"
            );
        }
        let counts =
            detail_with(&[("a", 0, Failed), ("a", 1, Queued), ("b", 0, Stale)]).task_counts();
        assert_eq!(counts[0], (Queued, 1));
        assert_eq!(
            counts.iter().find(|(s, _)| *s == Failed),
            Some(&(Failed, 0))
        );
        assert_eq!(counts.iter().find(|(s, _)| *s == Stale), Some(&(Stale, 1)));
    }
}
