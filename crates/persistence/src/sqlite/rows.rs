//! SQLite rows: the same columns as the shared rows (`crate::rows`), with
//! UUIDs and JSON as text. Converting into the shared rows is the only
//! SQLite-specific mapping; from there the domain mapping is shared.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use flowexec_domain::{FlowExecution, TaskExecution, TaskExecutionEvent, TaskStatus};
use serde_json::Value;
use uuid::Uuid;

use super::schema::{
    flow_executions, flow_versions, flows, organizations, task_execution_events, task_executions,
};
use crate::error::corrupt;
use crate::rows::{
    EventRow, FlowExecutionRow, FlowRow, FlowVersionRow, OrganizationRow, TaskExecutionRow,
};

pub(crate) fn uuid(text: &str) -> Result<Uuid, DieselError> {
    Uuid::parse_str(text).map_err(|e| corrupt("UUID", e))
}

pub(crate) fn json(text: Option<String>) -> Result<Option<Value>, DieselError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt("JSON", e)))
        .transpose()
}

/// JSON as stored: serde_json's serialization of the value, which is also
/// what PostgreSQL's `jsonb` returns it as once read back into a value.
pub(crate) fn json_text(value: Option<&Value>) -> Option<String> {
    value.map(Value::to_string)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = task_executions, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SqliteTaskExecutionRow {
    organization_id: String,
    id: String,
    flow_execution_id: String,
    task_name: String,
    execution_index: i32,
    status: String,
    input: Option<String>,
    output: Option<String>,
    error: Option<String>,
    modified_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
    worker_id: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    heartbeat_at: Option<DateTime<Utc>>,
    not_before: Option<DateTime<Utc>>,
    priority: i32,
    timeout_seconds: Option<i32>,
    retry_policy: Option<String>,
    iteration: Option<i32>,
}

impl TryFrom<SqliteTaskExecutionRow> for TaskExecutionRow {
    type Error = DieselError;

    fn try_from(row: SqliteTaskExecutionRow) -> Result<Self, Self::Error> {
        Ok(Self {
            organization_id: uuid(&row.organization_id)?,
            id: uuid(&row.id)?,
            flow_execution_id: uuid(&row.flow_execution_id)?,
            task_name: row.task_name,
            execution_index: row.execution_index,
            status: row.status,
            input: json(row.input)?,
            output: json(row.output)?,
            error: json(row.error)?,
            modified_by: row.modified_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            version: row.version,
            worker_id: row.worker_id,
            lease_expires_at: row.lease_expires_at,
            heartbeat_at: row.heartbeat_at,
            not_before: row.not_before,
            priority: row.priority,
            timeout_seconds: row.timeout_seconds,
            retry_policy: json(row.retry_policy)?,
            iteration: row.iteration,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = task_executions, treat_none_as_default_value = false)]
pub(crate) struct NewSqliteTaskExecutionRow {
    organization_id: String,
    id: String,
    flow_execution_id: String,
    task_name: String,
    execution_index: i32,
    status: &'static str,
    input: Option<String>,
    output: Option<String>,
    error: Option<String>,
    modified_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
    worker_id: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    heartbeat_at: Option<DateTime<Utc>>,
    not_before: Option<DateTime<Utc>>,
    priority: i32,
    timeout_seconds: Option<i32>,
    retry_policy: Option<String>,
    iteration: Option<i32>,
}

impl From<&TaskExecution> for NewSqliteTaskExecutionRow {
    fn from(task: &TaskExecution) -> Self {
        // The shared row maps the domain's fields once; here only UUIDs
        // and JSON become text.
        let row = TaskExecutionRow::from(task);
        Self {
            organization_id: row.organization_id.to_string(),
            id: row.id.to_string(),
            flow_execution_id: row.flow_execution_id.to_string(),
            task_name: row.task_name,
            execution_index: row.execution_index,
            status: task.status.as_str(),
            input: json_text(row.input.as_ref()),
            output: json_text(row.output.as_ref()),
            error: json_text(row.error.as_ref()),
            modified_by: row.modified_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            version: row.version,
            worker_id: row.worker_id,
            lease_expires_at: row.lease_expires_at,
            heartbeat_at: row.heartbeat_at,
            not_before: row.not_before,
            priority: row.priority,
            timeout_seconds: row.timeout_seconds,
            retry_policy: json_text(row.retry_policy.as_ref()),
            iteration: row.iteration,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = flow_executions, treat_none_as_default_value = false)]
pub(crate) struct NewSqliteFlowExecutionRow {
    organization_id: String,
    id: String,
    flow_name: String,
    input: Option<String>,
    modified_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    flow_version: Option<i32>,
    status: &'static str,
}

impl From<&FlowExecution> for NewSqliteFlowExecutionRow {
    fn from(flow: &FlowExecution) -> Self {
        Self {
            organization_id: flow.organization_id.to_string(),
            id: flow.id.to_string(),
            flow_name: flow.flow_name.as_str().to_owned(),
            input: json_text(flow.input.as_ref()),
            modified_by: flow.modified_by.to_string(),
            created_at: flow.created_at,
            updated_at: flow.updated_at,
            flow_version: flow.flow_version,
            status: flow.status.as_str(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = flow_executions, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SqliteFlowExecutionRow {
    organization_id: String,
    id: String,
    flow_name: String,
    input: Option<String>,
    modified_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    flow_version: Option<i32>,
    status: String,
}

impl TryFrom<SqliteFlowExecutionRow> for FlowExecutionRow {
    type Error = DieselError;

    fn try_from(row: SqliteFlowExecutionRow) -> Result<Self, Self::Error> {
        Ok(Self {
            organization_id: uuid(&row.organization_id)?,
            id: uuid(&row.id)?,
            flow_name: row.flow_name,
            input: json(row.input)?,
            modified_by: row.modified_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            flow_version: row.flow_version,
            status: row.status,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = task_execution_events, treat_none_as_default_value = false)]
pub(crate) struct NewSqliteEventRow<'a> {
    organization_id: &'a str,
    task_execution_id: String,
    from_status: Option<&'static str>,
    to_status: &'static str,
    actor: String,
    reason: Option<&'a str>,
    created_at: DateTime<Utc>,
}

impl<'a> NewSqliteEventRow<'a> {
    pub(crate) fn new(organization_id: &'a str, event: &'a TaskExecutionEvent) -> Self {
        Self {
            organization_id,
            task_execution_id: event.task_execution_id.to_string(),
            from_status: event.from.map(TaskStatus::as_str),
            to_status: event.to.as_str(),
            actor: event.actor.to_string(),
            reason: event.reason.as_deref(),
            created_at: event.created_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = task_execution_events, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SqliteEventRow {
    id: i64,
    task_execution_id: String,
    from_status: Option<String>,
    to_status: String,
    actor: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<SqliteEventRow> for EventRow {
    type Error = DieselError;

    fn try_from(row: SqliteEventRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            task_execution_id: uuid(&row.task_execution_id)?,
            from_status: row.from_status,
            to_status: row.to_status,
            actor: row.actor,
            reason: row.reason,
            created_at: row.created_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = organizations, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SqliteOrganizationRow {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<SqliteOrganizationRow> for OrganizationRow {
    type Error = DieselError;

    fn try_from(row: SqliteOrganizationRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: uuid(&row.id)?,
            name: row.name,
            created_at: row.created_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = flows, check_for_backend(diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true)]
pub(crate) struct SqliteFlowRow {
    organization_id: String,
    name: String,
    latest_version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<FlowRow> for SqliteFlowRow {
    fn from(row: FlowRow) -> Self {
        Self {
            organization_id: row.organization_id.to_string(),
            name: row.name,
            latest_version: row.latest_version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

impl TryFrom<SqliteFlowRow> for FlowRow {
    type Error = DieselError;

    fn try_from(row: SqliteFlowRow) -> Result<Self, Self::Error> {
        Ok(Self {
            organization_id: uuid(&row.organization_id)?,
            name: row.name,
            latest_version: row.latest_version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = flow_versions, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SqliteFlowVersionRow {
    organization_id: String,
    name: String,
    version: i32,
    source: String,
    document: String,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl From<FlowVersionRow> for SqliteFlowVersionRow {
    fn from(row: FlowVersionRow) -> Self {
        Self {
            organization_id: row.organization_id.to_string(),
            name: row.name,
            version: row.version,
            source: row.source,
            document: row.document.to_string(),
            created_by: row.created_by,
            created_at: row.created_at,
        }
    }
}

impl TryFrom<SqliteFlowVersionRow> for FlowVersionRow {
    type Error = DieselError;

    fn try_from(row: SqliteFlowVersionRow) -> Result<Self, Self::Error> {
        Ok(Self {
            organization_id: uuid(&row.organization_id)?,
            name: row.name,
            version: row.version,
            source: row.source,
            document: json(Some(row.document))?.unwrap_or(Value::Null),
            created_by: row.created_by,
            created_at: row.created_at,
        })
    }
}
