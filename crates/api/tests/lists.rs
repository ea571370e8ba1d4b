//! The list and count endpoints over the real use cases on SQLite: pages
//! and cursors, filters, bad parameters, another organization, no key.

mod support;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use flowexec_api::ApiSettings;
use flowexec_domain::FlowExecutionId;
use serde_json::{json, Value};
use support::{assert_problem, bearer, call, World};

async fn get(
    world: &World,
    uri: &str,
    key: &str,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    call(
        world.services.clone(),
        &ApiSettings::default(),
        TestRequest::get().uri(uri).insert_header(bearer(key)),
    )
    .await
}

fn ids(page: &Value, field: &str) -> Vec<String> {
    page[field]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn task_executions_page_with_cursors_in_both_orders() {
    let world = World::new();
    let flow = world.flow(&["a", "b", "c", "d", "e"]);
    for order in ["newest", "oldest"] {
        let mut seen = Vec::new();
        let mut uri = format!("/task-executions?limit=2&order={order}");
        loop {
            let (status, _, page) = get(&world, &uri, &world.read_key).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            seen.extend(ids(&page, "task_executions"));
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    uri = format!("/task-executions?limit=2&order={order}&cursor={cursor}")
                }
                None => break,
            }
        }
        let mut expected: Vec<String> = flow
            .task_executions
            .iter()
            .map(|t| t.id.to_string())
            .collect();
        // One instant: ordered by id.
        expected.sort();
        if order == "newest" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order}");
    }
}

#[actix_web::test]
async fn filters_counts_and_a_flows_latest_attempts() {
    let world = World::new();
    let flow = world.flow(&["extract", "load"]);
    let other = world.flow(&["extract"]);
    let (status, _, page) = get(
        &world,
        &format!(
            "/task-executions?flow_execution_id={}&task_name=extract",
            flow.flow_execution.id
        ),
        &world.read_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(&page, "task_executions"),
        [flow.task_executions[0].id.to_string()]
    );
    let (_, _, counts) = get(
        &world,
        "/task-executions/counts?group_by=task_name",
        &world.read_key,
    )
    .await;
    assert_eq!(counts, json!({"counts": {"extract": 2, "load": 1}}));
    let (_, _, counts) = get(
        &world,
        &format!(
            "/task-executions/counts?group_by=status&flow_execution_id={}",
            other.flow_execution.id
        ),
        &world.read_key,
    )
    .await;
    assert_eq!(counts, json!({"counts": {"queued": 1}}));
    let (status, _, page) = get(
        &world,
        &format!(
            "/flow-executions/{}/task-executions?order=oldest",
            flow.flow_execution.id
        ),
        &world.read_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["task_executions"].as_array().map(Vec::len), Some(2));
    let (status, _, flows) = get(
        &world,
        "/flow-executions?flow_name=etl&limit=1",
        &world.read_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flows["flow_executions"].as_array().map(Vec::len), Some(1));
    assert!(
        flows["flow_executions"][0].get("task_executions").is_none(),
        "lists show summaries"
    );
    assert!(flows["next_cursor"].is_string());
}

#[actix_web::test]
async fn bad_parameters_and_foreign_cursors_are_400_naming_what_is_wrong() {
    let world = World::new();
    let flow = world.flow(&["a", "b"]);
    for uri in [
        "/task-executions?status=queued,bogus",
        "/task-executions?created_after=yesterday",
        "/task-executions?limit=0",
        "/task-executions?limit=501",
        "/task-executions?order=sideways",
        "/task-executions?attempts=some",
        "/task-executions?nope=1",
        "/task-executions?limit=1&limit=2",
        "/task-executions?cursor=forged.cursor",
        "/task-executions/counts",
        "/task-executions/counts?group_by=color",
        "/task-executions/counts?group_by=status&limit=3",
        "/flow-executions?flow_name=bad%20name",
    ] {
        let (status, headers, body) = get(&world, uri, &world.read_key).await;
        assert_problem(
            status,
            &headers,
            &body,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        );
    }
    let (_, _, page) = get(&world, "/task-executions?limit=1", &world.read_key).await;
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    // The same cursor with other filters, or with another organization's key.
    for (uri, key) in [
        (
            format!("/task-executions?limit=1&order=oldest&cursor={cursor}"),
            &world.read_key,
        ),
        (
            format!("/task-executions?limit=1&cursor={cursor}"),
            &world.other_key,
        ),
    ] {
        let (status, _, body) = get(&world, &uri, key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
    let (status, _, page) = get(
        &world,
        &format!("/task-executions?limit=1&cursor={cursor}"),
        &world.read_key,
    )
    .await;
    assert_eq!(
        (status, page["task_executions"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let _ = flow;
}

#[actix_web::test]
async fn another_organization_sees_none_of_it_and_no_key_is_401() {
    let world = World::new();
    let flow = world.flow(&["a"]);
    let (_, _, page) = get(&world, "/task-executions", &world.other_key).await;
    assert_eq!(page, json!({"task_executions": [], "next_cursor": null}));
    let (_, _, flows) = get(&world, "/flow-executions", &world.other_key).await;
    assert_eq!(flows, json!({"flow_executions": [], "next_cursor": null}));
    let (_, _, counts) = get(
        &world,
        "/task-executions/counts?group_by=status",
        &world.other_key,
    )
    .await;
    assert_eq!(counts, json!({"counts": {}}));
    let foreign = format!(
        "/flow-executions/{}/task-executions",
        flow.flow_execution.id
    );
    let missing = format!(
        "/flow-executions/{}/task-executions",
        FlowExecutionId::generate()
    );
    let (status, headers, mut a) = get(&world, &foreign, &world.other_key).await;
    assert_problem(status, &headers, &a, StatusCode::NOT_FOUND, "not_found");
    let (_, _, mut b) = get(&world, &missing, &world.other_key).await;
    a["request_id"] = Value::Null;
    b["request_id"] = Value::Null;
    assert_eq!(a, b);
    for uri in [
        "/task-executions",
        "/flow-executions",
        "/task-executions/counts?group_by=status",
        foreign.as_str(),
    ] {
        let (status, headers, body) = call(
            world.services.clone(),
            &ApiSettings::default(),
            TestRequest::get().uri(uri),
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
}
