//! Wakes claims waiting for work (`wait_seconds`): whatever makes a task
//! claimable in this process — a flow execution created, a retry — calls
//! [`WorkSignal::notify`], and every waiting claim tries again at once. A
//! waiting claim also tries again every second on its own, for work that
//! becomes claimable otherwise (a delayed retry falling due, a task created
//! through another server instance).

use std::sync::Arc;

use tokio::sync::Notify;

/// Shared by the handlers that make work and the claims that wait for it.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct WorkSignal {
    notify: Arc<Notify>,
}

impl WorkSignal {
    pub fn new() -> Self {
        Self::default()
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
}
