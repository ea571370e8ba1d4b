//! Stored flow definitions as the API shows them, and the request to run
//! one.

use chrono::{DateTime, Utc};
use flowexec_domain::{Flow, FlowGraph, FlowName, FlowVersion, NodeState, StartFlow, TaskName};
use uuid::Uuid;

use crate::executions::{FlowStatusBody, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::FieldError;

/// One version of a flow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowBody {
    #[schema(example = "nightly-etl")]
    pub name: String,
    /// This version: 1, 2, … in the order stored.
    #[schema(minimum = 1)]
    pub version: i32,
    /// The flow's latest version.
    #[schema(minimum = 1)]
    pub latest_version: i32,
    /// The definition as uploaded (YAML or JSON), byte for byte.
    pub source: String,
    /// The same definition as JSON.
    pub definition: Value,
    /// Who stored this version.
    pub created_by: String,
    /// When this version was stored.
    pub created_at: DateTime<Utc>,
}

impl FlowBody {
    /// `version` of `flow`.
    pub fn new(flow: Flow, version: FlowVersion) -> Self {
        Self {
            name: flow.name.into_string(),
            version: version.version,
            latest_version: flow.latest_version,
            source: version.source,
            definition: version.document,
            created_by: version.created_by.to_string(),
            created_at: version.created_at,
        }
    }
}

/// A flow as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowSummaryBody {
    #[schema(example = "nightly-etl")]
    pub name: String,
    #[schema(minimum = 1)]
    pub latest_version: i32,
    /// When its first version was stored.
    pub created_at: DateTime<Utc>,
    /// When its latest version was stored.
    pub updated_at: DateTime<Utc>,
}

impl From<Flow> for FlowSummaryBody {
    fn from(flow: Flow) -> Self {
        Self {
            name: flow.name.into_string(),
            latest_version: flow.latest_version,
            created_at: flow.created_at,
            updated_at: flow.updated_at,
        }
    }
}

/// A page of flows, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowPageBody {
    pub flows: Vec<FlowSummaryBody>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A run of a stored flow definition: its name, optionally a version (the
/// latest by default), and the run's input, checked against the
/// definition's `input_schema`. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartFlowBody {
    #[schema(
        example = "nightly-etl",
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub flow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub version: Option<i32>,
    /// Any JSON value; omitted or null for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

impl StartFlowBody {
    /// The use case's request, or every invalid field.
    pub fn into_command(self) -> Result<StartFlow, Vec<FieldError>> {
        let flow = FlowName::parse(self.flow).map_err(|e| {
            vec![FieldError {
                field: "flow".to_owned(),
                message: e.to_string(),
                ..FieldError::default()
            }]
        })?;
        Ok(StartFlow {
            flow,
            version: self.version,
            input: self.input.filter(|v| !v.is_null()),
        })
    }
}

/// The body of `POST /flow-executions`: a run of a stored flow
/// definition (`flow`), or a flow execution with its tasks given
/// (`flow_name` and `tasks`, run with no dependencies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CreateFlowExecutionBody {
    Stored(StartFlowBody),
    AdHoc(crate::executions::NewFlowExecutionBody),
}

/// A rerun of a flow execution from one of its tasks. Unknown fields are
/// refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunBody {
    /// The task to run again; it and every task downstream of it become
    /// stale and are created again.
    #[schema(
        example = "transform",
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub from_task: String,
}

impl RerunBody {
    pub fn into_command(self) -> Result<TaskName, Vec<FieldError>> {
        TaskName::parse(self.from_task).map_err(|e| {
            vec![FieldError {
                field: "from_task".to_owned(),
                message: e.to_string(),
                ..FieldError::default()
            }]
        })
    }
}

/// Where a task of a flow execution stands: `not_created` (no run yet),
/// `queued`, `running`, `completed`, `failed`, `stale` (made stale by a
/// rerun, not created again yet) or `deleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStateBody {
    NotCreated,
    Queued,
    Running,
    Completed,
    Failed,
    Stale,
    Deleted,
}

impl From<NodeState> for NodeStateBody {
    fn from(state: NodeState) -> Self {
        match state {
            NodeState::NotCreated => Self::NotCreated,
            NodeState::Queued => Self::Queued,
            NodeState::Running => Self::Running,
            NodeState::Completed => Self::Completed,
            NodeState::Failed => Self::Failed,
            NodeState::Stale => Self::Stale,
            NodeState::Deleted => Self::Deleted,
        }
    }
}

/// A task's latest attempt, as a graph shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptRefBody {
    pub id: Uuid,
    pub execution_index: i32,
    pub iteration: Option<i32>,
    pub status: Status,
}

/// One task of a flow execution's graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphNodeBody {
    pub task_name: String,
    pub state: NodeStateBody,
    /// Whether it runs once per item of a list.
    pub for_each: bool,
    /// Its runs: 1, or one per item; 0 before it is created.
    pub runs: usize,
    /// Its attempts in all, retries and reruns included.
    pub attempts: usize,
    /// Its latest attempt (the highest `execution_index`); null before it
    /// is created.
    pub latest: Option<AttemptRefBody>,
}

/// A dependency: `to` runs after `from` completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphEdgeBody {
    pub from: String,
    pub to: String,
}

/// A flow execution as a graph: its tasks (those of its definition, in the
/// order written; of an ad hoc flow execution, by name) and the
/// dependencies between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowGraphBody {
    pub flow_execution_id: Uuid,
    pub flow_name: String,
    pub flow_version: Option<i32>,
    pub status: FlowStatusBody,
    pub nodes: Vec<GraphNodeBody>,
    pub edges: Vec<GraphEdgeBody>,
}

impl From<FlowGraph> for FlowGraphBody {
    fn from(graph: FlowGraph) -> Self {
        Self {
            flow_execution_id: graph.flow_execution.id.into_uuid(),
            flow_name: graph.flow_execution.flow_name.into_string(),
            flow_version: graph.flow_execution.flow_version,
            status: graph.flow_execution.status.into(),
            nodes: graph
                .nodes
                .into_iter()
                .map(|node| GraphNodeBody {
                    task_name: node.task_name,
                    state: node.state.into(),
                    for_each: node.for_each,
                    runs: node.runs,
                    attempts: node.attempts,
                    latest: node.latest.map(|t| AttemptRefBody {
                        id: t.id.into_uuid(),
                        execution_index: t.execution_index,
                        iteration: t.iteration,
                        status: t.status.into(),
                    }),
                })
                .collect(),
            edges: graph
                .edges
                .into_iter()
                .map(|(from, to)| GraphEdgeBody { from, to })
                .collect(),
        }
    }
}
