//! Rows, and their mapping to domain types: written once for both stores.
//! PostgreSQL reads and writes these structs directly (hence the diesel
//! derives, with the `postgres` feature); the SQLite store converts its
//! text-typed rows into them. PostgreSQL's own shapes (a function's result
//! tuple, insert rows) are in `postgres/rows.rs`. These types never leave
//! the crate.

use chrono::{DateTime, Utc};
#[cfg(feature = "postgres")]
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use flowexec_domain::{
    Actor, ApiKeyCredentials, ApiKeyId, ApiKeyInfo, Flow, FlowExecution, FlowExecutionId, FlowName,
    FlowVersion, Lease, Organization, OrganizationId, OrganizationName, RecordedEvent, RetryPolicy,
    Role, RunOptions, TaskExecution, TaskExecutionEvent, TaskExecutionId, TaskName, WorkerId,
};
use serde_json::Value;
use uuid::Uuid;

use crate::error::corrupt;
#[cfg(feature = "postgres")]
use crate::postgres::schema::{
    flow_executions, flow_versions, flows, organizations, task_execution_events, task_executions,
};

pub(crate) fn parse<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, DieselError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| corrupt(what, e))
}

#[cfg_attr(
    feature = "postgres",
    derive(Queryable, Selectable, QueryableByName, Insertable),
    diesel(table_name = task_executions, check_for_backend(diesel::pg::Pg))
)]
pub(crate) struct TaskExecutionRow {
    pub(crate) organization_id: Uuid,
    pub(crate) id: Uuid,
    pub(crate) flow_execution_id: Uuid,
    pub(crate) task_name: String,
    pub(crate) execution_index: i32,
    pub(crate) status: String,
    pub(crate) input: Option<Value>,
    pub(crate) output: Option<Value>,
    pub(crate) error: Option<Value>,
    pub(crate) modified_by: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    pub(crate) version: i64,
    pub(crate) worker_id: Option<String>,
    pub(crate) lease_expires_at: Option<DateTime<Utc>>,
    pub(crate) heartbeat_at: Option<DateTime<Utc>>,
    pub(crate) not_before: Option<DateTime<Utc>>,
    pub(crate) priority: i32,
    pub(crate) timeout_seconds: Option<i32>,
    pub(crate) retry_policy: Option<Value>,
    pub(crate) iteration: Option<i32>,
}

impl TryFrom<TaskExecutionRow> for TaskExecution {
    type Error = DieselError;

    fn try_from(row: TaskExecutionRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: TaskExecutionId::from_uuid(row.id),
            flow_execution_id: FlowExecutionId::from_uuid(row.flow_execution_id),
            organization_id: OrganizationId::from_uuid(row.organization_id),
            task_name: TaskName::parse(row.task_name).map_err(|e| corrupt("task name", e))?,
            execution_index: row.execution_index,
            status: parse("status", &row.status)?,
            input: row.input,
            output: row.output,
            error: row.error,
            modified_by: parse("modified_by", &row.modified_by)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            version: row.version,
            run: RunOptions {
                priority: row.priority,
                timeout_seconds: row
                    .timeout_seconds
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|e| corrupt("timeout_seconds", e))?,
                retry: row
                    .retry_policy
                    .map(serde_json::from_value::<RetryPolicy>)
                    .transpose()
                    .map_err(|e| corrupt("retry_policy", e))?,
            },
            not_before: row.not_before,
            lease: Lease {
                worker_id: row
                    .worker_id
                    .map(WorkerId::parse)
                    .transpose()
                    .map_err(|e| corrupt("worker_id", e))?,
                expires_at: row.lease_expires_at,
                heartbeat_at: row.heartbeat_at,
            },
            iteration: row.iteration,
        })
    }
}

impl From<&TaskExecution> for TaskExecutionRow {
    fn from(task: &TaskExecution) -> Self {
        Self {
            organization_id: task.organization_id.into_uuid(),
            id: task.id.into_uuid(),
            flow_execution_id: task.flow_execution_id.into_uuid(),
            task_name: task.task_name.as_str().to_owned(),
            execution_index: task.execution_index,
            status: task.status.as_str().to_owned(),
            input: task.input.clone(),
            output: task.output.clone(),
            error: task.error.clone(),
            modified_by: task.modified_by.to_string(),
            created_at: task.created_at,
            updated_at: task.updated_at,
            started_at: task.started_at,
            completed_at: task.completed_at,
            version: task.version,
            worker_id: task.lease.worker_id.as_ref().map(|w| w.as_str().to_owned()),
            lease_expires_at: task.lease.expires_at,
            heartbeat_at: task.lease.heartbeat_at,
            not_before: task.not_before,
            priority: task.run.priority,
            // Bounded by RunOptions::validate, far below i32::MAX.
            timeout_seconds: task
                .run
                .timeout_seconds
                .map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            retry_policy: task
                .run
                .retry
                .map(|p| serde_json::to_value(p).unwrap_or(Value::Null)),
            iteration: task.iteration,
        }
    }
}

#[cfg_attr(
    feature = "postgres",
    derive(Queryable, Selectable, Insertable),
    diesel(table_name = flow_executions, check_for_backend(diesel::pg::Pg))
)]
pub(crate) struct FlowExecutionRow {
    pub(crate) organization_id: Uuid,
    pub(crate) id: Uuid,
    pub(crate) flow_name: String,
    pub(crate) input: Option<Value>,
    pub(crate) modified_by: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) flow_version: Option<i32>,
    pub(crate) status: String,
}

impl TryFrom<FlowExecutionRow> for FlowExecution {
    type Error = DieselError;

    fn try_from(row: FlowExecutionRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: FlowExecutionId::from_uuid(row.id),
            organization_id: OrganizationId::from_uuid(row.organization_id),
            flow_name: FlowName::parse(row.flow_name).map_err(|e| corrupt("flow name", e))?,
            flow_version: row.flow_version,
            input: row.input,
            status: parse("flow status", &row.status)?,
            modified_by: parse("modified_by", &row.modified_by)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl From<&FlowExecution> for FlowExecutionRow {
    fn from(flow: &FlowExecution) -> Self {
        Self {
            organization_id: flow.organization_id.into_uuid(),
            id: flow.id.into_uuid(),
            flow_name: flow.flow_name.as_str().to_owned(),
            input: flow.input.clone(),
            modified_by: flow.modified_by.to_string(),
            created_at: flow.created_at,
            updated_at: flow.updated_at,
            flow_version: flow.flow_version,
            status: flow.status.as_str().to_owned(),
        }
    }
}

#[cfg_attr(
    feature = "postgres",
    derive(Queryable, Selectable, Insertable, AsChangeset),
    diesel(table_name = flows, check_for_backend(diesel::pg::Pg))
)]
pub(crate) struct FlowRow {
    pub(crate) organization_id: Uuid,
    pub(crate) name: String,
    pub(crate) latest_version: i32,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    #[cfg_attr(feature = "postgres", diesel(treat_none_as_null = true))]
    pub(crate) deleted_at: Option<DateTime<Utc>>,
}

impl FlowRow {
    pub(crate) fn new(organization_id: OrganizationId, flow: &Flow) -> Self {
        Self {
            organization_id: organization_id.into_uuid(),
            name: flow.name.as_str().to_owned(),
            latest_version: flow.latest_version,
            created_at: flow.created_at,
            updated_at: flow.updated_at,
            deleted_at: flow.deleted_at,
        }
    }
}

impl TryFrom<FlowRow> for Flow {
    type Error = DieselError;

    fn try_from(row: FlowRow) -> Result<Self, Self::Error> {
        Ok(Self {
            name: FlowName::parse(row.name).map_err(|e| corrupt("flow name", e))?,
            latest_version: row.latest_version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

#[cfg_attr(
    feature = "postgres",
    derive(Queryable, Selectable, Insertable),
    diesel(table_name = flow_versions, check_for_backend(diesel::pg::Pg))
)]
pub(crate) struct FlowVersionRow {
    pub(crate) organization_id: Uuid,
    pub(crate) name: String,
    pub(crate) version: i32,
    pub(crate) source: String,
    pub(crate) document: Value,
    pub(crate) created_by: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl FlowVersionRow {
    pub(crate) fn new(organization_id: OrganizationId, version: &FlowVersion) -> Self {
        Self {
            organization_id: organization_id.into_uuid(),
            name: version.name.as_str().to_owned(),
            version: version.version,
            source: version.source.clone(),
            document: version.document.clone(),
            created_by: version.created_by.to_string(),
            created_at: version.created_at,
        }
    }
}

impl TryFrom<FlowVersionRow> for FlowVersion {
    type Error = DieselError;

    fn try_from(row: FlowVersionRow) -> Result<Self, Self::Error> {
        Ok(Self {
            name: FlowName::parse(row.name).map_err(|e| corrupt("flow name", e))?,
            version: row.version,
            source: row.source,
            document: row.document,
            created_by: parse("created_by", &row.created_by)?,
            created_at: row.created_at,
        })
    }
}

#[cfg_attr(
    feature = "postgres",
    derive(Queryable, Selectable),
    diesel(table_name = task_execution_events, check_for_backend(diesel::pg::Pg))
)]
pub(crate) struct EventRow {
    pub id: i64,
    pub task_execution_id: Uuid,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = DieselError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            event: TaskExecutionEvent {
                task_execution_id: TaskExecutionId::from_uuid(row.task_execution_id),
                from: row
                    .from_status
                    .as_deref()
                    .map(|s| parse("status", s))
                    .transpose()?,
                to: parse("status", &row.to_status)?,
                actor: parse("actor", &row.actor)?,
                reason: row.reason,
                created_at: row.created_at,
            },
        })
    }
}

#[cfg_attr(
    feature = "postgres",
    derive(Queryable, Selectable, Insertable),
    diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))
)]
pub(crate) struct OrganizationRow {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl From<&Organization> for OrganizationRow {
    fn from(organization: &Organization) -> Self {
        Self {
            id: organization.id.into_uuid(),
            name: organization.name.as_str().to_owned(),
            created_at: organization.created_at,
        }
    }
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = DieselError;

    fn try_from(row: OrganizationRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: OrganizationId::from_uuid(row.id),
            name: OrganizationName::parse(row.name).map_err(|e| corrupt("organization name", e))?,
            created_at: row.created_at,
        })
    }
}

/// A row of `flowexec_find_api_key(uuid)`: organization id, role, actor,
/// secret hash.
pub(crate) struct ApiKeyLookupRow(pub (Uuid, String, String, Vec<u8>));

impl ApiKeyLookupRow {
    pub(crate) fn into_credentials(self, id: ApiKeyId) -> Result<ApiKeyCredentials, DieselError> {
        let (organization_id, role, actor, secret_sha256) = self.0;
        Ok(ApiKeyCredentials {
            id,
            organization_id: OrganizationId::from_uuid(organization_id),
            role: parse::<Role>("role", &role)?,
            actor: parse::<Actor>("actor", &actor)?,
            secret_sha256: secret_sha256
                .try_into()
                .map_err(|_| corrupt("key hash", "not 32 bytes"))?,
        })
    }
}

/// A key as shown (no secret): `(id, organization_id, role, actor,
/// created_at, revoked_at)`.
pub(crate) type ApiKeyInfoTuple = (
    Uuid,
    Uuid,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

pub(crate) fn api_key_info(row: ApiKeyInfoTuple) -> Result<ApiKeyInfo, DieselError> {
    let (id, organization_id, role, actor, created_at, revoked_at) = row;
    Ok(ApiKeyInfo {
        id: ApiKeyId::from_uuid(id),
        organization_id: OrganizationId::from_uuid(organization_id),
        role: parse("role", &role)?,
        actor: parse("actor", &actor)?,
        created_at,
        revoked_at,
    })
}
