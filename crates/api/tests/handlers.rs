//! Handler tests against a fake service: the HTTP contract (status codes,
//! problem bodies, headers) without a database.

use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use chrono::Utc;
use flowexec_api::{build_app, ApiSettings};
use flowexec_domain::{
    Actor, ApiKeyId, FlowExecution, FlowExecutionDetail, FlowExecutionId, NewFlowExecution,
    OrganizationId, Principal, Role, TaskExecution, TaskExecutionId, TaskName, TaskStatus,
};
use flowexec_service::{ExecutionService, ServiceError};
use serde_json::{json, Value};

const WRITE_KEY: &str = "fx_write";
const READ_KEY: &str = "fx_read";

/// Knows two keys, one task execution, and records what it was asked to
/// create. `fail_with` makes every data call fail.
struct FakeService {
    org: OrganizationId,
    task: TaskExecution,
    created: Mutex<Vec<NewFlowExecution>>,
    fail_with: Option<fn() -> ServiceError>,
}

impl FakeService {
    fn new() -> Self {
        let org = OrganizationId::generate();
        let now = Utc::now();
        let task = TaskExecution {
            id: TaskExecutionId::generate(),
            flow_execution_id: FlowExecutionId::generate(),
            organization_id: org,
            task_name: TaskName::parse("extract").unwrap_or_else(|_| unreachable!()),
            execution_index: 2,
            status: TaskStatus::Failed,
            input: Some(json!({"a": [1, "x", null]})),
            output: None,
            error: Some(json!({"message": "boom"})),
            modified_by: Actor::ServiceAccount,
            created_at: now,
            updated_at: now,
            started_at: Some(now),
            completed_at: Some(now),
        };
        Self {
            org,
            task,
            created: Mutex::new(Vec::new()),
            fail_with: None,
        }
    }

    fn failing(fail_with: fn() -> ServiceError) -> Self {
        Self {
            fail_with: Some(fail_with),
            ..Self::new()
        }
    }

    fn check(&self) -> Result<(), ServiceError> {
        self.fail_with.map_or(Ok(()), |f| Err(f()))
    }
}

impl ExecutionService for FakeService {
    fn authenticate(&self, key: &str) -> Result<Principal, ServiceError> {
        let role = match key {
            WRITE_KEY => Role::Write,
            READ_KEY => Role::Read,
            _ => return Err(ServiceError::Unauthorized),
        };
        Ok(Principal {
            key_id: ApiKeyId::generate(),
            organization_id: self.org,
            role,
            actor: Actor::Integration,
        })
    }

    fn create_flow_execution(
        &self,
        principal: &Principal,
        new: NewFlowExecution,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        self.check()?;
        if !principal.role.can_write() {
            return Err(ServiceError::Forbidden {
                required: "admin, write",
            });
        }
        let now = Utc::now();
        let detail = FlowExecutionDetail {
            flow_execution: FlowExecution {
                id: FlowExecutionId::generate(),
                organization_id: self.org,
                flow_name: new.flow_name().clone(),
                input: new.input().cloned(),
                modified_by: principal.actor,
                created_at: now,
                updated_at: now,
            },
            task_executions: vec![],
        };
        self.created
            .lock()
            .map_err(|_| ServiceError::Internal(anyhow::anyhow!("poisoned")))?
            .push(new);
        Ok(detail)
    }

    fn get_flow_execution(
        &self,
        _: &Principal,
        _: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        self.check()?;
        Err(ServiceError::NotFound)
    }

    fn get_task_execution(
        &self,
        _: &Principal,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, ServiceError> {
        self.check()?;
        if id == self.task.id {
            Ok(self.task.clone())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    fn ready(&self) -> Result<(), ServiceError> {
        self.check()
    }
}

async fn call(
    service: Arc<FakeService>,
    settings: &ApiSettings,
    request: TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    let app = test::init_service(build_app(service, settings)).await;
    let response = test::call_service(&app, request.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = test::read_body(response).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn bearer(key: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {key}"))
}

fn assert_problem(
    status: StatusCode,
    headers: &actix_web::http::header::HeaderMap,
    body: &Value,
    expected: StatusCode,
    code: &str,
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected.as_u16());
    assert_eq!(body["type"], format!("urn:flowexec:problem:{code}"));
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    let header_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(!header_id.is_empty());
    assert_eq!(body["request_id"], header_id);
}

#[actix_web::test]
async fn get_task_execution_returns_every_field_of_the_seed() {
    let fake = Arc::new(FakeService::new());
    let id = fake.task.id;
    let (status, headers, body) = call(
        fake.clone(),
        &ApiSettings::default(),
        TestRequest::get()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(READ_KEY)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-request-id"));
    let fields: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
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
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected);
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["status"], "failed");
    assert_eq!(body["execution_index"], 2);
    assert_eq!(body["modified_by"], "service-account");
    assert_eq!(body["input"], json!({"a": [1, "x", null]}));
    assert_eq!(body["output"], Value::Null);
    assert!(body["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
}

#[actix_web::test]
async fn a_missing_wrong_scheme_or_unknown_key_is_a_401() {
    for auth in [
        None,
        Some("Basic Zm9vOmJhcg=="),
        Some("Bearer"),
        Some("Bearer fx_nope"),
    ] {
        let fake = Arc::new(FakeService::new());
        let mut request = TestRequest::get().uri(&format!("/task-executions/{}", fake.task.id));
        if let Some(value) = auth {
            request = request.insert_header(("Authorization", value));
        }
        let (status, headers, body) = call(fake, &ApiSettings::default(), request).await;
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
    for (sent, echoed) in [
        ("client-42.a:b/c", true),
        ("has space", false),
        ("<script>", false),
    ] {
        let (_, headers, body) = call(
            Arc::new(FakeService::new()),
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
    let (status, headers, body) = call(
        Arc::new(FakeService::new()),
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
    let (status, headers, body) = call(
        Arc::new(FakeService::new()),
        &ApiSettings::default(),
        TestRequest::get()
            .uri("/task-executions/123")
            .insert_header(bearer(READ_KEY)),
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
        Arc::new(FakeService::new()),
        &ApiSettings::default(),
        TestRequest::get()
            .uri(&format!("/task-executions/{}", TaskExecutionId::generate()))
            .insert_header(bearer(READ_KEY)),
    )
    .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
}

#[actix_web::test]
async fn create_answers_201_with_a_location_and_passes_the_parsed_command() {
    let fake = Arc::new(FakeService::new());
    let (status, headers, body) = call(
        fake.clone(),
        &ApiSettings::default(),
        TestRequest::post()
            .uri("/flow-executions")
            .insert_header(bearer(WRITE_KEY))
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
    let created = fake.created.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].tasks()[0].input, Some(json!(5)));
}

/// `POST /flow-executions` with `key`.
fn post_as(key: &str) -> TestRequest {
    TestRequest::post()
        .uri("/flow-executions")
        .insert_header(bearer(key))
}

/// `POST /flow-executions` with the write key and `text` as a JSON body.
fn raw_json(text: &str) -> TestRequest {
    post_as(WRITE_KEY)
        .insert_header(("content-type", "application/json"))
        .set_payload(text.to_owned())
}

#[actix_web::test]
async fn create_rejects_bad_bodies_with_the_right_status_and_creates_nothing() {
    let cases: Vec<(TestRequest, StatusCode, &str)> = vec![
        (
            post_as(READ_KEY).set_json(json!({"flow_name": "f", "tasks": [{"task_name": "a"}]})),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            post_as(WRITE_KEY)
                .insert_header(("content-type", "text/plain"))
                .set_payload("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            raw_json("{\"flow_name\": "),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post_as(WRITE_KEY)
                .set_json(json!({"flow_name": "f", "tasks": [{"task_name": "x".repeat(2000)}]})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            // 70 bytes that would be 2,000 once its numbers are written out.
            raw_json(
                r#"{"flow_name": "f", "tasks": [{"task_name": "t", "input": [1e999, 1e999]}]}"#,
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            raw_json(r#"{"flow_name": "f", "flow_name": "g", "tasks": [{"task_name": "t"}]}"#),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post_as(WRITE_KEY).set_json(json!({"flow_name": "", "tasks": "no"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (request, expected, code) in cases {
        let fake = Arc::new(FakeService::new());
        let (status, headers, body) = call(
            fake.clone(),
            &ApiSettings {
                max_body_bytes: 1024,
                ..ApiSettings::default()
            },
            request,
        )
        .await;
        assert_problem(status, &headers, &body, expected, code);
        assert!(
            fake.created.lock().map(|c| c.is_empty()).unwrap_or(false),
            "{code}: something was created"
        );
        if code == "validation_failed" {
            assert_eq!(
                body["errors"],
                json!([
                    {"field": "flow_name", "message": "must not be empty"},
                    {"field": "tasks", "message": "must be an array"},
                ])
            );
        }
    }
}

#[actix_web::test]
async fn internal_errors_are_a_bare_500_and_an_unreachable_store_a_503() {
    let (status, headers, body) = call(
        Arc::new(FakeService::failing(|| {
            ServiceError::Internal(anyhow::anyhow!("secret cause: password=hunter2"))
        })),
        &ApiSettings::default(),
        TestRequest::get()
            .uri(&format!("/task-executions/{}", TaskExecutionId::generate()))
            .insert_header(bearer(READ_KEY)),
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
        Arc::new(FakeService::failing(|| {
            ServiceError::Unavailable(anyhow::anyhow!("refused"))
        })),
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
    let (status, headers, body) = call(
        Arc::new(FakeService::new()),
        &ApiSettings::default(),
        TestRequest::get().uri("/nope"),
    )
    .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, headers, body) = call(
        Arc::new(FakeService::new()),
        &ApiSettings::default(),
        TestRequest::delete().uri(&format!("/task-executions/{}", TaskExecutionId::generate())),
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
        Some("GET, HEAD")
    );
    let fake = Arc::new(FakeService::new());
    let id = fake.task.id;
    let (status, headers, _) = call(
        fake,
        &ApiSettings::default(),
        TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(READ_KEY)),
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
    let (status, _, body) = call(
        Arc::new(FakeService::new()),
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
    let app = test::init_service(build_app(
        Arc::new(FakeService::new()),
        &ApiSettings::default(),
    ))
    .await;
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
