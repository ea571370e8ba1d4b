//! The API over the real use cases on a real SQLite store (a temporary
//! file per test), and helpers to call it.

// A module of test code, where a panic is how a test fails.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use chrono::{DateTime, Utc};
use flowexec_api::{build_app, ApiServices, ApiSettings, WorkSignal};
use flowexec_domain::{
    Actor, CountBy, FixedClock, FlowExecution, FlowExecutionDetail, FlowExecutionFilter,
    FlowExecutionId, FlowName, NewFlowExecution, NewTask, Order, OrganizationName, Principal,
    RecordedEvent, RetryRequest, Role, RunOptions, TaskExecution, TaskExecutionFilter,
    TaskExecutionId, TaskName,
};
use flowexec_persistence::SqliteStore;
use flowexec_service::{
    Admin, ApiKeys, Authenticate, ChangeRequest, Changed, ExecutionUseCases, Executions, Flows,
    KeyAuthenticator, KeyCacheSettings, NewWork, Page, PageRequest, Readiness, ServiceError,
    StoreReadiness, WorkerSettings, Workers,
};
use flowexec_testkit::TestSqlite;
use serde_json::{json, Value};

/// The time every change is made at: fixed, so that answers are the same
/// bytes on every run.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap()
}

/// The use cases over one SQLite file, with a write key and a read key of
/// one organization.
pub struct World {
    pub db: TestSqlite,
    pub services: ApiServices,
    pub write_key: String,
    pub read_key: String,
    /// The organization's first key (role admin).
    pub admin_key: String,
    /// A worker key of the organization.
    pub worker_key: String,
    /// An admin key of another organization.
    pub other_key: String,
    pub store: SqliteStore,
}

impl World {
    pub fn new() -> Self {
        let db = TestSqlite::new().unwrap();
        let store = db.open(4).unwrap();
        let admin = Admin::with_clock(store.clone(), FixedClock(now()));
        let org = admin
            .create_organization(&OrganizationName::parse("acme").unwrap())
            .unwrap();
        let key = |role| {
            admin
                .create_api_key(org.organization.id, role, Actor::Integration)
                .unwrap()
                .plaintext
        };
        let (write_key, read_key) = (key(Role::Write), key(Role::Read));
        let worker_key = key(Role::Worker);
        let admin_key = org.key.plaintext.clone();
        let other_key = admin
            .create_organization(&OrganizationName::parse("other").unwrap())
            .unwrap()
            .key
            .plaintext;
        Self {
            services: {
                let auth: Arc<dyn Authenticate> = Arc::new(KeyAuthenticator::new(
                    store.clone(),
                    &KeyCacheSettings::default(),
                ));
                // As the server wires them: tasks queued by a report or a
                // status change wake the waiting claims.
                let work = WorkSignal::complete();
                let new_work: NewWork = {
                    let work = work.clone();
                    Arc::new(move || work.notify())
                };
                ApiServices {
                    executions: Arc::new(
                        Executions::with_clock(store.clone(), FixedClock(now()))
                            .announcing(new_work.clone()),
                    ),
                    flows: Arc::new(Flows::with_clock(store.clone(), FixedClock(now()))),
                    keys: Arc::new(ApiKeys::with_clock(
                        store.clone(),
                        FixedClock(now()),
                        auth.clone(),
                    )),
                    readiness: Arc::new(StoreReadiness(store.clone())),
                    workers: Arc::new(
                        Workers::with_clock(
                            store.clone(),
                            FixedClock(now()),
                            WorkerSettings::default(),
                        )
                        .announcing(new_work),
                    ),
                    work,
                    auth,
                }
            },
            db,
            write_key,
            read_key,
            admin_key,
            worker_key,
            other_key,
            store,
        }
    }

    /// A flow execution created through the use cases.
    pub fn flow(&self, tasks: &[&str]) -> FlowExecutionDetail {
        let principal = Authenticate::authenticate(
            &KeyAuthenticator::new(self.store.clone(), &KeyCacheSettings::default()),
            &self.write_key,
        )
        .unwrap();
        let tasks = tasks
            .iter()
            .map(|t| NewTask {
                task_name: TaskName::parse(*t).unwrap(),
                input: Some(json!({"a": [1, "x", null]})),
                run: RunOptions::default(),
            })
            .collect();
        let new = NewFlowExecution::new(FlowName::parse("etl").unwrap(), None, tasks).unwrap();
        self.services
            .executions
            .create_flow_execution(&principal, new)
            .unwrap()
    }

    /// Rows in a table.
    pub fn count(&self, table: &str) -> i64 {
        self.db.count(table).unwrap()
    }
}

pub async fn call(
    services: ApiServices,
    settings: &ApiSettings,
    request: TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    let app = test::init_service(build_app(services, settings)).await;
    let response = test::call_service(&app, request.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = test::read_body(response).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

pub fn bearer(key: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {key}"))
}

pub fn assert_problem(
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

/// Use cases that fail every call with one error: the faults no real store
/// can be made to produce on demand.
pub struct Failing(pub fn() -> ServiceError);

impl ExecutionUseCases for Failing {
    fn create_flow_execution(
        &self,
        _: &Principal,
        _: NewFlowExecution,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        Err((self.0)())
    }

    fn get_flow_execution(
        &self,
        _: &Principal,
        _: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        Err((self.0)())
    }

    fn start_flow(
        &self,
        _: &Principal,
        _: flowexec_domain::StartFlow,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        Err((self.0)())
    }

    fn cancel_flow(
        &self,
        _: &Principal,
        _: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        Err((self.0)())
    }

    fn rerun(
        &self,
        _: &Principal,
        _: FlowExecutionId,
        _: TaskName,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        Err((self.0)())
    }

    fn flow_graph(
        &self,
        _: &Principal,
        _: FlowExecutionId,
    ) -> Result<flowexec_domain::FlowGraph, ServiceError> {
        Err((self.0)())
    }

    fn get_task_execution(
        &self,
        _: &Principal,
        _: TaskExecutionId,
    ) -> Result<TaskExecution, ServiceError> {
        Err((self.0)())
    }

    fn change_status(
        &self,
        _: &Principal,
        _: TaskExecutionId,
        _: ChangeRequest,
    ) -> Result<Changed, ServiceError> {
        Err((self.0)())
    }

    fn retry(
        &self,
        _: &Principal,
        _: TaskExecutionId,
        _: RetryRequest,
    ) -> Result<TaskExecution, ServiceError> {
        Err((self.0)())
    }

    fn task_execution_events(
        &self,
        _: &Principal,
        _: TaskExecutionId,
        _: PageRequest,
    ) -> Result<Page<RecordedEvent>, ServiceError> {
        Err((self.0)())
    }

    fn list_task_executions(
        &self,
        _: &Principal,
        _: TaskExecutionFilter,
        _: Order,
        _: PageRequest,
    ) -> Result<Page<TaskExecution>, ServiceError> {
        Err((self.0)())
    }

    fn list_flow_task_executions(
        &self,
        _: &Principal,
        _: FlowExecutionId,
        _: TaskExecutionFilter,
        _: Order,
        _: PageRequest,
    ) -> Result<Page<TaskExecution>, ServiceError> {
        Err((self.0)())
    }

    fn list_flow_executions(
        &self,
        _: &Principal,
        _: FlowExecutionFilter,
        _: Order,
        _: PageRequest,
    ) -> Result<Page<FlowExecution>, ServiceError> {
        Err((self.0)())
    }

    fn count_task_executions(
        &self,
        _: &Principal,
        _: TaskExecutionFilter,
        _: CountBy,
    ) -> Result<Vec<(String, i64)>, ServiceError> {
        Err((self.0)())
    }
}

impl Readiness for Failing {
    fn ready(&self) -> Result<(), ServiceError> {
        Err((self.0)())
    }
}

/// A request with a JSON body.
pub fn json_request(
    method: actix_web::http::Method,
    uri: &str,
    key: &str,
    body: &Value,
) -> TestRequest {
    TestRequest::default()
        .method(method)
        .uri(uri)
        .insert_header(bearer(key))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

/// The principal of a key of the world.
pub fn principal(world: &World, key: &str) -> Principal {
    world.services.auth.authenticate(key).unwrap()
}
