//! The flow engine inside the units of work that change tasks: after a
//! unit of work changed tasks of some flow executions, each of them is
//! settled — locked, advanced (the tasks of its definition that are now
//! ready created, queued, with their inputs rendered), and its status
//! stored — before the unit commits. So a completion and what it makes
//! ready commit together or not at all, and two completions in one flow
//! execution (on two servers) are settled one after the other: the second
//! sees the first's tasks and creates nothing twice. The attempt key
//! (flow execution, task name, execution index) is the second wall.
//!
//! Lock order, everywhere: task executions (by id, as the stores lock
//! them), then flow executions by id. No unit locks a task after a flow.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use flowexec_domain::ports::TenantTx;
use flowexec_domain::{
    latest_attempts, Actor, FlowExecution, FlowExecutionId, FlowGraph, FlowName, FlowStatus,
    GraphNode, Lease, NodeState, OrganizationId, RepoError, TaskExecution, TaskExecutionEvent,
    TaskExecutionId, TaskName, TaskStatus,
};
use flowexec_flows::engine::{plan_runs, ready, Progress};
use flowexec_flows::{run, FlowDefinition};
use serde_json::Value;

/// The most parsed definitions kept; past it the cache starts again.
const CACHED_DEFINITIONS: usize = 512;

/// Parsed flow definitions by (organization, name, version): a version
/// never changes, so an entry is never stale.
#[derive(Default)]
pub(crate) struct Engine {
    definitions: Mutex<HashMap<(OrganizationId, FlowName, i32), Arc<FlowDefinition>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}

fn corrupt(what: impl std::fmt::Display) -> RepoError {
    RepoError::Unknown(anyhow::anyhow!("{what}"))
}

impl Engine {
    /// The definition of `name` version `version`, parsed once.
    pub(crate) fn definition<T: TenantTx>(
        &self,
        tx: &mut T,
        organization: OrganizationId,
        name: &FlowName,
        version: i32,
    ) -> Result<Arc<FlowDefinition>, RepoError> {
        let key = (organization, name.clone(), version);
        if let Some(found) = self.cached(&key) {
            return Ok(found);
        }
        let stored = tx.flow_version(name, version)?;
        let parsed = flowexec_flows::parse(&stored.source).map_err(|errors| {
            corrupt(format!(
                "stored flow {name} version {version} no longer parses: {errors:?}"
            ))
        })?;
        let parsed = Arc::new(parsed);
        if let Ok(mut all) = self.definitions.lock() {
            if all.len() >= CACHED_DEFINITIONS {
                all.clear();
            }
            all.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    fn cached(&self, key: &(OrganizationId, FlowName, i32)) -> Option<Arc<FlowDefinition>> {
        self.definitions.lock().ok()?.get(key).cloned()
    }

    /// Settles each of `flows` (in id order, after the unit's task
    /// changes): locks it, creates what its definition makes ready (unless
    /// it was cancelled), and stores its status when it changed. Answers
    /// how many tasks it created.
    pub(crate) fn settle<T: TenantTx>(
        &self,
        tx: &mut T,
        organization: OrganizationId,
        flows: BTreeSet<FlowExecutionId>,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<usize, RepoError> {
        let mut created = 0;
        for id in flows {
            let flow = tx.lock_flow_execution(id)?;
            if flow.status == FlowStatus::Cancelled {
                continue;
            }
            let status = match flow.flow_version {
                Some(version) => {
                    let definition = self.definition(tx, organization, &flow.flow_name, version)?;
                    let tasks = tx.flow_execution(id)?.task_executions;
                    let (status, made) = advance(tx, &flow, &definition, tasks, actor, at)?;
                    created += made;
                    status
                }
                None => status_of_ad_hoc(tx, id)?,
            };
            if status != flow.status {
                tx.set_flow_status(id, status, at)?;
            }
        }
        Ok(created)
    }

    /// After a claim: each of `flows` still `queued` is now `running` (no
    /// lock taken on the others: claims of one flow execution's tasks do
    /// not wait on each other).
    pub(crate) fn started<T: TenantTx>(
        &self,
        tx: &mut T,
        flows: BTreeSet<FlowExecutionId>,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let ids: Vec<FlowExecutionId> = flows.into_iter().collect();
        tx.mark_flows_running(&ids, at)
    }
}

/// The status of an ad hoc flow execution: the rule of [`FlowStatus`],
/// its questions answered by the store from partial indexes (a completion
/// in a flow of thousands of tasks reads a handful of rows).
fn status_of_ad_hoc<T: TenantTx>(tx: &mut T, id: FlowExecutionId) -> Result<FlowStatus, RepoError> {
    FlowStatus::by_questions(|statuses| tx.any_latest_in(id, statuses))
}

/// Where each task of `definition` stands, from the attempts of the run.
fn progress_of(definition: &FlowDefinition, tasks: &[TaskExecution]) -> BTreeMap<String, Progress> {
    let mut by_name: HashMap<&str, Vec<TaskExecution>> = HashMap::new();
    for task in tasks {
        by_name
            .entry(task.task_name.as_str())
            .or_default()
            .push(task.clone());
    }
    definition
        .tasks
        .iter()
        .map(|task| {
            let attempts = by_name.remove(task.name.as_str()).unwrap_or_default();
            (task.name.clone(), progress_of_task(&attempts))
        })
        .collect()
}

fn progress_of_task(attempts: &[TaskExecution]) -> Progress {
    // The latest attempt of each run, by iteration. Runs made stale (a
    // rerun) count as never made: when every run is stale, the task is
    // created again once ready. Stale runs older than every live one are
    // what a rerun left of the generation before (which may have had more
    // items): left out. A stale run newer than a live one (one iteration
    // of a for_each marked stale by hand) holds the task back: its outputs
    // are not complete (a rerun makes them again).
    let all = latest_attempts(attempts);
    let (stale, latest): (Vec<&TaskExecution>, Vec<&TaskExecution>) =
        all.into_iter().partition(|t| t.status == TaskStatus::Stale);
    let Some(first_live) = latest.iter().map(|t| t.execution_index).min() else {
        return Progress::NotCreated;
    };
    if stale.iter().any(|t| t.execution_index > first_live) {
        return if latest.iter().any(|t| t.status == TaskStatus::Failed) {
            Progress::Failed
        } else {
            Progress::Underway
        };
    }
    if latest.iter().any(|t| t.status == TaskStatus::Failed) {
        Progress::Failed
    } else if latest.iter().all(|t| t.status == TaskStatus::Completed) {
        Progress::Completed(
            latest
                .iter()
                .map(|t| t.output.clone().unwrap_or(Value::Null))
                .collect(),
        )
    } else {
        Progress::Underway
    }
}

/// Creates the tasks of `definition` that are ready in `flow` (queued, or
/// failed with a `template_error` when their input cannot be made), until
/// none is; answers the flow's status and how many it queued.
fn advance<T: TenantTx>(
    tx: &mut T,
    flow: &FlowExecution,
    definition: &FlowDefinition,
    mut tasks: Vec<TaskExecution>,
    actor: Actor,
    at: DateTime<Utc>,
) -> Result<(FlowStatus, usize), RepoError> {
    let mut progress = progress_of(definition, &tasks);
    // A task created again (after a rerun) numbers its runs after every
    // attempt it had.
    let mut next_index: HashMap<String, i32> = HashMap::new();
    for task in &tasks {
        let next = next_index
            .entry(task.task_name.as_str().to_owned())
            .or_insert(0);
        *next = (*next).max(task.execution_index.saturating_add(1));
    }
    let input = flow.input.clone().unwrap_or(Value::Null);
    let mut created: Vec<TaskExecution> = Vec::new();
    loop {
        let now_ready: Vec<_> = ready(definition, &progress).into_iter().cloned().collect();
        if now_ready.is_empty() {
            break;
        }
        for task in &now_ready {
            let name = TaskName::parse(task.name.clone()).map_err(corrupt)?;
            let options = run::run_options(definition, task);
            let base = next_index.get(&task.name).copied().unwrap_or(0);
            let new = |iteration: Option<usize>, status, input, error| TaskExecution {
                id: TaskExecutionId::generate(),
                flow_execution_id: flow.id,
                organization_id: flow.organization_id,
                task_name: name.clone(),
                execution_index: base
                    .saturating_add(iteration.and_then(|i| i32::try_from(i).ok()).unwrap_or(0)),
                status,
                input,
                output: None,
                error,
                modified_by: actor,
                created_at: at,
                updated_at: at,
                started_at: None,
                completed_at: (status == TaskStatus::Failed).then_some(at),
                version: 1,
                run: options,
                not_before: None,
                lease: Lease::default(),
                iteration: iteration.and_then(|i| i32::try_from(i).ok()),
            };
            match plan_runs(definition, task, &input, &progress) {
                // A for_each over no item: done, with no output.
                Ok(runs) if runs.is_empty() => {
                    progress.insert(task.name.clone(), Progress::Completed(Vec::new()));
                }
                Ok(runs) => {
                    for planned in runs {
                        created.push(new(
                            planned.iteration,
                            TaskStatus::Queued,
                            planned.input,
                            None,
                        ));
                    }
                    progress.insert(task.name.clone(), Progress::Underway);
                }
                Err(refused) => {
                    created.push(new(
                        None,
                        TaskStatus::Failed,
                        None,
                        Some(refused.to_error()),
                    ));
                    progress.insert(task.name.clone(), Progress::Failed);
                }
            }
        }
    }
    let queued = created
        .iter()
        .filter(|t| t.status == TaskStatus::Queued)
        .count();
    if !created.is_empty() {
        let events: Vec<TaskExecutionEvent> = created
            .iter()
            .map(|task| TaskExecutionEvent {
                task_execution_id: task.id,
                from: None,
                to: task.status,
                actor,
                reason: Some(
                    if task.status == TaskStatus::Failed {
                        "template_error"
                    } else {
                        "ready"
                    }
                    .to_owned(),
                ),
                created_at: at,
            })
            .collect();
        tx.insert_task_executions(&created)?;
        tx.insert_events(&events)?;
        tasks.extend(created);
    }
    Ok((status_of(&progress, &tasks), queued))
}

/// The status of a run of a definition: `failed` when a task failed with
/// no attempt left; `completed` when every task completed; `queued` while
/// no run has started (every live latest attempt queued, none finished);
/// else `running`. Runs made stale by a rerun are left out; so are the
/// runs of a `for_each` item that a rerun no longer has.
fn status_of(progress: &BTreeMap<String, Progress>, tasks: &[TaskExecution]) -> FlowStatus {
    if progress.values().any(|p| *p == Progress::Failed) {
        return FlowStatus::Failed;
    }
    if progress
        .values()
        .all(|p| matches!(p, Progress::Completed(_)))
    {
        return FlowStatus::Completed;
    }
    let started = latest_attempts(tasks)
        .iter()
        .any(|t| !matches!(t.status, TaskStatus::Queued | TaskStatus::Stale));
    if started {
        FlowStatus::Running
    } else {
        FlowStatus::Queued
    }
}

/// Called after a unit of work that queued tasks commits: wakes the
/// claims waiting for work in this process (the API's `WorkSignal`).
pub type NewWork = Arc<dyn Fn() + Send + Sync>;

/// The flow executions of `tasks`, in id order: what a unit of work that
/// changed them settles.
pub(crate) fn flows_of<'t>(
    tasks: impl IntoIterator<Item = &'t TaskExecution>,
) -> BTreeSet<FlowExecutionId> {
    tasks.into_iter().map(|t| t.flow_execution_id).collect()
}

/// The graph of a flow execution: the tasks of its definition (of an ad
/// hoc one, its task names) with where each stands, and the dependencies.
pub(crate) fn graph(
    flow: FlowExecution,
    definition: Option<&FlowDefinition>,
    tasks: &[TaskExecution],
) -> FlowGraph {
    let mut by_name: BTreeMap<&str, Vec<TaskExecution>> = BTreeMap::new();
    for task in tasks {
        by_name
            .entry(task.task_name.as_str())
            .or_default()
            .push(task.clone());
    }
    let (names, for_each, edges): (Vec<String>, Vec<bool>, Vec<(String, String)>) = match definition
    {
        Some(definition) => (
            definition.tasks.iter().map(|t| t.name.clone()).collect(),
            definition
                .tasks
                .iter()
                .map(|t| t.for_each.is_some())
                .collect(),
            definition
                .tasks
                .iter()
                .flat_map(|t| {
                    t.depends_on
                        .iter()
                        .map(move |up| (up.clone(), t.name.clone()))
                })
                .collect(),
        ),
        None => (
            by_name.keys().map(|n| (*n).to_owned()).collect(),
            vec![false; by_name.len()],
            Vec::new(),
        ),
    };
    let nodes = names
        .into_iter()
        .zip(for_each)
        .map(|(name, for_each)| {
            let attempts = by_name.remove(name.as_str()).unwrap_or_default();
            let latest_runs = latest_attempts(&attempts);
            let state = match progress_of_task(&attempts) {
                Progress::Completed(_) => NodeState::Completed,
                Progress::Failed => NodeState::Failed,
                Progress::NotCreated if attempts.is_empty() => NodeState::NotCreated,
                Progress::NotCreated => NodeState::Stale,
                Progress::Underway => {
                    let has = |status| latest_runs.iter().any(|t| t.status == status);
                    if has(TaskStatus::Running) {
                        NodeState::Running
                    } else if has(TaskStatus::Queued) {
                        NodeState::Queued
                    } else if has(TaskStatus::Stale) {
                        NodeState::Stale
                    } else {
                        NodeState::Deleted
                    }
                }
            };
            let runs = latest_runs
                .iter()
                .filter(|t| t.status != TaskStatus::Stale)
                .count();
            GraphNode {
                task_name: name,
                state,
                for_each,
                runs,
                attempts: attempts.len(),
                latest: attempts.iter().max_by_key(|t| t.execution_index).cloned(),
            }
        })
        .collect();
    FlowGraph {
        flow_execution: flow,
        nodes,
        edges,
    }
}
