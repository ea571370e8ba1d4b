//! The PostgreSQL connection pool, and what happens when the database drops
//! a connection.
//!
//! A server's connections can be closed under it at any time: a failover, a
//! proxy restart, an idle-session timeout, `pg_terminate_backend`. diesel's
//! pool manager does not notice (it only checks the transaction state), so
//! a dead connection would go back into the pool and fail every request it
//! served. Here instead:
//!
//! - a connection whose work failed because the connection is gone is
//!   marked lost and evicted when it returns to the pool;
//! - every connection that was already open at that moment becomes suspect:
//!   it is pinged (`SELECT 1`) on its next checkout, once, and evicted if
//!   the ping fails — what killed one connection often killed them all;
//! - connections are not pinged otherwise, so a healthy pool costs nothing.
//!
//! The store retries a unit of work once on another connection when that is
//! safe: see [`super::store::PgStore`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::Connection;

use crate::error::{connection_lost, StoreError};

/// A pooled connection and what is known of its health.
pub(crate) struct PgConn {
    pub(crate) conn: PgConnection,
    /// The pool's epoch when this connection was opened or last pinged.
    checked_at: u64,
    /// Its work failed because the connection is gone.
    lost: bool,
}

/// Counts the lost connections seen: a connection checked before the last
/// one was lost is suspect.
#[derive(Debug, Default)]
pub(crate) struct PoolHealth {
    epoch: AtomicU64,
}

impl PoolHealth {
    fn current(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records that `conn` was lost: it is evicted on return, and every
    /// other connection is checked before its next use.
    pub(crate) fn lost(&self, conn: &mut PgConn) {
        conn.lost = true;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// Run on every new connection: no generic plans (decision 0012).
pub(crate) const PLAN_EVERY_STATEMENT: &str = "SET plan_cache_mode = force_custom_plan";

/// Opens connections to one URL and tells the pool which to drop.
pub(crate) struct PgManager {
    url: String,
    health: Arc<PoolHealth>,
}

impl PgManager {
    pub(crate) fn new(url: &str, health: Arc<PoolHealth>) -> Self {
        Self {
            url: url.to_owned(),
            health,
        }
    }
}

impl ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = diesel::r2d2::Error;

    /// Opens a connection that plans every statement for its parameters
    /// and the table sizes of the moment (decision 0012): a plan cached
    /// while a table was nearly empty would otherwise serve the
    /// connection's whole life.
    fn connect(&self) -> Result<PgConn, Self::Error> {
        let checked_at = self.health.current();
        let mut conn =
            PgConnection::establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?;
        conn.batch_execute(PLAN_EVERY_STATEMENT)
            .map_err(diesel::r2d2::Error::QueryError)?;
        Ok(PgConn {
            conn,
            checked_at,
            lost: false,
        })
    }

    /// Called on every checkout; only a suspect connection costs a ping.
    fn is_valid(&self, conn: &mut PgConn) -> Result<(), Self::Error> {
        let now = self.health.current();
        if conn.checked_at >= now {
            return Ok(());
        }
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)?;
        conn.checked_at = now;
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.lost || std::thread::panicking() || conn.conn.is_broken()
    }
}

/// Whether a unit of work failed because its connection is gone.
pub(crate) fn lost(error: &StoreError) -> bool {
    match error {
        StoreError::Diesel(e) => connection_lost(e),
        StoreError::Lost(_) => true,
        StoreError::Repo(_) | StoreError::Aborted(_) => false,
    }
}
