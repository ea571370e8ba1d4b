//! Black-box tests of every endpoint, over real HTTP, against real
//! PostgreSQL through the restricted app role.

mod support;

use flowexec_domain::{Actor, Role};
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{Kind, TestApp, TestResult};

fn send(request: RequestBuilder) -> anyhow::Result<(StatusCode, Value, Option<String>)> {
    let response: Response = request.send()?;
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body, request_id))
}

fn problem_without_request_id(mut body: Value) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.remove("request_id");
    }
    body
}

fn create_flow(
    app: &TestApp,
    key: &str,
    body: &Value,
) -> anyhow::Result<(StatusCode, Value, Option<String>)> {
    send(
        app.client
            .post(app.url("/flow-executions"))
            .bearer_auth(key)
            .json(body),
    )
}

const FLOW: fn() -> Value = || {
    json!({
        "flow_name": "nightly-etl",
        "input": {"date": "2026-11-28", "nested": {"list": [1, 2.5, "three", null, true]}},
        "tasks": [
            {"task_name": "extract", "input": {"source": "s3://bucket"}},
            {"task_name": "transform"},
            {"task_name": "load", "input": null}
        ]
    })
};

fn a_write_key_creates_a_flow_execution_whose_tasks_read_back_by_id(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let user = uuid::Uuid::new_v4();
    let tenant = app.tenant(Role::Write, Actor::User(user))?;

    let (status, flow, _) = create_flow(&app, &tenant.key, &FLOW())?;
    assert_eq!(status, StatusCode::CREATED, "{flow}");
    assert_eq!(flow["flow_name"], "nightly-etl");
    assert_eq!(flow["input"], FLOW()["input"]);
    assert_eq!(flow["organization_id"], tenant.organization_id.to_string());
    let tasks = flow["task_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = tasks
        .iter()
        .filter_map(|t| t["task_name"].as_str())
        .collect();
    assert_eq!(names, ["extract", "load", "transform"]);

    for task in &tasks {
        let id = task["id"].as_str().unwrap_or_default();
        let (status, read, _) = send(
            app.client
                .get(app.url(&format!("/task-executions/{id}")))
                .bearer_auth(&tenant.key),
        )?;
        assert_eq!(status, StatusCode::OK, "{read}");
        assert_eq!(&read, task, "GET returns what POST returned");
        assert_eq!(read["status"], "queued");
        assert_eq!(read["execution_index"], 0);
        assert_eq!(read["modified_by"], user.to_string());
        assert_eq!(read["flow_execution_id"], flow["id"]);
        for field in ["output", "error", "started_at", "completed_at"] {
            assert_eq!(read[field], Value::Null, "{field}");
        }
    }
    assert_eq!(tasks[0]["input"], json!({"source": "s3://bucket"}));
    assert_eq!(tasks[1]["input"], Value::Null);

    let flow_id = flow["id"].as_str().unwrap_or_default();
    let (status, read_flow, _) = send(
        app.client
            .get(app.url(&format!("/flow-executions/{flow_id}")))
            .bearer_auth(&tenant.key),
    )?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_flow, flow);
    Ok(())
}

fn every_role_may_read_but_only_admin_and_write_may_create(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let admin = app.tenant(Role::Admin, Actor::System)?;
    let (_, flow, _) = create_flow(&app, &admin.key, &FLOW())?;
    let task_id = flow["task_executions"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    for role in Role::ALL {
        let key = app.key(&admin, role)?;
        let (status, _, _) = send(
            app.client
                .get(app.url(&format!("/task-executions/{task_id}")))
                .bearer_auth(&key),
        )?;
        assert_eq!(status, StatusCode::OK, "{role} cannot read");
        let before = app.count("flow_executions")?;
        let (status, body, _) = create_flow(&app, &key, &FLOW())?;
        if role.can_write() {
            assert_eq!(status, StatusCode::CREATED, "{role}: {body}");
            assert_eq!(app.count("flow_executions")?, before + 1);
        } else {
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("forbidden")),
                "{role}"
            );
            assert_eq!(
                app.count("flow_executions")?,
                before,
                "a refused create wrote something"
            );
        }
    }
    Ok(())
}

fn another_organizations_resource_answers_exactly_like_a_missing_one(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let owner = app.tenant(Role::Write, Actor::System)?;
    let stranger = app.tenant(Role::Admin, Actor::System)?;
    let (_, flow, _) = create_flow(&app, &owner.key, &FLOW())?;
    let flow_id = flow["id"].as_str().unwrap_or_default();
    let task_id = flow["task_executions"][0]["id"]
        .as_str()
        .unwrap_or_default();

    for (foreign, missing) in [
        (
            format!("/task-executions/{task_id}"),
            format!("/task-executions/{}", uuid::Uuid::new_v4()),
        ),
        (
            format!("/flow-executions/{flow_id}"),
            format!("/flow-executions/{}", uuid::Uuid::new_v4()),
        ),
    ] {
        let (foreign_status, foreign_body, _) =
            send(app.client.get(app.url(&foreign)).bearer_auth(&stranger.key))?;
        let (missing_status, missing_body, _) =
            send(app.client.get(app.url(&missing)).bearer_auth(&stranger.key))?;
        assert_eq!(foreign_status, StatusCode::NOT_FOUND);
        assert_eq!(missing_status, StatusCode::NOT_FOUND);
        assert_eq!(
            problem_without_request_id(foreign_body),
            problem_without_request_id(missing_body)
        );
        // The owner still sees it.
        let (status, _, _) = send(app.client.get(app.url(&foreign)).bearer_auth(&owner.key))?;
        assert_eq!(status, StatusCode::OK);
    }
    Ok(())
}

fn every_protected_endpoint_answers_401_without_a_valid_key(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Admin, Actor::System)?;
    let (_, flow, _) = create_flow(&app, &tenant.key, &FLOW())?;
    let flow_id = flow["id"].as_str().unwrap_or_default();
    let task_id = flow["task_executions"][0]["id"]
        .as_str()
        .unwrap_or_default();
    let mut tampered = tenant.key;
    tampered.replace_range(tampered.len() - 4.., "0000");

    for key in [None, Some("fx_not_a_key"), Some(tampered.as_str())] {
        let requests = [
            app.client.post(app.url("/flow-executions")).json(&FLOW()),
            app.client
                .get(app.url(&format!("/flow-executions/{flow_id}"))),
            app.client
                .get(app.url(&format!("/task-executions/{task_id}"))),
        ];
        for request in requests {
            let request = match key {
                Some(k) => request.bearer_auth(k),
                None => request,
            };
            let (status, body, request_id) = send(request)?;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert_eq!(body["code"], "unauthorized");
            assert_eq!(body["request_id"].as_str(), request_id.as_deref());
        }
    }
    assert_eq!(
        app.count("flow_executions")?,
        1,
        "only the first create went through"
    );
    Ok(())
}

fn bad_input_gets_a_clear_4xx_and_changes_nothing(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Write, Actor::System)?;
    let before = (
        app.count("flow_executions")?,
        app.count("task_executions")?,
        app.count("task_execution_events")?,
    );

    let post = || {
        app.client
            .post(app.url("/flow-executions"))
            .bearer_auth(&tenant.key)
    };
    let cases: Vec<(RequestBuilder, StatusCode, &str)> = vec![
        (post().header("content-type", "application/json").body("{\"flow_name\": \"x\","), StatusCode::BAD_REQUEST, "malformed_request"),
        (post().header("content-type", "text/plain").body("{}"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (post().json(&json!({"flow_name": "x", "input": "y".repeat(70_000), "tasks": [{"task_name": "a"}]})), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (post().json(&json!({"flow_name": "has space", "tasks": [{"task_name": "a"}, {"task_name": "a"}]})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"flow_name": "f", "tasks": [{"task_name": "a"}, {"task_name": "a"}]})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"flow_name": "f", "tasks": []})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"flow_name": "f", "tasks": [{"task_name": "a", "input": {"k": "nul\u{0}"}}]})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"flow_name": "f", "tasks": (0..1001).map(|i| json!({"task_name": format!("t{i}")})).collect::<Vec<_>>()})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (app.client.get(app.url("/task-executions/not-a-uuid")).bearer_auth(&tenant.key), StatusCode::BAD_REQUEST, "malformed_request"),
        (app.client.get(app.url("/flow-executions/1234")).bearer_auth(&tenant.key), StatusCode::BAD_REQUEST, "malformed_request"),
    ];
    for (request, expected, code) in cases {
        let (status, body, _) = send(request)?;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected, Some(code)),
            "{body}"
        );
        if code == "validation_failed" {
            assert!(
                body["errors"].as_array().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
        }
    }
    let after = (
        app.count("flow_executions")?,
        app.count("task_executions")?,
        app.count("task_execution_events")?,
    );
    assert_eq!(before, after);
    Ok(())
}

fn operational_endpoints_answer_without_a_key_and_carry_a_request_id(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let (status, body, _) = send(app.client.get(app.url("/healthz")))?;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body, _) = send(app.client.get(app.url("/readyz")))?;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    let (status, body, _) = send(app.client.get(app.url("/openapi.json")))?;
    assert_eq!(status, StatusCode::OK);
    assert!(body["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    let (status, body, _) = send(app.client.get(app.url("/docs")))?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().is_some_and(|html| html.contains("<html")));

    let (_, _, request_id) = send(
        app.client
            .get(app.url("/healthz"))
            .header("X-Request-Id", "trace-123"),
    )?;
    assert_eq!(request_id.as_deref(), Some("trace-123"));
    Ok(())
}

fn numbers_come_back_with_every_digit_and_repeated_keys_are_refused(kind: Kind) -> TestResult {
    let app = TestApp::spawn(kind)?;
    let tenant = app.tenant(Role::Write, Actor::System)?;
    let raw = |text: &str| {
        app.client
            .post(app.url("/flow-executions"))
            .bearer_auth(&tenant.key)
            .header("content-type", "application/json")
            .body(text.to_owned())
    };
    let (status, created, _) = send(raw(
        r#"{"flow_name": "digits", "tasks": [{"task_name": "t", "input":
            {"big": 123456789012345678901234567890, "half": 100000000000000000000.5,
             "scaled": 1.50e1, "tiny": 1e-3, "zero": -0.0}}]}"#,
    ))?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["task_executions"][0]["id"]
        .as_str()
        .unwrap_or_default();
    let text = app
        .client
        .get(app.url(&format!("/task-executions/{id}")))
        .bearer_auth(&tenant.key)
        .send()?
        .text()?;
    assert!(
        text.contains(r#""input":{"big":123456789012345678901234567890,"half":100000000000000000000.5,"scaled":15.0,"tiny":0.001,"zero":0.0}"#),
        "{text}"
    );

    let before = app.count("flow_executions")?;
    let (status, body, _) = send(raw(
        r#"{"flow_name": "f", "tasks": [{"task_name": "t", "input": {"a": 1, "b": 2, "a": 3}}]}"#,
    ))?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("duplicate key \"a\"")),
        "{body}"
    );
    let (status, body, _) = send(raw(
        r#"{"flow_name": "f", "tasks": [{"task_name": "t", "input": {"x": [1, 1e1000]}}]}"#,
    ))?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "tasks[0].input.x[1]", "{body}");
    assert_eq!(app.count("flow_executions")?, before);
    Ok(())
}

on_both_backends!(
    numbers_come_back_with_every_digit_and_repeated_keys_are_refused,
    a_write_key_creates_a_flow_execution_whose_tasks_read_back_by_id,
    every_role_may_read_but_only_admin_and_write_may_create,
    another_organizations_resource_answers_exactly_like_a_missing_one,
    every_protected_endpoint_answers_401_without_a_valid_key,
    bad_input_gets_a_clear_4xx_and_changes_nothing,
    operational_endpoints_answer_without_a_key_and_carry_a_request_id,
);

/// The same requests answer byte for byte the same on both stores, once the
/// generated ids and times are set aside.
#[test]
fn both_stores_return_the_same_bytes_for_the_same_requests() -> TestResult {
    let body = json!({
        "flow_name": "bytes",
        "input": {"z": [1, -0.0, 0.1, 1e300, 18446744073709551615u64, -9223372036854775808i64],
                  "a": "ünïcødé ✓ \"q\" \\ \n \t \u{1F600}", "m": {"nested": [true, false, null, {}, []]}},
        "tasks": [{"task_name": "only", "input": [{"b": 2, "a": 1}, "x", 2.5, -3]}]
    });
    let mut answers = Vec::new();
    for kind in [Kind::Postgres, Kind::Sqlite] {
        let app = TestApp::spawn(kind)?;
        let tenant = app.tenant(Role::Write, Actor::Integration)?;
        let (status, created, _) = create_flow(&app, &tenant.key, &body)?;
        assert_eq!(status, StatusCode::CREATED, "{kind:?}: {created}");
        let task = created["task_executions"][0].clone();
        let get = |path: String| -> anyhow::Result<String> {
            Ok(app
                .client
                .get(app.url(&path))
                .bearer_auth(&tenant.key)
                .send()?
                .text()?)
        };
        let raw = [
            get(format!(
                "/task-executions/{}",
                task["id"].as_str().unwrap_or_default()
            ))?,
            get(format!(
                "/flow-executions/{}",
                created["id"].as_str().unwrap_or_default()
            ))?,
        ]
        .join("\n");
        let mut normalized = raw;
        for value in [
            &task["id"],
            &created["id"],
            &created["organization_id"],
            &created["created_at"],
            &task["created_at"],
        ] {
            if let Some(value) = value.as_str() {
                normalized = normalized.replace(value, "<generated>");
            }
        }
        answers.push(normalized);
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0].contains(r#""input":[{"a":1,"b":2},"x",2.5,-3]"#),
        "{}",
        answers[0]
    );
    Ok(())
}
