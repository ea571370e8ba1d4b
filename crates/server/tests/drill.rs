//! Workers at scale, as real processes, with faults: the release binary
//! serving, worker processes (this test binary run again, see
//! [`drill_worker_process`]) running the worker crate over HTTP, and the
//! store read afterwards to prove every task was completed exactly once:
//! one `running → completed` event, by the worker that claimed it and was
//! told so, nothing left queued or running.
//!
//! - 8 workers drain 20,000 tasks through 2 server instances on one
//!   PostgreSQL, and through one server on SQLite;
//! - a worker killed (SIGKILL) while holding leases: its tasks fail with
//!   `lease_expired` within lease + sweep interval and their next attempts
//!   are completed by the others;
//! - a server instance killed under load: the workers carry on through
//!   the other;
//! - the database restarted under load: 503s, then recovery, nothing lost.
//!
//! Every wait is bounded; everything listens on loopback only.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use flowexec_testkit::{Cluster, TestDb, TestSqlite};
use flowexec_worker::{
    ClaimRequest, Claimed, HttpTransport, RunResult, TaskError, Transport, TransportError, Worker,
    WorkerConfig,
};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::binary::{organization, ServerProcess};
use support::TestResult;
use uuid::Uuid;

/// The environment variable that turns this test binary into a worker.
const WORKER: &str = "FLOWEXEC_DRILL_WORKER";
/// Task names of every flow (a claim names at most 100).
const NAMES: usize = 100;
/// The lease the workers ask for, and the sweep interval of the servers.
const LEASE_SECONDS: u32 = 5;
const SWEEP_SECONDS: u64 = 1;

/// The drills start many processes: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn task_name(i: usize) -> String {
    format!("w{i:02}")
}

// ---------------------------------------------------------------------------
// The worker process.

/// What a worker process is asked to be.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkerSpec {
    /// Server base URLs: the first is its own, the others where it turns
    /// when a call fails.
    servers: Vec<String>,
    key: String,
    worker_id: String,
    concurrency: usize,
    claim_batch: usize,
    report_batch: usize,
    /// Each task takes this long; `None`: it never ends (a hung worker).
    work_ms: Option<u64>,
    /// Where the ids of the completions the server acknowledged are written
    /// when the worker stops (stdin closed).
    out: PathBuf,
}

/// Not a test of its own: the body of the worker processes the drills
/// start (`--ignored --exact drill_worker_process` with [`WORKER`] set).
#[test]
#[ignore = "the body of the drills' worker processes"]
fn drill_worker_process() -> TestResult {
    let Ok(spec) = std::env::var(WORKER) else {
        return Ok(());
    };
    let spec: WorkerSpec = serde_json::from_str(&spec)?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let transport = Failover::new(&spec.servers, &spec.key)?;
        let acknowledged = transport.acknowledged.clone();
        let config = WorkerConfig {
            concurrency: spec.concurrency,
            lease_seconds: LEASE_SECONDS,
            wait_seconds: 5,
            claim_batch: spec.claim_batch,
            report_batch: spec.report_batch,
            grace: Duration::from_secs(10),
            ..WorkerConfig::new(&spec.worker_id)
        };
        let work_ms = spec.work_ms;
        let worker = (0..NAMES).fold(Worker::new(transport, config), |worker, i| {
            worker.handle_json(&task_name(i), move |input, _task| async move {
                match work_ms {
                    Some(0) => {}
                    Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                    None => std::future::pending::<()>().await,
                }
                Ok::<_, TaskError>(json!({"done": input}))
            })
        });
        let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
        thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = closed.send(());
        });
        worker
            .run(async {
                let _ = stdin_closed.await;
            })
            .await;
        let mut out = File::create(&spec.out)?;
        for id in acknowledged
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
        {
            writeln!(out, "{id}")?;
        }
        out.sync_all()?;
        anyhow::Ok(())
    })
}

/// Over HTTP to one server, turning to the next when a call fails for any
/// reason but a lost lease (what a load balancer would do); and a record of
/// the completions the server acknowledged.
struct Failover {
    servers: Vec<HttpTransport>,
    current: AtomicUsize,
    acknowledged: Arc<Mutex<Vec<Uuid>>>,
}

impl Failover {
    fn new(servers: &[String], key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            servers: servers
                .iter()
                .map(|url| HttpTransport::new(url, key))
                .collect::<Result<_, _>>()?,
            current: AtomicUsize::new(0),
            acknowledged: Arc::default(),
        })
    }

    /// `call` on the current server, and once more on the next when it
    /// fails.
    async fn call<R>(
        &self,
        call: impl for<'a> Fn(&'a HttpTransport) -> BoxFuture<'a, Result<R, TransportError>>,
    ) -> Result<R, TransportError> {
        let first = self.current.load(Ordering::Relaxed) % self.servers.len();
        match call(&self.servers[first]).await {
            Err(TransportError::Other(_)) => {
                let next = (first + 1) % self.servers.len();
                self.current.store(next, Ordering::Relaxed);
                call(&self.servers[next]).await
            }
            answer => answer,
        }
    }

    fn acknowledge(&self, id: Uuid) {
        if let Ok(mut acknowledged) = self.acknowledged.lock() {
            acknowledged.push(id);
        }
    }
}

impl Transport for Failover {
    fn claim(&self, request: ClaimRequest) -> BoxFuture<'_, Result<Vec<Claimed>, TransportError>> {
        Box::pin(self.call(move |server| server.claim(request.clone())))
    }

    fn heartbeat(
        &self,
        id: Uuid,
        worker_id: String,
        lease_seconds: u32,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(self.call(move |server| server.heartbeat(id, worker_id.clone(), lease_seconds)))
    }

    fn report(
        &self,
        id: Uuid,
        worker_id: String,
        result: Result<Value, TaskError>,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let completed = result.is_ok();
            self.call(|server| server.report(id, worker_id.clone(), result.clone()))
                .await?;
            if completed {
                self.acknowledge(id);
            }
            Ok(())
        })
    }

    fn report_many(
        &self,
        results: Vec<RunResult>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), TransportError>>, TransportError>> {
        Box::pin(async move {
            let answers = self
                .call(|server| server.report_many(results.clone()))
                .await?;
            for (run, answer) in results.iter().zip(&answers) {
                if run.result.is_ok() && answer.is_ok() {
                    self.acknowledge(run.id);
                }
            }
            Ok(answers)
        })
    }
}

/// A worker process of a drill.
struct WorkerProcess {
    child: Child,
    spec: WorkerSpec,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(spec: WorkerSpec, dir: &Path) -> anyhow::Result<Self> {
        let log = dir.join(format!("{}.log", spec.worker_id));
        let child = Command::new(std::env::current_exe()?)
            .args([
                "drill_worker_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER, serde_json::to_string(&spec)?)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()?;
        Ok(Self { child, spec, log })
    }

    /// Closes its stdin (it stops claiming, finishes what it runs) and
    /// reads what it was told it completed.
    fn stop(mut self) -> anyhow::Result<(String, Vec<Uuid>)> {
        drop(self.child.stdin.take());
        // Its grace periods are 10 s each.
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not stop within 30 s",
                self.spec.worker_id
            );
            thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        anyhow::ensure!(
            status.success(),
            "{} exited {status}: {log}",
            self.spec.worker_id
        );
        let ids = BufReader::new(File::open(&self.spec.out)?)
            .lines()
            .map(|line| Ok(line?.parse()?))
            .collect::<anyhow::Result<_>>()?;
        Ok((self.spec.worker_id.clone(), ids))
    }

    /// SIGKILL: no shutdown at all.
    fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The store, read directly.

enum Store {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// One task execution and its events.
#[derive(Debug, QueryableByName)]
struct Attempt {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    flow: String,
    #[diesel(sql_type = Text)]
    task_name: String,
    #[diesel(sql_type = Integer)]
    execution_index: i32,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    worker_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = BigInt)]
    updated_ms: i64,
    /// queued → running events.
    #[diesel(sql_type = BigInt)]
    claims: i64,
    /// running → completed events.
    #[diesel(sql_type = BigInt)]
    completions: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Store {
    fn open(db: &Database) -> anyhow::Result<Self> {
        Ok(match db {
            Database::Postgres(db, _) => Self::Postgres(PgConnection::establish(&db.admin_url())?),
            Database::Sqlite(db) => {
                Self::Sqlite(SqliteConnection::establish(&db.path().to_string_lossy())?)
            }
        })
    }

    fn attempts(&mut self) -> anyhow::Result<Vec<Attempt>> {
        let updated_ms = match self {
            Self::Postgres(_) => "CAST(floor(extract(epoch FROM t.updated_at) * 1000) AS bigint)",
            // Text timestamps (RFC 3339), as milliseconds since the epoch.
            Self::Sqlite(_) => {
                "CAST(round((julianday(t.updated_at) - 2440587.5) * 86400000) AS bigint)"
            }
        };
        let sql = format!(
            "SELECT CAST(t.id AS TEXT) AS id, CAST(t.flow_execution_id AS TEXT) AS flow, \
                    t.task_name, t.execution_index, t.status, t.worker_id, \
                    CAST(t.error AS TEXT) AS error, {updated_ms} AS updated_ms, \
                    COALESCE(SUM(CASE WHEN e.from_status = 'queued' AND e.to_status = 'running' \
                                 THEN 1 ELSE 0 END), 0) AS claims, \
                    COALESCE(SUM(CASE WHEN e.from_status = 'running' AND e.to_status = 'completed' \
                                 THEN 1 ELSE 0 END), 0) AS completions \
             FROM task_executions t \
             LEFT JOIN task_execution_events e ON e.task_execution_id = t.id \
             GROUP BY t.id, t.flow_execution_id, t.task_name, t.execution_index, t.status, \
                      t.worker_id, CAST(t.error AS TEXT), t.updated_at"
        );
        Ok(match self {
            Self::Postgres(conn) => diesel::sql_query(sql).load(conn)?,
            Self::Sqlite(conn) => diesel::sql_query(sql).load(conn)?,
        })
    }

    fn count(&mut self, where_: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT count(*) AS n FROM task_executions WHERE {where_}");
        Ok(match self {
            Self::Postgres(conn) => diesel::sql_query(sql).get_result::<Count>(conn)?.n,
            Self::Sqlite(conn) => diesel::sql_query(sql).get_result::<Count>(conn)?.n,
        })
    }
}

// ---------------------------------------------------------------------------
// A drill: a store, servers, an organization, workers.

enum Database {
    /// A test database, on a cluster of the test's own when it restarts it.
    Postgres(TestDb, Option<Cluster>),
    Sqlite(TestSqlite),
}

impl Database {
    fn url(&self) -> String {
        match self {
            Self::Postgres(db, _) => db.app_url(),
            Self::Sqlite(db) => db.url(),
        }
    }

    fn admin_url(&self) -> Option<String> {
        match self {
            Self::Postgres(db, _) => Some(db.admin_url()),
            Self::Sqlite(_) => None,
        }
    }
}

/// Its fields drop in order: the servers before their database.
struct Drill {
    servers: Vec<Option<ServerProcess>>,
    db: Database,
    dir: TestSqlite,
    admin_key: String,
    worker_key: String,
    http: reqwest::blocking::Client,
}

impl Drill {
    fn start(db: Database, servers: usize) -> anyhow::Result<Self> {
        // A folder of its own for data, logs and worker outputs.
        let dir = TestSqlite::new()?;
        let url = db.url();
        let (_, admin_key) = organization("drill", &url, db.admin_url().as_deref())?;
        let sweep = SWEEP_SECONDS.to_string();
        let servers = (0..servers)
            .map(|i| {
                let home = dir.dir().join(format!("server-{i}"));
                std::fs::create_dir_all(&home)?;
                ServerProcess::start(
                    &home,
                    &[
                        ("FLOWEXEC__DATABASE__URL", url.as_str()),
                        ("FLOWEXEC__BOOTSTRAP__ENABLED", "false"),
                        ("FLOWEXEC__WORKERS__SWEEP_INTERVAL_SECS", sweep.as_str()),
                        ("FLOWEXEC__WORKERS__RETRY__MAX_ATTEMPTS", "10"),
                        ("FLOWEXEC__WORKERS__RETRY__BACKOFF__INITIAL_MS", "100"),
                        ("FLOWEXEC__WORKERS__RETRY__BACKOFF__MAX_MS", "1000"),
                    ],
                )
                .map(Some)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut drill = Self {
            db,
            dir,
            servers,
            admin_key,
            worker_key: String::new(),
            http,
        };
        let issued = drill.post(0, "/api-keys", &json!({"role": "worker"}))?;
        drill.worker_key = issued["key"].as_str().unwrap_or_default().to_owned();
        Ok(drill)
    }

    fn base(&self, server: usize) -> anyhow::Result<&str> {
        self.servers[server]
            .as_ref()
            .map(|s| s.base.as_str())
            .ok_or_else(|| anyhow::anyhow!("server {server} is gone"))
    }

    fn post(&self, server: usize, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base(server)?))
            .bearer_auth(&self.admin_key)
            .json(body)
            .send()?;
        let status = response.status();
        let body: Value = response.json()?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    /// `flows` flow executions of [`NAMES`] tasks each, through the servers
    /// in turn.
    fn create_tasks(&self, flows: usize) -> anyhow::Result<()> {
        for flow in 0..flows {
            let tasks: Vec<Value> = (0..NAMES)
                .map(|i| json!({"task_name": task_name(i), "input": {"flow": flow, "i": i}}))
                .collect();
            let server = flow % self.servers.len();
            self.post(
                server,
                "/flow-executions",
                &json!({"flow_name": "drill", "tasks": tasks}),
            )?;
        }
        Ok(())
    }

    /// A worker whose own server is `server`.
    fn worker(
        &self,
        name: &str,
        server: usize,
        batch: usize,
        work_ms: Option<u64>,
    ) -> anyhow::Result<WorkerProcess> {
        let mut servers = Vec::new();
        for i in 0..self.servers.len() {
            servers.push(self.base((server + i) % self.servers.len())?.to_owned());
        }
        WorkerProcess::start(
            WorkerSpec {
                servers,
                key: self.worker_key.clone(),
                worker_id: name.to_owned(),
                concurrency: batch.max(8),
                claim_batch: batch,
                report_batch: batch,
                work_ms,
                out: self.dir.dir().join(format!("{name}.out")),
            },
            self.dir.dir(),
        )
    }

    /// Waits until `done` holds of the store (checked every 100 ms) or
    /// `seconds` pass.
    fn wait_for(
        &self,
        seconds: u64,
        what: &str,
        mut done: impl FnMut(&mut Store) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let mut store = Store::open(&self.db)?;
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if done(&mut store)? {
                return Ok(());
            }
            if Instant::now() > deadline {
                let left = store.count("status IN ('queued', 'running')")?;
                anyhow::bail!("{what}: not within {seconds} s ({left} queued or running)");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every task's latest attempt is completed.
    fn wait_until_drained(&self, tasks: usize, seconds: u64) -> anyhow::Result<()> {
        self.wait_for(seconds, "draining", |store| {
            Ok(store.count("status = 'completed'")? >= tasks as i64
                && store.count("status IN ('queued', 'running')")? == 0)
        })
    }

    fn attempts(&self) -> anyhow::Result<Vec<Attempt>> {
        Store::open(&self.db)?.attempts()
    }

    /// The workers' warnings and errors, for a failure's message.
    fn worker_logs(&self) -> String {
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(self.dir.dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                lines.extend(
                    text.lines()
                        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                        .take(10)
                        .map(|l| format!("{name}: {l}")),
                );
            }
        }
        lines.join("\n")
    }
}

/// What the workers said they completed, by worker.
type Acknowledged = Vec<(String, Vec<Uuid>)>;

/// Exactly once: each of `tasks` tasks (a flow and a task name) has exactly
/// one completed attempt, with one `running → completed` event, by the
/// worker that was told it completed it (and no other was); every other
/// attempt failed with `lease_expired`; nothing is queued or running.
/// Returns the attempts that expired.
fn exactly_once(
    attempts: &[Attempt],
    tasks: usize,
    acknowledged: &Acknowledged,
) -> anyhow::Result<Vec<String>> {
    let mut by_task: BTreeMap<(&str, &str), Vec<&Attempt>> = BTreeMap::new();
    for attempt in attempts {
        by_task
            .entry((&attempt.flow, &attempt.task_name))
            .or_default()
            .push(attempt);
    }
    anyhow::ensure!(
        by_task.len() == tasks,
        "{} tasks, not {tasks}",
        by_task.len()
    );
    let mut told: HashMap<String, &str> = HashMap::new();
    for (worker, ids) in acknowledged {
        for id in ids {
            if let Some(other) = told.insert(id.to_string(), worker) {
                anyhow::bail!("{id} acknowledged to both {other} and {worker}");
            }
        }
    }
    let mut expired = Vec::new();
    for (task, attempts) in &by_task {
        let completed: Vec<_> = attempts
            .iter()
            .filter(|a| a.status == "completed")
            .collect();
        anyhow::ensure!(completed.len() == 1, "{task:?}: {attempts:#?}");
        let done = completed[0];
        // Attempts 0, 1, … with no gap; the completed one the last.
        let mut indexes: Vec<i32> = attempts.iter().map(|a| a.execution_index).collect();
        indexes.sort_unstable();
        anyhow::ensure!(
            indexes
                .iter()
                .copied()
                .eq(0..i32::try_from(attempts.len())?)
                && indexes.last() == Some(&done.execution_index),
            "{task:?}: {attempts:#?}"
        );
        anyhow::ensure!(
            done.completions == 1 && done.claims == 1,
            "{task:?}: {done:#?}"
        );
        anyhow::ensure!(
            told.contains_key(&done.id) && told.get(&done.id).copied() == done.worker_id.as_deref(),
            "{} completed by {:?}, acknowledged to {:?}",
            done.id,
            done.worker_id,
            told.get(&done.id)
        );
        for attempt in attempts.iter().filter(|a| a.status != "completed") {
            anyhow::ensure!(
                attempt.status == "failed"
                    && attempt.completions == 0
                    && attempt
                        .error
                        .as_deref()
                        .is_some_and(|e| e.contains("lease_expired")),
                "{task:?}: {attempt:#?}"
            );
            expired.push(attempt.id.clone());
        }
    }
    let completed: HashSet<&str> = attempts
        .iter()
        .filter(|a| a.status == "completed")
        .map(|a| a.id.as_str())
        .collect();
    for id in told.keys() {
        anyhow::ensure!(
            completed.contains(id.as_str()),
            "{id} acknowledged, not completed"
        );
    }
    Ok(expired)
}

fn stop_all(workers: Vec<WorkerProcess>) -> anyhow::Result<Acknowledged> {
    workers.into_iter().map(WorkerProcess::stop).collect()
}

// ---------------------------------------------------------------------------
// The drills.

/// 8 worker processes drain 20,000 tasks, created while they run; half
/// claim and report one at a time, half in batches of 25.
fn eight_workers_drain_twenty_thousand(db: Database, servers: usize) -> TestResult {
    let _one = ONE_AT_A_TIME.lock();
    let drill = Drill::start(db, servers)?;
    let workers = (0..8)
        .map(|i| {
            let batch = if i % 2 == 0 { 1 } else { 25 };
            drill.worker(&format!("worker-{i}"), i % servers, batch, Some(0))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    drill.create_tasks(200)?;
    drill.wait_until_drained(20_000, 300)?;
    let acknowledged = stop_all(workers)?;
    let attempts = drill.attempts()?;
    assert_eq!(attempts.len(), 20_000, "{}", drill.worker_logs());
    let expired = exactly_once(&attempts, 20_000, &acknowledged)?;
    assert!(expired.is_empty(), "{expired:?}");
    // Every worker took part.
    for (worker, ids) in &acknowledged {
        assert!(!ids.is_empty(), "{worker} completed nothing");
    }
    Ok(())
}

#[test]
fn eight_workers_drain_twenty_thousand_tasks_through_two_servers_on_postgres() -> TestResult {
    eight_workers_drain_twenty_thousand(Database::Postgres(TestDb::new()?, None), 2)
}

#[test]
fn eight_workers_drain_twenty_thousand_tasks_through_one_server_on_sqlite() -> TestResult {
    eight_workers_drain_twenty_thousand(Database::Sqlite(TestSqlite::new()?), 1)
}

fn now_ms() -> anyhow::Result<i64> {
    Ok(i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_millis(),
    )?)
}

/// A worker that hangs holding 50 leases is killed: within the lease and a
/// sweep its tasks fail with `lease_expired`, and their next attempts are
/// completed by the others.
fn a_killed_workers_tasks_are_retried_by_the_others(db: Database) -> TestResult {
    let _one = ONE_AT_A_TIME.lock();
    let drill = Drill::start(db, 1)?;
    drill.create_tasks(20)?;
    let victim = drill.worker("victim", 0, 50, None)?;
    drill.wait_for(30, "the victim's claim", |store| {
        Ok(store.count("status = 'running' AND worker_id = 'victim'")? == 50)
    })?;
    victim.kill()?;
    let killed = now_ms()?;
    let workers = (0..3)
        .map(|i| drill.worker(&format!("worker-{i}"), 0, 10, Some(1)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    drill.wait_until_drained(2_000, 120)?;
    let acknowledged = stop_all(workers)?;
    let attempts = drill.attempts()?;
    let expired = exactly_once(&attempts, 2_000, &acknowledged)?;
    let victims: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.worker_id.as_deref() == Some("victim"))
        .collect();
    assert_eq!(victims.len(), 50);
    assert_eq!(expired.len(), 50);
    // Failed within lease + sweep interval of the kill (the lease was
    // granted before it), with two seconds of slack for a busy machine.
    let bound = i64::from(LEASE_SECONDS) * 1000 + i64::try_from(SWEEP_SECONDS)? * 1000 + 2000;
    for attempt in victims {
        assert!(expired.contains(&attempt.id));
        let after = attempt.updated_ms - killed;
        assert!(
            (0..=bound).contains(&after),
            "{} failed {after} ms after the kill (bound {bound} ms)",
            attempt.id
        );
    }
    Ok(())
}

#[test]
fn a_killed_workers_tasks_are_retried_by_the_others_on_postgres() -> TestResult {
    a_killed_workers_tasks_are_retried_by_the_others(Database::Postgres(TestDb::new()?, None))
}

#[test]
fn a_killed_workers_tasks_are_retried_by_the_others_on_sqlite() -> TestResult {
    a_killed_workers_tasks_are_retried_by_the_others(Database::Sqlite(TestSqlite::new()?))
}

/// Two servers on one PostgreSQL; one is killed (SIGKILL) after a quarter of
/// the tasks: the workers carry on through the other, and every task is
/// still completed exactly once (a claim whose answer died with the server
/// lapses and is retried).
#[test]
fn the_workers_carry_on_through_the_other_server_when_one_is_killed() -> TestResult {
    let _one = ONE_AT_A_TIME.lock();
    let mut drill = Drill::start(Database::Postgres(TestDb::new()?, None), 2)?;
    drill.create_tasks(40)?;
    let workers = (0..4)
        .map(|i| drill.worker(&format!("worker-{i}"), i % 2, 5, Some(2)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    drill.wait_for(60, "a quarter done", |store| {
        Ok(store.count("status = 'completed'")? >= 1_000)
    })?;
    if let Some(server) = drill.servers[0].take() {
        server.kill()?;
    }
    let before: HashSet<String> = drill
        .attempts()?
        .into_iter()
        .filter(|a| a.status == "completed")
        .map(|a| a.id)
        .collect();
    assert!(
        before.len() < 4_000,
        "all done before the kill: nothing proven"
    );
    drill.wait_until_drained(4_000, 120)?;
    let acknowledged = stop_all(workers)?;
    exactly_once(&drill.attempts()?, 4_000, &acknowledged)?;
    // The workers whose own server was killed went on completing tasks.
    for (worker, ids) in acknowledged
        .iter()
        .filter(|(w, _)| w == "worker-0" || w == "worker-2")
    {
        let after = ids
            .iter()
            .filter(|id| !before.contains(&id.to_string()))
            .count();
        assert!(
            after > 0,
            "{worker} completed nothing after its server was killed"
        );
    }
    Ok(())
}

/// PostgreSQL (a cluster of the test's own) stopped at once for 12 s and
/// started again while workers run and a client reads: the server answers
/// 503 while it is down (never another 5xx), then recovers; every task is
/// completed exactly once.
#[test]
fn a_database_restart_under_load_loses_nothing() -> TestResult {
    let _one = ONE_AT_A_TIME.lock();
    let cluster = Cluster::start()?;
    let db = TestDb::on(cluster.url()?)?;
    let drill = Drill::start(Database::Postgres(db, Some(cluster)), 1)?;
    drill.create_tasks(40)?;
    let workers = (0..4)
        .map(|i| drill.worker(&format!("worker-{i}"), 0, 5, Some(2)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A reader beside the workers: every answer's status, in order.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, http) = (stop.clone(), drill.http.clone());
        let url = format!("{}/task-executions?limit=1", drill.base(0)?);
        let key = drill.admin_key.clone();
        thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let status = http
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                seen.push(status);
                thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    };
    drill.wait_for(60, "a quarter done", |store| {
        Ok(store.count("status = 'completed'")? >= 1_000)
    })?;
    let Database::Postgres(_, Some(cluster)) = &drill.db else {
        unreachable!()
    };
    cluster.down()?;
    // The outage outlasts the server's wait for a connection (5 s), with a
    // margin for a loaded machine: reads then answer 503 (a shorter one,
    // reads wait out, answering late).
    thread::sleep(Duration::from_secs(12));
    cluster.up()?;
    drill.wait_until_drained(4_000, 120)?;
    stop.store(true, Ordering::Relaxed);
    let seen = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"))?;
    let acknowledged = stop_all(workers)?;
    exactly_once(&drill.attempts()?, 4_000, &acknowledged)?;
    let unavailable = seen.iter().filter(|s| **s == 503).count();
    let other: Vec<_> = seen.iter().filter(|s| !matches!(**s, 200 | 503)).collect();
    assert!(
        unavailable > 0,
        "no 503 while the database was down: {seen:?}"
    );
    assert!(
        other.is_empty(),
        "answers other than 200 and 503: {other:?}"
    );
    assert_eq!(seen.last(), Some(&200), "not recovered: {seen:?}");
    Ok(())
}
