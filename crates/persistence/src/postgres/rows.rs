//! PostgreSQL's own row shapes: the result of `flowexec_get_task_execution`
//! (an explicit column list decoded as a tuple) and the insert rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use flowexec_domain::{NewApiKey, OrganizationId, TaskExecutionEvent, TaskStatus};
use serde_json::Value;
use uuid::Uuid;

use super::schema::{api_keys, task_execution_events};
use crate::rows::TaskExecutionRow;

/// The SQL types of a task execution as `flowexec_get_task_execution`
/// returns it: its explicit column list, in that order (see
/// migrations/postgres/…_flows).
pub(crate) type TaskExecutionRecord = (
    diesel::sql_types::Uuid,
    diesel::sql_types::Uuid,
    diesel::sql_types::Uuid,
    diesel::sql_types::Text,
    diesel::sql_types::Int4,
    diesel::sql_types::Text,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Text,
    diesel::sql_types::Timestamptz,
    diesel::sql_types::Timestamptz,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Int8,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Int4,
    diesel::sql_types::Nullable<diesel::sql_types::Int4>,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Nullable<diesel::sql_types::Int4>,
);

/// What `flowexec_change_status` returns: the row's columns, then whether
/// the change applied.
pub(crate) type ChangedRecord = (
    diesel::sql_types::Uuid,
    diesel::sql_types::Uuid,
    diesel::sql_types::Uuid,
    diesel::sql_types::Text,
    diesel::sql_types::Int4,
    diesel::sql_types::Text,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Text,
    diesel::sql_types::Timestamptz,
    diesel::sql_types::Timestamptz,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Int8,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    diesel::sql_types::Int4,
    diesel::sql_types::Nullable<diesel::sql_types::Int4>,
    diesel::sql_types::Nullable<diesel::sql_types::Jsonb>,
    diesel::sql_types::Nullable<diesel::sql_types::Int4>,
    diesel::sql_types::Bool,
);

/// The Rust values of a [`TaskExecutionRecord`].
pub(crate) type TaskExecutionTuple = (
    Uuid,
    Uuid,
    Uuid,
    String,
    i32,
    String,
    Option<Value>,
    Option<Value>,
    Option<Value>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i64,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i32,
    Option<i32>,
    Option<Value>,
    Option<i32>,
);

/// The Rust values of a [`ChangedRecord`].
pub(crate) type ChangedTuple = (
    Uuid,
    Uuid,
    Uuid,
    String,
    i32,
    String,
    Option<Value>,
    Option<Value>,
    Option<Value>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i64,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i32,
    Option<i32>,
    Option<Value>,
    Option<i32>,
    bool,
);

impl From<TaskExecutionTuple> for TaskExecutionRow {
    fn from(t: TaskExecutionTuple) -> Self {
        Self {
            organization_id: t.0,
            id: t.1,
            flow_execution_id: t.2,
            task_name: t.3,
            execution_index: t.4,
            status: t.5,
            input: t.6,
            output: t.7,
            error: t.8,
            modified_by: t.9,
            created_at: t.10,
            updated_at: t.11,
            started_at: t.12,
            completed_at: t.13,
            version: t.14,
            worker_id: t.15,
            lease_expires_at: t.16,
            heartbeat_at: t.17,
            not_before: t.18,
            priority: t.19,
            timeout_seconds: t.20,
            retry_policy: t.21,
            iteration: t.22,
        }
    }
}

/// The row of a [`ChangedTuple`], and whether the change applied.
pub(crate) fn changed_row(t: ChangedTuple) -> (TaskExecutionRow, bool) {
    let row = (
        t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9, t.10, t.11, t.12, t.13, t.14, t.15, t.16,
        t.17, t.18, t.19, t.20, t.21, t.22,
    );
    (row.into(), t.23)
}

#[derive(Insertable)]
#[diesel(table_name = task_execution_events)]
pub(crate) struct NewEventRow<'a> {
    pub organization_id: Uuid,
    pub task_execution_id: Uuid,
    pub from_status: Option<&'static str>,
    pub to_status: &'static str,
    pub actor: String,
    pub reason: Option<&'a str>,
    pub created_at: DateTime<Utc>,
}

impl<'a> NewEventRow<'a> {
    pub(crate) fn new(organization_id: OrganizationId, event: &'a TaskExecutionEvent) -> Self {
        Self {
            organization_id: organization_id.into_uuid(),
            task_execution_id: event.task_execution_id.into_uuid(),
            from_status: event.from.map(TaskStatus::as_str),
            to_status: event.to.as_str(),
            actor: event.actor.to_string(),
            reason: event.reason.as_deref(),
            created_at: event.created_at,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
pub(crate) struct NewApiKeyRow<'a> {
    pub(crate) id: Uuid,
    pub(crate) organization_id: Uuid,
    pub(crate) role: &'static str,
    pub(crate) actor: String,
    pub(crate) secret_sha256: &'a [u8],
    pub(crate) created_at: DateTime<Utc>,
}

impl<'a> From<&'a NewApiKey> for NewApiKeyRow<'a> {
    fn from(key: &'a NewApiKey) -> Self {
        Self {
            id: key.id.into_uuid(),
            organization_id: key.organization_id.into_uuid(),
            role: key.role.as_str(),
            actor: key.actor.to_string(),
            secret_sha256: &key.secret_sha256,
            created_at: key.created_at,
        }
    }
}
