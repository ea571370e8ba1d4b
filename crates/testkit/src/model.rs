//! A plain model of the task execution lifecycle, and a runner that drives
//! any implementation of it — the use cases, the HTTP API — through random
//! steps: creations, status changes (each target, with and without payloads,
//! repeated or not), deletes, retries, reads, lists paged three at a time and
//! counts. Every answer, every list and every count must match the model.
//!
//! The model is written as plainly as the rules can be, apart from the code
//! it checks: the allowed moves are a table here, not the domain's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flowexec_domain::TaskStatus;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use uuid::Uuid;

/// One step of a run. Tasks are addressed by their position among the
/// tasks created so far (modulo their number).
#[derive(Debug, Clone)]
pub enum Step {
    Create {
        tasks: usize,
    },
    /// A move to any status, allowed or not.
    Change {
        task: usize,
        to: u8,
        payload: u8,
    },
    /// A move the model allows (the `pick`th of them), so that runs reach
    /// deep into the machine; a deleted task is deleted again.
    Advance {
        task: usize,
        pick: u8,
        payload: u8,
    },
    Delete {
        task: usize,
    },
    Retry {
        task: usize,
    },
    Get {
        task: usize,
    },
    List {
        status: Option<u8>,
    },
    Count,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (1usize..4).prop_map(|tasks| Step::Create { tasks }),
        3 => (any::<usize>(), 0u8..5, 0u8..3).prop_map(|(task, to, payload)| Step::Change { task, to, payload }),
        6 => (any::<usize>(), any::<u8>(), 0u8..3).prop_map(|(task, pick, payload)| Step::Advance { task, pick, payload }),
        1 => any::<usize>().prop_map(|task| Step::Delete { task }),
        2 => any::<usize>().prop_map(|task| Step::Retry { task }),
        1 => any::<usize>().prop_map(|task| Step::Get { task }),
        1 => proptest::option::of(0u8..6).prop_map(|status| Step::List { status }),
        1 => Just(Step::Count),
    ]
}

/// Runs of 1 to `max` steps.
pub fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 1..max)
}

/// A task execution as a subject shows it, and as the model expects it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: Uuid,
    pub flow_execution_id: Uuid,
    pub task_name: String,
    pub execution_index: i32,
    pub status: TaskStatus,
    pub output: Option<Value>,
    pub error: Option<Value>,
    /// The row's version; `None` where the subject does not show it (an
    /// HTTP list item has no `ETag`).
    pub version: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// The answer to a status change (or a delete).
#[derive(Debug)]
pub enum ChangeAnswer {
    /// Made, or a repeat of a change already made: the row as it now is.
    Done(Observed),
    /// Refused by the machine, naming the current status.
    Refused { current: TaskStatus },
}

/// The answer to a retry.
#[derive(Debug)]
pub enum RetryAnswer {
    Created(Observed),
    /// A newer attempt exists.
    Superseded {
        latest_execution_index: i32,
    },
    /// The attempt is queued, running or deleted.
    NotFinished {
        status: TaskStatus,
    },
}

/// What the model drives. Each method is one use (one request over HTTP);
/// `Err` is an answer the model never expects (a fault, a wrong status).
pub trait Subject {
    /// A flow execution of tasks named `t0`, `t1`, … with inputs `0`, `1`, ….
    fn create(&mut self, flow_name: &str, tasks: usize) -> Result<Vec<Observed>, String>;
    fn change(
        &mut self,
        id: Uuid,
        to: TaskStatus,
        payload: Option<Value>,
    ) -> Result<ChangeAnswer, String>;
    fn delete(&mut self, id: Uuid) -> Result<ChangeAnswer, String>;
    fn retry(&mut self, id: Uuid) -> Result<RetryAnswer, String>;
    fn get(&mut self, id: Uuid) -> Result<Observed, String>;
    /// Every page of the organization's task executions with one of
    /// `statuses` (none: the default filter), oldest first, `limit` a page.
    fn list(&mut self, statuses: &[TaskStatus], limit: usize) -> Result<Vec<Observed>, String>;
    /// The organization's counts by status.
    fn count_by_status(&mut self) -> Result<BTreeMap<String, i64>, String>;
}

/// The rules, as plainly as they can be written.
fn allowed(from: TaskStatus, to: TaskStatus) -> bool {
    use TaskStatus::*;
    matches!(
        (from, to),
        (Queued, Running)
            | (Running, Completed | Failed)
            | (Completed | Failed, Stale)
            | (Queued | Running | Completed | Failed | Stale, Deleted)
    )
}

const TARGETS: [TaskStatus; 5] = [
    TaskStatus::Running,
    TaskStatus::Completed,
    TaskStatus::Failed,
    TaskStatus::Stale,
    TaskStatus::Deleted,
];

fn payload(kind: u8) -> Option<Value> {
    match kind {
        0 => None,
        1 => Some(json!({"rows": 1})),
        _ => Some(json!([2, "two"])),
    }
}

fn fail(what: &str, error: String) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {error}"))
}

/// Compares what the subject answered with the model, field by field (the
/// creation time is the subject's: the model records it at creation; the
/// version only where the subject shows it).
fn check(real: &Observed, model: &Observed) -> Result<(), TestCaseError> {
    if real.version.is_none() {
        let shown = Observed {
            version: None,
            ..model.clone()
        };
        prop_assert_eq!(real, &shown);
    } else {
        prop_assert_eq!(real, model);
    }
    Ok(())
}

/// One status change of the modelled task `m` to `to`, checked.
fn change(
    subject: &mut impl Subject,
    m: &mut Observed,
    to: TaskStatus,
    value: Option<Value>,
) -> Result<(), TestCaseError> {
    let answer = subject
        .change(m.id, to, value.clone())
        .map_err(|e| fail("change", e))?;
    let same_result = match to {
        TaskStatus::Completed => m.output == value,
        TaskStatus::Failed => m.error == value,
        _ => true,
    };
    if allowed(m.status, to) {
        m.status = to;
        m.version = m.version.map(|v| v + 1);
        match to {
            TaskStatus::Completed => m.output = value,
            TaskStatus::Failed => m.error = value,
            _ => {}
        }
        let ChangeAnswer::Done(changed) = answer else {
            return Err(TestCaseError::fail(format!("-> {to}: {answer:?}")));
        };
        check(&changed, m)
    } else if m.status == to && same_result {
        // A repeat by the same actor: the row as it is.
        let ChangeAnswer::Done(same) = answer else {
            return Err(TestCaseError::fail(format!("repeat {to}: {answer:?}")));
        };
        check(&same, m)
    } else {
        let refused = matches!(answer, ChangeAnswer::Refused { current } if current == m.status);
        prop_assert!(refused, "{} -> {}: {:?}", m.status, to, answer);
        Ok(())
    }
}

/// Drives `subject` through `steps`, checking every answer against the
/// model. The subject must start with an organization of its own, empty.
pub fn run(subject: &mut impl Subject, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut tasks: Vec<Observed> = Vec::new();
    let mut flows = 0;
    for step in steps {
        match step {
            Step::Create { tasks: n } => {
                flows += 1;
                let created = subject
                    .create(&format!("f{flows}"), n)
                    .map_err(|e| fail("create", e))?;
                prop_assert_eq!(created.len(), n);
                for (i, real) in created.into_iter().enumerate() {
                    let modelled = Observed {
                        task_name: format!("t{i}"),
                        execution_index: 0,
                        status: TaskStatus::Queued,
                        output: None,
                        error: None,
                        version: Some(1),
                        ..real.clone()
                    };
                    check(&real, &modelled)?;
                    tasks.push(modelled);
                }
            }
            Step::Change {
                task,
                to,
                payload: kind,
            } if !tasks.is_empty() => {
                let i = task % tasks.len();
                change(
                    subject,
                    &mut tasks[i],
                    TARGETS[usize::from(to)],
                    payload(kind),
                )?;
            }
            Step::Advance {
                task,
                pick,
                payload: kind,
            } if !tasks.is_empty() => {
                let i = task % tasks.len();
                let moves: Vec<TaskStatus> = TARGETS
                    .into_iter()
                    .filter(|to| allowed(tasks[i].status, *to))
                    .collect();
                let to = moves
                    .get(usize::from(pick) % moves.len().max(1))
                    .copied()
                    .unwrap_or(TaskStatus::Deleted);
                change(subject, &mut tasks[i], to, payload(kind))?;
            }
            Step::Delete { task } if !tasks.is_empty() => {
                let i = task % tasks.len();
                let answer = subject.delete(tasks[i].id).map_err(|e| fail("delete", e))?;
                let m = &mut tasks[i];
                if m.status != TaskStatus::Deleted {
                    m.status = TaskStatus::Deleted;
                    m.version = m.version.map(|v| v + 1);
                }
                let ChangeAnswer::Done(done) = answer else {
                    return Err(TestCaseError::fail(format!("delete: {answer:?}")));
                };
                check(&done, m)?;
            }
            Step::Retry { task } if !tasks.is_empty() => {
                let i = task % tasks.len();
                let m = tasks[i].clone();
                let latest = tasks
                    .iter()
                    .filter(|t| {
                        t.flow_execution_id == m.flow_execution_id && t.task_name == m.task_name
                    })
                    .map(|t| t.execution_index)
                    .max()
                    .unwrap_or(m.execution_index);
                let answer = subject.retry(m.id).map_err(|e| fail("retry", e))?;
                if latest > m.execution_index {
                    let superseded = matches!(
                        answer,
                        RetryAnswer::Superseded { latest_execution_index } if latest_execution_index == latest
                    );
                    prop_assert!(superseded, "a retry of a superseded attempt: {:?}", answer);
                } else if matches!(
                    m.status,
                    TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Stale
                ) {
                    let RetryAnswer::Created(new) = answer else {
                        return Err(TestCaseError::fail(format!("retry: {answer:?}")));
                    };
                    let modelled = Observed {
                        id: new.id,
                        execution_index: m.execution_index + 1,
                        status: TaskStatus::Queued,
                        output: None,
                        error: None,
                        version: Some(1),
                        created_at: new.created_at,
                        ..m.clone()
                    };
                    prop_assert!(modelled.created_at >= m.created_at);
                    check(&new, &modelled)?;
                    tasks.push(modelled);
                } else {
                    let unfinished = matches!(
                        answer,
                        RetryAnswer::NotFinished { status } if status == m.status
                    );
                    prop_assert!(unfinished, "a retry of an unfinished attempt: {:?}", answer);
                }
            }
            Step::Get { task } if !tasks.is_empty() => {
                let m = &tasks[task % tasks.len()];
                let real = subject.get(m.id).map_err(|e| fail("get", e))?;
                check(&real, m)?;
            }
            Step::List { status } => {
                let statuses: Vec<TaskStatus> = status
                    .map(|s| vec![TaskStatus::ALL[usize::from(s)]])
                    .unwrap_or_default();
                let seen = subject.list(&statuses, 3).map_err(|e| fail("list", e))?;
                let mut expected: Vec<&Observed> = tasks
                    .iter()
                    .filter(|t| {
                        if statuses.is_empty() {
                            t.status != TaskStatus::Deleted
                        } else {
                            statuses.contains(&t.status)
                        }
                    })
                    .collect();
                expected.sort_by_key(|t| (t.created_at, t.id));
                prop_assert_eq!(seen.len(), expected.len());
                for (real, model) in seen.iter().zip(expected) {
                    check(real, model)?;
                }
            }
            Step::Count => {
                let counts = subject.count_by_status().map_err(|e| fail("count", e))?;
                let mut expected: BTreeMap<String, i64> = BTreeMap::new();
                for t in tasks.iter().filter(|t| t.status != TaskStatus::Deleted) {
                    *expected.entry(t.status.to_string()).or_default() += 1;
                }
                prop_assert_eq!(counts, expected);
            }
            _ => {}
        }
    }
    Ok(())
}
