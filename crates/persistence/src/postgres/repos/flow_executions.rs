use diesel::prelude::*;
use flowexec_domain::ports::FlowExecutionRepository;
use flowexec_domain::{
    Actor, FlowExecutionDetail, FlowExecutionId, NewFlowExecution, RepoError, TaskExecution,
    TaskExecutionId, TaskStatus, Tenant,
};
use uuid::Uuid;

use crate::error::StoreError;
use crate::postgres::schema::{
    flow_executions as fe, task_execution_events, task_executions as te,
};
use crate::postgres::store::PgStore;
use crate::rows::{
    FlowExecutionRow, NewEventRow, NewFlowExecutionRow, NewTaskExecutionRow, TaskExecutionRow,
};

impl FlowExecutionRepository for PgStore {
    fn create_flow_execution(
        &self,
        tenant: Tenant,
        new: &NewFlowExecution,
        actor: Actor,
    ) -> Result<FlowExecutionDetail, RepoError> {
        self.tenant_tx(tenant, |conn| create(conn, tenant, new, actor))
    }

    fn get_flow_execution(
        &self,
        tenant: Tenant,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, RepoError> {
        self.tenant_tx(tenant, |conn| {
            let org = tenant.organization_id().into_uuid();
            let flow_execution = fe::table
                .filter(fe::organization_id.eq(org))
                .filter(fe::id.eq(id.into_uuid()))
                .select(FlowExecutionRow::as_select())
                .first(conn)?
                .try_into()?;
            let task_executions = load_tasks(conn, org, id.into_uuid())?;
            Ok(FlowExecutionDetail {
                flow_execution,
                task_executions,
            })
        })
    }
}

fn load_tasks(
    conn: &mut PgConnection,
    org: Uuid,
    flow_execution_id: Uuid,
) -> Result<Vec<TaskExecution>, StoreError> {
    let rows = te::table
        .filter(te::organization_id.eq(org))
        .filter(te::flow_execution_id.eq(flow_execution_id))
        .order((te::task_name.asc(), te::execution_index.asc()))
        .select(TaskExecutionRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(TaskExecution::try_from)
        .collect::<Result<_, _>>()?)
}

fn create(
    conn: &mut PgConnection,
    tenant: Tenant,
    new: &NewFlowExecution,
    actor: Actor,
) -> Result<FlowExecutionDetail, StoreError> {
    let org = tenant.organization_id().into_uuid();
    let flow_id = FlowExecutionId::generate().into_uuid();
    let modified_by = actor.to_string();

    let flow_execution = diesel::insert_into(fe::table)
        .values(NewFlowExecutionRow {
            organization_id: org,
            id: flow_id,
            flow_name: new.flow_name().as_str(),
            input: new.input(),
            modified_by: &modified_by,
        })
        .returning(FlowExecutionRow::as_returning())
        .get_result(conn)?
        .try_into()?;

    let task_rows: Vec<NewTaskExecutionRow<'_>> = new
        .tasks()
        .iter()
        .map(|task| NewTaskExecutionRow {
            organization_id: org,
            id: TaskExecutionId::generate().into_uuid(),
            flow_execution_id: flow_id,
            task_name: task.task_name.as_str(),
            execution_index: 0,
            status: TaskStatus::Queued.as_str(),
            input: task.input.as_ref(),
            modified_by: &modified_by,
        })
        .collect();
    diesel::insert_into(te::table)
        .values(&task_rows)
        .execute(conn)?;

    let events: Vec<NewEventRow<'_>> = task_rows
        .iter()
        .map(|row| NewEventRow {
            organization_id: org,
            task_execution_id: row.id,
            from_status: None,
            to_status: TaskStatus::Queued.as_str(),
            actor: &modified_by,
            reason: Some("created"),
        })
        .collect();
    diesel::insert_into(task_execution_events::table)
        .values(&events)
        .execute(conn)?;

    let task_executions = load_tasks(conn, org, flow_id)?;
    Ok(FlowExecutionDetail {
        flow_execution,
        task_executions,
    })
}
