//! Transition benchmark, for scripts/bench.sh: seeds `--tasks` queued task
//! executions, then `--clients` threads move each one queued → running →
//! completed through the store, and prints transitions per second and the
//! round trips (diesel's queries: a batch of statements sent as one message
//! counts once) each transition made.
//!
//!   transition_bench --store postgres --url postgres://flowexec_app@…/db \
//!       --tasks 100000 --clients 16
//!   transition_bench --store sqlite --url /path/to/file.db …
//!
//! It also writes `<--ids FILE>`: "organization_id<TAB>task_id" per seeded
//! task, for the same-SQL pgbench floor.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use anyhow::Context;
use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use flowexec_domain::ports::{ExecutionStore, OrganizationRepository, TenantTx};
use flowexec_domain::{
    Actor, ApiKeyId, ChangeOutcome, Clock, FlowName, NewApiKey, NewFlowExecution, NewTask,
    Organization, OrganizationId, OrganizationName, Role, SystemClock, TaskExecutionId, TaskName,
    Tenant, Transition,
};
use flowexec_persistence::{PgStore, PoolSettings, SqliteStore};

/// Statements sent to the database, by every connection.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

fn count_statements() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { .. } = event {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }))
}

struct Args {
    store: String,
    url: String,
    tasks: usize,
    clients: usize,
    ids: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        store: String::new(),
        url: String::new(),
        tasks: 100_000,
        clients: 16,
        ids: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--store" => args.store = value,
            "--url" => args.url = value,
            "--tasks" => args.tasks = value.parse()?,
            "--clients" => args.clients = value.parse()?,
            "--ids" => args.ids = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

fn run<S>(store: S, args: &Args) -> anyhow::Result<()>
where
    S: ExecutionStore + OrganizationRepository + Clone,
{
    let org = OrganizationId::generate();
    store.create_organization(
        &Organization {
            id: org,
            name: OrganizationName::parse(format!("bench-{}", org.as_uuid().simple()))?,
            created_at: SystemClock.now(),
        },
        &NewApiKey {
            id: ApiKeyId::generate(),
            organization_id: org,
            role: Role::Admin,
            actor: Actor::System,
            secret_sha256: [0; 32],
            created_at: SystemClock.now(),
        },
    )?;
    let tenant = Tenant::new(org);
    let mut ids: Vec<TaskExecutionId> = Vec::with_capacity(args.tasks);
    while ids.len() < args.tasks {
        let batch = (args.tasks - ids.len()).min(1000);
        let tasks = (0..batch)
            .map(|i| {
                Ok(NewTask {
                    task_name: TaskName::parse(format!("t{i}"))?,
                    input: Some(serde_json::json!({"n": i})),
                    run: flowexec_domain::RunOptions::default(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let creation = NewFlowExecution::new(FlowName::parse("bench")?, None, tasks)?.plan(
            org,
            Actor::System,
            SystemClock.now(),
        );
        store.in_tenant(tenant, |tx| {
            tx.insert_flow_execution(&creation.flow_execution)?;
            tx.insert_task_executions(&creation.task_executions)?;
            tx.insert_events(&creation.events)
        })?;
        ids.extend(creation.task_executions.iter().map(|t| t.id));
    }
    if let Some(path) = &args.ids {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for id in &ids {
            writeln!(out, "{org}\t{id}")?;
        }
    }

    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(args.clients + 1));
    let handles: Vec<_> = (0..args.clients)
        .map(|_| {
            let (store, ids, next, barrier) =
                (store.clone(), ids.clone(), next.clone(), barrier.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                barrier.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&id) = ids.get(i) else { return Ok(()) };
                    let output = Some(serde_json::json!({"ok": true}));
                    for transition in [Transition::Start, Transition::Complete { output }] {
                        let plan = transition.plan(id, Actor::System, None, SystemClock.now());
                        let outcome = store.in_tenant(tenant, |tx| tx.change_status(&plan))?;
                        anyhow::ensure!(
                            matches!(outcome, ChangeOutcome::Changed(_)),
                            "a transition was refused: {outcome:?}"
                        );
                    }
                }
            })
        })
        .collect();
    let before = STATEMENTS.load(Ordering::Relaxed);
    barrier.wait();
    let started = Instant::now();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
    }
    let elapsed = started.elapsed();
    let statements = STATEMENTS.load(Ordering::Relaxed) - before;
    let transitions = 2 * ids.len();
    writeln!(
        std::io::stdout().lock(),
        "RESULT transitions={transitions} seconds={:.3} per_second={:.0} round_trips_per_transition={:.2}",
        elapsed.as_secs_f64(),
        transitions as f64 / elapsed.as_secs_f64(),
        statements as f64 / transitions as f64
    )?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    set_default_instrumentation(count_statements)
        .map_err(|e| anyhow::anyhow!("instrumentation: {e}"))?;
    let pool = PoolSettings {
        max_size: u32::try_from(args.clients)?,
        ..PoolSettings::default()
    };
    match args.store.as_str() {
        "postgres" => run(PgStore::connect(&args.url, &pool)?, &args),
        "sqlite" => run(
            SqliteStore::open(std::path::Path::new(&args.url), &pool)?,
            &args,
        ),
        other => anyhow::bail!("--store must be postgres or sqlite, not {other:?}"),
    }
}
