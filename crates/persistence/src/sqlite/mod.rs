//! The SQLite store: an embedded database for a single server, behind the
//! same ports as PostgreSQL.
//!
//! - WAL journal (readers never wait for the writer), foreign keys on, a
//!   busy timeout, `synchronous = FULL` (a transaction is on disk before its
//!   request is answered).
//! - Writes are serialized inside the process (one mutex) and run as
//!   `BEGIN IMMEDIATE` transactions, so concurrent requests queue for the
//!   write lock instead of failing with `database is locked`.
//! - Tenant isolation is the organization filter of every method; there is
//!   no second wall like PostgreSQL's Row-Level Security.

mod repos;
mod rows;
mod schema;
pub(crate) mod tx;
pub use tx::SqliteTx;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use flowexec_domain::RepoError;

use crate::error::StoreError;
use crate::pool::PoolSettings;

/// The migrations in `migrations/sqlite/`, compiled into the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// Per-connection settings, applied whenever the pool opens a connection.
#[derive(Debug)]
struct ConnectionPragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionPragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA synchronous = FULL;"
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The SQLite implementation of every port. Cheap to clone: clones share the
/// pool and the write lock.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    writer: Arc<Mutex<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn open_error(path: &Path, error: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(anyhow::anyhow!(
        "cannot open the SQLite database at {}: {error}",
        path.display()
    ))
}

impl SqliteStore {
    /// Opens (creating it and its folder if missing) the database at `path`,
    /// switches it to WAL and applies pending migrations.
    pub fn open(path: &Path, settings: &PoolSettings) -> Result<Self, RepoError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(path, e))?;
        }
        let url = path
            .to_str()
            .ok_or_else(|| open_error(path, "the path is not UTF-8"))?;
        let mut conn = SqliteConnection::establish(url).map_err(|e| open_error(path, e))?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;"
        ))
        .map_err(|e| open_error(path, e))?;
        conn.run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| open_error(path, format!("applying migrations failed: {e}")))?;
        drop(conn);

        let pool = Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(1))
            .connection_timeout(settings.connection_timeout)
            .connection_customizer(Box::new(ConnectionPragmas))
            .build(ConnectionManager::<SqliteConnection>::new(url))
            .map_err(|e| open_error(path, e))?;
        let store = Self {
            pool,
            writer: Arc::new(Mutex::new(())),
            path: path.to_owned(),
        };
        store.refresh_statistics()?;
        Ok(store)
    }

    pub(crate) fn conn(
        &self,
    ) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// A read: one deferred transaction (one consistent snapshot).
    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, RepoError> {
        let mut pooled = self.conn()?;
        let conn: &mut SqliteConnection = &mut pooled;
        Ok(conn.transaction(work)?)
    }

    /// Refreshes the planner's statistics (`ANALYZE`, sampling at most
    /// 1,000 rows an index: a few milliseconds at any size). Without them
    /// SQLite reads a flow execution's tasks through the organization's
    /// primary key (every task of the organization) instead of the partial
    /// indexes the engine's questions are written for. Run at open and by
    /// the sweeper every 10 s (see `flowexec-server`), under the write lock.
    pub fn refresh_statistics(&self) -> Result<(), RepoError> {
        let _one_writer = self.writer.lock().map_err(|_| {
            RepoError::Unknown(anyhow::anyhow!("the SQLite write lock is poisoned"))
        })?;
        let mut pooled = self.conn()?;
        let conn: &mut SqliteConnection = &mut pooled;
        conn.batch_execute("PRAGMA analysis_limit = 1000; ANALYZE;")
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// A write: one `BEGIN IMMEDIATE` transaction, one at a time per process.
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, RepoError> {
        let _one_writer = self.writer.lock().map_err(|_| {
            RepoError::Unknown(anyhow::anyhow!("the SQLite write lock is poisoned"))
        })?;
        let mut pooled = self.conn()?;
        let conn: &mut SqliteConnection = &mut pooled;
        Ok(conn.immediate_transaction(work)?)
    }
}
