//! What only the PostgreSQL store promises, against a real database as the
//! restricted app role: Row-Level Security as a second wall, the
//! single-statement read, the attempt key in SQL. The ports' shared
//! behaviour is in `contract.rs`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use flowexec_contract::{check_flow_statuses, flow, organization, FLOW_STATUS_CASES};
use flowexec_domain::ports::{ExecutionStore, OrganizationRepository, TenantTx};
use flowexec_domain::{FlowExecutionId, RepoError, TaskStatus};
use flowexec_persistence::{inspect_role, migrate, migrate_up_to, PgStore, PoolSettings};
use flowexec_testkit::{TestDb, TABLES};

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
            .task_execution(b, b_flow.task_executions[0].id)?
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
            .read(tenant, |tx| tx.flow_execution(flow_id))?
            .task_executions
            .len(),
        2
    );
    Ok(())
}

#[test]
fn upgrading_a_database_filled_under_earlier_migrations_keeps_every_row() -> TestResult {
    let db = TestDb::empty()?;
    let before_unique_names = "20261128000003";
    let report = migrate_up_to(&db.admin_url(), &db.app_url(), Some(before_unique_names))?;
    assert_eq!(
        report.applied.last().map(String::as_str),
        Some(before_unique_names)
    );
    // Rows as the earliest schema held them, written in its own SQL: two
    // organizations of one name (as it allowed), each with a key, a flow
    // execution, a task execution in every status and their events.
    let mut admin = PgConnection::establish(&db.admin_url())?;
    let orgs = [
        ("00000000-0000-4000-8000-000000000001", "dup"),
        ("00000000-0000-4000-8000-000000000002", "dup"),
        ("00000000-0000-4000-8000-000000000003", "other"),
    ];
    for (n, (id, name)) in orgs.iter().enumerate() {
        admin.batch_execute(&format!(
            "INSERT INTO organizations (id, name, created_at) VALUES ('{id}', '{name}', '2026-11-0{}T00:00:00Z');
             INSERT INTO api_keys (id, organization_id, role, actor, secret_sha256)
                 VALUES (gen_random_uuid(), '{id}', 'admin', 'system', decode(repeat('ab', 32), 'hex'));
             INSERT INTO flow_executions (organization_id, id, flow_name, input, modified_by)
                 VALUES ('{id}', '20000000-0000-4000-8000-00000000000{n}', 'f', '{{\"a\": 1e2}}', 'system');
             INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, status, input, output, modified_by)
                 SELECT '{id}', gen_random_uuid(), '20000000-0000-4000-8000-00000000000{n}', 't-' || s, 0, s, '[1]', '{{\"ok\": true}}', 'system'
                 FROM unnest(ARRAY['queued', 'running', 'completed', 'failed', 'deleted', 'stale']) AS s;
             INSERT INTO task_execution_events (organization_id, task_execution_id, from_status, to_status, actor, reason)
                 SELECT organization_id, id, NULL, 'queued', 'system', 'created' FROM task_executions WHERE organization_id = '{id}';",
            n + 1
        ))?;
    }
    let counts = |conn: &mut PgConnection| -> anyhow::Result<Vec<i64>> {
        TABLES
            .iter()
            .map(|t| count(conn, &format!("SELECT count(*) AS n FROM {t}")))
            .collect()
    };
    let before = counts(&mut admin)?;
    assert_eq!(before, [3, 3, 3, 18, 18]);

    let report = migrate(&db.admin_url(), &db.app_url())?;
    assert!(!report.applied.is_empty(), "nothing was left to apply");
    assert_eq!(counts(&mut admin)?, before, "rows were lost");
    // Every task execution reads back through the store, at version 1,
    // with its status and JSON intact.
    let store = store(&db, 2)?;
    for (n, (id, _)) in orgs.iter().enumerate() {
        let tenant = flowexec_domain::Tenant::new(id.parse()?);
        let flow_id: FlowExecutionId = format!("20000000-0000-4000-8000-00000000000{n}").parse()?;
        let detail = store.read(tenant, |tx| tx.flow_execution(flow_id))?;
        assert_eq!(detail.task_executions.len(), 6);
        for task in &detail.task_executions {
            assert_eq!(task.version, 1);
            // The worker columns: default run options, never claimed.
            assert_eq!(task.run, flowexec_domain::RunOptions::default());
            assert_eq!(task.lease, flowexec_domain::Lease::default());
            assert_eq!(task.not_before, None);
            assert_eq!(format!("t-{}", task.status), task.task_name.as_str());
            assert_eq!(task.input, Some(serde_json::json!([1])));
        }
        assert_eq!(
            detail.flow_execution.input,
            Some(serde_json::json!({"a": 100}))
        );
    }
    let listed =
        PgStore::connect(&db.admin_url(), &PoolSettings::default())?.list_organizations()?;
    let names: Vec<String> = listed.iter().map(|o| o.name.to_string()).collect();
    assert_eq!(
        names,
        ["dup", "dup (00000000-0000-4000-8000-000000000002)", "other"],
        "the oldest keeps its name, a later holder gets its id appended"
    );
    // From now on, a repeated name is refused.
    assert!(matches!(
        organization(&store, "other").map_err(|e| e.downcast::<RepoError>()),
        Err(Ok(RepoError::Conflict(_)))
    ));
    Ok(())
}

#[test]
fn migrate_creates_a_missing_database_and_nothing_when_the_connection_fails_otherwise() -> TestResult
{
    let db = TestDb::unborn()?;
    // An unknown user: libpq's message says "does not exist" too, yet no
    // database may be created for it.
    let refused = migrate(&db.url_as("no_such_user")?, &db.app_url())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("cannot connect with database.admin_url"),
        "{refused}"
    );
    assert!(!db.exists()?, "a database was created for a refused login");

    let first = migrate(&db.admin_url(), &db.app_url())?;
    assert!(first.database_created && !first.applied.is_empty());
    let again = migrate(&db.admin_url(), &db.app_url())?;
    assert!(!again.database_created && again.applied.is_empty());
    Ok(())
}

#[test]
fn only_an_administrative_connection_may_list_every_organization() -> TestResult {
    let db = TestDb::new()?;
    let app = store(&db, 2)?;
    organization(&app, "one")?;
    organization(&app, "two")?;
    assert!(
        app.list_organizations().is_err(),
        "the app role listed organizations across tenants"
    );
    let admin = PgStore::connect(&db.admin_url(), &PoolSettings::default())?;
    let names: Vec<String> = admin
        .list_organizations()?
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(names, vec!["one", "two"]);
    Ok(())
}

#[derive(QueryableByName, Debug)]
struct TableSecurity {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    enabled: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    forced: bool,
    #[diesel(sql_type = BigInt)]
    policies: i64,
}

/// The catalog, not a list kept by hand: every table of the schema has
/// Row-Level Security enabled and forced, with at least one policy — so a
/// table a later migration adds without it fails here. (Diesel's own
/// migration ledger is the one exception: it holds no tenant data and the
/// app role cannot read it.)
#[test]
fn every_table_has_row_level_security_enabled_forced_and_a_policy() -> TestResult {
    let db = TestDb::new()?;
    let mut admin = PgConnection::establish(&db.admin_url())?;
    let tables: Vec<TableSecurity> = diesel::sql_query(
        "SELECT c.relname::text AS name, c.relrowsecurity AS enabled,
                c.relforcerowsecurity AS forced,
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
         ORDER BY 1",
    )
    .load(&mut admin)?;
    let checked: Vec<&TableSecurity> = tables
        .iter()
        .filter(|t| t.name != "__diesel_schema_migrations")
        .collect();
    assert!(checked.len() >= TABLES.len(), "{tables:?}");
    let unprotected: Vec<&&TableSecurity> = checked
        .iter()
        .filter(|t| !(t.enabled && t.forced && t.policies > 0))
        .collect();
    assert!(
        unprotected.is_empty(),
        "tables without RLS: {unprotected:?}"
    );
    let ledger = count(
        &mut app_conn(&db)?,
        "SELECT count(*) AS n FROM information_schema.table_privileges
         WHERE table_name = '__diesel_schema_migrations' AND grantee = 'flowexec_runtime'",
    )?;
    assert_eq!(ledger, 0, "the app role was granted the migration ledger");
    Ok(())
}

#[test]
fn committed_queued_tasks_notify_the_work_listener() -> TestResult {
    use flowexec_persistence::ListenEvent;
    use std::sync::mpsc;
    use std::time::Duration;

    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let (sender, received) = mpsc::channel::<ListenEvent>();
    let listener = flowexec_persistence::WorkListener::start(&db.app_url(), move |event| {
        let _ = sender.send(event);
    })
    .ok_or_else(|| anyhow::anyhow!("no listener for a local database"))?;
    let next = |wait: Duration| received.recv_timeout(wait).ok();
    let tenant = organization(&store, "a")?;
    // The listener connects on its own thread and says when it listens.
    assert_eq!(next(Duration::from_secs(10)), Some(ListenEvent::Listening));
    flow(&store, tenant, &["t"])?;
    assert_eq!(
        next(Duration::from_secs(10)),
        Some(ListenEvent::Work),
        "no notification for committed queued tasks"
    );
    // A unit rolled back notifies no one.
    let undone = store.in_tenant(tenant, |tx| -> Result<(), RepoError> {
        let created = flowexec_domain::NewFlowExecution::new(
            flowexec_domain::FlowName::parse("f").map_err(|e| RepoError::Unknown(e.into()))?,
            None,
            vec![flowexec_domain::NewTask {
                task_name: flowexec_domain::TaskName::parse("t")
                    .map_err(|e| RepoError::Unknown(e.into()))?,
                input: None,
                run: flowexec_domain::RunOptions::default(),
            }],
        )
        .map_err(|e| RepoError::Unknown(e.into()))?
        .plan(
            tenant.organization_id(),
            flowexec_domain::Actor::System,
            chrono::Utc::now(),
        );
        tx.insert_flow_execution(&created.flow_execution)?;
        tx.insert_task_executions(&created.task_executions)?;
        Err(RepoError::Unknown(anyhow::anyhow!("rolled back")))
    });
    assert!(undone.is_err());
    assert_eq!(
        next(Duration::from_millis(1500)),
        None,
        "a rolled-back insert notified"
    );
    // Its connection cut, the listener says so, connects again, says so,
    // and hears committed inserts again.
    let mut admin = PgConnection::establish(&db.admin_url())?;
    let cut = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'flowexec-work-listener'",
    )
    .execute(&mut admin)?;
    assert_eq!(cut, 1, "the listener's connection was not found");
    assert_eq!(next(Duration::from_secs(10)), Some(ListenEvent::Lost));
    assert_eq!(next(Duration::from_secs(15)), Some(ListenEvent::Listening));
    flow(&store, tenant, &["u"])?;
    assert_eq!(
        next(Duration::from_secs(10)),
        Some(ListenEvent::Work),
        "the listener stopped hearing"
    );
    drop(listener);
    Ok(())
}

#[test]
fn statistics_follow_a_table_whose_rows_changed_as_often_as_it_had_rows() -> TestResult {
    let db = TestDb::new()?;
    let store = store(&db, 2)?;
    let mut admin = PgConnection::establish(&db.admin_url())?;
    // Only the function analyzes here.
    admin.batch_execute(
        "ALTER TABLE flow_executions SET (autovacuum_enabled = off);
         ALTER TABLE task_executions SET (autovacuum_enabled = off);
         ALTER TABLE task_execution_events SET (autovacuum_enabled = off);",
    )?;
    let tenant = organization(&store, "a")?;
    assert_eq!(
        store.refresh_statistics()?,
        Vec::<String>::new(),
        "empty tables analyzed"
    );
    let names: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for _ in 0..10 {
        flow(&store, tenant, &names)?;
    }
    // The counts of changed rows reach the statistics system within about
    // a second of each commit: ask until they have (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let analyzed = loop {
        let analyzed = store.refresh_statistics()?;
        if !analyzed.is_empty() || std::time::Instant::now() > deadline {
            break analyzed;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        analyzed.contains(&"public.task_executions".to_owned()),
        "{analyzed:?}"
    );
    #[derive(QueryableByName)]
    struct Counted {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let counted = diesel::sql_query(
        "SELECT reltuples::bigint AS n FROM pg_class WHERE oid = 'task_executions'::regclass",
    )
    .get_result::<Counted>(&mut admin)?;
    assert_eq!(counted.n, 1000, "the statistics do not count the new rows");
    assert_eq!(
        store.refresh_statistics()?,
        Vec::<String>::new(),
        "analyzed again though little changed"
    );
    Ok(())
}

#[test]
fn upgrading_stores_each_flow_executions_status_as_it_was_derived() -> TestResult {
    let db = TestDb::empty()?;
    let before_flows = "20261129000010";
    migrate_up_to(&db.admin_url(), &db.app_url(), Some(before_flows))?;
    let org = "00000000-0000-4000-8000-0000000000aa";
    let mut admin = PgConnection::establish(&db.admin_url())?;
    admin.batch_execute(&format!(
        "INSERT INTO organizations (id, name) VALUES ('{org}', 'o')"
    ))?;
    for (flow, attempts, _) in FLOW_STATUS_CASES {
        let flow_id = format!("20000000-0000-4000-8000-0000000000{flow:02}");
        admin.batch_execute(&format!(
            "INSERT INTO flow_executions (organization_id, id, flow_name, modified_by)
                 VALUES ('{org}', '{flow_id}', 'f', 'system')"
        ))?;
        for (task, index, status) in attempts {
            admin.batch_execute(&format!(
                "INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, status, modified_by)
                     VALUES ('{org}', gen_random_uuid(), '{flow_id}', '{task}', {index}, '{status}', 'system')"
            ))?;
        }
    }
    migrate(&db.admin_url(), &db.app_url())?;
    let store = store(&db, 2)?;
    let tenant = flowexec_domain::Tenant::new(org.parse()?);
    check_flow_statuses(&store, tenant)
}

/// Two units of work locking two rows in opposite orders deadlock;
/// PostgreSQL aborts one, which left nothing, and the store runs it again:
/// both succeed, and one of them ran more than once.
#[test]
fn a_unit_of_work_aborted_to_break_a_deadlock_runs_again() -> TestResult {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    let db = TestDb::new()?;
    let store = Arc::new(store(&db, 4)?);
    let tenant = organization(&*store, "a")?;
    let created = flow(&*store, tenant, &["a", "b"])?;
    let (a, b) = (created.task_executions[0].id, created.task_executions[1].id);
    let barrier = Arc::new(Barrier::new(2));
    let runs = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = [(a, b), (b, a)]
        .into_iter()
        .map(|(first, second)| {
            let (store, barrier, runs) = (store.clone(), barrier.clone(), runs.clone());
            std::thread::spawn(move || {
                let first_time = AtomicBool::new(true);
                store.in_tenant(tenant, |tx| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tx.lock_task_execution(first)?;
                    // Both hold their first row before either asks for
                    // its second (only the first time: a run again does
                    // not wait for the other).
                    if first_time.swap(false, Ordering::SeqCst) {
                        barrier.wait();
                    }
                    tx.lock_task_execution(second)?;
                    Ok(())
                })
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("a thread panicked"))??;
    }
    assert!(
        runs.load(Ordering::SeqCst) >= 3,
        "no unit of work ran again"
    );
    Ok(())
}
