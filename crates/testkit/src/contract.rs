//! The repository contract, written once: every store (PostgreSQL, SQLite,
//! memory) runs these same functions through [`contract_tests!`].
//!
//! Each function takes a fresh, empty store.

use std::sync::{Arc, Barrier};
use std::thread;

use anyhow::{ensure, Context};
use flowexec_domain::json::canonicalize;
use flowexec_domain::ports::{
    ApiKeyRepository, FlowExecutionRepository, OrganizationRepository, TaskExecutionRepository,
};
use flowexec_domain::{
    Actor, ApiKeyId, FlowExecutionDetail, FlowExecutionId, FlowName, NewApiKey, NewFlowExecution,
    NewTask, OrganizationId, OrganizationName, RepoError, Role, StatusChange, TaskExecutionId,
    TaskName, TaskStatus, Tenant,
};
use serde_json::{json, Value};

/// Every port a store implements.
pub trait Ports:
    TaskExecutionRepository + FlowExecutionRepository + ApiKeyRepository + OrganizationRepository
{
}

impl<T> Ports for T where
    T: TaskExecutionRepository
        + FlowExecutionRepository
        + ApiKeyRepository
        + OrganizationRepository
{
}

pub type Result = anyhow::Result<()>;

fn key_for(organization_id: OrganizationId, role: Role) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::generate(),
        organization_id,
        role,
        actor: Actor::System,
        secret_sha256: [7; 32],
    }
}

/// A new organization in `store`.
pub fn organization<S: Ports>(store: &S, name: &str) -> anyhow::Result<Tenant> {
    let id = OrganizationId::generate();
    store.create_organization(&OrganizationName::parse(name)?, &key_for(id, Role::Admin))?;
    Ok(Tenant::new(id))
}

/// A flow execution with one task per name, each with a JSON input.
pub fn flow<S: Ports>(
    store: &S,
    tenant: Tenant,
    tasks: &[&str],
) -> anyhow::Result<FlowExecutionDetail> {
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
    Ok(store.create_flow_execution(tenant, &new, Actor::Integration)?)
}

fn change(id: TaskExecutionId, to: TaskStatus, output: Option<Value>) -> StatusChange {
    StatusChange {
        task_execution_id: id,
        to,
        actor: Actor::System,
        output,
        error: None,
        reason: Some("contract".into()),
    }
}

pub fn a_created_flow_execution_reads_back_with_every_field<S: Ports>(store: Arc<S>) -> Result {
    let tenant = organization(&*store, "acme")?;
    let created = flow(&*store, tenant, &["load", "extract"])?;
    let names: Vec<&str> = created
        .task_executions
        .iter()
        .map(|t| t.task_name.as_str())
        .collect();
    ensure!(
        names == ["extract", "load"],
        "tasks are ordered by name: {names:?}"
    );
    ensure!(created.flow_execution.flow_name.as_str() == "etl");
    ensure!(created.flow_execution.input == Some(json!("x")));
    ensure!(created.flow_execution.organization_id == tenant.organization_id());
    for task in &created.task_executions {
        ensure!(task.execution_index == 0 && task.status == TaskStatus::Queued);
        ensure!(task.modified_by == Actor::Integration);
        ensure!(task.organization_id == tenant.organization_id());
        ensure!(task.flow_execution_id == created.flow_execution.id);
        ensure!(task.input == Some(json!({"task": task.task_name.as_str(), "n": [1, 2.5, null]})));
        ensure!(task.output.is_none() && task.error.is_none());
        ensure!(task.started_at.is_none() && task.completed_at.is_none());
        ensure!(task.created_at == task.updated_at);
        ensure!(
            &store.get_task_execution(tenant, task.id)? == task,
            "read differs from created"
        );
    }
    ensure!(store.get_flow_execution(tenant, created.flow_execution.id)? == created);
    Ok(())
}

pub fn json_values_round_trip_unchanged<S: Ports>(store: Arc<S>) -> Result {
    let tenant = organization(&*store, "acme")?;
    let mut values = vec![
        json!(null),
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
    // Numbers as clients write them: every digit and the scale must survive,
    // in the one notation both stores return (see flowexec_domain::json).
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
            vec![NewTask {
                task_name: TaskName::parse("t")?,
                input: Some(value.clone()),
            }],
        )?;
        let created = store.create_flow_execution(tenant, &new, Actor::System)?;
        let read = store.get_task_execution(tenant, created.task_executions[0].id)?;
        // JSON null as input means "no input": stored and returned as none.
        let expected = Some(value.clone()).filter(|v| !v.is_null());
        let got = read.input.filter(|v| !v.is_null());
        ensure!(got == expected, "input {value} came back as {got:?}");
        ensure!(
            got.map(|v| v.to_string()) == expected.map(|v| v.to_string()),
            "{value} serializes differently after the round trip"
        );
    }
    Ok(())
}

pub fn another_tenant_cannot_read_or_change_a_row<S: Ports>(store: Arc<S>) -> Result {
    let a = organization(&*store, "a")?;
    let b = organization(&*store, "b")?;
    let b_flow = flow(&*store, b, &["t"])?;
    let b_task = b_flow.task_executions[0].id;
    ensure!(matches!(
        store.get_task_execution(a, b_task),
        Err(RepoError::NotFound)
    ));
    ensure!(matches!(
        store.get_flow_execution(a, b_flow.flow_execution.id),
        Err(RepoError::NotFound)
    ));
    ensure!(matches!(
        store.list_task_execution_events(a, b_task),
        Err(RepoError::NotFound)
    ));
    ensure!(matches!(
        store.transition_task_execution(a, &change(b_task, TaskStatus::Running, None)),
        Err(RepoError::NotFound)
    ));
    ensure!(store.get_task_execution(b, b_task)?.status == TaskStatus::Queued);
    ensure!(matches!(
        store.get_task_execution(a, TaskExecutionId::generate()),
        Err(RepoError::NotFound)
    ));
    ensure!(matches!(
        store.get_flow_execution(a, FlowExecutionId::generate()),
        Err(RepoError::NotFound)
    ));
    Ok(())
}

pub fn interleaved_concurrent_reads_never_return_a_foreign_row<S: Ports + Send + Sync + 'static>(
    store: Arc<S>,
) -> Result {
    let tenants = [organization(&*store, "a")?, organization(&*store, "b")?];
    let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids: Arc<Vec<Vec<TaskExecutionId>>> = Arc::new(
        tenants
            .iter()
            .map(|t| {
                Ok(flow(&*store, *t, &names)?
                    .task_executions
                    .iter()
                    .map(|t| t.id)
                    .collect())
            })
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
                    let read = store.get_task_execution(tenants[me], own)?;
                    ensure!(read.organization_id == tenants[me].organization_id());
                    ensure!(matches!(
                        store.get_task_execution(tenants[me], foreign),
                        Err(RepoError::NotFound)
                    ));
                }
                Ok(rounds * 2)
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle
            .join()
            .map_err(|_| anyhow::anyhow!("a reader panicked"))??;
    }
    ensure!(total == threads * rounds * 2);
    Ok(())
}

pub fn transitions_follow_the_state_machine_and_record_one_event_each<S: Ports>(
    store: Arc<S>,
) -> Result {
    let tenant = organization(&*store, "a")?;
    let task = flow(&*store, tenant, &["t"])?.task_executions[0].clone();

    let refused =
        store.transition_task_execution(tenant, &change(task.id, TaskStatus::Completed, None));
    ensure!(matches!(
        refused,
        Err(RepoError::InvalidTransition {
            current: TaskStatus::Queued,
            requested: TaskStatus::Completed
        })
    ));
    ensure!(
        store.get_task_execution(tenant, task.id)? == task,
        "a refused change changed the row"
    );

    let running =
        store.transition_task_execution(tenant, &change(task.id, TaskStatus::Running, None))?;
    ensure!(running.status == TaskStatus::Running && running.started_at.is_some());
    let output = json!({"rows": 3});
    let done = store.transition_task_execution(
        tenant,
        &change(task.id, TaskStatus::Completed, Some(output.clone())),
    )?;
    ensure!(done.status == TaskStatus::Completed && done.output == Some(output));
    ensure!(done.completed_at.is_some() && done.updated_at >= done.created_at);
    store.transition_task_execution(tenant, &change(task.id, TaskStatus::Stale, None))?;
    store.transition_task_execution(tenant, &change(task.id, TaskStatus::Deleted, None))?;
    ensure!(matches!(
        store.transition_task_execution(tenant, &change(task.id, TaskStatus::Deleted, None)),
        Err(RepoError::InvalidTransition {
            current: TaskStatus::Deleted,
            ..
        })
    ));
    ensure!(
        store.get_task_execution(tenant, task.id)?.status == TaskStatus::Deleted,
        "deleted rows stay readable by id"
    );

    let events = store.list_task_execution_events(tenant, task.id)?;
    let steps: Vec<(Option<TaskStatus>, TaskStatus)> =
        events.iter().map(|e| (e.from, e.to)).collect();
    ensure!(
        steps
            == [
                (None, TaskStatus::Queued),
                (Some(TaskStatus::Queued), TaskStatus::Running),
                (Some(TaskStatus::Running), TaskStatus::Completed),
                (Some(TaskStatus::Completed), TaskStatus::Stale),
                (Some(TaskStatus::Stale), TaskStatus::Deleted),
            ],
        "events: {steps:?}"
    );
    ensure!(events[0].actor == Actor::Integration && events[1].actor == Actor::System);
    ensure!(events[1].reason.as_deref() == Some("contract"));
    Ok(())
}

pub fn of_many_concurrent_claims_exactly_one_wins<S: Ports + Send + Sync + 'static>(
    store: Arc<S>,
) -> Result {
    let tenant = organization(&*store, "a")?;
    let task = flow(&*store, tenant, &["t"])?.task_executions[0].id;
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                store.transition_task_execution(tenant, &change(task, TaskStatus::Running, None))
            })
        })
        .collect();
    let mut winners = 0;
    for handle in handles {
        match handle
            .join()
            .map_err(|_| anyhow::anyhow!("a claimant panicked"))?
        {
            Ok(_) => winners += 1,
            Err(RepoError::InvalidTransition {
                current: TaskStatus::Running,
                ..
            }) => {}
            Err(other) => anyhow::bail!("unexpected answer: {other:?}"),
        }
    }
    ensure!(winners == 1, "{winners} claims won");
    ensure!(
        store.list_task_execution_events(tenant, task)?.len() == 2,
        "creation and one claim"
    );
    Ok(())
}

pub fn keys_are_found_by_id_across_tenants_and_need_an_existing_organization<S: Ports>(
    store: Arc<S>,
) -> Result {
    let tenant = organization(&*store, "a")?;
    let key = NewApiKey {
        actor: Actor::User(uuid::Uuid::new_v4()),
        ..key_for(tenant.organization_id(), Role::Worker)
    };
    store.create_api_key(&key)?;
    let found = store
        .find_api_key(key.id)?
        .context("the key was not found")?;
    ensure!(found.id == key.id && found.organization_id == tenant.organization_id());
    ensure!(
        (found.role, found.actor, found.secret_sha256) == (key.role, key.actor, key.secret_sha256)
    );
    ensure!(store.find_api_key(ApiKeyId::generate())?.is_none());
    let orphan = key_for(OrganizationId::generate(), Role::Read);
    ensure!(matches!(
        store.create_api_key(&orphan),
        Err(RepoError::NotFound)
    ));
    ensure!(store.find_api_key(orphan.id)?.is_none());
    Ok(())
}

pub fn bootstrap_creates_one_organization_only_when_there_is_none<
    S: Ports + Send + Sync + 'static,
>(
    store: Arc<S>,
) -> Result {
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || -> anyhow::Result<bool> {
                let key = key_for(OrganizationId::generate(), Role::Admin);
                barrier.wait();
                Ok(store
                    .bootstrap_organization(&OrganizationName::parse("default")?, &key)?
                    .is_some())
            })
        })
        .collect();
    let mut created = 0;
    for handle in handles {
        created += usize::from(handle.join().map_err(|_| anyhow::anyhow!("panicked"))??);
    }
    ensure!(created == 1, "{created} bootstraps created an organization");
    let again = key_for(OrganizationId::generate(), Role::Admin);
    ensure!(store
        .bootstrap_organization(&OrganizationName::parse("default")?, &again)?
        .is_none());
    ensure!(
        store.find_api_key(again.id)?.is_none(),
        "a refused bootstrap stored its key"
    );
    Ok(())
}

/// Organization names are unique in a store: a second organization of the
/// same name is a conflict and stores nothing, not even its key.
pub fn organization_names_are_unique<S: Ports>(store: Arc<S>) -> Result {
    let first = organization(&*store, "acme")?;
    let second = key_for(OrganizationId::generate(), Role::Admin);
    let refused = store.create_organization(&OrganizationName::parse("acme")?, &second);
    ensure!(
        matches!(refused, Err(RepoError::Conflict(_))),
        "a second \"acme\": {refused:?}"
    );
    ensure!(
        store.find_api_key(second.id)?.is_none(),
        "the refused organization's key was stored"
    );
    // Names are case-sensitive, as everywhere else.
    organization(&*store, "Acme")?;
    ensure!(first.organization_id() != second.organization_id);
    Ok(())
}

/// Generates one `#[test]` per contract function, each with a fresh store
/// from `$make` (an expression giving `anyhow::Result<(guard, store)>`; the
/// guard lives as long as the test).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@tests $make;
            a_created_flow_execution_reads_back_with_every_field,
            json_values_round_trip_unchanged,
            another_tenant_cannot_read_or_change_a_row,
            interleaved_concurrent_reads_never_return_a_foreign_row,
            transitions_follow_the_state_machine_and_record_one_event_each,
            of_many_concurrent_claims_exactly_one_wins,
            keys_are_found_by_id_across_tenants_and_need_an_existing_organization,
            bootstrap_creates_one_organization_only_when_there_is_none,
            organization_names_are_unique,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() -> anyhow::Result<()> {
                let (_guard, store) = $make?;
                $crate::contract::$name(std::sync::Arc::new(store))
            }
        )+
    };
}
