//! The flow engine's benchmark (`scripts/bench/flows.sh`), against a
//! running server, with no-op workers over HTTP in this process:
//!
//! 1. `dag`: a definition of `--layers` (10) × `--width` (100) tasks, each
//!    depending on 3 tasks of the layer above, stored and run by
//!    `--workers` (8) workers; then the same number of independent tasks
//!    (one ad hoc flow execution) drained by the same workers. Prints the
//!    wall times, their ratio, and per task of the DAG (from the stored
//!    times): the engine's overhead (its creation minus the completion that
//!    made it ready: both in one transaction) and the time until a worker
//!    claimed it (its start minus that completion), p50 and p99.
//! 2. `chain`: a chain of `--length` (40) tasks run `--runs` (10) times by
//!    one long-polling worker (claims of one task, results reported one at
//!    a time); per run the wall time from the flow execution's creation to
//!    its last task's completion (stored times). Prints the median and the
//!    overhead per step (median wall time / length).
//!
//! Output: one line of JSON per measurement, on stdout.
//!
//!   FLOWEXEC_URL=… FLOWEXEC_KEY=<write key> FLOWEXEC_WORKER_KEY=<worker key> \
//!     cargo run --release -p flowexec-worker --example flow_bench -- dag

// An example talks to its user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use flowexec_worker::{HttpTransport, TaskError, Worker, WorkerConfig};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn flag(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} takes a number"))?),
        None => Ok(default),
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request.bearer_auth(&self.key).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{status}: {body}").into());
        }
        Ok(body)
    }

    async fn put_flow(&self, name: &str, yaml: String) -> Result<Value> {
        self.send(
            self.http
                .put(format!("{}/flows/{name}", self.base))
                .header("Content-Type", "application/yaml")
                .body(yaml),
        )
        .await
    }

    async fn start(&self, body: Value) -> Result<String> {
        let created = self
            .send(
                self.http
                    .post(format!("{}/flow-executions", self.base))
                    .json(&body),
            )
            .await?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn flow_execution(&self, id: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}/flow-executions/{id}", self.base)))
            .await
    }

    /// Waits for the flow execution to end; answers it.
    async fn finished(&self, id: &str, poll: Duration) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let list = self
                .send(
                    self.http
                        .get(format!("{}/flow-executions?limit=20", self.base)),
                )
                .await?;
            let status = list["flow_executions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["id"] == id)
                .map(|f| f["status"].clone())
                .unwrap_or(Value::Null);
            if status == "completed" {
                return self.flow_execution(id).await;
            }
            if status == "failed" || status == "cancelled" {
                return Err(format!("flow execution {id} is {status}").into());
            }
            if Instant::now() > deadline {
                return Err("not finished within 30 minutes".into());
            }
            tokio::time::sleep(poll).await;
        }
    }
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str()?.parse().ok()
}

fn millis(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// Seconds from the first task's creation to the last one's completion.
fn wall(tasks: &[Value]) -> Result<f64> {
    let first = tasks
        .iter()
        .filter_map(|t| time(&t["created_at"]))
        .min()
        .ok_or("no task")?;
    let last = tasks
        .iter()
        .filter_map(|t| time(&t["completed_at"]))
        .max()
        .ok_or("no task")?;
    Ok(millis(last - first) / 1000.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Starts `count` no-op workers (any task name); answers their stopper.
fn workers(
    base: &str,
    key: &str,
    count: usize,
    batch: usize,
) -> Result<(tokio::sync::watch::Sender<bool>, tokio::task::JoinSet<()>)> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut running = tokio::task::JoinSet::new();
    for i in 0..count {
        let config = WorkerConfig {
            concurrency: batch,
            claim_batch: batch,
            report_batch: batch,
            report_linger: Duration::from_millis(1),
            wait_seconds: 20,
            grace: Duration::from_secs(5),
            ..WorkerConfig::new(format!("bench-{}-{i}", std::process::id()))
        };
        let worker = Worker::new(HttpTransport::new(base, key)?, config)
            .handle_any(|_input, _task| async { Ok::<_, TaskError>(json!({"ok": true})) });
        let mut stopped = stopped.clone();
        running.spawn(worker.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
    }
    Ok((stop, running))
}

async fn stop(handle: (tokio::sync::watch::Sender<bool>, tokio::task::JoinSet<()>)) {
    let (stop, mut running) = handle;
    let _ = stop.send(true);
    while running.join_next().await.is_some() {}
}

/// Task `j` of layer `l`: `l0-t000`.
fn name(layer: usize, j: usize) -> String {
    format!("l{layer}-t{j:03}")
}

async fn dag(api: &Api, worker_key: &str, args: &[String]) -> Result<()> {
    let layers = flag(args, "--layers", 10)?;
    let width = flag(args, "--width", 100)?;
    let count = flag(args, "--workers", 8)?;
    let batch = flag(args, "--batch", 4)?;
    let mut yaml = String::from("name: bench-dag\ntasks:\n");
    for layer in 0..layers {
        for j in 0..width {
            if layer == 0 {
                yaml.push_str(&format!("  - {{name: {}}}\n", name(layer, j)));
            } else {
                let deps: Vec<String> = (0..3).map(|k| name(layer - 1, (j + k) % width)).collect();
                yaml.push_str(&format!(
                    "  - {{name: {}, depends_on: [{}]}}\n",
                    name(layer, j),
                    deps.join(", ")
                ));
            }
        }
    }
    api.put_flow("bench-dag", yaml).await?;
    let handle = workers(&api.base, worker_key, count, batch)?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let id = api.start(json!({"flow": "bench-dag"})).await?;
    let done = api.finished(&id, Duration::from_millis(20)).await?;
    let polled_wall = started.elapsed().as_secs_f64();
    let tasks = done["task_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = layers * width;
    if tasks.len() != total {
        return Err(format!("{} task executions for {total} tasks", tasks.len()).into());
    }
    let by_name: std::collections::HashMap<String, &Value> = tasks
        .iter()
        .map(|t| (t["task_name"].as_str().unwrap_or_default().to_owned(), t))
        .collect();
    let (mut engine, mut claim) = (Vec::new(), Vec::new());
    for layer in 1..layers {
        for j in 0..width {
            let task = by_name[&name(layer, j)];
            let ready = (0..3)
                .filter_map(|k| time(&by_name[&name(layer - 1, (j + k) % width)]["completed_at"]))
                .max()
                .ok_or("an upstream task has no completion time")?;
            let created = time(&task["created_at"]).ok_or("no created_at")?;
            let claimed = time(&task["started_at"]).ok_or("no started_at")?;
            engine.push(millis(created - ready));
            claim.push(millis(claimed - ready));
        }
    }
    engine.sort_by(f64::total_cmp);
    claim.sort_by(f64::total_cmp);
    let dag_wall = wall(&tasks)?;

    // The same number of independent tasks, drained by the same workers.
    let ad_hoc: Vec<Value> = (0..total)
        .map(|i| json!({"task_name": format!("free-{i:04}")}))
        .collect();
    let id = api
        .start(json!({"flow_name": "bench-free", "tasks": ad_hoc}))
        .await?;
    let done = api.finished(&id, Duration::from_millis(20)).await?;
    let tasks = done["task_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let free_wall = wall(&tasks)?;
    stop(handle).await;
    println!(
        "{}",
        json!({
            "bench": "dag", "tasks": total, "workers": count, "batch": batch,
            "dag_wall_s": dag_wall, "dag_wall_polled_s": polled_wall,
            "independent_wall_s": free_wall, "ratio_dag_over_independent": dag_wall / free_wall,
            "engine_overhead_ms_p50": percentile(&engine, 0.5), "engine_overhead_ms_p99": percentile(&engine, 0.99),
            "ready_to_claimed_ms_p50": percentile(&claim, 0.5), "ready_to_claimed_ms_p99": percentile(&claim, 0.99),
        })
    );
    Ok(())
}

async fn chain(api: &Api, worker_key: &str, args: &[String]) -> Result<()> {
    let length = flag(args, "--length", 40)?;
    let runs = flag(args, "--runs", 10)?;
    let mut yaml = String::from("name: bench-chain\ntasks:\n  - {name: s00}\n");
    for i in 1..length {
        yaml.push_str(&format!(
            "  - {{name: s{i:02}, depends_on: [s{:02}]}}\n",
            i - 1
        ));
    }
    api.put_flow("bench-chain", yaml).await?;
    let handle = workers(&api.base, worker_key, 1, 1)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut walls = Vec::new();
    for _ in 0..runs {
        let id = api.start(json!({"flow": "bench-chain"})).await?;
        let done = api.finished(&id, Duration::from_millis(50)).await?;
        let created = time(&done["created_at"]).ok_or("no created_at")?;
        let last = done["task_executions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| time(&t["completed_at"]))
            .max()
            .ok_or("no task")?;
        walls.push(millis(last - created) / 1000.0);
    }
    stop(handle).await;
    let mut sorted = walls.clone();
    sorted.sort_by(f64::total_cmp);
    let median = percentile(&sorted, 0.5);
    println!(
        "{}",
        json!({
            "bench": "chain", "length": length, "runs": runs,
            "wall_s_median": median, "wall_s_all": walls,
            "overhead_per_step_ms": median * 1000.0 / length as f64,
        })
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let base = std::env::var("FLOWEXEC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("FLOWEXEC_KEY").map_err(|_| "set FLOWEXEC_KEY to a write key")?;
    let worker_key = std::env::var("FLOWEXEC_WORKER_KEY")
        .map_err(|_| "set FLOWEXEC_WORKER_KEY to a worker key")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let api = Api {
        http: reqwest::Client::new(),
        base: base.clone(),
        key,
    };
    match args.first().map(String::as_str) {
        Some("dag") => dag(&api, &worker_key, &args).await,
        Some("chain") => chain(&api, &worker_key, &args).await,
        _ => Err("usage: flow_bench dag|chain [--flags]".into()),
    }
}
