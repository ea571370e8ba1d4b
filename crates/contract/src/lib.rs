#![doc = include_str!("../README.md")]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use flowexec_domain::json::canonicalize;
use flowexec_domain::ports::{
    ApiKeyRepository, ExecutionStore, HealthCheck, OrganizationRepository, TenantTx,
};
use flowexec_domain::{
    Actor, ApiKeyId, FlowExecutionCreation, FlowName, NewApiKey, NewFlowExecution, NewTask,
    Organization, OrganizationId, OrganizationName, RepoError, Role, TaskExecution,
    TaskExecutionId, TaskName, TaskStatus, Tenant, Transition,
};
use serde_json::{json, Value};

/// Every port a store implements.
pub trait Ports: ExecutionStore + ApiKeyRepository + OrganizationRepository + HealthCheck {}

impl<T> Ports for T where T: ExecutionStore + ApiKeyRepository + OrganizationRepository + HealthCheck
{}

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
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let new = NewFlowExecution::new(FlowName::parse("etl")?, Some(json!("x")), tasks)?;
    let creation = new.plan(tenant.organization_id(), Actor::Integration, at(1));
    store_creation(store, tenant, &creation)?;
    Ok(creation)
}

/// Applies `transition` to a task, as `actor` at `at(second)`.
pub fn change<S: Ports>(
    store: &S,
    tenant: Tenant,
    id: TaskExecutionId,
    transition: Transition,
    second: i64,
) -> Result<TaskExecution, RepoError> {
    let plan = transition.plan(id, Actor::System, Some("contract".into()), at(second));
    store.in_tenant(tenant, |tx| tx.change_status(&plan))
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
            let events = store.read(tenant, |tx| tx.events(task.id))?;
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
                vec![NewTask { task_name: TaskName::parse("t")?, input: Some(value.clone()) }],
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
        ensure!(matches!(store.read(a, |tx| tx.events(b_task.id)), Err(RepoError::NotFound)));
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
                let events_before = store.read(tenant, |tx| tx.events(task))?;
                let plan = transition.clone().plan(task, Actor::ServiceAccount, Some("checked".into()), at(99));
                let outcome = store.in_tenant(tenant, |tx| tx.change_status(&plan));
                let after = store.task_execution(tenant, task)?;
                let events = store.read(tenant, |tx| tx.events(task))?;
                if status.can_transition_to(transition.to()) {
                    let expected = plan.applied_to(&before);
                    ensure!(outcome.as_ref().ok() == Some(&expected), "{status} -> {:?}: {outcome:?}", transition.to());
                    ensure!(after == expected, "{status} -> {:?}: stored {after:?}", transition.to());
                    ensure!(events.len() == events_before.len() + 1);
                    ensure!(events.last() == Some(&plan.event(*status)));
                } else {
                    ensure!(
                        matches!(outcome, Err(RepoError::InvalidTransition { current, requested }) if current == *status && requested == transition.to()),
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
        ensure!(store.read(tenant, |tx| tx.events(task))?.len() == 2, "creation and one claim");
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
            vec![NewTask { task_name: TaskName::parse("t")?, input: None }],
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
        ensure!(store.read(tenant, |tx| tx.events(task))?.len() == 1);
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

    /// The store answers a trivial query.
    fn a_reachable_store_answers_the_health_check(store) {
        store.ping()?;
        Ok(())
    }
}
