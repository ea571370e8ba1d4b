//! The typed client (`flowexec-client`) against a real server on each
//! store: every endpoint through it, errors as typed problems with their
//! codes, and retries of a call that is safe to repeat.

mod support;

use std::time::{Duration, Instant};

use flowexec_client::{Client, Error, RetrySettings};
use flowexec_domain::{Actor, Backoff, Jitter, RetryPolicy, Role};
use flowexec_wire::{
    ChangeStatusBody, ClaimBody, CompleteBody, CountParams, EventParams, FailBody, FlowListParams,
    HeartbeatBody, NewApiKeyBody, NewFlowExecutionBody, NewTaskBody, ResultBody, ResultStatus,
    ResultsBody, RetryBody, RoleBody, Status, TaskListParams,
};
use serde_json::json;
use support::{Kind, TestApp, TestResult};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn task(name: &str) -> NewTaskBody {
    NewTaskBody {
        task_name: name.into(),
        input: Some(json!({"n": 1})),
        priority: 0,
        timeout_seconds: None,
        retry: None,
    }
}

fn every_endpoint_through_the_client(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Admin, Actor::System)?;
    let admin = Client::new(&app.base, &tenant.key)?;
    let worker = Client::new(&app.base, &app.key(&tenant, Role::Worker)?)?;
    let stranger = Client::new(&app.base, &app.tenant(Role::Admin, Actor::System)?.key)?;
    runtime()?.block_on(async {
        assert_eq!(admin.healthz().await?.status, "ok");
        assert_eq!(admin.readyz().await?.status, "ready");
        let flow = admin
            .create_flow_execution(&NewFlowExecutionBody {
                flow_name: "etl".into(),
                input: None,
                tasks: vec![task("a"), task("b"), task("c")],
            })
            .await?;
        assert_eq!(admin.get_flow_execution(flow.id).await?.id, flow.id);
        let listed = admin
            .list_flow_executions(&FlowListParams::default())
            .await?;
        assert_eq!(listed.flow_executions.len(), 1);
        let tasks = admin
            .list_flow_task_executions(flow.id, &TaskListParams::default())
            .await?;
        assert_eq!(tasks.task_executions.len(), 3);

        // Another organization: the typed 404.
        let hidden = stranger.get_flow_execution(flow.id).await;
        assert_eq!(
            hidden.as_ref().err().and_then(Error::code),
            Some("not_found")
        );

        let claimed = worker
            .claim(&ClaimBody {
                worker_id: "w".into(),
                task_names: None,
                limit: Some(2),
                lease_seconds: Some(30),
                wait_seconds: None,
            })
            .await?
            .task_executions;
        assert_eq!(claimed.len(), 2);
        let (first, second) = (claimed[0].id, claimed[1].id);
        worker
            .heartbeat(
                first,
                &HeartbeatBody {
                    worker_id: "w".into(),
                    lease_seconds: None,
                },
            )
            .await?;
        let stolen = worker
            .complete(
                first,
                &CompleteBody {
                    worker_id: "x".into(),
                    output: None,
                },
            )
            .await;
        assert_eq!(
            stolen.as_ref().err().and_then(Error::code),
            Some("lease_lost")
        );
        let done = worker
            .complete(
                first,
                &CompleteBody {
                    worker_id: "w".into(),
                    output: Some(json!(1)),
                },
            )
            .await?;
        assert_eq!(done.status, Status::Completed);
        let failed = worker
            .fail(
                second,
                &FailBody {
                    worker_id: "w".into(),
                    error: json!("boom"),
                    retryable: Some(false),
                },
            )
            .await?;
        assert_eq!(failed.status, Status::Failed);
        let answers = worker
            .report_results(&ResultsBody {
                results: vec![ResultBody {
                    id: first,
                    worker_id: "w".into(),
                    status: ResultStatus::Completed,
                    output: Some(json!(1)),
                    error: None,
                    retryable: None,
                }],
            })
            .await?;
        assert_eq!(
            answers.results[0].status, 200,
            "a repeated result answers the same"
        );

        let counts = admin
            .count_task_executions(&CountParams {
                group_by: "status".into(),
                flow_execution_id: None,
                task_name: None,
                status: None,
                modified_by: None,
                created_after: None,
                created_before: None,
                updated_after: None,
                updated_before: None,
                attempts: None,
            })
            .await?;
        assert_eq!(counts.counts.get("completed"), Some(&1));
        let all = admin
            .list_task_executions(&TaskListParams::default())
            .await?;
        assert_eq!(all.task_executions.len(), 3);
        let third = all
            .task_executions
            .iter()
            .find(|t| t.status == Status::Queued)
            .map(|t| t.id)
            .unwrap_or_default();
        let stale = admin
            .change_status(
                first,
                &ChangeStatusBody {
                    status: Status::Stale,
                    output: None,
                    error: None,
                    reason: Some("redo".into()),
                },
                Some("\"3\""),
            )
            .await?;
        assert_eq!(stale.status, Status::Stale);
        let retried = admin
            .retry_task_execution(first, &RetryBody::default())
            .await?;
        assert_eq!(retried.execution_index, 1);
        let events = admin
            .task_execution_events(first, &EventParams::default())
            .await?;
        assert_eq!(events.events.len(), 4, "created, claimed, completed, stale");
        assert_eq!(
            admin.delete_task_execution(third).await?.status,
            Status::Deleted
        );

        let issued = admin
            .create_api_key(&NewApiKeyBody {
                role: RoleBody::Read,
                actor: None,
            })
            .await?;
        let keys = admin.list_api_keys().await?;
        assert!(keys.api_keys.iter().any(|k| k.id == issued.id));
        let revoked = admin.revoke_api_key(issued.id).await?;
        assert!(revoked.revoked_at.is_some());
        let refused = Client::new(&app.base, &issued.key)?.healthz().await;
        assert!(refused.is_ok(), "health needs no key");
        let refused = Client::new(&app.base, &issued.key)?
            .list_task_executions(&TaskListParams::default())
            .await;
        assert_eq!(
            refused.as_ref().err().and_then(Error::code),
            Some("unauthorized")
        );
        anyhow::Ok(())
    })
}

on_both_backends!(every_endpoint_through_the_client);

#[test]
fn a_call_safe_to_repeat_is_retried_when_the_server_cannot_be_reached() -> TestResult {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let retry = RetrySettings {
        policy: RetryPolicy {
            max_attempts: 3,
            backoff: Backoff {
                initial_ms: 100,
                factor: 1.0,
                max_ms: 100,
            },
            jitter: Jitter::None,
        },
    };
    let client = Client::with_http(
        reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}"),
        "fx_none",
        retry,
    )?;
    runtime()?.block_on(async {
        let started = Instant::now();
        let answer = client.healthz().await;
        assert!(matches!(answer, Err(Error::Transport(_))), "{answer:?}");
        // Three attempts: two waits of 100 ms between them.
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "not retried: {:?}",
            started.elapsed()
        );
        anyhow::Ok(())
    })
}

/// Polls `check` until it answers `Some`, at most `seconds`.
async fn eventually<T, F, Fut>(seconds: u64, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        anyhow::ensure!(Instant::now() < deadline, "not within {seconds} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn once(policy_attempts: u32) -> flowexec_wire::RetryPolicyBody {
    flowexec_wire::RetryPolicyBody {
        max_attempts: policy_attempts,
        backoff: flowexec_wire::BackoffBody {
            initial_ms: 0,
            factor: 1.0,
            max_ms: 0,
        },
        jitter: flowexec_wire::JitterBody::None,
    }
}

/// The worker runtime over HTTP: a handler's output, its error and its
/// panic are each recorded, and the worker runs on after the panic.
fn a_worker_records_outputs_errors_and_panics(kind: Kind) -> TestResult {
    outputs_errors_and_panics(kind, 1)
}

on_both_backends!(a_worker_records_outputs_errors_and_panics);

/// The same, the three results sent in batches (`POST …/results`).
fn a_worker_batches_its_results(kind: Kind) -> TestResult {
    outputs_errors_and_panics(kind, 3)
}

on_both_backends!(a_worker_batches_its_results);

fn outputs_errors_and_panics(kind: Kind, report_batch: usize) -> TestResult {
    use flowexec_worker::{HttpTransport, TaskError, Worker, WorkerConfig};
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Admin, Actor::System)?;
    let admin = Client::new(&app.base, &tenant.key)?;
    let worker_key = app.key(&tenant, Role::Worker)?;
    runtime()?.block_on(async {
        let tasks = vec![
            NewTaskBody {
                priority: 10,
                retry: Some(once(1)),
                ..task("boom")
            },
            NewTaskBody {
                priority: 5,
                retry: Some(once(1)),
                ..task("bad")
            },
            task("ok"),
        ];
        let flow = admin
            .create_flow_execution(&NewFlowExecutionBody {
                flow_name: "f".into(),
                input: None,
                tasks,
            })
            .await?;
        let config = WorkerConfig {
            concurrency: report_batch,
            wait_seconds: 1,
            report_batch,
            report_linger: Duration::from_millis(200),
            ..WorkerConfig::new("w-1")
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = Worker::new(HttpTransport::new(&app.base, &worker_key)?, config)
            .handle("ok", |input: serde_json::Value, _task| async move {
                Ok::<_, TaskError>(json!({"echo": input}))
            })
            .handle_json("bad", |_input, _task| async move {
                Err(TaskError::fatal("nope"))
            })
            .handle_json("boom", |_input, _task| async move {
                #[allow(clippy::panic)]
                {
                    panic!("kaput")
                }
            });
        let running = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        let tasks = eventually(20, || async {
            let page = admin
                .list_flow_task_executions(flow.id, &TaskListParams::default())
                .await?;
            let done = page
                .task_executions
                .iter()
                .all(|t| matches!(t.status, Status::Completed | Status::Failed));
            Ok(done.then_some(page.task_executions))
        })
        .await?;
        let _ = stop.send(());
        running.await?;
        let by_name = |name: &str| tasks.iter().find(|t| t.task_name == name).cloned();
        let ok = by_name("ok").unwrap_or_else(|| unreachable!());
        assert_eq!(
            (ok.status, ok.output),
            (Status::Completed, Some(json!({"echo": {"n": 1}})))
        );
        let bad = by_name("bad").unwrap_or_else(|| unreachable!());
        assert_eq!(
            (bad.status, bad.error),
            (Status::Failed, Some(json!("nope")))
        );
        let boom = by_name("boom").unwrap_or_else(|| unreachable!());
        assert_eq!(boom.status, Status::Failed);
        assert_eq!(
            boom.error,
            Some(json!({"code": "panic", "message": "kaput"}))
        );
        anyhow::Ok(())
    })
}

/// A task deleted while it runs: the worker's heartbeat learns its lease is
/// lost and the handler's cancellation fires; and a worker stopped with a
/// task in flight lets it finish first.
fn a_worker_cancels_on_lease_lost_and_finishes_in_flight_work_on_shutdown(
    kind: Kind,
) -> TestResult {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use flowexec_worker::{HttpTransport, TaskError, Worker, WorkerConfig};
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Admin, Actor::System)?;
    let admin = Client::new(&app.base, &tenant.key)?;
    let worker_key = app.key(&tenant, Role::Worker)?;
    runtime()?.block_on(async {
        let flow = admin
            .create_flow_execution(&NewFlowExecutionBody {
                flow_name: "f".into(),
                input: None,
                tasks: vec![task("long"), task("short")],
            })
            .await?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let seen = cancelled.clone();
        let config = WorkerConfig {
            lease_seconds: 5,
            wait_seconds: 1,
            ..WorkerConfig::new("w-1")
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = Worker::new(HttpTransport::new(&app.base, &worker_key)?, config)
            .handle_json("long", move |_input, task| {
                let seen = seen.clone();
                async move {
                    let _ = tokio::time::timeout(Duration::from_secs(20), task.cancelled()).await;
                    seen.store(task.is_cancelled(), Ordering::SeqCst);
                    Err(TaskError::retryable("cancelled"))
                }
            })
            .handle_json("short", |_input, _task| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(json!("done"))
            });
        let running = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        let long = eventually(15, || async {
            let page = admin
                .list_flow_task_executions(flow.id, &TaskListParams::default())
                .await?;
            Ok(page
                .task_executions
                .into_iter()
                .find(|t| t.task_name == "long" && t.status == Status::Running))
        })
        .await?;
        admin.delete_task_execution(long.id).await?;
        eventually(15, || {
            let cancelled = cancelled.clone();
            async move { Ok(cancelled.load(Ordering::SeqCst).then_some(())) }
        })
        .await?;
        // Another task, stopped in flight: it finishes before run returns.
        let second = admin
            .create_flow_execution(&NewFlowExecutionBody {
                flow_name: "g".into(),
                input: None,
                tasks: vec![task("short")],
            })
            .await?;
        let id = second.task_executions[0].id;
        eventually(15, || async {
            Ok((admin.get_task_execution(id).await?.status == Status::Running).then_some(()))
        })
        .await?;
        let _ = stop.send(());
        running.await?;
        assert_eq!(
            admin.get_task_execution(id).await?.status,
            Status::Completed
        );
        anyhow::Ok(())
    })
}

on_both_backends!(a_worker_cancels_on_lease_lost_and_finishes_in_flight_work_on_shutdown);
