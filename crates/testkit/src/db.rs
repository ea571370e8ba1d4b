//! One fresh database per test, copied from a migrated template.

use anyhow::{bail, Context};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use url::Url;

/// The LOGIN role tests connect as.
const APP_ROLE: &str = "flowexec_app";
const APP_PASSWORD: &str = "flowexec_app";
/// Serializes template creation across test processes.
const TEMPLATE_LOCK: i64 = 0x666c_6f77_7465_7374;

/// The superuser URL of the test server (any database on it).
fn admin_base_url() -> anyhow::Result<Url> {
    let text = std::env::var("FLOWEXEC_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@localhost:5432/postgres".to_owned());
    Url::parse(&text).with_context(|| format!("test database URL {text:?} is not a URL"))
}

fn with_database(base: &Url, database: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("/{database}"));
    url
}

fn app_url(base: &Url, database: &str) -> anyhow::Result<Url> {
    let mut url = with_database(base, database);
    url.set_username(APP_ROLE)
        .and_then(|()| url.set_password(Some(APP_PASSWORD)))
        .map_err(|()| anyhow::anyhow!("cannot set credentials on {base}"))?;
    Ok(url)
}

fn connect(url: &Url) -> anyhow::Result<PgConnection> {
    flowexec_persistence::prepare_client_library();
    PgConnection::establish(url.as_str()).with_context(|| {
        format!(
            "cannot reach the test PostgreSQL at {}:{} — start one or set FLOWEXEC_TEST_DATABASE_URL (scripts/test.sh does this)",
            url.host_str().unwrap_or("?"),
            url.port().unwrap_or(5432)
        )
    })
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

fn database_exists(conn: &mut PgConnection, name: &str) -> anyhow::Result<bool> {
    let row: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(name)
            .get_result(conn)?;
    Ok(row.exists)
}

/// The migrated template's name, creating it if this migration set has none.
fn ensure_template(base: &Url, maintenance: &mut PgConnection) -> anyhow::Result<String> {
    let template = format!("flowexec_tpl_{}", env!("FLOWEXEC_TEMPLATE_HASH"));
    maintenance.batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))?;
    let outcome = (|| -> anyhow::Result<()> {
        if database_exists(maintenance, &template)? {
            return Ok(());
        }
        // Build under a temporary name and rename when complete, so a run
        // that dies half-way never leaves a half-migrated template.
        let building = format!("{template}_building");
        maintenance.batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))?;
        flowexec_persistence::migrate(
            with_database(base, &building).as_str(),
            app_url(base, &building)?.as_str(),
        )
        .context("migrating the test template failed")?;
        maintenance.batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))?;
        Ok(())
    })();
    maintenance.batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))?;
    outcome?;
    Ok(template)
}

/// A fresh, migrated database for one test; dropped on drop.
pub struct TestDb {
    base: Url,
    name: String,
}

impl TestDb {
    pub fn new() -> anyhow::Result<Self> {
        Self::on(admin_base_url()?)
    }

    /// A fresh, migrated database on the PostgreSQL at `base` (a superuser
    /// URL), e.g. a [`crate::Cluster`] of the test's own.
    pub fn on(base: Url) -> anyhow::Result<Self> {
        let mut maintenance = connect(&with_database(&base, "postgres"))?;
        let template = ensure_template(&base, &mut maintenance)?;
        let name = format!("flowexec_test_{}", uuid::Uuid::new_v4().simple());
        maintenance
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .with_context(|| format!("creating test database {name} failed"))?;
        Ok(Self { base, name })
    }

    /// A fresh database with no schema at all: for tests that migrate it
    /// themselves (e.g. to an earlier version first).
    pub fn empty() -> anyhow::Result<Self> {
        let base = admin_base_url()?;
        let mut maintenance = connect(&with_database(&base, "postgres"))?;
        let name = format!("flowexec_test_{}", uuid::Uuid::new_v4().simple());
        maintenance
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .with_context(|| format!("creating test database {name} failed"))?;
        Ok(Self { base, name })
    }

    /// A database name that does not exist yet (dropped on drop if
    /// something created it): for tests of `migrate` creating it.
    pub fn unborn() -> anyhow::Result<Self> {
        Ok(Self {
            base: admin_base_url()?,
            name: format!("flowexec_test_{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// Whether the database exists.
    pub fn exists(&self) -> anyhow::Result<bool> {
        database_exists(
            &mut connect(&with_database(&self.base, "postgres"))?,
            &self.name,
        )
    }

    /// [`TestDb::admin_url`] with another user name (which need not exist).
    pub fn url_as(&self, user: &str) -> anyhow::Result<String> {
        let mut url = with_database(&self.base, &self.name);
        url.set_username(user)
            .map_err(|()| anyhow::anyhow!("cannot set a user name on {url}"))?;
        Ok(url.into())
    }

    /// Connects as the restricted app role (not superuser, NOBYPASSRLS).
    pub fn app_url(&self) -> String {
        app_url(&self.base, &self.name)
            .map(String::from)
            .unwrap_or_default()
    }

    /// Connects as the test server's superuser: for set-up that the app role
    /// may not do, never for the assertions about isolation.
    pub fn admin_url(&self) -> String {
        with_database(&self.base, &self.name).into()
    }

    /// Rows in one of [`crate::TABLES`], across all organizations (as the
    /// superuser).
    pub fn count(&self, table: &str) -> anyhow::Result<i64> {
        crate::count_rows(&mut connect(&with_database(&self.base, &self.name))?, table)
    }

    /// Creates a LOGIN role with the given attributes (e.g. `SUPERUSER`,
    /// `BYPASSRLS`) and returns a URL to this database as that role.
    pub fn login_role_url(&self, role: &str, attributes: &str) -> anyhow::Result<String> {
        if !role.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            bail!("role names here are plain identifiers");
        }
        let mut conn = connect(&with_database(&self.base, &self.name))?;
        conn.batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN PASSWORD '{role}' {attributes}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             GRANT flowexec_runtime TO {role};"
        ))?;
        let mut url = with_database(&self.base, &self.name);
        url.set_username(role)
            .and_then(|()| url.set_password(Some(role)))
            .map_err(|()| anyhow::anyhow!("cannot set credentials"))?;
        Ok(url.into())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = connect(&with_database(&self.base, "postgres")) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
