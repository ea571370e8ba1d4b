use actix_web::http::header::{ETAG, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use flowexec_domain::Attempts;
use flowexec_domain::{TaskExecution, TaskExecutionId};
use flowexec_service::{require_write, Authenticate, ChangeRequest, ExecutionUseCases};
use flowexec_wire::{
    ChangeStatusBody, CountParams, CountsBody, EventPageBody, EventParams, RetryBody,
    TaskExecutionBody, TaskExecutionPageBody, TaskListParams,
};

use super::{page, parse_id, query};
use crate::auth::{as_caller, authenticate, BearerKey};
use crate::error::{ApiError, Problem};
use crate::etag::{etag, if_match};
use crate::{blocking, json_body, request_schema, ApiSettings, WorkSignal};

/// One task execution as the answer, with its `ETag`.
fn answer(status: StatusCode, task: TaskExecution) -> HttpResponse {
    let tag = etag(task.version);
    HttpResponse::build(status)
        .insert_header((ETAG, tag))
        .json(TaskExecutionBody::from(task))
}

/// Retrieve a specific task execution.
///
/// Task executions are scoped to the key's organization: another
/// organization's task execution answers exactly as a missing one (404).
/// The `ETag` is the row's version, for `If-Match` on changes.
#[utoipa::path(
    get,
    path = "/task-executions/{id}",
    tag = "task executions",
    operation_id = "getTaskExecution",
    params(("id" = Uuid, Path, description = "Unique identifier of the task execution, assigned at creation")),
    responses(
        (status = 200, description = "The task execution", body = TaskExecutionBody,
            headers(("ETag" = String, description = "The row's version, e.g. \"3\""))),
        (status = 400, description = "The id is not a UUID (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id::<TaskExecutionId>(&id);
    let executions = executions.into_inner();
    let task = as_caller(auth.into_inner(), key, move |principal| {
        Ok(executions.get_task_execution(principal, id?)?)
    })
    .await?;
    Ok(answer(StatusCode::OK, task))
}

/// Change the status of a task execution.
///
/// One compare-and-set with its event (actor from the key, the reason).
/// Repeating a change that already happened, with the same output or error
/// and reason, answers 200 with the task execution as it is and records
/// nothing. With `If-Match`, the change applies only to that version.
#[utoipa::path(
    patch,
    path = "/task-executions/{id}",
    tag = "task executions",
    operation_id = "changeTaskExecutionStatus",
    params(
        ("id" = Uuid, Path, description = "The task execution's id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the task execution's ETag is one of these (or `*`)"),
    ),
    request_body = ChangeStatusBody,
    responses(
        (status = 200, description = "The task execution after the change (or as it is, for a repeat)", body = TaskExecutionBody,
            headers(("ETag" = String, description = "The row's version after the change"))),
        (status = 400, description = "The id is not a UUID, or the body is not JSON or names a key twice (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The status machine does not allow the change from the current status, or the same status was reached with another payload (`invalid_transition`, with `current_status` and `allowed`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names no current version: another, a weak or a malformed tag (`precondition_failed`, with `current_etag`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn change_status(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    settings: web::Data<ApiSettings>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_write(&principal)?;
    let id = parse_id::<TaskExecutionId>(&id)?;
    let if_match = if_match(req.headers());
    let body = json_body::read(&req, payload, &settings).await?;
    let (transition, reason) = request_schema::command(body, ChangeStatusBody::into_command)?;
    let request = ChangeRequest {
        transition,
        reason,
        if_match,
    };
    let executions = executions.into_inner();
    let changed = blocking::run(move || executions.change_status(&principal, id, request)).await?;
    // A completion that made tasks ready wakes the waiting claims itself
    // (`Executions::announcing`).
    Ok(answer(StatusCode::OK, changed.task_execution))
}

/// Delete a task execution (soft).
///
/// The transition to `deleted`, allowed from every status but `deleted`:
/// the task execution still answers `GET` by id, with status `deleted`, and
/// lists hide it unless asked for `status=deleted`. Deleting again answers
/// 200 as it is.
#[utoipa::path(
    delete,
    path = "/task-executions/{id}",
    tag = "task executions",
    operation_id = "deleteTaskExecution",
    params(
        ("id" = Uuid, Path, description = "The task execution's id"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the task execution's ETag is one of these (or `*`)"),
    ),
    responses(
        (status = 200, description = "The deleted task execution", body = TaskExecutionBody,
            headers(("ETag" = String, description = "The row's version after the change"))),
        (status = 400, description = "The id is not a UUID (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names no current version: another, a weak or a malformed tag (`precondition_failed`, with `current_etag`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn delete(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id::<TaskExecutionId>(&id);
    let if_match = if_match(req.headers());
    let executions = executions.into_inner();
    let changed = as_caller(auth.into_inner(), key, move |principal| {
        require_write(principal)?;
        let request = ChangeRequest {
            transition: flowexec_domain::Transition::Delete,
            reason: None,
            if_match,
        };
        Ok(executions.change_status(principal, id?, request)?)
    })
    .await?;
    Ok(answer(StatusCode::OK, changed.task_execution))
}

/// Retry a task execution: create its next attempt.
///
/// Allowed only for the latest attempt of its task, when it is completed,
/// failed or stale. The new attempt has the next `execution_index`, status
/// `queued`, and the retried attempt's input unless another is given. Of
/// concurrent retries of one attempt, exactly one succeeds.
#[utoipa::path(
    post,
    path = "/task-executions/{id}/retries",
    tag = "task executions",
    operation_id = "retryTaskExecution",
    params(
        ("id" = Uuid, Path, description = "The attempt to retry"),
        ("If-Match" = Option<String>, Header, description = "Retry only if the attempt's ETag is one of these (or `*`)"),
    ),
    request_body(content = Option<RetryBody>, description = "Optional"),
    responses(
        (status = 201, description = "The new attempt", body = TaskExecutionBody,
            headers(
                ("Location" = String, description = "Path of the new attempt"),
                ("ETag" = String, description = "The new attempt's version"),
            )),
        (status = 400, description = "The id is not a UUID, or the body is not JSON or names a key twice (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The attempt is queued, running or deleted (`retry_not_allowed`, with `current_status`), or a newer attempt exists (`retry_not_allowed`, with `latest_execution_index`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names no current version of the attempt (`precondition_failed`, with `current_etag`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[allow(clippy::too_many_arguments)] // one parameter per actix extractor
pub(crate) async fn retry(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    signal: web::Data<WorkSignal>,
    settings: web::Data<ApiSettings>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_write(&principal)?;
    let id = parse_id::<TaskExecutionId>(&id)?;
    let if_match = if_match(req.headers());
    // No body, or `null`: the defaults.
    let body = json_body::read_optional(&req, payload, &settings)
        .await?
        .filter(|body| !body.is_null())
        .unwrap_or_else(|| serde_json::json!({}));
    let mut request = request_schema::command(body, RetryBody::into_command)?;
    request.if_match = if_match;
    let executions = executions.into_inner();
    let created = blocking::run(move || executions.retry(&principal, id, request)).await?;
    signal.notify();
    let location = format!("/task-executions/{}", created.id);
    let mut response = answer(StatusCode::CREATED, created);
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// The status history of a task execution.
///
/// Every status change, oldest first, the creation included: from, to,
/// actor, reason and time. Paginated: pass `next_cursor` as `cursor`.
#[utoipa::path(
    get,
    path = "/task-executions/{id}/events",
    tag = "task executions",
    operation_id = "listTaskExecutionEvents",
    params(
        ("id" = Uuid, Path, description = "The task execution's id"),
        EventParams,
    ),
    responses(
        (status = 200, description = "A page of events", body = EventPageBody),
        (status = 400, description = "The id is not a UUID, a limit out of range, an unknown parameter, or a cursor not issued for this list (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn events(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    id: web::Path<String>,
) -> Result<web::Json<EventPageBody>, ApiError> {
    let id = parse_id::<TaskExecutionId>(&id);
    let params = query(&req, EventParams::into_request);
    let executions = executions.into_inner();
    let page = as_caller(auth.into_inner(), key, move |principal| {
        let (limit, cursor) = params?;
        Ok(executions.task_execution_events(principal, id?, page(limit, cursor))?)
    })
    .await?;
    Ok(web::Json(EventPageBody {
        events: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// List task executions.
///
/// The key's organization's task executions, filtered, newest or oldest
/// first, in pages (keyset pagination: pass `next_cursor` as `cursor` with
/// the same filters and order). Deleted ones are listed only with
/// `status=deleted`.
#[utoipa::path(
    get,
    path = "/task-executions",
    tag = "task executions",
    operation_id = "listTaskExecutions",
    params(TaskListParams),
    responses(
        (status = 200, description = "A page of task executions", body = TaskExecutionPageBody),
        (status = 400, description = "A bad or unknown parameter, a limit out of range, or a cursor not issued for this list (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
) -> Result<web::Json<TaskExecutionPageBody>, ApiError> {
    let request = query(&req, |p: TaskListParams| p.into_request(Attempts::All));
    let executions = executions.into_inner();
    let found = as_caller(auth.into_inner(), key, move |principal| {
        let request = request?;
        Ok(executions.list_task_executions(
            principal,
            request.filter,
            request.order,
            page(request.limit, request.cursor),
        )?)
    })
    .await?;
    Ok(web::Json(super::task_page(found)))
}

/// Count task executions.
///
/// How many of the key's organization's task executions the filters select
/// (the same as the list's), by status or by task name.
#[utoipa::path(
    get,
    path = "/task-executions/counts",
    tag = "task executions",
    operation_id = "countTaskExecutions",
    params(CountParams),
    responses(
        (status = 200, description = "The counts; groups with none are absent", body = CountsBody),
        (status = 400, description = "`group_by` missing or unknown, or a bad or unknown parameter (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn counts(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
) -> Result<web::Json<CountsBody>, ApiError> {
    let request = query(&req, CountParams::into_request);
    let executions = executions.into_inner();
    let counts = as_caller(auth.into_inner(), key, move |principal| {
        let (filter, by) = request?;
        Ok(executions.count_task_executions(principal, filter, by)?)
    })
    .await?;
    Ok(web::Json(CountsBody {
        counts: counts.into_iter().collect(),
    }))
}
