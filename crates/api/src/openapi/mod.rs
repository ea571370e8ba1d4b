//! The OpenAPI 3.1 document, generated from the handlers' annotations
//! (each lists what is particular to it; [`responses`] adds what every
//! operation of a kind answers), and the API reference at `/docs/`
//! ([`docs`]).

mod docs;
mod responses;

use responses::CommonResponses;

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub(crate) use docs::{docs_file, docs_root};

use flowexec_wire as wire;

use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "flowexec",
        description = "Multi-tenant workflow execution service. Every endpoint but /healthz, /readyz, /openapi.json and /docs needs `Authorization: Bearer fx_…`. Errors are RFC 9457 problem details with a stable `code`."
    ),
    paths(
        handlers::flow_executions::create,
        handlers::flow_executions::list,
        handlers::flow_executions::get,
        handlers::flow_executions::tasks,
        handlers::flow_executions::cancel,
        handlers::flow_executions::rerun,
        handlers::flow_executions::graph,
        handlers::task_executions::list,
        handlers::task_executions::counts,
        handlers::task_executions::get,
        handlers::task_executions::change_status,
        handlers::task_executions::delete,
        handlers::task_executions::retry,
        handlers::task_executions::events,
        handlers::workers::claim,
        handlers::workers::heartbeat,
        handlers::workers::complete,
        handlers::workers::fail,
        handlers::workers::results,
        handlers::flows::put,
        handlers::flows::list,
        handlers::flows::get,
        handlers::flows::get_version,
        handlers::flows::delete,
        handlers::api_keys::create,
        handlers::api_keys::list,
        handlers::api_keys::revoke,
        handlers::health::healthz,
        handlers::health::readyz,
    ),
    components(schemas(
        wire::TaskExecutionBody,
        wire::FlowExecutionBody,
        wire::FlowStatusBody,
        wire::NewFlowExecutionBody,
        wire::CreateFlowExecutionBody,
        wire::StartFlowBody,
        wire::FlowBody,
        wire::FlowSummaryBody,
        wire::FlowPageBody,
        wire::RerunBody,
        wire::FlowGraphBody,
        wire::GraphNodeBody,
        wire::GraphEdgeBody,
        wire::NodeStateBody,
        wire::AttemptRefBody,
        wire::NewTaskBody,
        wire::ChangeStatusBody,
        wire::RetryBody,
        wire::EventBody,
        wire::EventPageBody,
        wire::TaskExecutionPageBody,
        wire::FlowExecutionPageBody,
        wire::FlowExecutionSummaryBody,
        wire::CountsBody,
        wire::Status,
        wire::NewApiKeyBody,
        wire::IssuedApiKeyBody,
        wire::ApiKeyBody,
        wire::ApiKeyListBody,
        wire::RoleBody,
        wire::ClaimBody,
        wire::ClaimedBody,
        wire::HeartbeatBody,
        wire::CompleteBody,
        wire::FailBody,
        wire::ResultsBody,
        wire::ResultBody,
        wire::ResultStatus,
        wire::ResultsAnswerBody,
        wire::ResultAnswerBody,
        wire::RetryPolicyBody,
        wire::HealthBody,
        wire::Problem,
        wire::FieldError,
    )),
    modifiers(&BearerKey, &CommonResponses)
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

/// The document, generated once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi().to_json().unwrap_or_else(|e| {
        format!("{{\"error\": \"the OpenAPI document failed to render: {e}\"}}")
    })
});

pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}
