#![doc = include_str!("../README.md")]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use flowexec_domain::json::canonicalize;
use flowexec_domain::ports::{
    ApiKeyRepository, DeploymentSecrets, ExecutionStore, HealthCheck, OrganizationRepository,
    OverdueRuns, RowLock, TenantTx,
};
use flowexec_domain::{next_attempt, Claim, Heartbeat, Jitter, RetryPolicy, RunOptions, WorkerId};
use flowexec_domain::{
    Actor, ApiKeyId, Attempts, ChangeOutcome, CountBy, FlowExecutionCreation, FlowExecutionFilter,
    FlowName, IfMatch, ListQuery, NewApiKey, NewFlowExecution, NewTask, Order, Organization,
    OrganizationId, OrganizationName, Position, RepoError, Role, TaskExecution, TaskExecutionEvent,
    TaskExecutionFilter, TaskExecutionId, TaskName, TaskStatus, Tenant, TimeRange, Transition,
};
use flowexec_domain::{Flow, FlowStatus, FlowVersion};
use serde_json::{json, Value};

/// Every port a store implements.
pub trait Ports:
    ExecutionStore
    + ApiKeyRepository
    + OrganizationRepository
    + DeploymentSecrets
    + HealthCheck
    + OverdueRuns
{
}

impl<T> Ports for T where
    T: ExecutionStore
        + ApiKeyRepository
        + OrganizationRepository
        + DeploymentSecrets
        + HealthCheck
        + OverdueRuns
{
}

/// One case: a fresh store in, a verdict out.
pub type Case<S> = fn(Arc<S>) -> anyhow::Result<()>;

/// A fixed time, `second` seconds into 2026 (so tests never depend on the
/// system clock).
pub fn at(second: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + second, 123_456_000).unwrap_or_default()
}

fn key_for(organization_id: OrganizationId, role: Role) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::generate(),
        organization_id,
        role,
        actor: Actor::System,
        secret_sha256: [7; 32],
        created_at: at(0),
    }
}

/// Each new organization is created a microsecond after the one before,
/// so that "oldest first" is well defined.
fn new_organization(name: &str) -> anyhow::Result<Organization> {
    static CREATED: AtomicI64 = AtomicI64::new(0);
    let offset = CREATED.fetch_add(1, Ordering::Relaxed);
    Ok(Organization {
        id: OrganizationId::generate(),
        name: OrganizationName::parse(name)?,
        created_at: at(0) + chrono::Duration::microseconds(offset),
    })
}

/// A new organization in `store`.
pub fn organization<S: Ports>(store: &S, name: &str) -> anyhow::Result<Tenant> {
    let organization = new_organization(name)?;
    store.create_organization(&organization, &key_for(organization.id, Role::Admin))?;
    Ok(Tenant::new(organization.id))
}

/// Stores what creating a flow execution writes, in one unit of work.
pub fn store_creation<S: Ports>(
    store: &S,
    tenant: Tenant,
    creation: &FlowExecutionCreation,
) -> Result<(), RepoError> {
    store.in_tenant(tenant, |tx| {
        tx.insert_flow_execution(&creation.flow_execution)?;
        tx.insert_task_executions(&creation.task_executions)?;
        tx.insert_events(&creation.events)
    })
}

/// A flow execution with one task per name, each with a JSON input, created
/// at `at(1)` by an integration.
pub fn flow<S: Ports>(
    store: &S,
    tenant: Tenant,
    tasks: &[&str],
) -> anyhow::Result<FlowExecutionCreation> {
    let tasks = tasks
        .iter()
        .map(|name| {
            Ok(NewTask {
                task_name: TaskName::parse(*name)?,
                input: Some(json!({"task": name, "n": [1, 2.5, null]})),
                run: RunOptions::default(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let new = NewFlowExecution::new(FlowName::parse("etl")?, Some(json!("x")), tasks)?;
    let creation = new.plan(tenant.organization_id(), Actor::Integration, at(1));
    store_creation(store, tenant, &creation)?;
    Ok(creation)
}

/// Applies `transition` to a task, as the system at `at(second)`: the row
/// after it, or the refusal as the domain reads it (never a repeat).
pub fn change<S: Ports>(
    store: &S,
    tenant: Tenant,
    id: TaskExecutionId,
    transition: Transition,
    second: i64,
) -> Result<TaskExecution, RepoError> {
    let plan = transition.plan(id, Actor::System, Some("contract".into()), at(second));
    match store.in_tenant(tenant, |tx| tx.change_status(&plan))? {
        ChangeOutcome::Changed(row) => Ok(row),
        ChangeOutcome::Refused(row) => plan.refused(row, None),
    }
}

/// The whole history of a task execution, oldest first.
pub fn history<S: Ports>(
    store: &S,
    tenant: Tenant,
    id: TaskExecutionId,
) -> Result<Vec<TaskExecutionEvent>, RepoError> {
    Ok(store
        .read(tenant, |tx| tx.events(id, None, usize::MAX))?
        .into_iter()
        .map(|recorded| recorded.event)
        .collect())
}

/// A flow execution's attempts as (task, execution index, status), and the
/// status they give it.
pub type FlowStatusCase = (
    u8,
    &'static [(&'static str, i32, &'static str)],
    &'static str,
);

/// Flow executions as the release before stored statuses left them, each
/// with the status its latest attempts give it: what the upgrade tests of
/// both stores fill a database with.
pub const FLOW_STATUS_CASES: [FlowStatusCase; 6] = [
    (
        1,
        &[
            ("a", 0, "failed"),
            ("a", 1, "completed"),
            ("b", 0, "completed"),
        ],
        "completed",
    ),
    (2, &[("a", 0, "failed"), ("b", 0, "running")], "failed"),
    (3, &[("a", 0, "deleted")], "queued"),
    (4, &[("a", 0, "queued"), ("b", 0, "completed")], "running"),
    (5, &[("a", 0, "queued"), ("b", 0, "queued")], "queued"),
    (6, &[("a", 0, "stale"), ("b", 0, "completed")], "running"),
];

/// Checks, after the upgrade, that each flow execution of
/// [`FLOW_STATUS_CASES`] (ids `20000000-…-0000000000NN`, in `tenant`) has
/// the status its latest attempts give it, no version, and its tasks no
/// iteration.
pub fn check_flow_statuses<S: Ports>(store: &S, tenant: Tenant) -> anyhow::Result<()> {
    for (flow, attempts, expected) in FLOW_STATUS_CASES {
        let flow_id: flowexec_domain::FlowExecutionId =
            format!("20000000-0000-4000-8000-0000000000{flow:02}").parse()?;
        let detail = store.read(tenant, |tx| tx.flow_execution(flow_id))?;
        ensure!(
            detail.flow_execution.status.as_str() == expected,
            "flow {flow}: {:?}",
            detail.flow_execution.status
        );
        ensure!(detail.flow_execution.flow_version.is_none(), "flow {flow}");
        ensure!(
            detail.task_executions.len() == attempts.len(),
            "flow {flow}"
        );
        ensure!(
            detail.task_executions.iter().all(|t| t.iteration.is_none()),
            "flow {flow}"
        );
    }
    Ok(())
}

/// Defines the cases and `cases()`, their list, from one block, so that no
/// case can be written without being run.
macro_rules! contract {
    ($( $(#[$meta:meta])* fn $name:ident($store:ident) $body:block )+) => {
        $(
            $(#[$meta])*
            pub fn $name<S: Ports>($store: Arc<S>) -> anyhow::Result<()> $body
        )+

        /// Every case, by name.
        pub fn cases<S: Ports>() -> Vec<(&'static str, Case<S>)> {
            vec![$((stringify!($name), $name::<S> as Case<S>)),+]
        }
    };
}

contract! {
    /// What creation writes reads back exactly: every field, every time as
    /// given, the tasks by name, the creation events.
    fn a_created_flow_execution_reads_back_exactly_as_planned(store) {
        let tenant = organization(&*store, "acme")?;
        let created = flow(&*store, tenant, &["load", "extract"])?;
        let detail = created.detail();
        let names: Vec<&str> = detail.task_executions.iter().map(|t| t.task_name.as_str()).collect();
        ensure!(names == ["extract", "load"], "tasks are ordered by name: {names:?}");
        ensure!(
            store.read(tenant, |tx| tx.flow_execution(created.flow_execution.id))? == detail,
            "the flow execution read back differs from what was stored"
        );
        for task in &created.task_executions {
            ensure!(&store.task_execution(tenant, task.id)? == task, "the hot read differs");
            ensure!(&store.read(tenant, |tx| tx.task_execution(task.id))? == task);
            let events = history(&*store, tenant, task.id)?;
            let expected: Vec<_> = created.events.iter().filter(|e| e.task_execution_id == task.id).cloned().collect();
            ensure!(events == expected, "events {events:?}");
        }
        Ok(())
    }

    /// Any JSON value comes back unchanged, in the canonical form.
    fn json_values_round_trip_unchanged(store) {
        let tenant = organization(&*store, "acme")?;
        let mut values = vec![
            json!(true),
            json!(0),
            json!(-17),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.1),
            json!(1.5e300),
            json!(-2.25),
            json!(""),
            json!("ünïcødé ✓ \"quoted\" back\\slash\nnew line\ttab \u{1F600}"),
            json!([]),
            json!({}),
            json!({"z": 1, "a": {"nested": [1, "two", {"three": 3.0}]}, "m": [null, false]}),
        ];
        // Numbers as clients write them: every digit and the scale survive,
        // in the one notation both stores return (flowexec_domain::json).
        for text in [
            "123456789012345678901234567890",
            "100000000000000000000.5",
            "-0.0",
            "1e2",
            "1.50e1",
            "-1.0e-2",
            "0.000",
            "5e-324",
            "1.7976931348623157e308",
            "[1e999, -1e-999, 2.50E0]",
        ] {
            values.push(serde_json::from_str(text)?);
        }
        let values: Vec<Value> = values
            .into_iter()
            .map(|v| canonicalize(v, usize::MAX).map_err(|e| anyhow::anyhow!("{e:?}")))
            .collect::<anyhow::Result<_>>()?;
        for value in values {
            let new = NewFlowExecution::new(
                FlowName::parse("json")?,
                Some(value.clone()),
                vec![NewTask { task_name: TaskName::parse("t")?, input: Some(value.clone()), run: RunOptions::default() }],
            )?;
            let creation = new.plan(tenant.organization_id(), Actor::System, at(1));
            store_creation(&*store, tenant, &creation)?;
            let read = store.task_execution(tenant, creation.task_executions[0].id)?;
            ensure!(read.input.as_ref() == Some(&value), "input {value} came back as {:?}", read.input);
            ensure!(
                read.input.map(|v| v.to_string()) == Some(value.to_string()),
                "{value} serializes differently after the round trip"
            );
        }
        Ok(())
    }

    /// Another tenant's rows are answered as missing ones, and cannot be
    /// changed or extended.
    fn another_tenant_cannot_read_or_change_a_row(store) {
        let a = organization(&*store, "a")?;
        let b = organization(&*store, "b")?;
        let b_flow = flow(&*store, b, &["t"])?;
        let b_task = b_flow.task_executions[0].clone();
        ensure!(matches!(store.task_execution(a, b_task.id), Err(RepoError::NotFound)));
        ensure!(matches!(store.read(a, |tx| tx.task_execution(b_task.id)), Err(RepoError::NotFound)));
        ensure!(matches!(
            store.read(a, |tx| tx.flow_execution(b_flow.flow_execution.id)),
            Err(RepoError::NotFound)
        ));
        ensure!(matches!(history(&*store, a, b_task.id), Err(RepoError::NotFound)));
        ensure!(store.read(a, |tx| tx.last_event(b_task.id))?.is_none());
        ensure!(matches!(
            store.read(a, |tx| tx.latest_execution_index(b_flow.flow_execution.id, &b_task.task_name)),
            Err(RepoError::NotFound)
        ));
        ensure!(matches!(change(&*store, a, b_task.id, Transition::Start, 2), Err(RepoError::NotFound)));
        // A task of A's, placed in B's flow execution: B's flow is missing to A.
        let mut intruder = b_task.clone();
        intruder.id = TaskExecutionId::generate();
        intruder.organization_id = a.organization_id();
        intruder.task_name = TaskName::parse("intruder")?;
        ensure!(matches!(
            store.in_tenant(a, |tx| tx.insert_task_executions(std::slice::from_ref(&intruder))),
            Err(RepoError::NotFound)
        ));
        // Rows of B handed to a unit of work of A are refused.
        ensure!(store.in_tenant(a, |tx| tx.insert_flow_execution(&b_flow.flow_execution)).is_err());
        ensure!(store.task_execution(b, b_task.id)? == b_task, "B's task changed");
        ensure!(matches!(store.task_execution(a, TaskExecutionId::generate()), Err(RepoError::NotFound)));
        Ok(())
    }

    /// Concurrent reads for two tenants on shared connections never return
    /// a row of the other.
    fn interleaved_concurrent_reads_never_return_a_foreign_row(store) {
        let tenants = [organization(&*store, "a")?, organization(&*store, "b")?];
        let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let ids: Arc<Vec<Vec<TaskExecutionId>>> = Arc::new(
            tenants
                .iter()
                .map(|t| Ok(flow(&*store, *t, &names)?.task_executions.iter().map(|t| t.id).collect()))
                .collect::<anyhow::Result<_>>()?,
        );
        let (threads, rounds) = (8, 300);
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|worker| {
                let (store, ids, barrier) = (store.clone(), ids.clone(), barrier.clone());
                thread::spawn(move || -> anyhow::Result<usize> {
                    barrier.wait();
                    for round in 0..rounds {
                        let me = (worker + round) % 2;
                        let own = ids[me][round % ids[me].len()];
                        let foreign = ids[1 - me][round % ids[1 - me].len()];
                        let read = store.task_execution(tenants[me], own)?;
                        ensure!(read.organization_id == tenants[me].organization_id());
                        ensure!(matches!(store.task_execution(tenants[me], foreign), Err(RepoError::NotFound)));
                    }
                    Ok(rounds * 2)
                })
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle.join().map_err(|_| anyhow::anyhow!("a reader panicked"))??;
        }
        ensure!(total == threads * rounds * 2);
        Ok(())
    }

    /// For every (status, transition) pair, the store either writes exactly
    /// what the domain planned, with its one event, or refuses naming the
    /// current status and changes nothing.
    fn every_status_change_writes_exactly_what_the_domain_planned(store) {
        let tenant = organization(&*store, "acme")?;
        // How to reach each status from queued.
        let paths: [(TaskStatus, Vec<Transition>); 6] = [
            (TaskStatus::Queued, vec![]),
            (TaskStatus::Running, vec![Transition::Start]),
            (TaskStatus::Completed, vec![Transition::Start, Transition::Complete { output: Some(json!(1)) }]),
            (TaskStatus::Failed, vec![Transition::Start, Transition::Fail { error: Some(json!({"e": 1})) }]),
            (TaskStatus::Deleted, vec![Transition::Delete]),
            (TaskStatus::Stale, vec![Transition::Start, Transition::Complete { output: None }, Transition::MarkStale]),
        ];
        let transitions = || {
            [
                Transition::Start,
                Transition::Complete { output: Some(json!({"rows": [1, 2]})) },
                Transition::Fail { error: Some(json!("boom")) },
                Transition::Delete,
                Transition::MarkStale,
            ]
        };
        let mut checked = 0;
        for (status, path) in &paths {
            for transition in transitions() {
                let task = flow(&*store, tenant, &["t"])?.task_executions[0].id;
                for (i, step) in path.iter().enumerate() {
                    change(&*store, tenant, task, step.clone(), 10 + i as i64)?;
                }
                let before = store.task_execution(tenant, task)?;
                ensure!(before.status == *status);
                let events_before = history(&*store, tenant, task)?;
                let plan = transition.clone().plan(task, Actor::ServiceAccount, Some("checked".into()), at(99));
                let outcome = store.in_tenant(tenant, |tx| tx.change_status(&plan))?;
                let after = store.task_execution(tenant, task)?;
                let events = history(&*store, tenant, task)?;
                if status.can_transition_to(transition.to()) {
                    let expected = plan.applied_to(&before);
                    ensure!(expected.version == before.version + 1);
                    ensure!(outcome == ChangeOutcome::Changed(expected.clone()), "{status} -> {:?}: {outcome:?}", transition.to());
                    ensure!(after == expected, "{status} -> {:?}: stored {after:?}", transition.to());
                    ensure!(events.len() == events_before.len() + 1);
                    ensure!(events.last() == Some(&plan.event(*status)));
                } else {
                    ensure!(
                        outcome == ChangeOutcome::Refused(before.clone()),
                        "{status} -> {:?}: {outcome:?}", transition.to()
                    );
                    ensure!(after == before, "a refused change changed the row");
                    ensure!(events == events_before, "a refused change recorded an event");
                }
                checked += 1;
            }
        }
        ensure!(checked == 30);
        Ok(())
    }

    /// Of 16 concurrent claims of one queued task, exactly one wins; the
    /// others see it running.
    fn of_many_concurrent_claims_exactly_one_wins(store) {
        let tenant = organization(&*store, "a")?;
        let task = flow(&*store, tenant, &["t"])?.task_executions[0].id;
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    change(&*store, tenant, task, Transition::Start, 2)
                })
            })
            .collect();
        let mut winners = 0;
        for handle in handles {
            match handle.join().map_err(|_| anyhow::anyhow!("a claimant panicked"))? {
                Ok(_) => winners += 1,
                Err(RepoError::InvalidTransition { current: TaskStatus::Running, .. }) => {}
                Err(other) => anyhow::bail!("unexpected answer: {other:?}"),
            }
        }
        ensure!(winners == 1, "{winners} claims won");
        ensure!(history(&*store, tenant, task)?.len() == 2, "creation and one claim");
        Ok(())
    }

    /// A claim takes the due queued tasks of the names asked, the highest
    /// priority first, then the oldest; writes each running under the
    /// worker's lease with its event; and never takes another tenant's.
    fn claims_take_due_tasks_by_priority_then_age(store) {
        let tenant = organization(&*store, "a")?;
        let other = organization(&*store, "b")?;
        flow(&*store, other, &["x"])?;
        let mut creation = NewFlowExecution::new(
            FlowName::parse("etl")?,
            None,
            ["low", "high", "later", "mid"].iter().map(|n| Ok(NewTask {
                task_name: TaskName::parse(*n)?,
                input: Some(json!(n)),
                run: RunOptions::default(),
            })).collect::<anyhow::Result<_>>()?,
        )?.plan(tenant.organization_id(), Actor::Integration, at(1));
        for task in &mut creation.task_executions {
            match task.task_name.as_str() {
                "high" => task.run.priority = 5,
                "mid" => task.run.priority = 1,
                "later" => { task.run.priority = 9; task.not_before = Some(at(50)); }
                _ => {}
            }
        }
        store_creation(&*store, tenant, &creation)?;
        let worker = WorkerId::parse("w-1")?;
        let first = Claim::new(worker.clone(), vec![], 2, 60, Actor::Integration, at(10));
        let taken = store.in_tenant(tenant, |tx| tx.claim(&first))?;
        let names: Vec<&str> = taken.iter().map(|t| t.task_name.as_str()).collect();
        ensure!(names == ["high", "mid"], "taken {names:?}");
        for task in &taken {
            let before = creation.task_executions.iter().find(|t| t.id == task.id).context("unknown task")?;
            ensure!(*task == first.applied_to(before), "{task:?}");
            ensure!(store.task_execution(tenant, task.id)? == *task, "stored differs");
            let events = history(&*store, tenant, task.id)?;
            ensure!(events.last() == Some(&first.event(task.id)), "{events:?}");
        }
        let only_later = Claim::new(worker.clone(), vec![TaskName::parse("later")?], 5, 60, Actor::Integration, at(20));
        ensure!(store.in_tenant(tenant, |tx| tx.claim(&only_later))?.is_empty(), "a task taken before its time");
        // When the earliest task a claim could take falls due: of its names,
        // not yet due, and of its tenant only (the other's falls due sooner).
        let mut sooner = NewFlowExecution::new(FlowName::parse("etl")?, None, vec![NewTask {
            task_name: TaskName::parse("later")?,
            input: None,
            run: RunOptions::default(),
        }])?.plan(other.organization_id(), Actor::Integration, at(1));
        sooner.task_executions[0].not_before = Some(at(30));
        store_creation(&*store, other, &sooner)?;
        // Of its own tenant, one already due at the claim's time (taken by
        // it, were it not for the name): not one to wait for.
        let mut due_now = NewFlowExecution::new(FlowName::parse("etl")?, None, vec![NewTask {
            task_name: TaskName::parse("soon")?,
            input: None,
            run: RunOptions::default(),
        }])?.plan(tenant.organization_id(), Actor::Integration, at(1));
        due_now.task_executions[0].not_before = Some(at(5));
        store_creation(&*store, tenant, &due_now)?;
        let next_due = |claim: &Claim| store.in_tenant(tenant, |tx| tx.next_due(claim));
        ensure!(next_due(&only_later)? == Some(at(50)), "next due {:?}", next_due(&only_later)?);
        ensure!(next_due(&Claim { task_names: vec![], ..only_later.clone() })? == Some(at(50)), "any name");
        let soon = Claim { task_names: vec![TaskName::parse("soon")?], ..only_later.clone() };
        ensure!(next_due(&soon)?.is_none(), "a task due before the claim is not one to wait for");
        ensure!(next_due(&Claim { at: at(50), ..only_later.clone() })?.is_none(), "due at the claim's time");
        let due = Claim { at: at(50), ..only_later };
        let later = store.in_tenant(tenant, |tx| tx.claim(&due))?;
        ensure!(later.len() == 1 && later[0].task_name.as_str() == "later");
        let everything = Claim::new(worker, vec![], 10, 60, Actor::Integration, at(60));
        let rest = store.in_tenant(tenant, |tx| tx.claim(&everything))?;
        let mut names: Vec<&str> = rest.iter().map(|t| t.task_name.as_str()).collect();
        names.sort_unstable();
        ensure!(names == ["low", "soon"], "the rest: {names:?} (another tenant's task must not be taken)");
        Ok(())
    }

    /// Of many concurrent claims, each queued task is taken exactly once
    /// and every task is taken.
    fn concurrent_claims_take_each_task_once(store) {
        let tenant = organization(&*store, "a")?;
        let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        flow(&*store, tenant, &names)?;
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || -> anyhow::Result<Vec<TaskExecutionId>> {
                    let claim = Claim::new(WorkerId::parse(format!("w{i}"))?, vec![], 3, 60, Actor::Integration, at(5));
                    barrier.wait();
                    let mut mine = Vec::new();
                    loop {
                        let taken = store.in_tenant(tenant, |tx| tx.claim(&claim))?;
                        if taken.is_empty() {
                            return Ok(mine);
                        }
                        mine.extend(taken.iter().map(|t| t.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().map_err(|_| anyhow::anyhow!("a claimant panicked"))??);
        }
        let total = all.len();
        all.sort();
        all.dedup();
        ensure!(all.len() == total, "a task was taken twice");
        ensure!(total == 40, "{total} of 40 tasks taken");
        Ok(())
    }

    /// A heartbeat extends the lease of the worker that holds the task,
    /// records no event and keeps the version; anyone else's, or on a task
    /// no longer running, changes nothing.
    fn a_heartbeat_extends_only_the_holders_lease(store) {
        let tenant = organization(&*store, "a")?;
        flow(&*store, tenant, &["t"])?;
        let holder = WorkerId::parse("w-1")?;
        let claim = Claim::new(holder.clone(), vec![], 1, 30, Actor::Integration, at(10));
        let task = store.in_tenant(tenant, |tx| tx.claim(&claim))?.pop().context("nothing claimed")?;
        let beat = Heartbeat::new(task.id, holder.clone(), 60, at(20));
        let ChangeOutcome::Changed(after) = store.in_tenant(tenant, |tx| tx.heartbeat(&beat))? else {
            anyhow::bail!("the holder's heartbeat was refused");
        };
        ensure!(after == beat.applied_to(&task), "{after:?}");
        ensure!(after.version == task.version);
        ensure!(store.task_execution(tenant, task.id)? == after);
        ensure!(history(&*store, tenant, task.id)?.len() == 2, "a heartbeat recorded an event");
        let stranger = Heartbeat::new(task.id, WorkerId::parse("w-2")?, 60, at(21));
        ensure!(store.in_tenant(tenant, |tx| tx.heartbeat(&stranger))? == ChangeOutcome::Refused(after));
        let done = Transition::Complete { output: None }.plan(task.id, Actor::Integration, None, at(22)).held_by(holder.clone());
        store.in_tenant(tenant, |tx| tx.change_status(&done))?;
        let late = Heartbeat::new(task.id, holder, 60, at(23));
        ensure!(matches!(store.in_tenant(tenant, |tx| tx.heartbeat(&late))?, ChangeOutcome::Refused(t) if t.status == TaskStatus::Completed));
        let missing = Heartbeat::new(TaskExecutionId::generate(), WorkerId::parse("w-1")?, 60, at(24));
        ensure!(matches!(store.in_tenant(tenant, |tx| tx.heartbeat(&missing)), Err(RepoError::NotFound)));
        Ok(())
    }

    /// A worker's report applies only while that worker holds the task; it
    /// ends the lease and keeps the worker on the row.
    fn a_report_applies_only_for_the_worker_holding_the_task(store) {
        let tenant = organization(&*store, "a")?;
        flow(&*store, tenant, &["t"])?;
        let holder = WorkerId::parse("w-1")?;
        let claim = Claim::new(holder.clone(), vec![], 1, 30, Actor::Integration, at(10));
        let task = store.in_tenant(tenant, |tx| tx.claim(&claim))?.pop().context("nothing claimed")?;
        let theirs = Transition::Complete { output: Some(json!(1)) }
            .plan(task.id, Actor::Integration, None, at(11))
            .held_by(WorkerId::parse("w-2")?);
        let refused = store.in_tenant(tenant, |tx| tx.change_status(&theirs))?;
        ensure!(refused == ChangeOutcome::Refused(task.clone()), "{refused:?}");
        ensure!(matches!(theirs.refused(task.clone(), None), Err(RepoError::LeaseLost { current: TaskStatus::Running })));
        let mine = Transition::Complete { output: Some(json!(1)) }
            .plan(task.id, Actor::Integration, None, at(12))
            .held_by(holder.clone());
        let ChangeOutcome::Changed(done) = store.in_tenant(tenant, |tx| tx.change_status(&mine))? else {
            anyhow::bail!("the holder's report was refused");
        };
        ensure!(done == mine.applied_to(&task), "{done:?}");
        ensure!(done.lease.expires_at.is_none() && done.lease.worker_id == Some(holder));
        ensure!(store.task_execution(tenant, task.id)? == done);
        Ok(())
    }

    /// Many changes in one unit of work answer, in order, exactly what each
    /// would alone: applied, refused (another worker's task, a task not
    /// running), not found (the others go on); completions and failures
    /// mixed, as a worker's batch of results is.
    fn many_changes_answer_as_each_would_alone(store) {
        let tenant = organization(&*store, "a")?;
        let created = flow(&*store, tenant, &["a", "b", "c", "d", "e", "f"])?;
        let mine = WorkerId::parse("w-1")?;
        let claim = Claim::new(mine.clone(), vec![], 4, 30, Actor::Integration, at(10));
        let claimed = store.in_tenant(tenant, |tx| tx.claim(&claim))?;
        ensure!(claimed.len() == 4, "{claimed:?}");
        let theirs = Claim::new(WorkerId::parse("w-2")?, vec![], 1, 30, Actor::Integration, at(11));
        let other = store.in_tenant(tenant, |tx| tx.claim(&theirs))?.pop().context("nothing claimed")?;
        let taken: Vec<TaskExecutionId> = claimed.iter().chain([&other]).map(|t| t.id).collect();
        let queued = created
            .task_executions
            .iter()
            .find(|t| !taken.contains(&t.id))
            .context("no queued task")?;
        let queued = store.task_execution(tenant, queued.id)?;
        let complete = |id, n: i64| {
            Transition::Complete { output: Some(json!({"n": n})) }
                .plan(id, Actor::Integration, None, at(12))
                .held_by(mine.clone())
        };
        let fail = |id| {
            Transition::Fail { error: Some(json!({"code": "boom"})) }
                .plan(id, Actor::Integration, None, at(12))
                .held_by(mine.clone())
        };
        let plans = vec![
            complete(claimed[0].id, 0),
            complete(other.id, 1),
            fail(claimed[1].id),
            complete(TaskExecutionId::generate(), 2),
            complete(claimed[2].id, 3),
            complete(queued.id, 4),
            fail(claimed[3].id),
        ];
        let answers = store.in_tenant(tenant, |tx| tx.change_many(&plans))?;
        ensure!(answers.len() == plans.len());
        let expected = [
            Some(ChangeOutcome::Changed(plans[0].applied_to(&claimed[0]))),
            Some(ChangeOutcome::Refused(other.clone())),
            Some(ChangeOutcome::Changed(plans[2].applied_to(&claimed[1]))),
            None,
            Some(ChangeOutcome::Changed(plans[4].applied_to(&claimed[2]))),
            Some(ChangeOutcome::Refused(queued.clone())),
            Some(ChangeOutcome::Changed(plans[6].applied_to(&claimed[3]))),
        ];
        for (i, (answer, expected)) in answers.iter().zip(&expected).enumerate() {
            match (answer, expected) {
                (Ok(outcome), Some(expected)) => ensure!(outcome == expected, "{i}: {outcome:?}"),
                (Err(RepoError::NotFound), None) => {}
                (answer, _) => anyhow::bail!("{i}: {answer:?}"),
            }
        }
        for (i, task) in [(0, &claimed[0]), (2, &claimed[1]), (4, &claimed[2]), (6, &claimed[3])] {
            let Some(ChangeOutcome::Changed(after)) = &expected[i] else { unreachable!() };
            ensure!(&store.task_execution(tenant, task.id)? == after);
            ensure!(history(&*store, tenant, task.id)?.len() == 3, "{i}: no event recorded");
        }
        ensure!(store.task_execution(tenant, other.id)? == other);
        ensure!(store.task_execution(tenant, queued.id)? == queued);
        // The same row twice, after a change of the other shape: in order,
        // the second change sees the first.
        flow(&*store, tenant, &["g", "h"])?;
        let claim = Claim::new(mine.clone(), vec![], 2, 30, Actor::Integration, at(13));
        let pair = store.in_tenant(tenant, |tx| tx.claim(&claim))?;
        let [g, h] = pair.as_slice() else { anyhow::bail!("{pair:?}") };
        let plans = vec![complete(h.id, 5), fail(g.id), complete(g.id, 6)];
        let answers = store.in_tenant(tenant, |tx| tx.change_many(&plans))?;
        let failed = plans[1].applied_to(g);
        ensure!(matches!(&answers[0], Ok(ChangeOutcome::Changed(row)) if *row == plans[0].applied_to(h)), "{answers:?}");
        ensure!(matches!(&answers[1], Ok(ChangeOutcome::Changed(row)) if *row == failed), "{answers:?}");
        ensure!(matches!(&answers[2], Ok(ChangeOutcome::Refused(row)) if *row == failed), "{answers:?}");
        Ok(())
    }

    /// A failure and the attempt that follows it are stored in one unit of
    /// work; the next attempt is claimable once its delay has passed.
    fn a_failure_and_its_next_attempt_commit_together(store) {
        let tenant = organization(&*store, "a")?;
        flow(&*store, tenant, &["t"])?;
        let worker = WorkerId::parse("w-1")?;
        let claim = Claim::new(worker.clone(), vec![], 1, 30, Actor::Integration, at(10));
        let task = store.in_tenant(tenant, |tx| tx.claim(&claim))?.pop().context("nothing claimed")?;
        let policy = RetryPolicy { jitter: Jitter::None, ..RetryPolicy::default() };
        let fail = Transition::Fail { error: Some(json!({"code": "boom"})) }
            .plan(task.id, Actor::Integration, None, at(11))
            .held_by(worker.clone());
        let next = store.in_tenant(tenant, |tx| {
            let ChangeOutcome::Changed(failed) = tx.change_status(&fail)? else {
                return Err(RepoError::Unknown(anyhow::anyhow!("the failure was refused")));
            };
            let (next, event) = next_attempt(&failed, &policy, Actor::System, at(11), 0.0)
                .ok_or_else(|| RepoError::Unknown(anyhow::anyhow!("no attempt left")))?;
            tx.insert_task_executions(std::slice::from_ref(&next))?;
            tx.insert_events(&[event])?;
            Ok(next)
        })?;
        ensure!(store.task_execution(tenant, next.id)? == next);
        ensure!(next.execution_index == 1 && next.not_before == Some(at(12)));
        let early = Claim::new(worker.clone(), vec![], 5, 30, Actor::Integration, at(11));
        ensure!(store.in_tenant(tenant, |tx| tx.claim(&early))?.is_empty());
        let due = Claim::new(worker, vec![], 5, 30, Actor::Integration, at(12));
        let taken = store.in_tenant(tenant, |tx| tx.claim(&due))?;
        ensure!(taken.len() == 1 && taken[0].id == next.id);
        // Rolled back together: a unit that fails after both writes leaves
        // neither.
        let again = Transition::Fail { error: None }.plan(next.id, Actor::Integration, None, at(13));
        let undone = store.in_tenant(tenant, |tx| -> Result<(), RepoError> {
            let ChangeOutcome::Changed(failed) = tx.change_status(&again)? else {
                return Err(RepoError::Unknown(anyhow::anyhow!("refused")));
            };
            let (third, event) = next_attempt(&failed, &policy, Actor::System, at(13), 0.0)
                .ok_or_else(|| RepoError::Unknown(anyhow::anyhow!("no attempt left")))?;
            tx.insert_task_executions(&[third])?;
            tx.insert_events(&[event])?;
            Err(RepoError::Unknown(anyhow::anyhow!("crash before commit")))
        });
        ensure!(undone.is_err());
        ensure!(store.task_execution(tenant, next.id)?.status == TaskStatus::Running, "the failure survived a rollback");
        ensure!(store.read(tenant, |tx| tx.latest_execution_index(next.flow_execution_id, &next.task_name))? == 1, "the next attempt survived a rollback");
        Ok(())
    }

    /// The overdue runs of every tenant are found — past their lease, or
    /// at their time limit — and no other.
    fn overdue_runs_are_found_across_tenants(store) {
        let mut expected = Vec::new();
        for name in ["a", "b"] {
            let tenant = organization(&*store, name)?;
            let mut creation = NewFlowExecution::new(
                FlowName::parse("etl")?,
                None,
                ["lapses", "times-out", "fine", "queued"].iter().map(|n| Ok(NewTask {
                    task_name: TaskName::parse(*n)?,
                    input: None,
                    run: RunOptions::default(),
                })).collect::<anyhow::Result<_>>()?,
            )?.plan(tenant.organization_id(), Actor::Integration, at(1));
            for task in &mut creation.task_executions {
                if task.task_name.as_str() == "times-out" {
                    task.run.timeout_seconds = Some(30);
                }
            }
            store_creation(&*store, tenant, &creation)?;
            let worker = WorkerId::parse("w")?;
            // Leases to 100 s (the first), 1,000 s (the others).
            for (name, lease) in [("lapses", 90), ("times-out", 990), ("fine", 990)] {
                let claim = Claim::new(worker.clone(), vec![TaskName::parse(name)?], 1, lease, Actor::Integration, at(10));
                let taken = store.in_tenant(tenant, |tx| tx.claim(&claim))?;
                ensure!(taken.len() == 1, "{name} was not claimed");
                if name != "fine" {
                    expected.push((tenant.organization_id(), taken[0].id));
                }
            }
        }
        // Claimed at 10 s: the time limit ends at 40 s, the lease at 100 s.
        let early = store.overdue_runs(at(39), 100)?;
        ensure!(early.is_empty(), "{early:?}");
        let found = store.overdue_runs(at(101), 100)?;
        let mut found_sorted = found.clone();
        found_sorted.sort();
        expected.sort();
        ensure!(found_sorted == expected, "found {found:?}, expected {expected:?}");
        ensure!(store.overdue_runs(at(101), 1)?.len() == 1, "the limit is kept");
        Ok(())
    }

    /// A unit of work commits all of its writes or none of them.
    fn a_unit_of_work_is_all_or_nothing(store) {
        let tenant = organization(&*store, "a")?;
        let kept = flow(&*store, tenant, &["t"])?;
        let task = kept.task_executions[0].id;
        let creation = NewFlowExecution::new(
            FlowName::parse("f")?,
            None,
            vec![NewTask { task_name: TaskName::parse("t")?, input: None, run: RunOptions::default() }],
        )?
        .plan(tenant.organization_id(), Actor::System, at(5));
        // A change and a creation, then a failure: nothing of either stays.
        let outcome: Result<(), RepoError> = store.in_tenant(tenant, |tx| {
            tx.change_status(&Transition::Start.plan(task, Actor::System, None, at(5)))?;
            tx.insert_flow_execution(&creation.flow_execution)?;
            tx.insert_task_executions(&creation.task_executions)?;
            Err(RepoError::Conflict("the caller changed its mind".into()))
        });
        ensure!(matches!(outcome, Err(RepoError::Conflict(_))));
        ensure!(store.task_execution(tenant, task)?.status == TaskStatus::Queued);
        ensure!(matches!(
            store.read(tenant, |tx| tx.flow_execution(creation.flow_execution.id)),
            Err(RepoError::NotFound)
        ));
        ensure!(history(&*store, tenant, task)?.len() == 1);
        Ok(())
    }

    /// One row per (flow execution, task name, execution index).
    fn the_attempt_key_is_unique(store) {
        let tenant = organization(&*store, "a")?;
        let created = flow(&*store, tenant, &["t"])?;
        let mut again = created.task_executions[0].clone();
        again.id = TaskExecutionId::generate();
        let refused = store.in_tenant(tenant, |tx| tx.insert_task_executions(std::slice::from_ref(&again)));
        ensure!(matches!(refused, Err(RepoError::Conflict(_))), "{refused:?}");
        again.execution_index = 1;
        store.in_tenant(tenant, |tx| tx.insert_task_executions(std::slice::from_ref(&again)))?;
        ensure!(store.read(tenant, |tx| tx.flow_execution(created.flow_execution.id))?.task_executions.len() == 2);
        Ok(())
    }

    /// Keys are found by id before the tenant is known, and need an
    /// existing organization.
    fn keys_are_found_by_id_across_tenants_and_need_an_existing_organization(store) {
        let tenant = organization(&*store, "a")?;
        let key = NewApiKey {
            actor: Actor::User(uuid::Uuid::new_v4()),
            ..key_for(tenant.organization_id(), Role::Worker)
        };
        store.create_api_key(&key)?;
        let found = store.find_api_key(key.id)?.context("the key was not found")?;
        ensure!(found.id == key.id && found.organization_id == tenant.organization_id());
        ensure!((found.role, found.actor, found.secret_sha256) == (key.role, key.actor, key.secret_sha256));
        ensure!(store.find_api_key(ApiKeyId::generate())?.is_none());
        let orphan = key_for(OrganizationId::generate(), Role::Read);
        ensure!(matches!(store.create_api_key(&orphan), Err(RepoError::NotFound)));
        ensure!(store.find_api_key(orphan.id)?.is_none());
        Ok(())
    }

    /// Of 8 concurrent first starts, exactly one creates an organization.
    fn bootstrap_creates_one_organization_only_when_there_is_none(store) {
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || -> anyhow::Result<bool> {
                    let organization = new_organization("default")?;
                    let key = key_for(organization.id, Role::Admin);
                    barrier.wait();
                    Ok(store.bootstrap_organization(&organization, &key)?)
                })
            })
            .collect();
        let mut created = 0;
        for handle in handles {
            created += usize::from(handle.join().map_err(|_| anyhow::anyhow!("panicked"))??);
        }
        ensure!(created == 1, "{created} bootstraps created an organization");
        let organization = new_organization("default-2")?;
        let again = key_for(organization.id, Role::Admin);
        ensure!(!store.bootstrap_organization(&organization, &again)?);
        ensure!(store.find_api_key(again.id)?.is_none(), "a refused bootstrap stored its key");
        Ok(())
    }

    /// Organization names are unique: a second of the same name is a
    /// conflict and stores nothing, not even its key.
    fn organization_names_are_unique(store) {
        let first = organization(&*store, "acme")?;
        let second = new_organization("acme")?;
        let second_key = key_for(second.id, Role::Admin);
        let refused = store.create_organization(&second, &second_key);
        ensure!(matches!(refused, Err(RepoError::Conflict(_))), "a second \"acme\": {refused:?}");
        ensure!(store.find_api_key(second_key.id)?.is_none(), "the refused organization's key was stored");
        // Names are case-sensitive, as everywhere else.
        organization(&*store, "Acme")?;
        ensure!(first.organization_id() != second.id);
        Ok(())
    }

    /// A change bumps the version; one conditioned on a version the row no
    /// longer has is refused with the row as it is, and records nothing.
    fn a_change_conditioned_on_a_stale_version_is_refused(store) {
        let tenant = organization(&*store, "a")?;
        let task = flow(&*store, tenant, &["t"])?.task_executions[0].id;
        ensure!(store.task_execution(tenant, task)?.version == 1);
        let started = change(&*store, tenant, task, Transition::Start, 2)?;
        ensure!(started.version == 2);
        let complete = Transition::Complete { output: Some(json!(7)) }.plan(task, Actor::System, None, at(3));
        let stale = complete.clone().if_match(IfMatch::Versions(vec![1, 5]));
        let refused = store.in_tenant(tenant, |tx| tx.change_status(&stale))?;
        ensure!(refused == ChangeOutcome::Refused(started.clone()), "{refused:?}");
        ensure!(store.task_execution(tenant, task)? == started);
        ensure!(history(&*store, tenant, task)?.len() == 2);
        let current = complete.if_match(IfMatch::Versions(vec![2]));
        let ChangeOutcome::Changed(done) = store.in_tenant(tenant, |tx| tx.change_status(&current))? else {
            anyhow::bail!("a change on the current version was refused");
        };
        ensure!(done.version == 3 && done.status == TaskStatus::Completed && done.output == Some(json!(7)));
        Ok(())
    }

    /// The history pages by event id, oldest first, and the last event is
    /// the latest change.
    fn events_page_by_id_and_the_last_is_the_latest_change(store) {
        let tenant = organization(&*store, "a")?;
        let task = flow(&*store, tenant, &["t"])?.task_executions[0].id;
        change(&*store, tenant, task, Transition::Start, 2)?;
        change(&*store, tenant, task, Transition::Fail { error: None }, 3)?;
        change(&*store, tenant, task, Transition::MarkStale, 4)?;
        let all = store.read(tenant, |tx| tx.events(task, None, 100))?;
        ensure!(all.len() == 4, "{all:?}");
        ensure!(all.windows(2).all(|w| w[0].id < w[1].id), "ids do not grow: {all:?}");
        let tos: Vec<TaskStatus> = all.iter().map(|e| e.event.to).collect();
        ensure!(tos == [TaskStatus::Queued, TaskStatus::Running, TaskStatus::Failed, TaskStatus::Stale]);
        let first = store.read(tenant, |tx| tx.events(task, None, 3))?;
        ensure!(first[..] == all[..3]);
        let rest = store.read(tenant, |tx| tx.events(task, Some(first[2].id), 3))?;
        ensure!(rest[..] == all[3..]);
        ensure!(store.read(tenant, |tx| tx.events(task, Some(all[3].id), 3))?.is_empty());
        ensure!(store.read(tenant, |tx| tx.last_event(task))?.as_ref() == Some(&all[3].event));
        ensure!(store.read(tenant, |tx| tx.last_event(TaskExecutionId::generate()))?.is_none());
        Ok(())
    }

    /// The latest attempt of a task is its highest execution index.
    fn the_latest_execution_index_is_the_highest_attempt(store) {
        let tenant = organization(&*store, "a")?;
        let created = flow(&*store, tenant, &["t", "u"])?;
        let t = created.task_executions[0].clone();
        let flow_id = created.flow_execution.id;
        ensure!(store.read(tenant, |tx| tx.latest_execution_index(flow_id, &t.task_name))? == 0);
        for index in [3, 1] {
            let mut attempt = t.clone();
            attempt.id = TaskExecutionId::generate();
            attempt.execution_index = index;
            store.in_tenant(tenant, |tx| tx.insert_task_executions(std::slice::from_ref(&attempt)))?;
        }
        ensure!(store.read(tenant, |tx| tx.latest_execution_index(flow_id, &t.task_name))? == 3);
        let u = &created.task_executions[1].task_name;
        ensure!(store.read(tenant, |tx| tx.latest_execution_index(flow_id, u))? == 0);
        let none = TaskName::parse("none")?;
        ensure!(matches!(
            store.read(tenant, |tx| tx.latest_execution_index(flow_id, &none)),
            Err(RepoError::NotFound)
        ));
        Ok(())
    }

    /// 16 units of work racing to add the same next attempt of one task
    /// (what concurrent retries of attempt 0 each try): one commits, every
    /// other is a conflict, and one attempt is added.
    fn of_many_concurrent_next_attempts_exactly_one_is_stored(store) {
        let tenant = organization(&*store, "a")?;
        let created = flow(&*store, tenant, &["t"])?;
        let first = created.task_executions[0].clone();
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (store, barrier, first) = (store.clone(), barrier.clone(), first.clone());
                thread::spawn(move || {
                    barrier.wait();
                    store.in_tenant(tenant, |tx| {
                        let mut next = first.clone();
                        next.id = TaskExecutionId::generate();
                        next.execution_index = first.execution_index + 1;
                        tx.insert_task_executions(std::slice::from_ref(&next))
                    })
                })
            })
            .collect();
        let mut stored = 0;
        for handle in handles {
            match handle.join().map_err(|_| anyhow::anyhow!("a thread panicked"))? {
                Ok(()) => stored += 1,
                Err(RepoError::Conflict(_)) => {}
                Err(other) => anyhow::bail!("unexpected answer: {other:?}"),
            }
        }
        ensure!(stored == 1, "{stored} next attempts were stored");
        let tasks = store.read(tenant, |tx| tx.flow_execution(created.flow_execution.id))?.task_executions;
        ensure!(tasks.len() == 2 && tasks[1].execution_index == 1, "{tasks:?}");
        Ok(())
    }

    /// 16 threads racing complete, fail and delete on one running task:
    /// each target status is reached at most once, every success has one
    /// event, and the row ends in the status of the last event.
    fn conflicting_concurrent_changes_each_win_at_most_once(store) {
        let tenant = organization(&*store, "a")?;
        let task = flow(&*store, tenant, &["t"])?.task_executions[0].id;
        change(&*store, tenant, task, Transition::Start, 2)?;
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                let transition = match i % 3 {
                    0 => Transition::Complete { output: Some(json!(i)) },
                    1 => Transition::Fail { error: Some(json!(i)) },
                    _ => Transition::Delete,
                };
                thread::spawn(move || {
                    barrier.wait();
                    (transition.to(), change(&*store, tenant, task, transition, 3))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for handle in handles {
            match handle.join().map_err(|_| anyhow::anyhow!("a thread panicked"))? {
                (to, Ok(row)) => {
                    ensure!(row.status == to);
                    winners.push(to);
                }
                (_, Err(RepoError::InvalidTransition { .. })) => {}
                (_, Err(other)) => anyhow::bail!("unexpected answer: {other:?}"),
            }
        }
        let completed_or_failed = winners.iter().filter(|s| matches!(s, TaskStatus::Completed | TaskStatus::Failed)).count();
        let deleted = winners.iter().filter(|s| **s == TaskStatus::Deleted).count();
        ensure!(completed_or_failed <= 1 && deleted == 1, "winners: {winners:?}");
        let events = history(&*store, tenant, task)?;
        ensure!(events.len() == 2 + winners.len(), "{} events for {} winners", events.len(), winners.len());
        let row = store.task_execution(tenant, task)?;
        ensure!(events.last().map(|e| e.to) == Some(row.status));
        ensure!(row.status == TaskStatus::Deleted && row.version == 2 + winners.len() as i64);
        ensure!(events.windows(2).all(|w| w[0].to == w[1].from.unwrap_or(w[0].to)), "the chain of events is broken: {events:?}");
        Ok(())
    }

    /// The cursor secret exists, is long enough, and does not change.
    fn the_cursor_secret_is_long_and_stable(store) {
        let secret = store.cursor_secret()?;
        ensure!(secret.len() >= 32, "{} bytes", secret.len());
        ensure!(store.cursor_secret()? == secret);
        ensure!(secret.iter().any(|b| *b != secret[0]), "the secret is not random");
        Ok(())
    }

    /// Lists are ordered by (created_at, id) either way, page strictly after
    /// a position without skipping or repeating rows of the same instant,
    /// and apply every filter; deleted rows only when asked for.
    fn lists_page_by_keyset_and_apply_every_filter(store) {
        let tenant = organization(&*store, "a")?;
        let other = organization(&*store, "b")?;
        flow(&*store, other, &["x", "y"])?;
        // Three flows at three instants, three tasks each (one instant per
        // flow: ties broken by id).
        let mut created = Vec::new();
        for (second, name) in [(10, "early"), (20, "mid"), (30, "late")] {
            let tasks = ["a", "b", "c"]
                .iter()
                .map(|t| Ok(NewTask { task_name: TaskName::parse(*t)?, input: None, run: RunOptions::default() }))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let creation = NewFlowExecution::new(FlowName::parse(name)?, None, tasks)?
                .plan(tenant.organization_id(), Actor::Integration, at(second));
            store_creation(&*store, tenant, &creation)?;
            created.push(creation);
        }
        let all: Vec<TaskExecution> = created.iter().flat_map(|c| c.task_executions.clone()).collect();
        let key = |t: &TaskExecution| (t.created_at, t.id);
        let mut oldest = all;
        oldest.sort_by_key(key);
        let list = |filter: TaskExecutionFilter, order: Order, after: Option<Position>, limit: usize| {
            store.read(tenant, |tx| tx.list_task_executions(&ListQuery { filter: filter.clone(), order, after, limit }))
        };
        // Every page of 2, both orders: the whole list, in order, once.
        for order in [Order::OldestFirst, Order::NewestFirst] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = list(TaskExecutionFilter::default(), order, after, 2)?;
                if page.is_empty() { break; }
                after = page.last().map(|t| Position { created_at: t.created_at, id: t.id.into_uuid() });
                seen.extend(page);
            }
            let mut expected = oldest.clone();
            if order == Order::NewestFirst { expected.reverse(); }
            ensure!(seen == expected, "{order:?}: {:?}", seen.iter().map(|t| t.id).collect::<Vec<_>>());
        }
        // Filters.
        let first_flow = created[0].flow_execution.id;
        let by_flow = list(TaskExecutionFilter { flow_execution_id: Some(first_flow), ..Default::default() }, Order::OldestFirst, None, 100)?;
        ensure!(by_flow.len() == 3 && by_flow.iter().all(|t| t.flow_execution_id == first_flow));
        let b = TaskName::parse("b")?;
        let by_name = list(TaskExecutionFilter { task_name: Some(b.clone()), ..Default::default() }, Order::OldestFirst, None, 100)?;
        ensure!(by_name.len() == 3 && by_name.iter().all(|t| t.task_name == b));
        let created_range = TimeRange { after: Some(at(10)), before: Some(at(30)) };
        let by_time = list(TaskExecutionFilter { created: created_range, ..Default::default() }, Order::OldestFirst, None, 100)?;
        ensure!(by_time.len() == 3 && by_time.iter().all(|t| t.created_at == at(20)), "{by_time:?}");
        // Change some: a running one, a deleted one, a retried one.
        let runner = created[1].task_executions[0].id;
        let gone = created[2].task_executions[1].id;
        let retried = created[0].task_executions[2].clone();
        change(&*store, tenant, runner, Transition::Start, 40)?;
        change(&*store, tenant, gone, Transition::Delete, 41)?;
        change(&*store, tenant, retried.id, Transition::Start, 42)?;
        change(&*store, tenant, retried.id, Transition::Fail { error: None }, 43)?;
        let mut next = retried.clone();
        next.id = TaskExecutionId::generate();
        next.execution_index = 1;
        next.created_at = at(44);
        next.updated_at = at(44);
        store.in_tenant(tenant, |tx| tx.insert_task_executions(std::slice::from_ref(&next)))?;
        let default = list(TaskExecutionFilter::default(), Order::OldestFirst, None, 100)?;
        ensure!(default.len() == 9, "deleted hidden, the retry shown: {}", default.len());
        ensure!(!default.iter().any(|t| t.id == gone));
        let deleted = list(TaskExecutionFilter { statuses: vec![TaskStatus::Deleted], ..Default::default() }, Order::OldestFirst, None, 100)?;
        ensure!(deleted.len() == 1 && deleted[0].id == gone);
        let active = list(TaskExecutionFilter { statuses: vec![TaskStatus::Running, TaskStatus::Failed], ..Default::default() }, Order::OldestFirst, None, 100)?;
        let mut active_ids: Vec<TaskExecutionId> = active.iter().map(|t| t.id).collect();
        active_ids.sort();
        let mut expected_ids = vec![runner, retried.id];
        expected_ids.sort();
        ensure!(active_ids == expected_ids, "{active:?}");
        let by_updated = list(TaskExecutionFilter { updated: TimeRange { after: Some(at(39)), before: None }, ..Default::default() }, Order::OldestFirst, None, 100)?;
        ensure!(by_updated.len() == 3, "runner, the failed attempt, the retry: {}", by_updated.len());
        let by_actor = list(TaskExecutionFilter { modified_by: Some(Actor::System), ..Default::default() }, Order::OldestFirst, None, 100)?;
        ensure!(by_actor.len() == 2, "the changes are by the system: {}", by_actor.len());
        let latest = list(TaskExecutionFilter { flow_execution_id: Some(first_flow), attempts: Attempts::Latest, ..Default::default() }, Order::OldestFirst, None, 100)?;
        ensure!(latest.len() == 3 && latest.iter().any(|t| t.id == next.id) && !latest.iter().any(|t| t.id == retried.id), "{latest:?}");
        // Counts, with the same filters.
        let by_status = store.read(tenant, |tx| tx.count_task_executions(&TaskExecutionFilter::default(), CountBy::Status))?;
        let counted: std::collections::BTreeMap<String, i64> = by_status.into_iter().collect();
        let expected: std::collections::BTreeMap<String, i64> =
            [("failed", 1), ("queued", 7), ("running", 1)].into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        ensure!(counted == expected, "{counted:?}");
        let by_task: std::collections::BTreeMap<String, i64> = store
            .read(tenant, |tx| tx.count_task_executions(&TaskExecutionFilter { attempts: Attempts::Latest, ..Default::default() }, CountBy::TaskName))?
            .into_iter()
            .collect();
        let expected: std::collections::BTreeMap<String, i64> =
            [("a", 3), ("b", 2), ("c", 3)].into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        ensure!(by_task == expected, "{by_task:?}");
        ensure!(store.read(tenant, |tx| tx.has_flow_execution(first_flow))?);
        ensure!(!store.read(other, |tx| tx.has_flow_execution(first_flow))?);
        Ok(())
    }

    /// Flow executions list the same way, by name and creation time.
    fn flow_executions_list_by_keyset_name_and_time(store) {
        let tenant = organization(&*store, "a")?;
        let other = organization(&*store, "b")?;
        flow(&*store, other, &["t"])?;
        let mut ids = Vec::new();
        for (second, name) in [(10, "etl"), (20, "report"), (20, "etl"), (30, "etl")] {
            let creation = NewFlowExecution::new(
                FlowName::parse(name)?,
                None,
                vec![NewTask { task_name: TaskName::parse("t")?, input: None, run: RunOptions::default() }],
            )?
            .plan(tenant.organization_id(), Actor::System, at(second));
            store_creation(&*store, tenant, &creation)?;
            ids.push((creation.flow_execution.created_at, creation.flow_execution.id));
        }
        ids.sort();
        let list = |filter: FlowExecutionFilter, order: Order, after: Option<Position>, limit: usize| {
            store.read(tenant, |tx| tx.list_flow_executions(&ListQuery { filter: filter.clone(), order, after, limit }))
        };
        let newest = list(FlowExecutionFilter::default(), Order::NewestFirst, None, 3)?;
        let expected: Vec<_> = ids.iter().rev().take(3).map(|(_, id)| *id).collect();
        ensure!(newest.iter().map(|f| f.id).collect::<Vec<_>>() == expected);
        let last = newest.last().context("a page")?;
        let rest = list(FlowExecutionFilter::default(), Order::NewestFirst, Some(Position { created_at: last.created_at, id: last.id.into_uuid() }), 3)?;
        ensure!(rest.len() == 1 && rest[0].id == ids[0].1);
        let etl = list(FlowExecutionFilter { flow_name: Some(FlowName::parse("etl")?), created: TimeRange { after: Some(at(10)), before: None } }, Order::OldestFirst, None, 10)?;
        ensure!(etl.len() == 2 && etl.iter().all(|f| f.flow_name.as_str() == "etl" && f.created_at > at(10)));
        Ok(())
    }

    /// Keys are listed oldest first without secrets, revoked once (keeping
    /// the first time), and only within their tenant.
    fn api_keys_are_listed_and_revoked_within_their_tenant(store) {
        let tenant = organization(&*store, "a")?;
        let other = organization(&*store, "b")?;
        let worker = NewApiKey { created_at: at(1), ..key_for(tenant.organization_id(), Role::Worker) };
        store.create_api_key(&worker)?;
        let keys = store.read(tenant, |tx| tx.api_keys())?;
        ensure!(keys.len() == 2 && keys[0].role == Role::Admin && keys[1].id == worker.id, "oldest first: {keys:?}");
        ensure!(keys.iter().all(|k| k.revoked_at.is_none() && k.organization_id == tenant.organization_id()));
        ensure!(matches!(store.in_tenant(other, |tx| tx.revoke_api_key(worker.id, at(5))), Err(RepoError::NotFound)));
        store.in_tenant(tenant, |tx| tx.revoke_api_key(worker.id, at(5)))?;
        store.in_tenant(tenant, |tx| tx.revoke_api_key(worker.id, at(9)))?;
        let keys = store.in_tenant(tenant, |tx| tx.lock_api_keys())?;
        ensure!(keys[1].revoked_at == Some(at(5)), "{keys:?}");
        ensure!(store.find_api_key(worker.id)?.is_none(), "a revoked key is still found");
        ensure!(matches!(store.in_tenant(tenant, |tx| tx.revoke_api_key(ApiKeyId::generate(), at(5))), Err(RepoError::NotFound)));
        Ok(())
    }

    /// Two admins revoking each other's key at once: the keys are locked,
    /// so exactly one revocation succeeds and one admin key stays active.
    fn concurrent_revocations_never_revoke_the_last_admin_key(store) {
        let tenant = organization(&*store, "a")?;
        let second = key_for(tenant.organization_id(), Role::Admin);
        store.create_api_key(&second)?;
        let ids: Vec<ApiKeyId> = store.read(tenant, |tx| tx.api_keys())?.iter().map(|k| k.id).collect();
        let barrier = Arc::new(Barrier::new(ids.len()));
        let handles: Vec<_> = ids
            .iter()
            .map(|&id| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    store.in_tenant(tenant, |tx| {
                        let keys = tx.lock_api_keys()?;
                        let target = keys.iter().find(|k| k.id == id).ok_or(RepoError::NotFound)?;
                        target.check_revocable(keys.iter().filter(|k| k.is_active_admin()).count())?;
                        tx.revoke_api_key(id, at(7))
                    })
                })
            })
            .collect();
        let mut revoked = 0;
        for handle in handles {
            match handle.join().map_err(|_| anyhow::anyhow!("a thread panicked"))? {
                Ok(()) => revoked += 1,
                Err(RepoError::LastAdminKey) => {}
                Err(other) => anyhow::bail!("unexpected answer: {other:?}"),
            }
        }
        ensure!(revoked == 1, "{revoked} revocations succeeded");
        let active = store.read(tenant, |tx| tx.api_keys())?.iter().filter(|k| k.is_active_admin()).count();
        ensure!(active == 1);
        Ok(())
    }

    /// A flow and its versions read back exactly, in their tenant only;
    /// a version is stored once; lists skip deleted flows, by name.
    fn flows_and_their_versions_round_trip_in_their_tenant(store) {
        let tenant = organization(&*store, "a")?;
        let other = organization(&*store, "b")?;
        let name = FlowName::parse("etl")?;
        let flow = Flow { name: name.clone(), latest_version: 1, created_at: at(1), updated_at: at(1), deleted_at: None };
        let version = FlowVersion {
            name: name.clone(),
            version: 1,
            source: "name: etl\ntasks: [{name: a}]\n".to_owned(),
            document: json!({"name": "etl", "tasks": [{"name": "a"}]}),
            created_by: Actor::Integration,
            created_at: at(1),
        };
        store.in_tenant(tenant, |tx| {
            tx.save_flow(&flow)?;
            tx.insert_flow_version(&version)
        })?;
        ensure!(store.read(tenant, |tx| tx.flow(&name, RowLock::None))? == Some(flow.clone()));
        ensure!(store.in_tenant(tenant, |tx| tx.flow(&name, RowLock::Exclusive))? == Some(flow.clone()));
        ensure!(store.in_tenant(tenant, |tx| tx.flow(&name, RowLock::Shared))? == Some(flow.clone()));
        ensure!(store.read(tenant, |tx| tx.flow_version(&name, 1))? == version);
        ensure!(matches!(store.in_tenant(tenant, |tx| tx.insert_flow_version(&version)), Err(RepoError::Conflict(_))));
        ensure!(store.read(other, |tx| tx.flow(&name, RowLock::None))?.is_none(), "another tenant's flow was seen");
        ensure!(matches!(store.read(other, |tx| tx.flow_version(&name, 1)), Err(RepoError::NotFound)));
        ensure!(matches!(store.read(tenant, |tx| tx.flow_version(&name, 2)), Err(RepoError::NotFound)));

        // Version 2, then more flows; the list pages by name.
        let second = FlowVersion { version: 2, created_at: at(2), ..version.clone() };
        let updated = Flow { latest_version: 2, updated_at: at(2), ..flow.clone() };
        store.in_tenant(tenant, |tx| {
            tx.save_flow(&updated)?;
            tx.insert_flow_version(&second)
        })?;
        ensure!(store.read(tenant, |tx| tx.flow(&name, RowLock::None))? == Some(updated.clone()));
        for extra in ["b-flow", "a-flow", "z"] {
            let flow = Flow { name: FlowName::parse(extra)?, ..flow.clone() };
            store.in_tenant(tenant, |tx| tx.save_flow(&flow))?;
        }
        let names = |after: Option<&str>, limit: usize| -> anyhow::Result<Vec<String>> {
            let after = after.map(FlowName::parse).transpose()?;
            Ok(store
                .read(tenant, |tx| tx.list_flows(after.as_ref(), limit))?
                .into_iter()
                .map(|f| f.name.to_string())
                .collect())
        };
        ensure!(names(None, 10)? == ["a-flow", "b-flow", "etl", "z"], "{:?}", names(None, 10)?);
        ensure!(names(Some("b-flow"), 1)? == ["etl"]);
        ensure!(store.read(other, |tx| tx.list_flows(None, 10))?.is_empty());

        // Deleted: out of lists, still read by name, versions kept.
        let deleted = Flow { deleted_at: Some(at(3)), updated_at: at(3), ..updated };
        store.in_tenant(tenant, |tx| tx.save_flow(&deleted))?;
        ensure!(names(None, 10)? == ["a-flow", "b-flow", "z"]);
        ensure!(store.read(tenant, |tx| tx.flow(&name, RowLock::None))? == Some(deleted));
        ensure!(store.read(tenant, |tx| tx.flow_version(&name, 1))? == version);
        Ok(())
    }

    /// A flow execution's status and version are stored; its lock and its
    /// status change are confined to its tenant.
    fn a_flow_executions_status_and_version_are_stored(store) {
        let tenant = organization(&*store, "a")?;
        let other = organization(&*store, "b")?;
        let name = FlowName::parse("etl")?;
        store.in_tenant(tenant, |tx| {
            tx.save_flow(&Flow { name: name.clone(), latest_version: 1, created_at: at(1), updated_at: at(1), deleted_at: None })?;
            tx.insert_flow_version(&FlowVersion {
                name: name.clone(),
                version: 1,
                source: "{}".to_owned(),
                document: json!({}),
                created_by: Actor::System,
                created_at: at(1),
            })
        })?;
        let mut creation = NewFlowExecution::new(name, None, vec![NewTask {
            task_name: TaskName::parse("t")?,
            input: None,
            run: RunOptions::default(),
        }])?
        .plan(tenant.organization_id(), Actor::System, at(1));
        creation.flow_execution.flow_version = Some(1);
        store_creation(&*store, tenant, &creation)?;
        let id = creation.flow_execution.id;
        let locked = store.in_tenant(tenant, |tx| tx.lock_flow_execution(id))?;
        ensure!(locked == creation.flow_execution, "{locked:?}");
        ensure!(locked.status == FlowStatus::Queued && locked.flow_version == Some(1));
        store.in_tenant(tenant, |tx| tx.set_flow_status(id, FlowStatus::Cancelled, at(5)))?;
        let read = store.read(tenant, |tx| tx.flow_execution(id))?.flow_execution;
        ensure!(read.status == FlowStatus::Cancelled && read.updated_at == at(5), "{read:?}");
        ensure!(matches!(store.in_tenant(other, |tx| tx.lock_flow_execution(id)), Err(RepoError::NotFound)));
        ensure!(matches!(store.in_tenant(other, |tx| tx.set_flow_status(id, FlowStatus::Failed, at(6))), Err(RepoError::NotFound)));
        ensure!(store.read(tenant, |tx| tx.flow_execution(id))?.flow_execution.status == FlowStatus::Cancelled);
        Ok(())
    }

    /// Runs of a for_each task keep their iteration; the latest attempt is
    /// the latest of each iteration.
    fn iterations_are_stored_and_latest_attempts_are_per_iteration(store) {
        let tenant = organization(&*store, "a")?;
        let created = flow(&*store, tenant, &["each"])?;
        let first = &created.task_executions[0];
        // The flow's task as iteration 0; iteration 1 at index 1; a retry
        // of iteration 0 at index 2.
        let run = |index: i32, iteration: i32| TaskExecution {
            id: TaskExecutionId::generate(),
            execution_index: index,
            iteration: Some(iteration),
            ..first.clone()
        };
        let (one, retry) = (run(1, 1), run(2, 0));
        store.in_tenant(tenant, |tx| tx.insert_task_executions(&[one.clone(), retry.clone()]))?;
        ensure!(store.task_execution(tenant, one.id)?.iteration == Some(1));
        let flow_id = created.flow_execution.id;
        let name = first.task_name.clone();
        ensure!(store.read(tenant, |tx| tx.run_attempts(flow_id, &name, Some(0)))? == [(2, TaskStatus::Queued)]);
        ensure!(store.read(tenant, |tx| tx.run_attempts(flow_id, &name, Some(1)))? == [(1, TaskStatus::Queued)]);
        ensure!(store.read(tenant, |tx| tx.run_attempts(flow_id, &name, None))? == [(0, TaskStatus::Queued)]);
        ensure!(store.read(tenant, |tx| tx.latest_execution_index(flow_id, &name))? == 2);
        let query = ListQuery {
            filter: TaskExecutionFilter { flow_execution_id: Some(flow_id), attempts: Attempts::Latest, ..TaskExecutionFilter::default() },
            order: Order::OldestFirst,
            after: None,
            limit: 10,
        };
        let mut latest: Vec<i32> = store.read(tenant, |tx| tx.list_task_executions(&query))?.iter().map(|t| t.execution_index).collect();
        latest.sort_unstable();
        // Index 0 (no iteration) is its own run; 1 and 2 are the latest of
        // iterations 1 and 0.
        ensure!(latest == [0, 1, 2], "{latest:?}");
        Ok(())
    }

    /// The questions the engine asks of a flow execution's latest
    /// attempts, and the claim's move of queued flow executions to running.
    fn the_latest_attempts_of_a_flow_execution_answer_the_engines_questions(store) {
        let tenant = organization(&*store, "a")?;
        let other = organization(&*store, "b")?;
        let created = flow(&*store, tenant, &["a", "b"])?;
        let id = created.flow_execution.id;
        let (a, b) = (created.task_executions[0].id, created.task_executions[1].id);
        let any = |statuses: &[TaskStatus]| store.read(tenant, |tx| tx.any_latest_in(id, statuses));
        ensure!(any(&[TaskStatus::Queued])? && !any(&[TaskStatus::Running, TaskStatus::Failed])?);
        ensure!(!store.read(other, |tx| tx.any_latest_in(id, &[TaskStatus::Queued]))?, "another tenant's rows were seen");
        change(&*store, tenant, a, Transition::Start, 2)?;
        change(&*store, tenant, a, Transition::Fail { error: None }, 3)?;
        ensure!(any(&[TaskStatus::Failed])?);
        // A retry of a: the failed attempt is no longer the latest.
        let failed = store.task_execution(tenant, a)?;
        let retry = failed.next_attempt(None, Actor::System, at(4), None);
        store.in_tenant(tenant, |tx| tx.insert_task_executions(std::slice::from_ref(&retry)))?;
        ensure!(!any(&[TaskStatus::Failed])?, "an attempt retried is not the latest");
        ensure!(any(&[TaskStatus::Queued])?);
        change(&*store, tenant, b, Transition::Delete, 5)?;
        ensure!(any(&[TaskStatus::Deleted])?);

        store.in_tenant(tenant, |tx| tx.mark_flows_running(&[id], at(6)))?;
        let read = store.read(tenant, |tx| tx.flow_execution(id))?.flow_execution;
        ensure!(read.status == FlowStatus::Running && read.updated_at == at(6), "{read:?}");
        // Only a queued one moves; another tenant's is untouched.
        store.in_tenant(tenant, |tx| tx.set_flow_status(id, FlowStatus::Failed, at(7)))?;
        store.in_tenant(tenant, |tx| tx.mark_flows_running(&[id], at(8)))?;
        ensure!(store.read(tenant, |tx| tx.flow_execution(id))?.flow_execution.status == FlowStatus::Failed);
        let theirs = flow(&*store, other, &["x"])?.flow_execution.id;
        store.in_tenant(tenant, |tx| tx.mark_flows_running(&[theirs], at(9)))?;
        ensure!(store.read(other, |tx| tx.flow_execution(theirs))?.flow_execution.status == FlowStatus::Queued);
        Ok(())
    }

    /// The store answers a trivial query.
    fn a_reachable_store_answers_the_health_check(store) {
        store.ping()?;
        Ok(())
    }
}
