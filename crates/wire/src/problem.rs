//! RFC 9457 problem details, the body of every error answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::executions::Status;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// A path into the body, e.g. `tasks[2].task_name`; in a flow
    /// definition, a JSON pointer (`/tasks/2/depends_on/0`).
    pub field: String,
    pub message: String,
    /// In a flow definition: the kind of error (`unknown_field`,
    /// `missing_field`, `wrong_type`, `duplicate_task`,
    /// `unknown_dependency`, `cycle`, `template_syntax`,
    /// `unknown_reference`, `not_upstream`, `invalid_schema`, `syntax`,
    /// `too_many_errors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// In a flow definition: where in its text, 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub column: Option<usize>,
}

/// An error answer (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:flowexec:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable snake_case code.
    pub code: String,
    /// The request's id, as in the `X-Request-Id` response header.
    pub request_id: String,
    /// The invalid fields; present only for `validation_failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The task execution's status (`invalid_transition`,
    /// `retry_not_allowed`, `lease_lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_status: Option<Status>,
    /// The statuses it may move to from there (`invalid_transition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Status>>,
    /// The highest `execution_index` of the task, when a newer attempt than
    /// the one to retry exists (`retry_not_allowed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_execution_index: Option<i32>,
    /// The task execution's current `ETag` (`precondition_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_etag: Option<String>,
}
