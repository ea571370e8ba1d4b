use actix_web::web;
use flowexec_domain::TaskExecutionId;
use flowexec_service::{Authenticate, ExecutionUseCases};
use flowexec_wire::TaskExecutionBody;

use super::parse_id;
use crate::auth::{as_caller, BearerKey};
use crate::error::{ApiError, Problem};

/// Retrieve a specific task execution.
///
/// Task executions are scoped to the key's organization: another
/// organization's task execution answers exactly as a missing one (404).
#[utoipa::path(
    get,
    path = "/task-executions/{id}",
    tag = "task executions",
    operation_id = "getTaskExecution",
    params(("id" = Uuid, Path, description = "Unique identifier of the task execution, assigned at creation")),
    responses(
        (status = 200, description = "The task execution", body = TaskExecutionBody),
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
) -> Result<web::Json<TaskExecutionBody>, ApiError> {
    let id = parse_id::<TaskExecutionId>(&id);
    let executions = executions.into_inner();
    let task = as_caller(auth.into_inner(), key, move |principal| {
        Ok(executions.get_task_execution(principal, id?)?)
    })
    .await?;
    Ok(web::Json(task.into()))
}
