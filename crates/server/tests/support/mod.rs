//! A real server on a random port over a fresh database — PostgreSQL (as the
//! restricted app role) or SQLite — reached over real HTTP as a client
//! would.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod binary;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use flowexec_api::ShutdownSignal;
use flowexec_domain::{Actor, OrganizationId, OrganizationName, RetryPolicy, Role};
use flowexec_server::settings::{
    AuthSettings, BootstrapSettings, DatabaseSettings, LogFormat, LogSettings, ServerSettings,
    Settings, WorkersSettings,
};
use flowexec_server::store::{api_services, open_store, sweeper, AnyStore, Backend, Purpose};
use flowexec_server::with_store;
use flowexec_server::{build_server, listen_for_work, run_sweeper};
use flowexec_service::Admin;
use flowexec_testkit::{TestDb, TestSqlite};

pub type TestResult = anyhow::Result<()>;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Sqlite,
}

/// The database of one test, dropped with it.
pub enum Database {
    Postgres(TestDb),
    Sqlite(TestSqlite),
}

impl Database {
    pub fn new(kind: Kind) -> anyhow::Result<Self> {
        Ok(match kind {
            Kind::Postgres => Self::Postgres(TestDb::new()?),
            Kind::Sqlite => Self::Sqlite(TestSqlite::new()?),
        })
    }

    /// `database.url` for the server.
    pub fn url(&self) -> String {
        match self {
            Self::Postgres(db) => db.app_url(),
            Self::Sqlite(db) => db.url(),
        }
    }

    /// A folder for `data_dir`, removed with the database.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            Self::Postgres(db) => std::env::temp_dir().join(format!(
                "flowexec-data-{}",
                db.app_url().rsplit('/').next().unwrap_or("x")
            )),
            Self::Sqlite(db) => db.dir().join("data"),
        }
    }

    /// Rows in a table, across all organizations (as the superuser on
    /// PostgreSQL).
    pub fn count(&self, table: &str) -> anyhow::Result<i64> {
        match self {
            Self::Postgres(db) => db.count(table),
            Self::Sqlite(db) => db.count(table),
        }
    }
}

pub fn settings(db: &Database) -> Settings {
    Settings {
        data_dir: db.data_dir(),
        database: DatabaseSettings {
            url: Some(db.url()),
            admin_url: match db {
                Database::Postgres(pg) => Some(pg.admin_url()),
                Database::Sqlite(_) => None,
            },
            pool_size: 4,
            connect_timeout_secs: 5,
        },
        server: ServerSettings {
            bind: "127.0.0.1:0".into(),
            workers: Some(2),
            max_body_bytes: 64 * 1024,
            body_timeout_secs: 15,
            max_connections: None,
            shutdown_timeout_secs: 5,
        },
        auth: AuthSettings { key_cache_secs: 10 },
        bootstrap: BootstrapSettings { enabled: false },
        workers: WorkersSettings {
            retry: RetryPolicy::default(),
            sweep_interval_secs: 1,
        },
        log: LogSettings {
            format: LogFormat::Text,
            level: "warn".into(),
        },
    }
}

pub struct TestApp {
    pub db: Database,
    pub base: String,
    pub client: reqwest::blocking::Client,
    settings: Settings,
    admin: AnyStore,
    handle: ServerHandle,
    shutdown: ShutdownSignal,
}

/// An organization and a key in it.
pub struct Tenant {
    pub organization_id: OrganizationId,
    pub key: String,
}

impl TestApp {
    pub fn spawn(kind: Kind) -> anyhow::Result<Self> {
        let db = Database::new(kind)?;
        let settings = settings(&db);
        let backend = Backend::from_settings(&settings)?;
        let store = open_store(&settings, &backend, Purpose::Serve)?;
        let admin = open_store(&settings, &backend, Purpose::Admin)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let (sender, receiver) = mpsc::channel();
        let server_settings = settings.clone();
        let shutdown = ShutdownSignal::new();
        let stop = shutdown.clone();
        thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let services = api_services(&server_settings, &store);
                // As `serve` does; kept until the server stops.
                let _listener = listen_for_work(&server_settings, &store, &services.work);
                actix_web::rt::spawn(run_sweeper(
                    sweeper(&server_settings, &store),
                    Duration::from_secs(server_settings.workers.sweep_interval_secs),
                    stop.clone(),
                    services.work.clone(),
                ));
                match build_server(&server_settings, services, listener, stop) {
                    Ok(server) => {
                        let _ = sender.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error));
                    }
                }
            });
        });
        let handle = receiver.recv()??;
        Ok(Self {
            db,
            base,
            client: reqwest::blocking::Client::new(),
            settings,
            admin,
            handle,
            shutdown,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new organization with a key of `role`.
    pub fn tenant(&self, role: Role, actor: Actor) -> anyhow::Result<Tenant> {
        let key = with_store!(&self.admin, s => {
            let service = Admin::new(s.clone());
            let name = format!("org-{}", uuid::Uuid::new_v4().simple());
            let created = service.create_organization(&OrganizationName::parse(name)?)?;
            service.create_api_key(created.organization.id, role, actor)?
        });
        Ok(Tenant {
            organization_id: key.organization_id,
            key: key.plaintext,
        })
    }

    /// Another key in an existing organization.
    pub fn key(&self, tenant: &Tenant, role: Role) -> anyhow::Result<String> {
        let key = with_store!(&self.admin, s => Admin::new(s.clone())
            .create_api_key(tenant.organization_id, role, Actor::System)?);
        Ok(key.plaintext)
    }

    pub fn count(&self, table: &str) -> anyhow::Result<i64> {
        self.db.count(table)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server and the sweeper before the database is dropped.
        self.shutdown.trigger();
        let handle = self.handle.clone();
        let _ =
            thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false))).join();
    }
}

/// Runs each named test function (taking a [`Kind`]) once per backend:
/// `<name>::on_postgres` and `<name>::on_sqlite`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn on_postgres() -> $crate::support::TestResult {
                    super::$name($crate::support::Kind::Postgres)
                }

                #[test]
                fn on_sqlite() -> $crate::support::TestResult {
                    super::$name($crate::support::Kind::Sqlite)
                }
            }
        )+
    };
}
