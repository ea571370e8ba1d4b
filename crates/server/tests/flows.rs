//! Flows over real HTTP on both stores, run by real workers
//! (`flowexec-worker`): definitions stored and refused, every endpoint's
//! callers, a diamond with typed inputs, a fan-out of 1,000 and a for_each
//! of 500, a failing branch, rerun from the middle, cancel while tasks
//! run, and two upstreams completing at the same instant on two server
//! instances (two stores' pools on one database).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use flowexec_domain::{Actor, Role};
use flowexec_worker::{HttpTransport, TaskError, Worker, WorkerConfig};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{Kind, TestApp, TestResult};

/// Calls with a key, answering the status and the JSON body (null if none).
fn call(request: RequestBuilder, key: Option<&str>) -> anyhow::Result<(StatusCode, Value)> {
    let request = match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    };
    let response: Response = request.send()?;
    let status = response.status();
    let text = response.text()?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    };
    Ok((status, body))
}

/// A server on `kind`, an organization with a write key, and a worker key
/// in it.
fn world(kind: Kind) -> anyhow::Result<(TestApp, support::Tenant, String)> {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Write, Actor::Integration)?;
    let worker_key = app.key(&tenant, Role::Worker)?;
    Ok((app, tenant, worker_key))
}

fn put_flow(
    app: &TestApp,
    key: &str,
    name: &str,
    yaml: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    call(
        app.client
            .put(app.url(&format!("/flows/{name}")))
            .header("Content-Type", "application/yaml")
            .body(yaml.to_owned()),
        Some(key),
    )
}

fn start(app: &TestApp, key: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    call(
        app.client.post(app.url("/flow-executions")).json(&body),
        Some(key),
    )
}

fn flow_execution(app: &TestApp, key: &str, id: &str) -> anyhow::Result<Value> {
    let (status, body) = call(
        app.client.get(app.url(&format!("/flow-executions/{id}"))),
        Some(key),
    )?;
    anyhow::ensure!(status == StatusCode::OK, "{status}: {body}");
    Ok(body)
}

/// Waits until the flow execution's status is one of `statuses`.
fn wait_for(
    app: &TestApp,
    key: &str,
    id: &str,
    statuses: &[&str],
    seconds: u64,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let body = flow_execution(app, key, id)?;
        if statuses.iter().any(|s| body["status"] == *s) {
            return Ok(body);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "still {} after {seconds} s",
            body["status"]
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Each task's latest attempt by name (tasks that run once).
fn latest(body: &Value) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for task in body["task_executions"].as_array().into_iter().flatten() {
        let name = task["task_name"].as_str().unwrap_or_default().to_owned();
        let newer = out
            .get(&name)
            .is_none_or(|t| t["execution_index"].as_i64() < task["execution_index"].as_i64());
        if newer {
            out.insert(name, task.clone());
        }
    }
    out
}

/// A worker over HTTP running `handler` for each of `names` (none: for
/// every task) until `stop` resolves; its own thread and runtime.
fn run_worker<F, Fut>(
    app: &TestApp,
    key: &str,
    names: &[String],
    concurrency: usize,
    handler: F,
) -> anyhow::Result<Running>
where
    F: Fn(Option<Value>, flowexec_worker::Task) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    let transport = HttpTransport::new(&app.base, key)?;
    let config = WorkerConfig {
        concurrency,
        claim_batch: concurrency,
        report_batch: 25,
        report_linger: Duration::from_millis(5),
        wait_seconds: 1,
        lease_seconds: 5,
        ..WorkerConfig::new("flows-test")
    };
    let mut worker = Worker::new(transport, config);
    if names.is_empty() {
        worker = worker.handle_any(handler);
    } else {
        for name in names {
            worker = worker.handle_json(name, handler.clone());
        }
    }
    Ok(spawn(worker))
}

/// A running worker: its stopper and its thread.
type Running = (tokio::sync::oneshot::Sender<()>, thread::JoinHandle<()>);

/// Runs `worker` on a thread and runtime of its own until stopped.
fn spawn(worker: Worker<HttpTransport>) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let joined = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(worker.run(async {
                let _ = stopped.await;
            }));
        }
    });
    (stop, joined)
}

fn stop_worker(worker: Running) {
    let _ = worker.0.send(());
    let _ = worker.1.join();
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const DIAMOND: &str = "\
name: diamond
input_schema: {type: object, required: [n]}
tasks:
  - name: a
    input: {n: \"{{ flow.input.n }}\", obj: \"{{ flow.input }}\"}
  - name: b
    depends_on: [a]
    input: {from_a: \"{{ tasks.a.output }}\"}
  - name: c
    depends_on: [a]
    input: \"n is {{ tasks.a.output.n }}\"
  - name: d
    depends_on: [b, c]
    input: {b: \"{{ tasks.b.output.from_a.n }}\", c: \"{{ tasks.c.output }}\"}
";

/// A diamond run by a real worker that echoes its input: each task gets
/// its input rendered from upstream outputs, numbers stay numbers and
/// objects stay objects, and the flow completes; its graph says so.
fn a_diamond_runs_with_typed_inputs(kind: Kind) -> TestResult {
    let (app, tenant, worker_key) = world(kind)?;
    let (status, stored) = put_flow(&app, &tenant.key, "diamond", DIAMOND)?;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let (status, created) = start(
        &app,
        &tenant.key,
        json!({"flow": "diamond", "input": {"n": 7}}),
    )?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["task_executions"].as_array().map(Vec::len), Some(1));
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let worker = run_worker(
        &app,
        &worker_key,
        &names(&["a", "b", "c", "d"]),
        4,
        |input, _| async move { Ok(input.unwrap_or(Value::Null)) },
    )?;
    let done = wait_for(&app, &tenant.key, &id, &["completed", "failed"], 30);
    stop_worker(worker);
    let done = done?;
    assert_eq!(done["status"], "completed");
    let tasks = latest(&done);
    assert_eq!(tasks["a"]["input"], json!({"n": 7, "obj": {"n": 7}}));
    assert_eq!(
        tasks["b"]["input"],
        json!({"from_a": {"n": 7, "obj": {"n": 7}}})
    );
    assert_eq!(tasks["c"]["input"], json!("n is 7"));
    assert_eq!(tasks["d"]["input"], json!({"b": 7, "c": "n is 7"}));
    assert_eq!(
        done["task_executions"].as_array().map(Vec::len),
        Some(4),
        "each task exactly once"
    );

    let (status, graph) = call(
        app.client
            .get(app.url(&format!("/flow-executions/{id}/graph"))),
        Some(&tenant.key),
    )?;
    assert_eq!(status, StatusCode::OK);
    let states: Vec<(&str, &str)> = graph["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            (
                n["task_name"].as_str().unwrap_or(""),
                n["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("a", "completed"),
            ("b", "completed"),
            ("c", "completed"),
            ("d", "completed")
        ]
    );
    assert_eq!(graph["edges"].as_array().map(Vec::len), Some(4));
    Ok(())
}

on_both_backends!(a_diamond_runs_with_typed_inputs);

/// A root fanning out to 1,000 tasks, then a for_each over 500 items, run
/// by real workers: every task once, the for_each's outputs in item order.
fn a_fan_out_of_1000_and_a_for_each_of_500_complete_each_task_once(kind: Kind) -> TestResult {
    let (app, tenant, worker_key) = world(kind)?;
    let mut yaml = String::from("name: wide\ntasks:\n  - name: root\n");
    for i in 0..1000 {
        yaml.push_str(&format!("  - {{name: t{i}, depends_on: [root]}}\n"));
    }
    yaml.push_str("  - name: each\n    depends_on: [t999]\n    for_each: \"{{ tasks.root.output.items }}\"\n    input: \"{{ item }}\"\n");
    yaml.push_str(
        "  - name: sum\n    depends_on: [each]\n    input: \"{{ tasks.each.outputs }}\"\n",
    );
    let (status, body) = put_flow(&app, &tenant.key, "wide", &yaml)?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, created) = start(&app, &tenant.key, json!({"flow": "wide"}))?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let items: Vec<Value> = (0..500).map(|i| json!(i)).collect();
    // One handler for every name (a claim names at most 100).
    let worker = run_worker(&app, &worker_key, &[], 32, move |input, task| {
        let items = items.clone();
        async move {
            Ok(match task.task_name.as_str() {
                "root" => json!({"items": items}),
                "each" => json!(input.and_then(|v| v.as_i64()).unwrap_or(-1) * 2),
                _ => json!(task.execution_index),
            })
        }
    })?;
    let done = wait_for(&app, &tenant.key, &id, &["completed", "failed"], 120);
    stop_worker(worker);
    let done = done?;
    assert_eq!(done["status"], "completed");
    let tasks = done["task_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tasks.len(), 1 + 1000 + 500 + 1, "every task exactly once");
    assert!(tasks.iter().all(|t| t["status"] == "completed"));
    let mut each: Vec<(i64, i64)> = tasks
        .iter()
        .filter(|t| t["task_name"] == "each")
        .map(|t| {
            (
                t["execution_index"].as_i64().unwrap_or(-1),
                t["iteration"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    each.sort_unstable();
    assert!(each
        .iter()
        .enumerate()
        .all(|(i, (index, iteration))| *index == i as i64 && *iteration == i as i64));
    let sum = latest(&done)["sum"]["input"].clone();
    let expected: Vec<i64> = (0..500).map(|i| i * 2).collect();
    assert_eq!(sum, json!(expected), "the outputs in item order");
    Ok(())
}

on_both_backends!(a_fan_out_of_1000_and_a_for_each_of_500_complete_each_task_once);

const BRANCHES: &str = "\
name: branches
defaults: {retry: {max_attempts: 2, backoff: {initial_ms: 0}}}
tasks:
  - name: left
  - name: left-after
    depends_on: [left]
  - name: right
  - name: right-after
    depends_on: [right]
";

/// A task failing with no attempt left: what depends on it is never
/// created, the other branch finishes, the flow is failed.
fn a_failing_branch_stops_and_the_other_completes(kind: Kind) -> TestResult {
    let (app, tenant, worker_key) = world(kind)?;
    put_flow(&app, &tenant.key, "branches", BRANCHES)?;
    let (_, created) = start(&app, &tenant.key, json!({"flow": "branches"}))?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let worker = run_worker(
        &app,
        &worker_key,
        &names(&["left", "left-after", "right", "right-after"]),
        4,
        |_, task| async move {
            if task.task_name == "left" {
                Err(TaskError::retryable(json!("no")))
            } else {
                Ok(json!("ok"))
            }
        },
    )?;
    // Failed at once on left's last attempt; right's branch goes on.
    let result = (|| -> anyhow::Result<Value> {
        wait_for(&app, &tenant.key, &id, &["failed"], 30)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = flow_execution(&app, &tenant.key, &id)?;
            if latest(&body)
                .get("right-after")
                .is_some_and(|t| t["status"] == "completed")
            {
                return Ok(body);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "right-after did not complete: {body}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    })();
    stop_worker(worker);
    let body = result?;
    let tasks = latest(&body);
    assert_eq!(body["status"], "failed");
    assert!(
        !tasks.contains_key("left-after"),
        "downstream of a failure is never created"
    );
    assert_eq!(
        (
            tasks["left"]["execution_index"].as_i64(),
            tasks["left"]["status"].as_str()
        ),
        (Some(1), Some("failed"))
    );
    Ok(())
}

on_both_backends!(a_failing_branch_stops_and_the_other_completes);

const CHAIN: &str = "\
name: chain
tasks:
  - name: a
  - name: b
    depends_on: [a]
    input: \"{{ tasks.a.output }}\"
  - name: c
    depends_on: [b]
    input: \"{{ tasks.b.output }}\"
  - name: d
    depends_on: [c]
  - name: side
    depends_on: [a]
";

/// Rerun from the middle: exactly that task and those downstream of it go
/// stale and run again; the rest keep their single attempt.
fn a_rerun_from_the_middle_stales_exactly_its_downstream(kind: Kind) -> TestResult {
    let (app, tenant, worker_key) = world(kind)?;
    put_flow(&app, &tenant.key, "chain", CHAIN)?;
    let (_, created) = start(&app, &tenant.key, json!({"flow": "chain"}))?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let worker = run_worker(
        &app,
        &worker_key,
        &names(&["a", "b", "c", "d", "side"]),
        4,
        |_, task| async move {
            Ok(json!(format!(
                "{}#{}",
                task.task_name, task.execution_index
            )))
        },
    )?;
    let result = (|| -> anyhow::Result<Value> {
        wait_for(&app, &tenant.key, &id, &["completed"], 30)?;
        let rerun = app.url(&format!("/flow-executions/{id}/rerun"));
        // Refused: an unknown task (422); then accepted.
        let (status, _) = call(
            app.client.post(&rerun).json(&json!({"from_task": "nope"})),
            Some(&tenant.key),
        )?;
        anyhow::ensure!(status == StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        let (status, body) = call(
            app.client.post(&rerun).json(&json!({"from_task": "b"})),
            Some(&tenant.key),
        )?;
        anyhow::ensure!(status == StatusCode::OK, "{status}: {body}");
        let mut stale: Vec<String> = body["task_executions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["status"] == "stale")
            .map(|t| t["task_name"].as_str().unwrap_or("").to_owned())
            .collect();
        stale.sort();
        anyhow::ensure!(stale == ["b", "c", "d"], "stale: {stale:?}");
        wait_for(&app, &tenant.key, &id, &["completed"], 30)
    })();
    stop_worker(worker);
    let body = result?;
    let attempts = |name: &str| {
        body["task_executions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["task_name"] == name)
            .count()
    };
    assert_eq!(
        ["a", "b", "c", "d", "side"].map(attempts),
        [1, 2, 2, 2, 1],
        "exactly b and its downstream ran again"
    );
    let tasks = latest(&body);
    assert_eq!(
        tasks["c"]["input"],
        json!("b#1"),
        "c's input from b's new run"
    );
    Ok(())
}

on_both_backends!(a_rerun_from_the_middle_stales_exactly_its_downstream);

/// Cancel while tasks run: the queued one is deleted, the running ones
/// failed; their worker hears lease_lost (its handlers see the
/// cancellation); nothing more is created.
fn cancel_while_tasks_run_stops_everything(kind: Kind) -> TestResult {
    let (app, tenant, worker_key) = world(kind)?;
    put_flow(
        &app,
        &tenant.key,
        "slow",
        "name: slow\ntasks:\n  - name: hold\n  - name: hold2\n  - name: queued-one\n  - name: after\n    depends_on: [hold]\n",
    )?;
    let (_, created) = start(&app, &tenant.key, json!({"flow": "slow"}))?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let cancelled_seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = cancelled_seen.clone();
    // Only the two holding tasks are handled: queued-one stays queued.
    let worker = run_worker(
        &app,
        &worker_key,
        &names(&["hold", "hold2"]),
        2,
        move |_, task| {
            let seen = seen.clone();
            async move {
                task.cancelled().await;
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(json!("too late"))
            }
        },
    )?;
    let result = (|| -> anyhow::Result<Value> {
        wait_for(&app, &tenant.key, &id, &["running"], 30)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while latest(&flow_execution(&app, &tenant.key, &id)?)
            .values()
            .filter(|t| t["status"] == "running")
            .count()
            < 2
        {
            anyhow::ensure!(Instant::now() < deadline, "the holding tasks did not start");
            thread::sleep(Duration::from_millis(50));
        }
        let (status, body) = call(
            app.client
                .post(app.url(&format!("/flow-executions/{id}/cancel"))),
            Some(&tenant.key),
        )?;
        anyhow::ensure!(status == StatusCode::OK, "{status}: {body}");
        // Both handlers hear of it at their next heartbeat.
        let deadline = Instant::now() + Duration::from_secs(15);
        while cancelled_seen.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "a handler never saw the cancellation"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Ok(body)
    })();
    stop_worker(worker);
    let body = result?;
    assert_eq!(body["status"], "cancelled");
    let after = flow_execution(&app, &tenant.key, &id)?;
    let tasks = latest(&after);
    assert_eq!(tasks["queued-one"]["status"], "deleted");
    for name in ["hold", "hold2"] {
        assert_eq!(tasks[name]["status"], "failed", "{name}");
        assert_eq!(tasks[name]["error"], json!({"code": "cancelled"}));
    }
    assert_eq!(
        after["task_executions"].as_array().map(Vec::len),
        Some(3),
        "nothing created after"
    );
    assert_eq!(after["status"], "cancelled");
    let (status, _) = call(
        app.client
            .post(app.url(&format!("/flow-executions/{id}/cancel"))),
        Some(&tenant.key),
    )?;
    assert_eq!(
        status,
        StatusCode::OK,
        "cancelling again answers it as it is"
    );
    Ok(())
}

on_both_backends!(cancel_while_tasks_run_stops_everything);

/// Every flow endpoint: success, bad input (nothing changed), another
/// organization's key (404, as a missing name), no key (401), a read key
/// where writing is needed (403).
fn every_flow_endpoint_answers_each_caller(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Write, Actor::Integration)?;
    let read = app.key(&tenant, Role::Read)?;
    let other = app.tenant(Role::Admin, Actor::System)?;
    let (status, _) = put_flow(&app, &tenant.key, "diamond", DIAMOND)?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = put_flow(&app, &tenant.key, "diamond", DIAMOND)?;
    assert_eq!(
        (status, body["version"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    // Bad input: every error, located; nothing stored.
    let (status, body) = put_flow(
        &app,
        &tenant.key,
        "diamond",
        &DIAMOND.replace("[b, c]", "[b, zz]"),
    )?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "invalid_definition");
    assert_eq!(body["errors"][0]["field"], "/tasks/3/depends_on/1");
    assert_eq!(
        (
            body["errors"][0]["line"].as_i64(),
            body["errors"][0]["column"].as_i64()
        ),
        (Some(13), Some(21))
    );
    let (status, body) = put_flow(&app, &tenant.key, "other-name", DIAMOND)?;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/name"))
    );
    let (status, body) = call(app.client.get(app.url("/flows/diamond")), Some(&read))?;
    assert_eq!(
        (status, body["latest_version"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    let (status, body) = call(app.client.get(app.url("/flows")), Some(&read))?;
    assert_eq!(
        (status, body["flows"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let (status, _) = call(
        app.client.get(app.url("/flows/diamond/versions/1")),
        Some(&read),
    )?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        app.client.get(app.url("/flows/diamond/versions/0")),
        Some(&read),
    )?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another organization: 404, exactly as a name that does not exist.
    let (missing_status, missing) =
        call(app.client.get(app.url("/flows/nope")), Some(&tenant.key))?;
    for path in ["/flows/diamond", "/flows/diamond/versions/1"] {
        let (status, body) = call(app.client.get(app.url(path)), Some(&other.key))?;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            (body["code"].clone(), body["detail"].clone()),
            (missing["code"].clone(), missing["detail"].clone())
        );
    }
    assert_eq!(missing_status, StatusCode::NOT_FOUND);
    let (status, body) = call(app.client.get(app.url("/flows")), Some(&other.key))?;
    assert_eq!(
        (status, body["flows"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (status, _) = start(
        &app,
        &other.key,
        json!({"flow": "diamond", "input": {"n": 1}}),
    )?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = put_flow(
        &app,
        &other.key,
        "diamond",
        &DIAMOND.replace("n is", "m is"),
    )?;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the other organization's own flow of that name"
    );
    // No key; a read key writing.
    let (status, _) = call(app.client.get(app.url("/flows")), None)?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = put_flow(&app, &read, "diamond", DIAMOND)?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(app.client.delete(app.url("/flows/diamond")), Some(&read))?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Runs: a mismatching input (nothing created), then one.
    let before = app.count("flow_executions")?;
    let (status, body) = start(
        &app,
        &tenant.key,
        json!({"flow": "diamond", "input": {"m": 1}}),
    )?;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("input"))
    );
    assert_eq!(app.count("flow_executions")?, before);
    let (status, body) = start(
        &app,
        &tenant.key,
        json!({"flow": "diamond", "version": 2, "input": {"n": 1}}),
    )?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, created) = start(
        &app,
        &tenant.key,
        json!({"flow": "diamond", "input": {"n": 1}}),
    )?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    for (path, method) in [("graph", "GET"), ("cancel", "POST"), ("rerun", "POST")] {
        let url = app.url(&format!("/flow-executions/{id}/{path}"));
        let request = |key: Option<&str>| -> anyhow::Result<(StatusCode, Value)> {
            let builder = if method == "GET" {
                app.client.get(&url)
            } else {
                app.client.post(&url).json(&json!({"from_task": "a"}))
            };
            call(builder, key)
        };
        assert_eq!(
            request(Some(&other.key))?.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(request(None)?.0, StatusCode::UNAUTHORIZED, "{path}");
        if method == "POST" {
            assert_eq!(request(Some(&read))?.0, StatusCode::FORBIDDEN, "{path}");
        }
    }
    let (status, body) = call(
        app.client
            .post(app.url(&format!("/flow-executions/{id}/rerun")))
            .json(&json!({"from_task": "a", "x": 1})),
        Some(&tenant.key),
    )?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = call(
        app.client
            .post(app.url(&format!("/flow-executions/{id}/rerun")))
            .json(&json!({"from_task": "b"})),
        Some(&tenant.key),
    )?;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_flow_state")),
        "b has not run"
    );
    // Deleted: no new runs; the other organization's flow untouched.
    let (status, _) = call(
        app.client.delete(app.url("/flows/diamond")),
        Some(&tenant.key),
    )?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = start(
        &app,
        &tenant.key,
        json!({"flow": "diamond", "input": {"n": 1}}),
    )?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(app.client.get(app.url("/flows/diamond")), Some(&other.key))?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

on_both_backends!(every_flow_endpoint_answers_each_caller);

/// Two upstream tasks completing at the same instant, each reported to
/// its own server (its own pool on the one database), many times over:
/// the downstream task is created exactly once every time.
fn two_upstreams_completing_at_once_on_two_servers_create_the_downstream_once(
    kind: Kind,
) -> TestResult {
    use flowexec_server::store::{open_store, Backend, Purpose};
    use flowexec_server::with_store;
    use flowexec_service::{ClaimRequest, Outcome, Report, WorkerUseCases, Workers};

    let (app, tenant, worker_key) = world(kind)?;
    put_flow(
        &app,
        &tenant.key,
        "join",
        "name: join\ntasks:\n  - name: x\n  - name: y\n  - name: z\n    depends_on: [x, y]\n",
    )?;
    let settings = support::settings(&app.db);
    let backend = Backend::from_settings(&settings)?;
    let client = Client::new();
    let auth = |key: &str| -> anyhow::Result<flowexec_domain::Principal> {
        let store = open_store(&settings, &backend, Purpose::Serve)?;
        let principal = with_store!(&store, s => {
            use flowexec_service::Authenticate;
            flowexec_service::KeyAuthenticator::new(s.clone(), &flowexec_service::KeyCacheSettings::default())
                .authenticate(key)?
        });
        Ok(principal)
    };
    let principal = auth(&worker_key)?;
    // Two "servers": the worker use cases over two stores (pools).
    let servers: Vec<Arc<dyn WorkerUseCases>> = (0..2)
        .map(|_| -> anyhow::Result<Arc<dyn WorkerUseCases>> {
            let store = open_store(&settings, &backend, Purpose::Serve)?;
            Ok(with_store!(&store, s => Arc::new(Workers::new(s.clone(), settings.workers.into())) as Arc<dyn WorkerUseCases>))
        })
        .collect::<anyhow::Result<_>>()?;
    let rounds = 25;
    for round in 0..rounds {
        let (status, created) = call(
            client
                .post(app.url("/flow-executions"))
                .json(&json!({"flow": "join"})),
            Some(&tenant.key),
        )?;
        anyhow::ensure!(status == StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        let claimed = servers[0].claim(
            &principal,
            &ClaimRequest {
                worker_id: flowexec_domain::WorkerId::parse("w")?,
                task_names: vec![],
                limit: 10,
                lease_seconds: 60,
            },
        )?;
        let ours: Vec<_> = claimed
            .tasks
            .into_iter()
            .filter(|t| t.flow_execution_id.to_string() == id)
            .collect();
        anyhow::ensure!(ours.len() == 2, "round {round}: claimed {}", ours.len());
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = ours
            .into_iter()
            .zip(servers.iter().cloned())
            .map(|(task, server)| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    server.report(
                        &principal,
                        Report {
                            task_execution_id: task.id,
                            worker_id: task
                                .lease
                                .worker_id
                                .clone()
                                .unwrap_or_else(|| unreachable!()),
                            outcome: Outcome::Completed {
                                output: Some(json!(1)),
                            },
                        },
                    )
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a reporter panicked"))??;
        }
        let body = flow_execution(&app, &tenant.key, &id)?;
        let z = body["task_executions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["task_name"] == "z")
            .count();
        assert_eq!(z, 1, "round {round}: z created {z} times");
        assert_eq!(body["status"], "running");
    }
    Ok(())
}

on_both_backends!(two_upstreams_completing_at_once_on_two_servers_create_the_downstream_once);

/// A server killed (SIGKILL) in the middle of a run of 1,000 tasks (10
/// layers of 100, each depending on 3 above), then started again on the
/// same port: the workers carry on through it, and the flow completes with
/// every task completed exactly once; any other attempt is a run the kill
/// interrupted, failed by the sweeper and retried.
fn a_server_killed_mid_flow_restarts_and_every_task_completes_once(kind: Kind) -> TestResult {
    use support::binary::{organization, ServerProcess};

    let db = support::Database::new(kind)?;
    let url = db.url();
    let admin_url = match &db {
        support::Database::Postgres(pg) => Some(pg.admin_url()),
        support::Database::Sqlite(_) => None,
    };
    let home = flowexec_testkit::TestSqlite::new()?;
    let (_, admin_key) = organization("kill", &url, admin_url.as_deref())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("FLOWEXEC__DATABASE__URL", url.as_str()),
        ("FLOWEXEC__SERVER__BIND", bind.as_str()),
        ("FLOWEXEC__BOOTSTRAP__ENABLED", "false"),
        ("FLOWEXEC__WORKERS__SWEEP_INTERVAL_SECS", "1"),
    ];
    let server = ServerProcess::start(home.dir(), &env)?;
    let base = server.base.clone();
    let client = Client::new();
    let url_of = |path: &str| format!("{base}{path}");
    let (status, issued) = call(
        client
            .post(url_of("/api-keys"))
            .json(&json!({"role": "worker"})),
        Some(&admin_key),
    )?;
    anyhow::ensure!(status == StatusCode::CREATED, "{issued}");
    let worker_key = issued["key"].as_str().unwrap_or_default().to_owned();
    let mut yaml = String::from(
        "name: layered\ndefaults: {retry: {max_attempts: 10, backoff: {initial_ms: 50, max_ms: 200}}}\ntasks:\n",
    );
    for layer in 0..10 {
        for j in 0..100 {
            if layer == 0 {
                yaml.push_str(&format!("  - {{name: l0-{j}}}\n"));
            } else {
                let deps: Vec<String> = (0..3)
                    .map(|k| format!("l{}-{}", layer - 1, (j + k) % 100))
                    .collect();
                yaml.push_str(&format!(
                    "  - {{name: l{layer}-{j}, depends_on: [{}]}}\n",
                    deps.join(", ")
                ));
            }
        }
    }
    let (status, body) = call(
        client
            .put(url_of("/flows/layered"))
            .header("Content-Type", "application/yaml")
            .body(yaml),
        Some(&admin_key),
    )?;
    anyhow::ensure!(status == StatusCode::CREATED, "{body}");
    let (status, created) = call(
        client
            .post(url_of("/flow-executions"))
            .json(&json!({"flow": "layered"})),
        Some(&admin_key),
    )?;
    anyhow::ensure!(status == StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();

    let transport = HttpTransport::new(&base, &worker_key)?;
    let config = WorkerConfig {
        concurrency: 16,
        claim_batch: 16,
        report_batch: 16,
        report_linger: Duration::from_millis(5),
        wait_seconds: 1,
        lease_seconds: 5,
        ..WorkerConfig::new("kill-test")
    };
    let worker = Worker::new(transport, config).handle_any(|_, _| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, TaskError>(json!("done"))
    });
    let running = spawn(worker);
    let completed_count = |body: &Value| {
        body["task_executions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["status"] == "completed")
            .count()
    };
    let result = (|| -> anyhow::Result<Value> {
        // Kill it once a quarter of the tasks completed.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, body) = call(
                client.get(url_of(&format!("/flow-executions/{id}"))),
                Some(&admin_key),
            )?;
            if completed_count(&body) >= 250 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "a quarter did not complete in 60 s"
            );
            thread::sleep(Duration::from_millis(20));
        }
        server.kill()?;
        let restarted = ServerProcess::start(home.dir(), &env)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let body = loop {
            let (status, body) = call(
                client.get(restarted.url(&format!("/flow-executions/{id}"))),
                Some(&admin_key),
            )?;
            anyhow::ensure!(status == StatusCode::OK, "{status}");
            if body["status"] == "completed" || body["status"] == "failed" {
                break body;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not done in 120 s after the restart: {}",
                completed_count(&body)
            );
            thread::sleep(Duration::from_millis(100));
        };
        restarted.stop()?;
        Ok(body)
    })();
    stop_worker(running);
    let body = result?;
    assert_eq!(body["status"], "completed");
    let mut by_task: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for task in body["task_executions"].as_array().into_iter().flatten() {
        by_task
            .entry(task["task_name"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(task.clone());
    }
    assert_eq!(by_task.len(), 1000, "every task of the definition");
    for (name, attempts) in &by_task {
        let completed = attempts
            .iter()
            .filter(|t| t["status"] == "completed")
            .count();
        assert_eq!(completed, 1, "{name}: {attempts:#?}");
        for other in attempts.iter().filter(|t| t["status"] != "completed") {
            assert_eq!(other["status"], "failed", "{name}");
            assert_eq!(other["error"]["code"], "lease_expired", "{name}: {other}");
        }
    }
    Ok(())
}

on_both_backends!(a_server_killed_mid_flow_restarts_and_every_task_completes_once);

/// A worker long-polling (20 s) for the next task of a chain is woken by
/// the completion that creates it, on both stores: five steps end well
/// before a single safety poll (10 s) could have found one of them.
fn a_completion_wakes_the_claim_waiting_for_the_task_it_made_ready(kind: Kind) -> TestResult {
    let (app, tenant, worker_key) = world(kind)?;
    put_flow(
        &app,
        &tenant.key,
        "steps",
        "name: steps\ntasks:\n  - {name: s0}\n  - {name: s1, depends_on: [s0]}\n  - {name: s2, depends_on: [s1]}\n  - {name: s3, depends_on: [s2]}\n  - {name: s4, depends_on: [s3]}\n",
    )?;
    let transport = HttpTransport::new(&app.base, &worker_key)?;
    let config = WorkerConfig {
        wait_seconds: 20,
        ..WorkerConfig::new("long-poller")
    };
    let worker =
        Worker::new(transport, config).handle_any(|_, _| async { Ok::<_, TaskError>(json!(1)) });
    let running = spawn(worker);
    // The worker is waiting on an empty queue before the run starts.
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let result = start(&app, &tenant.key, json!({"flow": "steps"})).and_then(|(_, created)| {
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        wait_for(&app, &tenant.key, &id, &["completed"], 8)
    });
    let took = started.elapsed();
    stop_worker(running);
    result?;
    assert!(took < Duration::from_secs(8), "{took:?}");
    Ok(())
}

on_both_backends!(a_completion_wakes_the_claim_waiting_for_the_task_it_made_ready);
