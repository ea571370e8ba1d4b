//! What workers and task creation say about how a task is run: its retry
//! policy on the wire.

use flowexec_domain::{Backoff, Jitter, RetryPolicy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::number::integral;
use crate::problem::FieldError;

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
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
