//! The server's shutdown, as the handlers see it: once triggered, work that
//! waits on a client (a request body still arriving) stops waiting and
//! answers 503, so that a graceful stop waits only for work in progress.

use std::sync::Arc;

use tokio::sync::watch;

/// Shared by the server (which triggers it) and the handlers (which stop
/// waiting on clients once it is). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl ShutdownSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown; idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Completes once the shutdown has been triggered (at once if it has).
    pub async fn triggered(&self) {
        let mut receiver = self.sender.subscribe();
        // The sender lives as long as `self`, so this only ends when true.
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn waiters_wake_when_it_is_triggered_and_later_ones_do_not_wait() {
        let signal = ShutdownSignal::new();
        assert!(!signal.is_triggered());
        let waiter = {
            let signal = signal.clone();
            actix_web::rt::spawn(async move { signal.triggered().await })
        };
        signal.trigger();
        assert!(waiter.await.is_ok());
        assert!(signal.is_triggered());
        signal.triggered().await;
    }
}
