//! A task's retry policy: how many attempts a failing task gets in all, and
//! how long each new attempt waits before a worker may claim it
//! (exponential backoff, capped, with optional full jitter). The delay is a
//! pure function of the policy, the attempt and a random draw, so that its
//! bounds are tested without a clock or a generator.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// The most attempts a policy may allow (the first run included).
pub const MAX_ATTEMPTS: u32 = 100;
/// The longest delay a policy may set: one day.
pub const MAX_DELAY_MS: u64 = 86_400_000;
/// The largest growth factor between two delays.
pub const MAX_FACTOR: f64 = 10.0;

/// How the delay before a retry grows: `initial_ms` before the first retry,
/// times `factor` before each next one, never more than `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    pub initial_ms: u64,
    pub factor: f64,
    pub max_ms: u64,
}

/// Whether the delay is drawn at random below the backoff (`full`, which
/// spreads the retries of tasks that failed together) or is the backoff
/// itself (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    Full,
    None,
}

/// A task's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first run included: 1 means never retried.
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// Three attempts, 1 s then 2 s (at most 60 s), full jitter.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff {
                initial_ms: 1_000,
                factor: 2.0,
                max_ms: 60_000,
            },
            jitter: Jitter::Full,
        }
    }
}

impl RetryPolicy {
    /// The policy, if every bound holds; else every broken bound, each as
    /// (field path, message).
    pub fn validate(self) -> Result<Self, Vec<(&'static str, ParseError)>> {
        let mut errors = Vec::new();
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            errors.push((
                "max_attempts",
                ParseError::new(format!("must be between 1 and {MAX_ATTEMPTS}")),
            ));
        }
        let b = self.backoff;
        if b.initial_ms > MAX_DELAY_MS {
            errors.push((
                "backoff.initial_ms",
                ParseError::new(format!("must be at most {MAX_DELAY_MS}")),
            ));
        }
        if !(b.factor.is_finite() && (1.0..=MAX_FACTOR).contains(&b.factor)) {
            errors.push((
                "backoff.factor",
                ParseError::new(format!("must be between 1 and {MAX_FACTOR}")),
            ));
        }
        if b.max_ms > MAX_DELAY_MS || b.max_ms < b.initial_ms {
            errors.push((
                "backoff.max_ms",
                ParseError::new(format!(
                    "must be at least backoff.initial_ms and at most {MAX_DELAY_MS}"
                )),
            ));
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// Whether an attempt that failed as attempt number `attempt` (1 for
    /// the first run) may be followed by another.
    pub const fn allows_another(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The backoff before retry number `retry` (1 for the first retry),
    /// without jitter: `initial_ms × factor^(retry − 1)`, at most `max_ms`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let b = self.backoff;
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        // Computed in floating point and capped before converting, so that
        // no exponent overflows.
        let grown = b.initial_ms as f64 * b.factor.powi(exponent);
        let capped = if grown.is_finite() {
            grown.min(b.max_ms as f64)
        } else {
            b.max_ms as f64
        };
        Duration::from_millis(capped as u64)
    }

    /// The delay before retry number `retry`, given `draw`, a uniform
    /// random number in [0, 1): the backoff itself without jitter, else
    /// `draw × backoff` (full jitter).
    pub fn delay(&self, retry: u32, draw: f64) -> Duration {
        let backoff = self.backoff(retry);
        match self.jitter {
            Jitter::None => backoff,
            Jitter::Full => {
                let draw = if draw.is_finite() {
                    draw.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                Duration::from_millis((backoff.as_millis() as f64 * draw) as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(initial_ms: u64, factor: f64, max_ms: u64, jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff: Backoff {
                initial_ms,
                factor,
                max_ms,
            },
            jitter,
        }
    }

    #[test]
    fn the_backoff_grows_by_the_factor_up_to_the_cap() {
        let p = policy(100, 2.0, 1_000, Jitter::None);
        let delays: Vec<u128> = (1..=6).map(|n| p.delay(n, 0.5).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn max_attempts_counts_the_first_run() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.allows_another(1));
        assert!(p.allows_another(2));
        assert!(!p.allows_another(3));
        let once = RetryPolicy {
            max_attempts: 1,
            ..p
        };
        assert!(!once.allows_another(1));
    }

    #[test]
    fn validation_names_every_broken_bound() {
        let broken = RetryPolicy {
            max_attempts: 0,
            backoff: Backoff {
                initial_ms: 5_000,
                factor: 0.5,
                max_ms: 1_000,
            },
            jitter: Jitter::Full,
        };
        let fields: Vec<&str> = broken
            .validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(fields, ["max_attempts", "backoff.factor", "backoff.max_ms"]);
        assert!(RetryPolicy::default().validate().is_ok());
        let nan = policy(1, f64::NAN, 1, Jitter::None);
        assert!(nan.validate().is_err());
    }

    fn valid_policy() -> impl Strategy<Value = RetryPolicy> {
        (
            1..=MAX_ATTEMPTS,
            0..=MAX_DELAY_MS,
            1.0..=MAX_FACTOR,
            0..=MAX_DELAY_MS,
            prop_oneof![Just(Jitter::Full), Just(Jitter::None)],
        )
            .prop_map(|(max_attempts, a, factor, b, jitter)| RetryPolicy {
                max_attempts,
                backoff: Backoff {
                    initial_ms: a.min(b),
                    factor,
                    max_ms: a.max(b),
                },
                jitter,
            })
    }

    proptest! {
        /// Every delay of a valid policy lies within its bounds: never over
        /// `max_ms`; without jitter, exactly the capped backoff, which never
        /// shrinks from one retry to the next; with full jitter, between 0
        /// and that backoff, in proportion to the draw.
        #[test]
        fn delays_stay_within_the_policy(
            p in valid_policy(),
            retry in 1u32..=200,
            draw in 0.0f64..1.0,
        ) {
            prop_assert!(p.validate().is_ok());
            let backoff = p.backoff(retry);
            let delay = p.delay(retry, draw);
            prop_assert!(backoff.as_millis() <= u128::from(p.backoff.max_ms));
            prop_assert!(backoff >= p.backoff(retry.saturating_sub(1).max(1)));
            if retry == 1 {
                prop_assert_eq!(backoff.as_millis(), u128::from(p.backoff.initial_ms));
            }
            match p.jitter {
                Jitter::None => prop_assert_eq!(delay, backoff),
                Jitter::Full => {
                    prop_assert!(delay <= backoff);
                    let expected = backoff.as_millis() as f64 * draw;
                    prop_assert!((delay.as_millis() as f64 - expected).abs() < 1.0);
                }
            }
        }
    }
}
