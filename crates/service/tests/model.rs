//! A model-based property test of the lifecycle: random sequences of
//! creations, status changes (each target, with and without payloads,
//! repeated or not), deletes, retries, lists and counts, run against the
//! real use cases on a SQLite file and, step by step, against a plain model
//! of the rules written here. Every answer, every list (paged three at a
//! time) and every count must match the model.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flowexec_domain::{
    Actor, FixedClock, FlowExecutionId, FlowName, IfMatch, NewFlowExecution, NewTask, Order,
    OrganizationName, Principal, RetryRefusal, RetryRequest, Role, TaskExecution,
    TaskExecutionFilter, TaskExecutionId, TaskName, TaskStatus, Transition,
};
use flowexec_persistence::SqliteStore;
use flowexec_service::{
    Admin, Authenticate, ChangeRequest, ExecutionUseCases, Executions, KeyAuthenticator,
    KeyCacheSettings, PageRequest, ServiceError,
};
use flowexec_testkit::TestSqlite;
use proptest::prelude::*;
use serde_json::{json, Value};

/// One step of a run. Tasks are addressed by their position among the
/// tasks created so far (modulo their number).
#[derive(Debug, Clone)]
enum Step {
    Create { tasks: usize },
    Change { task: usize, to: u8, payload: u8 },
    Delete { task: usize },
    Retry { task: usize },
    List { status: Option<u8> },
    Count,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (1usize..4).prop_map(|tasks| Step::Create { tasks }),
        6 => (any::<usize>(), 0u8..5, 0u8..3).prop_map(|(task, to, payload)| Step::Change { task, to, payload }),
        1 => any::<usize>().prop_map(|task| Step::Delete { task }),
        2 => any::<usize>().prop_map(|task| Step::Retry { task }),
        1 => proptest::option::of(0u8..6).prop_map(|status| Step::List { status }),
        1 => Just(Step::Count),
    ]
}

/// What the model knows of a task execution.
#[derive(Debug, Clone, PartialEq)]
struct Modelled {
    id: TaskExecutionId,
    flow: FlowExecutionId,
    name: String,
    index: i32,
    status: TaskStatus,
    output: Option<Value>,
    error: Option<Value>,
    version: i64,
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

struct World {
    _db: TestSqlite,
    executions: Executions<SqliteStore, FixedClock>,
    principal: Principal,
}

fn world() -> World {
    let at = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let db = TestSqlite::new().unwrap_or_else(|e| panic!("{e}"));
    let store = db.open(2).unwrap_or_else(|e| panic!("{e}"));
    let admin = Admin::with_clock(store.clone(), FixedClock(at));
    let created = admin
        .create_organization(&OrganizationName::parse("model").unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let key = admin
        .create_api_key(created.organization.id, Role::Write, Actor::Integration)
        .unwrap_or_else(|e| panic!("{e}"));
    let principal = KeyAuthenticator::new(store.clone(), &KeyCacheSettings::default())
        .authenticate(&key.plaintext)
        .unwrap_or_else(|e| panic!("{e}"));
    World {
        _db: db,
        executions: Executions::with_clock(store, FixedClock(at)),
        principal,
    }
}

fn check(real: &TaskExecution, model: &Modelled) -> Result<(), TestCaseError> {
    prop_assert_eq!(real.id, model.id);
    prop_assert_eq!(real.status, model.status);
    prop_assert_eq!(&real.output, &model.output);
    prop_assert_eq!(&real.error, &model.error);
    prop_assert_eq!(real.version, model.version);
    prop_assert_eq!(real.execution_index, model.index);
    Ok(())
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let w = world();
    let me = &w.principal;
    let mut tasks: Vec<Modelled> = Vec::new();
    let mut flows = 0;
    for step in steps {
        match step {
            Step::Create { tasks: n } => {
                flows += 1;
                let new = NewFlowExecution::new(
                    FlowName::parse(format!("f{flows}")).unwrap_or_else(|e| panic!("{e}")),
                    None,
                    (0..n)
                        .map(|i| NewTask {
                            task_name: TaskName::parse(format!("t{i}"))
                                .unwrap_or_else(|e| panic!("{e}")),
                            input: Some(json!(i)),
                        })
                        .collect(),
                )
                .unwrap_or_else(|e| panic!("{e}"));
                let created = w
                    .executions
                    .create_flow_execution(me, new)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                for t in created.task_executions {
                    tasks.push(Modelled {
                        id: t.id,
                        flow: t.flow_execution_id,
                        name: t.task_name.to_string(),
                        index: 0,
                        status: TaskStatus::Queued,
                        output: None,
                        error: None,
                        version: 1,
                    });
                }
            }
            Step::Change {
                task,
                to,
                payload: kind,
            } if !tasks.is_empty() => {
                let i = task % tasks.len();
                let to = TARGETS[usize::from(to)];
                let value = payload(kind);
                let transition = match to {
                    TaskStatus::Running => Transition::Start,
                    TaskStatus::Completed => Transition::Complete {
                        output: value.clone(),
                    },
                    TaskStatus::Failed => Transition::Fail {
                        error: value.clone(),
                    },
                    TaskStatus::Stale => Transition::MarkStale,
                    _ => Transition::Delete,
                };
                let answer = w.executions.change_status(
                    me,
                    tasks[i].id,
                    ChangeRequest {
                        transition,
                        reason: None,
                        if_match: IfMatch::Any,
                    },
                );
                let m = &mut tasks[i];
                let same_result = match to {
                    TaskStatus::Completed => m.output == value,
                    TaskStatus::Failed => m.error == value,
                    _ => true,
                };
                if allowed(m.status, to) {
                    m.status = to;
                    m.version += 1;
                    match to {
                        TaskStatus::Completed => m.output = value,
                        TaskStatus::Failed => m.error = value,
                        _ => {}
                    }
                    let changed = answer.map_err(|e| TestCaseError::fail(format!("{to}: {e}")))?;
                    prop_assert!(changed.changed);
                    check(&changed.task_execution, m)?;
                } else if m.status == to && same_result {
                    // A repeat by the same actor: the row as it is.
                    let same =
                        answer.map_err(|e| TestCaseError::fail(format!("repeat {to}: {e}")))?;
                    prop_assert!(!same.changed);
                    check(&same.task_execution, m)?;
                } else {
                    let refused = matches!(
                        answer,
                        Err(ServiceError::InvalidTransition { current, requested }) if current == m.status && requested == to
                    );
                    prop_assert!(refused, "{} -> {}: expected a refusal", m.status, to);
                }
            }
            Step::Delete { task } if !tasks.is_empty() => {
                let i = task % tasks.len();
                let answer = w.executions.change_status(
                    me,
                    tasks[i].id,
                    ChangeRequest {
                        transition: Transition::Delete,
                        reason: None,
                        if_match: IfMatch::Any,
                    },
                );
                let m = &mut tasks[i];
                if m.status != TaskStatus::Deleted {
                    m.status = TaskStatus::Deleted;
                    m.version += 1;
                }
                let done = answer.map_err(|e| TestCaseError::fail(e.to_string()))?;
                check(&done.task_execution, m)?;
            }
            Step::Retry { task } if !tasks.is_empty() => {
                let i = task % tasks.len();
                let m = tasks[i].clone();
                let latest = tasks
                    .iter()
                    .filter(|t| t.flow == m.flow && t.name == m.name)
                    .map(|t| t.index)
                    .max()
                    .unwrap_or(m.index);
                let answer = w.executions.retry(me, m.id, RetryRequest::default());
                if latest > m.index {
                    let superseded = matches!(
                        answer,
                        Err(ServiceError::RetryRefused(RetryRefusal::Superseded { latest_execution_index })) if latest_execution_index == latest
                    );
                    prop_assert!(superseded, "a retry of a superseded attempt");
                } else if matches!(
                    m.status,
                    TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Stale
                ) {
                    let new = answer.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let modelled = Modelled {
                        id: new.id,
                        index: m.index + 1,
                        status: TaskStatus::Queued,
                        output: None,
                        error: None,
                        version: 1,
                        ..m.clone()
                    };
                    check(&new, &modelled)?;
                    tasks.push(modelled);
                } else {
                    let unfinished = matches!(
                        answer,
                        Err(ServiceError::RetryRefused(RetryRefusal::NotFinished { status })) if status == m.status
                    );
                    prop_assert!(unfinished, "a retry of an unfinished attempt");
                }
            }
            Step::List { status } => {
                let statuses: Vec<TaskStatus> = status
                    .map(|s| vec![TaskStatus::ALL[usize::from(s)]])
                    .unwrap_or_default();
                let filter = TaskExecutionFilter {
                    statuses: statuses.clone(),
                    ..TaskExecutionFilter::default()
                };
                let mut seen = Vec::new();
                let mut cursor = None;
                loop {
                    let page = w
                        .executions
                        .list_task_executions(
                            me,
                            filter.clone(),
                            Order::OldestFirst,
                            PageRequest { limit: 3, cursor },
                        )
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    seen.extend(page.items);
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                let mut expected: Vec<&Modelled> = tasks
                    .iter()
                    .filter(|t| {
                        if statuses.is_empty() {
                            t.status != TaskStatus::Deleted
                        } else {
                            statuses.contains(&t.status)
                        }
                    })
                    .collect();
                // One instant (the clock is fixed): ordered by id.
                expected.sort_by_key(|t| t.id);
                prop_assert_eq!(seen.len(), expected.len());
                for (real, model) in seen.iter().zip(expected) {
                    check(real, model)?;
                }
            }
            Step::Count => {
                let counts: BTreeMap<String, i64> = w
                    .executions
                    .count_task_executions(
                        me,
                        TaskExecutionFilter::default(),
                        flowexec_domain::CountBy::Status,
                    )
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
                    .into_iter()
                    .collect();
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

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FLOWEXEC_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_use_cases_follow_the_model(steps in proptest::collection::vec(step(), 1..40)) {
        run(steps)?;
    }
}
