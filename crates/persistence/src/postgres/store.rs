//! The store type that implements the ports, and how it runs a unit of work
//! on the pool.

use std::sync::Arc;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::Pool;
use diesel::sql_types::Uuid as SqlUuid;
use flowexec_domain::ports::ExecutionStore;
use flowexec_domain::{RepoError, TaskExecution, TaskExecutionId, Tenant};

use super::rows::{TaskExecutionRecord, TaskExecutionTuple};
use crate::error::StoreError;
use crate::pool::PoolSettings;
use crate::postgres::pool::{lost, PgManager, PoolHealth};
use crate::postgres::tenant::{in_tenant, Access};
use crate::postgres::tx::PgTx;
use crate::rows::TaskExecutionRow;

diesel::define_sql_function! {
    /// `flowexec_get_task_execution(org, id)`: sets the tenant and selects
    /// the row in one statement (see docs/decisions/0003).
    fn flowexec_get_task_execution(
        organization_id: SqlUuid,
        id: SqlUuid,
    ) -> Record<TaskExecutionRecord>;
}

/// The PostgreSQL implementation of every port. Cheap to clone: clones
/// share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<PgManager>,
    health: Arc<PoolHealth>,
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

/// A failed attempt at a unit of work, and whether it is sure to have left
/// nothing behind (so that running it again is safe).
type Failure = (StoreError, bool);

/// How many times work that left nothing done is run again after its
/// connection was lost.
const RETRIES_ON_LOST: u32 = 2;

/// How many times a unit of work PostgreSQL aborted to break a deadlock is
/// run again. Units lock rows in one order (task executions, then flow
/// executions, decision 0015) except cancel and rerun, which lock the flow
/// execution first: a rare deadlock between them and a completion is
/// broken by PostgreSQL and the loser runs again.
const RETRIES_ON_ABORT: u32 = 5;

impl PgStore {
    /// Opens a pool to `url`. Fails if no connection can be made within the
    /// timeout, so a bad URL is reported at start, not at the first request.
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<Self, RepoError> {
        crate::prepare_client_library();
        let health = Arc::new(PoolHealth::default());
        let pool = Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(1))
            .connection_timeout(settings.connection_timeout)
            // Free unless a lost connection made the others suspect.
            .test_on_check_out(true)
            .build(PgManager::new(url, health.clone()))
            .map_err(|e| RepoError::Unavailable(e.into()))?;
        Ok(Self { pool, health })
    }

    /// Runs `attempt` on a pooled connection. When the connection turns out
    /// to be gone, it is evicted (see `postgres::pool`) and, if the failure
    /// left nothing done, the work runs again on another connection — up to
    /// [`RETRIES_ON_LOST`] times, since a connection opened while the
    /// database was terminating sessions may be gone too; otherwise the
    /// caller gets [`RepoError::Unavailable`].
    fn run<T>(
        &self,
        mut attempt: impl FnMut(&mut PgConnection) -> Result<T, Failure>,
    ) -> Result<T, RepoError> {
        let (mut retries, mut aborts) = (0, 0);
        loop {
            let mut pooled = self.pool.get().map_err(StoreError::from)?;
            match attempt(&mut pooled.conn) {
                Ok(value) => return Ok(value),
                Err((StoreError::Aborted(error), true)) if aborts < RETRIES_ON_ABORT => {
                    tracing::info!(%error, "transaction aborted by the database (deadlock); running it again");
                    aborts += 1;
                    continue;
                }
                Err((error, nothing_done)) if lost(&error) => {
                    self.health.lost(&mut pooled);
                    drop(pooled);
                    if nothing_done && retries < RETRIES_ON_LOST {
                        tracing::warn!(error = ?error, "database connection lost; retrying on another");
                        retries += 1;
                        continue;
                    }
                    return Err(error.into());
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }

    /// A read outside any explicit transaction (one statement, or several
    /// that change nothing): always safe to run again.
    pub(crate) fn read_statement<T>(
        &self,
        mut work: impl FnMut(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, RepoError> {
        self.run(|conn| work(conn).map_err(|error| (error, true)))
    }

    /// Runs `work` in one transaction confined to the tenant, through the
    /// store's own queries (the admin operations). Run again on a lost
    /// connection unless the connection was lost while committing (when
    /// whether the commit happened is unknown).
    pub(crate) fn tenant_tx<T>(
        &self,
        tenant: Tenant,
        mut work: impl FnMut(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, RepoError> {
        self.run(|conn| {
            let mut committing = false;
            in_tenant(conn, tenant, Access::ReadWrite, |conn| {
                let value = work(conn)?;
                committing = true;
                Ok(value)
            })
            .map_err(|error| (error, !committing))
        })
    }

    /// A unit of work through [`PgTx`]: as `tenant_tx`, telling a lost
    /// connection from the operations' own record of it.
    fn unit<T>(
        &self,
        tenant: Tenant,
        access: Access,
        mut work: impl FnMut(&mut PgTx<'_>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        self.run(|conn| {
            let mut committing = false;
            in_tenant(conn, tenant, access, |conn| {
                let mut tx = PgTx::new(conn, tenant);
                match work(&mut tx) {
                    Ok(value) => {
                        committing = true;
                        Ok(value)
                    }
                    Err(error) if tx.lost => Err(StoreError::Lost(error)),
                    Err(error) if tx.aborted => Err(StoreError::Aborted(error)),
                    Err(error) => Err(StoreError::Repo(error)),
                }
            })
            .map_err(|error| (error, !committing))
        })
    }

    /// Analyzes the tenant tables whose rows changed since their last
    /// analyze at least as many times as they then had rows
    /// (`flowexec_refresh_statistics`, as their owner; one server instance
    /// at a time), so that plans follow a table growing faster than
    /// autovacuum analyzes it. Answers the tables analyzed. The sweeper
    /// calls it.
    pub fn refresh_statistics(&self) -> Result<Vec<String>, RepoError> {
        #[derive(QueryableByName)]
        struct Analyzed {
            #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
            tables: Vec<String>,
        }
        self.read_statement(|conn| {
            Ok(
                diesel::sql_query("SELECT flowexec_refresh_statistics() AS tables")
                    .get_result::<Analyzed>(conn)?
                    .tables,
            )
        })
    }

    /// A connection from the pool, for checks made outside any tenant
    /// (the role check at start).
    pub fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut PgConnection) -> anyhow::Result<T>,
    ) -> Result<T, RepoError> {
        let mut pooled = self.pool.get().map_err(StoreError::from)?;
        work(&mut pooled.conn).map_err(RepoError::Unknown)
    }
}

impl ExecutionStore for PgStore {
    type Tx<'t> = PgTx<'t>;

    fn in_tenant<T, F>(&self, tenant: Tenant, work: F) -> Result<T, RepoError>
    where
        F: FnMut(&mut PgTx<'_>) -> Result<T, RepoError>,
    {
        self.unit(tenant, Access::ReadWrite, work)
    }

    fn read<T, F>(&self, tenant: Tenant, work: F) -> Result<T, RepoError>
    where
        F: FnMut(&mut PgTx<'_>) -> Result<T, RepoError>,
    {
        self.unit(tenant, Access::ReadOnly, work)
    }

    /// One statement, one round trip: the hot path of
    /// `GET /task-executions/{id}`.
    fn task_execution(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, RepoError> {
        self.read_statement(|conn| {
            let row = diesel::select(flowexec_get_task_execution(
                tenant.organization_id().into_uuid(),
                id.into_uuid(),
            ))
            .get_result::<TaskExecutionTuple>(conn)?;
            Ok(TaskExecutionRow::from(row).try_into()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use diesel::prelude::*;
    use diesel::sql_types::Integer;
    use flowexec_domain::ports::HealthCheck;
    use flowexec_domain::{OrganizationId, RepoError, Tenant};
    use flowexec_testkit::TestDb;

    use super::*;

    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }

    /// Ends the session `conn` is on, from another connection, as a failover
    /// or `pg_terminate_backend` would.
    fn kill_session_of(
        conn: &mut PgConnection,
        admin: &mut PgConnection,
    ) -> Result<(), StoreError> {
        let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(conn)?
            .pid;
        diesel::sql_query(format!("SELECT pg_terminate_backend({pid})")).execute(admin)?;
        Ok(())
    }

    fn setup() -> anyhow::Result<(TestDb, PgStore, PgConnection, Tenant)> {
        let db = TestDb::new()?;
        let store = PgStore::connect(&db.app_url(), &PoolSettings::default())?;
        let admin = PgConnection::establish(&db.admin_url())?;
        Ok((db, store, admin, Tenant::new(OrganizationId::generate())))
    }

    #[test]
    fn work_whose_connection_is_lost_before_it_commits_runs_again_on_a_fresh_one(
    ) -> anyhow::Result<()> {
        let (_db, store, mut admin, tenant) = setup()?;
        let attempts = Cell::new(0);
        store.tenant_tx(tenant, |conn| {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 {
                kill_session_of(conn, &mut admin)?;
            }
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })?;
        assert_eq!(attempts.get(), 2);
        store.ping()?;
        Ok(())
    }

    #[test]
    fn work_whose_connection_is_lost_while_committing_is_unavailable_and_not_run_again(
    ) -> anyhow::Result<()> {
        let (_db, store, mut admin, tenant) = setup()?;
        let attempts = Cell::new(0);
        let outcome = store.tenant_tx(tenant, |conn| {
            attempts.set(attempts.get() + 1);
            kill_session_of(conn, &mut admin)
        });
        assert!(
            matches!(outcome, Err(RepoError::Unavailable(_))),
            "{outcome:?}"
        );
        assert_eq!(attempts.get(), 1, "a commit of unknown outcome was retried");
        // The pool recovered: the next unit of work succeeds.
        store.ping()?;
        Ok(())
    }
}
