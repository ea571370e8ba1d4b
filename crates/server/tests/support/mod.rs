//! A real server on a random port, over a fresh database, reached over real
//! HTTP as a client would.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use actix_web::dev::ServerHandle;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use flowexec_domain::{Actor, OrganizationId, OrganizationName, Role};
use flowexec_persistence::{PgStore, PoolSettings};
use flowexec_server::settings::{
    AuthSettings, DatabaseSettings, LogFormat, LogSettings, ServerSettings, Settings,
};
use flowexec_server::{build_server, check_role, connect_store, service};
use flowexec_service::Service;
use flowexec_testkit::TestDb;

pub type TestResult = anyhow::Result<()>;

pub fn settings(db: &TestDb) -> Settings {
    Settings {
        database: DatabaseSettings {
            url: db.app_url(),
            admin_url: db.admin_url(),
            pool_size: 4,
            connect_timeout_secs: 5,
        },
        server: ServerSettings {
            bind: "127.0.0.1:0".into(),
            workers: Some(2),
            max_body_bytes: 64 * 1024,
            shutdown_timeout_secs: 5,
        },
        auth: AuthSettings { key_cache_secs: 10 },
        log: LogSettings {
            format: LogFormat::Text,
            level: "warn".into(),
        },
    }
}

pub struct TestApp {
    pub db: TestDb,
    pub base: String,
    pub client: reqwest::blocking::Client,
    admin: Service<PgStore>,
    handle: ServerHandle,
}

/// An organization and a key in it.
pub struct Tenant {
    pub organization_id: OrganizationId,
    pub key: String,
}

impl TestApp {
    pub fn spawn() -> anyhow::Result<Self> {
        let db = TestDb::new()?;
        let settings = settings(&db);
        let store = connect_store(&settings)?;
        check_role(&store)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match build_server(&settings, service(&settings, store), listener) {
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
        let admin = Service::new(PgStore::connect(
            &db.admin_url(),
            &PoolSettings {
                max_size: 1,
                ..PoolSettings::default()
            },
        )?);
        Ok(Self {
            db,
            base,
            client: reqwest::blocking::Client::new(),
            admin,
            handle,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new organization with a key of `role`.
    pub fn tenant(&self, role: Role, actor: Actor) -> anyhow::Result<Tenant> {
        let created = self
            .admin
            .create_organization(&OrganizationName::parse("org")?)?;
        let key = self
            .admin
            .create_api_key(created.organization.id, role, actor)?;
        Ok(Tenant {
            organization_id: created.organization.id,
            key: key.plaintext,
        })
    }

    /// Another key in an existing organization.
    pub fn key(&self, tenant: &Tenant, role: Role) -> anyhow::Result<String> {
        Ok(self
            .admin
            .create_api_key(tenant.organization_id, role, Actor::System)?
            .plaintext)
    }

    /// Rows in a table, counted as the superuser (all tenants).
    pub fn count(&self, table: &str) -> anyhow::Result<i64> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = PgConnection::establish(&self.db.admin_url())?;
        Ok(
            diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
                .get_result::<Count>(&mut conn)?
                .n,
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server before the database is dropped.
        let handle = self.handle.clone();
        let _ =
            thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false))).join();
    }
}
