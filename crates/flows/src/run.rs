//! How a task of a flow runs: its retry policy, time limit and priority,
//! from the task or else the flow's `defaults`, checked by the domain's
//! bounds at upload.

use flowexec_domain::{RetryPolicy, RunOptions};
use serde_json::Value;

use crate::definition::{FlowDefinition, TaskDefinition};

/// The policy a `retry` mapping gives: the fields it names over the
/// built-in policy (3 attempts; 1 s, then doubled up to 60 s; full
/// jitter), so that `{max_attempts: 5}` is enough. Every bound checked.
pub fn retry_policy(given: &Value) -> Result<RetryPolicy, String> {
    let mut policy = serde_json::to_value(RetryPolicy::default()).map_err(|e| e.to_string())?;
    overlay(&mut policy, given);
    let policy: RetryPolicy = serde_json::from_value(policy).map_err(|e| e.to_string())?;
    policy.validate().map_err(|errors| {
        errors
            .iter()
            .map(|(field, e)| format!("{field}: {e}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// `given`'s fields over `base`'s, mapping into mapping.
fn overlay(base: &mut Value, given: &Value) {
    match (base, given) {
        (Value::Object(base), Value::Object(given)) => {
            for (key, value) in given {
                match base.get_mut(key) {
                    Some(slot @ Value::Object(_)) if value.is_object() => overlay(slot, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, given) => *base = given.clone(),
    }
}

/// How `task` of `flow` runs: what it says, else what the flow's
/// `defaults` say, else none (the server's default policy, no time limit,
/// priority 0).
pub fn run_options(flow: &FlowDefinition, task: &TaskDefinition) -> RunOptions {
    let retry = task.retry.as_ref().or(flow.defaults.retry.as_ref());
    RunOptions {
        priority: task.priority.or(flow.defaults.priority).unwrap_or(0),
        timeout_seconds: task.timeout_seconds.or(flow.defaults.timeout_seconds),
        // Checked at upload: a stored definition's policy is valid.
        retry: retry.and_then(|value| retry_policy(value).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_partial_policy_takes_the_rest_from_the_built_in_one() {
        let policy = retry_policy(&json!({"max_attempts": 5, "backoff": {"initial_ms": 10}}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.backoff.initial_ms, 10);
        assert_eq!(policy.backoff.max_ms, RetryPolicy::default().backoff.max_ms);
        assert_eq!(policy.jitter, RetryPolicy::default().jitter);
    }

    #[test]
    fn a_policy_out_of_bounds_or_with_unknown_fields_is_refused() {
        let refused = |v: Value| retry_policy(&v).err().unwrap_or_default();
        assert!(refused(json!({"max_attempts": 0})).contains("max_attempts"));
        assert!(refused(json!({"max_attempts": 101})).contains("max_attempts"));
        assert!(refused(json!({"tries": 2})).contains("tries"));
        assert!(refused(json!({"jitter": "some"})).contains("some"));
    }
}
