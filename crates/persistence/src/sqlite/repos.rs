//! The ports on SQLite. Every query filters by the tenant's organization.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use flowexec_domain::ports::{
    ApiKeyRepository, FlowExecutionRepository, HealthCheck, OrganizationRepository,
    TaskExecutionRepository,
};
use flowexec_domain::{
    Actor, ApiKeyCredentials, ApiKeyId, FlowExecution, FlowExecutionDetail, FlowExecutionId,
    NewApiKey, NewFlowExecution, Organization, OrganizationName, RepoError, StatusChange,
    TaskExecution, TaskExecutionEvent, TaskExecutionId, TaskStatus, Tenant,
};

use super::rows::{
    json_text, uuid, NewSqliteEventRow, NewSqliteTaskExecutionRow, SqliteEventRow,
    SqliteFlowExecutionRow, SqliteOrganizationRow, SqliteTaskExecutionRow,
};
use super::schema::{
    api_keys, flow_executions as fe, organizations, task_execution_events as ev,
    task_executions as te,
};
use super::{now, SqliteStore};
use crate::error::{allowed_sources, StoreError};
use crate::rows::{ApiKeyLookupRow, EventRow, FlowExecutionRow, OrganizationRow, TaskExecutionRow};

fn org_text(tenant: Tenant) -> String {
    tenant.organization_id().to_string()
}

fn task_row(conn: &mut SqliteConnection, org: &str, id: &str) -> Result<TaskExecution, StoreError> {
    let row = te::table
        .filter(te::organization_id.eq(org))
        .filter(te::id.eq(id))
        .select(SqliteTaskExecutionRow::as_select())
        .first(conn)?;
    Ok(TaskExecutionRow::try_from(row)?.try_into()?)
}

fn tasks_of(
    conn: &mut SqliteConnection,
    org: &str,
    flow_id: &str,
) -> Result<Vec<TaskExecution>, StoreError> {
    te::table
        .filter(te::organization_id.eq(org))
        .filter(te::flow_execution_id.eq(flow_id))
        .order((te::task_name.asc(), te::execution_index.asc()))
        .select(SqliteTaskExecutionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| Ok(TaskExecutionRow::try_from(row)?.try_into()?))
        .collect()
}

impl TaskExecutionRepository for SqliteStore {
    fn get_task_execution(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, RepoError> {
        let mut conn = self.conn()?;
        Ok(task_row(&mut conn, &org_text(tenant), &id.to_string())?)
    }

    fn transition_task_execution(
        &self,
        tenant: Tenant,
        change: &StatusChange,
    ) -> Result<TaskExecution, RepoError> {
        let (org, id) = (org_text(tenant), change.task_execution_id.to_string());
        self.write(|conn| {
            let current: TaskStatus = task_row(conn, &org, &id)?.status;
            let allowed = allowed_sources(current, change.to)?;
            let target = te::table
                .filter(te::organization_id.eq(&org))
                .filter(te::id.eq(&id))
                .filter(te::status.eq_any(allowed));
            let at = now();
            let actor = change.actor.to_string();
            let common = (
                te::status.eq(change.to.as_str()),
                te::modified_by.eq(&actor),
                te::updated_at.eq(at),
            );
            match change.to {
                TaskStatus::Running => diesel::update(target)
                    .set((common, te::started_at.eq(at)))
                    .execute(conn),
                TaskStatus::Completed => diesel::update(target)
                    .set((
                        common,
                        te::completed_at.eq(at),
                        te::output.eq(json_text(change.output.as_ref())),
                    ))
                    .execute(conn),
                TaskStatus::Failed => diesel::update(target)
                    .set((
                        common,
                        te::completed_at.eq(at),
                        te::error.eq(json_text(change.error.as_ref())),
                    ))
                    .execute(conn),
                TaskStatus::Queued | TaskStatus::Deleted | TaskStatus::Stale => {
                    diesel::update(target).set(common).execute(conn)
                }
            }?;
            diesel::insert_into(ev::table)
                .values(NewSqliteEventRow {
                    organization_id: &org,
                    task_execution_id: id.clone(),
                    from_status: Some(current.as_str()),
                    to_status: change.to.as_str(),
                    actor: &actor,
                    reason: change.reason.as_deref(),
                    created_at: at,
                })
                .execute(conn)?;
            task_row(conn, &org, &id)
        })
    }

    fn list_task_execution_events(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<Vec<TaskExecutionEvent>, RepoError> {
        let (org, id) = (org_text(tenant), id.to_string());
        self.read(|conn| {
            task_row(conn, &org, &id)?;
            ev::table
                .filter(ev::organization_id.eq(&org))
                .filter(ev::task_execution_id.eq(&id))
                .order(ev::id.asc())
                .select(SqliteEventRow::as_select())
                .load(conn)?
                .into_iter()
                .map(|row| Ok(EventRow::try_from(row)?.try_into()?))
                .collect()
        })
    }
}

impl FlowExecutionRepository for SqliteStore {
    fn create_flow_execution(
        &self,
        tenant: Tenant,
        new: &NewFlowExecution,
        actor: Actor,
    ) -> Result<FlowExecutionDetail, RepoError> {
        let org = org_text(tenant);
        let flow_id = FlowExecutionId::generate().to_string();
        let modified_by = actor.to_string();
        self.write(|conn| {
            let at = now();
            diesel::insert_into(fe::table)
                .values((
                    fe::organization_id.eq(&org),
                    fe::id.eq(&flow_id),
                    fe::flow_name.eq(new.flow_name().as_str()),
                    fe::input.eq(json_text(new.input())),
                    fe::modified_by.eq(&modified_by),
                    fe::created_at.eq(at),
                    fe::updated_at.eq(at),
                ))
                .execute(conn)?;
            let tasks: Vec<NewSqliteTaskExecutionRow<'_>> = new
                .tasks()
                .iter()
                .map(|task| NewSqliteTaskExecutionRow {
                    organization_id: &org,
                    id: TaskExecutionId::generate().to_string(),
                    flow_execution_id: &flow_id,
                    task_name: task.task_name.as_str(),
                    execution_index: 0,
                    status: TaskStatus::Queued.as_str(),
                    input: json_text(task.input.as_ref()),
                    modified_by: &modified_by,
                    created_at: at,
                    updated_at: at,
                })
                .collect();
            diesel::insert_into(te::table)
                .values(&tasks)
                .execute(conn)?;
            let events: Vec<NewSqliteEventRow<'_>> = tasks
                .iter()
                .map(|task| NewSqliteEventRow {
                    organization_id: &org,
                    task_execution_id: task.id.clone(),
                    from_status: None,
                    to_status: TaskStatus::Queued.as_str(),
                    actor: &modified_by,
                    reason: Some("created"),
                    created_at: at,
                })
                .collect();
            diesel::insert_into(ev::table)
                .values(&events)
                .execute(conn)?;
            flow_detail(conn, &org, &flow_id)
        })
    }

    fn get_flow_execution(
        &self,
        tenant: Tenant,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, RepoError> {
        let (org, id) = (org_text(tenant), id.to_string());
        self.read(|conn| flow_detail(conn, &org, &id))
    }
}

fn flow_detail(
    conn: &mut SqliteConnection,
    org: &str,
    id: &str,
) -> Result<FlowExecutionDetail, StoreError> {
    let row = fe::table
        .filter(fe::organization_id.eq(org))
        .filter(fe::id.eq(id))
        .select(SqliteFlowExecutionRow::as_select())
        .first(conn)?;
    let flow_execution: FlowExecution = FlowExecutionRow::try_from(row)?.try_into()?;
    Ok(FlowExecutionDetail {
        flow_execution,
        task_executions: tasks_of(conn, org, id)?,
    })
}

fn insert_api_key(conn: &mut SqliteConnection, key: &NewApiKey) -> Result<(), StoreError> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(key.id.to_string()),
            api_keys::organization_id.eq(key.organization_id.to_string()),
            api_keys::role.eq(key.role.as_str()),
            api_keys::actor.eq(key.actor.to_string()),
            api_keys::secret_sha256.eq(key.secret_sha256.as_slice()),
            api_keys::created_at.eq(now()),
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
    name: &OrganizationName,
    first_key: &NewApiKey,
) -> Result<Organization, StoreError> {
    let created_at = now();
    diesel::insert_into(organizations::table)
        .values((
            organizations::id.eq(first_key.organization_id.to_string()),
            organizations::name.eq(name.as_str()),
            organizations::created_at.eq(created_at),
        ))
        .execute(conn)?;
    insert_api_key(conn, first_key)?;
    Ok(Organization {
        id: first_key.organization_id,
        name: name.clone(),
        created_at,
    })
}

impl OrganizationRepository for SqliteStore {
    fn create_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Organization, RepoError> {
        self.write(|conn| insert_organization(conn, name, first_key))
    }

    fn bootstrap_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Option<Organization>, RepoError> {
        // BEGIN IMMEDIATE holds the database's write lock from the start, so
        // another process bootstrapping the same file waits, then sees this
        // one's organization.
        self.write(|conn| {
            let existing: i64 = organizations::table.count().get_result(conn)?;
            if existing > 0 {
                return Ok(None);
            }
            insert_organization(conn, name, first_key).map(Some)
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

impl HealthCheck for SqliteStore {
    fn ping(&self) -> Result<(), RepoError> {
        let mut conn = self.conn()?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .map_err(|e| RepoError::Unavailable(e.into()))?;
        Ok(())
    }
}
