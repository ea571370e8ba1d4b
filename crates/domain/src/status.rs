//! The task execution status machine.
//!
//! | from              | to        |
//! |-------------------|-----------|
//! | queued            | running   |
//! | running           | completed |
//! | running           | failed    |
//! | any but deleted   | deleted   |
//! | completed, failed | stale     |
//!
//! Everything else is rejected. A retry is never a transition back: it is a
//! new task execution with the next `execution_index`.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Deleted,
    Stale,
}

impl TaskStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [TaskStatus; 6] = [
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Deleted,
        Self::Stale,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
            Self::Stale => "stale",
        }
    }

    /// Whether the machine allows a change from `self` to `to`.
    ///
    /// "any → deleted" covers every status but `deleted` itself: deleting a
    /// deleted row would record an event that changed nothing.
    pub const fn can_transition_to(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Queued, Running)
                | (Running, Completed)
                | (Running, Failed)
                | (Queued | Running | Completed | Failed | Stale, Deleted)
                | (Completed | Failed, Stale)
        )
    }

    /// The statuses `self` may move to.
    pub fn allowed_to(self) -> Vec<TaskStatus> {
        Self::ALL
            .into_iter()
            .filter(|to| self.can_transition_to(*to))
            .collect()
    }

    /// The statuses from which `to` may be reached; what a compare-and-set
    /// update puts in its `WHERE status = ANY(…)`.
    pub fn allowed_from(to: TaskStatus) -> Vec<TaskStatus> {
        Self::ALL
            .into_iter()
            .filter(|from| from.can_transition_to(to))
            .collect()
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                ParseError::new("must be one of queued, running, completed, failed, deleted, stale")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::{self, *};

    /// The whole table, written out pair by pair: every (from, to) that is
    /// allowed. Every pair not listed must be rejected.
    const ALLOWED: [(TaskStatus, TaskStatus); 10] = [
        (Queued, Running),
        (Running, Completed),
        (Running, Failed),
        (Queued, Deleted),
        (Running, Deleted),
        (Completed, Deleted),
        (Failed, Deleted),
        (Stale, Deleted),
        (Completed, Stale),
        (Failed, Stale),
    ];

    #[test]
    fn every_pair_of_statuses_is_allowed_or_rejected_as_the_table_says() {
        let mut checked = 0;
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(
                    from.can_transition_to(to),
                    expected,
                    "{from} -> {to} should be {}",
                    if expected { "allowed" } else { "rejected" }
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 36);
    }

    #[test]
    fn no_status_goes_back_to_queued_or_running_from_a_finished_state() {
        for from in [Completed, Failed, Deleted, Stale] {
            assert!(!from.can_transition_to(Queued));
            assert!(!from.can_transition_to(Running));
        }
    }

    #[test]
    fn allowed_from_lists_exactly_the_sources_of_each_target() {
        assert_eq!(TaskStatus::allowed_from(Running), vec![Queued]);
        assert_eq!(TaskStatus::allowed_from(Completed), vec![Running]);
        assert_eq!(TaskStatus::allowed_from(Failed), vec![Running]);
        assert_eq!(TaskStatus::allowed_from(Stale), vec![Completed, Failed]);
        assert_eq!(
            TaskStatus::allowed_from(Deleted),
            vec![Queued, Running, Completed, Failed, Stale]
        );
        assert!(TaskStatus::allowed_from(Queued).is_empty());
    }

    #[test]
    fn statuses_round_trip_through_their_text() -> Result<(), crate::ParseError> {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>()?, status);
        }
        assert!("Queued".parse::<TaskStatus>().is_err());
        assert!("done".parse::<TaskStatus>().is_err());
        Ok(())
    }
}
