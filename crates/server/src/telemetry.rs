//! Tracing: `EnvFilter` (`RUST_LOG` when set, else `log.level`), text or
//! JSON lines on stderr (stdout is kept for command output).
//!
//! Logging never stands in the way of serving. Lines are handed to a
//! background thread (tracing-appender's non-blocking writer), so a reader
//! that stalls cannot block a request; when its queue is full, lines are
//! dropped. The thread writes to stderr through [`LossyStderr`], which
//! drops a line it cannot write (the reader went away: `EPIPE`) instead of
//! failing. Both kinds of loss are counted ([`Telemetry::dropped_lines`]).
//!
//! A panic is a bug whose damage cannot be bounded: [`exit_on_panic`] makes
//! any panic, on any thread, end the process with a failure status, so a
//! supervisor restarts it instead of it living on half-broken.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Lines the background writer could not write to stderr.
static UNWRITTEN_LINES: AtomicU64 = AtomicU64::new(0);

/// Most lines waiting for the background writer; more are dropped.
const QUEUED_LINES: usize = 64 * 1024;

/// stderr, where a failed write drops the line (and counts it) instead of
/// returning an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if io::stderr().write_all(buf).is_err() {
            UNWRITTEN_LINES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Keeps the background writer alive; dropping it writes what is queued.
#[must_use = "dropping Telemetry stops the log writer"]
pub struct Telemetry {
    _guard: Option<WorkerGuard>,
    queue: Option<tracing_appender::non_blocking::ErrorCounter>,
}

impl Telemetry {
    /// Log lines lost so far: dropped from a full queue, or not writable.
    pub fn dropped_lines(&self) -> u64 {
        let queued = self.queue.as_ref().map_or(0, |q| q.dropped_lines() as u64);
        queued + UNWRITTEN_LINES.load(Ordering::Relaxed)
    }
}

pub fn init(settings: &LogSettings) -> anyhow::Result<Telemetry> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::try_new(&settings.level)
            .map_err(|e| anyhow::anyhow!("log.level {:?} is invalid: {e}", settings.level))?,
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("flowexec-log")
        .finish(LossyStderr);
    let queue = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .log_internal_errors(false)
        .with_ansi(io::stderr().is_terminal())
        .with_span_events(FmtSpan::NONE);
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    Ok(match result {
        Ok(()) => Telemetry {
            _guard: Some(guard),
            queue: Some(queue),
        },
        // Already initialised (tests start several servers in one process):
        // the first subscriber stays, with its writer.
        Err(_) => Telemetry {
            _guard: None,
            queue: None,
        },
    })
}

/// Makes every panic end the process: the panic is reported on stderr,
/// then the process aborts. The report is written by a helper thread and
/// given at most two seconds, so that a stderr nobody reads (a full pipe)
/// cannot keep the process alive. Installed by `flowexec serve` only; the
/// library never installs it.
pub fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let report = format!(
            "flowexec: a thread panicked; exiting so that a supervisor can restart the server\n{info}\n{}\n",
            std::backtrace::Backtrace::capture()
        );
        let (written, wait) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new().spawn(move || {
            let _ = LossyStderr.write_all(report.as_bytes());
            let _ = written.send(());
        });
        if writer.is_ok() {
            let _ = wait.recv_timeout(std::time::Duration::from_secs(2));
        }
        std::process::abort();
    }));
}
