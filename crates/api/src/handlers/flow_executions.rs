use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use flowexec_domain::{Attempts, FlowExecutionId};
use flowexec_service::{require_write, Authenticate, ExecutionUseCases};
use flowexec_wire::{
    CreateFlowExecutionBody, FlowExecutionBody, FlowExecutionPageBody, FlowGraphBody,
    FlowListParams, NewFlowExecutionBody, RerunBody, StartFlowBody, TaskExecutionPageBody,
    TaskListParams,
};

use super::{page, parse_id, query};
use crate::auth::{as_caller, authenticate, BearerKey};
use crate::error::{ApiError, Problem};
use crate::{blocking, json_body, request_schema, ApiSettings, WorkSignal};

/// Start a flow execution.
///
/// Either a run of a stored flow definition — `{"flow": name, "version"?:
/// n, "input"?: …}`: the input is checked against the definition's
/// `input_schema` (422 naming each mismatch under `input`), and the tasks
/// that depend on nothing are created, queued, with their inputs rendered;
/// the others are created as what they depend on completes — or, with
/// `flow_name` and `tasks`, a flow execution with its tasks given, each
/// created `queued` at once (no dependencies). `execution_index` 0,
/// `modified_by` from the key, all in one transaction.
#[utoipa::path(
    post,
    path = "/flow-executions",
    tag = "flow executions",
    operation_id = "createFlowExecution",
    request_body = CreateFlowExecutionBody,
    responses(
        (status = 201, description = "Created", body = FlowExecutionBody,
            headers(("Location" = String, description = "Path of the new flow execution"))),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No stored flow (or version) of that name (`not_found`)", body = Problem, content_type = "application/problem+json"),
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
    let executions = executions.into_inner();
    // The form is told by its fields: `flow` names a stored definition.
    let created = if body.get("flow").is_some() {
        let start = request_schema::command(body, StartFlowBody::into_command)?;
        blocking::run(move || executions.start_flow(&principal, start)).await?
    } else {
        let new = request_schema::command(body, NewFlowExecutionBody::into_command)?;
        blocking::run(move || executions.create_flow_execution(&principal, new)).await?
    };
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

/// Cancel a flow execution.
///
/// Its queued tasks are deleted (reason `cancelled`), its running tasks
/// failed with `{"code": "cancelled"}` (their workers hear `lease_lost` at
/// their next heartbeat or report), nothing more is created or retried in
/// it, and it is `cancelled` — in one transaction. Cancelling a cancelled
/// flow execution answers it as it is; a completed one cannot be cancelled
/// (409 `invalid_flow_state`).
#[utoipa::path(
    post,
    path = "/flow-executions/{id}/cancel",
    tag = "flow executions",
    operation_id = "cancelFlowExecution",
    params(("id" = Uuid, Path, description = "The flow execution's id")),
    responses(
        (status = 200, description = "The flow execution, cancelled", body = FlowExecutionBody),
        (status = 400, description = "The id is not a UUID (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It completed (`invalid_flow_state`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn cancel(
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    id: web::Path<String>,
) -> Result<web::Json<FlowExecutionBody>, ApiError> {
    let id = parse_id::<FlowExecutionId>(&id);
    let executions = executions.into_inner();
    let detail = as_caller(auth.into_inner(), key, move |principal| {
        require_write(principal)?;
        Ok(executions.cancel_flow(principal, id?)?)
    })
    .await?;
    Ok(web::Json(detail.into()))
}

/// Run a flow execution again from one of its tasks.
///
/// For a run of a stored definition: the latest attempt of `from_task` and
/// of every task downstream of it, completed or failed, becomes `stale`;
/// `from_task` is created again at once (its input rendered again from the
/// current upstream outputs), and what depends on it as it completes.
/// Refused (409 `invalid_flow_state`) for a cancelled or ad hoc flow
/// execution, a task that has not run yet, or while it or a task
/// downstream of it is queued or running.
#[utoipa::path(
    post,
    path = "/flow-executions/{id}/rerun",
    tag = "flow executions",
    operation_id = "rerunFlowExecution",
    params(("id" = Uuid, Path, description = "The flow execution's id")),
    request_body = RerunBody,
    responses(
        (status = 200, description = "The flow execution, its task created again", body = FlowExecutionBody),
        (status = 400, description = "The id is not a UUID (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not possible in its state (`invalid_flow_state`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[allow(clippy::too_many_arguments)] // one parameter per actix extractor
pub(crate) async fn rerun(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    signal: web::Data<WorkSignal>,
    settings: web::Data<ApiSettings>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<web::Json<FlowExecutionBody>, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_write(&principal)?;
    let id = parse_id::<FlowExecutionId>(&id)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let from_task = request_schema::command(body, RerunBody::into_command)?;
    let executions = executions.into_inner();
    let detail = blocking::run(move || executions.rerun(&principal, id, from_task)).await?;
    signal.notify();
    Ok(web::Json(detail.into()))
}

/// A flow execution as a graph.
///
/// Its tasks — those of its definition, in the order written (an ad hoc
/// flow execution's, by name) — each with where it stands, its runs and
/// attempts and its latest attempt; and the dependencies between them.
#[utoipa::path(
    get,
    path = "/flow-executions/{id}/graph",
    tag = "flow executions",
    operation_id = "getFlowExecutionGraph",
    params(("id" = Uuid, Path, description = "The flow execution's id")),
    responses(
        (status = 200, description = "The graph", body = FlowGraphBody),
        (status = 400, description = "The id is not a UUID (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow execution in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn graph(
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    executions: web::Data<dyn ExecutionUseCases>,
    id: web::Path<String>,
) -> Result<web::Json<FlowGraphBody>, ApiError> {
    let id = parse_id::<FlowExecutionId>(&id);
    let executions = executions.into_inner();
    let graph = as_caller(auth.into_inner(), key, move |principal| {
        Ok(executions.flow_graph(principal, id?)?)
    })
    .await?;
    Ok(web::Json(graph.into()))
}
