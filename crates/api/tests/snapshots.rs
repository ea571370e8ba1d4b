//! The wire format, pinned: the status, the headers a client reads and the
//! body of every endpoint's answers (successes and each kind of error),
//! and the whole OpenAPI document, as snapshots under `tests/snapshots/`.
//! A change to the contract is therefore always a visible diff; review it
//! with `cargo insta review` (or delete the file and rerun) and commit it.
//!
//! Times are fixed by the clock the use cases are given; ids are random, so
//! every UUID is redacted to `[uuid]`, and so is every list cursor (sealed
//! with the store's random secret) to `[cursor]`; the request id is the one
//! the test sends.

// Test code throughout, where a panic is how a test fails (clippy.toml
// covers test functions only, not these helpers).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use actix_web::test::TestRequest;
use flowexec_api::{ApiServices, ApiSettings};
use flowexec_domain::{TaskExecutionId, TaskStatus};
use flowexec_service::ServiceError;
use serde_json::json;
use support::{Failing, World};

const REQUEST_ID: &str = "snapshot-request";

/// Calls the API and renders what a client sees: status, the headers that
/// carry meaning, and the body (pretty JSON, or its length when it is not
/// JSON).
async fn answer(services: ApiServices, settings: &ApiSettings, request: TestRequest) -> String {
    use actix_web::test;
    let app = test::init_service(flowexec_api::build_app(services, settings)).await;
    let response = test::call_service(
        &app,
        request
            .insert_header(("X-Request-Id", REQUEST_ID))
            .to_request(),
    )
    .await;
    let status = response.status();
    let mut text = format!("{status}\n");
    for name in [
        "content-type",
        "location",
        "etag",
        "allow",
        "www-authenticate",
    ] {
        if let Some(value) = response.headers().get(name) {
            text.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
        }
    }
    let bytes = test::read_body(response).await;
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap(),
        Err(_) if bytes.is_empty() => String::new(),
        Err(_) => format!("<{} bytes, not JSON>", bytes.len()),
    };
    text.push('\n');
    text.push_str(&body);
    text
}

/// Asserts `text` against the snapshot `name`, every UUID redacted.
fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uuid]",
    );
    // Cursors are sealed with the store's random secret.
    settings.add_filter(r#""next_cursor": "[^"]+""#, r#""next_cursor": "[cursor]""#);
    // An issued key is random.
    settings.add_filter(r#""key": "fx_[0-9a-f_]+""#, r#""key": "[key]""#);
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn get(uri: &str, key: &str) -> TestRequest {
    TestRequest::get()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {key}")))
}

fn post(key: &str) -> TestRequest {
    TestRequest::post()
        .uri("/flow-executions")
        .insert_header(("Authorization", format!("Bearer {key}")))
}

#[actix_web::test]
async fn successes() {
    let world = World::new();
    let settings = ApiSettings::default();
    let created = answer(
        world.services.clone(),
        &settings,
        // Raw text: numbers as a client may write them (kept exactly, in
        // canonical form).
        post(&world.write_key)
            .insert_header(("Content-Type", "application/json"))
            .set_payload(
                r#"{"flow_name": "etl", "tasks": [
                    {"task_name": "extract", "input": {"rows": [1, 2.50, "x", null], "big": 1e400}},
                    {"task_name": "load"}
                ]}"#,
            ),
    )
    .await;
    snapshot("post_flow_executions_201", &created);

    let flow = world.flow(&["extract", "load"]);
    let task = flow.task_executions[0].id;
    for (name, uri) in [
        (
            "get_flow_execution_200",
            format!("/flow-executions/{}", flow.flow_execution.id),
        ),
        ("get_task_execution_200", format!("/task-executions/{task}")),
    ] {
        let text = answer(
            world.services.clone(),
            &settings,
            get(&uri, &world.read_key),
        )
        .await;
        snapshot(name, &text);
    }
    // The lifecycle: started, completed, retried, the history, deleted.
    let change = |id: TaskExecutionId, body: serde_json::Value| {
        TestRequest::patch()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(("Authorization", format!("Bearer {}", world.write_key)))
            .set_json(body)
    };
    for (name, request) in [
        (
            "patch_task_execution_running_200",
            change(task, json!({"status": "running"})),
        ),
        (
            "patch_task_execution_completed_200",
            change(
                task,
                json!({"status": "completed", "output": {"rows": 3}, "reason": "done"}),
            )
            .insert_header(("If-Match", "\"2\"")),
        ),
        (
            "post_retries_201",
            TestRequest::post()
                .uri(&format!("/task-executions/{task}/retries"))
                .insert_header(("Authorization", format!("Bearer {}", world.write_key)))
                .set_json(json!({"reason": "new data"})),
        ),
        (
            "get_task_execution_events_200",
            get(
                &format!("/task-executions/{task}/events?limit=2"),
                &world.read_key,
            ),
        ),
        (
            "delete_task_execution_200",
            TestRequest::delete()
                .uri(&format!("/task-executions/{task}"))
                .insert_header(("Authorization", format!("Bearer {}", world.write_key))),
        ),
    ] {
        let text = answer(world.services.clone(), &settings, request).await;
        snapshot(name, &text);
    }
    // Lists and counts.
    for (name, uri) in [
        (
            "get_task_executions_200",
            // The clock is fixed, so rows share one instant: each query here
            // selects one row, for an answer that does not hang on ids.
            format!(
                "/task-executions?flow_execution_id={}&task_name=load&order=oldest",
                flow.flow_execution.id
            ),
        ),
        (
            "get_flow_executions_200",
            "/flow-executions?limit=1".to_owned(),
        ),
        (
            "get_flow_execution_tasks_200",
            format!(
                "/flow-executions/{}/task-executions?task_name=extract",
                flow.flow_execution.id
            ),
        ),
        (
            "get_task_execution_counts_200",
            "/task-executions/counts?group_by=status".to_owned(),
        ),
    ] {
        let text = answer(
            world.services.clone(),
            &settings,
            get(&uri, &world.read_key),
        )
        .await;
        snapshot(name, &text);
    }
    // API keys: issued, listed, revoked.
    let issued = answer(
        world.services.clone(),
        &settings,
        TestRequest::post()
            .uri("/api-keys")
            .insert_header(("Authorization", format!("Bearer {}", world.admin_key)))
            .set_json(json!({"role": "worker", "actor": "service-account"})),
    )
    .await;
    snapshot("post_api_keys_201", &issued);
    // (The list's items have the shape of the revoked key below; the keys
    // share one instant, so their order hangs on random ids.)
    let keys = world
        .services
        .keys
        .list_keys(&support::principal(&world, &world.admin_key))
        .unwrap();
    let worker = keys
        .iter()
        .find(|k| {
            k.role == flowexec_domain::Role::Worker
                && k.actor == flowexec_domain::Actor::ServiceAccount
        })
        .unwrap()
        .id;
    let revoked = answer(
        world.services.clone(),
        &settings,
        TestRequest::delete()
            .uri(&format!("/api-keys/{worker}"))
            .insert_header(("Authorization", format!("Bearer {}", world.admin_key))),
    )
    .await;
    snapshot("delete_api_key_200", &revoked);
    for (name, uri) in [("healthz_200", "/healthz"), ("readyz_200", "/readyz")] {
        let text = answer(
            world.services.clone(),
            &settings,
            TestRequest::get().uri(uri),
        )
        .await;
        snapshot(name, &text);
    }
}

#[actix_web::test]
async fn flows() {
    let world = World::new();
    let settings = ApiSettings::default();
    let put = |key: &str, content_type: &str, body: &str| {
        TestRequest::put()
            .uri("/flows/hello")
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Content-Type", content_type.to_owned()))
            .set_payload(body.to_owned())
    };
    const HELLO: &str = "name: hello\ninput_schema: {type: object, required: [who]}\ntasks:\n  - name: greet\n    input: {who: \"{{ flow.input.who }}\"}\n  - name: log\n    depends_on: [greet]\n    input: \"{{ tasks.greet.output }}\"\n";
    let steps = [
        ("put_flow_201", put(&world.write_key, "application/yaml", HELLO)),
        ("put_flow_200_unchanged", put(&world.write_key, "application/yaml", HELLO)),
        (
            "error_422_invalid_definition",
            put(
                &world.write_key,
                "application/yaml",
                "name: hello\ncolour: blue\ntasks:\n  - name: a\n    depends_on: [b]\n  - name: b\n    depends_on: [a]\n    input: \"{{ tasks.c.output }}\"\n",
            ),
        ),
        (
            "error_415_flow_definition",
            put(&world.write_key, "text/plain", HELLO),
        ),
        ("error_403_put_flow_read_key", put(&world.read_key, "application/yaml", HELLO)),
        ("get_flow_200", get("/flows/hello", &world.read_key)),
        ("get_flow_version_200", get("/flows/hello/versions/1", &world.read_key)),
        ("list_flows_200", get("/flows", &world.read_key)),
        ("error_404_flow_other_org", get("/flows/hello", &world.other_key)),
        (
            "post_flow_executions_stored_201",
            post(&world.write_key).set_json(json!({"flow": "hello", "input": {"who": "world"}})),
        ),
        (
            "error_422_flow_input_schema",
            post(&world.write_key).set_json(json!({"flow": "hello", "input": {"whom": 1}})),
        ),
        (
            "delete_flow_204",
            TestRequest::delete()
                .uri("/flows/hello")
                .insert_header(("Authorization", format!("Bearer {}", world.write_key))),
        ),
        (
            "error_404_start_deleted_flow",
            post(&world.write_key).set_json(json!({"flow": "hello"})),
        ),
    ];
    for (name, request) in steps {
        let text = answer(world.services.clone(), &settings, request).await;
        snapshot(name, &text);
    }
}

#[actix_web::test]
async fn worker_protocol() {
    let world = World::new();
    let settings = ApiSettings::default();
    let call = |uri: String, body: serde_json::Value| {
        TestRequest::post()
            .uri(&uri)
            .insert_header(("Authorization", format!("Bearer {}", world.worker_key)))
            .set_json(body)
    };
    let first = world.flow(&["extract"]).task_executions[0].id;
    let claimed = answer(
        world.services.clone(),
        &settings,
        call(
            "/task-executions/claim".into(),
            json!({"worker_id": "w-1", "lease_seconds": 30}),
        ),
    )
    .await;
    snapshot("post_claim_200", &claimed);
    let steps = [
        (
            "post_heartbeat_200",
            format!("/task-executions/{first}/heartbeat"),
            json!({"worker_id": "w-1", "lease_seconds": 60}),
        ),
        (
            "error_409_lease_lost",
            format!("/task-executions/{first}/complete"),
            json!({"worker_id": "w-2", "output": 1}),
        ),
        (
            "post_complete_200",
            format!("/task-executions/{first}/complete"),
            json!({"worker_id": "w-1", "output": {"rows": 12}}),
        ),
    ];
    for (name, uri, body) in steps {
        let text = answer(world.services.clone(), &settings, call(uri, body)).await;
        snapshot(name, &text);
    }
    let second = world.flow(&["load"]).task_executions[0].id;
    answer(
        world.services.clone(),
        &settings,
        call("/task-executions/claim".into(), json!({"worker_id": "w-1"})),
    )
    .await;
    let failed = answer(
        world.services.clone(),
        &settings,
        call(
            format!("/task-executions/{second}/fail"),
            json!({"worker_id": "w-1", "error": {"code": "disk_full"}, "retryable": false}),
        ),
    )
    .await;
    snapshot("post_fail_200", &failed);
    let results = answer(
        world.services.clone(),
        &settings,
        call(
            "/task-executions/results".into(),
            json!({"results": [
                {"id": first, "worker_id": "w-1", "status": "completed", "output": {"rows": 12}},
                {"id": second, "worker_id": "w-2", "status": "completed"},
            ]}),
        ),
    )
    .await;
    snapshot("post_results_200", &results);
}

#[actix_web::test]
async fn client_errors() {
    let world = World::new();
    let settings = ApiSettings {
        max_body_bytes: 1024,
        ..ApiSettings::default()
    };
    let missing = format!("/task-executions/{}", TaskExecutionId::generate());
    let cases = [
        (
            "error_400_malformed_id",
            get("/task-executions/not-a-uuid", &world.read_key),
        ),
        (
            "error_400_malformed_json",
            post(&world.write_key)
                .insert_header(("Content-Type", "application/json"))
                .set_payload("{\"flow_name\": "),
        ),
        (
            "error_400_repeated_key",
            post(&world.write_key)
                .insert_header(("Content-Type", "application/json"))
                .set_payload(r#"{"flow_name": "a", "flow_name": "b", "tasks": []}"#),
        ),
        ("error_401_missing_key", TestRequest::get().uri(&missing)),
        ("error_401_unknown_key", get(&missing, "fx_not_a_key")),
        (
            "error_403_read_key_writes",
            post(&world.read_key)
                .set_json(json!({"flow_name": "f", "tasks": [{"task_name": "t"}]})),
        ),
        ("error_404_unknown_id", get(&missing, &world.read_key)),
        ("error_404_unknown_path", TestRequest::get().uri("/nope")),
        ("error_405_method", TestRequest::put().uri(&missing)),
        (
            "error_413_too_large",
            post(&world.write_key)
                .insert_header(("Content-Type", "application/json"))
                .set_payload(format!("{{\"flow_name\": \"{}\"}}", "x".repeat(2000))),
        ),
        (
            "error_415_not_json",
            post(&world.write_key)
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("flow"),
        ),
        (
            "error_422_every_field",
            post(&world.write_key).set_json(json!({
                "flow_name": "",
                "tasks": [{"task_name": "ok"}, {"task_name": "ok"}, {"task_name": "bad name!"}],
                "extra": 1
            })),
        ),
    ];
    for (name, request) in cases {
        let text = answer(world.services.clone(), &settings, request).await;
        snapshot(name, &text);
    }
    // Refusals of the lifecycle, on a queued task.
    let task = world.flow(&["t"]).task_executions[0].id;
    let write = |request: TestRequest| {
        request.insert_header(("Authorization", format!("Bearer {}", world.write_key)))
    };
    let lifecycle = [
        (
            "error_409_invalid_transition_patch",
            write(TestRequest::patch().uri(&format!("/task-executions/{task}")))
                .set_json(json!({"status": "completed"})),
        ),
        (
            "error_409_retry_not_allowed",
            write(TestRequest::post().uri(&format!("/task-executions/{task}/retries"))),
        ),
        (
            "error_412_precondition_failed",
            write(TestRequest::delete().uri(&format!("/task-executions/{task}")))
                .insert_header(("If-Match", "\"5\"")),
        ),
        (
            "error_422_patch_fields",
            write(TestRequest::patch().uri(&format!("/task-executions/{task}")))
                .set_json(json!({"status": "running", "output": 1, "reason": "x".repeat(1001)})),
        ),
        (
            "error_400_cursor",
            get(
                &format!("/task-executions/{task}/events?cursor=forged"),
                &world.read_key,
            ),
        ),
    ];
    for (name, request) in lifecycle {
        let text = answer(world.services.clone(), &ApiSettings::default(), request).await;
        snapshot(name, &text);
    }
}

#[actix_web::test]
async fn conflicts_never_name_the_store() {
    let world = World::new();
    type Fault = fn() -> ServiceError;
    let faults: [(&str, Fault); 2] = [
        ("error_409_conflict", || {
            ServiceError::Conflict("task_executions_attempt_key".into())
        }),
        ("error_409_invalid_transition", || {
            ServiceError::InvalidTransition {
                current: TaskStatus::Completed,
                requested: TaskStatus::Running,
            }
        }),
    ];
    for (name, fault) in faults {
        let text = answer(
            ApiServices {
                executions: Arc::new(Failing(fault)),
                ..world.services.clone()
            },
            &ApiSettings::default(),
            post(&world.write_key)
                .set_json(json!({"flow_name": "f", "tasks": [{"task_name": "t"}]})),
        )
        .await;
        assert!(!text.contains("attempt_key"), "{text}");
        snapshot(name, &text);
    }
}

#[actix_web::test]
async fn server_errors() {
    let world = World::new();
    let internal = answer(
        ApiServices {
            executions: Arc::new(Failing(|| {
                ServiceError::Internal(anyhow::anyhow!("cause: password=hunter2"))
            })),
            ..world.services.clone()
        },
        &ApiSettings::default(),
        get(
            &format!("/task-executions/{}", TaskExecutionId::generate()),
            &world.read_key,
        ),
    )
    .await;
    snapshot("error_500_internal", &internal);
    let unavailable = answer(
        ApiServices {
            readiness: Arc::new(Failing(|| {
                ServiceError::Unavailable(anyhow::anyhow!("refused"))
            })),
            ..world.services.clone()
        },
        &ApiSettings::default(),
        TestRequest::get().uri("/readyz"),
    )
    .await;
    snapshot("error_503_unavailable", &unavailable);
}

#[actix_web::test]
async fn the_openapi_document() {
    let world = World::new();
    let text = answer(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get().uri("/openapi.json"),
    )
    .await;
    snapshot("openapi_json", &text);
}
