//! Which store the settings name, opening it, and running code over either.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use flowexec_api::{ApiServices, WorkSignal};
use flowexec_domain::ports::{ApiKeyRepository, DeploymentSecrets, ExecutionStore, HealthCheck};
use flowexec_persistence::{inspect_role, PgStore, PoolSettings, RoleReport, SqliteStore};
use flowexec_service::{
    ApiKeys, Authenticate, Executions, Flows, KeyAuthenticator, KeyCacheSettings, NewWork,
    ServiceError, StoreReadiness, Swept, Workers,
};

use crate::settings::Settings;

/// The store `database.url` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres { url: String },
    Sqlite { path: PathBuf },
}

impl Backend {
    /// `postgres://…` or `postgresql://…` → PostgreSQL; `sqlite://PATH` →
    /// SQLite at PATH; unset or empty → SQLite at `<data_dir>/flowexec.db`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let url = settings
            .database
            .url
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if url.is_empty() {
            return Ok(Self::Sqlite {
                path: settings.data_dir.join("flowexec.db"),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: url.to_owned(),
            });
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("database.url sqlite:// names no file: use sqlite://PATH, e.g. sqlite://./flowexec-data/flowexec.db");
            }
            return Ok(Self::Sqlite {
                path: PathBuf::from(path),
            });
        }
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        bail!(
            "database.url has an unknown scheme {scheme:?}: use postgres://…, postgresql://… or sqlite://PATH, or leave it unset for SQLite in data_dir"
        )
    }

    /// Where the data is, for the first log lines (no password).
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres { url } => format!("PostgreSQL at {}", redact(url)),
            Self::Sqlite { path } => {
                let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("SQLite at {}", shown.display())
            }
        }
    }
}

/// An open store of either kind.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

/// Runs `$body` with `$store` bound to the concrete store inside an
/// [`AnyStore`]: static dispatch, one copy of the code per backend.
#[macro_export]
macro_rules! with_store {
    ($any:expr, $store:ident => $body:expr) => {
        match $any {
            $crate::store::AnyStore::Postgres($store) => $body,
            $crate::store::AnyStore::Sqlite($store) => $body,
        }
    };
}

fn pool(settings: &Settings, max_size: u32) -> PoolSettings {
    PoolSettings {
        max_size,
        connection_timeout: Duration::from_secs(settings.database.connect_timeout_secs),
    }
}

/// What a store is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The server: PostgreSQL as `database.url`, whose role must be fit to
    /// serve; SQLite migrated on open.
    Serve,
    /// Admin commands: PostgreSQL as `database.admin_url` when set (else
    /// `database.url`), one connection.
    Admin,
}

/// Opens the store for `purpose`.
pub fn open_store(
    settings: &Settings,
    backend: &Backend,
    purpose: Purpose,
) -> anyhow::Result<AnyStore> {
    match backend {
        Backend::Sqlite { path } => {
            let size = if purpose == Purpose::Serve {
                settings.database.pool_size
            } else {
                1
            };
            Ok(AnyStore::Sqlite(SqliteStore::open(
                path,
                &pool(settings, size),
            )?))
        }
        Backend::Postgres { url } => {
            let (url, key, size) = match (purpose, settings.database.admin_url.as_deref()) {
                (Purpose::Admin, Some(admin)) => (admin, "database.admin_url", 1),
                (Purpose::Admin, None) => (url.as_str(), "database.url", 1),
                (Purpose::Serve, _) => (url.as_str(), "database.url", settings.database.pool_size),
            };
            let store = PgStore::connect(url, &pool(settings, size))
                .with_context(|| format!("cannot connect with {key} ({})", redact(url)))?;
            if purpose == Purpose::Serve {
                check_role(&store)?;
            }
            Ok(AnyStore::Postgres(store))
        }
    }
}

/// Refuses a role that could bypass Row-Level Security, or a database that
/// has not been migrated.
pub fn check_role(store: &PgStore) -> anyhow::Result<RoleReport> {
    let report = store.with_connection(inspect_role)?;
    if let Some(reason) = report.refusal() {
        bail!("refusing to serve: {reason}");
    }
    anyhow::ensure!(
        report.schema_ready,
        "the database has no flowexec schema: run `flowexec migrate` first"
    );
    Ok(report)
}

/// The use cases the API serves over `store`, with the configured key cache.
pub fn services<S>(settings: &Settings, store: &S) -> ApiServices
where
    S: ExecutionStore + DeploymentSecrets + ApiKeyRepository + HealthCheck + Clone + 'static,
{
    let auth: Arc<dyn Authenticate> = Arc::new(KeyAuthenticator::new(
        store.clone(),
        &KeyCacheSettings {
            ttl: Duration::from_secs(settings.auth.key_cache_secs),
            ..KeyCacheSettings::default()
        },
    ));
    // Complete once whoever serves knows all work reaches it
    // (`listen_for_work`); until then waiting claims poll.
    let work = WorkSignal::new();
    // Tasks queued by a completion (those it made ready) or a failure (its
    // retry) wake this process's waiting claims at once.
    let new_work: NewWork = {
        let work = work.clone();
        Arc::new(move || work.notify())
    };
    ApiServices {
        executions: Arc::new(Executions::new(store.clone()).announcing(new_work.clone())),
        flows: Arc::new(Flows::new(store.clone())),
        keys: Arc::new(ApiKeys::new(store.clone(), auth.clone())),
        readiness: Arc::new(StoreReadiness(store.clone())),
        workers: Arc::new(
            Workers::new(store.clone(), settings.workers.into()).announcing(new_work),
        ),
        work,
        auth,
    }
}

/// One sweep (see `Workers::sweep`), as a function of no store type.
pub type Sweep = Arc<dyn Fn() -> Result<Swept, ServiceError> + Send + Sync>;

/// Runs found overdue in one sweep at most; the rest wait for the next.
const SWEEP_BATCH: usize = 500;

/// The sweep over whichever store is open.
pub fn sweeper(settings: &Settings, store: &AnyStore) -> Sweep {
    let sweep: Sweep = with_store!(store, s => {
        let workers = Workers::new(s.clone(), settings.workers.into());
        Arc::new(move || workers.sweep(SWEEP_BATCH))
    });
    match store {
        // On PostgreSQL, each sweep also keeps the tables' statistics up
        // with their growth (PgStore::refresh_statistics); a failure there
        // is logged and the sweep's result stands.
        AnyStore::Postgres(pg) => {
            let pg = pg.clone();
            // Warned of once until it works again (an operator may have
            // revoked the function on purpose).
            let failing = Arc::new(AtomicBool::new(false));
            Arc::new(move || {
                let swept = sweep();
                match pg.refresh_statistics() {
                    Ok(tables) => {
                        if !tables.is_empty() {
                            tracing::info!(?tables, "statistics refreshed");
                        }
                        failing.store(false, Ordering::Relaxed);
                    }
                    Err(error) => {
                        if !failing.swap(true, Ordering::Relaxed) {
                            tracing::warn!(%error, "could not refresh statistics (said once until it works again)");
                        }
                    }
                }
                swept
            })
        }
        // On SQLite, the planner's statistics are refreshed every 10 s (a
        // few milliseconds under the write lock): the engine's questions
        // need them (SqliteStore::refresh_statistics).
        AnyStore::Sqlite(lite) => {
            let lite = lite.clone();
            let last = std::sync::Mutex::new(std::time::Instant::now());
            Arc::new(move || {
                let swept = sweep();
                let due = last
                    .lock()
                    .map(|mut last| {
                        let due = last.elapsed() >= Duration::from_secs(10);
                        if due {
                            *last = std::time::Instant::now();
                        }
                        due
                    })
                    .unwrap_or(false);
                if due {
                    if let Err(error) = lite.refresh_statistics() {
                        tracing::warn!(%error, "could not refresh statistics");
                    }
                }
                swept
            })
        }
    }
}

/// [`services`] over whichever store is open.
pub fn api_services(settings: &Settings, store: &AnyStore) -> ApiServices {
    with_store!(store, s => services(settings, s))
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.into()
        }
        Ok(parsed) => parsed.into(),
        Err(_) => "<not a URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(url: Option<&str>) -> anyhow::Result<Backend> {
        let mut settings = Settings::defaults()?;
        settings.data_dir = PathBuf::from("/srv/flowexec");
        settings.database.url = url.map(str::to_owned);
        Backend::from_settings(&settings)
    }

    #[test]
    fn the_url_selects_the_backend() -> anyhow::Result<()> {
        assert_eq!(
            backend(None)?,
            Backend::Sqlite {
                path: "/srv/flowexec/flowexec.db".into()
            }
        );
        assert_eq!(
            backend(Some(""))?,
            Backend::Sqlite {
                path: "/srv/flowexec/flowexec.db".into()
            }
        );
        assert_eq!(
            backend(Some("sqlite://data/x.db"))?,
            Backend::Sqlite {
                path: "data/x.db".into()
            }
        );
        assert_eq!(
            backend(Some("sqlite:///var/x.db"))?,
            Backend::Sqlite {
                path: "/var/x.db".into()
            }
        );
        for url in ["postgres://u@h/db", "postgresql://u@h/db"] {
            assert_eq!(backend(Some(url))?, Backend::Postgres { url: url.into() });
        }
        Ok(())
    }

    #[test]
    fn unknown_schemes_and_an_empty_sqlite_path_are_refused_with_a_clear_message() {
        for (url, says) in [
            ("mysql://u@h/db", "unknown scheme \"mysql\""),
            ("just-a-path.db", "unknown scheme"),
            ("sqlite://", "names no file"),
        ] {
            let message = backend(Some(url))
                .map_err(|e| e.to_string())
                .err()
                .unwrap_or_default();
            assert!(message.contains(says), "{url}: {message}");
        }
    }

    #[test]
    fn descriptions_never_show_a_password() {
        let described = Backend::Postgres {
            url: "postgres://app:hunter2@db/flowexec".into(),
        }
        .describe();
        assert!(
            !described.contains("hunter2") && described.contains("db/flowexec"),
            "{described}"
        );
    }
}
