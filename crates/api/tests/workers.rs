//! The worker protocol over the API, on the real use cases over SQLite:
//! claim (and waiting for work), heartbeat, complete, fail, batch results;
//! each with its success, its refusals in the standard body with nothing
//! changed, another organization's key, no key, and each role.

mod support;

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use flowexec_api::ApiSettings;
use serde_json::{json, Value};
use support::{assert_problem, bearer, call, World};

fn post(path: &str, key: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(bearer(key))
        .set_json(body)
}

async fn send(world: &World, request: TestRequest) -> (StatusCode, Value, Option<String>) {
    let (status, headers, body) =
        call(world.services.clone(), &ApiSettings::default(), request).await;
    let etag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, body, etag)
}

async fn claim(world: &World, key: &str, body: Value) -> (StatusCode, Value) {
    let (status, body, _) = send(world, post("/task-executions/claim", key, body)).await;
    (status, body)
}

fn ids(claimed: &Value) -> Vec<String> {
    claimed["task_executions"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| t["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn only_admin_and_worker_keys_claim_and_a_missing_key_is_a_401() {
    let world = World::new();
    world.flow(&["a"]);
    for key in [&world.write_key, &world.read_key] {
        let (status, body) = claim(&world, key, json!({"worker_id": "w"})).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::FORBIDDEN, &json!("forbidden")),
            "{body}"
        );
    }
    let (status, _, _) = send(
        &world,
        TestRequest::post()
            .uri("/task-executions/claim")
            .set_json(json!({"worker_id": "w"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Another organization's worker finds nothing to take.
    let (status, body) = claim(
        &world,
        &world.other_key,
        json!({"worker_id": "w", "limit": 10}),
    )
    .await;
    assert_eq!((status, ids(&body).len()), (StatusCode::OK, 0), "{body}");
    let (status, body) = claim(&world, &world.admin_key, json!({"worker_id": "w"})).await;
    assert_eq!((status, ids(&body).len()), (StatusCode::OK, 1), "{body}");
    let task = &body["task_executions"][0];
    assert_eq!(task["status"], "running");
    assert_eq!(task["worker_id"], "w");
    assert!(task["lease_expires_at"].is_string() && task["heartbeat_at"].is_string());
}

#[actix_web::test]
async fn a_bad_claim_is_a_422_listing_each_field_and_takes_nothing() {
    let world = World::new();
    world.flow(&["a"]);
    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        post(
            "/task-executions/claim",
            &world.worker_key,
            json!({"worker_id": " padded", "limit": 0, "lease_seconds": 4, "wait_seconds": 31, "task_names": ["-bad"], "extra": 1}),
        ),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    for field in ["limit", "lease_seconds", "wait_seconds", "extra"] {
        assert!(fields.contains(&field), "{field} not in {body}");
    }
    let (_, body) = claim(&world, &world.worker_key, json!({"worker_id": "w"})).await;
    assert_eq!(ids(&body).len(), 1, "the refused claim took the task");
}

#[actix_web::test]
async fn a_worker_beats_and_completes_and_others_are_refused() {
    let world = World::new();
    world.flow(&["a"]);
    let (_, body) = claim(
        &world,
        &world.worker_key,
        json!({"worker_id": "w1", "lease_seconds": 30}),
    )
    .await;
    let id = ids(&body).pop().unwrap_or_default();
    let beat = |key: &str, worker: &str, task: &str| {
        post(
            &format!("/task-executions/{task}/heartbeat"),
            key,
            json!({"worker_id": worker, "lease_seconds": 120}),
        )
    };
    let (status, body, etag) = send(&world, beat(&world.worker_key, "w1", &id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        etag.as_deref(),
        Some("\"2\""),
        "a heartbeat keeps the version"
    );
    let (status, body, _) = send(&world, beat(&world.worker_key, "w2", &id)).await;
    assert_eq!(
        (status, &body["code"], &body["current_status"]),
        (
            StatusCode::CONFLICT,
            &json!("lease_lost"),
            &json!("running")
        )
    );
    // Another organization's key: the same 404 as a missing id.
    let (status, foreign, _) = send(&world, beat(&world.other_key, "w1", &id)).await;
    let missing = uuid::Uuid::new_v4().to_string();
    let (_, absent, _) = send(&world, beat(&world.other_key, "w1", &missing)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        (&foreign["code"], &foreign["detail"]),
        (&absent["code"], &absent["detail"])
    );
    let (status, _, _) = send(&world, beat(&world.read_key, "w1", &id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let done = |worker: &str| {
        post(
            &format!("/task-executions/{id}/complete"),
            &world.worker_key,
            json!({"worker_id": worker, "output": {"rows": 3}}),
        )
    };
    let (status, body, _) = send(&world, done("w2")).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::CONFLICT, &json!("lease_lost"))
    );
    let (status, completed, etag) = send(&world, done("w1")).await;
    assert_eq!(status, StatusCode::OK, "{completed}");
    assert_eq!(
        (
            &completed["status"],
            &completed["output"],
            &completed["lease_expires_at"]
        ),
        (&json!("completed"), &json!({"rows": 3}), &Value::Null)
    );
    assert_eq!(etag.as_deref(), Some("\"3\""));
    let (status, again, _) = send(&world, done("w1")).await;
    assert_eq!(
        (status, &again),
        (StatusCode::OK, &completed),
        "a repeat answers the same body"
    );
    let (status, body, _) = send(
        &world,
        post(
            &format!("/task-executions/{id}/complete"),
            &world.worker_key,
            json!({"worker_id": "w1", "output": 4}),
        ),
    )
    .await;
    assert_eq!(
        (status, &body["code"], &body["current_status"]),
        (
            StatusCode::CONFLICT,
            &json!("lease_lost"),
            &json!("completed")
        )
    );
    let (_, events, _) = send(
        &world,
        TestRequest::get()
            .uri(&format!("/task-executions/{id}/events"))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(3),
        "created, claimed, completed once: {events}"
    );
}

#[actix_web::test]
async fn a_failure_queues_the_next_attempt_unless_it_is_not_retryable() {
    let world = World::new();
    world.flow(&["a", "b"]);
    let (_, body) = claim(
        &world,
        &world.worker_key,
        json!({"worker_id": "w", "limit": 2}),
    )
    .await;
    let taken = ids(&body);
    let name = |i: usize| {
        body["task_executions"][i]["task_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (retried, not_retried) = (name(0), name(1));
    let fail = |id: &str, body: Value| {
        post(
            &format!("/task-executions/{id}/fail"),
            &world.worker_key,
            body,
        )
    };
    let (status, failed, _) = send(
        &world,
        fail(
            &taken[0],
            json!({"worker_id": "w", "error": {"code": "boom"}}),
        ),
    )
    .await;
    assert_eq!(
        (status, &failed["status"], &failed["error"]),
        (StatusCode::OK, &json!("failed"), &json!({"code": "boom"}))
    );
    let (status, _, _) = send(
        &world,
        fail(
            &taken[1],
            json!({"worker_id": "w", "error": null, "retryable": false}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let flow = failed["flow_execution_id"].as_str().unwrap_or_default();
    let (_, tasks, _) = send(
        &world,
        TestRequest::get()
            .uri(&format!(
                "/flow-executions/{flow}/task-executions?attempts=all"
            ))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    let attempts: Vec<(String, i64, String)> = tasks["task_executions"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|t| {
                    (
                        t["task_name"].as_str().unwrap_or_default().to_owned(),
                        t["execution_index"].as_i64().unwrap_or(-1),
                        t["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut attempts = attempts;
    attempts.sort();
    let mut expected = vec![
        (retried.clone(), 0, "failed".to_owned()),
        (retried, 1, "queued".to_owned()),
        (not_retried, 0, "failed".to_owned()),
    ];
    expected.sort();
    assert_eq!(attempts, expected, "{tasks}");
    let (status, body, _) = send(&world, fail(&taken[0], json!({"worker_id": "w"}))).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "error is required: {body}"
    );
}

#[actix_web::test]
async fn a_batch_answers_each_result_on_its_own() {
    let world = World::new();
    world.flow(&["a", "b"]);
    let (_, body) = claim(
        &world,
        &world.worker_key,
        json!({"worker_id": "w", "limit": 2}),
    )
    .await;
    let taken = ids(&body);
    let missing = uuid::Uuid::new_v4().to_string();
    let (status, body, _) = send(
        &world,
        post(
            "/task-executions/results",
            &world.worker_key,
            json!({"results": [
                {"id": taken[0], "worker_id": "w", "status": "completed", "output": 1},
                {"id": taken[1], "worker_id": "other", "status": "failed", "error": "x"},
                {"id": missing, "worker_id": "w", "status": "completed"},
            ]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers: Vec<(Value, Value)> = body["results"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|r| (r["status"].clone(), r["problem"]["code"].clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        answers,
        [
            (json!(200), Value::Null),
            (json!(409), json!("lease_lost")),
            (json!(404), json!("not_found"))
        ]
    );
    assert_eq!(body["results"][0]["task_execution"]["status"], "completed");
    let (status, body, _) = send(
        &world,
        post(
            "/task-executions/results",
            &world.worker_key,
            json!({"results": [
                {"id": taken[1], "worker_id": "w", "status": "completed", "error": "no"},
            ]}),
        ),
    )
    .await;
    assert_eq!(
        (status, &body["errors"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("results[0].error")),
        "{body}"
    );
    let (status, _, _) = send(
        &world,
        post(
            "/task-executions/results",
            &world.write_key,
            json!({"results": []}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_waiting_claim_is_woken_by_new_work_and_an_empty_one_ends_in_time() {
    let world = World::new();
    let started = Instant::now();
    let (status, body) = claim(
        &world,
        &world.worker_key,
        json!({"worker_id": "w", "wait_seconds": 1}),
    )
    .await;
    assert_eq!((status, ids(&body).len()), (StatusCode::OK, 0));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "answered before its wait was up"
    );

    // No polling of its own within the wait: only the signal can wake it
    // before the 30 s are up.
    let never = ApiSettings {
        claim_poll: Duration::from_secs(60),
        claim_safety_poll: Duration::from_secs(60),
        ..ApiSettings::default()
    };
    let waiting = waiting_claim(&world, never, 30);
    // Created through the API, which wakes waiting claims at once.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let (status, _, _) = send(
        &world,
        post(
            "/flow-executions",
            &world.write_key,
            json!({"flow_name": "f", "tasks": [{"task_name": "t"}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (waited, body) = waiting.await.unwrap_or_default();
    assert_eq!(ids(&body).len(), 1, "{body}");
    assert!(
        waited < Duration::from_secs(30),
        "the claim was not woken: it waited {waited:?}"
    );
}

#[actix_web::test]
async fn shutdown_answers_a_waiting_claim_at_once() {
    let world = World::new();
    let settings = ApiSettings::default();
    let shutdown = settings.shutdown.clone();
    let waiting = {
        let services = world.services.clone();
        let key = world.worker_key.clone();
        actix_web::rt::spawn(async move {
            let started = Instant::now();
            let (status, _, body) = call(
                services,
                &settings,
                post(
                    "/task-executions/claim",
                    &key,
                    json!({"worker_id": "w", "wait_seconds": 30}),
                ),
            )
            .await;
            (started.elapsed(), status, body)
        })
    };
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    shutdown.trigger();
    let (waited, status, body) =
        waiting
            .await
            .unwrap_or((Duration::MAX, StatusCode::IM_A_TEAPOT, Value::Null));
    assert_eq!((status, ids(&body).len()), (StatusCode::OK, 0), "{body}");
    assert!(
        waited < Duration::from_secs(5),
        "the claim waited {waited:?}"
    );
}

/// A claim waiting `wait_seconds` under `settings`, spawned: how long it
/// waited, and what it answered.
fn waiting_claim(
    world: &World,
    settings: ApiSettings,
    wait_seconds: u32,
) -> actix_web::rt::task::JoinHandle<(Duration, Value)> {
    let services = world.services.clone();
    let key = world.worker_key.clone();
    actix_web::rt::spawn(async move {
        let started = Instant::now();
        let (_, _, body) = call(
            services,
            &settings,
            post(
                "/task-executions/claim",
                &key,
                json!({"worker_id": "w", "wait_seconds": wait_seconds}),
            ),
        )
        .await;
        (started.elapsed(), body)
    })
}

#[actix_web::test]
async fn a_waiting_claim_polls_only_while_the_work_signal_is_incomplete() {
    // Complete (all work made in this process notifies it): work that
    // bypasses the signal is found only when the wait is over, not by
    // polling every 100 ms.
    let world = World::new();
    let quick = ApiSettings {
        claim_poll: Duration::from_millis(100),
        ..ApiSettings::default()
    };
    let waiting = waiting_claim(&world, quick.clone(), 2);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    world.flow(&["t"]);
    let (waited, body) = waiting.await.unwrap_or_default();
    assert_eq!(ids(&body).len(), 1, "{body}");
    assert!(
        waited >= Duration::from_secs(2),
        "a complete signal's claim polled: found the task after {waited:?}"
    );

    // Incomplete (say, the listener is reconnecting): it polls.
    let world = World::new();
    world.services.work.set_complete(false);
    let waiting = waiting_claim(&world, quick, 30);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    world.flow(&["t"]);
    let (waited, body) = waiting.await.unwrap_or_default();
    assert_eq!(ids(&body).len(), 1, "{body}");
    assert!(
        waited < Duration::from_secs(10),
        "an incomplete signal's claim did not poll: it waited {waited:?}"
    );
}
