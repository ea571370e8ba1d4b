//! The one async boundary: a unit of work runs on the blocking pool, with the
//! request's tracing span. A pooled connection never crosses an `.await`.

use actix_web::web;

use crate::error::ApiError;

pub(crate) async fn run<T, E, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    E: Into<ApiError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    web::block(move || span.in_scope(work))
        .await
        .map_err(|e| ApiError::internal(&format!("blocking pool: {e}")))?
        .map_err(Into::into)
}
