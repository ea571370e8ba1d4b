use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use flowexec_domain::FlowExecutionId;
use flowexec_service::{require_write, ExecutionService};

use super::{body, parse_id};
use crate::auth::{as_caller, authenticate, BearerKey};
use crate::dto::FlowExecutionBody;
use crate::error::{ApiError, Problem};
use crate::{blocking, json_body, ApiSettings};

/// Create a flow execution and its task executions.
///
/// Creates the flow execution and one `queued` task execution per task
/// (`execution_index` 0, `modified_by` from the key), all in one transaction.
#[utoipa::path(
    post,
    path = "/flow-executions",
    tag = "flow executions",
    operation_id = "createFlowExecution",
    request_body = crate::dto::NewFlowExecutionBody,
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
    service: web::Data<dyn ExecutionService>,
    settings: web::Data<ApiSettings>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = service.into_inner();
    let principal = authenticate(&service, key).await?;
    require_write(&principal)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let new = body::new_flow_execution(&body)?;
    let created = blocking::run(move || service.create_flow_execution(&principal, new)).await?;
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
    service: web::Data<dyn ExecutionService>,
    id: web::Path<String>,
) -> Result<web::Json<FlowExecutionBody>, ApiError> {
    let id = parse_id::<FlowExecutionId>(&id);
    let detail = as_caller(service, key, move |service, principal| {
        Ok(service.get_flow_execution(principal, id?)?)
    })
    .await?;
    Ok(web::Json(detail.into()))
}
