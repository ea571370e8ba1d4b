//! What only the SQLite store promises: its pragmas, the attempt key in SQL,
//! many concurrent writers without `database is locked`, and data that
//! survives reopening the file. The ports' shared behaviour is in
//! `contract.rs`.

use std::sync::{Arc, Barrier};
use std::thread;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use flowexec_contract::{check_flow_statuses, flow, organization, FLOW_STATUS_CASES};
use flowexec_domain::ports::{ExecutionStore, OrganizationRepository, TenantTx};
use flowexec_testkit::{TestSqlite, TABLES};

type TestResult = anyhow::Result<()>;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Mode {
    #[diesel(sql_type = Text)]
    journal_mode: String,
}

#[test]
fn the_database_is_in_wal_mode_with_foreign_keys_enforced() -> TestResult {
    let db = TestSqlite::new()?;
    let store = db.open(2)?;
    let tenant = organization(&store, "a")?;
    let mut conn = SqliteConnection::establish(&db.path().to_string_lossy())?;
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode").get_result(&mut conn)?;
    assert_eq!(mode.journal_mode, "wal");

    // Through the store's own connections, a row without its parent is refused.
    let orphan = flowexec_domain::NewApiKey {
        id: flowexec_domain::ApiKeyId::generate(),
        organization_id: flowexec_domain::OrganizationId::generate(),
        role: flowexec_domain::Role::Read,
        actor: flowexec_domain::Actor::System,
        secret_sha256: [1; 32],
        created_at: flowexec_contract::at(0),
    };
    use flowexec_domain::ports::ApiKeyRepository;
    assert!(store.create_api_key(&orphan).is_err());
    assert!(flow(&store, tenant, &["t"]).is_ok());
    Ok(())
}

#[test]
fn the_attempt_key_rejects_a_second_row_with_the_same_flow_task_and_index() -> TestResult {
    let db = TestSqlite::new()?;
    let store = db.open(2)?;
    let tenant = organization(&store, "a")?;
    let created = flow(&store, tenant, &["t"])?;
    let (org, flow_id) = (tenant.organization_id(), created.flow_execution.id);
    let mut conn = SqliteConnection::establish(&db.path().to_string_lossy())?;
    conn.batch_execute("PRAGMA foreign_keys = ON")?;
    let insert = |conn: &mut SqliteConnection, index: i32| {
        conn.batch_execute(&format!(
            "INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, modified_by, created_at, updated_at) \
             VALUES ('{org}', '{}', '{flow_id}', 't', {index}, 'system', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')",
            uuid::Uuid::new_v4()
        ))
    };
    let duplicate = insert(&mut conn, 0);
    assert!(
        duplicate
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("UNIQUE")),
        "{duplicate:?}"
    );
    insert(&mut conn, 1)?;
    assert_eq!(
        store
            .read(tenant, |tx| tx.flow_execution(flow_id))?
            .task_executions
            .len(),
        2
    );
    Ok(())
}

#[test]
fn thirty_two_concurrent_writers_all_succeed_without_database_is_locked() -> TestResult {
    let db = TestSqlite::new()?;
    let store = Arc::new(db.open(8)?);
    let tenant = organization(&*store, "a")?;
    let (threads, flows_each) = (32, 5);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || -> anyhow::Result<()> {
                barrier.wait();
                for _ in 0..flows_each {
                    let created = flow(&*store, tenant, &["a", "b", "c"])?;
                    store.task_execution(tenant, created.task_executions[0].id)?;
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
    }
    let mut conn = SqliteConnection::establish(&db.path().to_string_lossy())?;
    let count: Count =
        diesel::sql_query("SELECT count(*) AS n FROM task_executions").get_result(&mut conn)?;
    assert_eq!(count.n, (threads * flows_each * 3) as i64);
    Ok(())
}

#[test]
fn data_survives_closing_and_reopening_the_file() -> TestResult {
    let db = TestSqlite::new()?;
    let (tenant, created) = {
        let store = db.open(2)?;
        let tenant = organization(&store, "a")?;
        (tenant, flow(&store, tenant, &["t"])?)
    };
    let reopened = db.open(2)?;
    assert_eq!(
        reopened.read(tenant, |tx| tx.flow_execution(created.flow_execution.id))?,
        created.detail()
    );
    Ok(())
}

#[test]
fn upgrading_a_file_filled_under_earlier_migrations_keeps_every_row() -> TestResult {
    use diesel_migrations::MigrationHarness;
    let db = TestSqlite::new()?;
    let mut conn = SqliteConnection::establish(&db.path().to_string_lossy())?;
    // The first release's schema only, then rows it allowed: two
    // organizations of one name, each with a key, a flow and a task.
    conn.run_next_migration(flowexec_persistence::SQLITE_MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let orgs = [
        (
            "00000000-0000-4000-8000-000000000001",
            "dup",
            "2026-11-01T00:00:00.000000Z",
        ),
        (
            "00000000-0000-4000-8000-000000000002",
            "dup",
            "2026-11-02T00:00:00.000000Z",
        ),
        (
            "00000000-0000-4000-8000-000000000003",
            "other",
            "2026-11-03T00:00:00.000000Z",
        ),
    ];
    for (n, (id, name, at)) in orgs.iter().enumerate() {
        conn.batch_execute(&format!(
            "INSERT INTO organizations (id, name, created_at) VALUES ('{id}', '{name}', '{at}');
             INSERT INTO api_keys (id, organization_id, role, actor, secret_sha256, created_at)
                 VALUES ('10000000-0000-4000-8000-00000000000{n}', '{id}', 'admin', 'system', zeroblob(32), '{at}');
             INSERT INTO flow_executions (organization_id, id, flow_name, input, modified_by, created_at, updated_at)
                 VALUES ('{id}', '20000000-0000-4000-8000-00000000000{n}', 'f', '{{\"a\":1e2}}', 'system', '{at}', '{at}');
             INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, status, input, modified_by, created_at, updated_at)
                 VALUES ('{id}', '30000000-0000-4000-8000-00000000000{n}', '20000000-0000-4000-8000-00000000000{n}', 't', 0, 'queued', NULL, 'system', '{at}', '{at}');
             INSERT INTO task_execution_events (organization_id, task_execution_id, from_status, to_status, actor, reason, created_at)
                 VALUES ('{id}', '30000000-0000-4000-8000-00000000000{n}', NULL, 'queued', 'system', 'created', '{at}');"
        ))?;
    }
    let counts = |conn: &mut SqliteConnection| -> anyhow::Result<Vec<i64>> {
        TABLES
            .iter()
            .map(|t| {
                Ok(diesel::sql_query(format!("SELECT count(*) AS n FROM {t}"))
                    .get_result::<Count>(conn)?
                    .n)
            })
            .collect()
    };
    let before = counts(&mut conn)?;
    drop(conn);

    let store = db.open(2)?; // applies the pending migrations
    let mut conn = SqliteConnection::establish(&db.path().to_string_lossy())?;
    assert_eq!(counts(&mut conn)?, before, "rows were lost");
    let names: Vec<String> = store
        .list_organizations()?
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(
        names,
        vec!["dup", "dup (00000000-0000-4000-8000-000000000002)", "other"]
    );
    // Each task execution reads back through the store, at version 1.
    for (n, (id, _, _)) in orgs.iter().enumerate() {
        let tenant = flowexec_domain::Tenant::new(id.parse()?);
        let task = store.task_execution(
            tenant,
            format!("30000000-0000-4000-8000-00000000000{n}").parse()?,
        )?;
        assert_eq!((task.version, task.status.as_str()), (1, "queued"));
    }
    Ok(())
}

#[test]
fn upgrading_stores_each_flow_executions_status_as_it_was_derived() -> TestResult {
    use diesel_migrations::MigrationHarness;
    let db = TestSqlite::new()?;
    let mut conn = SqliteConnection::establish(&db.path().to_string_lossy())?;
    // Every migration before the flows one (the fifth is the last).
    for _ in 0..5 {
        conn.run_next_migration(flowexec_persistence::SQLITE_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let org = "00000000-0000-4000-8000-0000000000aa";
    let at = "2026-11-01T00:00:00.000000Z";
    conn.batch_execute(&format!(
        "INSERT INTO organizations (id, name, created_at) VALUES ('{org}', 'o', '{at}')"
    ))?;
    for (flow, attempts, _) in FLOW_STATUS_CASES {
        let flow_id = format!("20000000-0000-4000-8000-0000000000{flow:02}");
        conn.batch_execute(&format!(
            "INSERT INTO flow_executions (organization_id, id, flow_name, modified_by, created_at, updated_at)
                 VALUES ('{org}', '{flow_id}', 'f', 'system', '{at}', '{at}')"
        ))?;
        for (n, (task, index, status)) in attempts.iter().enumerate() {
            conn.batch_execute(&format!(
                "INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, status, modified_by, created_at, updated_at)
                     VALUES ('{org}', '30000000-0000-4000-8000-0000000{flow:02}{n:03}', '{flow_id}', '{task}', {index}, '{status}', 'system', '{at}', '{at}')"
            ))?;
        }
    }
    drop(conn);
    let store = db.open(2)?; // applies the pending migrations
    let tenant = flowexec_domain::Tenant::new(org.parse()?);
    check_flow_statuses(&store, tenant)
}

#[derive(QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// The engine asks, at each change of a flow execution's tasks, whether a
/// latest attempt is open or failed. With the statistics the store keeps
/// (`refresh_statistics`, at open and from the sweeper), SQLite answers
/// from the partial indexes made for it, not by reading every task of the
/// organization through its primary key.
#[test]
fn with_fresh_statistics_the_engines_questions_use_their_partial_indexes() -> TestResult {
    let db = TestSqlite::new()?;
    let store = db.open(2)?;
    let tenant = organization(&store, "a")?;
    for i in 0..20 {
        let names: Vec<String> = (0..100).map(|t| format!("t{i}-{t}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        flow(&store, tenant, &names)?;
    }
    store.refresh_statistics()?;
    let org = tenant.organization_id().to_string();
    let mut conn = SqliteConnection::establish(&db.path().to_string_lossy())?;
    for (condition, index) in [
        (
            "task_executions.status IN ('queued', 'running', 'stale')",
            "task_executions_flow_open_idx",
        ),
        (
            "task_executions.status = 'failed'",
            "task_executions_flow_failed_idx",
        ),
    ] {
        let plan: Vec<PlanRow> = diesel::sql_query(format!(
            "EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM task_executions
             WHERE organization_id = '{org}' AND flow_execution_id = 'x' AND {condition})"
        ))
        .load(&mut conn)?;
        let details: Vec<&str> = plan.iter().map(|p| p.detail.as_str()).collect();
        assert!(
            details.iter().any(|d| d.contains(index)),
            "{condition}: {details:?}"
        );
    }
    Ok(())
}
