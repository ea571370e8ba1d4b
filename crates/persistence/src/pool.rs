//! Pool settings shared by both stores.

use std::time::Duration;

/// How the pool is sized and how long a caller waits for a connection.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: u32,
    pub connection_timeout: Duration,
}

/// Connections per core by default. More concurrently active database
/// sessions than that, on a machine whose cores the database shares,
/// turned into latency spikes of 300–850 ms (issue 6; docs/operations.md),
/// for no gain in throughput.
pub const POOL_PER_CORE: u32 = 2;

impl Default for PoolSettings {
    /// [`POOL_PER_CORE`] connections per core (at least 2); a caller waits
    /// 5 s for one.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            max_size: u32::try_from(cores)
                .unwrap_or(u32::MAX)
                .saturating_mul(POOL_PER_CORE)
                .max(2),
            connection_timeout: Duration::from_secs(5),
        }
    }
}
