//! The worker runtime in-process: the same handlers over the service layer
//! on a real SQLite store, no HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowexec_domain::{
    Actor, FlowName, NewFlowExecution, NewTask, OrganizationName, Role, RunOptions, TaskName,
    TaskStatus,
};
use flowexec_service::{
    Admin, Authenticate, ExecutionUseCases, Executions, KeyAuthenticator, KeyCacheSettings,
    WorkerSettings, Workers,
};
use flowexec_testkit::TestSqlite;
use flowexec_worker::{InProcess, TaskError, Worker, WorkerConfig};
use serde_json::json;

#[test]
fn an_embedded_worker_runs_tasks_through_the_service_layer() -> anyhow::Result<()> {
    let db = TestSqlite::new()?;
    let store = db.open(4)?;
    let admin = Admin::new(store.clone());
    let org = admin.create_organization(&OrganizationName::parse("acme")?)?;
    let key = admin.create_api_key(org.organization.id, Role::Worker, Actor::ServiceAccount)?;
    let principal = KeyAuthenticator::new(store.clone(), &KeyCacheSettings::default())
        .authenticate(&key.plaintext)?;
    let owner = KeyAuthenticator::new(store.clone(), &KeyCacheSettings::default())
        .authenticate(&org.key.plaintext)?;
    let executions = Executions::new(store.clone());
    let tasks = ["a", "b", "c"]
        .iter()
        .map(|name| {
            Ok(NewTask {
                task_name: TaskName::parse(*name)?,
                input: Some(json!({"x": name})),
                run: RunOptions::default(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let flow = executions.create_flow_execution(
        &owner,
        NewFlowExecution::new(FlowName::parse("f")?, None, tasks)?,
    )?;
    let transport = InProcess::new(
        Arc::new(Workers::new(store, WorkerSettings::default())),
        principal,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = WorkerConfig {
            wait_seconds: 1,
            // Results in batches: the service's report_many.
            report_batch: 3,
            report_linger: Duration::from_millis(200),
            ..WorkerConfig::new("embedded")
        };
        let worker = Worker::new(transport, config);
        let worker = ["a", "b", "c"].iter().fold(worker, |worker, name| {
            worker.handle_json(name, |input, task| async move {
                Ok::<_, TaskError>(json!({"from": task.task_name, "input": input}))
            })
        });
        let running = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let detail = executions.get_flow_execution(&owner, flow.flow_execution.id)?;
            if detail
                .task_executions
                .iter()
                .all(|t| t.status == TaskStatus::Completed)
            {
                for t in &detail.task_executions {
                    assert_eq!(
                        t.output,
                        Some(json!({"from": t.task_name.as_str(), "input": {"x": t.task_name.as_str()}}))
                    );
                    assert_eq!(
                        t.lease.worker_id.as_ref().map(|w| w.as_str()),
                        Some("embedded")
                    );
                }
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "not all completed: {detail:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop.send(());
        running.await?;
        anyhow::Ok(())
    })
}
