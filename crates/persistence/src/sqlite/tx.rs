//! A unit of work on SQLite: the [`TenantTx`] operations on one connection,
//! inside one transaction (writes serialized by the store, see `mod.rs`).
//! Every query filters by the tenant's organization.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use flowexec_domain::ports::{RowLock, TenantTx};
use flowexec_domain::{
    ApiKeyId, ApiKeyInfo, ChangeOutcome, CountBy, Flow, FlowExecution, FlowExecutionDetail,
    FlowExecutionFilter, FlowExecutionId, FlowName, FlowStatus, FlowVersion, ListQuery,
    OrganizationId, RecordedEvent, RepoError, StatusChange, TaskExecution, TaskExecutionEvent,
    TaskExecutionFilter, TaskExecutionId, TaskName, TaskStatus, Tenant,
};
use flowexec_domain::{Claim, Heartbeat};

use super::rows::{
    json_text, uuid, NewSqliteEventRow, NewSqliteFlowExecutionRow, NewSqliteTaskExecutionRow,
    SqliteEventRow, SqliteFlowExecutionRow, SqliteFlowRow, SqliteFlowVersionRow,
    SqliteTaskExecutionRow,
};
use super::schema::{
    api_keys as ak, flow_executions as fe, flow_versions as fv, flows as fl,
    task_execution_events as ev, task_executions as te,
};
use crate::error::StoreError;
use crate::rows::{
    api_key_info, EventRow, FlowExecutionRow, FlowRow, FlowVersionRow, TaskExecutionRow,
};

pub struct SqliteTx<'t> {
    conn: &'t mut SqliteConnection,
    tenant: Tenant,
    org: String,
}

impl<'t> SqliteTx<'t> {
    pub(crate) fn new(conn: &'t mut SqliteConnection, tenant: Tenant) -> Self {
        Self {
            conn,
            tenant,
            org: tenant.organization_id().to_string(),
        }
    }

    /// Rows handed to a unit of work must belong to its tenant.
    fn own(&self, organization_id: OrganizationId) -> Result<(), RepoError> {
        if organization_id == self.tenant.organization_id() {
            Ok(())
        } else {
            Err(RepoError::Unknown(anyhow::anyhow!(
                "a row of organization {organization_id} was handed to a unit of work of another"
            )))
        }
    }
}

pub(crate) fn task_row(
    conn: &mut SqliteConnection,
    org: &str,
    id: &str,
) -> Result<TaskExecution, StoreError> {
    let row = te::table
        .filter(te::organization_id.eq(org))
        .filter(te::id.eq(id))
        .select(SqliteTaskExecutionRow::as_select())
        .first(conn)?;
    Ok(TaskExecutionRow::try_from(row)?.try_into()?)
}

diesel::alias!(te as newer: NewerAttempt);

fn text(id: uuid::Uuid) -> String {
    id.to_string()
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

impl TenantTx for SqliteTx<'_> {
    /// Writes run one at a time: what a unit of work reads is locked until
    /// it ends.
    fn lock_flow_execution(&mut self, id: FlowExecutionId) -> Result<FlowExecution, RepoError> {
        let row = fe::table
            .filter(fe::organization_id.eq(&self.org))
            .filter(fe::id.eq(id.to_string()))
            .select(SqliteFlowExecutionRow::as_select())
            .first(self.conn)
            .map_err(StoreError::from)?;
        Ok(FlowExecutionRow::try_from(row)
            .and_then(FlowExecution::try_from)
            .map_err(StoreError::from)?)
    }

    fn set_flow_status(
        &mut self,
        id: FlowExecutionId,
        status: FlowStatus,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let changed = diesel::update(
            fe::table
                .filter(fe::organization_id.eq(&self.org))
                .filter(fe::id.eq(id.to_string())),
        )
        .set((fe::status.eq(status.as_str()), fe::updated_at.eq(at)))
        .execute(self.conn)
        .map_err(StoreError::from)?;
        if changed == 0 {
            Err(RepoError::NotFound)
        } else {
            Ok(())
        }
    }

    fn mark_flows_running(
        &mut self,
        ids: &[FlowExecutionId],
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        diesel::update(
            fe::table
                .filter(fe::organization_id.eq(&self.org))
                .filter(fe::id.eq_any(ids))
                .filter(fe::status.eq(FlowStatus::Queued.as_str())),
        )
        .set((
            fe::status.eq(FlowStatus::Running.as_str()),
            fe::updated_at.eq(at),
        ))
        .execute(self.conn)
        .map_err(StoreError::from)?;
        Ok(())
    }

    /// Writes run one at a time: every lock is held until the unit ends.
    fn flow(&mut self, name: &FlowName, _lock: RowLock) -> Result<Option<Flow>, RepoError> {
        let row = fl::table
            .filter(fl::organization_id.eq(&self.org))
            .filter(fl::name.eq(name.as_str()))
            .select(SqliteFlowRow::as_select())
            .first(self.conn)
            .optional()
            .map_err(StoreError::from)?;
        Ok(row
            .map(|row| FlowRow::try_from(row).and_then(Flow::try_from))
            .transpose()
            .map_err(StoreError::from)?)
    }

    fn save_flow(&mut self, flow: &Flow) -> Result<(), RepoError> {
        let row = SqliteFlowRow::from(FlowRow::new(self.tenant.organization_id(), flow));
        diesel::insert_into(fl::table)
            .values(&row)
            .on_conflict((fl::organization_id, fl::name))
            .do_update()
            .set(&row)
            .execute(self.conn)
            .map_err(StoreError::from)?;
        Ok(())
    }

    fn insert_flow_version(&mut self, version: &FlowVersion) -> Result<(), RepoError> {
        let row =
            SqliteFlowVersionRow::from(FlowVersionRow::new(self.tenant.organization_id(), version));
        diesel::insert_into(fv::table)
            .values(&row)
            .execute(self.conn)
            .map_err(StoreError::from)?;
        Ok(())
    }

    fn flow_version(&mut self, name: &FlowName, version: i32) -> Result<FlowVersion, RepoError> {
        let row = fv::table
            .filter(fv::organization_id.eq(&self.org))
            .filter(fv::name.eq(name.as_str()))
            .filter(fv::version.eq(version))
            .select(SqliteFlowVersionRow::as_select())
            .first(self.conn)
            .map_err(StoreError::from)?;
        Ok(FlowVersionRow::try_from(row)
            .and_then(FlowVersion::try_from)
            .map_err(StoreError::from)?)
    }

    fn list_flows(
        &mut self,
        after: Option<&FlowName>,
        limit: usize,
    ) -> Result<Vec<Flow>, RepoError> {
        let mut query = fl::table
            .filter(fl::organization_id.eq(&self.org))
            .filter(fl::deleted_at.is_null())
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(fl::name.gt(after.as_str().to_owned()));
        }
        let rows = query
            .order(fl::name.asc())
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .select(SqliteFlowRow::as_select())
            .load(self.conn)
            .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| FlowRow::try_from(row).and_then(Flow::try_from))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?)
    }

    fn task_execution(&mut self, id: TaskExecutionId) -> Result<TaskExecution, RepoError> {
        Ok(task_row(self.conn, &self.org, &id.to_string())?)
    }

    /// Writes run one at a time (the store's write lock and `BEGIN
    /// IMMEDIATE`): what a unit of work reads is locked until it ends.
    fn lock_task_execution(&mut self, id: TaskExecutionId) -> Result<TaskExecution, RepoError> {
        self.task_execution(id)
    }

    fn flow_execution(&mut self, id: FlowExecutionId) -> Result<FlowExecutionDetail, RepoError> {
        let id = id.to_string();
        let row = fe::table
            .filter(fe::organization_id.eq(&self.org))
            .filter(fe::id.eq(&id))
            .select(SqliteFlowExecutionRow::as_select())
            .first(self.conn)
            .map_err(StoreError::from)?;
        let flow_execution: FlowExecution = FlowExecutionRow::try_from(row)
            .and_then(FlowExecution::try_from)
            .map_err(StoreError::from)?;
        Ok(FlowExecutionDetail {
            flow_execution,
            task_executions: tasks_of(self.conn, &self.org, &id)?,
        })
    }

    fn events(
        &mut self,
        id: TaskExecutionId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, RepoError> {
        let id = id.to_string();
        task_row(self.conn, &self.org, &id)?;
        let rows = ev::table
            .filter(ev::organization_id.eq(&self.org))
            .filter(ev::task_execution_id.eq(&id))
            .filter(ev::id.gt(after.unwrap_or(0)))
            .order(ev::id.asc())
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .select(SqliteEventRow::as_select())
            .load(self.conn)
            .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| Ok(EventRow::try_from(row)?.try_into()?))
            .collect::<Result<_, StoreError>>()?)
    }

    fn last_event(&mut self, id: TaskExecutionId) -> Result<Option<TaskExecutionEvent>, RepoError> {
        let row = ev::table
            .filter(ev::organization_id.eq(&self.org))
            .filter(ev::task_execution_id.eq(id.to_string()))
            .order(ev::id.desc())
            .select(SqliteEventRow::as_select())
            .first(self.conn)
            .optional()
            .map_err(StoreError::from)?;
        Ok(row
            .map(|row| -> Result<RecordedEvent, StoreError> {
                Ok(EventRow::try_from(row)?.try_into()?)
            })
            .transpose()?
            .map(|recorded| recorded.event))
    }

    fn latest_execution_index(
        &mut self,
        flow_execution_id: FlowExecutionId,
        task_name: &TaskName,
    ) -> Result<i32, RepoError> {
        te::table
            .filter(te::organization_id.eq(&self.org))
            .filter(te::flow_execution_id.eq(flow_execution_id.to_string()))
            .filter(te::task_name.eq(task_name.as_str()))
            .select(diesel::dsl::max(te::execution_index))
            .first::<Option<i32>>(self.conn)
            .map_err(StoreError::from)?
            .ok_or(RepoError::NotFound)
    }

    fn run_attempts(
        &mut self,
        flow_execution_id: FlowExecutionId,
        task_name: &TaskName,
        iteration: Option<i32>,
    ) -> Result<Vec<(i32, TaskStatus)>, RepoError> {
        let mut query = te::table
            .filter(te::organization_id.eq(&self.org))
            .filter(te::flow_execution_id.eq(flow_execution_id.to_string()))
            .filter(te::task_name.eq(task_name.as_str()))
            .into_boxed();
        query = match iteration {
            Some(iteration) => query.filter(te::iteration.eq(iteration)),
            None => query.filter(te::iteration.is_null()),
        };
        let rows = query
            .order(te::execution_index.asc())
            .select((te::execution_index, te::status))
            .load::<(i32, String)>(self.conn)
            .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|(index, status)| Ok((index, crate::rows::parse("status", &status)?)))
            .collect::<Result<_, diesel::result::Error>>()
            .map_err(StoreError::from)?)
    }

    fn any_latest_in(
        &mut self,
        flow_execution_id: FlowExecutionId,
        statuses: &[TaskStatus],
    ) -> Result<bool, RepoError> {
        Ok(diesel::select(diesel::dsl::exists(
            te::table
                .filter(te::organization_id.eq(&self.org))
                .filter(te::flow_execution_id.eq(flow_execution_id.to_string()))
                .filter(crate::lists::status_among(statuses))
                .filter(latest_attempt!()),
        ))
        .get_result::<bool>(self.conn)
        .map_err(StoreError::from)?)
    }

    fn has_flow_execution(&mut self, id: FlowExecutionId) -> Result<bool, RepoError> {
        Ok(diesel::select(diesel::dsl::exists(
            fe::table
                .filter(fe::organization_id.eq(&self.org))
                .filter(fe::id.eq(id.to_string())),
        ))
        .get_result(self.conn)
        .map_err(StoreError::from)?)
    }

    fn list_task_executions(
        &mut self,
        query: &ListQuery<TaskExecutionFilter>,
    ) -> Result<Vec<TaskExecution>, RepoError> {
        let rows = keyset!(
            task_filters!(te::table.into_boxed(), &self.org, &query.filter, text),
            te::created_at,
            te::id,
            query,
            text
        )
        .select(SqliteTaskExecutionRow::as_select())
        .load(self.conn)
        .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| Ok(TaskExecutionRow::try_from(row)?.try_into()?))
            .collect::<Result<_, StoreError>>()?)
    }

    fn list_flow_executions(
        &mut self,
        query: &ListQuery<FlowExecutionFilter>,
    ) -> Result<Vec<FlowExecution>, RepoError> {
        let rows = keyset!(
            flow_filters!(fe::table.into_boxed(), &self.org, &query.filter),
            fe::created_at,
            fe::id,
            query,
            text
        )
        .select(SqliteFlowExecutionRow::as_select())
        .load(self.conn)
        .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| Ok(FlowExecutionRow::try_from(row).and_then(FlowExecution::try_from)?))
            .collect::<Result<_, StoreError>>()?)
    }

    fn count_task_executions(
        &mut self,
        filter: &TaskExecutionFilter,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>, RepoError> {
        let counts = match by {
            CountBy::Status => task_filters!(
                te::table
                    .group_by(te::status)
                    .select((te::status, diesel::dsl::count_star()))
                    .into_boxed(),
                &self.org,
                filter,
                text
            )
            .load(self.conn),
            CountBy::TaskName => task_filters!(
                te::table
                    .group_by(te::task_name)
                    .select((te::task_name, diesel::dsl::count_star()))
                    .into_boxed(),
                &self.org,
                filter,
                text
            )
            .load(self.conn),
        };
        Ok(counts.map_err(StoreError::from)?)
    }

    fn api_keys(&mut self) -> Result<Vec<ApiKeyInfo>, RepoError> {
        let rows = ak::table
            .filter(ak::organization_id.eq(&self.org))
            .order((ak::created_at.asc(), ak::id.asc()))
            .select((
                ak::id,
                ak::organization_id,
                ak::role,
                ak::actor,
                ak::created_at,
                ak::revoked_at,
            ))
            .load::<(
                String,
                String,
                String,
                String,
                DateTime<Utc>,
                Option<DateTime<Utc>>,
            )>(self.conn)
            .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|(id, org, role, actor, created_at, revoked_at)| {
                api_key_info((uuid(&id)?, uuid(&org)?, role, actor, created_at, revoked_at))
            })
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?)
    }

    /// Writes run one at a time (the store's write lock and `BEGIN
    /// IMMEDIATE`): what a unit of work reads is locked until it ends.
    fn lock_api_keys(&mut self) -> Result<Vec<ApiKeyInfo>, RepoError> {
        self.api_keys()
    }

    fn revoke_api_key(&mut self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let key = ak::table
            .filter(ak::organization_id.eq(&self.org))
            .filter(ak::id.eq(id.to_string()));
        let revoked = diesel::update(key.clone().filter(ak::revoked_at.is_null()))
            .set(ak::revoked_at.eq(at))
            .execute(self.conn)
            .map_err(StoreError::from)?;
        // Nothing revoked: already revoked (keeping its time), or absent.
        let exists = revoked > 0
            || diesel::select(diesel::dsl::exists(key))
                .get_result(self.conn)
                .map_err(StoreError::from)?;
        if exists {
            Ok(())
        } else {
            Err(RepoError::NotFound)
        }
    }

    fn insert_flow_execution(&mut self, flow: &FlowExecution) -> Result<(), RepoError> {
        self.own(flow.organization_id)?;
        diesel::insert_into(fe::table)
            .values(NewSqliteFlowExecutionRow::from(flow))
            .execute(self.conn)
            .map_err(StoreError::from)?;
        Ok(())
    }

    fn insert_task_executions(&mut self, tasks: &[TaskExecution]) -> Result<(), RepoError> {
        for task in tasks {
            self.own(task.organization_id)?;
        }
        let rows: Vec<NewSqliteTaskExecutionRow> =
            tasks.iter().map(NewSqliteTaskExecutionRow::from).collect();
        diesel::insert_into(te::table)
            .values(&rows)
            .execute(self.conn)
            .map_err(StoreError::from)?;
        Ok(())
    }

    fn insert_events(&mut self, events: &[TaskExecutionEvent]) -> Result<(), RepoError> {
        let rows: Vec<NewSqliteEventRow<'_>> = events
            .iter()
            .map(|event| NewSqliteEventRow::new(&self.org, event))
            .collect();
        diesel::insert_into(ev::table)
            .values(&rows)
            .execute(self.conn)
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// Writes run one at a time (the store's write lock and `BEGIN
    /// IMMEDIATE`), so the row read here is the one the update replaces;
    /// the update repeats its status and version as its condition all the
    /// same.
    fn change_status(&mut self, change: &StatusChange) -> Result<ChangeOutcome, RepoError> {
        let id = change.task_execution_id.to_string();
        let before = task_row(self.conn, &self.org, &id)?;
        if !change.accepts(&before) {
            return Ok(ChangeOutcome::Refused(before));
        }
        let after = change.applied_to(&before);
        let updated = diesel::update(
            te::table
                .filter(te::organization_id.eq(&self.org))
                .filter(te::id.eq(&id))
                .filter(te::status.eq(before.status.as_str()))
                .filter(te::version.eq(before.version)),
        )
        .set((
            te::status.eq(after.status.as_str()),
            te::modified_by.eq(after.modified_by.to_string()),
            te::updated_at.eq(after.updated_at),
            te::started_at.eq(after.started_at),
            te::completed_at.eq(after.completed_at),
            te::lease_expires_at.eq(after.lease.expires_at),
            te::output.eq(json_text(after.output.as_ref())),
            te::error.eq(json_text(after.error.as_ref())),
            te::version.eq(after.version),
        ))
        .execute(self.conn)
        .map_err(StoreError::from)?;
        if updated != 1 {
            return Err(RepoError::Unknown(anyhow::anyhow!(
                "a status change read under the write lock matched {updated} rows"
            )));
        }
        self.insert_events(&[change.event(before.status)])?;
        Ok(ChangeOutcome::Changed(after))
    }

    /// Writes run one at a time, so the rows chosen here are the ones the
    /// update takes (no other claim can hold them).
    fn claim(&mut self, claim: &Claim) -> Result<Vec<TaskExecution>, RepoError> {
        let mut query = te::table
            .filter(te::organization_id.eq(&self.org))
            .filter(te::status.eq(TaskStatus::Queued.as_str()))
            .filter(te::not_before.is_null().or(te::not_before.le(claim.at)))
            .into_boxed();
        if !claim.task_names.is_empty() {
            let names: Vec<&str> = claim.task_names.iter().map(|n| n.as_str()).collect();
            query = query.filter(te::task_name.eq_any(names));
        }
        let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
        let chosen = query
            .order((te::priority.desc(), te::created_at.asc(), te::id.asc()))
            .limit(limit)
            .select(SqliteTaskExecutionRow::as_select())
            .load(self.conn)
            .map_err(StoreError::from)?
            .into_iter()
            .map(|row| Ok(TaskExecution::try_from(TaskExecutionRow::try_from(row)?)?))
            .collect::<Result<Vec<TaskExecution>, StoreError>>()?;
        if chosen.is_empty() {
            return Ok(chosen);
        }
        let ids: Vec<String> = chosen.iter().map(|t| t.id.to_string()).collect();
        let updated = diesel::update(
            te::table
                .filter(te::organization_id.eq(&self.org))
                .filter(te::id.eq_any(&ids))
                .filter(te::status.eq(TaskStatus::Queued.as_str())),
        )
        .set((
            te::status.eq(TaskStatus::Running.as_str()),
            te::worker_id.eq(claim.worker_id.as_str()),
            te::lease_expires_at.eq(claim.lease_expires_at),
            te::heartbeat_at.eq(claim.at),
            te::started_at.eq(claim.at),
            te::updated_at.eq(claim.at),
            te::modified_by.eq(claim.actor.to_string()),
            te::version.eq(te::version + 1),
        ))
        .execute(self.conn)
        .map_err(StoreError::from)?;
        if updated != chosen.len() {
            return Err(RepoError::Unknown(anyhow::anyhow!(
                "a claim of {} rows read under the write lock updated {updated}",
                chosen.len()
            )));
        }
        let events: Vec<TaskExecutionEvent> = chosen.iter().map(|t| claim.event(t.id)).collect();
        self.insert_events(&events)?;
        Ok(chosen.iter().map(|t| claim.applied_to(t)).collect())
    }

    fn next_due(&mut self, claim: &Claim) -> Result<Option<DateTime<Utc>>, RepoError> {
        let mut query = te::table
            .filter(te::organization_id.eq(&self.org))
            .filter(te::status.eq(TaskStatus::Queued.as_str()))
            .filter(te::not_before.gt(claim.at))
            .into_boxed();
        if !claim.task_names.is_empty() {
            let names: Vec<&str> = claim.task_names.iter().map(|n| n.as_str()).collect();
            query = query.filter(te::task_name.eq_any(names));
        }
        Ok(query
            .select(te::not_before)
            .order(te::not_before.asc())
            .first::<Option<DateTime<Utc>>>(self.conn)
            .optional()
            .map(Option::flatten)
            .map_err(StoreError::from)?)
    }

    fn heartbeat(&mut self, beat: &Heartbeat) -> Result<ChangeOutcome, RepoError> {
        let id = beat.task_execution_id.to_string();
        let before = task_row(self.conn, &self.org, &id)?;
        if !beat.applies_to(&before) {
            return Ok(ChangeOutcome::Refused(before));
        }
        let after = beat.applied_to(&before);
        diesel::update(
            te::table
                .filter(te::organization_id.eq(&self.org))
                .filter(te::id.eq(&id)),
        )
        .set((
            te::lease_expires_at.eq(after.lease.expires_at),
            te::heartbeat_at.eq(after.lease.heartbeat_at),
        ))
        .execute(self.conn)
        .map_err(StoreError::from)?;
        Ok(ChangeOutcome::Changed(after))
    }
}
