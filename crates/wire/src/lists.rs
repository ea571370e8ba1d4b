//! Lists on the wire: the query parameters each list takes (read into the
//! domain's filters, every bad parameter named at once), the pages, and
//! counts.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, DurationRound, Utc};
use flowexec_domain::{
    Actor, Attempts, CountBy, FlowExecution, FlowExecutionFilter, FlowExecutionId, FlowName, Order,
    TaskExecutionFilter, TaskName, TaskStatus, TimeRange,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::executions::TaskExecutionBody;

/// The page and order of a list.
#[derive(Debug, Clone, Default)]
struct PageParams<'a> {
    limit: Option<&'a String>,
    cursor: Option<&'a String>,
    order: Option<&'a String>,
}

/// The parameters of a task execution list: filters, order and page. Times
/// are RFC 3339; ranges are exclusive. Unknown or repeated parameters are
/// refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskListParams {
    /// Only the task executions of this flow execution.
    #[param(value_type = Option<Uuid>)]
    pub flow_execution_id: Option<String>,
    /// Only this task name.
    #[param(
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub task_name: Option<String>,
    /// Comma-separated statuses, e.g. `queued,running`. Default: every
    /// status but `deleted` (deleted ones are listed only when asked for).
    #[param(
        pattern = "^(queued|running|completed|failed|deleted|stale)(,(queued|running|completed|failed|deleted|stale))*$"
    )]
    pub status: Option<String>,
    /// Only those last changed by this actor (`system`, `integration`,
    /// `service-account` or a user UUID).
    #[param(
        pattern = "^(system|integration|service-account|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
    )]
    pub modified_by: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_after: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_before: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub updated_after: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub updated_before: Option<String>,
    /// `latest`: only the latest attempt of each task; `all`: every
    /// attempt. Default: `all`, but `latest` for a flow execution's tasks.
    #[param(pattern = "^(latest|all)$")]
    pub attempts: Option<String>,
    /// `newest` (default) or `oldest` first, by creation time.
    #[param(pattern = "^(newest|oldest)$")]
    pub order: Option<String>,
    /// Items per page, 1–500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page, with the same filters and
    /// order.
    pub cursor: Option<String>,
}

/// The parameters of a task execution's history: its page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Events per page, 1–500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl EventParams {
    /// The page size (unchecked: the service bounds it) and the cursor, or
    /// what is wrong with them.
    pub fn into_request(self) -> Result<(Option<usize>, Option<String>), String> {
        let mut problems = Problems::default();
        let (_, limit, cursor) = PageParams {
            limit: self.limit.as_ref(),
            cursor: self.cursor.as_ref(),
            order: None,
        }
        .read(&mut problems);
        problems.done((limit, cursor))
    }
}

/// The parameters of the flow execution list. Unknown or repeated
/// parameters are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FlowListParams {
    /// Only this flow name.
    #[param(
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub flow_name: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_after: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_before: Option<String>,
    /// `newest` (default) or `oldest` first, by creation time.
    #[param(pattern = "^(newest|oldest)$")]
    pub order: Option<String>,
    /// Items per page, 1–500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page, with the same filters and
    /// order.
    pub cursor: Option<String>,
}

/// The parameters of task execution counts: the grouping and the same
/// filters as the list.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CountParams {
    /// `status` or `task_name`.
    #[param(pattern = "^(status|task_name)$")]
    pub group_by: String,
    #[param(value_type = Option<Uuid>)]
    pub flow_execution_id: Option<String>,
    #[param(
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub task_name: Option<String>,
    /// Comma-separated statuses; default every status but `deleted`.
    #[param(
        pattern = "^(queued|running|completed|failed|deleted|stale)(,(queued|running|completed|failed|deleted|stale))*$"
    )]
    pub status: Option<String>,
    #[param(
        pattern = "^(system|integration|service-account|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
    )]
    pub modified_by: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_after: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_before: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub updated_after: Option<String>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub updated_before: Option<String>,
    /// `latest` or `all` (default) attempts.
    #[param(pattern = "^(latest|all)$")]
    pub attempts: Option<String>,
}

/// Collects the problems of a query string, one message per bad parameter.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn parse<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        value: Option<&String>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let value = value?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.0.push(format!("{name} {e}"));
                None
            }
        }
    }

    fn time(&mut self, name: &str, value: Option<&String>) -> Option<DateTime<Utc>> {
        self.parse(name, value, |v| {
            // RFC 3339 allows a lower-case `t` and `z`.
            DateTime::parse_from_rfc3339(&v.to_ascii_uppercase())
                // To the microsecond, as both stores keep times.
                .map(|t| {
                    let t = t.with_timezone(&Utc);
                    t.duration_trunc(chrono::TimeDelta::microseconds(1))
                        .unwrap_or(t)
                })
                .map_err(|_| "must be an RFC 3339 time, e.g. 2026-11-29T10:00:00Z")
        })
    }

    fn done<T>(self, value: T) -> Result<T, String> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0.join("; "))
        }
    }
}

fn one_of<'c, T: Copy>(choices: &'c [(&'c str, T)]) -> impl FnOnce(&str) -> Result<T, String> + 'c {
    move |value| {
        choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, choice)| *choice)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                format!("must be one of {}", names.join(", "))
            })
    }
}

impl PageParams<'_> {
    /// The order, the page size (unchecked: the service bounds it) and the
    /// cursor.
    fn read(&self, problems: &mut Problems) -> (Order, Option<usize>, Option<String>) {
        let order = problems
            .parse(
                "order",
                self.order,
                one_of(&[
                    ("newest", Order::NewestFirst),
                    ("oldest", Order::OldestFirst),
                ]),
            )
            .unwrap_or_default();
        let limit = problems.parse("limit", self.limit, |v| {
            v.parse::<usize>().map_err(|_| "must be an integer")
        });
        (order, limit, self.cursor.cloned())
    }
}

/// A list request read from its parameters: what selects, in which order,
/// which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest<F> {
    pub filter: F,
    pub order: Order,
    /// `None`: the default size.
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl TaskListParams {
    /// The filter and page, or every bad parameter in one message.
    /// `default_attempts` applies when `attempts` is not given.
    pub fn into_request(
        self,
        default_attempts: Attempts,
    ) -> Result<ListRequest<TaskExecutionFilter>, String> {
        let mut problems = Problems::default();
        let filter = self.filter(&mut problems, default_attempts);
        let (order, limit, cursor) = PageParams {
            limit: self.limit.as_ref(),
            cursor: self.cursor.as_ref(),
            order: self.order.as_ref(),
        }
        .read(&mut problems);
        problems.done(ListRequest {
            filter,
            order,
            limit,
            cursor,
        })
    }

    fn filter(&self, problems: &mut Problems, default_attempts: Attempts) -> TaskExecutionFilter {
        let statuses = problems
            .parse("status", self.status.as_ref(), |list| {
                list.split(',')
                    .map(|s| {
                        TaskStatus::from_str(s.trim()).map_err(|e| {
                            // Quote at most a short prefix of what was sent.
                            let shown: String = s.chars().take(32).collect();
                            format!("{shown:?}: {e}")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        TaskExecutionFilter {
            flow_execution_id: problems.parse(
                "flow_execution_id",
                self.flow_execution_id.as_ref(),
                FlowExecutionId::from_str,
            ),
            task_name: problems.parse("task_name", self.task_name.as_ref(), |v| {
                TaskName::parse(v.to_owned())
            }),
            statuses,
            modified_by: problems.parse("modified_by", self.modified_by.as_ref(), Actor::from_str),
            created: TimeRange {
                after: problems.time("created_after", self.created_after.as_ref()),
                before: problems.time("created_before", self.created_before.as_ref()),
            },
            updated: TimeRange {
                after: problems.time("updated_after", self.updated_after.as_ref()),
                before: problems.time("updated_before", self.updated_before.as_ref()),
            },
            attempts: problems
                .parse(
                    "attempts",
                    self.attempts.as_ref(),
                    one_of(&[("latest", Attempts::Latest), ("all", Attempts::All)]),
                )
                .unwrap_or(default_attempts),
        }
    }
}

impl FlowListParams {
    /// The filter and page, or every bad parameter in one message.
    pub fn into_request(self) -> Result<ListRequest<FlowExecutionFilter>, String> {
        let mut problems = Problems::default();
        let filter = FlowExecutionFilter {
            flow_name: problems.parse("flow_name", self.flow_name.as_ref(), |v| {
                FlowName::parse(v.to_owned())
            }),
            created: TimeRange {
                after: problems.time("created_after", self.created_after.as_ref()),
                before: problems.time("created_before", self.created_before.as_ref()),
            },
        };
        let (order, limit, cursor) = PageParams {
            limit: self.limit.as_ref(),
            cursor: self.cursor.as_ref(),
            order: self.order.as_ref(),
        }
        .read(&mut problems);
        problems.done(ListRequest {
            filter,
            order,
            limit,
            cursor,
        })
    }
}

impl CountParams {
    /// The filter and grouping, or every bad parameter in one message.
    pub fn into_request(self) -> Result<(TaskExecutionFilter, CountBy), String> {
        let mut problems = Problems::default();
        let by = problems.parse(
            "group_by",
            Some(&self.group_by),
            one_of(&[
                ("status", CountBy::Status),
                ("task_name", CountBy::TaskName),
            ]),
        );
        let filter = TaskListParams {
            flow_execution_id: self.flow_execution_id,
            task_name: self.task_name,
            status: self.status,
            modified_by: self.modified_by,
            created_after: self.created_after,
            created_before: self.created_before,
            updated_after: self.updated_after,
            updated_before: self.updated_before,
            attempts: self.attempts,
            ..TaskListParams::default()
        }
        .filter(&mut problems, Attempts::All);
        problems.done((filter, by.unwrap_or(CountBy::Status)))
    }
}

/// A page of task executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskExecutionPageBody {
    pub task_executions: Vec<TaskExecutionBody>,
    /// Pass as `cursor` (with the same filters and order) for the next
    /// page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A flow execution without its task executions, as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowExecutionSummaryBody {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(example = "nightly-etl")]
    pub flow_name: String,
    /// The version of the stored flow definition it runs; null for a flow
    /// execution created with its tasks.
    #[schema(minimum = 1)]
    pub flow_version: Option<i32>,
    /// The flow's input: any JSON value, or null for none.
    pub input: Option<Value>,
    pub status: crate::executions::FlowStatusBody,
    pub modified_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<FlowExecution> for FlowExecutionSummaryBody {
    fn from(flow: FlowExecution) -> Self {
        Self {
            id: flow.id.into_uuid(),
            organization_id: flow.organization_id.into_uuid(),
            flow_name: flow.flow_name.into_string(),
            flow_version: flow.flow_version,
            input: flow.input,
            status: flow.status.into(),
            modified_by: flow.modified_by.to_string(),
            created_at: flow.created_at,
            updated_at: flow.updated_at,
        }
    }
}

/// A page of flow executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowExecutionPageBody {
    pub flow_executions: Vec<FlowExecutionSummaryBody>,
    /// Pass as `cursor` (with the same filters and order) for the next
    /// page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Counts of task executions by status or task name; groups with none are
/// absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CountsBody {
    pub counts: BTreeMap<String, i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(query: &str) -> Result<ListRequest<TaskExecutionFilter>, String> {
        serde_urlencoded::from_str::<TaskListParams>(query)
            .map_err(|e| e.to_string())?
            .into_request(Attempts::All)
    }

    #[test]
    fn every_filter_is_read_into_the_domain() {
        let flow = Uuid::new_v4();
        let request = tasks(&format!(
            "flow_execution_id={flow}&task_name=load&status=queued,%20running&modified_by=system\
             &created_after=2026-01-01T00:00:00Z&updated_before=2026-02-01T00:00:00%2B01:00\
             &attempts=latest&order=oldest&limit=7&cursor=abc"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            request.filter.flow_execution_id.map(|f| f.into_uuid()),
            Some(flow)
        );
        assert_eq!(
            request.filter.statuses,
            [TaskStatus::Queued, TaskStatus::Running]
        );
        assert_eq!(request.filter.attempts, Attempts::Latest);
        assert_eq!(
            request.filter.updated.before.map(|t| t.to_rfc3339()),
            Some("2026-01-31T23:00:00+00:00".to_owned())
        );
        assert_eq!(
            (request.order, request.limit),
            (Order::OldestFirst, Some(7))
        );
        assert_eq!(request.cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn every_bad_parameter_is_named_at_once() {
        let error =
            tasks("status=queued,bogus&created_after=yesterday&order=up&limit=x&attempts=some")
                .err()
                .unwrap_or_default();
        for name in ["status", "created_after", "order", "limit", "attempts"] {
            assert!(error.contains(name), "{name}: {error}");
        }
        assert!(tasks("nope=1").is_err());
        assert!(tasks("limit=1&limit=2").is_err());
    }
}
