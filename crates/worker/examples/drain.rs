//! A no-op worker for the benchmark (`scripts/bench/workers.sh`): runs
//! `--workers N` workers in one process, each claiming and reporting
//! `--batch B` tasks at a time (B running at once), every task named
//! `noop-00` … `noop-99` answered at once with `{"ok": true}`, until
//! Ctrl-C or SIGTERM.
//!
//!   FLOWEXEC_URL=http://127.0.0.1:8080 FLOWEXEC_KEY=fx_… \
//!     cargo run --release -p flowexec-worker --example drain -- --workers 8 --batch 50

// An example talks to its user on stderr.
#![allow(clippy::print_stderr)]

use std::time::Duration;

use flowexec_worker::{HttpTransport, TaskError, Worker, WorkerConfig};
use serde_json::json;

fn flag(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLOWEXEC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("FLOWEXEC_KEY").map_err(|_| "set FLOWEXEC_KEY to a worker key")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workers = flag(&args, "--workers", 1)?;
    let batch = flag(&args, "--batch", 1)?.clamp(1, 500);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut running = tokio::task::JoinSet::new();
    for i in 0..workers {
        let config = WorkerConfig {
            concurrency: batch,
            claim_batch: batch,
            report_batch: batch,
            report_linger: Duration::from_millis(2),
            grace: Duration::from_secs(5),
            ..WorkerConfig::new(format!("drain-{}-{i}", std::process::id()))
        };
        let worker = (0..100).fold(
            Worker::new(HttpTransport::new(&url, &key)?, config),
            |worker, n| {
                worker.handle_json(&format!("noop-{n:02}"), |_input, _task| async {
                    Ok::<_, TaskError>(json!({"ok": true}))
                })
            },
        );
        let mut stopped = stopped.clone();
        running.spawn(worker.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
    }
    eprintln!("{workers} workers, batch {batch}, against {url}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    let _ = stop.send(true);
    while running.join_next().await.is_some() {}
    Ok(())
}
