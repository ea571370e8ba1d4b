#![doc = include_str!("../README.md")]

use std::time::Duration;

use flowexec_domain::{Backoff, Jitter, RetryPolicy};
use flowexec_wire::{
    ApiKeyBody, ApiKeyListBody, ChangeStatusBody, ClaimBody, ClaimedBody, CompleteBody,
    CountParams, CountsBody, EventPageBody, EventParams, FailBody, FlowExecutionBody,
    FlowExecutionPageBody, FlowListParams, HealthBody, HeartbeatBody, IssuedApiKeyBody,
    NewApiKeyBody, NewFlowExecutionBody, Problem, ResultsAnswerBody, ResultsBody, RetryBody,
    TaskExecutionBody, TaskExecutionPageBody, TaskListParams,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// What a call answers when it does not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with problem details (4xx, 5xx): see
    /// `problem.code` for the stable reason (`not_found`, `lease_lost`, …).
    #[error("{} {}: {}", .problem.status, .problem.code, .problem.detail)]
    Api { problem: Box<Problem> },
    /// The server could not be reached, or the exchange broke off.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that is not what the API documents (e.g. not JSON).
    #[error("unexpected answer ({status}): {detail}")]
    Unexpected { status: u16, detail: String },
    /// The base URL is not a URL.
    #[error("invalid base URL {0:?}")]
    BaseUrl(String),
}

impl Error {
    /// The problem's stable code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { problem } => Some(&problem.code),
            _ => None,
        }
    }

    /// Whether trying the same call again may succeed: the server could
    /// not be reached or answered 503.
    fn transient(&self) -> bool {
        match self {
            Self::Transport(error) => error.is_connect() || error.is_timeout(),
            Self::Api { problem } => problem.status == StatusCode::SERVICE_UNAVAILABLE.as_u16(),
            _ => false,
        }
    }
}

/// How calls that are safe to repeat are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySettings {
    /// Attempts in all, the first included (1: never retried); the delays
    /// between them grow by the policy's backoff.
    pub policy: RetryPolicy,
}

impl Default for RetrySettings {
    /// Five attempts, 100 ms then doubling up to 2 s, full jitter.
    fn default() -> Self {
        Self {
            policy: RetryPolicy {
                max_attempts: 5,
                backoff: Backoff {
                    initial_ms: 100,
                    factor: 2.0,
                    max_ms: 2_000,
                },
                jitter: Jitter::Full,
            },
        }
    }
}

/// Whether a call may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Safe to repeat: a read, or a change the server answers the same when
    /// repeated.
    Safe,
    /// Sent once: repeating could do it twice.
    Once,
}

/// A client of one flowexec server, with one API key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    retry: RetrySettings,
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:8080`)
    /// calling with `key`, with default retries and a 60 s timeout per
    /// request (above the longest claim wait).
    pub fn new(base_url: &str, key: &str) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Self::with_http(http, base_url, key, RetrySettings::default())
    }

    /// A client over a configured `reqwest::Client`.
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        key: &str,
        retry: RetrySettings,
    ) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BaseUrl(base_url.to_owned()));
        }
        Ok(Self {
            http,
            base,
            key: key.to_owned(),
            retry,
        })
    }

    /// Sends the request `build` makes (again for each attempt when the
    /// call may be repeated) and reads the answer as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        repeat: Repeat,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<T, Error> {
        let mut attempt = 1;
        loop {
            let result = self.once(build()).await;
            match result {
                Err(error)
                    if repeat == Repeat::Safe
                        && error.transient()
                        && self.retry.policy.allows_another(attempt) =>
                {
                    let delay = self.retry.policy.delay(attempt, rand::random::<f64>());
                    tracing::debug!(%error, attempt, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Error> {
        let response = request.bearer_auth(&self.key).send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected {
                status: status.as_u16(),
                detail: e.to_string(),
            });
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(problem) => Err(Error::Api {
                problem: Box::new(problem),
            }),
            Err(_) => Err(Error::Unexpected {
                status: status.as_u16(),
                detail: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    fn get_with<Q: Serialize + ?Sized>(&self, path: &str, query: &Q) -> RequestBuilder {
        self.request(Method::GET, path).query(query)
    }

    fn send_json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> RequestBuilder {
        self.request(method, path).json(body)
    }

    // ---- flow executions ----

    /// `POST /flow-executions` (sent once).
    pub async fn create_flow_execution(
        &self,
        body: &NewFlowExecutionBody,
    ) -> Result<FlowExecutionBody, Error> {
        self.call(Repeat::Once, || {
            self.send_json(Method::POST, "/flow-executions", body)
        })
        .await
    }

    /// `GET /flow-executions/{id}`.
    pub async fn get_flow_execution(&self, id: Uuid) -> Result<FlowExecutionBody, Error> {
        self.call(Repeat::Safe, || self.get(&format!("/flow-executions/{id}")))
            .await
    }

    /// `GET /flow-executions`: one page.
    pub async fn list_flow_executions(
        &self,
        params: &FlowListParams,
    ) -> Result<FlowExecutionPageBody, Error> {
        self.call(Repeat::Safe, || self.get_with("/flow-executions", params))
            .await
    }

    /// `GET /flow-executions/{id}/task-executions`: one page.
    pub async fn list_flow_task_executions(
        &self,
        id: Uuid,
        params: &TaskListParams,
    ) -> Result<TaskExecutionPageBody, Error> {
        self.call(Repeat::Safe, || {
            self.get_with(&format!("/flow-executions/{id}/task-executions"), params)
        })
        .await
    }

    // ---- task executions ----

    /// `GET /task-executions/{id}`.
    pub async fn get_task_execution(&self, id: Uuid) -> Result<TaskExecutionBody, Error> {
        self.call(Repeat::Safe, || self.get(&format!("/task-executions/{id}")))
            .await
    }

    /// `GET /task-executions`: one page.
    pub async fn list_task_executions(
        &self,
        params: &TaskListParams,
    ) -> Result<TaskExecutionPageBody, Error> {
        self.call(Repeat::Safe, || self.get_with("/task-executions", params))
            .await
    }

    /// `GET /task-executions/counts`.
    pub async fn count_task_executions(&self, params: &CountParams) -> Result<CountsBody, Error> {
        self.call(Repeat::Safe, || {
            self.get_with("/task-executions/counts", params)
        })
        .await
    }

    /// `PATCH /task-executions/{id}`, with `If-Match` when given (a repeat
    /// of a change already made answers the task as it is, so it is safe
    /// to send again).
    pub async fn change_status(
        &self,
        id: Uuid,
        body: &ChangeStatusBody,
        if_match: Option<&str>,
    ) -> Result<TaskExecutionBody, Error> {
        self.call(Repeat::Safe, || {
            let request = self.send_json(Method::PATCH, &format!("/task-executions/{id}"), body);
            match if_match {
                Some(tag) => request.header("If-Match", tag),
                None => request,
            }
        })
        .await
    }

    /// `DELETE /task-executions/{id}` (soft delete; repeatable).
    pub async fn delete_task_execution(&self, id: Uuid) -> Result<TaskExecutionBody, Error> {
        self.call(Repeat::Safe, || {
            self.request(Method::DELETE, &format!("/task-executions/{id}"))
        })
        .await
    }

    /// `POST /task-executions/{id}/retries` (sent once).
    pub async fn retry_task_execution(
        &self,
        id: Uuid,
        body: &RetryBody,
    ) -> Result<TaskExecutionBody, Error> {
        self.call(Repeat::Once, || {
            self.send_json(
                Method::POST,
                &format!("/task-executions/{id}/retries"),
                body,
            )
        })
        .await
    }

    /// `GET /task-executions/{id}/events`: one page.
    pub async fn task_execution_events(
        &self,
        id: Uuid,
        params: &EventParams,
    ) -> Result<EventPageBody, Error> {
        self.call(Repeat::Safe, || {
            self.get_with(&format!("/task-executions/{id}/events"), params)
        })
        .await
    }

    // ---- workers ----

    /// `POST /task-executions/claim` (sent once: a repeated claim would
    /// take more tasks, leaving the first ones to their leases).
    pub async fn claim(&self, body: &ClaimBody) -> Result<ClaimedBody, Error> {
        self.call(Repeat::Once, || {
            self.send_json(Method::POST, "/task-executions/claim", body)
        })
        .await
    }

    /// `POST /task-executions/{id}/heartbeat`.
    pub async fn heartbeat(
        &self,
        id: Uuid,
        body: &HeartbeatBody,
    ) -> Result<TaskExecutionBody, Error> {
        self.call(Repeat::Safe, || {
            self.send_json(
                Method::POST,
                &format!("/task-executions/{id}/heartbeat"),
                body,
            )
        })
        .await
    }

    /// `POST /task-executions/{id}/complete` (a repeat answers the same).
    pub async fn complete(
        &self,
        id: Uuid,
        body: &CompleteBody,
    ) -> Result<TaskExecutionBody, Error> {
        self.call(Repeat::Safe, || {
            self.send_json(
                Method::POST,
                &format!("/task-executions/{id}/complete"),
                body,
            )
        })
        .await
    }

    /// `POST /task-executions/{id}/fail` (a repeat answers the same).
    pub async fn fail(&self, id: Uuid, body: &FailBody) -> Result<TaskExecutionBody, Error> {
        self.call(Repeat::Safe, || {
            self.send_json(Method::POST, &format!("/task-executions/{id}/fail"), body)
        })
        .await
    }

    /// `POST /task-executions/results` (each result repeatable).
    pub async fn report_results(&self, body: &ResultsBody) -> Result<ResultsAnswerBody, Error> {
        self.call(Repeat::Safe, || {
            self.send_json(Method::POST, "/task-executions/results", body)
        })
        .await
    }

    // ---- API keys ----

    /// `POST /api-keys` (sent once).
    pub async fn create_api_key(&self, body: &NewApiKeyBody) -> Result<IssuedApiKeyBody, Error> {
        self.call(Repeat::Once, || {
            self.send_json(Method::POST, "/api-keys", body)
        })
        .await
    }

    /// `GET /api-keys`.
    pub async fn list_api_keys(&self) -> Result<ApiKeyListBody, Error> {
        self.call(Repeat::Safe, || self.get("/api-keys")).await
    }

    /// `DELETE /api-keys/{id}`.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<ApiKeyBody, Error> {
        self.call(Repeat::Safe, || {
            self.request(Method::DELETE, &format!("/api-keys/{id}"))
        })
        .await
    }

    // ---- health ----

    /// `GET /healthz`: the process answers.
    pub async fn healthz(&self) -> Result<HealthBody, Error> {
        self.call(Repeat::Safe, || self.get("/healthz")).await
    }

    /// `GET /readyz`: the process and its database answer.
    pub async fn readyz(&self) -> Result<HealthBody, Error> {
        self.call(Repeat::Safe, || self.get("/readyz")).await
    }
}
