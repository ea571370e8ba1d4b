//! The ports on SQLite. Every query filters by the tenant's organization.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use flowexec_domain::ports::{
    ApiKeyRepository, DeploymentSecrets, ExecutionStore, HealthCheck, OrganizationRepository,
    OverdueRuns,
};
use flowexec_domain::{
    ApiKeyCredentials, ApiKeyId, NewApiKey, Organization, OrganizationId, Overdue, RepoError,
    TaskExecution, TaskExecutionId, TaskStatus, Tenant,
};

use super::rows::{uuid, SqliteOrganizationRow, SqliteTaskExecutionRow};
use super::schema::{api_keys, deployment_secrets as ds, organizations};
use super::tx::{task_row, SqliteTx};
use super::SqliteStore;
use crate::error::StoreError;
use crate::rows::{ApiKeyLookupRow, OrganizationRow, TaskExecutionRow};

impl ExecutionStore for SqliteStore {
    type Tx<'t> = SqliteTx<'t>;

    fn in_tenant<T, F>(&self, tenant: Tenant, mut work: F) -> Result<T, RepoError>
    where
        F: FnMut(&mut SqliteTx<'_>) -> Result<T, RepoError>,
    {
        self.write(|conn| work(&mut SqliteTx::new(conn, tenant)).map_err(StoreError::Repo))
    }

    fn read<T, F>(&self, tenant: Tenant, mut work: F) -> Result<T, RepoError>
    where
        F: FnMut(&mut SqliteTx<'_>) -> Result<T, RepoError>,
    {
        self.read(|conn| work(&mut SqliteTx::new(conn, tenant)).map_err(StoreError::Repo))
    }

    fn task_execution(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, RepoError> {
        let mut conn = self.conn()?;
        Ok(task_row(
            &mut conn,
            &tenant.organization_id().to_string(),
            &id.to_string(),
        )?)
    }
}

fn insert_api_key(conn: &mut SqliteConnection, key: &NewApiKey) -> Result<(), StoreError> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(key.id.to_string()),
            api_keys::organization_id.eq(key.organization_id.to_string()),
            api_keys::role.eq(key.role.as_str()),
            api_keys::actor.eq(key.actor.to_string()),
            api_keys::secret_sha256.eq(key.secret_sha256.as_slice()),
            api_keys::created_at.eq(key.created_at),
        ))
        .execute(conn)?;
    Ok(())
}

impl ApiKeyRepository for SqliteStore {
    fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyCredentials>, RepoError> {
        let mut conn = self.conn()?;
        let row = api_keys::table
            .filter(api_keys::id.eq(id.to_string()))
            .filter(api_keys::revoked_at.is_null())
            .select((
                api_keys::organization_id,
                api_keys::role,
                api_keys::actor,
                api_keys::secret_sha256,
            ))
            .first::<(String, String, String, Vec<u8>)>(&mut conn)
            .optional()
            .map_err(StoreError::from)?;
        let Some((org, role, actor, hash)) = row else {
            return Ok(None);
        };
        let org = uuid(&org).map_err(StoreError::from)?;
        Ok(Some(
            ApiKeyLookupRow((org, role, actor, hash))
                .into_credentials(id)
                .map_err(StoreError::from)?,
        ))
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<(), RepoError> {
        self.write(|conn| insert_api_key(conn, key))
    }
}

fn insert_organization(
    conn: &mut SqliteConnection,
    organization: &Organization,
    first_key: &NewApiKey,
) -> Result<(), StoreError> {
    diesel::insert_into(organizations::table)
        .values((
            organizations::id.eq(organization.id.to_string()),
            organizations::name.eq(organization.name.as_str()),
            organizations::created_at.eq(organization.created_at),
        ))
        .execute(conn)?;
    insert_api_key(conn, first_key)
}

impl OrganizationRepository for SqliteStore {
    fn create_organization(
        &self,
        organization: &Organization,
        first_key: &NewApiKey,
    ) -> Result<(), RepoError> {
        self.write(|conn| insert_organization(conn, organization, first_key))
    }

    fn bootstrap_organization(
        &self,
        organization: &Organization,
        first_key: &NewApiKey,
    ) -> Result<bool, RepoError> {
        // BEGIN IMMEDIATE holds the database's write lock from the start, so
        // another process bootstrapping the same file waits, then sees this
        // one's organization.
        self.write(|conn| {
            let existing: i64 = organizations::table.count().get_result(conn)?;
            if existing > 0 {
                return Ok(false);
            }
            insert_organization(conn, organization, first_key).map(|()| true)
        })
    }

    fn list_organizations(&self) -> Result<Vec<Organization>, RepoError> {
        self.read(|conn| {
            let rows = organizations::table
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .select(SqliteOrganizationRow::as_select())
                .load(conn)?;
            rows.into_iter()
                .map(|row| Ok(Organization::try_from(OrganizationRow::try_from(row)?)?))
                .collect()
        })
    }
}

impl OverdueRuns for SqliteStore {
    /// The running rows past their lease, or with a time limit, read in
    /// one snapshot; whether a time limit is reached is the domain's
    /// [`Overdue::of`], as times are text here.
    fn overdue_runs(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(OrganizationId, TaskExecutionId)>, RepoError> {
        use super::schema::task_executions as te;
        self.read(|conn| {
            let rows = te::table
                .filter(te::status.eq(TaskStatus::Running.as_str()))
                .filter(
                    te::lease_expires_at
                        .lt(at)
                        .or(te::timeout_seconds.is_not_null()),
                )
                .order(te::lease_expires_at.asc())
                .select(SqliteTaskExecutionRow::as_select())
                .load(conn)?;
            let mut overdue = Vec::new();
            for row in rows {
                let task = TaskExecution::try_from(TaskExecutionRow::try_from(row)?)?;
                if Overdue::of(&task, at).is_some() {
                    overdue.push((task.organization_id, task.id));
                    if overdue.len() == limit {
                        break;
                    }
                }
            }
            Ok(overdue)
        })
    }
}

impl HealthCheck for SqliteStore {
    fn ping(&self) -> Result<(), RepoError> {
        let mut conn = self.conn()?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .map_err(|e| RepoError::Unavailable(e.into()))?;
        Ok(())
    }
}

impl DeploymentSecrets for SqliteStore {
    fn cursor_secret(&self) -> Result<Vec<u8>, RepoError> {
        self.read(|conn| {
            Ok(ds::table
                .filter(ds::name.eq("cursor"))
                .select(ds::value)
                .first::<Vec<u8>>(conn)?)
        })
    }
}
