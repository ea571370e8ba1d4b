//! The task execution lifecycle over real HTTP, on both stores: a task
//! moved through its whole life by each role that may, refused to the roles
//! that may not and to another organization; and races — concurrent
//! conflicting changes and concurrent retries — proven with threads behind
//! a barrier; and the lifecycle model (`flowexec_testkit::model`) run over
//! HTTP.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;

use flowexec_domain::{Actor, Role, TaskStatus};
use flowexec_testkit::model::{self, ChangeAnswer, Observed, RetryAnswer, Subject};
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::blocking::RequestBuilder;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{Kind, TestApp, TestResult};
use uuid::Uuid;

fn send(request: RequestBuilder) -> anyhow::Result<(StatusCode, Value, Option<String>)> {
    let response = request.send()?;
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, response.json().unwrap_or(Value::Null), etag))
}

/// A flow execution with one task; the task's id.
fn one_task(app: &TestApp, key: &str) -> anyhow::Result<String> {
    let (status, flow, _) = send(
        app.client
            .post(app.url("/flow-executions"))
            .bearer_auth(key)
            .json(&json!({"flow_name": "f", "tasks": [{"task_name": "t", "input": {"n": 1}}]})),
    )?;
    anyhow::ensure!(status == StatusCode::CREATED, "{flow}");
    Ok(flow["task_executions"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn patch(app: &TestApp, key: &str, id: &str, body: Value) -> RequestBuilder {
    app.client
        .patch(app.url(&format!("/task-executions/{id}")))
        .bearer_auth(key)
        .json(&body)
}

fn a_task_lives_its_whole_life_over_http(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    for role in [Role::Admin, Role::Write] {
        let tenant = app.tenant(role, Actor::ServiceAccount)?;
        let id = one_task(&app, &tenant.key)?;
        let steps = [
            (json!({"status": "running"}), "\"2\""),
            (
                json!({"status": "completed", "output": {"rows": 12}}),
                "\"3\"",
            ),
            (
                json!({"status": "stale", "reason": "upstream rerun"}),
                "\"4\"",
            ),
        ];
        for (body, tag) in steps {
            let (status, answer, etag) = send(patch(&app, &tenant.key, &id, body.clone()))?;
            assert_eq!(status, StatusCode::OK, "{role} {body}: {answer}");
            assert_eq!(etag.as_deref(), Some(tag));
            assert_eq!(answer["status"], body["status"]);
            assert_eq!(answer["modified_by"], "service-account");
        }
        let (status, retry, etag) = send(
            app.client
                .post(app.url(&format!("/task-executions/{id}/retries")))
                .bearer_auth(&tenant.key),
        )?;
        assert_eq!(status, StatusCode::CREATED, "{retry}");
        assert_eq!(
            (retry["execution_index"].clone(), etag.as_deref()),
            (json!(1), Some("\"1\""))
        );
        let (status, deleted, _) = send(
            app.client
                .delete(app.url(&format!("/task-executions/{id}")))
                .bearer_auth(&tenant.key)
                .header("If-Match", "\"4\""),
        )?;
        assert_eq!(
            (status, deleted["status"].clone()),
            (StatusCode::OK, json!("deleted"))
        );
        let (status, history, _) = send(
            app.client
                .get(app.url(&format!("/task-executions/{id}/events?limit=2")))
                .bearer_auth(&tenant.key),
        )?;
        assert_eq!(status, StatusCode::OK);
        let cursor = history["next_cursor"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (_, rest, _) = send(
            app.client
                .get(app.url(&format!(
                    "/task-executions/{id}/events?limit=2&cursor={cursor}"
                )))
                .bearer_auth(&tenant.key),
        )?;
        let (_, last, _) = send(
            app.client
                .get(app.url(&format!(
                    "/task-executions/{id}/events?limit=2&cursor={}",
                    rest["next_cursor"].as_str().unwrap_or_default()
                )))
                .bearer_auth(&tenant.key),
        )?;
        let tos: Vec<Value> = [&history, &rest, &last]
            .iter()
            .flat_map(|page| page["events"].as_array().cloned().unwrap_or_default())
            .map(|e| e["to"].clone())
            .collect();
        assert_eq!(
            tos,
            [
                json!("queued"),
                json!("running"),
                json!("completed"),
                json!("stale"),
                json!("deleted")
            ]
        );
        assert_eq!(last["next_cursor"], Value::Null);
    }
    Ok(())
}

fn other_roles_and_organizations_cannot_change_a_task(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let owner = app.tenant(Role::Write, Actor::System)?;
    let id = one_task(&app, &owner.key)?;
    for role in [Role::Read, Role::Worker] {
        let key = app.key(&owner, role)?;
        let (status, body, _) = send(patch(&app, &key, &id, json!({"status": "running"})))?;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::FORBIDDEN, json!("forbidden")),
            "{role}"
        );
        let (status, _, _) = send(
            app.client
                .get(app.url(&format!("/task-executions/{id}/events")))
                .bearer_auth(&key),
        )?;
        assert_eq!(status, StatusCode::OK, "{role} may read the history");
    }
    let stranger = app.tenant(Role::Admin, Actor::System)?;
    let missing = Uuid::new_v4().to_string();
    for target in [&id, &missing] {
        let (status, body, _) = send(patch(
            &app,
            &stranger.key,
            target,
            json!({"status": "running"}),
        ))?;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::NOT_FOUND, json!("not_found"))
        );
        let (status, _, _) = send(
            app.client
                .post(app.url(&format!("/task-executions/{target}/retries")))
                .bearer_auth(&stranger.key),
        )?;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, task, etag) = send(
        app.client
            .get(app.url(&format!("/task-executions/{id}")))
            .bearer_auth(&owner.key),
    )?;
    assert_eq!(
        (status, task["status"].clone(), etag.as_deref()),
        (StatusCode::OK, json!("queued"), Some("\"1\""))
    );
    Ok(())
}

/// 16 clients race conflicting changes on one running task, then 16 race
/// to retry it: each status is reached at most once, deleted exactly once,
/// one event per success; exactly one retry is created.
fn racing_clients_each_win_at_most_once(kind: Kind) -> TestResult {
    let app = Arc::new(TestApp::spawn(kind)?);
    let tenant = app.tenant(Role::Write, Actor::System)?;
    let id = one_task(&app, &tenant.key)?;
    let clients = 16;
    let race = |bodies: Vec<Option<Value>>| -> anyhow::Result<Vec<StatusCode>> {
        let barrier = Arc::new(Barrier::new(bodies.len()));
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let (app, barrier, key, id) =
                    (app.clone(), barrier.clone(), tenant.key.clone(), id.clone());
                thread::spawn(move || -> anyhow::Result<StatusCode> {
                    let request = match &body {
                        Some(body) => patch(&app, &key, &id, body.clone()),
                        None => app
                            .client
                            .post(app.url(&format!("/task-executions/{id}/retries")))
                            .bearer_auth(&key),
                    };
                    barrier.wait();
                    Ok(send(request)?.0)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a client panicked"))?)
            .collect()
    };
    let starts = race(vec![Some(json!({"status": "running"})); clients])?;
    // Every start but one is a repeat of the one that won: all 200.
    assert!(starts.iter().all(|s| *s == StatusCode::OK), "{starts:?}");
    let bodies: Vec<Option<Value>> = (0..clients)
        .map(|i| {
            Some(match i % 2 {
                0 => json!({"status": "completed", "output": i}),
                _ => json!({"status": "failed", "error": i}),
            })
        })
        .collect();
    let finishes = race(bodies)?;
    let won = finishes.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(won, 1, "{finishes:?}");
    assert!(finishes
        .iter()
        .all(|s| matches!(*s, StatusCode::OK | StatusCode::CONFLICT)));
    let retries = race(vec![None; clients])?;
    assert_eq!(
        retries
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{retries:?}"
    );
    assert!(retries
        .iter()
        .all(|s| matches!(*s, StatusCode::CREATED | StatusCode::CONFLICT)));
    let (_, history, _) = send(
        app.client
            .get(app.url(&format!("/task-executions/{id}/events")))
            .bearer_auth(&tenant.key),
    )?;
    assert_eq!(
        history["events"].as_array().map(Vec::len),
        Some(3),
        "creation, one start, one finish"
    );
    assert_eq!(app.count("task_executions")?, 2);
    Ok(())
}

on_both_backends!(
    a_task_lives_its_whole_life_over_http,
    other_roles_and_organizations_cannot_change_a_task,
    racing_clients_each_win_at_most_once,
);

/// 1,000 task executions paged 7 at a time in both orders while, between
/// pages, a task is created and another deleted: no row is seen twice, and
/// every row present throughout is seen.
fn pages_neither_repeat_nor_skip_while_rows_come_and_go(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Write, Actor::System)?;
    let mut initial = Vec::new();
    for batch in 0..4 {
        let tasks: Vec<Value> = (0..250)
            .map(|i| json!({"task_name": format!("t{batch}-{i}")}))
            .collect();
        let (status, flow, _) = send(
            app.client
                .post(app.url("/flow-executions"))
                .bearer_auth(&tenant.key)
                .json(&json!({"flow_name": "paged", "tasks": tasks})),
        )?;
        assert_eq!(status, StatusCode::CREATED, "{flow}");
        initial.extend(
            flow["task_executions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t["id"].as_str().map(str::to_owned)),
        );
    }
    for order in ["newest", "oldest"] {
        let mut seen = std::collections::HashSet::new();
        let mut deleted = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        let mut round = 0;
        loop {
            let mut url = format!("/task-executions?limit=7&order={order}");
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let (status, page, _) = send(app.client.get(app.url(&url)).bearer_auth(&tenant.key))?;
            assert_eq!(status, StatusCode::OK, "{page}");
            for task in page["task_executions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let id = task["id"].as_str().unwrap_or_default().to_owned();
                assert!(seen.insert(id.clone()), "{order}: {id} was seen twice");
            }
            // Between pages: one new task, and one initial task deleted
            // (alternately one already seen and one not yet).
            one_task(&app, &tenant.key)?;
            let victim = &initial[(round * 37) % initial.len()];
            if deleted.insert(victim.clone()) {
                let (status, _, _) = send(
                    app.client
                        .delete(app.url(&format!("/task-executions/{victim}")))
                        .bearer_auth(&tenant.key),
                )?;
                assert_eq!(status, StatusCode::OK);
            }
            round += 1;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let missed: Vec<&String> = initial
            .iter()
            .filter(|id| !deleted.contains(*id) && !seen.contains(*id))
            .collect();
        assert!(
            missed.is_empty(),
            "{order}: {} rows present throughout were skipped",
            missed.len()
        );
        assert!(
            seen.len() >= initial.len() - deleted.len(),
            "{order}: {} seen",
            seen.len()
        );
        // Deleted rows stay deleted: the next order's "present throughout"
        // excludes them.
        initial.retain(|id| !deleted.contains(id));
    }
    Ok(())
}

on_both_backends!(pages_neither_repeat_nor_skip_while_rows_come_and_go);

/// An admin issues a key over HTTP, the key works, the admin revokes it,
/// and the same server refuses it at once (its verdict was cached).
fn a_revoked_key_is_refused_at_once_by_the_server_that_revoked_it(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let admin = app.tenant(Role::Admin, Actor::System)?;
    let (status, issued, _) = send(
        app.client
            .post(app.url("/api-keys"))
            .bearer_auth(&admin.key)
            .json(&json!({"role": "write"})),
    )?;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let key = issued["key"].as_str().unwrap_or_default().to_owned();
    one_task(&app, &key)?;
    let (status, _, _) = send(
        app.client
            .delete(app.url(&format!(
                "/api-keys/{}",
                issued["id"].as_str().unwrap_or_default()
            )))
            .bearer_auth(&admin.key),
    )?;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = send(
        app.client
            .get(app.url("/task-executions"))
            .bearer_auth(&key),
    )?;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    let stranger = app.tenant(Role::Admin, Actor::System)?;
    let (_, listed, _) = send(
        app.client
            .get(app.url("/api-keys"))
            .bearer_auth(&stranger.key),
    )?;
    let orgs: Vec<Value> = listed["api_keys"]
        .as_array()
        .map(|keys| keys.iter().map(|k| k["organization_id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        orgs.len(),
        2,
        "the stranger's first key and the one it was given: {listed}"
    );
    assert!(
        orgs.iter()
            .all(|org| *org == json!(stranger.organization_id.to_string())),
        "{listed}"
    );
    Ok(())
}

on_both_backends!(a_revoked_key_is_refused_at_once_by_the_server_that_revoked_it);

/// The lifecycle model of `flowexec_testkit::model` over HTTP: each use is
/// one request, as a client sends it; each case has an organization of its
/// own on one server.
struct OverHttp<'a> {
    app: &'a TestApp,
    key: String,
}

fn observed(body: &Value) -> Result<Observed, String> {
    let task: Observed = (|| {
        Some(Observed {
            id: body["id"].as_str()?.parse().ok()?,
            flow_execution_id: body["flow_execution_id"].as_str()?.parse().ok()?,
            task_name: body["task_name"].as_str()?.to_owned(),
            execution_index: i32::try_from(body["execution_index"].as_i64()?).ok()?,
            status: body["status"].as_str()?.parse().ok()?,
            output: Some(body["output"].clone()).filter(|v| !v.is_null()),
            error: Some(body["error"].clone()).filter(|v| !v.is_null()),
            version: None,
            created_at: body["created_at"].as_str()?.parse().ok()?,
        })
    })()
    .ok_or_else(|| format!("not a task execution: {body}"))?;
    Ok(task)
}

impl OverHttp<'_> {
    /// Sends; `expected` statuses answer the body (with the version from the
    /// `ETag` when there is one), any other is an error.
    fn call(
        &self,
        request: RequestBuilder,
        expected: &[StatusCode],
    ) -> Result<(StatusCode, Value, Option<i64>), String> {
        let (status, body, etag) =
            send(request.bearer_auth(&self.key)).map_err(|e| e.to_string())?;
        if !expected.contains(&status) {
            return Err(format!("{status}: {body}"));
        }
        let version = etag.and_then(|tag| tag.trim_matches('"').parse().ok());
        Ok((status, body, version))
    }

    fn task(&self, request: RequestBuilder, expected: StatusCode) -> Result<Observed, String> {
        let (_, body, version) = self.call(request, &[expected])?;
        let mut task = observed(&body)?;
        task.version = Some(version.ok_or("no ETag")?);
        Ok(task)
    }

    fn change_answer(&self, request: RequestBuilder) -> Result<ChangeAnswer, String> {
        let (status, body, version) =
            self.call(request, &[StatusCode::OK, StatusCode::CONFLICT])?;
        if status == StatusCode::CONFLICT {
            return match (body["code"].as_str(), body["current_status"].as_str()) {
                (Some("invalid_transition"), Some(current)) => Ok(ChangeAnswer::Refused {
                    current: current.parse().map_err(|e| format!("{e}"))?,
                }),
                _ => Err(format!("409: {body}")),
            };
        }
        let mut task = observed(&body)?;
        task.version = Some(version.ok_or("no ETag")?);
        Ok(ChangeAnswer::Done(task))
    }

    /// Every page of `path` (a query string included).
    fn pages(&self, path: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut request = self.app.client.get(self.app.url(path));
            if let Some(cursor) = &cursor {
                request = request.query(&[("cursor", cursor)]);
            }
            let (_, body, _) = self.call(request, &[StatusCode::OK])?;
            items.extend(
                body["task_executions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(items),
            }
        }
    }
}

impl Subject for OverHttp<'_> {
    fn create(&mut self, flow_name: &str, tasks: usize) -> Result<Vec<Observed>, String> {
        let tasks: Vec<Value> = (0..tasks)
            .map(|i| json!({"task_name": format!("t{i}"), "input": i}))
            .collect();
        let (_, body, _) = self.call(
            self.app
                .client
                .post(self.app.url("/flow-executions"))
                .json(&json!({"flow_name": flow_name, "tasks": tasks})),
            &[StatusCode::CREATED],
        )?;
        body["task_executions"]
            .as_array()
            .ok_or_else(|| format!("no task executions: {body}"))?
            .iter()
            .map(observed)
            .collect()
    }

    fn change(
        &mut self,
        id: Uuid,
        to: TaskStatus,
        payload: Option<Value>,
    ) -> Result<ChangeAnswer, String> {
        let mut body = json!({"status": to});
        match (to, payload) {
            (TaskStatus::Completed, Some(output)) => body["output"] = output,
            (TaskStatus::Failed, Some(error)) => body["error"] = error,
            _ => {}
        }
        self.change_answer(
            self.app
                .client
                .patch(self.app.url(&format!("/task-executions/{id}")))
                .json(&body),
        )
    }

    fn delete(&mut self, id: Uuid) -> Result<ChangeAnswer, String> {
        self.change_answer(
            self.app
                .client
                .delete(self.app.url(&format!("/task-executions/{id}"))),
        )
    }

    fn retry(&mut self, id: Uuid) -> Result<RetryAnswer, String> {
        let (status, body, version) = self.call(
            self.app
                .client
                .post(self.app.url(&format!("/task-executions/{id}/retries"))),
            &[StatusCode::CREATED, StatusCode::CONFLICT],
        )?;
        if status == StatusCode::CREATED {
            let mut task = observed(&body)?;
            task.version = Some(version.ok_or("no ETag")?);
            return Ok(RetryAnswer::Created(task));
        }
        let latest = body["latest_execution_index"].as_i64();
        let current = body["current_status"].as_str();
        match (body["code"].as_str(), latest, current) {
            (Some("retry_not_allowed"), Some(latest), None) => Ok(RetryAnswer::Superseded {
                latest_execution_index: i32::try_from(latest).map_err(|e| e.to_string())?,
            }),
            (Some("retry_not_allowed"), None, Some(status)) => Ok(RetryAnswer::NotFinished {
                status: status.parse().map_err(|e| format!("{e}"))?,
            }),
            _ => Err(format!("409: {body}")),
        }
    }

    fn get(&mut self, id: Uuid) -> Result<Observed, String> {
        self.task(
            self.app
                .client
                .get(self.app.url(&format!("/task-executions/{id}"))),
            StatusCode::OK,
        )
    }

    fn list(&mut self, statuses: &[TaskStatus], limit: usize) -> Result<Vec<Observed>, String> {
        let mut path = format!("/task-executions?order=oldest&limit={limit}");
        if let Some(status) = statuses.first() {
            path.push_str(&format!("&status={status}"));
        }
        self.pages(&path)?.iter().map(observed).collect()
    }

    fn count_by_status(&mut self) -> Result<BTreeMap<String, i64>, String> {
        let (_, body, _) = self.call(
            self.app
                .client
                .get(self.app.url("/task-executions/counts?group_by=status")),
            &[StatusCode::OK],
        )?;
        serde_json::from_value(body["counts"].clone()).map_err(|e| format!("{e}: {body}"))
    }
}

/// Fewer cases than the use-case run (each step is a request):
/// `FLOWEXEC_HTTP_MODEL_CASES`, default 48.
fn the_api_follows_the_lifecycle_model(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let cases = std::env::var("FLOWEXEC_HTTP_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&model::steps(30), |steps| {
            let tenant = app
                .tenant(Role::Write, Actor::Integration)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            model::run(
                &mut OverHttp {
                    app: &app,
                    key: tenant.key,
                },
                steps,
            )
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}

on_both_backends!(the_api_follows_the_lifecycle_model);

/// The worker protocol over real HTTP on each store: claims by the roles
/// that may (and no other, and never another organization's tasks),
/// heartbeats, reports alone and in a batch, a retryable failure's next
/// attempt; then 8 workers racing to drain 60 tasks, each taken once.
fn workers_run_tasks_over_http(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Admin, Actor::System)?;
    let worker = app.key(&tenant, Role::Worker)?;
    let reader = app.key(&tenant, Role::Read)?;
    let stranger = app.tenant(Role::Admin, Actor::System)?;
    let post = |key: &str, path: &str, body: Value| {
        send(app.client.post(app.url(path)).bearer_auth(key).json(&body))
    };
    // No jitter: a retry's delay is exactly its backoff (1 s), never zero.
    let policy = json!({"max_attempts": 3, "backoff": {"initial_ms": 1000, "factor": 2, "max_ms": 60000}, "jitter": "none"});
    let tasks: Vec<Value> = (0..3)
        .map(|i| json!({"task_name": format!("t{i}"), "retry": policy}))
        .collect();
    let (status, _, _) = post(
        &tenant.key,
        "/flow-executions",
        json!({"flow_name": "f", "tasks": tasks}),
    )?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = post(&reader, "/task-executions/claim", json!({"worker_id": "w"}))?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, none, _) = post(
        &stranger.key,
        "/task-executions/claim",
        json!({"worker_id": "w", "limit": 10}),
    )?;
    assert_eq!(
        none["task_executions"],
        json!([]),
        "another organization's tasks were claimed"
    );
    let (status, claimed, _) = post(
        &worker,
        "/task-executions/claim",
        json!({"worker_id": "w", "limit": 3, "lease_seconds": 30}),
    )?;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    let ids: Vec<String> = claimed["task_executions"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ids.len(), 3);
    let (status, beat, etag) = post(
        &worker,
        &format!("/task-executions/{}/heartbeat", ids[0]),
        json!({"worker_id": "w", "lease_seconds": 90}),
    )?;
    assert_eq!(
        (status, etag.as_deref()),
        (StatusCode::OK, Some("\"2\"")),
        "{beat}"
    );
    let (status, foreign, _) = post(
        &stranger.key,
        &format!("/task-executions/{}/heartbeat", ids[0]),
        json!({"worker_id": "w"}),
    )?;
    assert_eq!(
        (status, &foreign["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    let (status, lost, _) = post(
        &worker,
        &format!("/task-executions/{}/complete", ids[0]),
        json!({"worker_id": "other"}),
    )?;
    assert_eq!(
        (status, &lost["code"]),
        (StatusCode::CONFLICT, &json!("lease_lost"))
    );
    let (status, done, _) = post(
        &worker,
        &format!("/task-executions/{}/complete", ids[0]),
        json!({"worker_id": "w", "output": {"n": 1}}),
    )?;
    assert_eq!(
        (status, &done["status"]),
        (StatusCode::OK, &json!("completed"))
    );
    let (status, failed, _) = post(
        &worker,
        &format!("/task-executions/{}/fail", ids[1]),
        json!({"worker_id": "w", "error": {"code": "boom"}}),
    )?;
    assert_eq!(
        (status, &failed["status"]),
        (StatusCode::OK, &json!("failed"))
    );
    let (status, batch, _) = post(
        &worker,
        "/task-executions/results",
        json!({"results": [
            {"id": ids[2], "worker_id": "w", "status": "completed"},
            {"id": ids[0], "worker_id": "w", "status": "completed", "output": {"n": 1}},
        ]}),
    )?;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(
        (
            &batch["results"][0]["status"],
            &batch["results"][1]["status"]
        ),
        (&json!(200), &json!(200)),
        "{batch}"
    );
    let flow = failed["flow_execution_id"].as_str().unwrap_or_default();
    let (_, all, _) = send(
        app.client
            .get(app.url(&format!(
                "/flow-executions/{flow}/task-executions?attempts=all"
            )))
            .bearer_auth(&reader),
    )?;
    let retry = all["task_executions"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|t| t["execution_index"] == json!(1))
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(
        (&retry["status"], &retry["task_name"]),
        (&json!("queued"), &failed["task_name"]),
        "{all}"
    );
    assert!(retry["not_before"].is_string(), "{retry}");

    // Racing workers: every task taken exactly once.
    let names: Vec<Value> = (0..60)
        .map(|i| json!({"task_name": format!("r{i}")}))
        .collect();
    post(
        &tenant.key,
        "/flow-executions",
        json!({"flow_name": "race", "tasks": names}),
    )?;
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (client, url, key, barrier) = (
                app.client.clone(),
                app.url("/task-executions/claim"),
                worker.clone(),
                barrier.clone(),
            );
            thread::spawn(move || -> anyhow::Result<Vec<String>> {
                barrier.wait();
                let mut mine = Vec::new();
                loop {
                    let (_, body, _) = send(
                        client
                            .post(&url)
                            .bearer_auth(&key)
                            .json(&json!({"worker_id": format!("w{i}"), "limit": 4, "task_names": ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"]})),
                    )?;
                    let taken: Vec<String> = body["task_executions"]
                        .as_array()
                        .map(|all| all.iter().filter_map(|t| t["id"].as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    if taken.is_empty() {
                        let (_, body, _) = send(
                            client
                                .post(&url)
                                .bearer_auth(&key)
                                .json(&json!({"worker_id": format!("w{i}"), "limit": 4})),
                        )?;
                        let rest: Vec<String> = body["task_executions"]
                            .as_array()
                            .map(|all| all.iter().filter_map(|t| t["id"].as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        if rest.is_empty() {
                            return Ok(mine);
                        }
                        mine.extend(rest);
                    } else {
                        mine.extend(taken);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??,
        );
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "a task was claimed twice");
    // The 60 racing tasks, and the retry once its backoff (at most a few
    // seconds under the default policy) has passed, or not yet.
    assert!((60..=61).contains(&total), "{total} tasks claimed");
    Ok(())
}

on_both_backends!(workers_run_tasks_over_http);

/// The server's own sweeper (every second in these tests) fails a run
/// past its time limit and queues its retry; the worker's late report is
/// refused.
fn the_sweeper_fails_a_run_past_its_time_limit(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Admin, Actor::System)?;
    let (status, flow, _) = send(
        app.client
            .post(app.url("/flow-executions"))
            .bearer_auth(&tenant.key)
            .json(
                &json!({"flow_name": "f", "tasks": [{"task_name": "slow", "timeout_seconds": 1}]}),
            ),
    )?;
    assert_eq!(status, StatusCode::CREATED, "{flow}");
    let (_, claimed, _) = send(
        app.client
            .post(app.url("/task-executions/claim"))
            .bearer_auth(&tenant.key)
            .json(&json!({"worker_id": "w", "lease_seconds": 60})),
    )?;
    let id = claimed["task_executions"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Bounded: the limit (1 s) and two sweeps (1 s apart), with room.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let failed = loop {
        let (_, task, _) = send(
            app.client
                .get(app.url(&format!("/task-executions/{id}")))
                .bearer_auth(&tenant.key),
        )?;
        if task["status"] == "failed" {
            break task;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "not swept in time: {task}"
        );
        thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        failed["error"],
        json!({"code": "timed_out", "worker_id": "w"})
    );
    assert_eq!(failed["modified_by"], "system");
    let (status, late, _) = send(
        app.client
            .post(app.url(&format!("/task-executions/{id}/complete")))
            .bearer_auth(&tenant.key)
            .json(&json!({"worker_id": "w"})),
    )?;
    assert_eq!(
        (status, &late["code"]),
        (StatusCode::CONFLICT, &json!("lease_lost"))
    );
    let flow_id = flow["id"].as_str().unwrap_or_default();
    let (_, all, _) = send(
        app.client
            .get(app.url(&format!(
                "/flow-executions/{flow_id}/task-executions?attempts=all"
            )))
            .bearer_auth(&tenant.key),
    )?;
    let mut statuses: Vec<(i64, String)> = all["task_executions"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|t| {
                    (
                        t["execution_index"].as_i64().unwrap_or(-1),
                        t["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    statuses.sort();
    assert_eq!(
        statuses,
        [(0, "failed".to_owned()), (1, "queued".to_owned())],
        "{all}"
    );
    Ok(())
}

on_both_backends!(the_sweeper_fails_a_run_past_its_time_limit);

/// A claim waiting for work sleeps until the next task it could take falls
/// due: a retry delayed 1.5 s is taken then, not when the 30 s wait ends.
fn a_waiting_claim_wakes_when_a_delayed_retry_falls_due(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Admin, Actor::System)?;
    let post = |path: &str, body: Value| {
        send(
            app.client
                .post(app.url(path))
                .bearer_auth(&tenant.key)
                .json(&body),
        )
    };
    let policy = json!({"max_attempts": 2, "jitter": "none",
        "backoff": {"initial_ms": 1500, "factor": 1, "max_ms": 1500}});
    let (status, _, _) = post(
        "/flow-executions",
        json!({"flow_name": "f", "tasks": [{"task_name": "t", "retry": policy}]}),
    )?;
    assert_eq!(status, StatusCode::CREATED);
    let (_, claimed, _) = post("/task-executions/claim", json!({"worker_id": "w"}))?;
    let first = claimed["task_executions"][0]["id"].clone();
    let (status, _, _) = post(
        &format!(
            "/task-executions/{}/fail",
            first.as_str().unwrap_or_default()
        ),
        json!({"worker_id": "w", "error": {"code": "boom"}}),
    )?;
    assert_eq!(status, StatusCode::OK);
    let started = std::time::Instant::now();
    let (status, retried, _) = post(
        "/task-executions/claim",
        json!({"worker_id": "w", "wait_seconds": 30}),
    )?;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    let taken = &retried["task_executions"];
    assert_eq!(
        (taken.as_array().map(Vec::len), &taken[0]["execution_index"]),
        (Some(1), &json!(1)),
        "{retried}"
    );
    assert_ne!(taken[0]["id"], first);
    assert!(
        // Well below the 10 s a waiting claim sleeps at most on its own.
        waited >= std::time::Duration::from_millis(500)
            && waited < std::time::Duration::from_secs(5),
        "the claim waited {waited:?} for a retry due 1.5 s after the failure"
    );
    Ok(())
}

on_both_backends!(a_waiting_claim_wakes_when_a_delayed_retry_falls_due);
