//! The PostgreSQL store against a real database, connected as the
//! restricted app role: round trips, tenant isolation, the attempt key and
//! the status machine.

use std::sync::{Arc, Barrier};
use std::thread;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use flowexec_domain::ports::{
    ApiKeyRepository, FlowExecutionRepository, OrganizationRepository, TaskExecutionRepository,
};
use flowexec_domain::{
    Actor, ApiKeyId, FlowExecutionDetail, FlowName, NewApiKey, NewFlowExecution, NewTask,
    OrganizationId, OrganizationName, RepoError, Role, StatusChange, TaskExecutionId, TaskName,
    TaskStatus, Tenant,
};
use flowexec_persistence::{inspect_role, PgStore, PoolSettings};
use flowexec_testkit::TestDb;

type TestResult = anyhow::Result<()>;

fn store(db: &TestDb, max_size: u32) -> anyhow::Result<PgStore> {
    Ok(PgStore::connect(
        &db.app_url(),
        &PoolSettings {
            max_size,
            ..PoolSettings::default()
        },
    )?)
}

fn organization(store: &PgStore, name: &str) -> anyhow::Result<Tenant> {
    let id = OrganizationId::generate();
    store.create_organization(
        &OrganizationName::parse(name)?,
        &NewApiKey {
            id: ApiKeyId::generate(),
            organization_id: id,
            role: Role::Admin,
            actor: Actor::System,
            secret_sha256: [7; 32],
        },
    )?;
    Ok(Tenant::new(id))
}

fn flow(store: &PgStore, tenant: Tenant, tasks: &[&str]) -> anyhow::Result<FlowExecutionDetail> {
    let tasks = tasks
        .iter()
        .map(|name| {
            Ok(NewTask {
                task_name: TaskName::parse(*name)?,
                input: Some(serde_json::json!({"task": name, "n": [1, 2.5, null]})),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let new = NewFlowExecution::new(FlowName::parse("etl")?, Some(serde_json::json!("x")), tasks)?;
    Ok(store.create_flow_execution(tenant, &new, Actor::Integration)?)
}

fn app_conn(db: &TestDb) -> anyhow::Result<PgConnection> {
    Ok(PgConnection::establish(&db.app_url())?)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> anyhow::Result<i64> {
    Ok(diesel::sql_query(sql).get_result::<Count>(conn)?.n)
}

#[test]
fn a_created_flow_execution_reads_back_with_every_field() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let tenant = organization(&store, "acme")?;
    let created = flow(&store, tenant, &["extract", "load"])?;
    assert_eq!(created.task_executions.len(), 2);

    let task = &created.task_executions[0];
    assert_eq!(task.task_name.as_str(), "extract");
    assert_eq!(task.execution_index, 0);
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.modified_by, Actor::Integration);
    assert_eq!(task.organization_id, tenant.organization_id());
    assert_eq!(task.flow_execution_id, created.flow_execution.id);
    assert_eq!(
        task.input,
        Some(serde_json::json!({"task": "extract", "n": [1, 2.5, null]}))
    );
    assert_eq!((task.output.clone(), task.error.clone()), (None, None));
    assert_eq!((task.started_at, task.completed_at), (None, None));

    let read = store.get_task_execution(tenant, task.id)?;
    assert_eq!(&read, task);
    let flow_read = store.get_flow_execution(tenant, created.flow_execution.id)?;
    assert_eq!(flow_read, created);
    Ok(())
}

#[test]
fn one_organization_cannot_read_or_change_another_organizations_rows() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let a = organization(&store, "a")?;
    let b = organization(&store, "b")?;
    let b_flow = flow(&store, b, &["t"])?;
    let b_task = b_flow.task_executions[0].id;

    assert!(matches!(
        store.get_task_execution(a, b_task),
        Err(RepoError::NotFound)
    ));
    assert!(matches!(
        store.get_flow_execution(a, b_flow.flow_execution.id),
        Err(RepoError::NotFound)
    ));
    let change = StatusChange {
        task_execution_id: b_task,
        to: TaskStatus::Running,
        actor: Actor::System,
        output: None,
        error: None,
        reason: None,
    };
    assert!(matches!(
        store.transition_task_execution(a, &change),
        Err(RepoError::NotFound)
    ));
    assert_eq!(
        store.get_task_execution(b, b_task)?.status,
        TaskStatus::Queued
    );
    Ok(())
}

#[test]
fn row_level_security_blocks_the_app_role_even_when_the_query_forgets_the_filter() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let a = organization(&store, "a")?;
    let b = organization(&store, "b")?;
    let b_flow = flow(&store, b, &["t1", "t2"])?;
    flow(&store, a, &["t"])?;
    let mut conn = app_conn(&db)?;

    // No setting at all: zero rows, no error.
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM task_executions")?,
        0
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM flow_executions")?,
        0
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM organizations")?,
        0
    );

    // Scoped to A, an unfiltered query sees only A's rows, updates none of
    // B's, and may not insert a row for B.
    let a_id = a.organization_id();
    conn.transaction(|conn| -> anyhow::Result<()> {
        conn.batch_execute(&format!(
            "SELECT set_config('app.organization_id', '{a_id}', true)"
        ))?;
        assert_eq!(count(conn, "SELECT count(*) AS n FROM task_executions")?, 1);
        let updated =
            diesel::sql_query("UPDATE task_executions SET status = 'running'").execute(conn)?;
        assert_eq!(updated, 1);
        Ok(())
    })?;
    assert_eq!(
        store
            .get_task_execution(b, b_flow.task_executions[0].id)?
            .status,
        TaskStatus::Queued
    );

    let b_id = b.organization_id();
    let insert = conn.transaction(|conn| {
        conn.batch_execute(&format!(
            "SELECT set_config('app.organization_id', '{a_id}', true)"
        ))?;
        conn.batch_execute(&format!(
            "INSERT INTO flow_executions (organization_id, id, flow_name, modified_by) \
             VALUES ('{b_id}', gen_random_uuid(), 'sneaky', 'system')"
        ))
    });
    let message = insert.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("row-level security"),
        "insert was not refused: {message:?}"
    );

    // After the transaction the setting reads '' — still zero rows, no error.
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM task_executions")?,
        0
    );
    // The app role cannot read keys directly across organizations either.
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM api_keys")?, 0);
    Ok(())
}

#[test]
fn the_single_statement_read_leaves_no_tenant_setting_behind() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let a = organization(&store, "a")?;
    let task = flow(&store, a, &["t"])?.task_executions[0].id;
    let mut conn = app_conn(&db)?;
    let (org, id) = (a.organization_id(), task);
    let read = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM flowexec_get_task_execution('{org}', '{id}')"),
    )?;
    assert_eq!(read, 1);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM task_executions")?,
        0,
        "the tenant setting outlived the statement"
    );
    // Asking for another tenant's id under this tenant finds nothing.
    let b = organization(&store, "b")?;
    let foreign = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM flowexec_get_task_execution('{}', '{id}')",
            b.organization_id()
        ),
    )?;
    assert_eq!(foreign, 0);
    Ok(())
}

#[test]
fn the_app_role_cannot_switch_row_level_security_off() -> TestResult {
    let db = TestDb::new()?;
    let mut conn = app_conn(&db)?;
    for sql in [
        "ALTER TABLE task_executions DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE task_executions NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON task_executions",
        "SET ROLE flowexec_owner",
        "SET row_security = off; SELECT * FROM task_executions",
    ] {
        assert!(conn.batch_execute(sql).is_err(), "{sql} succeeded");
    }
    let report = inspect_role(&mut conn)?;
    assert_eq!(report.refusal(), None, "{report:?}");
    assert!(report.schema_ready);
    Ok(())
}

#[test]
fn a_pool_of_two_connections_never_returns_a_foreign_row_under_interleaved_load() -> TestResult {
    let db = TestDb::new()?;
    let store = Arc::new(store(&db, 2)?);
    let tenants = [organization(&store, "a")?, organization(&store, "b")?];
    let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids: Vec<Vec<TaskExecutionId>> = tenants
        .iter()
        .map(|t| {
            Ok(flow(&store, *t, &names)?
                .task_executions
                .iter()
                .map(|t| t.id)
                .collect())
        })
        .collect::<anyhow::Result<_>>()?;
    let ids = Arc::new(ids);

    let threads = 8;
    let rounds = 400;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|worker| {
            let (store, ids, barrier) = (store.clone(), ids.clone(), barrier.clone());
            thread::spawn(move || -> anyhow::Result<usize> {
                barrier.wait();
                let mut checked = 0;
                for round in 0..rounds {
                    let me = (worker + round) % 2;
                    let other = 1 - me;
                    let own = ids[me][round % ids[me].len()];
                    let foreign = ids[other][round % ids[other].len()];
                    let read = store.get_task_execution(tenants[me], own)?;
                    anyhow::ensure!(read.organization_id == tenants[me].organization_id());
                    anyhow::ensure!(matches!(
                        store.get_task_execution(tenants[me], foreign),
                        Err(RepoError::NotFound)
                    ));
                    checked += 2;
                }
                Ok(checked)
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle
            .join()
            .map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    assert_eq!(total, threads * rounds * 2);
    Ok(())
}

#[test]
fn the_attempt_key_rejects_a_second_row_with_the_same_flow_task_and_index() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let tenant = organization(&store, "a")?;
    let created = flow(&store, tenant, &["t"])?;
    let (org, flow_id) = (tenant.organization_id(), created.flow_execution.id);
    let mut conn = app_conn(&db)?;
    let insert = |conn: &mut PgConnection, index: i32| {
        conn.transaction(|conn| {
            conn.batch_execute(&format!("SELECT set_config('app.organization_id', '{org}', true)"))?;
            diesel::sql_query(format!(
                "INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, modified_by) \
                 VALUES ('{org}', gen_random_uuid(), '{flow_id}', 't', {index}, 'system')"
            ))
            .execute(conn)
        })
    };
    assert!(matches!(
        insert(&mut conn, 0),
        Err(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    ));
    assert_eq!(
        insert(&mut conn, 1)?,
        1,
        "the next attempt index is accepted"
    );
    assert_eq!(
        store
            .get_flow_execution(tenant, flow_id)?
            .task_executions
            .len(),
        2
    );
    Ok(())
}

#[test]
fn transitions_follow_the_state_machine_and_record_one_event_each() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let tenant = organization(&store, "a")?;
    let task = flow(&store, tenant, &["t"])?.task_executions[0].clone();
    let change = |to, output| StatusChange {
        task_execution_id: task.id,
        to,
        actor: Actor::System,
        output,
        error: None,
        reason: Some("test".into()),
    };

    let refused = store.transition_task_execution(tenant, &change(TaskStatus::Completed, None));
    assert!(matches!(
        refused,
        Err(RepoError::InvalidTransition {
            current: TaskStatus::Queued,
            requested: TaskStatus::Completed
        })
    ));
    assert_eq!(
        store.get_task_execution(tenant, task.id)?,
        task,
        "a refused change changes nothing"
    );

    let running = store.transition_task_execution(tenant, &change(TaskStatus::Running, None))?;
    assert_eq!(running.status, TaskStatus::Running);
    assert!(running.started_at.is_some());
    assert_eq!(running.modified_by, Actor::System);
    let output = serde_json::json!({"rows": 3});
    let done = store
        .transition_task_execution(tenant, &change(TaskStatus::Completed, Some(output.clone())))?;
    assert_eq!(
        (done.status, done.output.clone()),
        (TaskStatus::Completed, Some(output))
    );
    assert!(done.completed_at.is_some());
    store.transition_task_execution(tenant, &change(TaskStatus::Stale, None))?;
    store.transition_task_execution(tenant, &change(TaskStatus::Deleted, None))?;
    assert!(matches!(
        store.transition_task_execution(tenant, &change(TaskStatus::Deleted, None)),
        Err(RepoError::InvalidTransition {
            current: TaskStatus::Deleted,
            ..
        })
    ));
    assert_eq!(
        store.get_task_execution(tenant, task.id)?.status,
        TaskStatus::Deleted,
        "a deleted task execution is still readable by id"
    );

    let mut conn = app_conn(&db)?;
    let org = tenant.organization_id();
    let events = conn.transaction(|conn| {
        conn.batch_execute(&format!(
            "SELECT set_config('app.organization_id', '{org}', true)"
        ))?;
        count(conn, "SELECT count(*) AS n FROM task_execution_events")
    })?;
    assert_eq!(events, 5, "created, running, completed, stale, deleted");
    Ok(())
}

#[test]
fn of_many_concurrent_claims_of_one_queued_task_exactly_one_wins() -> TestResult {
    let db = TestDb::new()?;
    let store = Arc::new(store(&db, 8)?);
    let tenant = organization(&store, "a")?;
    let task = flow(&store, tenant, &["t"])?.task_executions[0].id;
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let outcomes: Vec<Result<_, RepoError>> = (0..threads)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                store.transition_task_execution(
                    tenant,
                    &StatusChange {
                        task_execution_id: task,
                        to: TaskStatus::Running,
                        actor: Actor::System,
                        output: None,
                        error: None,
                        reason: None,
                    },
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().map_err(|_| anyhow::anyhow!("panicked")))
        .collect::<anyhow::Result<_>>()?;
    let winners = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(winners, 1);
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert!(
                matches!(
                    error,
                    RepoError::InvalidTransition {
                        current: TaskStatus::Running,
                        ..
                    }
                ),
                "{error:?}"
            );
        }
    }
    let mut conn = app_conn(&db)?;
    let org = tenant.organization_id();
    let events = conn.transaction(|conn| {
        conn.batch_execute(&format!(
            "SELECT set_config('app.organization_id', '{org}', true)"
        ))?;
        count(conn, "SELECT count(*) AS n FROM task_execution_events")
    })?;
    assert_eq!(events, 2, "the creation and the one winning claim");
    Ok(())
}

#[test]
fn keys_are_found_by_id_across_organizations_and_never_for_another_id() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let tenant = organization(&store, "a")?;
    let key = NewApiKey {
        id: ApiKeyId::generate(),
        organization_id: tenant.organization_id(),
        role: Role::Worker,
        actor: Actor::User(uuid::Uuid::new_v4()),
        secret_sha256: [9; 32],
    };
    store.create_api_key(&key)?;
    let found = store
        .find_api_key(key.id)?
        .ok_or_else(|| anyhow::anyhow!("key not found"))?;
    assert_eq!(
        (found.role, found.actor, found.secret_sha256),
        (key.role, key.actor, key.secret_sha256)
    );
    assert_eq!(found.organization_id, tenant.organization_id());
    assert_eq!(store.find_api_key(ApiKeyId::generate())?, None);

    let orphan = NewApiKey {
        id: ApiKeyId::generate(),
        organization_id: OrganizationId::generate(),
        ..key
    };
    assert!(matches!(
        store.create_api_key(&orphan),
        Err(RepoError::NotFound)
    ));
    Ok(())
}
