//! The worker protocol on the wire: claims, heartbeats, results; and how a
//! task is run (its retry policy).

use flowexec_domain::{Backoff, Jitter, RetryPolicy, TaskExecutionId, TaskName, WorkerId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::executions::TaskExecutionBody;
use crate::number::{integral, optional_integral};
use crate::problem::{FieldError, Problem};

/// Defaults of a claim.
pub const DEFAULT_CLAIM_LIMIT: usize = 1;
pub const DEFAULT_LEASE_SECONDS: u32 = 60;
/// The longest a claim may wait for work, in seconds.
pub const MAX_WAIT_SECONDS: u32 = 30;
/// Most results one batch may report.
pub const MAX_RESULTS: usize = 500;

fn worker_id(text: String, field: &str, errors: &mut Vec<FieldError>) -> Option<WorkerId> {
    WorkerId::parse(text)
        .map_err(|e| {
            errors.push(FieldError {
                field: field.to_owned(),
                message: e.to_string(),
                ..FieldError::default()
            })
        })
        .ok()
}

/// A task name, as an item of a list: 1–128 characters of `A-Z a-z 0-9 _
/// - .`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskNameText(pub String);

impl utoipa::PartialSchema for TaskNameText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(flowexec_domain::names::MAX_IDENTIFIER_LEN))
            .pattern(Some(flowexec_domain::names::IDENTIFIER_PATTERN))
            .examples([serde_json::json!("extract")])
            .into()
    }
}

impl ToSchema for TaskNameText {}

/// A claim: up to `limit` queued tasks for the worker `worker_id`, each
/// leased to it for `lease_seconds`. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// The worker's name for itself (1–200 characters, no control
    /// characters, not padded); its reports must carry the same.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$",
        example = "host-1/pid-4242"
    )]
    pub worker_id: String,
    /// Only tasks of these names; omitted or empty: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 100)]
    pub task_names: Option<Vec<TaskNameText>>,
    /// How many tasks at most (default 1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_integral"
    )]
    #[schema(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// How long the worker holds each task without a heartbeat (default 60).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_integral"
    )]
    #[schema(minimum = 5, maximum = 3600)]
    pub lease_seconds: Option<u32>,
    /// When nothing is claimable: how long to wait for work before
    /// answering an empty list (default 0: answer at once).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_integral"
    )]
    #[schema(minimum = 0, maximum = 30)]
    pub wait_seconds: Option<u32>,
}

/// A claim, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCommand {
    pub worker_id: WorkerId,
    pub task_names: Vec<TaskName>,
    pub limit: usize,
    pub lease_seconds: u32,
    pub wait_seconds: u32,
}

impl ClaimBody {
    /// The claim, or every invalid field at once.
    pub fn into_command(self) -> Result<ClaimCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let worker_id = worker_id(self.worker_id, "worker_id", &mut errors);
        let mut task_names = Vec::new();
        for (i, name) in self.task_names.unwrap_or_default().into_iter().enumerate() {
            match TaskName::parse(name.0) {
                Ok(name) => task_names.push(name),
                Err(e) => errors.push(FieldError {
                    field: format!("task_names[{i}]"),
                    message: e.to_string(),
                    ..FieldError::default()
                }),
            }
        }
        match worker_id {
            Some(worker_id) if errors.is_empty() => Ok(ClaimCommand {
                worker_id,
                task_names,
                limit: self.limit.unwrap_or(DEFAULT_CLAIM_LIMIT),
                lease_seconds: self.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS),
                wait_seconds: self.wait_seconds.unwrap_or(0),
            }),
            _ => Err(errors),
        }
    }
}

/// The tasks a claim took (none: nothing was claimable in time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClaimedBody {
    pub task_executions: Vec<TaskExecutionBody>,
}

/// A heartbeat: the worker still works on the task; its lease now lapses
/// `lease_seconds` from now. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$",
        example = "host-1/pid-4242"
    )]
    pub worker_id: String,
    /// Default 60.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_integral"
    )]
    #[schema(minimum = 5, maximum = 3600)]
    pub lease_seconds: Option<u32>,
}

impl HeartbeatBody {
    /// The worker and the lease, or every invalid field at once.
    pub fn into_command(self) -> Result<(WorkerId, u32), Vec<FieldError>> {
        let mut errors = Vec::new();
        match worker_id(self.worker_id, "worker_id", &mut errors) {
            Some(worker) => Ok((worker, self.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS))),
            None => Err(errors),
        }
    }
}

/// A run that succeeded. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$",
        example = "host-1/pid-4242"
    )]
    pub worker_id: String,
    /// The result: any JSON value; omitted or null for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// A run that failed. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$",
        example = "host-1/pid-4242"
    )]
    pub worker_id: String,
    /// What went wrong: any JSON value (null for nothing to say); required.
    pub error: Value,
    /// false: never retried, whatever the task's policy (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

/// How a reported run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Completed,
    Failed,
}

/// One result of a batch: a run that completed (with `output`) or failed
/// (with `error`, and `retryable`). Unknown fields are refused. Its
/// published schema (see the `PartialSchema` impl) is exact: one of two
/// shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultBody {
    pub id: Uuid,
    pub worker_id: String,
    pub status: ResultStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

/// A run that completed.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // A schema only.
#[serde(deny_unknown_fields)]
struct CompletedResult {
    id: Uuid,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$",
        example = "host-1/pid-4242"
    )]
    worker_id: String,
    #[schema(pattern = "^completed$")]
    status: String,
    /// The result: any JSON value; omitted or null for none.
    output: Option<Value>,
}

/// A run that failed.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // A schema only.
#[serde(deny_unknown_fields)]
struct FailedResult {
    id: Uuid,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$",
        example = "host-1/pid-4242"
    )]
    worker_id: String,
    #[schema(pattern = "^failed$")]
    status: String,
    /// What went wrong: any JSON value (null for nothing to say); required.
    error: Value,
    /// false: never retried (default true).
    #[schema(nullable = false)]
    retryable: Option<bool>,
}

impl utoipa::PartialSchema for ResultBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::OneOfBuilder;
        OneOfBuilder::new()
            .description(Some(
                "One result: `completed` with `output`, or `failed` with `error` and `retryable`.",
            ))
            .item(<CompletedResult as utoipa::PartialSchema>::schema())
            .item(<FailedResult as utoipa::PartialSchema>::schema())
            .into()
    }
}

impl ToSchema for ResultBody {}

/// Up to 500 results in one request. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsBody {
    #[schema(min_items = 1, max_items = 500)]
    pub results: Vec<ResultBody>,
}

/// A worker's report, read: the task, the worker, and how the run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCommand {
    pub id: TaskExecutionId,
    pub worker_id: WorkerId,
    /// `Ok(output)`: completed; `Err((error, retryable))`: failed.
    pub outcome: Result<Option<Value>, (Option<Value>, bool)>,
}

impl CompleteBody {
    pub fn into_command(self, id: TaskExecutionId) -> Result<ReportCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        match worker_id(self.worker_id, "worker_id", &mut errors) {
            Some(worker_id) => Ok(ReportCommand {
                id,
                worker_id,
                outcome: Ok(self.output.filter(|v| !v.is_null())),
            }),
            None => Err(errors),
        }
    }
}

impl FailBody {
    pub fn into_command(self, id: TaskExecutionId) -> Result<ReportCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        match worker_id(self.worker_id, "worker_id", &mut errors) {
            Some(worker_id) => Ok(ReportCommand {
                id,
                worker_id,
                outcome: Err((
                    Some(self.error).filter(|v| !v.is_null()),
                    self.retryable.unwrap_or(true),
                )),
            }),
            None => Err(errors),
        }
    }
}

impl ResultsBody {
    /// Every report, or every invalid field at once (named
    /// `results[i].field`).
    pub fn into_command(self) -> Result<Vec<ReportCommand>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut reports = Vec::with_capacity(self.results.len());
        for (i, result) in self.results.into_iter().enumerate() {
            let at = |field: &str| format!("results[{i}].{field}");
            let output = result.output.filter(|v| !v.is_null());
            let error = result.error.filter(|v| !v.is_null());
            let misplaced = match result.status {
                ResultStatus::Completed => [
                    error
                        .is_some()
                        .then_some(("error", "may only be given with status failed")),
                    result
                        .retryable
                        .is_some()
                        .then_some(("retryable", "may only be given with status failed")),
                ],
                ResultStatus::Failed => [
                    output
                        .is_some()
                        .then_some(("output", "may only be given with status completed")),
                    None,
                ],
            };
            for (field, message) in misplaced.into_iter().flatten() {
                errors.push(FieldError {
                    field: at(field),
                    message: message.to_owned(),
                    ..FieldError::default()
                });
            }
            let worker = worker_id(result.worker_id, &at("worker_id"), &mut errors);
            if let Some(worker_id) = worker {
                reports.push(ReportCommand {
                    id: TaskExecutionId::from_uuid(result.id),
                    worker_id,
                    outcome: match result.status {
                        ResultStatus::Completed => Ok(output),
                        ResultStatus::Failed => Err((error, result.retryable.unwrap_or(true))),
                    },
                });
            }
        }
        if errors.is_empty() {
            Ok(reports)
        } else {
            Err(errors)
        }
    }
}

/// The answer to one result of a batch: `status` as the single-result call
/// would have answered (200, 404 or 409), with the task execution or the
/// problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultAnswerBody {
    pub id: Uuid,
    #[schema(example = 200)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_execution: Option<TaskExecutionBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// One answer per result, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultsAnswerBody {
    pub results: Vec<ResultAnswerBody>,
}

/// How the delay before a retry grows: `initial_ms` before the first retry,
/// times `factor` before each next one, never more than `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffBody {
    #[schema(minimum = 0, maximum = 86_400_000, example = 1000)]
    #[serde(deserialize_with = "integral")]
    pub initial_ms: u64,
    #[schema(minimum = 1, maximum = 10, example = 2.0)]
    pub factor: f64,
    /// At least `initial_ms`.
    #[schema(minimum = 0, maximum = 86_400_000, example = 60000)]
    #[serde(deserialize_with = "integral")]
    pub max_ms: u64,
}

/// `full`: each delay is drawn at random between 0 and the backoff, which
/// spreads the retries of tasks that failed together; `none`: the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JitterBody {
    Full,
    None,
}

/// A task's retry policy. A failed attempt (reported `retryable`, or whose
/// lease lapsed, or that ran out of time) is followed by the next one while
/// attempts remain, queued until its delay has passed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyBody {
    /// Attempts in all, the first run included: 1 means never retried.
    #[schema(minimum = 1, maximum = 100, example = 3)]
    #[serde(deserialize_with = "integral")]
    pub max_attempts: u32,
    pub backoff: BackoffBody,
    pub jitter: JitterBody,
}

impl From<RetryPolicy> for RetryPolicyBody {
    fn from(p: RetryPolicy) -> Self {
        Self {
            max_attempts: p.max_attempts,
            backoff: BackoffBody {
                initial_ms: p.backoff.initial_ms,
                factor: p.backoff.factor,
                max_ms: p.backoff.max_ms,
            },
            jitter: match p.jitter {
                Jitter::Full => JitterBody::Full,
                Jitter::None => JitterBody::None,
            },
        }
    }
}

impl RetryPolicyBody {
    /// The domain's policy, or every broken bound, each named under
    /// `field` (e.g. `tasks[0].retry`).
    pub fn into_policy(self, field: &str) -> Result<RetryPolicy, Vec<FieldError>> {
        RetryPolicy {
            max_attempts: self.max_attempts,
            backoff: Backoff {
                initial_ms: self.backoff.initial_ms,
                factor: self.backoff.factor,
                max_ms: self.backoff.max_ms,
            },
            jitter: match self.jitter {
                JitterBody::Full => Jitter::Full,
                JitterBody::None => Jitter::None,
            },
        }
        .validate()
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|(path, e)| FieldError {
                    field: format!("{field}.{path}"),
                    message: e.to_string(),
                    ..FieldError::default()
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every body naming a worker publishes the domain's rule for it.
    #[test]
    fn worker_ids_are_published_with_the_domains_pattern() {
        use utoipa::PartialSchema;
        for schema in [
            ClaimBody::schema(),
            HeartbeatBody::schema(),
            CompleteBody::schema(),
            FailBody::schema(),
            CompletedResult::schema(),
            FailedResult::schema(),
        ] {
            let json = serde_json::to_value(schema).unwrap_or_default();
            assert_eq!(
                json["properties"]["worker_id"]["pattern"],
                flowexec_domain::names::DISPLAY_NAME_PATTERN,
                "{json}"
            );
        }
    }

    #[test]
    fn a_policy_round_trips_and_each_broken_bound_is_named() {
        let policy = RetryPolicy::default();
        let body = RetryPolicyBody::from(policy);
        assert_eq!(body.into_policy("retry").ok(), Some(policy));
        let broken = RetryPolicyBody {
            backoff: BackoffBody {
                initial_ms: 10,
                factor: 2.0,
                max_ms: 5,
            },
            ..body
        };
        let fields: Vec<String> = broken
            .into_policy("tasks[1].retry")
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["tasks[1].retry.backoff.max_ms"]);
    }
}
