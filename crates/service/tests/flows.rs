//! Flow definitions and the engine through the use cases, over the real
//! SQLite store: versions, a run advancing as its tasks complete (inputs
//! rendered from upstream outputs, types kept), for_each iterations and
//! their retries, a failure stopping what depends on it, a template error
//! failing its task. Over HTTP, on both stores, with real workers:
//! `crates/server/tests/flows.rs`.

use std::collections::BTreeMap;

use flowexec_domain::{
    Actor, FlowName, FlowStatus, OrganizationName, Principal, RetryPolicy, Role, StartFlow,
    TaskExecution, TaskStatus, WorkerId,
};
use flowexec_persistence::SqliteStore;
use flowexec_service::{
    Admin, Authenticate, ClaimRequest, ExecutionUseCases, Executions, FlowUseCases, Flows,
    KeyAuthenticator, KeyCacheSettings, Outcome, PageRequest, Report, ServiceError, WorkerSettings,
    WorkerUseCases, Workers,
};
use flowexec_testkit::TestSqlite;
use serde_json::{json, Value};

type TestResult = anyhow::Result<()>;

struct World {
    _db: TestSqlite,
    flows: Flows<SqliteStore>,
    executions: Executions<SqliteStore>,
    workers: Workers<SqliteStore>,
    writer: Principal,
    worker: Principal,
}

impl World {
    fn new() -> anyhow::Result<Self> {
        let db = TestSqlite::new()?;
        let store = db.open(4)?;
        let admin = Admin::new(store.clone());
        let auth = KeyAuthenticator::new(store.clone(), &KeyCacheSettings::default());
        let created = admin.create_organization(&OrganizationName::parse("o")?)?;
        let id = created.organization.id;
        let writer = auth.authenticate(
            &admin
                .create_api_key(id, Role::Write, Actor::Integration)?
                .plaintext,
        )?;
        let worker = auth.authenticate(
            &admin
                .create_api_key(id, Role::Worker, Actor::System)?
                .plaintext,
        )?;
        Ok(Self {
            flows: Flows::new(store.clone()),
            executions: Executions::new(store.clone()),
            workers: Workers::new(
                store,
                WorkerSettings {
                    default_retry: RetryPolicy {
                        max_attempts: 1,
                        ..RetryPolicy::default()
                    },
                },
            ),
            _db: db,
            writer,
            worker,
        })
    }

    fn start(
        &self,
        flow: &str,
        input: Value,
    ) -> Result<flowexec_domain::FlowExecutionDetail, ServiceError> {
        let flow = FlowName::parse(flow).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.executions.start_flow(
            &self.writer,
            StartFlow {
                flow,
                version: None,
                input: Some(input),
            },
        )
    }

    /// Claims everything queued and reports each as `outcome` says.
    fn run_all(
        &self,
        outcome: impl Fn(&TaskExecution) -> Outcome,
    ) -> anyhow::Result<Vec<TaskExecution>> {
        let claimed = self
            .workers
            .claim(
                &self.worker,
                &ClaimRequest {
                    worker_id: WorkerId::parse("w")?,
                    task_names: vec![],
                    limit: 500,
                    lease_seconds: 60,
                },
            )?
            .tasks;
        for task in &claimed {
            self.workers.report(
                &self.worker,
                Report {
                    task_execution_id: task.id,
                    worker_id: WorkerId::parse("w")?,
                    outcome: outcome(task),
                },
            )?;
        }
        Ok(claimed)
    }
}

fn put(world: &World, text: &str) -> anyhow::Result<flowexec_service::Stored> {
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("name: "))
        .unwrap_or_default();
    Ok(world
        .flows
        .put_flow(&world.writer, FlowName::parse(name)?, text.to_owned())?)
}

fn completed(output: Value) -> Outcome {
    Outcome::Completed {
        output: Some(output),
    }
}

const DIAMOND: &str = "\
name: diamond
input_schema: {type: object, required: [n]}
tasks:
  - name: a
    input: {n: \"{{ flow.input.n }}\"}
  - name: b
    depends_on: [a]
    input: {from_a: \"{{ tasks.a.output }}\"}
  - name: c
    depends_on: [a]
    input: \"n is {{ tasks.a.output.n }}\"
  - name: d
    depends_on: [b, c]
    input: [\"{{ tasks.b.output }}\", \"{{ tasks.c.output }}\"]
";

#[test]
fn a_definition_is_versioned_only_when_its_content_changes() -> TestResult {
    let world = World::new()?;
    let first = put(&world, DIAMOND)?;
    assert!(first.created);
    assert_eq!(first.stored.version.version, 1);
    // The same content, written as JSON: unchanged.
    let as_json = json!({
        "name": "diamond",
        "input_schema": {"type": "object", "required": ["n"]},
        "tasks": [
            {"name": "a", "input": {"n": "{{ flow.input.n }}"}},
            {"name": "b", "depends_on": ["a"], "input": {"from_a": "{{ tasks.a.output }}"}},
            {"name": "c", "depends_on": ["a"], "input": "n is {{ tasks.a.output.n }}"},
            {"name": "d", "depends_on": ["b", "c"], "input": ["{{ tasks.b.output }}", "{{ tasks.c.output }}"]},
        ]
    });
    let again = world.flows.put_flow(
        &world.writer,
        FlowName::parse("diamond")?,
        as_json.to_string(),
    )?;
    assert!(!again.created);
    assert_eq!(again.stored.version.version, 1);
    let changed = put(
        &world,
        &DIAMOND.replace("{{ flow.input.n }}", "{{ flow.input }}"),
    )?;
    assert!(changed.created);
    assert_eq!(changed.stored.version.version, 2);
    let one = world
        .flows
        .get_flow(&world.writer, FlowName::parse("diamond")?, Some(1))?;
    assert_eq!(one.version.source, DIAMOND);
    assert_eq!(one.flow.latest_version, 2);
    // A name that differs from the path's, and a broken definition.
    let misnamed =
        world
            .flows
            .put_flow(&world.writer, FlowName::parse("other")?, DIAMOND.to_owned());
    assert!(matches!(misnamed, Err(ServiceError::InvalidDefinition(e)) if e[0].pointer == "/name"));
    let broken = world.flows.put_flow(
        &world.writer,
        FlowName::parse("diamond")?,
        DIAMOND.replace("[b, c]", "[b, x]"),
    );
    // Every error at once: the unknown dependency, and c no longer
    // upstream of d's template.
    let Err(ServiceError::InvalidDefinition(errors)) = broken else {
        anyhow::bail!("{broken:?}");
    };
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/tasks/3/depends_on/1", "/tasks/3/input/1"]);
    // Deleted: gone from reads and lists, no new runs; stored again, back
    // with the next version.
    world
        .flows
        .delete_flow(&world.writer, FlowName::parse("diamond")?)?;
    assert!(matches!(
        world
            .flows
            .get_flow(&world.writer, FlowName::parse("diamond")?, None),
        Err(ServiceError::NotFound)
    ));
    assert!(world
        .flows
        .list_flows(&world.writer, PageRequest::default())?
        .items
        .is_empty());
    assert!(matches!(
        world.start("diamond", json!({"n": 1})),
        Err(ServiceError::NotFound)
    ));
    assert_eq!(put(&world, DIAMOND)?.stored.version.version, 3);
    Ok(())
}

/// Each task's latest attempt by name (for tasks that run once).
fn by_name(detail: &flowexec_domain::FlowExecutionDetail) -> BTreeMap<String, TaskExecution> {
    detail
        .latest_attempts()
        .into_iter()
        .map(|t| (t.task_name.to_string(), t.clone()))
        .collect()
}

#[test]
fn a_diamond_advances_as_its_tasks_complete_with_inputs_typed() -> TestResult {
    let world = World::new()?;
    put(&world, DIAMOND)?;
    assert!(matches!(
        world.start("diamond", json!({"m": 1})),
        Err(ServiceError::InputMismatch(m)) if !m.is_empty()
    ));
    let started = world.start("diamond", json!({"n": 7}))?;
    let id = started.flow_execution.id;
    assert_eq!(started.flow_execution.status, FlowStatus::Queued);
    assert_eq!(started.task_executions.len(), 1, "only the root is created");
    assert_eq!(started.task_executions[0].input, Some(json!({"n": 7})));

    let ran = world.run_all(|_| completed(json!({"n": 7, "list": [1, 2]})))?;
    assert_eq!(ran.len(), 1);
    let detail = world.executions.get_flow_execution(&world.writer, id)?;
    assert_eq!(detail.flow_execution.status, FlowStatus::Running);
    let tasks = by_name(&detail);
    assert_eq!(tasks.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(
        tasks["b"].input,
        Some(json!({"from_a": {"n": 7, "list": [1, 2]}}))
    );
    assert_eq!(tasks["c"].input, Some(json!("n is 7")));

    world.run_all(|t| completed(json!(t.task_name.to_string())))?;
    let tasks = by_name(&world.executions.get_flow_execution(&world.writer, id)?);
    assert_eq!(tasks["d"].input, Some(json!(["b", "c"])));
    world.run_all(|_| completed(json!(null)))?;
    let detail = world.executions.get_flow_execution(&world.writer, id)?;
    assert_eq!(detail.flow_execution.status, FlowStatus::Completed);
    assert_eq!(detail.task_executions.len(), 4);
    Ok(())
}

#[test]
fn for_each_runs_once_per_item_and_a_retry_keeps_its_iteration() -> TestResult {
    let world = World::new()?;
    put(
        &world,
        "\
name: fan
tasks:
  - name: list
  - name: each
    depends_on: [list]
    for_each: \"{{ tasks.list.output }}\"
    retry: {max_attempts: 2, backoff: {initial_ms: 0}}
    input: {item: \"{{ item }}\", index: \"{{ index }}\"}
  - name: total
    depends_on: [each]
    input: \"{{ tasks.each.outputs }}\"
",
    )?;
    let id = world.start("fan", json!(null))?.flow_execution.id;
    world.run_all(|_| completed(json!(["x", "y", "z"])))?;
    let detail = world.executions.get_flow_execution(&world.writer, id)?;
    let mut each: Vec<_> = detail
        .task_executions
        .iter()
        .filter(|t| t.task_name.as_str() == "each")
        .map(|t| (t.execution_index, t.iteration, t.input.clone()))
        .collect();
    each.sort_by_key(|t| t.0);
    assert_eq!(
        each,
        [
            (0, Some(0), Some(json!({"item": "x", "index": 0}))),
            (1, Some(1), Some(json!({"item": "y", "index": 1}))),
            (2, Some(2), Some(json!({"item": "z", "index": 2}))),
        ]
    );
    // Iteration 1 fails once: its retry takes index 3 and keeps iteration 1.
    world.run_all(|t| {
        if t.iteration == Some(1) {
            Outcome::Failed {
                error: Some(json!("boom")),
                retryable: true,
            }
        } else {
            completed(json!(format!("out-{}", t.execution_index)))
        }
    })?;
    let detail = world.executions.get_flow_execution(&world.writer, id)?;
    let retry = detail
        .task_executions
        .iter()
        .find(|t| t.execution_index == 3)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no retry"))?;
    assert_eq!(
        (retry.iteration, retry.status),
        (Some(1), TaskStatus::Queued)
    );
    assert_eq!(detail.flow_execution.status, FlowStatus::Running);
    world.run_all(|_| completed(json!("out-retry")))?;
    let tasks = by_name(&world.executions.get_flow_execution(&world.writer, id)?);
    assert_eq!(
        tasks["total"].input,
        Some(json!(["out-0", "out-retry", "out-2"])),
        "outputs in item order"
    );
    Ok(())
}

#[test]
fn a_failure_stops_its_branch_and_the_other_finishes() -> TestResult {
    let world = World::new()?;
    put(
        &world,
        "\
name: branches
tasks:
  - name: left
  - name: left-after
    depends_on: [left]
  - name: right
  - name: right-after
    depends_on: [right]
  - name: bad-template
    input: \"{{ flow.input.missing }}\"
",
    )?;
    let started = world.start("branches", json!({}))?;
    let id = started.flow_execution.id;
    let tasks = by_name(&started);
    assert_eq!(tasks["bad-template"].status, TaskStatus::Failed);
    assert_eq!(
        tasks["bad-template"]
            .error
            .as_ref()
            .map(|e| e["code"].clone()),
        Some(json!("template_error"))
    );
    assert_eq!(started.flow_execution.status, FlowStatus::Failed);
    world.run_all(|t| {
        if t.task_name.as_str() == "left" {
            Outcome::Failed {
                error: None,
                retryable: true,
            }
        } else {
            completed(json!(1))
        }
    })?;
    world.run_all(|_| completed(json!(2)))?;
    let detail = world.executions.get_flow_execution(&world.writer, id)?;
    let tasks = by_name(&detail);
    assert!(
        !tasks.contains_key("left-after"),
        "downstream of a failure is never created"
    );
    assert_eq!(tasks["right-after"].status, TaskStatus::Completed);
    assert_eq!(detail.flow_execution.status, FlowStatus::Failed);
    Ok(())
}

const CHAIN: &str = "\
name: chain
tasks:
  - name: a
    input: \"{{ flow.input }}\"
  - name: b
    depends_on: [a]
    input: \"{{ tasks.a.output }}\"
  - name: c
    depends_on: [b]
    input: \"{{ tasks.b.output }}\"
  - name: side
";

#[test]
fn a_rerun_makes_exactly_the_task_and_its_downstream_stale_and_runs_them_again() -> TestResult {
    let world = World::new()?;
    put(&world, CHAIN)?;
    let id = world.start("chain", json!(1))?.flow_execution.id;
    for _ in 0..3 {
        world.run_all(|t| completed(json!(format!("{}-1", t.task_name))))?;
    }
    let done = world.executions.get_flow_execution(&world.writer, id)?;
    assert_eq!(done.flow_execution.status, FlowStatus::Completed);
    // A rerun from a task not run, of an unknown task, while running: refused.
    assert!(matches!(
        world
            .executions
            .rerun(&world.writer, id, flowexec_domain::TaskName::parse("zzz")?),
        Err(ServiceError::InvalidFields(_))
    ));

    let rerun =
        world
            .executions
            .rerun(&world.writer, id, flowexec_domain::TaskName::parse("b")?)?;
    let stale: Vec<String> = rerun
        .task_executions
        .iter()
        .filter(|t| t.status == TaskStatus::Stale)
        .map(|t| t.task_name.to_string())
        .collect();
    assert_eq!(stale, ["b", "c"], "exactly b and what is downstream of it");
    let tasks = by_name(&rerun);
    assert_eq!(
        (tasks["b"].execution_index, tasks["b"].status),
        (1, TaskStatus::Queued),
        "b is created again, numbered after its first attempt"
    );
    assert_eq!(
        tasks["b"].input,
        Some(json!("a-1")),
        "its input rendered again"
    );
    assert_eq!(rerun.flow_execution.status, FlowStatus::Running);
    assert!(
        matches!(
            world
                .executions
                .rerun(&world.writer, id, flowexec_domain::TaskName::parse("a")?),
            Err(ServiceError::FlowState { .. })
        ),
        "b is queued: a rerun from upstream of it waits"
    );

    world.run_all(|_| completed(json!("b-2")))?;
    let tasks = by_name(&world.executions.get_flow_execution(&world.writer, id)?);
    assert_eq!(
        (tasks["c"].execution_index, tasks["c"].input.clone()),
        (1, Some(json!("b-2")))
    );
    world.run_all(|_| completed(json!("c-2")))?;
    let detail = world.executions.get_flow_execution(&world.writer, id)?;
    assert_eq!(detail.flow_execution.status, FlowStatus::Completed);
    assert_eq!(
        detail.task_executions.len(),
        6,
        "a and side once, b and c twice"
    );

    let graph = world.executions.flow_graph(&world.writer, id)?;
    let nodes: Vec<(&str, &str, usize)> = graph
        .nodes
        .iter()
        .map(|n| (n.task_name.as_str(), n.state.as_str(), n.attempts))
        .collect();
    assert_eq!(
        nodes,
        [
            ("a", "completed", 1),
            ("b", "completed", 2),
            ("c", "completed", 2),
            ("side", "completed", 1)
        ]
    );
    assert_eq!(
        graph.edges,
        [
            ("a".to_owned(), "b".to_owned()),
            ("b".to_owned(), "c".to_owned())
        ]
    );
    Ok(())
}

#[test]
fn cancel_deletes_queued_tasks_fails_running_ones_and_creates_nothing_more() -> TestResult {
    let world = World::new()?;
    put(&world, CHAIN)?;
    let id = world.start("chain", json!(1))?.flow_execution.id;
    // a and side claimed (running), then cancelled.
    let claimed = world.workers.claim(
        &world.worker,
        &ClaimRequest {
            worker_id: WorkerId::parse("w")?,
            task_names: vec![flowexec_domain::TaskName::parse("a")?],
            limit: 10,
            lease_seconds: 60,
        },
    )?;
    assert_eq!(claimed.tasks.len(), 1);
    let cancelled = world.executions.cancel_flow(&world.writer, id)?;
    assert_eq!(cancelled.flow_execution.status, FlowStatus::Cancelled);
    let tasks = by_name(&cancelled);
    assert_eq!(tasks["a"].status, TaskStatus::Failed);
    assert_eq!(tasks["a"].error, Some(json!({"code": "cancelled"})));
    assert_eq!(tasks["side"].status, TaskStatus::Deleted);
    // The worker of a hears lease_lost; nothing is created or retried.
    let heartbeat =
        world
            .workers
            .heartbeat(&world.worker, tasks["a"].id, WorkerId::parse("w")?, 60);
    assert!(matches!(heartbeat, Err(ServiceError::LeaseLost { .. })));
    assert!(world.run_all(|_| completed(json!(1)))?.is_empty());
    let retried = world.executions.retry(
        &world.writer,
        tasks["a"].id,
        flowexec_domain::RetryRequest::default(),
    );
    assert!(matches!(
        retried,
        Err(ServiceError::RetryRefused(
            flowexec_domain::RetryRefusal::FlowCancelled
        ))
    ));
    let after = world.executions.get_flow_execution(&world.writer, id)?;
    assert_eq!(after.task_executions.len(), 2);
    assert_eq!(after.flow_execution.status, FlowStatus::Cancelled);
    // Again: the same answer.
    assert_eq!(world.executions.cancel_flow(&world.writer, id)?, after);
    // A completed flow execution cannot be cancelled.
    let done = world.start("chain", json!(1))?.flow_execution.id;
    for _ in 0..3 {
        world.run_all(|_| completed(json!(1)))?;
    }
    assert!(matches!(
        world.executions.cancel_flow(&world.writer, done),
        Err(ServiceError::FlowState {
            status: FlowStatus::Completed,
            ..
        })
    ));
    Ok(())
}

#[test]
fn a_rerun_restarts_the_retry_count_and_a_task_marked_stale_by_hand_runs_again() -> TestResult {
    let world = World::new()?;
    put(
        &world,
        &CHAIN.replace(
            "tasks:\n",
            "defaults: {retry: {max_attempts: 2, backoff: {initial_ms: 0}}}\ntasks:\n",
        ),
    )?;
    let id = world.start("chain", json!(1))?.flow_execution.id;
    for _ in 0..3 {
        world.run_all(|t| completed(json!(t.task_name.to_string())))?;
    }
    world
        .executions
        .rerun(&world.writer, id, flowexec_domain::TaskName::parse("b")?)?;
    // b's new run fails once: its policy (2 attempts) counts from the
    // rerun, so it is retried.
    world.run_all(|_| Outcome::Failed {
        error: Some(json!("once")),
        retryable: true,
    })?;
    let tasks = by_name(&world.executions.get_flow_execution(&world.writer, id)?);
    assert_eq!(
        (tasks["b"].execution_index, tasks["b"].status),
        (2, TaskStatus::Queued)
    );
    // A stale attempt of a run of a definition is not retried by hand.
    let stale = world
        .executions
        .get_flow_execution(&world.writer, id)?
        .task_executions
        .into_iter()
        .find(|t| t.status == TaskStatus::Stale)
        .ok_or_else(|| anyhow::anyhow!("no stale attempt"))?;
    assert!(matches!(
        world.executions.retry(
            &world.writer,
            stale.id,
            flowexec_domain::RetryRequest::default()
        ),
        Err(ServiceError::RetryRefused(
            flowexec_domain::RetryRefusal::StaleInFlow
        ))
    ));
    for _ in 0..2 {
        world.run_all(|t| completed(json!(t.task_name.to_string())))?;
    }
    let detail = world.executions.get_flow_execution(&world.writer, id)?;
    assert_eq!(detail.flow_execution.status, FlowStatus::Completed);
    // side, marked stale by hand, runs again on its own.
    let side = by_name(&detail)["side"].clone();
    world.executions.change_status(
        &world.writer,
        side.id,
        flowexec_service::ChangeRequest {
            transition: flowexec_domain::Transition::MarkStale,
            reason: None,
            if_match: flowexec_domain::IfMatch::Any,
        },
    )?;
    let tasks = by_name(&world.executions.get_flow_execution(&world.writer, id)?);
    assert_eq!(
        (tasks["side"].execution_index, tasks["side"].status),
        (1, TaskStatus::Queued)
    );
    Ok(())
}

mod random_dags {
    //! Random DAGs (up to 30 tasks, random edges, random failures) run to
    //! their end; what ran, what was never created and the flow's status
    //! match a model: a task runs when every task it depends on completed;
    //! it completes unless it is one that fails (no retry); the flow
    //! execution is failed when a task failed, else completed.

    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// A DAG: for each task, the earlier tasks it depends on; and which
    /// tasks fail.
    #[derive(Debug, Clone)]
    struct Dag {
        depends_on: Vec<Vec<usize>>,
        /// Fail every attempt (two: the policy allows one retry).
        fails: BTreeSet<usize>,
        /// Fail their first attempt only: completed by the retry.
        flaky: BTreeSet<usize>,
    }

    fn dags() -> impl Strategy<Value = Dag> {
        (1usize..=30).prop_flat_map(|n| {
            let edges = (0..n)
                .map(|i| proptest::collection::btree_set(0..i.max(1), 0..=i.min(3)))
                .collect::<Vec<_>>();
            let fails = proptest::collection::btree_set(0..n, 0..=n / 4);
            let flaky = proptest::collection::btree_set(0..n, 0..=n / 4);
            (edges, fails, flaky).prop_map(move |(edges, fails, flaky)| Dag {
                depends_on: edges
                    .into_iter()
                    .enumerate()
                    .map(|(i, deps)| deps.into_iter().filter(|d| *d < i).collect())
                    .collect(),
                flaky: flaky.difference(&fails).copied().collect(),
                fails,
            })
        })
    }

    fn yaml(name: &str, dag: &Dag) -> String {
        let mut text = format!(
            "name: {name}\ndefaults: {{retry: {{max_attempts: 2, backoff: {{initial_ms: 0}}}}}}\ntasks:\n"
        );
        for (i, deps) in dag.depends_on.iter().enumerate() {
            let deps: Vec<String> = deps.iter().map(|d| format!("t{d}")).collect();
            text.push_str(&format!(
                "  - {{name: t{i}, depends_on: [{}]}}\n",
                deps.join(", ")
            ));
        }
        text
    }

    /// The model: which tasks complete, fail, and are never created.
    fn model(dag: &Dag) -> (BTreeSet<usize>, BTreeSet<usize>, BTreeSet<usize>) {
        let (mut completed, mut failed, mut never) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (i, deps) in dag.depends_on.iter().enumerate() {
            if deps.iter().all(|d| completed.contains(d)) {
                if dag.fails.contains(&i) {
                    failed.insert(i);
                } else {
                    completed.insert(i);
                }
            } else {
                never.insert(i);
            }
        }
        (completed, failed, never)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("FLOWEXEC_DAG_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
            .. ProptestConfig::default()
        })]

        #[test]
        fn random_dags_run_as_the_model_says(dag in dags()) {
            let world = World::new().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let run = || -> anyhow::Result<()> {
                put(&world, &yaml("dag", &dag))?;
                let id = world.start("dag", json!(null))?.flow_execution.id;
                // Claim and report until nothing is left to run.
                while !world
                    .run_all(|t| {
                        let i: usize = t.task_name.as_str()[1..].parse().unwrap_or(usize::MAX);
                        if dag.fails.contains(&i) || (dag.flaky.contains(&i) && t.execution_index == 0) {
                            Outcome::Failed { error: Some(json!("planned")), retryable: true }
                        } else {
                            completed(json!(i))
                        }
                    })?
                    .is_empty()
                {}
                let detail = world.executions.get_flow_execution(&world.writer, id)?;
                let (completed, failed, never) = model(&dag);
                // Where each task ended: its latest attempt.
                let of = |status: TaskStatus| -> BTreeSet<usize> {
                    detail
                        .latest_attempts()
                        .into_iter()
                        .filter(|t| t.status == status)
                        .map(|t| t.task_name.as_str()[1..].parse().unwrap_or(usize::MAX))
                        .collect()
                };
                anyhow::ensure!(of(TaskStatus::Completed) == completed, "completed: {:?} vs {completed:?}", of(TaskStatus::Completed));
                anyhow::ensure!(of(TaskStatus::Failed) == failed, "failed: {:?} vs {failed:?}", of(TaskStatus::Failed));
                // One attempt each, two for a task that failed (retried
                // once) or is flaky; none of those never created.
                let retried = failed.len() + dag.flaky.iter().filter(|i| completed.contains(i)).count();
                anyhow::ensure!(
                    detail.task_executions.len() == completed.len() + failed.len() + retried,
                    "{} attempts; none of {never:?}",
                    detail.task_executions.len()
                );
                let expected = if failed.is_empty() { FlowStatus::Completed } else { FlowStatus::Failed };
                anyhow::ensure!(detail.flow_execution.status == expected, "status {:?}", detail.flow_execution.status);
                Ok(())
            };
            run().map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        }
    }
}
