//! Database set-up: the roles, the embedded migrations, and the check that
//! the server's role is fit to serve.
//!
//! `migrate` runs with the admin connection (`database.admin_url`), which
//! must be a superuser or a member of `flowexec_owner` with `CREATEROLE`.

use anyhow::{bail, Context};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use url::Url;

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// The NOLOGIN role that owns every table, function and policy.
pub const OWNER_ROLE: &str = "flowexec_owner";
/// The NOLOGIN role holding the server's privileges; the app role is a member.
pub const RUNTIME_ROLE: &str = "flowexec_runtime";

/// An arbitrary constant: the advisory lock that serializes migrators.
const MIGRATION_LOCK: i64 = 0x666c_6f77_6578_6563;

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The database did not exist and was created.
    pub database_created: bool,
    /// The LOGIN role the server will connect as.
    pub app_role: String,
    /// The migrations applied by this run, oldest first.
    pub applied: Vec<String>,
}

/// Creates the database if it is missing, creates the roles if they are
/// missing, and applies pending migrations as the owner role.
///
/// `app_url` is the server's `database.url`: its user becomes the LOGIN app
/// role, created if missing, and given the URL's password when the URL has
/// one. Both URLs must name the same database.
pub fn migrate(admin_url: &str, app_url: &str) -> anyhow::Result<MigrationReport> {
    migrate_up_to(admin_url, app_url, None)
}

/// [`migrate`], stopping after the migration whose version is `last` (e.g.
/// `20261128000003`) when given: how a test builds a database as an earlier
/// release left it, to check that upgrading it keeps every row.
pub fn migrate_up_to(
    admin_url: &str,
    app_url: &str,
    last: Option<&str>,
) -> anyhow::Result<MigrationReport> {
    let admin = Url::parse(admin_url).context("database.admin_url is not a postgres:// URL")?;
    let app = Url::parse(app_url).context("database.url is not a postgres:// URL")?;
    let database = database_name(&admin)?;
    if database_name(&app)? != database {
        bail!(
            "database.url names database {:?} but database.admin_url names {database:?}; they must be the same",
            database_name(&app)?
        );
    }
    let app_role = decode(app.username());
    check_identifier("the role in database.url", &app_role)?;
    let app_password = app.password().map(decode);

    let (mut conn, database_created) = connect_creating_database(&admin, &database)?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let outcome = (|| -> anyhow::Result<Vec<String>> {
        ensure_roles(&mut conn, &app_role, app_password.as_deref(), &database)?;
        conn.batch_execute(&format!("SET ROLE {OWNER_ROLE}"))
            .context("cannot SET ROLE flowexec_owner: the admin role must be a superuser or a member of flowexec_owner")?;
        let mut applied = Vec::new();
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("listing pending migrations failed: {e}"))?;
        if let Some(last) = last {
            anyhow::ensure!(
                pending
                    .iter()
                    .any(|m| m.name().version().to_string() == last),
                "no pending migration has version {last}"
            );
        }
        for migration in pending {
            let version = conn
                .run_migration(&*migration)
                .map_err(|e| anyhow::anyhow!("applying migrations failed: {e}"))?
                .to_string();
            let done = last == Some(version.as_str());
            applied.push(version);
            if done {
                break;
            }
        }
        conn.batch_execute("RESET ROLE")?;
        Ok(applied)
    })();
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
    Ok(MigrationReport {
        database_created,
        app_role,
        applied: outcome?,
    })
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k
            } else {
                format!("{k}={v}").into()
            }
        })
        .collect()
}

fn database_name(url: &Url) -> anyhow::Result<String> {
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        bail!("{url} is not a postgres:// or postgresql:// URL");
    }
    let name = decode(url.path().trim_start_matches('/'));
    if name.is_empty() {
        bail!("the database URL names no database (postgres://user@host:port/DATABASE)");
    }
    Ok(name)
}

/// Role and database names are spliced into DDL (which takes no bind
/// parameters), so only plain identifiers are accepted.
fn check_identifier(what: &str, name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if !valid {
        bail!("{what} ({name:?}) must be a lower-case identifier: a-z, 0-9 and _, at most 63 characters");
    }
    Ok(())
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Connects as `admin`; when that fails, asks the maintenance database's
/// catalog whether `database` exists and creates it only if it does not.
/// (libpq reports a failed connection as text without a SQLSTATE, so the
/// catalog, not the message, decides; any other failure is returned as is.)
fn connect_creating_database(admin: &Url, database: &str) -> anyhow::Result<(PgConnection, bool)> {
    crate::prepare_client_library();
    let error = match PgConnection::establish(admin.as_str()) {
        Ok(conn) => return Ok((conn, false)),
        Err(error) => error,
    };
    let refused = || anyhow::anyhow!("cannot connect with database.admin_url: {error}");
    let mut maintenance_url = admin.clone();
    maintenance_url.set_path("/postgres");
    let Ok(mut maintenance) = PgConnection::establish(maintenance_url.as_str()) else {
        return Err(refused());
    };
    if database_exists(&mut maintenance, database)? {
        return Err(refused());
    }
    check_identifier("the database name", database)?;
    maintenance
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .with_context(|| format!("cannot create database {database}"))?;
    let conn = PgConnection::establish(admin.as_str())
        .with_context(|| format!("cannot connect to the new database {database}"))?;
    Ok((conn, true))
}

fn database_exists(conn: &mut PgConnection, database: &str) -> anyhow::Result<bool> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    let row: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(database)
            .get_result(conn)?;
    Ok(row.exists)
}

fn ensure_roles(
    conn: &mut PgConnection,
    app_role: &str,
    app_password: Option<&str>,
    database: &str,
) -> anyhow::Result<()> {
    let create = |name: &str, options: &str| {
        format!(
            "DO $$ BEGIN CREATE ROLE {name} {options}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
        )
    };
    let password = app_password
        .map(|p| format!("PASSWORD {}", quote_literal(p)))
        .unwrap_or_default();
    let sql = [
        create(OWNER_ROLE, "NOLOGIN NOSUPERUSER NOBYPASSRLS"),
        create(RUNTIME_ROLE, "NOLOGIN NOSUPERUSER NOBYPASSRLS"),
        create(
            app_role,
            &format!("LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT {password}"),
        ),
        // The URL's password is the role's, also when the role existed.
        if password.is_empty() {
            String::new()
        } else {
            format!("ALTER ROLE {app_role} {password};")
        },
        format!("GRANT {RUNTIME_ROLE} TO {app_role};"),
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {OWNER_ROLE};"),
        format!("GRANT USAGE ON SCHEMA public TO {RUNTIME_ROLE};"),
        format!("GRANT CONNECT ON DATABASE \"{database}\" TO {RUNTIME_ROLE};"),
    ]
    .join("\n");
    // Roles and their grants are the cluster's, not the database's: the
    // migration lock (an advisory lock, per database) does not serialize
    // migrators of two databases of one cluster, and PostgreSQL refuses
    // the later of two concurrent grants ("tuple concurrently updated").
    // The statements run as one transaction: a refused one changed
    // nothing, and is run again.
    let mut tries = 0;
    loop {
        match conn.batch_execute(&sql) {
            Ok(()) => break,
            Err(e) if tries < 10 && e.to_string().contains("tuple concurrently updated") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20 * tries));
            }
            Err(e) => return Err(anyhow::Error::new(e).context("creating the roles failed")),
        }
    }
    let report = role_report(conn, app_role)?;
    if let Some(reason) = report.refusal() {
        bail!("the role in database.url cannot serve: {reason}");
    }
    Ok(())
}

/// What the server's role may do, as far as tenant isolation is concerned.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RoleReport {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Bool)]
    pub superuser: bool,
    #[diesel(sql_type = Bool)]
    pub bypass_rls: bool,
    /// The role is, or is a member of, the owner of the tables.
    #[diesel(sql_type = Bool)]
    pub owner: bool,
    /// The schema exists (`flowexec migrate` has run).
    #[diesel(sql_type = Bool)]
    pub schema_ready: bool,
}

impl RoleReport {
    /// Why the server must not run as this role, if it must not.
    pub fn refusal(&self) -> Option<String> {
        let name = &self.name;
        if self.superuser {
            Some(format!("role {name} is a superuser, which bypasses Row-Level Security; connect as the app role (see docs/operations.md)"))
        } else if self.bypass_rls {
            Some(format!("role {name} has BYPASSRLS, which bypasses Row-Level Security; connect as a NOBYPASSRLS app role"))
        } else if self.owner {
            Some(format!("role {name} owns the flowexec tables (or is a member of their owner) and could switch Row-Level Security off; connect as the app role"))
        } else {
            None
        }
    }
}

fn role_report(conn: &mut PgConnection, role: &str) -> anyhow::Result<RoleReport> {
    diesel::sql_query(
        "SELECT r.rolname::text AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls, \
           EXISTS (SELECT 1 FROM pg_roles o WHERE o.rolname = 'flowexec_owner' \
                   AND pg_has_role(r.oid, o.oid, 'USAGE')) AS owner, \
           to_regclass('public.task_executions') IS NOT NULL AS schema_ready \
         FROM pg_roles r WHERE r.rolname = $1",
    )
    .bind::<Text, _>(role)
    .get_result(conn)
    .with_context(|| format!("role {role} does not exist"))
}

/// Reports on the role the connection is logged in as.
pub fn inspect_role(conn: &mut PgConnection) -> anyhow::Result<RoleReport> {
    #[derive(QueryableByName)]
    struct Current {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let current: Current =
        diesel::sql_query("SELECT session_user::text AS name").get_result(conn)?;
    role_report(conn, &current.name)
}
