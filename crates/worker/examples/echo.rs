//! An example worker, used by the README tour: it runs the tasks named on
//! the command line, each answering its input back as its output, until
//! Ctrl-C (then it lets running tasks finish). A task whose input has
//! `"fail": true` fails, not retried.
//!
//!   FLOWEXEC_URL=http://127.0.0.1:8080 FLOWEXEC_KEY=fx_… \
//!     cargo run --release -p flowexec-worker --example echo -- extract load

// An example talks to its user on stderr.
#![allow(clippy::print_stderr)]

use flowexec_worker::{HttpTransport, TaskError, Worker, WorkerConfig};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLOWEXEC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("FLOWEXEC_KEY").map_err(|_| "set FLOWEXEC_KEY to a worker key")?;
    let names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        return Err("name the task names to run, e.g.: -- extract load".into());
    }
    let worker_id = format!("echo-{}", std::process::id());
    let mut worker = Worker::new(
        HttpTransport::new(&url, &key)?,
        WorkerConfig::new(&worker_id),
    );
    for name in &names {
        worker = worker.handle_json(name, |input: Option<Value>, task| async move {
            eprintln!(
                "running {} (attempt {}) {}",
                task.task_name, task.execution_index, task.id
            );
            if input.as_ref().and_then(|i| i.get("fail")) == Some(&json!(true)) {
                return Err(TaskError::fatal(json!({"code": "asked_to_fail"})));
            }
            Ok(json!({"echo": input, "by": task.task_name}))
        });
    }
    eprintln!("{worker_id} running {names:?} against {url}; Ctrl-C stops it");
    worker
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    eprintln!("{worker_id} stopped");
    Ok(())
}
