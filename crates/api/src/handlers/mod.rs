//! Routes and the request-level configuration shared by the handlers.

mod body;
pub(crate) mod flow_executions;
pub(crate) mod health;
pub(crate) mod task_executions;

use actix_web::error::JsonPayloadError;
use actix_web::{web, HttpRequest, Resource};

use crate::error::{ApiError, ErrorKind};
use crate::openapi;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/flow-executions").route(web::post().to(flow_executions::create)))
        .service(resource("/flow-executions/{id}").route(web::get().to(flow_executions::get)))
        .service(resource("/task-executions/{id}").route(web::get().to(task_executions::get)))
        .service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/openapi.json").route(web::get().to(openapi::document)))
        .service(resource("/docs").route(web::get().to(openapi::page)));
}

/// A resource whose unrouted methods answer 405 in the standard body.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<(), _>(ApiError::new(
            ErrorKind::MethodNotAllowed,
            "this method is not allowed on this path",
        ))
    }))
}

pub(crate) async fn not_found() -> Result<(), ApiError> {
    Err(ApiError::not_found())
}

/// JSON bodies: a size limit (413), `Content-Type: application/json` (415),
/// and syntax errors as 400 in the standard body.
pub(crate) fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(
        move |error: JsonPayloadError, _: &HttpRequest| {
            let api = match &error {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    format!("the body is larger than the limit of {limit} bytes"),
                ),
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorKind::UnsupportedMediaType,
                    "the body must be JSON, sent with Content-Type: application/json",
                ),
                JsonPayloadError::Deserialize(e) => {
                    ApiError::malformed(format!("the body is not valid JSON: {e}"))
                }
                _ => ApiError::malformed("the body could not be read"),
            };
            api.into()
        },
    )
}

/// Parses a path id, answering 400 for text that is not a UUID.
pub(crate) fn parse_id<T>(text: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr<Err = flowexec_domain::ParseError>,
{
    text.parse().map_err(|e: flowexec_domain::ParseError| {
        ApiError::malformed(format!("id {}", e.message()))
    })
}
