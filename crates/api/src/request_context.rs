//! Per-request context: the request id, the tracing span, the access log
//! line, the `X-Request-Id` response header, and the request body held until
//! the response is sent (`held_body`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::held_body::{hold_until_sent, HeldBody};

pub(crate) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, for error bodies; empty outside a request.
pub(crate) fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// A client's id is echoed when it is 1–128 characters of
/// `A-Z a-z 0-9 - _ . : /`; otherwise the server makes one (a UUID).
fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/')
                })
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

pub(crate) async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request_id_of(&req);
    let body = HeldBody::share(&mut req);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        http.method = %req.method(),
        http.path = %req.path(),
        http.status = tracing::field::Empty,
        organization.id = tracing::field::Empty,
    );
    let started = Instant::now();
    let header = HeaderValue::from_str(&request_id);
    let result = REQUEST_ID
        .scope(request_id, next.call(req).instrument(span.clone()))
        .await;
    let mut response = result?;
    let status = response.status().as_u16();
    span.record("http.status", status);
    span.in_scope(|| {
        tracing::info!(
            latency_us = started.elapsed().as_micros() as u64,
            "request finished"
        );
    });
    if let Ok(value) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(hold_until_sent(response, body))
}
