use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use flowexec_domain::ports::TaskExecutionRepository;
use flowexec_domain::{
    RepoError, StatusChange, TaskExecution, TaskExecutionEvent, TaskExecutionId, TaskStatus, Tenant,
};

use crate::error::{allowed_sources, StoreError};
use crate::postgres::schema::{task_execution_events, task_executions as te};
use crate::postgres::store::PgStore;
use crate::rows::{
    EventRow, NewEventRow, TaskExecutionRecord, TaskExecutionRow, TaskExecutionTuple,
};

diesel::define_sql_function! {
    /// The transaction's start time, the same for every row it writes.
    fn transaction_timestamp() -> Timestamptz;
}

diesel::define_sql_function! {
    /// `flowexec_get_task_execution(org, id)`: sets the tenant and selects
    /// the row in one statement (see migrations/…_tenant_read_functions).
    fn flowexec_get_task_execution(
        organization_id: SqlUuid,
        id: SqlUuid,
    ) -> Record<TaskExecutionRecord>;
}

impl TaskExecutionRepository for PgStore {
    /// One statement, one round trip: the hot path of `GET /task-executions/{id}`.
    fn get_task_execution(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, RepoError> {
        self.read(|conn| {
            let row = diesel::select(flowexec_get_task_execution(
                tenant.organization_id().into_uuid(),
                id.into_uuid(),
            ))
            .get_result::<TaskExecutionTuple>(conn)?;
            Ok(TaskExecutionRow::from(row).try_into()?)
        })
    }

    fn transition_task_execution(
        &self,
        tenant: Tenant,
        change: &StatusChange,
    ) -> Result<TaskExecution, RepoError> {
        self.tenant_tx(tenant, |conn| transition(conn, tenant, change))
    }

    fn list_task_execution_events(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<Vec<TaskExecutionEvent>, RepoError> {
        let org = tenant.organization_id().into_uuid();
        self.tenant_tx(tenant, |conn| {
            te::table
                .filter(te::organization_id.eq(org))
                .filter(te::id.eq(id.into_uuid()))
                .select(te::id)
                .first::<uuid::Uuid>(conn)?;
            let rows = task_execution_events::table
                .filter(task_execution_events::organization_id.eq(org))
                .filter(task_execution_events::task_execution_id.eq(id.into_uuid()))
                .order(task_execution_events::id.asc())
                .select(EventRow::as_select())
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(TaskExecutionEvent::try_from)
                .collect::<Result<_, _>>()?)
        })
    }
}

fn transition(
    conn: &mut PgConnection,
    tenant: Tenant,
    change: &StatusChange,
) -> Result<TaskExecution, StoreError> {
    let org = tenant.organization_id().into_uuid();
    let id = change.task_execution_id.into_uuid();
    let this_row = te::table
        .filter(te::organization_id.eq(org))
        .filter(te::id.eq(id));

    // Lock the row, so the status read here is the one the update replaces.
    let current: String = this_row.select(te::status).for_update().first(conn)?;
    let current: TaskStatus = current
        .parse()
        .map_err(|e| crate::error::corrupt("status", e))?;
    // Compare-and-set: the WHERE repeats the allowed sources, so the update
    // cannot apply to a row whose status is not one of them.
    let allowed = allowed_sources(current, change.to)?;
    let target = this_row.filter(te::status.eq_any(allowed));
    let actor = change.actor.to_string();
    let common = (
        te::status.eq(change.to.as_str()),
        te::modified_by.eq(&actor),
        te::updated_at.eq(transaction_timestamp()),
    );
    let returning = TaskExecutionRow::as_returning();
    let row = match change.to {
        TaskStatus::Running => diesel::update(target)
            .set((
                common,
                te::started_at.eq(transaction_timestamp().nullable()),
            ))
            .returning(returning)
            .get_result(conn),
        TaskStatus::Completed => diesel::update(target)
            .set((
                common,
                te::completed_at.eq(transaction_timestamp().nullable()),
                te::output.eq(change.output.as_ref()),
            ))
            .returning(returning)
            .get_result(conn),
        TaskStatus::Failed => diesel::update(target)
            .set((
                common,
                te::completed_at.eq(transaction_timestamp().nullable()),
                te::error.eq(change.error.as_ref()),
            ))
            .returning(returning)
            .get_result(conn),
        TaskStatus::Queued | TaskStatus::Deleted | TaskStatus::Stale => diesel::update(target)
            .set(common)
            .returning(returning)
            .get_result(conn),
    }?;

    diesel::insert_into(task_execution_events::table)
        .values(NewEventRow {
            organization_id: org,
            task_execution_id: id,
            from_status: Some(current.as_str()),
            to_status: change.to.as_str(),
            actor: &actor,
            reason: change.reason.as_deref(),
        })
        .execute(conn)?;
    Ok(row.try_into()?)
}
