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
