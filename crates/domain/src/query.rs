//! Lists: what selects rows (filters), in which order, and where a page
//! starts (a keyset position, never an offset). Every list is ordered by
//! `(created_at, id)`, newest or oldest first, so a position is the last
//! row's `(created_at, id)` and the next page is everything strictly after
//! it in that order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::Actor;
use crate::ids::FlowExecutionId;
use crate::names::{FlowName, TaskName};
use crate::status::TaskStatus;

/// The order of a list, by creation time (then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A half-open time window: strictly after `after`, strictly before
/// `before`; either may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}

/// Which attempts of each task a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Attempts {
    /// Every attempt.
    #[default]
    All,
    /// Only the latest attempt (highest `execution_index`) of each (flow
    /// execution, task name).
    Latest,
}

/// What selects task executions. Empty `statuses`: every status but
/// `deleted` (deleted rows are shown only when asked for by name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskExecutionFilter {
    pub flow_execution_id: Option<FlowExecutionId>,
    pub task_name: Option<TaskName>,
    pub statuses: Vec<TaskStatus>,
    pub modified_by: Option<Actor>,
    pub created: TimeRange,
    pub updated: TimeRange,
    pub attempts: Attempts,
}

impl TaskExecutionFilter {
    /// The statuses shown: those asked for, or all but `deleted`.
    pub fn shown_statuses(&self) -> Vec<TaskStatus> {
        if self.statuses.is_empty() {
            TaskStatus::ALL
                .into_iter()
                .filter(|s| *s != TaskStatus::Deleted)
                .collect()
        } else {
            self.statuses.clone()
        }
    }
}

/// What selects flow executions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowExecutionFilter {
    pub flow_name: Option<FlowName>,
    pub created: TimeRange,
}

/// Where a page starts: strictly after this row, in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One page of a list: the filter, the order, where it starts, how many
/// rows at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery<F> {
    pub filter: F,
    pub order: Order,
    pub after: Option<Position>,
    pub limit: usize,
}

/// What counts are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountBy {
    Status,
    TaskName,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_rows_are_shown_only_when_asked_for() {
        let default = TaskExecutionFilter::default();
        assert!(!default.shown_statuses().contains(&TaskStatus::Deleted));
        assert_eq!(default.shown_statuses().len(), 5);
        let deleted = TaskExecutionFilter {
            statuses: vec![TaskStatus::Deleted],
            ..TaskExecutionFilter::default()
        };
        assert_eq!(deleted.shown_statuses(), [TaskStatus::Deleted]);
    }
}
