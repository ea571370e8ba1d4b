//! Wakes claims waiting for work (`wait_seconds`): whatever makes a task
//! claimable in this process — a flow execution created, a retry — calls
//! [`WorkSignal::notify`], and every waiting claim tries again at once.
//!
//! While the signal is *complete* (every source of new work reaches it:
//! the in-process calls on SQLite, and on PostgreSQL the listener for work
//! made through any instance, while it is connected), a claim that found
//! nothing sleeps until it is woken, until the earliest task it could take
//! falls due (a delayed retry), or until its wait is over — but no longer
//! than `claim_safety_poll` (10 s), for work announced nowhere (a worker of
//! another process on the same SQLite file, a notification a pooler
//! swallowed). While it is not complete (the listener is connecting, or
//! cannot be used), waiting claims look again every `claim_poll` (1 s).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Shared by the handlers that make work and the claims that wait for it.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct WorkSignal {
    notify: Arc<Notify>,
    complete: Arc<AtomicBool>,
}

impl Default for WorkSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkSignal {
    /// A signal not (yet) complete: waiting claims poll until whoever
    /// knows that every source of work reaches it says so
    /// ([`set_complete`](Self::set_complete)).
    pub fn new() -> Self {
        Self {
            notify: Arc::new(Notify::new()),
            complete: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A complete signal: all work is made in this process and notifies it.
    pub fn complete() -> Self {
        let signal = Self::new();
        signal.set_complete(true);
        signal
    }

    /// Wakes every claim waiting now.
    pub fn notify(&self) {
        self.notify.notify_waiters();
    }

    /// Completes at the next [`notify`](Self::notify) after this call
    /// (registered at once, before the future is first polled, so that a
    /// notification between a claim that found nothing and the wait is not
    /// lost).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Whether every source of new work notifies this signal.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Says whether every source of new work notifies this signal now; on
    /// a change, wakes the waiting claims, which look again and wait by the
    /// new rule (work may have been made while no one was listening).
    pub fn set_complete(&self, complete: bool) {
        if self.complete.swap(complete, Ordering::AcqRel) != complete {
            self.notify();
        }
    }
}
