//! What only the PostgreSQL store promises, against a real database as the
//! restricted app role: Row-Level Security as a second wall, the
//! single-statement read, the attempt key in SQL. The ports' shared
//! behaviour is in `contract.rs`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use flowexec_contract::{flow, organization};
use flowexec_domain::ports::{ExecutionStore, OrganizationRepository, TenantTx};
use flowexec_domain::{RepoError, TaskStatus};
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
    let store = store(&db, 2)?;
    // Two organizations of one name, as the earlier schema allowed, with data.
    let older = organization(&store, "dup")?;
    let newer = organization(&store, "dup")?;
    let other = organization(&store, "other")?;
    for tenant in [older, newer, other] {
        flow(&store, tenant, &["a", "b"])?;
    }
    let mut admin = PgConnection::establish(&db.admin_url())?;
    let counts = |conn: &mut PgConnection| -> anyhow::Result<Vec<i64>> {
        TABLES
            .iter()
            .map(|t| count(conn, &format!("SELECT count(*) AS n FROM {t}")))
            .collect()
    };
    let before = counts(&mut admin)?;

    let report = migrate(&db.admin_url(), &db.app_url())?;
    assert!(!report.applied.is_empty(), "nothing was left to apply");
    assert_eq!(counts(&mut admin)?, before, "rows were lost");
    let listed =
        PgStore::connect(&db.admin_url(), &PoolSettings::default())?.list_organizations()?;
    let name_of = |tenant: flowexec_domain::Tenant| {
        listed
            .iter()
            .find(|o| o.id == tenant.organization_id())
            .map(|o| o.name.to_string())
            .unwrap_or_default()
    };
    assert_eq!(name_of(older), "dup", "the oldest keeps its name");
    assert_eq!(
        name_of(newer),
        format!("dup ({})", newer.organization_id()),
        "a later holder gets its id appended"
    );
    assert_eq!(name_of(other), "other");
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
