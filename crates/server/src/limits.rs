//! The open-file limit and the connection cap derived from it.
//!
//! Every connection holds a file descriptor. A server that accepts until the
//! process runs out of descriptors can no longer open a database connection
//! or accept the health check, so `serve` raises the soft limit to the hard
//! one and caps open connections below it, keeping a reserve for the pool,
//! the database files and the runtime. Past the cap, new connections wait in
//! the listen backlog until one closes.

use anyhow::bail;
use rlimit::Resource;

/// Descriptors kept back for everything but client connections: the
/// database pool (added by the caller), SQLite's files, the runtime's
/// epoll and event descriptors per thread, standard streams, logs.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// What `serve` found and decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimit {
    /// The soft open-file limit the process started with.
    pub soft_before: u64,
    /// The soft limit now (raised to the hard one when allowed).
    pub soft: u64,
    pub hard: u64,
    /// Open client connections at most, across all workers.
    pub max_connections: usize,
}

/// Raises the soft open-file limit to the hard one and derives the cap:
/// the limit less `reserved`, or `configured` when that is lower.
pub fn raise_and_derive(
    configured: Option<usize>,
    reserved: u64,
) -> anyhow::Result<ConnectionLimit> {
    let (soft_before, hard) = Resource::NOFILE.get()?;
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(soft_before);
    derive(soft_before, soft, hard, configured, reserved)
}

fn derive(
    soft_before: u64,
    soft: u64,
    hard: u64,
    configured: Option<usize>,
    reserved: u64,
) -> anyhow::Result<ConnectionLimit> {
    let available = soft.saturating_sub(reserved);
    if available < 16 {
        bail!(
            "the open-file limit ({soft}) leaves no room for connections: raise it (ulimit -n) to at least {}",
            reserved + 1024
        );
    }
    let available = usize::try_from(available).unwrap_or(usize::MAX);
    Ok(ConnectionLimit {
        soft_before,
        soft,
        hard,
        max_connections: configured.map_or(available, |c| c.min(available)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_file_limit() -> anyhow::Result<()> {
        let limit = derive(1024, 20_000, 20_000, None, 266)?;
        assert_eq!(limit.max_connections, 20_000 - 266);
        assert_eq!(
            derive(1024, 20_000, 20_000, Some(500), 266)?.max_connections,
            500
        );
        assert_eq!(
            derive(1024, 20_000, 20_000, Some(50_000), 266)?.max_connections,
            20_000 - 266,
            "a configured cap above what the limit allows is lowered"
        );
        Ok(())
    }

    #[test]
    fn a_limit_with_no_room_for_connections_is_refused_with_advice() {
        let message = derive(64, 64, 64, None, 266).err().map(|e| e.to_string());
        assert!(message.is_some_and(|m| m.contains("ulimit -n")));
    }

    #[test]
    fn raising_keeps_the_soft_limit_at_most_the_hard_one() -> anyhow::Result<()> {
        let limit = raise_and_derive(None, RESERVED_DESCRIPTORS)?;
        assert!(limit.soft >= limit.soft_before && limit.soft <= limit.hard);
        Ok(())
    }
}
