//! The worker protocol: claim queued tasks (optionally waiting for work),
//! extend a lease, report results one by one or in batches.

use std::time::{Duration, Instant};

use actix_web::http::header::ETAG;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use flowexec_domain::{TaskExecution, TaskExecutionId};
use flowexec_service::{
    require_worker, Authenticate, ClaimRequest, Outcome, Report, WorkerUseCases,
};
use flowexec_wire::{
    ClaimBody, ClaimedBody, CompleteBody, FailBody, HeartbeatBody, ReportCommand, ResultAnswerBody,
    ResultsAnswerBody, ResultsBody, TaskExecutionBody,
};

use super::parse_id;
use crate::auth::{authenticate, BearerKey};
use crate::error::{ApiError, Problem};
use crate::etag::etag;
use crate::{blocking, json_body, request_schema, ApiSettings, WorkSignal};

/// The shortest sleep of a waiting claim: a task falling due this instant
/// is looked for again after this, not in a tight loop.
const MIN_PAUSE: Duration = Duration::from_millis(10);

fn answer(task: TaskExecution) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((ETAG, etag(task.version)))
        .json(TaskExecutionBody::from(task))
}

fn report(command: ReportCommand) -> Report {
    Report {
        task_execution_id: command.id,
        worker_id: command.worker_id,
        outcome: match command.outcome {
            Ok(output) => Outcome::Completed { output },
            Err((error, retryable)) => Outcome::Failed { error, retryable },
        },
    }
}

/// Claim queued tasks.
///
/// Takes up to `limit` queued tasks of the key's organization that are due
/// (`not_before` passed), of the names asked for, the highest `priority`
/// first, then the oldest; each is now `running` under the worker's lease
/// (`lease_expires_at`), with an event. Concurrent claims never take a task
/// twice. With `wait_seconds`, a claim that finds nothing waits for work
/// until the time is up, then answers an empty list; a server shutting
/// down answers waiting claims at once.
#[utoipa::path(
    post,
    path = "/task-executions/claim",
    tag = "workers",
    operation_id = "claimTaskExecutions",
    request_body = ClaimBody,
    responses(
        (status = 200, description = "The tasks claimed (none: nothing was claimable in time)", body = ClaimedBody),
        (status = 400, description = "The body is not JSON or names a key twice (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or worker (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[allow(clippy::too_many_arguments)] // one parameter per actix extractor
pub(crate) async fn claim(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    workers: web::Data<dyn WorkerUseCases>,
    signal: web::Data<WorkSignal>,
    settings: web::Data<ApiSettings>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_worker(&principal)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let command = request_schema::command(body, ClaimBody::into_command)?;
    let request = ClaimRequest {
        worker_id: command.worker_id,
        task_names: command.task_names,
        limit: command.limit,
        lease_seconds: command.lease_seconds,
    };
    let deadline = Instant::now() + Duration::from_secs(u64::from(command.wait_seconds));
    let workers = workers.into_inner();
    loop {
        // Registered before the claim, so that work made while it runs
        // wakes the wait that follows.
        let woken = signal.notified();
        let (workers, request) = (workers.clone(), request.clone());
        let answer = blocking::run(move || workers.claim(&principal, &request)).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if !answer.tasks.is_empty() || left.is_zero() || settings.shutdown.is_triggered() {
            return Ok(HttpResponse::Ok().json(ClaimedBody {
                task_executions: answer.tasks.into_iter().map(Into::into).collect(),
            }));
        }
        // Nothing to take: look again when woken, when the next task falls
        // due, and every claim_poll unless every source of work wakes us
        // (then every claim_safety_poll).
        let poll = if signal.is_complete() {
            settings.claim_safety_poll
        } else {
            settings.claim_poll
        };
        let pause = answer
            .next_due_in
            .map_or(poll, |due| due.clamp(MIN_PAUSE, poll));
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(left.min(pause)) => {}
            () = settings.shutdown.triggered() => {}
        }
    }
}

/// Extend the lease of a claimed task.
///
/// The worker still works on the task: its lease now lapses
/// `lease_seconds` from now. Records no event and keeps the `ETag`.
#[utoipa::path(
    post,
    path = "/task-executions/{id}/heartbeat",
    tag = "workers",
    operation_id = "heartbeatTaskExecution",
    params(("id" = Uuid, Path, description = "The claimed task execution")),
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "The task execution, its lease extended", body = TaskExecutionBody,
            headers(("ETag" = String, description = "The row's version"))),
        (status = 400, description = "The id is not a UUID, or the body is not JSON (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or worker (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is no longer running under this worker: stop working on it (`lease_lost`, with `current_status`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn heartbeat(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    workers: web::Data<dyn WorkerUseCases>,
    settings: web::Data<ApiSettings>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_worker(&principal)?;
    let id = parse_id::<TaskExecutionId>(&id)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let (worker_id, lease_seconds) = request_schema::command(body, HeartbeatBody::into_command)?;
    let workers = workers.into_inner();
    let task =
        blocking::run(move || workers.heartbeat(&principal, id, worker_id, lease_seconds)).await?;
    Ok(answer(task))
}

/// What a single report reads from its request: the same for `complete`
/// and `fail`.
type ReportRequest = (
    HttpRequest,
    BearerKey,
    web::Data<dyn Authenticate>,
    web::Data<dyn WorkerUseCases>,
    web::Data<ApiSettings>,
    web::Path<String>,
    web::Payload,
);

/// Report one result: `complete` or `fail`, its body read as `B`.
async fn report_one<B>(
    (req, key, auth, workers, settings, id, payload): ReportRequest,
    convert: fn(B, TaskExecutionId) -> Result<ReportCommand, Vec<flowexec_wire::FieldError>>,
) -> Result<HttpResponse, ApiError>
where
    B: serde::de::DeserializeOwned + utoipa::ToSchema,
{
    let principal = authenticate(auth.into_inner(), key).await?;
    require_worker(&principal)?;
    let id = parse_id::<TaskExecutionId>(&id)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let command = request_schema::command(body, |body: B| convert(body, id))?;
    let workers = workers.into_inner();
    // A report that queues tasks (a retry, or what a completion made
    // ready) wakes the waiting claims itself (`Workers::announcing`).
    let task = blocking::run(move || workers.report(&principal, report(command))).await?;
    Ok(answer(task))
}

/// Report a task completed.
///
/// Moves the task from running to completed with its `output`, if the
/// worker still holds it; its lease ends. Repeating the same report (a
/// retry after a lost answer) answers 200 with the task as it is and
/// records nothing.
#[utoipa::path(
    post,
    path = "/task-executions/{id}/complete",
    tag = "workers",
    operation_id = "completeTaskExecution",
    params(("id" = Uuid, Path, description = "The claimed task execution")),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "The task execution, completed", body = TaskExecutionBody,
            headers(("ETag" = String, description = "The row's version"))),
        (status = 400, description = "The id is not a UUID, or the body is not JSON (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or worker (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is no longer running under this worker (`lease_lost`, with `current_status`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn complete(request: ReportRequest) -> Result<HttpResponse, ApiError> {
    report_one(request, CompleteBody::into_command).await
}

/// Report a task failed.
///
/// Moves the task from running to failed with its `error`, if the worker
/// still holds it; its lease ends. Unless `retryable` is false, and while
/// the task's retry policy allows another attempt, the next attempt is
/// queued in the same transaction, claimable once its backoff has passed.
/// Repeating the same report answers 200 and records nothing.
#[utoipa::path(
    post,
    path = "/task-executions/{id}/fail",
    tag = "workers",
    operation_id = "failTaskExecution",
    params(("id" = Uuid, Path, description = "The claimed task execution")),
    request_body = FailBody,
    responses(
        (status = 200, description = "The task execution, failed", body = TaskExecutionBody,
            headers(("ETag" = String, description = "The row's version"))),
        (status = 400, description = "The id is not a UUID, or the body is not JSON (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or worker (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is no longer running under this worker (`lease_lost`, with `current_status`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn fail(request: ReportRequest) -> Result<HttpResponse, ApiError> {
    report_one(request, FailBody::into_command).await
}

/// Report many results at once.
///
/// Up to 500 results in one transaction, each answered on its own as the
/// single call would have answered it (200 with the task execution, or 404
/// or 409 with the problem), in the order given: a result refused leaves
/// the others be.
#[utoipa::path(
    post,
    path = "/task-executions/results",
    tag = "workers",
    operation_id = "reportTaskExecutionResults",
    request_body = ResultsBody,
    responses(
        (status = 200, description = "One answer per result", body = ResultsAnswerBody),
        (status = 400, description = "The body is not JSON or names a key twice (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or worker (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn results(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    workers: web::Data<dyn WorkerUseCases>,
    settings: web::Data<ApiSettings>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_worker(&principal)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let commands = request_schema::command(body, ResultsBody::into_command)?;
    let ids: Vec<TaskExecutionId> = commands.iter().map(|c| c.id).collect();
    let reports = commands.into_iter().map(report).collect();
    let workers = workers.into_inner();
    let answers = blocking::run(move || workers.report_many(&principal, reports)).await?;
    let results = ids
        .into_iter()
        .zip(answers)
        .map(|(id, answer)| match answer {
            Ok(task) => ResultAnswerBody {
                id: id.into_uuid(),
                status: StatusCode::OK.as_u16(),
                task_execution: Some(task.into()),
                problem: None,
            },
            Err(error) => {
                let error = ApiError::from(error);
                ResultAnswerBody {
                    id: id.into_uuid(),
                    status: error.status_code().as_u16(),
                    task_execution: None,
                    problem: Some(error.problem()),
                }
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(ResultsAnswerBody { results }))
}
