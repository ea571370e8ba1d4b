//! Work made through any server instance wakes the claims waiting on every
//! instance: a statement trigger on `task_executions` (migration
//! `…_work_notifications`) sends `NOTIFY flowexec_work` when queued tasks
//! are inserted, delivered at commit; a [`WorkListener`] `LISTEN`s on a
//! connection of its own and calls back on each, and when it starts or
//! stops hearing them ([`ListenEvent`]).
//!
//! The listener uses the `postgres` crate (rust-postgres), because waiting on
//! the socket for a notification is what libpq through diesel cannot do
//! without polling. It connects without TLS, so it runs only where that
//! exposes nothing: a PostgreSQL on this host (loopback or a Unix socket),
//! or one the URL itself reaches with `sslmode=disable`. Elsewhere, or while
//! it reconnects after a failure, waiting claims still try again every
//! second on their own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::NoTls;

/// The channel the trigger notifies.
pub const WORK_CHANNEL: &str = "flowexec_work";
/// The listener's connection, as `pg_stat_activity` shows it.
pub const APPLICATION_NAME: &str = "flowexec-work-listener";

/// How long the listener waits for a notification before checking whether
/// it should stop, and before connecting again after a failure.
const TICK: Duration = Duration::from_secs(1);
const RECONNECT: Duration = Duration::from_secs(5);
/// Quiet ticks after which the connection is checked with a query (a
/// half-open connection looks quiet too).
const CHECK_EVERY: u32 = 30;

/// Whether the listener may connect to `url` without TLS: the host is this
/// one (loopback, or a Unix socket), or the URL asks for no TLS itself.
pub fn listens_in_clear_safely(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let disabled = parsed
        .query_pairs()
        .any(|(key, value)| key == "sslmode" && value == "disable");
    let socket = parsed
        .query_pairs()
        .any(|(key, value)| key == "host" && value.starts_with('/'));
    // (`postgres:` is not a scheme the URL standard knows, so an address
    // comes back as a name.)
    let local = match parsed.host() {
        None => true,
        Some(url::Host::Domain(name)) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    };
    disabled || socket || local
}

/// What a [`WorkListener`] tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenEvent {
    /// Listening (again): every transaction committed from now on that
    /// inserts queued tasks is heard. Work made while not listening was
    /// not.
    Listening,
    /// A transaction that inserted queued tasks committed.
    Work,
    /// The connection was lost; notifications are not heard until the
    /// next `Listening`.
    Lost,
}

/// Listens for work on its own thread until dropped.
pub struct WorkListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WorkListener {
    /// Starts listening on `url` (the app role's), calling `on_event` with
    /// [`ListenEvent::Work`] for each notification (at most one per
    /// committed transaction that inserted queued tasks), and as it starts
    /// and stops hearing them. `None` when `url` is not one to reach
    /// without TLS ([`listens_in_clear_safely`]).
    pub fn start(url: &str, on_event: impl Fn(ListenEvent) + Send + 'static) -> Option<Self> {
        if !listens_in_clear_safely(url) {
            tracing::warn!("no work listener: the database is not on this host and the listener cannot use TLS; waiting claims poll every second");
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let url = url.to_owned();
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("flowexec-listen".into())
                .spawn(move || listen(&url, &stop, &on_event))
                .ok()
        };
        if thread.is_none() {
            tracing::warn!("could not start the work listener; waiting claims poll every second");
        }
        Some(Self { stop, thread })
    }
}

impl Drop for WorkListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sleeps `duration` in ticks, returning early once `stop` is set.
fn pause(stop: &AtomicBool, duration: Duration) {
    let mut left = duration;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let step = left.min(Duration::from_millis(200));
        thread::sleep(step);
        left -= step;
    }
}

fn listen(url: &str, stop: &AtomicBool, on_event: &dyn Fn(ListenEvent)) {
    let config = match url.parse::<::postgres::Config>() {
        Ok(mut config) => {
            config
                .application_name(APPLICATION_NAME)
                .connect_timeout(RECONNECT)
                .keepalives(true)
                .keepalives_idle(Duration::from_secs(30));
            config
        }
        Err(error) => {
            tracing::warn!(%error, "the work listener cannot read the database URL; waiting claims poll every second");
            return;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let mut client = match config.connect(NoTls) {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%error, "the work listener cannot connect; waiting claims poll every second until it does");
                pause(stop, RECONNECT);
                continue;
            }
        };
        if let Err(error) = client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")) {
            tracing::warn!(%error, "the work listener cannot LISTEN");
            pause(stop, RECONNECT);
            continue;
        }
        tracing::debug!("listening for work on channel {WORK_CHANNEL}");
        on_event(ListenEvent::Listening);
        let mut quiet = 0;
        while !stop.load(Ordering::Relaxed) {
            // A wait ends with a notification, or after a tick; a closed or
            // half-open connection looks like a quiet one to it, so it is
            // asked, and now and then made to answer a query.
            let next = client.notifications().timeout_iter(TICK).next();
            match next {
                Ok(Some(_)) => {
                    quiet = 0;
                    on_event(ListenEvent::Work);
                }
                Ok(None) if client.is_closed() => {
                    tracing::warn!("the work listener's connection closed; connecting again");
                    break;
                }
                Ok(None) => {
                    quiet += 1;
                    if quiet >= CHECK_EVERY {
                        quiet = 0;
                        if let Err(error) = client.simple_query("SELECT 1") {
                            tracing::warn!(%error, "the work listener's connection does not answer; connecting again");
                            break;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the work listener lost its connection; connecting again");
                    break;
                }
            }
        }
        on_event(ListenEvent::Lost);
        pause(stop, RECONNECT);
    }
}

#[cfg(test)]
mod tests {
    use super::listens_in_clear_safely;

    #[test]
    fn only_a_database_on_this_host_or_one_asked_without_tls_is_listened_to_in_clear() {
        for url in [
            "postgres://app@localhost:5432/db",
            "postgres://app@127.0.0.1/db",
            "postgresql://app@[::1]:5432/db",
            "postgres://app@db.example.com/db?sslmode=disable",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert!(listens_in_clear_safely(url), "{url}");
        }
        for url in [
            "postgres://app@db.example.com/db",
            "postgres://app@10.0.0.5/db?sslmode=prefer",
            "not a url",
        ] {
            assert!(!listens_in_clear_safely(url), "{url}");
        }
    }
}
