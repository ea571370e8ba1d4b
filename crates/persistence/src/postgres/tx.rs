//! A unit of work on PostgreSQL: the [`TenantTx`] operations on one
//! connection, inside a transaction confined to one tenant (`tenant.rs`).

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use flowexec_domain::ports::{RowLock, TenantTx};
use flowexec_domain::{
    ApiKeyId, ApiKeyInfo, ChangeOutcome, CountBy, Flow, FlowExecution, FlowExecutionDetail,
    FlowExecutionFilter, FlowExecutionId, FlowName, FlowStatus, FlowVersion, IfMatch, ListQuery,
    OrganizationId, RecordedEvent, RepoError, ResultWrite, StatusChange, TaskExecution,
    TaskExecutionEvent, TaskExecutionFilter, TaskExecutionId, TaskName, TaskStatus, Tenant,
};
use flowexec_domain::{Claim, Heartbeat};
use uuid::Uuid;

use crate::error::{aborted_to_retry, connection_lost, StoreError};
use crate::postgres::rows::{changed_row, ChangedRecord, ChangedTuple, NewEventRow};
use crate::postgres::schema::{
    api_keys as ak, flow_executions as fe, flow_versions as fv, flows as fl,
    task_execution_events as ev, task_executions as te,
};
use crate::rows::{
    api_key_info, ApiKeyInfoTuple, EventRow, FlowExecutionRow, FlowRow, FlowVersionRow,
    TaskExecutionRow,
};

diesel::define_sql_function! {
    /// `flowexec_change_status(…)`: a status change's compare-and-set and its
    /// event in one statement (migrations/postgres/…_status_changes).
    #[allow(clippy::too_many_arguments)]
    fn flowexec_change_status(
        organization_id: SqlUuid,
        id: SqlUuid,
        to: Text,
        actor: Text,
        at: Timestamptz,
        starts: Bool,
        finishes: Bool,
        sets_output: Bool,
        output: Nullable<Jsonb>,
        sets_error: Bool,
        error: Nullable<Jsonb>,
        from: Array<Text>,
        versions: Nullable<Array<Int8>>,
        reason: Nullable<Text>,
        worker_id: Nullable<Text>,
    ) -> Record<ChangedRecord>;
}

/// The operations of one unit of work. Remembers whether one of them found
/// the connection gone, so that the store can run the unit again.
pub struct PgTx<'t> {
    conn: &'t mut PgConnection,
    tenant: Tenant,
    pub(crate) lost: bool,
    /// PostgreSQL aborted the transaction to break a deadlock: the unit of
    /// work left nothing and may run again.
    pub(crate) aborted: bool,
}

impl<'t> PgTx<'t> {
    pub(crate) fn new(conn: &'t mut PgConnection, tenant: Tenant) -> Self {
        Self {
            conn,
            tenant,
            lost: false,
            aborted: false,
        }
    }

    fn org(&self) -> Uuid {
        self.tenant.organization_id().into_uuid()
    }

    /// The outcome of one operation, noting a lost connection.
    fn done<T>(&mut self, result: Result<T, StoreError>) -> Result<T, RepoError> {
        if let Err(StoreError::Diesel(error)) = &result {
            self.lost |= connection_lost(error);
            self.aborted |= aborted_to_retry(error);
        }
        result.map_err(RepoError::from)
    }

    /// `changes` (of one shape, see [`same_shape`]) in one statement:
    /// (position from 1, outcome) of each row that exists.
    fn change_alike(
        &mut self,
        changes: &[&StatusChange],
    ) -> Result<Vec<(i64, ChangeOutcome)>, RepoError> {
        let Some(first) = changes.first() else {
            return Ok(Vec::new());
        };
        let (sets_output, sets_error) = match first.result {
            ResultWrite::Keep => (false, false),
            ResultWrite::Output(_) => (true, false),
            ResultWrite::Error(_) => (false, true),
        };
        let ids: Vec<Uuid> = changes
            .iter()
            .map(|c| c.task_execution_id.into_uuid())
            .collect();
        let outputs: Vec<Option<serde_json::Value>> = changes
            .iter()
            .map(|c| match &c.result {
                ResultWrite::Output(output) => output.clone(),
                _ => None,
            })
            .collect();
        let errors: Vec<Option<serde_json::Value>> = changes
            .iter()
            .map(|c| match &c.result {
                ResultWrite::Error(error) => error.clone(),
                _ => None,
            })
            .collect();
        let workers: Vec<Option<&str>> = changes
            .iter()
            .map(|c| c.held_by.as_ref().map(|w| w.as_str()))
            .collect();
        let from: Vec<&str> = first.from.iter().map(|s| s.as_str()).collect();
        let result = diesel::sql_query(
            "SELECT * FROM flowexec_change_statuses(
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind::<SqlUuid, _>(self.org())
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Nullable<Jsonb>>, _>(outputs)
        .bind::<Array<Nullable<Jsonb>>, _>(errors)
        .bind::<Array<Nullable<Text>>, _>(workers)
        .bind::<Text, _>(first.to.as_str())
        .bind::<Text, _>(first.modified_by.to_string())
        .bind::<Timestamptz, _>(first.at)
        .bind::<Bool, _>(first.starts)
        .bind::<Bool, _>(first.finishes)
        .bind::<Bool, _>(sets_output)
        .bind::<Bool, _>(sets_error)
        .bind::<Array<Text>, _>(from)
        .bind::<Nullable<Text>, _>(first.reason.as_deref())
        .load::<ChangedInBatch>(self.conn)
        .map_err(StoreError::from)
        .and_then(|rows| {
            rows.into_iter()
                .map(|found| {
                    let row = TaskExecution::try_from(found.row)?;
                    let outcome = if found.changed {
                        ChangeOutcome::Changed(row)
                    } else {
                        ChangeOutcome::Refused(row)
                    };
                    Ok((found.ord, outcome))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        });
        self.done(result)
    }

    /// One task execution of the tenant, locked `FOR UPDATE` if asked.
    fn task_row(&mut self, id: TaskExecutionId, lock: bool) -> Result<TaskExecution, RepoError> {
        let org = self.org();
        let query = te::table
            .filter(te::organization_id.eq(org))
            .filter(te::id.eq(id.into_uuid()))
            .select(TaskExecutionRow::as_select());
        let row = if lock {
            query.for_update().first(self.conn)
        } else {
            query.first(self.conn)
        };
        let result = row
            .map_err(StoreError::from)
            .and_then(|row| Ok(TaskExecution::try_from(row)?));
        self.done(result)
    }

    /// The tenant's keys, oldest first, locked `FOR UPDATE` if asked.
    fn key_rows(&mut self, lock: bool) -> Result<Vec<ApiKeyInfo>, RepoError> {
        let org = self.org();
        let query = ak::table
            .filter(ak::organization_id.eq(org))
            .order((ak::created_at.asc(), ak::id.asc()))
            .select(KEY_INFO);
        let rows = if lock {
            query.for_update().load::<ApiKeyInfoTuple>(self.conn)
        } else {
            query.load::<ApiKeyInfoTuple>(self.conn)
        };
        let result = rows.map_err(StoreError::from).and_then(|rows| {
            Ok(rows
                .into_iter()
                .map(api_key_info)
                .collect::<Result<_, _>>()?)
        });
        self.done(result)
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

diesel::alias!(te as newer: NewerAttempt);

/// The columns of a key that may be shown.
const KEY_INFO: (
    ak::id,
    ak::organization_id,
    ak::role,
    ak::actor,
    ak::created_at,
    ak::revoked_at,
) = (
    ak::id,
    ak::organization_id,
    ak::role,
    ak::actor,
    ak::created_at,
    ak::revoked_at,
);

fn task_rows(
    conn: &mut PgConnection,
    org: Uuid,
    flow_execution_id: Uuid,
) -> Result<Vec<TaskExecution>, StoreError> {
    Ok(te::table
        .filter(te::organization_id.eq(org))
        .filter(te::flow_execution_id.eq(flow_execution_id))
        .order((te::task_name.asc(), te::execution_index.asc()))
        .select(TaskExecutionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(TaskExecution::try_from)
        .collect::<Result<_, _>>()?)
}

impl TenantTx for PgTx<'_> {
    /// `FOR NO KEY UPDATE`: it serializes the engine's units on the row
    /// (and the status update), yet leaves the key share the foreign key
    /// checks of new task executions take free.
    fn lock_flow_execution(&mut self, id: FlowExecutionId) -> Result<FlowExecution, RepoError> {
        let org = self.org();
        let result = fe::table
            .filter(fe::organization_id.eq(org))
            .filter(fe::id.eq(id.into_uuid()))
            .select(FlowExecutionRow::as_select())
            .for_no_key_update()
            .first(self.conn)
            .map_err(StoreError::from)
            .and_then(|row| Ok(FlowExecution::try_from(row)?));
        self.done(result)
    }

    fn set_flow_status(
        &mut self,
        id: FlowExecutionId,
        status: FlowStatus,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let org = self.org();
        let result = diesel::update(
            fe::table
                .filter(fe::organization_id.eq(org))
                .filter(fe::id.eq(id.into_uuid())),
        )
        .set((fe::status.eq(status.as_str()), fe::updated_at.eq(at)))
        .execute(self.conn)
        .map_err(StoreError::from);
        match self.done(result)? {
            0 => Err(RepoError::NotFound),
            _ => Ok(()),
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
        let org = self.org();
        let ids: Vec<Uuid> = ids.iter().map(|id| id.into_uuid()).collect();
        let result = diesel::update(
            fe::table
                .filter(fe::organization_id.eq(org))
                .filter(fe::id.eq_any(ids))
                .filter(fe::status.eq(FlowStatus::Queued.as_str())),
        )
        .set((
            fe::status.eq(FlowStatus::Running.as_str()),
            fe::updated_at.eq(at),
        ))
        .execute(self.conn)
        .map(|_| ())
        .map_err(StoreError::from);
        self.done(result)
    }

    fn flow(&mut self, name: &FlowName, lock: RowLock) -> Result<Option<Flow>, RepoError> {
        let org = self.org();
        let query = fl::table
            .filter(fl::organization_id.eq(org))
            .filter(fl::name.eq(name.as_str()))
            .select(FlowRow::as_select());
        let row = match lock {
            RowLock::None => query.first(self.conn).optional(),
            RowLock::Shared => query.for_share().first(self.conn).optional(),
            RowLock::Exclusive => query.for_update().first(self.conn).optional(),
        };
        let result = row
            .map_err(StoreError::from)
            .and_then(|row| Ok(row.map(Flow::try_from).transpose()?));
        self.done(result)
    }

    fn save_flow(&mut self, flow: &Flow) -> Result<(), RepoError> {
        let row = FlowRow::new(self.tenant.organization_id(), flow);
        let result = diesel::insert_into(fl::table)
            .values(&row)
            .on_conflict((fl::organization_id, fl::name))
            .do_update()
            .set(&row)
            .execute(self.conn)
            .map(|_| ())
            .map_err(StoreError::from);
        self.done(result)
    }

    fn insert_flow_version(&mut self, version: &FlowVersion) -> Result<(), RepoError> {
        let row = FlowVersionRow::new(self.tenant.organization_id(), version);
        let result = diesel::insert_into(fv::table)
            .values(&row)
            .execute(self.conn)
            .map(|_| ())
            .map_err(StoreError::from);
        self.done(result)
    }

    fn flow_version(&mut self, name: &FlowName, version: i32) -> Result<FlowVersion, RepoError> {
        let org = self.org();
        let result = fv::table
            .filter(fv::organization_id.eq(org))
            .filter(fv::name.eq(name.as_str()))
            .filter(fv::version.eq(version))
            .select(FlowVersionRow::as_select())
            .first(self.conn)
            .map_err(StoreError::from)
            .and_then(|row| Ok(FlowVersion::try_from(row)?));
        self.done(result)
    }

    fn list_flows(
        &mut self,
        after: Option<&FlowName>,
        limit: usize,
    ) -> Result<Vec<Flow>, RepoError> {
        let org = self.org();
        let mut query = fl::table
            .filter(fl::organization_id.eq(org))
            .filter(fl::deleted_at.is_null())
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(fl::name.gt(after.as_str().to_owned()));
        }
        let result = query
            .order(fl::name.asc())
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .select(FlowRow::as_select())
            .load(self.conn)
            .map_err(StoreError::from)
            .and_then(|rows| {
                Ok(rows
                    .into_iter()
                    .map(Flow::try_from)
                    .collect::<Result<_, _>>()?)
            });
        self.done(result)
    }

    fn task_execution(&mut self, id: TaskExecutionId) -> Result<TaskExecution, RepoError> {
        self.task_row(id, false)
    }

    fn lock_task_execution(&mut self, id: TaskExecutionId) -> Result<TaskExecution, RepoError> {
        self.task_row(id, true)
    }

    fn flow_execution(&mut self, id: FlowExecutionId) -> Result<FlowExecutionDetail, RepoError> {
        let org = self.org();
        let result = (|| {
            let flow_execution = fe::table
                .filter(fe::organization_id.eq(org))
                .filter(fe::id.eq(id.into_uuid()))
                .select(FlowExecutionRow::as_select())
                .first(self.conn)?
                .try_into()?;
            Ok(FlowExecutionDetail {
                flow_execution,
                task_executions: task_rows(self.conn, org, id.into_uuid())?,
            })
        })();
        self.done(result)
    }

    fn events(
        &mut self,
        id: TaskExecutionId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, RepoError> {
        let org = self.org();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let result = (|| {
            te::table
                .filter(te::organization_id.eq(org))
                .filter(te::id.eq(id.into_uuid()))
                .select(te::id)
                .first::<Uuid>(self.conn)?;
            Ok(ev::table
                .filter(ev::organization_id.eq(org))
                .filter(ev::task_execution_id.eq(id.into_uuid()))
                .filter(ev::id.gt(after.unwrap_or(0)))
                .order(ev::id.asc())
                .limit(limit)
                .select(EventRow::as_select())
                .load(self.conn)?
                .into_iter()
                .map(RecordedEvent::try_from)
                .collect::<Result<_, _>>()?)
        })();
        self.done(result)
    }

    fn last_event(&mut self, id: TaskExecutionId) -> Result<Option<TaskExecutionEvent>, RepoError> {
        let org = self.org();
        let result = (|| {
            let row = ev::table
                .filter(ev::organization_id.eq(org))
                .filter(ev::task_execution_id.eq(id.into_uuid()))
                .order(ev::id.desc())
                .select(EventRow::as_select())
                .first(self.conn)
                .optional()?;
            Ok(row
                .map(RecordedEvent::try_from)
                .transpose()?
                .map(|recorded| recorded.event))
        })();
        self.done(result)
    }

    fn latest_execution_index(
        &mut self,
        flow_execution_id: FlowExecutionId,
        task_name: &TaskName,
    ) -> Result<i32, RepoError> {
        let org = self.org();
        let result = te::table
            .filter(te::organization_id.eq(org))
            .filter(te::flow_execution_id.eq(flow_execution_id.into_uuid()))
            .filter(te::task_name.eq(task_name.as_str()))
            .select(diesel::dsl::max(te::execution_index))
            .first::<Option<i32>>(self.conn)
            .map_err(StoreError::from);
        self.done(result)?.ok_or(RepoError::NotFound)
    }

    fn run_attempts(
        &mut self,
        flow_execution_id: FlowExecutionId,
        task_name: &TaskName,
        iteration: Option<i32>,
    ) -> Result<Vec<(i32, TaskStatus)>, RepoError> {
        let org = self.org();
        let mut query = te::table
            .filter(te::organization_id.eq(org))
            .filter(te::flow_execution_id.eq(flow_execution_id.into_uuid()))
            .filter(te::task_name.eq(task_name.as_str()))
            .into_boxed();
        query = match iteration {
            Some(iteration) => query.filter(te::iteration.eq(iteration)),
            None => query.filter(te::iteration.is_null()),
        };
        let result = query
            .order(te::execution_index.asc())
            .select((te::execution_index, te::status))
            .load::<(i32, String)>(self.conn)
            .map_err(StoreError::from)
            .and_then(|rows| {
                rows.into_iter()
                    .map(|(index, status)| Ok((index, crate::rows::parse("status", &status)?)))
                    .collect()
            });
        self.done(result)
    }

    fn any_latest_in(
        &mut self,
        flow_execution_id: FlowExecutionId,
        statuses: &[TaskStatus],
    ) -> Result<bool, RepoError> {
        let org = self.org();
        let result = diesel::select(diesel::dsl::exists(
            te::table
                .filter(te::organization_id.eq(org))
                .filter(te::flow_execution_id.eq(flow_execution_id.into_uuid()))
                .filter(crate::lists::status_among(statuses))
                .filter(latest_attempt!()),
        ))
        .get_result::<bool>(self.conn)
        .map_err(StoreError::from);
        self.done(result)
    }

    fn has_flow_execution(&mut self, id: FlowExecutionId) -> Result<bool, RepoError> {
        let org = self.org();
        let result = diesel::select(diesel::dsl::exists(
            fe::table
                .filter(fe::organization_id.eq(org))
                .filter(fe::id.eq(id.into_uuid())),
        ))
        .get_result(self.conn)
        .map_err(StoreError::from);
        self.done(result)
    }

    fn list_task_executions(
        &mut self,
        query: &ListQuery<TaskExecutionFilter>,
    ) -> Result<Vec<TaskExecution>, RepoError> {
        let org = self.org();
        let rows = keyset!(
            task_filters!(te::table.into_boxed(), org, &query.filter, |id: Uuid| id),
            te::created_at,
            te::id,
            query,
            |id: Uuid| id
        )
        .select(TaskExecutionRow::as_select())
        .load(self.conn)
        .map_err(StoreError::from)
        .and_then(|rows| {
            rows.into_iter()
                .map(|row| Ok(TaskExecution::try_from(row)?))
                .collect()
        });
        self.done(rows)
    }

    fn list_flow_executions(
        &mut self,
        query: &ListQuery<FlowExecutionFilter>,
    ) -> Result<Vec<FlowExecution>, RepoError> {
        let org = self.org();
        let rows = keyset!(
            flow_filters!(fe::table.into_boxed(), org, &query.filter),
            fe::created_at,
            fe::id,
            query,
            |id: Uuid| id
        )
        .select(FlowExecutionRow::as_select())
        .load(self.conn)
        .map_err(StoreError::from)
        .and_then(|rows| {
            rows.into_iter()
                .map(|row| Ok(FlowExecution::try_from(row)?))
                .collect()
        });
        self.done(rows)
    }

    fn count_task_executions(
        &mut self,
        filter: &TaskExecutionFilter,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>, RepoError> {
        let org = self.org();
        let same = |id: Uuid| id;
        let counts = match by {
            CountBy::Status => task_filters!(
                te::table
                    .group_by(te::status)
                    .select((te::status, diesel::dsl::count_star()))
                    .into_boxed(),
                org,
                filter,
                same
            )
            .load(self.conn),
            CountBy::TaskName => task_filters!(
                te::table
                    .group_by(te::task_name)
                    .select((te::task_name, diesel::dsl::count_star()))
                    .into_boxed(),
                org,
                filter,
                same
            )
            .load(self.conn),
        }
        .map_err(StoreError::from);
        self.done(counts)
    }

    fn api_keys(&mut self) -> Result<Vec<ApiKeyInfo>, RepoError> {
        self.key_rows(false)
    }

    fn lock_api_keys(&mut self) -> Result<Vec<ApiKeyInfo>, RepoError> {
        self.key_rows(true)
    }

    fn revoke_api_key(&mut self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), RepoError> {
        let org = self.org();
        let key = ak::table
            .filter(ak::organization_id.eq(org))
            .filter(ak::id.eq(id.into_uuid()));
        let result =
            diesel::update(key.filter(ak::revoked_at.is_null()))
                .set(ak::revoked_at.eq(at))
                .execute(self.conn)
                .and_then(|revoked| {
                    // Nothing revoked: already revoked (keeping its time), or absent.
                    Ok(revoked > 0
                        || diesel::select(diesel::dsl::exists(key)).get_result(self.conn)?)
                })
                .map_err(StoreError::from);
        if self.done(result)? {
            Ok(())
        } else {
            Err(RepoError::NotFound)
        }
    }

    fn insert_flow_execution(&mut self, flow: &FlowExecution) -> Result<(), RepoError> {
        self.own(flow.organization_id)?;
        let result = diesel::insert_into(fe::table)
            .values(FlowExecutionRow::from(flow))
            .execute(self.conn)
            .map(|_| ())
            .map_err(StoreError::from);
        self.done(result)
    }

    fn insert_task_executions(&mut self, tasks: &[TaskExecution]) -> Result<(), RepoError> {
        for task in tasks {
            self.own(task.organization_id)?;
        }
        let rows: Vec<TaskExecutionRow> = tasks.iter().map(TaskExecutionRow::from).collect();
        let result = diesel::insert_into(te::table)
            .values(&rows)
            .execute(self.conn)
            .map(|_| ())
            .map_err(StoreError::from);
        self.done(result)
    }

    fn insert_events(&mut self, events: &[TaskExecutionEvent]) -> Result<(), RepoError> {
        let org = self.tenant.organization_id();
        let rows: Vec<NewEventRow<'_>> = events.iter().map(|e| NewEventRow::new(org, e)).collect();
        let result = diesel::insert_into(ev::table)
            .values(&rows)
            .execute(self.conn)
            .map(|_| ())
            .map_err(StoreError::from);
        self.done(result)
    }

    fn change_status(&mut self, change: &StatusChange) -> Result<ChangeOutcome, RepoError> {
        let org = self.org();
        let id = change.task_execution_id.into_uuid();
        let (sets_output, output, sets_error, error) = match &change.result {
            ResultWrite::Keep => (false, None, false, None),
            ResultWrite::Output(output) => (true, output.clone(), false, None),
            ResultWrite::Error(error) => (false, None, true, error.clone()),
        };
        let from: Vec<&str> = change.from.iter().map(|s| s.as_str()).collect();
        let versions = match &change.if_match {
            IfMatch::Any => None,
            IfMatch::Versions(versions) => Some(versions.clone()),
        };
        let result = diesel::select(flowexec_change_status(
            org,
            id,
            change.to.as_str(),
            change.modified_by.to_string(),
            change.at,
            change.starts,
            change.finishes,
            sets_output,
            output,
            sets_error,
            error,
            from,
            versions,
            change.reason.as_deref(),
            change.held_by.as_ref().map(|w| w.as_str()),
        ))
        .get_result::<ChangedTuple>(self.conn)
        .optional()
        .map_err(StoreError::from)
        .and_then(|found| {
            let Some(found) = found else {
                return Ok(None);
            };
            let (row, changed) = changed_row(found);
            let row = TaskExecution::try_from(row)?;
            Ok(Some(if changed {
                ChangeOutcome::Changed(row)
            } else {
                ChangeOutcome::Refused(row)
            }))
        });
        self.done(result)?.ok_or(RepoError::NotFound)
    }

    /// Changes of the same shape (all but the row, the output or error, and
    /// the worker) in one statement each: `flowexec_change_statuses` over
    /// the rows' arrays, so that a worker's batch of results costs one
    /// round trip and one plan, not one of each a result.
    fn change_many(
        &mut self,
        changes: &[StatusChange],
    ) -> Result<Vec<Result<ChangeOutcome, RepoError>>, RepoError> {
        // Changes of distinct rows commute, so grouping keeps the order's
        // meaning; a row changed twice, or a change conditioned on a
        // version, is applied one by one, in order.
        let mut seen = std::collections::HashSet::new();
        let one_by_one = changes.iter().any(|change| {
            !matches!(change.if_match, IfMatch::Any) || !seen.insert(change.task_execution_id)
        });
        if one_by_one {
            return changes
                .iter()
                .map(|change| match self.change_status(change) {
                    Ok(outcome) => Ok(Ok(outcome)),
                    Err(RepoError::NotFound) => Ok(Err(RepoError::NotFound)),
                    Err(other) => Err(other),
                })
                .collect();
        }
        let mut answers: Vec<Option<Result<ChangeOutcome, RepoError>>> =
            changes.iter().map(|_| None).collect();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            match groups
                .iter_mut()
                .find(|group| same_shape(&changes[group[0]], change))
            {
                Some(group) => group.push(i),
                None => groups.push(vec![i]),
            }
        }
        for group in groups {
            let members: Vec<&StatusChange> = group.iter().map(|&i| &changes[i]).collect();
            for (ord, outcome) in self.change_alike(&members)? {
                let at = usize::try_from(ord - 1)
                    .ok()
                    .and_then(|k| group.get(k))
                    .copied()
                    .ok_or_else(|| {
                        RepoError::Unknown(anyhow::anyhow!("change_many: no change {ord}"))
                    })?;
                answers[at] = Some(Ok(outcome));
            }
        }
        Ok(answers
            .into_iter()
            .map(|answer| answer.unwrap_or(Err(RepoError::NotFound)))
            .collect())
    }

    /// One statement: the rows chosen `FOR UPDATE SKIP LOCKED` (a row
    /// another claim holds is passed over, never waited for), updated, and
    /// their events recorded.
    fn claim(&mut self, claim: &Claim) -> Result<Vec<TaskExecution>, RepoError> {
        let names: Vec<&str> = claim.task_names.iter().map(|n| n.as_str()).collect();
        let by_name = if names.is_empty() {
            ""
        } else {
            "AND t.task_name = ANY ($8)"
        };
        let sql = format!(
            "WITH picked AS (
                SELECT t.organization_id, t.id FROM task_executions AS t
                WHERE t.organization_id = $1 AND t.status = 'queued'
                  AND (t.not_before IS NULL OR t.not_before <= $2) {by_name}
                ORDER BY t.priority DESC, t.created_at, t.id
                LIMIT $3
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE task_executions AS t SET
                    status = 'running', worker_id = $4, lease_expires_at = $5,
                    heartbeat_at = $2, started_at = $2, updated_at = $2,
                    modified_by = $6, version = t.version + 1
                FROM picked AS p
                WHERE t.organization_id = p.organization_id AND t.id = p.id
                RETURNING t.*
            ), recorded AS (
                INSERT INTO task_execution_events
                    (organization_id, task_execution_id, from_status, to_status, actor, reason, created_at)
                SELECT c.organization_id, c.id, 'queued', 'running', $6, $7, $2 FROM claimed AS c
            )
            SELECT * FROM claimed ORDER BY priority DESC, created_at, id"
        );
        let mut query = diesel::sql_query(sql)
            .into_boxed()
            .bind::<SqlUuid, _>(self.org())
            .bind::<Timestamptz, _>(claim.at)
            .bind::<Int8, _>(i64::try_from(claim.limit).unwrap_or(i64::MAX))
            .bind::<Text, _>(claim.worker_id.as_str().to_owned())
            .bind::<Timestamptz, _>(claim.lease_expires_at)
            .bind::<Text, _>(claim.actor.to_string())
            .bind::<Text, _>(claim.reason());
        if !names.is_empty() {
            query = query.bind::<Array<Text>, _>(names);
        }
        let result = query
            .load::<TaskExecutionRow>(self.conn)
            .map_err(StoreError::from)
            .and_then(|rows| {
                Ok(rows
                    .into_iter()
                    .map(TaskExecution::try_from)
                    .collect::<Result<Vec<_>, _>>()?)
            });
        self.done(result)
    }

    fn next_due(&mut self, claim: &Claim) -> Result<Option<DateTime<Utc>>, RepoError> {
        let mut query = te::table
            .filter(te::organization_id.eq(self.org()))
            .filter(te::status.eq(TaskStatus::Queued.as_str()))
            .filter(te::not_before.gt(claim.at))
            .into_boxed();
        if !claim.task_names.is_empty() {
            let names: Vec<&str> = claim.task_names.iter().map(|n| n.as_str()).collect();
            query = query.filter(te::task_name.eq_any(names));
        }
        let result = query
            .select(te::not_before)
            .order(te::not_before.asc())
            .first::<Option<DateTime<Utc>>>(self.conn)
            .optional()
            .map(Option::flatten)
            .map_err(StoreError::from);
        self.done(result)
    }

    fn heartbeat(&mut self, beat: &Heartbeat) -> Result<ChangeOutcome, RepoError> {
        let org = self.org();
        let id = beat.task_execution_id.into_uuid();
        let result = diesel::update(
            te::table
                .filter(te::organization_id.eq(org))
                .filter(te::id.eq(id))
                .filter(te::status.eq(TaskStatus::Running.as_str()))
                .filter(te::worker_id.eq(beat.worker_id.as_str())),
        )
        .set((
            te::lease_expires_at.eq(beat.lease_expires_at),
            te::heartbeat_at.eq(beat.at),
        ))
        .returning(TaskExecutionRow::as_returning())
        .get_result(self.conn)
        .optional()
        .map_err(StoreError::from)
        .and_then(|row| Ok(row.map(TaskExecution::try_from).transpose()?));
        match self.done(result)? {
            Some(after) => Ok(ChangeOutcome::Changed(after)),
            None => Ok(ChangeOutcome::Refused(
                self.task_row(beat.task_execution_id, false)?,
            )),
        }
    }
}

/// Whether two changes differ only in their row, output or error, and
/// worker: one statement can apply both.
fn same_shape(a: &StatusChange, b: &StatusChange) -> bool {
    let kind = |c: &StatusChange| match c.result {
        ResultWrite::Keep => 0,
        ResultWrite::Output(_) => 1,
        ResultWrite::Error(_) => 2,
    };
    a.to == b.to
        && a.modified_by == b.modified_by
        && a.at == b.at
        && a.starts == b.starts
        && a.finishes == b.finishes
        && kind(a) == kind(b)
        && a.from == b.from
        && a.reason == b.reason
        && matches!((&a.if_match, &b.if_match), (IfMatch::Any, IfMatch::Any))
}

/// A row of [`TenantTx::change_many`]'s statement.
#[derive(QueryableByName)]
struct ChangedInBatch {
    #[diesel(sql_type = Int8)]
    ord: i64,
    #[diesel(sql_type = Bool)]
    changed: bool,
    #[diesel(embed)]
    row: TaskExecutionRow,
}
