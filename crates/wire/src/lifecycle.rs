//! The lifecycle of a task execution on the wire: status changes, retries
//! and the event history.

use chrono::{DateTime, Utc};
use flowexec_domain::{RecordedEvent, RetryRequest, Transition};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::executions::Status;
use crate::problem::FieldError;

/// Longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// A status change. Unknown fields are refused. Its published schema
/// (see the `PartialSchema` impl) is exact: one of three shapes, so that
/// every body the schema accepts is one the server accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatusBody {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The status names a change without a result may move to.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // A schema only.
#[serde(rename_all = "snake_case")]
enum PlainTarget {
    Running,
    Stale,
    Deleted,
}

/// `running` (from queued), `stale` (from completed or failed) or
/// `deleted` (from any but deleted).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // A schema only.
#[serde(deny_unknown_fields)]
struct PlainChange {
    #[schema(inline)]
    status: PlainTarget,
    /// Why, recorded on the event.
    #[schema(max_length = 1000, nullable = false)]
    reason: Option<String>,
}

/// `completed` (from running), with its output.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // A schema only.
#[serde(deny_unknown_fields)]
struct CompleteChange {
    #[schema(pattern = "^completed$")]
    status: String,
    /// The result: any JSON value; omitted or null for none.
    output: Option<Value>,
    /// Why, recorded on the event.
    #[schema(max_length = 1000, nullable = false)]
    reason: Option<String>,
}

/// `failed` (from running), with its error.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // A schema only.
#[serde(deny_unknown_fields)]
struct FailChange {
    #[schema(pattern = "^failed$")]
    status: String,
    /// The error: any JSON value; omitted or null for none.
    error: Option<Value>,
    /// Why, recorded on the event.
    #[schema(max_length = 1000, nullable = false)]
    reason: Option<String>,
}

impl utoipa::PartialSchema for ChangeStatusBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::OneOfBuilder;
        OneOfBuilder::new()
            .description(Some(
                "A status change: the status to move to, with `output` only for `completed` and `error` only for `failed`, and a reason. Nothing moves back to `queued`: a new attempt is a retry.",
            ))
            .item(<PlainChange as utoipa::PartialSchema>::schema())
            .item(<CompleteChange as utoipa::PartialSchema>::schema())
            .item(<FailChange as utoipa::PartialSchema>::schema())
            .into()
    }
}

impl ToSchema for ChangeStatusBody {}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
        ..FieldError::default()
    }
}

fn check_reason(reason: Option<&String>, errors: &mut Vec<FieldError>) {
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        errors.push(field_error(
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
}

impl ChangeStatusBody {
    /// The domain's transition and reason, or every invalid field at once.
    pub fn into_command(self) -> Result<(Transition, Option<String>), Vec<FieldError>> {
        let mut errors = Vec::new();
        let output = self.output.filter(|v| !v.is_null());
        let error = self.error.filter(|v| !v.is_null());
        if output.is_some() && self.status != Status::Completed {
            errors.push(field_error(
                "output",
                "may only be given with status completed",
            ));
        }
        if error.is_some() && self.status != Status::Failed {
            errors.push(field_error("error", "may only be given with status failed"));
        }
        check_reason(self.reason.as_ref(), &mut errors);
        let transition = match self.status {
            Status::Queued => {
                errors.push(field_error(
                    "status",
                    "nothing moves back to queued; retry the task execution instead (POST /task-executions/{id}/retries)",
                ));
                None
            }
            Status::Running => Some(Transition::Start),
            Status::Completed => Some(Transition::Complete { output }),
            Status::Failed => Some(Transition::Fail { error }),
            Status::Deleted => Some(Transition::Delete),
            Status::Stale => Some(Transition::MarkStale),
        };
        match transition {
            Some(transition) if errors.is_empty() => Ok((transition, self.reason)),
            _ => Err(errors),
        }
    }
}

/// A retry: the next attempt of a task. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// The new attempt's input: any JSON value. Omitted or null: the
    /// retried attempt's input is copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Why, recorded on the new attempt's creation event (default: "retry
    /// of attempt N").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

impl RetryBody {
    /// The domain's request (without a precondition), or every invalid
    /// field at once.
    pub fn into_command(self) -> Result<RetryRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        check_reason(self.reason.as_ref(), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RetryRequest {
            input: self.input.filter(|v| !v.is_null()).map(Some),
            reason: self.reason,
            ..RetryRequest::default()
        })
    }
}

/// One status change of a task execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventBody {
    /// Grows with every event of the organization.
    pub id: i64,
    /// The status before; null for the creation.
    pub from: Option<Status>,
    pub to: Status,
    /// Who made the change: `system`, a user UUID, `integration` or
    /// `service-account`.
    pub actor: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<RecordedEvent> for EventBody {
    fn from(recorded: RecordedEvent) -> Self {
        let event = recorded.event;
        Self {
            id: recorded.id,
            from: event.from.map(Into::into),
            to: event.to.into(),
            actor: event.actor.to_string(),
            reason: event.reason,
            created_at: event.created_at,
        }
    }
}

/// A page of a task execution's history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventPageBody {
    pub events: Vec<EventBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(value: Value) -> Result<(Transition, Option<String>), Vec<FieldError>> {
        serde_json::from_value::<ChangeStatusBody>(value)
            .map_err(|e| vec![field_error("body", e.to_string())])?
            .into_command()
    }

    fn fields(result: Result<(Transition, Option<String>), Vec<FieldError>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn each_status_is_its_transition_with_only_its_own_payload() {
        assert_eq!(
            change(json!({"status": "completed", "output": [1], "reason": "done"})),
            Ok((
                Transition::Complete {
                    output: Some(json!([1]))
                },
                Some("done".to_owned())
            ))
        );
        assert_eq!(
            change(json!({"status": "failed", "error": null})),
            Ok((Transition::Fail { error: None }, None))
        );
        assert_eq!(
            change(json!({"status": "running"})),
            Ok((Transition::Start, None))
        );
        assert_eq!(
            change(json!({"status": "stale"})),
            Ok((Transition::MarkStale, None))
        );
        assert_eq!(
            change(json!({"status": "deleted"})),
            Ok((Transition::Delete, None))
        );
    }

    #[test]
    fn every_misplaced_field_is_listed_at_once() {
        assert_eq!(
            fields(change(json!({
                "status": "running", "output": 1, "error": {"e": 1}, "reason": "x".repeat(1001)
            }))),
            ["output", "error", "reason"]
        );
        assert_eq!(fields(change(json!({"status": "queued"}))), ["status"]);
        assert_eq!(
            fields(change(json!({"status": "running", "extra": 1}))),
            ["body"]
        );
    }

    #[test]
    fn a_retry_copies_the_input_unless_one_is_given() {
        let copy = RetryBody::default().into_command();
        assert_eq!(copy.map(|r| r.input), Ok(None));
        let given = RetryBody {
            input: Some(json!({"day": 2})),
            reason: None,
        }
        .into_command();
        assert_eq!(given.map(|r| r.input), Ok(Some(Some(json!({"day": 2})))));
        let long = RetryBody {
            input: None,
            reason: Some("é".repeat(1001)),
        }
        .into_command();
        assert_eq!(long.err().map(|e| e.len()), Some(1));
    }
}
