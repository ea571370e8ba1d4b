//! The binary on its embedded default: SQLite with nothing configured,
//! first-start bootstrap, restarts and crashes that lose nothing
//! acknowledged, many concurrent writers, and clear errors for bad URLs.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use flowexec_domain::{Actor, Role};
use flowexec_testkit::TestSqlite;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::binary::ServerProcess;
use support::{Kind, TestApp, TestResult};

fn post_flow(
    client: &reqwest::blocking::Client,
    base: &str,
    key: &str,
    tasks: usize,
) -> anyhow::Result<(StatusCode, Value)> {
    let tasks: Vec<Value> = (0..tasks)
        .map(|i| json!({"task_name": format!("t{i}"), "input": {"i": i}}))
        .collect();
    let response = client
        .post(format!("{base}/flow-executions"))
        .bearer_auth(key)
        .json(&json!({"flow_name": "load", "tasks": tasks}))
        .send()?;
    let status = response.status();
    Ok((status, response.json().unwrap_or(Value::Null)))
}

#[test]
fn with_nothing_configured_the_server_runs_on_sqlite_and_bootstraps_once() -> TestResult {
    let dir = TestSqlite::new()?;
    let server = ServerProcess::start(dir.dir(), &[])?;
    let db = dir.dir().join("data").join("flowexec.db");
    assert!(
        server
            .log
            .iter()
            .take(3)
            .any(|l| l.contains("store: SQLite at") && l.contains(&db.display().to_string())),
        "the first lines do not name the store: {:#?}",
        server.log
    );
    let key_file = dir.dir().join("data").join("admin-key");
    let key = std::fs::read_to_string(&key_file)?.trim().to_owned();
    assert!(key.starts_with("fx_"), "{key}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file)?.permissions().mode() & 0o777,
        0o600
    );
    let printed = server.log.join("\n");
    assert!(
        printed.contains(&key) && printed.contains("curl -s -X POST"),
        "{printed}"
    );

    let client = reqwest::blocking::Client::new();
    let (status, created) = post_flow(&client, &server.base, &key, 2)?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    server.stop()?;

    // A second start: the same data, the same key, no second bootstrap.
    let again = ServerProcess::start(dir.dir(), &[])?;
    let response = client
        .get(format!(
            "{}/flow-executions/{}",
            again.base,
            created["id"].as_str().unwrap_or_default()
        ))
        .bearer_auth(&key)
        .send()?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>()?, created);
    let log = again.stop()?;
    assert!(
        !log.join("\n").contains("first start"),
        "bootstrapped twice: {log:#?}"
    );
    assert_eq!(std::fs::read_to_string(&key_file)?.trim(), key);
    Ok(())
}

#[test]
fn a_bootstrap_never_overwrites_a_key_file_and_each_store_has_its_own() -> TestResult {
    let dir = TestSqlite::new()?;
    let data = dir.dir().join("data");
    std::fs::create_dir_all(&data)?;
    // A key file from an earlier store (the data was since removed).
    std::fs::write(data.join("admin-key"), "fx_an_earlier_key\n")?;
    let server = ServerProcess::start(dir.dir(), &[])?;
    let log = server.stop()?.join("\n");
    assert_eq!(
        std::fs::read_to_string(data.join("admin-key"))?,
        "fx_an_earlier_key\n"
    );
    let saved = std::fs::read_to_string(data.join("admin-key-2"))?;
    assert!(
        saved.starts_with("fx_") && log.contains("admin-key-2"),
        "{log}"
    );

    // Another store, from the same directory: a file named after it.
    let other = dir.dir().join("other.db");
    let url = format!("sqlite://{}", other.display());
    let server = ServerProcess::start(dir.dir(), &[("FLOWEXEC__DATABASE__URL", url.as_str())])?;
    server.stop()?;
    assert!(data.join("admin-key.sqlite-other").exists());
    assert_eq!(std::fs::read_to_string(data.join("admin-key-2"))?, saved);
    Ok(())
}

#[test]
fn bootstrap_can_be_turned_off() -> TestResult {
    let dir = TestSqlite::new()?;
    let server = ServerProcess::start(dir.dir(), &[("FLOWEXEC__BOOTSTRAP__ENABLED", "false")])?;
    let log = server.stop()?;
    assert!(!log.join("\n").contains("first start"));
    assert!(!dir.dir().join("data").join("admin-key").exists());
    Ok(())
}

#[test]
fn nothing_acknowledged_is_lost_when_the_server_is_killed_mid_load() -> TestResult {
    let dir = TestSqlite::new()?;
    let server = ServerProcess::start(dir.dir(), &[])?;
    let key = std::fs::read_to_string(dir.dir().join("data").join("admin-key"))?
        .trim()
        .to_owned();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let (progress, acks) = mpsc::channel::<()>();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (base, key, acknowledged, killed, progress) = (
                server.base.clone(),
                key.clone(),
                acknowledged.clone(),
                killed.clone(),
                progress.clone(),
            );
            thread::spawn(move || -> anyhow::Result<()> {
                let client = reqwest::blocking::Client::new();
                // Bounded: at most 500 requests per client.
                for _ in 0..500 {
                    match post_flow(&client, &base, &key, 4) {
                        Ok((StatusCode::CREATED, body)) => {
                            let id = body["id"]
                                .as_str()
                                .ok_or_else(|| anyhow::anyhow!("a 201 without an id: {body}"))?;
                            acknowledged.lock().unwrap().push(id.to_owned());
                            let _ = progress.send(());
                        }
                        // A killed process answers nothing: any status but
                        // 201 is a failure, whenever it comes.
                        Ok((status, body)) => anyhow::bail!("unexpected {status}: {body}"),
                        Err(_) if killed.load(Ordering::SeqCst) => return Ok(()),
                        Err(error) => anyhow::bail!("a request failed before the kill: {error}"),
                    }
                }
                Ok(())
            })
        })
        .collect();
    drop(progress);
    // Kill once a good number of writes were acknowledged (or the clients
    // stopped, whose errors the joins below report).
    for _ in 0..150 {
        if acks.recv_timeout(Duration::from_secs(60)).is_err() {
            break;
        }
    }
    killed.store(true, Ordering::SeqCst);
    server.kill()?;
    for client in clients {
        client.join().expect("a client panicked")?;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 150,
        "only {} writes before the kill",
        acknowledged.len()
    );

    let restarted = ServerProcess::start(dir.dir(), &[])?;
    let client = reqwest::blocking::Client::new();
    for id in &acknowledged {
        let response = client
            .get(format!("{}/flow-executions/{id}", restarted.base))
            .bearer_auth(&key)
            .send()?;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged flow {id} is lost"
        );
        let body: Value = response.json()?;
        assert_eq!(
            body["task_executions"].as_array().map(Vec::len),
            Some(4),
            "{id} lost tasks"
        );
    }
    restarted.stop()?;
    Ok(())
}

#[test]
fn thirty_two_clients_create_ten_thousand_task_executions_without_a_single_failure() -> TestResult {
    let app = Arc::new(TestApp::spawn(Kind::Sqlite)?);
    let tenant = app.tenant(Role::Write, Actor::System)?;
    let (clients, flows, tasks_per_flow) = (32, 400, 25);
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (app, key, next, barrier) = (
                app.clone(),
                tenant.key.clone(),
                next.clone(),
                barrier.clone(),
            );
            thread::spawn(move || -> anyhow::Result<Vec<String>> {
                let client = reqwest::blocking::Client::new();
                let mut ids = Vec::new();
                barrier.wait();
                while next.fetch_add(1, Ordering::Relaxed) < flows {
                    let (status, body) = post_flow(&client, &app.base, &key, tasks_per_flow)?;
                    anyhow::ensure!(status == StatusCode::CREATED, "{status}: {body}");
                    ids.push(body["id"].as_str().unwrap_or_default().to_owned());
                }
                Ok(ids)
            })
        })
        .collect();
    let mut created = 0;
    for handle in handles {
        created += handle
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??
            .len();
    }
    assert_eq!(created, flows);
    assert_eq!(
        app.count("task_executions")?,
        (flows * tasks_per_flow) as i64
    );
    assert_eq!(
        app.count("task_execution_events")?,
        (flows * tasks_per_flow) as i64
    );
    Ok(())
}

#[test]
fn bad_database_urls_fail_at_start_with_one_clear_line() -> TestResult {
    let dir = TestSqlite::new()?;
    for (url, says) in [
        (
            "mysql://root@localhost/flowexec",
            "unknown scheme \"mysql\"",
        ),
        (
            "sqlite:///proc/flowexec/flowexec.db",
            "cannot open the SQLite database at /proc/flowexec/flowexec.db",
        ),
        (
            "postgres://flowexec_app@127.0.0.1:1/flowexec",
            "cannot connect with database.url",
        ),
    ] {
        let output = support::binary::command()
            .arg("serve")
            .current_dir(dir.dir())
            .env("FLOWEXEC__DATA_DIR", dir.dir().join("data"))
            .env("FLOWEXEC__DATABASE__URL", url)
            .env("FLOWEXEC__DATABASE__CONNECT_TIMEOUT_SECS", "2")
            .env("FLOWEXEC__LOG__LEVEL", "warn")
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url} started");
        assert!(stderr.contains(says), "{url}: {stderr}");
        assert!(!stderr.contains("panicked"), "{url}: {stderr}");
        let error_lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("flowexec: error"))
            .collect();
        assert_eq!(error_lines.len(), 1, "{url}: {stderr}");
    }
    Ok(())
}
