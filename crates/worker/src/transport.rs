//! How a worker talks to flowexec: over HTTP ([`HttpTransport`], the
//! `flowexec-client`) or in-process ([`InProcess`], the service layer on the
//! same store as a server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowexec_client::{Client, Error as ClientError};
use flowexec_domain::{Principal, TaskExecution, TaskExecutionId, TaskName, WorkerId};
use flowexec_service::{
    ClaimRequest as ServiceClaim, Outcome, Report, ServiceError, WorkerUseCases,
};
use flowexec_wire::{
    ClaimBody, CompleteBody, FailBody, HeartbeatBody, ResultBody, ResultStatus, ResultsBody,
    TaskExecutionBody, TaskNameText,
};
use futures_util::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

use crate::TaskError;

/// A claim, as the runtime asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub task_names: Vec<String>,
    pub limit: usize,
    pub lease_seconds: u32,
    pub wait_seconds: u32,
}

/// A claimed task.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: Uuid,
    pub task_name: String,
    pub execution_index: i32,
    pub input: Option<Value>,
}

impl From<TaskExecutionBody> for Claimed {
    fn from(body: TaskExecutionBody) -> Self {
        Self {
            id: body.id,
            task_name: body.task_name,
            execution_index: body.execution_index,
            input: body.input,
        }
    }
}

impl From<TaskExecution> for Claimed {
    fn from(task: TaskExecution) -> Self {
        Self {
            id: task.id.into_uuid(),
            task_name: task.task_name.into_string(),
            execution_index: task.execution_index,
            input: task.input,
        }
    }
}

/// How one run ended, to be reported.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub id: Uuid,
    pub worker_id: String,
    /// The output, or how the run failed.
    pub result: Result<Value, TaskError>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The task is no longer running under this worker.
    #[error("lease lost")]
    LeaseLost,
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// What the runtime needs of flowexec.
pub trait Transport: Send + Sync + 'static {
    /// Up to `request.limit` tasks, waiting up to `request.wait_seconds`
    /// for work when there is none.
    fn claim(&self, request: ClaimRequest) -> BoxFuture<'_, Result<Vec<Claimed>, TransportError>>;
    fn heartbeat(
        &self,
        id: Uuid,
        worker_id: String,
        lease_seconds: u32,
    ) -> BoxFuture<'_, Result<(), TransportError>>;
    /// The result of a run: its output, or how it failed.
    fn report(
        &self,
        id: Uuid,
        worker_id: String,
        result: Result<Value, TaskError>,
    ) -> BoxFuture<'_, Result<(), TransportError>>;
    /// Many results in one call, each answered on its own, in order (an
    /// `Err` for the whole call when it failed as a whole).
    fn report_many(
        &self,
        results: Vec<RunResult>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), TransportError>>, TransportError>>;
}

/// Over HTTP, through `flowexec-client` (which retries the calls safe to
/// repeat).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client,
}

impl HttpTransport {
    /// A transport to the server at `base_url` with a worker `key`.
    pub fn new(base_url: &str, key: &str) -> Result<Self, ClientError> {
        Ok(Self {
            client: Client::new(base_url, key)?,
        })
    }

    pub fn with_client(client: Client) -> Self {
        Self { client }
    }
}

fn from_client(error: ClientError) -> TransportError {
    match error.code() {
        Some("lease_lost") => TransportError::LeaseLost,
        _ => TransportError::Other(error.to_string()),
    }
}

impl Transport for HttpTransport {
    fn claim(&self, request: ClaimRequest) -> BoxFuture<'_, Result<Vec<Claimed>, TransportError>> {
        Box::pin(async move {
            let body = ClaimBody {
                worker_id: request.worker_id,
                task_names: Some(request.task_names.into_iter().map(TaskNameText).collect()),
                limit: Some(request.limit),
                lease_seconds: Some(request.lease_seconds),
                wait_seconds: Some(request.wait_seconds),
            };
            let claimed = self.client.claim(&body).await.map_err(from_client)?;
            Ok(claimed
                .task_executions
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    fn heartbeat(
        &self,
        id: Uuid,
        worker_id: String,
        lease_seconds: u32,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let body = HeartbeatBody {
                worker_id,
                lease_seconds: Some(lease_seconds),
            };
            self.client
                .heartbeat(id, &body)
                .await
                .map_err(from_client)?;
            Ok(())
        })
    }

    fn report(
        &self,
        id: Uuid,
        worker_id: String,
        result: Result<Value, TaskError>,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let answer = match result {
                Ok(output) => {
                    let body = CompleteBody {
                        worker_id,
                        output: Some(output),
                    };
                    self.client.complete(id, &body).await
                }
                Err(failure) => {
                    let body = FailBody {
                        worker_id,
                        error: failure.error,
                        retryable: Some(failure.retryable),
                    };
                    self.client.fail(id, &body).await
                }
            };
            answer.map(|_| ()).map_err(from_client)
        })
    }

    fn report_many(
        &self,
        results: Vec<RunResult>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), TransportError>>, TransportError>> {
        Box::pin(async move {
            let body = ResultsBody {
                results: results.into_iter().map(result_body).collect(),
            };
            let answers = self
                .client
                .report_results(&body)
                .await
                .map_err(from_client)?;
            Ok(answers
                .results
                .into_iter()
                .map(|answer| match answer.problem {
                    None => Ok(()),
                    Some(problem) if problem.code == "lease_lost" => Err(TransportError::LeaseLost),
                    Some(problem) => Err(TransportError::Other(format!(
                        "{} ({}): {}",
                        problem.title, problem.code, problem.detail
                    ))),
                })
                .collect())
        })
    }
}

fn result_body(run: RunResult) -> ResultBody {
    match run.result {
        Ok(output) => ResultBody {
            id: run.id,
            worker_id: run.worker_id,
            status: ResultStatus::Completed,
            output: Some(output),
            error: None,
            retryable: None,
        },
        Err(failure) => ResultBody {
            id: run.id,
            worker_id: run.worker_id,
            status: ResultStatus::Failed,
            output: None,
            error: Some(failure.error),
            retryable: Some(failure.retryable),
        },
    }
}

/// How often an in-process claim waiting for work looks again, and the
/// least it sleeps.
const POLL: Duration = Duration::from_secs(1);
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// In-process: the service layer directly (on the blocking pool), as a
/// worker embedded in the server, or beside it on the same store. A claim
/// that finds nothing looks again every second, or when the next task it
/// could take falls due if sooner, until its wait is over.
#[derive(Clone)]
pub struct InProcess {
    workers: Arc<dyn WorkerUseCases>,
    principal: Principal,
}

impl InProcess {
    /// Calls `workers` as `principal` (an admin or worker key's).
    pub fn new(workers: Arc<dyn WorkerUseCases>, principal: Principal) -> Self {
        Self { workers, principal }
    }

    async fn blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn WorkerUseCases, &Principal) -> Result<R, ServiceError> + Send + 'static,
    ) -> Result<R, TransportError> {
        let (workers, principal) = (self.workers.clone(), self.principal);
        tokio::task::spawn_blocking(move || work(&*workers, &principal))
            .await
            .map_err(|e| TransportError::Other(e.to_string()))?
            .map_err(from_service)
    }
}

fn from_service(error: ServiceError) -> TransportError {
    match error {
        ServiceError::LeaseLost { .. } => TransportError::LeaseLost,
        other => TransportError::Other(other.to_string()),
    }
}

fn worker(text: String) -> Result<WorkerId, TransportError> {
    WorkerId::parse(text).map_err(|e| TransportError::Other(format!("worker_id: {e}")))
}

impl Transport for InProcess {
    fn claim(&self, request: ClaimRequest) -> BoxFuture<'_, Result<Vec<Claimed>, TransportError>> {
        Box::pin(async move {
            let claim = ServiceClaim {
                worker_id: worker(request.worker_id)?,
                task_names: request
                    .task_names
                    .into_iter()
                    .map(TaskName::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| TransportError::Other(format!("task_names: {e}")))?,
                limit: request.limit,
                lease_seconds: request.lease_seconds,
            };
            let deadline = Instant::now() + Duration::from_secs(u64::from(request.wait_seconds));
            loop {
                let claim = claim.clone();
                let answer = self
                    .blocking(move |workers, principal| workers.claim(principal, &claim))
                    .await?;
                let left = deadline.saturating_duration_since(Instant::now());
                if !answer.tasks.is_empty() || left.is_zero() {
                    return Ok(answer.tasks.into_iter().map(Into::into).collect());
                }
                // Work made elsewhere is not announced here: look again
                // every second, or when the next task falls due if sooner.
                let pause = answer
                    .next_due_in
                    .map_or(POLL, |due| due.clamp(MIN_PAUSE, POLL));
                tokio::time::sleep(pause.min(left)).await;
            }
        })
    }

    fn heartbeat(
        &self,
        id: Uuid,
        worker_id: String,
        lease_seconds: u32,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let worker_id = worker(worker_id)?;
            self.blocking(move |workers, principal| {
                workers.heartbeat(
                    principal,
                    TaskExecutionId::from_uuid(id),
                    worker_id,
                    lease_seconds,
                )
            })
            .await
            .map(|_| ())
        })
    }

    fn report(
        &self,
        id: Uuid,
        worker_id: String,
        result: Result<Value, TaskError>,
    ) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let report = service_report(RunResult {
                id,
                worker_id,
                result,
            })?;
            self.blocking(move |workers, principal| workers.report(principal, report))
                .await
                .map(|_| ())
        })
    }

    fn report_many(
        &self,
        results: Vec<RunResult>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), TransportError>>, TransportError>> {
        Box::pin(async move {
            let reports = results
                .into_iter()
                .map(service_report)
                .collect::<Result<Vec<_>, _>>()?;
            let answers = self
                .blocking(move |workers, principal| workers.report_many(principal, reports))
                .await?;
            Ok(answers
                .into_iter()
                .map(|answer| answer.map(|_| ()).map_err(from_service))
                .collect())
        })
    }
}

fn service_report(run: RunResult) -> Result<Report, TransportError> {
    Ok(Report {
        task_execution_id: TaskExecutionId::from_uuid(run.id),
        worker_id: worker(run.worker_id)?,
        outcome: match run.result {
            Ok(output) => Outcome::Completed {
                output: Some(output).filter(|v| !v.is_null()),
            },
            Err(failure) => Outcome::Failed {
                error: Some(failure.error).filter(|v| !v.is_null()),
                retryable: failure.retryable,
            },
        },
    })
}
