//! Stored flow definitions: a flow (a name in an organization) and its
//! versions. A version is never changed once stored; a run of a definition
//! names the version it runs, and reads it to its end.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::access::Actor;
use crate::names::FlowName;

/// A flow of an organization: its name, latest version, and whether it was
/// deleted (a deleted flow starts no run; storing it again revives it with
/// the next version).
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub name: FlowName,
    pub latest_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One version of a flow's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowVersion {
    pub name: FlowName,
    /// 1, 2, … in the order stored.
    pub version: i32,
    /// The text as uploaded (YAML or JSON).
    pub source: String,
    /// The same definition as a JSON object: what "unchanged" compares.
    pub document: Value,
    pub created_by: Actor,
    pub created_at: DateTime<Utc>,
}

/// A request to run a stored flow definition.
#[derive(Debug, Clone, PartialEq)]
pub struct StartFlow {
    pub flow: FlowName,
    /// None: the latest version.
    pub version: Option<i32>,
    pub input: Option<Value>,
}

/// Where one task of a flow execution stands, as its graph shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// No run of it exists (yet).
    NotCreated,
    Queued,
    Running,
    Completed,
    Failed,
    /// Made stale by a rerun, not created again yet.
    Stale,
    Deleted,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::NotCreated => "not_created",
            NodeState::Queued => "queued",
            NodeState::Running => "running",
            NodeState::Completed => "completed",
            NodeState::Failed => "failed",
            NodeState::Stale => "stale",
            NodeState::Deleted => "deleted",
        }
    }
}

/// One task of a flow execution's graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub task_name: String,
    pub state: NodeState,
    /// Whether it runs once per item of a list.
    pub for_each: bool,
    /// Its runs: 1, or one per item (0: not created).
    pub runs: usize,
    /// Its attempts in all, retries and reruns included.
    pub attempts: usize,
    /// Its latest attempt (the highest `execution_index`), if any.
    pub latest: Option<crate::entities::TaskExecution>,
}

/// A flow execution as a graph: its tasks (those of its definition, in the
/// order written; of an ad hoc one, by name) and the dependencies between
/// them, as (upstream, downstream).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowGraph {
    pub flow_execution: crate::entities::FlowExecution,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<(String, String)>,
}
