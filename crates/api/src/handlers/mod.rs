//! Routes and the request-level helpers shared by the handlers.

pub(crate) mod api_keys;
pub(crate) mod flow_executions;
pub(crate) mod flows;
pub(crate) mod health;
pub(crate) mod task_executions;
pub(crate) mod workers;

use std::sync::Arc;

use actix_web::{web, FromRequest, Handler, Resource, Responder, Route};
use flowexec_service::{PageRequest, DEFAULT_PAGE};

use crate::error::ApiError;
use crate::openapi;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/flow-executions")
            .get(flow_executions::list)
            .post(flow_executions::create)
            .finish(),
    )
    .service(
        Endpoint::new("/flow-executions/{id}")
            .get(flow_executions::get)
            .finish(),
    )
    .service(
        Endpoint::new("/flow-executions/{id}/cancel")
            .post(flow_executions::cancel)
            .finish(),
    )
    .service(
        Endpoint::new("/flow-executions/{id}/rerun")
            .post(flow_executions::rerun)
            .finish(),
    )
    .service(
        Endpoint::new("/flow-executions/{id}/graph")
            .get(flow_executions::graph)
            .finish(),
    )
    .service(
        Endpoint::new("/flow-executions/{id}/task-executions")
            .get(flow_executions::tasks)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions")
            .get(task_executions::list)
            .finish(),
    )
    // Before `/task-executions/{id}`, which would take "counts", "claim"
    // or "results" for an id.
    .service(
        Endpoint::new("/task-executions/counts")
            .get(task_executions::counts)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/claim")
            .post(workers::claim)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/results")
            .post(workers::results)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/{id}")
            .get(task_executions::get)
            .patch(task_executions::change_status)
            .delete(task_executions::delete)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/{id}/retries")
            .post(task_executions::retry)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/{id}/events")
            .get(task_executions::events)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/{id}/heartbeat")
            .post(workers::heartbeat)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/{id}/complete")
            .post(workers::complete)
            .finish(),
    )
    .service(
        Endpoint::new("/task-executions/{id}/fail")
            .post(workers::fail)
            .finish(),
    )
    .service(Endpoint::new("/flows").get(flows::list).finish())
    .service(
        Endpoint::new("/flows/{name}")
            .get(flows::get)
            .put(flows::put)
            .delete(flows::delete)
            .finish(),
    )
    .service(
        Endpoint::new("/flows/{name}/versions/{version}")
            .get(flows::get_version)
            .finish(),
    )
    .service(
        Endpoint::new("/api-keys")
            .get(api_keys::list)
            .post(api_keys::create)
            .finish(),
    )
    .service(
        Endpoint::new("/api-keys/{id}")
            .delete(api_keys::revoke)
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

    fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(web::post(), "POST", handler)
    }

    fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(web::put(), "PUT", handler)
    }

    fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(web::patch(), "PATCH", handler)
    }

    fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(web::delete(), "DELETE", handler)
    }

    fn method<F, Args>(mut self, route: Route, name: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(route.to(handler));
        self.methods.push(name);
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

/// A request's query string as the parameters `T` (unknown or repeated
/// parameters are a 400), converted by `convert` (whose message, naming
/// every bad parameter, is a 400 too).
pub(crate) fn query<T, R>(
    req: &actix_web::HttpRequest,
    convert: impl FnOnce(T) -> Result<R, String>,
) -> Result<R, ApiError>
where
    T: serde::de::DeserializeOwned,
{
    let params = web::Query::<T>::from_query(req.query_string())
        .map_err(|e| ApiError::malformed(format!("the query string: {e}")))?
        .into_inner();
    convert(params).map_err(|e| ApiError::malformed(format!("the query string: {e}")))
}

/// The page a list request asks for.
pub(crate) fn page(limit: Option<usize>, cursor: Option<String>) -> PageRequest {
    PageRequest {
        limit: limit.unwrap_or(DEFAULT_PAGE),
        cursor,
    }
}

/// A page of task executions as its body.
pub(crate) fn task_page(
    page: flowexec_service::Page<flowexec_domain::TaskExecution>,
) -> flowexec_wire::TaskExecutionPageBody {
    flowexec_wire::TaskExecutionPageBody {
        task_executions: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }
}
