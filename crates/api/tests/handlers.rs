//! The HTTP layer over the real use cases on a real SQLite store (a
//! temporary file each): status codes, problem bodies, headers. A fake
//! appears only where a fault must be injected (a 500, a 503).

mod support;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use flowexec_api::{build_app, ApiServices, ApiSettings};
use flowexec_domain::TaskExecutionId;
use flowexec_service::ServiceError;
use serde_json::{json, Value};
use support::{assert_problem, bearer, call, Failing, World};

#[actix_web::test]
async fn get_task_execution_returns_every_field_of_the_seed() {
    let world = World::new();
    let task = world.flow(&["extract"]).task_executions[0].clone();
    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get()
            .uri(&format!("/task-executions/{}", task.id))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-request-id"));
    let fields: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    // The seed's fields, those the worker protocol added, and the loop
    // iteration of flows.
    let mut expected = vec![
        "completed_at",
        "created_at",
        "error",
        "execution_index",
        "flow_execution_id",
        "id",
        "input",
        "modified_by",
        "organization_id",
        "output",
        "started_at",
        "status",
        "task_name",
        "updated_at",
        "worker_id",
        "lease_expires_at",
        "heartbeat_at",
        "not_before",
        "priority",
        "timeout_seconds",
        "retry",
        "iteration",
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected);
    assert_eq!(body["id"], task.id.to_string());
    assert_eq!(body["status"], "queued");
    assert_eq!(body["execution_index"], 0);
    assert_eq!(body["modified_by"], "integration");
    assert_eq!(body["input"], json!({"a": [1, "x", null]}));
    assert_eq!(body["output"], Value::Null);
    assert!(body["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
}

#[actix_web::test]
async fn a_missing_wrong_scheme_or_unknown_key_is_a_401() {
    let world = World::new();
    let task = world.flow(&["t"]).task_executions[0].id;
    for auth in [
        None,
        Some("Basic Zm9vOmJhcg=="),
        Some("Bearer"),
        Some("Bearer fx_nope"),
    ] {
        let mut request = TestRequest::get().uri(&format!("/task-executions/{task}"));
        if let Some(value) = auth {
            request = request.insert_header(("Authorization", value));
        }
        let (status, headers, body) =
            call(world.services.clone(), &ApiSettings::default(), request).await;
        assert_problem(
            status,
            &headers,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        assert_eq!(
            headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
    }
}

#[actix_web::test]
async fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced() {
    let world = World::new();
    for (sent, echoed) in [
        ("client-42.a:b/c", true),
        ("has space", false),
        ("<script>", false),
    ] {
        let (_, headers, body) = call(
            world.services.clone(),
            &ApiSettings::default(),
            TestRequest::get()
                .uri("/task-executions/not-a-uuid")
                .insert_header(("X-Request-Id", sent)),
        )
        .await;
        let got = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(got == sent, echoed, "sent {sent:?}, got {got:?}");
        assert_eq!(body["request_id"], got);
    }
}

#[actix_web::test]
async fn an_invalid_key_is_a_401_even_when_the_id_is_malformed_too() {
    let world = World::new();
    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get()
            .uri("/task-executions/123")
            .insert_header(bearer("fx_wrong")),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[actix_web::test]
async fn a_non_uuid_id_is_a_400_and_an_unknown_one_a_404() {
    let world = World::new();
    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get()
            .uri("/task-executions/123")
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );

    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get()
            .uri(&format!("/task-executions/{}", TaskExecutionId::generate()))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
}

#[actix_web::test]
async fn create_answers_201_with_a_location_and_stores_the_parsed_command() {
    let world = World::new();
    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::post()
            .uri("/flow-executions")
            .insert_header(bearer(&world.write_key))
            .set_json(json!({"flow_name": "etl", "tasks": [{"task_name": "a", "input": 5}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let location = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(
        location,
        format!(
            "/flow-executions/{}",
            body["id"].as_str().unwrap_or_default()
        )
    );
    assert_eq!(body["task_executions"][0]["input"], json!(5));
    assert_eq!(body["modified_by"], "integration");
    assert_eq!(world.count("task_executions"), 1);
}

#[actix_web::test]
async fn how_a_task_is_run_is_kept_and_each_broken_bound_refused() {
    let world = World::new();
    let retry = json!({"max_attempts": 4.0, "backoff": {"initial_ms": 500, "factor": 1.5, "max_ms": 1e4}, "jitter": "none"});
    let (status, _, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        post_as(&world.write_key).set_json(json!({"flow_name": "etl", "tasks": [
            {"task_name": "a", "priority": 7, "timeout_seconds": 30.0, "retry": retry},
            {"task_name": "b"},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let a = &body["task_executions"][0];
    assert_eq!(
        (
            &a["priority"],
            &a["timeout_seconds"],
            &a["not_before"],
            &a["worker_id"]
        ),
        (&json!(7), &json!(30), &Value::Null, &Value::Null)
    );
    assert_eq!(
        a["retry"],
        json!({"max_attempts": 4, "backoff": {"initial_ms": 500, "factor": 1.5, "max_ms": 10000}, "jitter": "none"})
    );
    let b = &body["task_executions"][1];
    assert_eq!((&b["priority"], &b["retry"]), (&json!(0), &Value::Null));

    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        post_as(&world.write_key).set_json(json!({"flow_name": "etl", "tasks": [
            {"task_name": "a", "timeout_seconds": 0, "retry": {"max_attempts": 0, "backoff": {"initial_ms": 900, "factor": 2, "max_ms": 100}, "jitter": "full"}},
            {"task_name": "b", "priority": 1.5},
        ]})),
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
    for field in [
        "tasks[0].timeout_seconds",
        "tasks[0].retry.max_attempts",
        "tasks[1].priority",
    ] {
        assert!(fields.contains(&field), "{field} not in {body}");
    }
    assert_eq!(
        world.count("flow_executions"),
        1,
        "the refused body created something"
    );
}

/// `POST /flow-executions` with `key`.
fn post_as(key: &str) -> TestRequest {
    TestRequest::post()
        .uri("/flow-executions")
        .insert_header(bearer(key))
}

/// `POST /flow-executions` with `key` and `text` as a JSON body.
fn raw_json(key: &str, text: &str) -> TestRequest {
    post_as(key)
        .insert_header(("content-type", "application/json"))
        .set_payload(text.to_owned())
}

#[actix_web::test]
async fn create_rejects_bad_bodies_with_the_right_status_and_creates_nothing() {
    let world = World::new();
    let (write, read) = (world.write_key.as_str(), world.read_key.as_str());
    let cases: Vec<(TestRequest, StatusCode, &str)> = vec![
        (
            post_as(read).set_json(json!({"flow_name": "f", "tasks": [{"task_name": "a"}]})),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            post_as(write)
                .insert_header(("content-type", "text/plain"))
                .set_payload("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            raw_json(write, "{\"flow_name\": "),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post_as(write)
                .set_json(json!({"flow_name": "f", "tasks": [{"task_name": "x".repeat(2000)}]})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            // 70 bytes that would be 2,000 once its numbers are written out.
            raw_json(
                write,
                r#"{"flow_name": "f", "tasks": [{"task_name": "t", "input": [1e999, 1e999]}]}"#,
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            raw_json(
                write,
                r#"{"flow_name": "f", "flow_name": "g", "tasks": [{"task_name": "t"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post_as(write).set_json(json!({"flow_name": "", "tasks": "no"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post_as(write).set_json(
                json!({"flow_name": "f", "tasks": [{"task_name": "a"}, {"task_name": "a"}]}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (request, expected, code) in cases {
        let (status, headers, body) = call(
            world.services.clone(),
            &ApiSettings {
                max_body_bytes: 1024,
                ..ApiSettings::default()
            },
            request,
        )
        .await;
        assert_problem(status, &headers, &body, expected, code);
        assert_eq!(
            world.count("flow_executions"),
            0,
            "{code}: something was created"
        );
    }
    let (_, _, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        post_as(write).set_json(json!({"flow_name": "", "tasks": "no"})),
    )
    .await;
    assert_eq!(
        body["errors"],
        json!([
            {"field": "flow_name", "message": "must be at least 1 character(s) long"},
            {"field": "flow_name", "message": "must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            {"field": "tasks", "message": "must be an array"},
        ])
    );
}

#[actix_web::test]
async fn internal_errors_are_a_bare_500_and_an_unreachable_store_a_503() {
    let world = World::new();
    let internal = || ServiceError::Internal(anyhow::anyhow!("secret cause: password=hunter2"));
    let (status, headers, body) = call(
        ApiServices {
            executions: Arc::new(Failing(internal)),
            ..world.services.clone()
        },
        &ApiSettings::default(),
        TestRequest::get()
            .uri(&format!("/task-executions/{}", TaskExecutionId::generate()))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
    );
    assert!(!body.to_string().contains("hunter2"));

    let (status, headers, body) = call(
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
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
}

#[actix_web::test]
async fn unknown_paths_are_404_and_unrouted_methods_405_in_the_standard_body() {
    let world = World::new();
    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get().uri("/nope"),
    )
    .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, headers, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::put().uri(&format!("/task-executions/{}", TaskExecutionId::generate())),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_eq!(
        headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD, PATCH, DELETE")
    );
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    let (status, headers, _) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
}

#[actix_web::test]
async fn the_openapi_document_is_3_1_and_names_every_endpoint() {
    let world = World::new();
    let (status, _, body) = call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get().uri("/openapi.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        body["openapi"]
    );
    for path in [
        "/flow-executions",
        "/flow-executions/{id}",
        "/task-executions/{id}",
        "/healthz",
        "/readyz",
    ] {
        assert!(body["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(
        body["components"]["schemas"]["TaskExecutionBody"]["properties"]["modified_by"].is_object()
    );
    // The name rules stated in the document are the domain's.
    let schemas = &body["components"]["schemas"];
    for (schema, field) in [
        ("TaskExecutionBody", "task_name"),
        ("FlowExecutionBody", "flow_name"),
        ("NewTaskBody", "task_name"),
        ("NewFlowExecutionBody", "flow_name"),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(
            property["pattern"],
            flowexec_domain::names::IDENTIFIER_PATTERN,
            "{schema}.{field}"
        );
        assert_eq!(
            property["maxLength"],
            flowexec_domain::names::MAX_IDENTIFIER_LEN,
            "{schema}.{field}"
        );
    }
    // Any JSON value: the empty schema, so generated clients accept every value.
    for (schema, field) in [
        ("TaskExecutionBody", "input"),
        ("TaskExecutionBody", "output"),
        ("TaskExecutionBody", "error"),
        ("NewTaskBody", "input"),
        ("NewFlowExecutionBody", "input"),
    ] {
        let property = schemas[schema]["properties"][field]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(
            property.keys().all(|k| k == "description"),
            "{schema}.{field} is constrained: {property:?}"
        );
    }
    let ids: Vec<&str> = body["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .flat_map(|item| item.as_object().into_iter().flat_map(|ops| ops.values()))
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "repeated operation ids: {ids:?}");
    assert!(body["components"]["securitySchemes"]["api_key"].is_object());
}

#[actix_web::test]
async fn the_docs_page_is_swagger_ui_served_from_the_binary_with_no_other_host() {
    let world = World::new();
    let app = test::init_service(build_app(world.services.clone(), &ApiSettings::default())).await;
    let response = test::call_service(&app, TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/docs/")
    );
    for (path, needle) in [
        ("/docs/", "swagger-ui-bundle.js"),
        ("/docs/", "<noscript>"),
        ("/docs/swagger-initializer.js", "/openapi.json"),
        ("/docs/swagger-ui-bundle.js", "SwaggerUIBundle"),
        ("/docs/swagger-ui.css", ".swagger-ui"),
    ] {
        let response = test::call_service(&app, TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let policy = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(policy.starts_with("default-src 'self'"), "{path}: {policy}");
        let text = String::from_utf8_lossy(&test::read_body(response).await).into_owned();
        assert!(text.contains(needle), "{path} lacks {needle}");
        if path == "/docs/swagger-initializer.js" {
            assert!(
                !text.contains("petstore"),
                "the example document is still named"
            );
        }
    }
    let response = test::call_service(
        &app,
        TestRequest::get().uri("/docs/no-such-file.js").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
