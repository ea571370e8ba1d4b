#![doc = include_str!("../README.md")]

mod auth;
mod blocking;
mod error;
mod etag;
mod handlers;
mod held_body;
mod json_body;
mod openapi;
mod request_context;
mod request_schema;
mod shutdown;
mod work_signal;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App};
use flowexec_service::{
    Authenticate, ExecutionUseCases, FlowUseCases, KeyUseCases, Readiness, WorkerUseCases,
};

pub use shutdown::ShutdownSignal;
pub use work_signal::WorkSignal;

/// Limits the API enforces on requests, and the server's shutdown.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest accepted JSON body, in bytes; larger is a 413.
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive once the server starts
    /// reading it; slower is a 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Once triggered, bodies still arriving are answered 503 at once.
    pub shutdown: ShutdownSignal,
    /// How often a claim waiting for work looks again on its own while the
    /// `WorkSignal` is not complete (besides being woken by it).
    pub claim_poll: Duration,
    /// The longest a claim waiting for work sleeps while the `WorkSignal`
    /// is complete: a safety net for work announced nowhere.
    pub claim_safety_poll: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            body_timeout: Duration::from_secs(15),
            shutdown: ShutdownSignal::new(),
            claim_poll: Duration::from_secs(1),
            claim_safety_poll: Duration::from_secs(10),
        }
    }
}

/// The use cases the API serves, by capability.
#[derive(Clone)]
pub struct ApiServices {
    pub auth: Arc<dyn Authenticate>,
    pub executions: Arc<dyn ExecutionUseCases>,
    pub flows: Arc<dyn FlowUseCases>,
    pub keys: Arc<dyn KeyUseCases>,
    pub readiness: Arc<dyn Readiness>,
    pub workers: Arc<dyn WorkerUseCases>,
    /// Wakes claims waiting for work.
    pub work: WorkSignal,
}

/// The whole application: routes, extractors' configuration, error
/// handling and the request-context middleware.
pub fn build_app(
    services: ApiServices,
    settings: &ApiSettings,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::from(services.auth))
        .app_data(web::Data::from(services.executions))
        .app_data(web::Data::from(services.flows))
        .app_data(web::Data::from(services.keys))
        .app_data(web::Data::from(services.readiness))
        .app_data(web::Data::from(services.workers))
        .app_data(web::Data::new(services.work))
        .app_data(web::Data::new(settings.clone()))
        .configure(handlers::routes)
        .default_service(web::to(handlers::not_found))
        .wrap(from_fn(request_context::request_context))
}
