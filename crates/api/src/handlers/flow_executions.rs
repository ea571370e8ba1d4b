use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use flowexec_domain::{Attempts, FlowExecutionId};
use flowexec_service::{require_write, Authenticate, ExecutionUseCases};
use flowexec_wire::{
    FlowExecutionBody, FlowExecutionPageBody, FlowListParams, NewFlowExecutionBody,
    TaskExecutionPageBody, TaskListParams,
};

use super::{page, parse_id, query};
use crate::auth::{as_caller, authenticate, BearerKey};
use crate::error::{ApiError, Problem};
use crate::{blocking, json_body, request_schema, ApiSettings, WorkSignal};

/// Create a flow execution and its task executions.
///
/// Creates the flow execution and one `queued` task execution per task
/// (`execution_index` 0, `modified_by` from the key), all in one transaction.
#[utoipa::path(
    post,
    path = "/flow-executions",
    tag = "flow executions",
    operation_id = "createFlowExecution",
    request_body = NewFlowExecutionBody,
    responses(
        (status = 201, description = "Created", body = FlowExecutionBody,
            headers(("Location" = String, description = "Path of the new flow execution"))),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    signal: web::Data<WorkSignal>,
    settings: web::Data<ApiSettings>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_write(&principal)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let new = request_schema::command(body, NewFlowExecutionBody::into_command)?;
    let executions = executions.into_inner();
    let created = blocking::run(move || executions.create_flow_execution(&principal, new)).await?;
    signal.notify();
    let body = FlowExecutionBody::from(created);
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/flow-executions/{}", body.id)))
        .json(body))
}

/// Retrieve a flow execution with its task executions.
#[utoipa::path(
    get,
    path = "/flow-executions/{id}",
    tag = "flow executions",
    operation_id = "getFlowExecution",
    params(("id" = Uuid, Path, description = "The flow execution's id")),
    responses(
        (status = 200, description = "The flow execution", body = FlowExecutionBody),
        (status = 400, description = "The id is not a UUID (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    id: web::Path<String>,
) -> Result<web::Json<FlowExecutionBody>, ApiError> {
    let id = parse_id::<FlowExecutionId>(&id);
    let executions = executions.into_inner();
    let detail = as_caller(auth.into_inner(), key, move |principal| {
        Ok(executions.get_flow_execution(principal, id?)?)
    })
    .await?;
    Ok(web::Json(detail.into()))
}

/// List flow executions.
///
/// The key's organization's flow executions (without their tasks),
/// filtered, newest or oldest first, in pages (keyset pagination: pass
/// `next_cursor` as `cursor` with the same filters and order).
#[utoipa::path(
    get,
    path = "/flow-executions",
    tag = "flow executions",
    operation_id = "listFlowExecutions",
    params(FlowListParams),
    responses(
        (status = 200, description = "A page of flow executions", body = FlowExecutionPageBody),
        (status = 400, description = "A bad or unknown parameter, a limit out of range, or a cursor not issued for this list (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
) -> Result<web::Json<FlowExecutionPageBody>, ApiError> {
    let request = query(&req, FlowListParams::into_request);
    let executions = executions.into_inner();
    let found = as_caller(auth.into_inner(), key, move |principal| {
        let request = request?;
        Ok(executions.list_flow_executions(
            principal,
            request.filter,
            request.order,
            page(request.limit, request.cursor),
        )?)
    })
    .await?;
    Ok(web::Json(FlowExecutionPageBody {
        flow_executions: found.items.into_iter().map(Into::into).collect(),
        next_cursor: found.next_cursor,
    }))
}

/// List a flow execution's task executions.
///
/// By default the latest attempt of each task (`attempts=all` for every
/// attempt); the same filters, order and pages as `GET /task-executions`.
#[utoipa::path(
    get,
    path = "/flow-executions/{id}/task-executions",
    tag = "flow executions",
    operation_id = "listFlowExecutionTasks",
    params(("id" = Uuid, Path, description = "The flow execution's id"), TaskListParams),
    responses(
        (status = 200, description = "A page of task executions", body = TaskExecutionPageBody),
        (status = 400, description = "The id is not a UUID, a bad or unknown parameter, or a cursor not issued for this list (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn tasks(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    id: web::Path<String>,
) -> Result<web::Json<TaskExecutionPageBody>, ApiError> {
    let id = parse_id::<FlowExecutionId>(&id);
    let request = query(&req, |p: TaskListParams| p.into_request(Attempts::Latest));
    let executions = executions.into_inner();
    let found = as_caller(auth.into_inner(), key, move |principal| {
        let request = request?;
        Ok(executions.list_flow_task_executions(
            principal,
            id?,
            request.filter,
            request.order,
            page(request.limit, request.cursor),
        )?)
    })
    .await?;
    Ok(web::Json(super::task_page(found)))
}
