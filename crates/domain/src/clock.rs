//! Time, made explicit: every timestamp a change writes (`created_at`,
//! `updated_at`, `started_at`, `completed_at`, an event's time) comes from
//! one [`Clock`] that the service is given, never from a store's own clock,
//! so both stores write the same values and tests can fix the time. See
//! docs/decisions/0007-unit-of-work-and-clock.md.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    /// The current time, to the microsecond (what both stores keep).
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock, truncated to the microsecond.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        to_micros(Utc::now())
    }
}

/// A clock that always answers the same time: for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        to_micros(self.0)
    }
}

fn to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_kept_to_the_microsecond() {
        let nanos = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
        assert_eq!(
            FixedClock(nanos).now().timestamp_subsec_nanos(),
            123_456_000
        );
        assert_eq!(SystemClock.now().timestamp_subsec_nanos() % 1000, 0);
    }
}
