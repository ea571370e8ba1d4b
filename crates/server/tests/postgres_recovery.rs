//! The release binary on PostgreSQL while the database drops its
//! connections (what a failover, a proxy restart or an idle-session timeout
//! does): no request may fail for it, beyond a write whose commit the
//! database may or may not have made (503), and no row of one organization
//! may reach another.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use flowexec_testkit::{TestDb, TestSqlite};
use serde_json::{json, Value};
use support::binary::{organization, ServerProcess};
use support::TestResult;

#[derive(QueryableByName)]
struct Terminated {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Terminates every session of the app role on this database.
fn terminate_sessions(admin: &mut PgConnection, database: &str) -> anyhow::Result<i64> {
    Ok(diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE usename = 'flowexec_app' AND datname = $1",
    )
    .bind::<Text, _>(database)
    .get_result::<Terminated>(admin)?
    .n)
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    ok: usize,
    /// (what, status, when) of each request that did not succeed.
    failed: Vec<(&'static str, u16, Instant)>,
    foreign_rows: usize,
    last_failure: Option<Instant>,
}

#[test]
fn terminated_database_sessions_are_replaced_without_failing_requests() -> TestResult {
    let db = TestDb::new()?;
    let database = db
        .app_url()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let tenants = [
        organization("one", &db.app_url(), Some(&db.admin_url()))?,
        organization("two", &db.app_url(), Some(&db.admin_url()))?,
    ];
    // A folder for the server's data_dir, removed at the end.
    let dir = TestSqlite::new()?;
    let app_url = db.app_url();
    let server = ServerProcess::start(
        dir.dir(),
        &[
            ("FLOWEXEC__DATABASE__URL", app_url.as_str()),
            ("FLOWEXEC__BOOTSTRAP__ENABLED", "false"),
        ],
    )?;
    let client = reqwest::blocking::Client::new();
    // One flow execution per organization, to read back during the storm.
    let mut seeds = Vec::new();
    for (org, key) in &tenants {
        let created: Value = client
            .post(server.url("/flow-executions"))
            .bearer_auth(key)
            .json(&json!({"flow_name": "seed", "tasks": [{"task_name": "a"}]}))
            .send()?
            .json()?;
        let task = created["task_executions"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        seeds.push((org.clone(), key.clone(), task));
    }

    let clients = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (org, key, task) = seeds[i % 2].clone();
            let (base, stop, barrier) = (server.base.clone(), stop.clone(), barrier.clone());
            thread::spawn(move || -> anyhow::Result<Seen> {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()?;
                let mut seen = Seen::default();
                barrier.wait();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Half the clients only read: their connections see no
                    // transaction that could flag them broken.
                    let (what, response) = if i >= clients / 2 && n % 4 == 0 {
                        let body = json!({"flow_name": "load", "tasks": [{"task_name": "t"}]});
                        (
                            "create",
                            client
                                .post(format!("{base}/flow-executions"))
                                .bearer_auth(&key)
                                .json(&body)
                                .send()?,
                        )
                    } else {
                        (
                            "read",
                            client
                                .get(format!("{base}/task-executions/{task}"))
                                .bearer_auth(&key)
                                .send()?,
                        )
                    };
                    let status = response.status();
                    let body: Value = response.json().unwrap_or(Value::Null);
                    if status.is_success() {
                        seen.ok += 1;
                        if body["organization_id"].as_str() != Some(org.as_str()) {
                            seen.foreign_rows += 1;
                        }
                    } else {
                        let now = Instant::now();
                        seen.failed.push((what, status.as_u16(), now));
                        seen.last_failure = Some(now);
                    }
                }
                Ok(seen)
            })
        })
        .collect();

    let mut admin = PgConnection::establish(&db.admin_url())?;
    barrier.wait();
    thread::sleep(Duration::from_millis(300));
    // Once: every session of the app role killed.
    let single = terminate_sessions(&mut admin, &database)?;
    thread::sleep(Duration::from_millis(700));
    let storm_started = Instant::now();
    // Then a storm: every session killed, 20 times over, 50 ms apart.
    let mut killed = 0;
    for _ in 0..20 {
        killed += terminate_sessions(&mut admin, &database)?;
        thread::sleep(Duration::from_millis(50));
    }
    let storm_ended = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);

    let mut total = Seen::default();
    for handle in handles {
        let seen = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        total.ok += seen.ok;
        total.foreign_rows += seen.foreign_rows;
        total.failed.extend(seen.failed);
        total.last_failure = total.last_failure.max(seen.last_failure);
    }
    let recovered_after = total
        .last_failure
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(storm_ended));
    writeln!(
        std::io::stderr(),
        "{single} sessions terminated once, then {killed} in a storm; {} requests succeeded, {} failed {:?}; full service {:?} after the storm",
        total.ok,
        total.failed.len(),
        total.failed.iter().map(|f| (f.0, f.1)).take(10).collect::<Vec<_>>(),
        recovered_after
    )?;
    assert!(killed >= 20, "the storm killed only {killed} sessions");
    assert_eq!(total.foreign_rows, 0, "rows of another organization");
    assert!(total.ok > 100, "only {} requests succeeded", total.ok);
    // Only ever a 503: a dropped connection is never an internal error.
    for (what, status, _) in &total.failed {
        assert_eq!(*status, 503, "{what} answered {status}");
    }
    // After one termination, a read is retried on a fresh connection and
    // never fails; a write fails only if its commit was cut off. (In the
    // storm a retry may meet a killed connection too, and answer 503.)
    for (what, _, when) in &total.failed {
        assert!(
            *what == "create" || *when >= storm_started,
            "a read failed after a single termination"
        );
    }
    assert!(
        total.failed.len() * 100 <= total.ok,
        "{} of {} requests failed",
        total.failed.len(),
        total.ok
    );
    assert!(
        recovered_after < Duration::from_secs(1),
        "requests still failed {recovered_after:?} after the storm"
    );
    server.stop()?;
    Ok(())
}
