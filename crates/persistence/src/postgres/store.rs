//! The pool and the store type that implements the ports.

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use flowexec_domain::{RepoError, Tenant};

use crate::error::StoreError;
use crate::pool::PoolSettings;
use crate::postgres::tenant::in_tenant;

pub(crate) type PgPool = Pool<ConnectionManager<PgConnection>>;

/// The PostgreSQL implementation of every port. Cheap to clone: clones
/// share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool.state();
        f.debug_struct("PgStore")
            .field("connections", &state.connections)
            .field("idle", &state.idle_connections)
            .finish()
    }
}

impl PgStore {
    /// Opens a pool to `url`. Fails if no connection can be made within the
    /// timeout, so a bad URL is reported at start, not at the first request.
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<Self, RepoError> {
        crate::prepare_client_library();
        let manager = ConnectionManager::<PgConnection>::new(url);
        let pool = Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(1))
            .connection_timeout(settings.connection_timeout)
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| RepoError::Unavailable(e.into()))?;
        Ok(Self { pool })
    }

    pub(crate) fn conn(
        &self,
    ) -> Result<PooledConnection<ConnectionManager<PgConnection>>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` in one transaction confined to the tenant.
    pub(crate) fn tenant_tx<T>(
        &self,
        tenant: Tenant,
        work: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, RepoError> {
        let mut conn = self.conn()?;
        Ok(in_tenant(&mut conn, tenant, work)?)
    }

    /// A connection from the pool, for checks made outside any tenant
    /// (the role check at start, the readiness probe).
    pub fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut PgConnection) -> anyhow::Result<T>,
    ) -> Result<T, RepoError> {
        let mut conn = self.conn()?;
        work(&mut conn).map_err(RepoError::Unknown)
    }
}
