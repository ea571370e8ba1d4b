//! Work made through any server instance wakes the claims waiting on every
//! instance: a statement trigger on `task_executions` (migration
//! `…_work_notifications`) sends `NOTIFY flowexec_work, '<organization id>'`
//! when queued tasks are inserted, delivered at commit; a [`WorkListener`]
//! `LISTEN`s on a connection of its own and calls back on each.
//!
//! The listener uses the `postgres` crate (rust-postgres), because waiting on
//! the socket for a notification is what libpq through diesel cannot do
//! without polling. It connects without TLS; where the server insists on
//! TLS, or the connection is lost, it logs why, waits and connects again —
//! waiting claims still try again every second on their own meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, NoTls};

/// The channel the trigger notifies.
pub const WORK_CHANNEL: &str = "flowexec_work";

/// How long the listener waits for a notification before checking whether
/// it should stop, and before connecting again after a failure.
const TICK: Duration = Duration::from_secs(1);
const RECONNECT: Duration = Duration::from_secs(5);

/// Listens for work on its own thread until dropped.
pub struct WorkListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WorkListener {
    /// Starts listening on `url` (the app role's), calling `on_work` with
    /// the organization id of each notification (once per committed
    /// statement that inserted queued tasks, per organization).
    pub fn start(url: &str, on_work: impl Fn(&str) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let url = url.to_owned();
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("flowexec-listen".into())
                .spawn(move || listen(&url, &stop, &on_work))
                .ok()
        };
        if thread.is_none() {
            tracing::warn!("could not start the work listener; waiting claims poll every second");
        }
        Self { stop, thread }
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

fn listen(url: &str, stop: &AtomicBool, on_work: &dyn Fn(&str)) {
    while !stop.load(Ordering::Relaxed) {
        let mut client = match Client::connect(url, NoTls) {
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
        while !stop.load(Ordering::Relaxed) {
            // A wait ends with a notification, or after a tick; a closed
            // connection looks like a quiet one to it, so it is asked.
            let next = client.notifications().timeout_iter(TICK).next();
            match next {
                Ok(Some(notification)) => on_work(notification.payload()),
                Ok(None) if client.is_closed() => {
                    tracing::warn!("the work listener's connection closed; connecting again");
                    break;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "the work listener lost its connection; connecting again");
                    break;
                }
            }
        }
        pause(stop, RECONNECT);
    }
}
