//! The lifecycle endpoints over the real use cases on SQLite: status
//! changes (PATCH), soft delete, retries and the event history — success,
//! each refusal with its problem body, entity tags, another organization's
//! key, no key, each role.

mod support;

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use flowexec_api::ApiSettings;
use flowexec_domain::TaskExecutionId;
use serde_json::{json, Value};
use support::{assert_problem, bearer, call, json_request, World};

async fn send(
    world: &World,
    request: TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    call(world.services.clone(), &ApiSettings::default(), request).await
}

fn patch(id: impl std::fmt::Display, key: &str, body: Value) -> TestRequest {
    json_request(Method::PATCH, &format!("/task-executions/{id}"), key, &body)
}

fn etag(headers: &actix_web::http::header::HeaderMap) -> String {
    headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn events(world: &World, id: impl std::fmt::Display, query: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(
        world,
        TestRequest::get()
            .uri(&format!("/task-executions/{id}/events{query}"))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    (status, body)
}

#[actix_web::test]
async fn a_task_is_started_and_completed_each_answer_carrying_its_etag() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    let (status, headers, body) = send(
        &world,
        patch(id, &world.write_key, json!({"status": "running"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(etag(&headers), "\"2\"");
    assert_eq!(body["status"], "running");
    assert!(body["started_at"].is_string());
    let (status, headers, body) = send(
        &world,
        patch(
            id,
            &world.write_key,
            json!({"status": "completed", "output": {"rows": 3}, "reason": "done"}),
        )
        .insert_header(("If-Match", "\"2\"")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(etag(&headers), "\"3\"");
    assert_eq!(body["output"], json!({"rows": 3}));
    let (_, headers, _) = send(
        &world,
        TestRequest::get()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_eq!(etag(&headers), "\"3\"");
    let (_, history) = events(&world, id, "").await;
    let trail: Vec<(Value, Value, Value)> = history["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| (e["from"].clone(), e["to"].clone(), e["reason"].clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        trail,
        [
            (Value::Null, json!("queued"), json!("created")),
            (json!("queued"), json!("running"), Value::Null),
            (json!("running"), json!("completed"), json!("done")),
        ]
    );
    assert_eq!(history["events"][2]["actor"], "integration");
    assert_eq!(history["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn a_repeated_change_is_200_with_nothing_recorded_and_another_payload_is_409() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    send(
        &world,
        patch(id, &world.write_key, json!({"status": "running"})),
    )
    .await;
    let failed = json!({"status": "failed", "error": {"code": "boom"}});
    let (first_status, _, first) = send(&world, patch(id, &world.write_key, failed.clone())).await;
    let (again_status, headers, again) = send(
        &world,
        patch(id, &world.write_key, failed).insert_header(("If-Match", "\"2\"")),
    )
    .await;
    assert_eq!(
        (first_status, again_status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(first, again);
    assert_eq!(etag(&headers), "\"3\"");
    let (status, headers, body) = send(
        &world,
        patch(
            id,
            &world.write_key,
            json!({"status": "failed", "error": "other"}),
        ),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::CONFLICT,
        "invalid_transition",
    );
    assert_eq!(body["current_status"], "failed");
    let (_, history) = events(&world, id, "").await;
    assert_eq!(history["events"].as_array().map(Vec::len), Some(3));
}

#[actix_web::test]
async fn a_transition_the_machine_forbids_is_409_naming_the_current_status_and_what_is_allowed() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    let (status, headers, body) = send(
        &world,
        patch(id, &world.write_key, json!({"status": "completed"})),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::CONFLICT,
        "invalid_transition",
    );
    assert_eq!(body["current_status"], "queued");
    assert_eq!(body["allowed"], json!(["running", "deleted"]));
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("queued")),
        "{body}"
    );
    let (_, history) = events(&world, id, "").await;
    assert_eq!(
        history["events"].as_array().map(Vec::len),
        Some(1),
        "nothing was recorded"
    );
}

#[actix_web::test]
async fn if_match_naming_no_current_version_is_412() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    for (if_match, expected, code) in [
        (
            "\"7\"",
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        ),
        (
            "W/\"1\"",
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        ),
        ("1", StatusCode::PRECONDITION_FAILED, "precondition_failed"),
    ] {
        let (status, headers, body) = send(
            &world,
            patch(id, &world.write_key, json!({"status": "running"}))
                .insert_header(("If-Match", if_match)),
        )
        .await;
        assert_problem(status, &headers, &body, expected, code);
        assert_eq!(body["current_etag"], "\"1\"");
    }
    for if_match in ["\"1\"", "*"] {
        let (status, _, body) = send(
            &world,
            TestRequest::delete()
                .uri(&format!("/task-executions/{id}"))
                .insert_header(bearer(&world.write_key))
                .insert_header(("If-Match", if_match)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{if_match}: {body}");
    }
}

#[actix_web::test]
async fn invalid_bodies_are_refused_listing_every_field_and_change_nothing() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    let cases = [
        (
            json!({"status": "running", "output": 1, "error": 2, "reason": "x".repeat(1001)}),
            vec!["output", "error", "reason"],
        ),
        (json!({"status": "queued"}), vec!["status"]),
        (json!({"status": "bogus"}), vec!["status"]),
        (json!({"status": "running", "extra": true}), vec!["extra"]),
        (json!({}), vec!["status"]),
    ];
    for (body, fields) in cases {
        let (status, headers, answer) =
            send(&world, patch(id, &world.write_key, body.clone())).await;
        assert_problem(
            status,
            &headers,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let listed: Vec<&str> = answer["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        for field in fields {
            assert!(
                listed.iter().any(|l| l.contains(field)),
                "{body}: {listed:?}"
            );
        }
    }
    let (status, headers, body) = send(
        &world,
        TestRequest::patch()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(&world.write_key))
            .insert_header(("Content-Type", "application/json"))
            .set_payload("{\"status\": \"running\", \"status\": \"failed\"}"),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
    let (status, headers, body) = send(
        &world,
        patch("not-a-uuid", &world.write_key, json!({"status": "running"})),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
    let (_, history) = events(&world, id, "").await;
    assert_eq!(history["events"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn a_deleted_task_still_answers_by_id_and_deleting_again_is_200() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    let delete = || {
        TestRequest::delete()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(&world.write_key))
    };
    let (status, headers, body) = send(&world, delete()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].clone(), etag(&headers)),
        (json!("deleted"), "\"2\"".to_owned())
    );
    let (status, _, again) = send(&world, delete()).await;
    assert_eq!((status, &again), (StatusCode::OK, &body));
    let (status, _, read) = send(
        &world,
        TestRequest::get()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_eq!(
        (status, read["status"].clone()),
        (StatusCode::OK, json!("deleted"))
    );
    let (_, history) = events(&world, id, "").await;
    assert_eq!(history["events"].as_array().map(Vec::len), Some(2));
}

#[actix_web::test]
async fn a_retry_creates_the_next_attempt_only_of_the_latest_finished_one() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    let retry = |of: TaskExecutionId, body: Option<Value>| {
        let uri = format!("/task-executions/{of}/retries");
        match body {
            Some(body) => json_request(Method::POST, &uri, &world.write_key, &body),
            None => TestRequest::post()
                .uri(&uri)
                .insert_header(bearer(&world.write_key)),
        }
    };
    let (status, headers, body) = send(&world, retry(id, None)).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::CONFLICT,
        "retry_not_allowed",
    );
    assert_eq!(body["current_status"], "queued");
    send(
        &world,
        patch(id, &world.write_key, json!({"status": "running"})),
    )
    .await;
    send(
        &world,
        patch(id, &world.write_key, json!({"status": "failed"})),
    )
    .await;
    let (status, headers, created) = send(&world, retry(id, None)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(etag(&headers), "\"1\"");
    let location = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(
        location,
        format!(
            "/task-executions/{}",
            created["id"].as_str().unwrap_or_default()
        )
    );
    assert_eq!(
        (
            created["execution_index"].clone(),
            created["status"].clone()
        ),
        (json!(1), json!("queued"))
    );
    assert_eq!(
        created["input"],
        json!({"a": [1, "x", null]}),
        "the input is copied"
    );
    let (status, headers, body) = send(&world, retry(id, None)).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::CONFLICT,
        "retry_not_allowed",
    );
    assert_eq!(body["latest_execution_index"], 1);
    // The new attempt, once finished, retried with another input and reason.
    let second = created["id"].as_str().unwrap_or_default().to_owned();
    send(
        &world,
        patch(&second, &world.write_key, json!({"status": "running"})),
    )
    .await;
    send(
        &world,
        patch(&second, &world.write_key, json!({"status": "completed"})),
    )
    .await;
    let second: TaskExecutionId = second
        .parse()
        .unwrap_or_else(|_| TaskExecutionId::generate());
    let (status, _, third) = send(
        &world,
        retry(
            second,
            Some(json!({"input": [2], "reason": "rerun with new data"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_eq!(
        (third["execution_index"].clone(), third["input"].clone()),
        (json!(2), json!([2]))
    );
    let (_, history) = events(&world, third["id"].as_str().unwrap_or_default(), "").await;
    assert_eq!(history["events"][0]["reason"], "rerun with new data");
    let (status, headers, body) = send(&world, retry(second, Some(json!({"inputs": 1})))).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[actix_web::test]
async fn the_history_pages_with_cursors_and_refuses_bad_parameters() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    for status in ["running", "failed", "stale"] {
        send(
            &world,
            patch(id, &world.write_key, json!({"status": status})),
        )
        .await;
    }
    let (status, first) = events(&world, id, "?limit=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["events"].as_array().map(Vec::len), Some(3));
    let cursor = first["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty());
    let (status, rest) = events(&world, id, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rest["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["events"][0]["to"], "stale");
    assert_eq!(rest["next_cursor"], Value::Null);
    for query in [
        "?limit=0",
        "?limit=501",
        "?limit=x",
        "?cursor=abc",
        "?order=asc",
        "?limit=2&limit=3",
    ] {
        let (status, body) = events(&world, id, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["code"], "malformed_request");
    }
    let other = world.flow(&["u"]).task_executions[0].id;
    let (status, _) = events(&world, other, &format!("?cursor={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a cursor of another list");
}

#[actix_web::test]
async fn another_organizations_key_gets_the_404_of_a_missing_id_and_no_key_a_401() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    let missing = TaskExecutionId::generate();
    let requests = |target: TaskExecutionId, key: Option<&str>| {
        let with = |request: TestRequest| match key {
            Some(key) => request.insert_header(bearer(key)),
            None => request,
        };
        vec![
            with(TestRequest::patch().uri(&format!("/task-executions/{target}")))
                .insert_header(("Content-Type", "application/json"))
                .set_payload(json!({"status": "running"}).to_string()),
            with(TestRequest::delete().uri(&format!("/task-executions/{target}"))),
            with(TestRequest::post().uri(&format!("/task-executions/{target}/retries"))),
            with(TestRequest::get().uri(&format!("/task-executions/{target}/events"))),
        ]
    };
    for (foreign, absent) in requests(id, Some(&world.other_key))
        .into_iter()
        .zip(requests(missing, Some(&world.other_key)))
    {
        let (status, headers, mut a) = send(&world, foreign).await;
        assert_problem(status, &headers, &a, StatusCode::NOT_FOUND, "not_found");
        let (_, _, mut b) = send(&world, absent).await;
        a["request_id"] = Value::Null;
        b["request_id"] = Value::Null;
        assert_eq!(a, b, "a foreign id answers differently from a missing one");
    }
    for request in requests(id, None) {
        let (status, headers, body) = send(&world, request).await;
        assert_problem(
            status,
            &headers,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let (status, _, body) = send(
        &world,
        TestRequest::get()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(&world.read_key)),
    )
    .await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("queued")),
        "a foreign key changed the task"
    );
}

#[actix_web::test]
async fn a_read_key_may_read_the_history_but_change_nothing() {
    let world = World::new();
    let id = world.flow(&["t"]).task_executions[0].id;
    for request in [
        patch(id, &world.read_key, json!({"status": "running"})),
        TestRequest::delete()
            .uri(&format!("/task-executions/{id}"))
            .insert_header(bearer(&world.read_key)),
        TestRequest::post()
            .uri(&format!("/task-executions/{id}/retries"))
            .insert_header(bearer(&world.read_key)),
    ] {
        let (status, headers, body) = send(&world, request).await;
        assert_problem(status, &headers, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, body) = events(&world, id, "").await;
    assert_eq!(
        (status, body["events"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
}
