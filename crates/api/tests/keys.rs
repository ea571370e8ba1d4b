//! The API key endpoints over the real use cases on SQLite.

mod support;

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use flowexec_api::ApiSettings;
use serde_json::{json, Value};
use support::{assert_problem, bearer, call, json_request, World};

async fn send(
    world: &World,
    request: TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    call(world.services.clone(), &ApiSettings::default(), request).await
}

#[actix_web::test]
async fn an_admin_issues_lists_and_revokes_keys_and_a_revoked_key_is_refused_at_once() {
    let world = World::new();
    let (status, headers, issued) = send(
        &world,
        json_request(
            Method::POST,
            "/api-keys",
            &world.admin_key,
            &json!({"role": "worker", "actor": "service-account"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api-keys/{id}").as_str())
    );
    assert_eq!(
        (issued["role"].clone(), issued["actor"].clone()),
        (json!("worker"), json!("service-account"))
    );
    let key = issued["key"].as_str().unwrap_or_default().to_owned();
    assert!(key.starts_with("fx_"));
    let (status, _, _) = send(
        &world,
        TestRequest::get()
            .uri("/task-executions")
            .insert_header(bearer(&key)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the new key works");

    let (status, _, listed) = send(
        &world,
        TestRequest::get()
            .uri("/api-keys")
            .insert_header(bearer(&world.admin_key)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let keys = listed["api_keys"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        keys.len(),
        5,
        "admin, write, read, worker and the new one: {listed}"
    );
    assert!(keys
        .iter()
        .all(|k| k.get("key").is_none() && k.get("secret_sha256").is_none()));

    let (status, _, revoked) = send(
        &world,
        TestRequest::delete()
            .uri(&format!("/api-keys/{id}"))
            .insert_header(bearer(&world.admin_key)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, headers, body) = send(
        &world,
        TestRequest::get()
            .uri("/task-executions")
            .insert_header(bearer(&key)),
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
async fn the_last_admin_key_stays_and_other_roles_and_organizations_are_refused() {
    let world = World::new();
    let (_, _, listed) = send(
        &world,
        TestRequest::get()
            .uri("/api-keys")
            .insert_header(bearer(&world.admin_key)),
    )
    .await;
    let admin_id = listed["api_keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["role"] == "admin"))
        .and_then(|k| k["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    let (status, headers, body) = send(
        &world,
        TestRequest::delete()
            .uri(&format!("/api-keys/{admin_id}"))
            .insert_header(bearer(&world.admin_key)),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::CONFLICT,
        "last_admin_key",
    );
    for key in [&world.write_key, &world.read_key] {
        for request in [
            TestRequest::get().uri("/api-keys"),
            TestRequest::delete().uri(&format!("/api-keys/{admin_id}")),
        ] {
            let (status, headers, body) = send(&world, request.insert_header(bearer(key))).await;
            assert_problem(status, &headers, &body, StatusCode::FORBIDDEN, "forbidden");
        }
        let (status, headers, body) = send(
            &world,
            json_request(Method::POST, "/api-keys", key, &json!({"role": "admin"})),
        )
        .await;
        assert_problem(status, &headers, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, headers, body) = send(
        &world,
        TestRequest::delete()
            .uri(&format!("/api-keys/{admin_id}"))
            .insert_header(bearer(&world.other_key)),
    )
    .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    for (body, field) in [
        (json!({"role": "root"}), "role"),
        (json!({"role": "read", "actor": "me"}), "actor"),
        (json!({"role": "read", "x": 1}), "x"),
    ] {
        let (status, headers, answer) = send(
            &world,
            json_request(Method::POST, "/api-keys", &world.admin_key, &body),
        )
        .await;
        assert_problem(
            status,
            &headers,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(answer["errors"].to_string().contains(field), "{answer}");
    }
    for request in [
        TestRequest::get().uri("/api-keys"),
        TestRequest::delete().uri(&format!("/api-keys/{admin_id}")),
    ] {
        let (status, headers, body) = send(&world, request).await;
        assert_problem(
            status,
            &headers,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let (status, headers, body) = send(
        &world,
        TestRequest::delete()
            .uri("/api-keys/nope")
            .insert_header(bearer(&world.admin_key)),
    )
    .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
}
