//! The OpenAPI 3.1 document, generated from the handlers' annotations, and a
//! self-contained page that renders it (no external scripts).

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::error::{FieldError, Problem};
use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "flowexec",
        description = "Multi-tenant workflow execution service. Every endpoint but /healthz, /readyz, /openapi.json and /docs needs `Authorization: Bearer fx_…`. Errors are RFC 9457 problem details with a stable `code`."
    ),
    paths(
        handlers::flow_executions::create,
        handlers::flow_executions::get,
        handlers::task_executions::get,
        handlers::health::healthz,
        handlers::health::readyz,
    ),
    components(schemas(
        dto::TaskExecutionBody,
        dto::FlowExecutionBody,
        dto::NewFlowExecutionBody,
        dto::NewTaskBody,
        dto::Status,
        dto::HealthBody,
        Problem,
        FieldError,
    )),
    modifiers(&BearerKey)
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("fx_<key id>_<secret>")
                        .build(),
                ),
            );
        }
    }
}

pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub(crate) async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("docs.html"))
}
