//! The one async boundary: a unit of work runs on the blocking pool, with the
//! request's tracing span. A pooled connection never crosses an `.await`.

use actix_web::web;
use flowexec_service::ServiceError;

use crate::error::ApiError;

pub(crate) async fn run<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    web::block(move || span.in_scope(work))
        .await
        .map_err(|e| ApiError::internal(&format!("blocking pool: {e}")))?
        .map_err(ApiError::from)
}
