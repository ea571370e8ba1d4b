use actix_web::web;
use flowexec_service::Readiness;
use flowexec_wire::HealthBody;

use crate::blocking;
use crate::error::{ApiError, Problem};

/// Liveness: the process is up. Touches nothing else.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "getLiveness",
    responses((status = 200, description = "Up", body = HealthBody)))]
pub(crate) async fn healthz() -> web::Json<HealthBody> {
    web::Json(HealthBody {
        status: "ok".into(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready", body = HealthBody),
        (status = 503, description = "The database is unreachable (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn readyz(
    readiness: web::Data<dyn Readiness>,
) -> Result<web::Json<HealthBody>, ApiError> {
    let readiness = readiness.into_inner();
    blocking::run(move || readiness.ready()).await?;
    Ok(web::Json(HealthBody {
        status: "ready".into(),
    }))
}
