//! Routes and the request-level helpers shared by the handlers.

pub(crate) mod flow_executions;
pub(crate) mod health;
pub(crate) mod task_executions;

use std::sync::Arc;

use actix_web::{web, FromRequest, Handler, Resource, Responder};

use crate::error::ApiError;
use crate::openapi;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/flow-executions")
            .post(flow_executions::create)
            .finish(),
    )
    .service(
        Endpoint::new("/flow-executions/{id}")
            .get(flow_executions::get)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/{id}")
            .get(task_executions::get)
            .finish(),
    )
    .service(Endpoint::new("/healthz").get(health::healthz).finish())
    .service(Endpoint::new("/readyz").get(health::readyz).finish())
    .service(
        Endpoint::new("/openapi.json")
            .get(openapi::document)
            .finish(),
    )
    .service(Endpoint::new("/docs").get(openapi::docs_root).finish())
    .service(
        Endpoint::new("/docs/{file:.*}")
            .get(openapi::docs_file)
            .finish(),
    );
}

/// One path and the methods it answers. GET also answers HEAD (the same
/// headers, no body); any other method is a 405 in the standard body with
/// an `Allow` header listing what the path does answer (RFC 9110).
struct Endpoint {
    resource: Resource,
    methods: Vec<&'static str>,
}

impl Endpoint {
    fn new(path: &str) -> Self {
        Self {
            resource: web::resource(path),
            methods: Vec::new(),
        }
    }

    fn get<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self
            .resource
            .route(web::get().to(handler.clone()))
            .route(web::head().to(handler));
        self.methods.extend(["GET", "HEAD"]);
        self
    }

    fn post<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::post().to(handler));
        self.methods.push("POST");
        self
    }

    fn finish(self) -> Resource {
        let allow: Arc<str> = self.methods.join(", ").into();
        self.resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<(), _>(ApiError::method_not_allowed(allow)) }
        }))
    }
}

pub(crate) async fn not_found() -> Result<(), ApiError> {
    Err(ApiError::not_found())
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
