use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use flowexec_domain::FlowExecutionId;
use flowexec_service::{require_write, Authenticate, ExecutionUseCases};
use flowexec_wire::{FlowExecutionBody, NewFlowExecutionBody};

use super::parse_id;
use crate::auth::{as_caller, authenticate, BearerKey};
use crate::error::{ApiError, Problem};
use crate::{blocking, json_body, request_schema, ApiSettings};

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
    settings: web::Data<ApiSettings>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_write(&principal)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let new = request_schema::command(body, NewFlowExecutionBody::into_command)?;
    let executions = executions.into_inner();
    let created = blocking::run(move || executions.create_flow_execution(&principal, new)).await?;
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
