//! `ApiError` and the one table mapping each kind of error to its HTTP
//! status, stable `code` and title. Bodies are RFC 9457 problem details:
//! `{"type", "title", "status", "detail", "code", "request_id"}` plus
//! `"errors": [{"field", "message"}]` for validation failures.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use flowexec_domain::RetryRefusal;
use flowexec_service::ServiceError;
use flowexec_wire::Status;
pub use flowexec_wire::{FieldError, Problem};

use crate::etag::etag;
use crate::request_context;

/// Every kind of error the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    MalformedRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    InvalidTransition,
    RetryNotAllowed,
    LeaseLost,
    LastAdminKey,
    FlowState,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    InvalidDefinition,
    RequestTimeout,
    Internal,
    Unavailable,
}

impl ErrorKind {
    /// Every kind, for the tests of the table.
    #[cfg(test)]
    const ALL: [ErrorKind; 19] = [
        Self::MalformedRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::InvalidTransition,
        Self::RetryNotAllowed,
        Self::LeaseLost,
        Self::LastAdminKey,
        Self::FlowState,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::InvalidDefinition,
        Self::RequestTimeout,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The table: status, stable code, title.
    pub const fn spec(self) -> (StatusCode, &'static str, &'static str) {
        use ErrorKind::*;
        match self {
            MalformedRequest => (
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "Malformed request",
            ),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Conflict => (StatusCode::CONFLICT, "conflict", "Conflict"),
            InvalidTransition => (
                StatusCode::CONFLICT,
                "invalid_transition",
                "Invalid status transition",
            ),
            RetryNotAllowed => (
                StatusCode::CONFLICT,
                "retry_not_allowed",
                "Retry not allowed",
            ),
            LeaseLost => (StatusCode::CONFLICT, "lease_lost", "Lease lost"),
            LastAdminKey => (StatusCode::CONFLICT, "last_admin_key", "Last admin key"),
            FlowState => (
                StatusCode::CONFLICT,
                "invalid_flow_state",
                "Not possible in the flow execution's state",
            ),
            PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "Precondition failed",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            ValidationFailed => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            InvalidDefinition => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_definition",
                "Invalid flow definition",
            ),
            RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "Request timeout",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
        }
    }
}

/// An error answer. Build it from a `ServiceError` or with the constructors;
/// `detail` is always safe to show (internal causes are logged, not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    kind: ErrorKind,
    detail: String,
    errors: Vec<FieldError>,
    /// The methods a path answers, for the `Allow` header of a 405.
    allow: Option<Arc<str>>,
    /// Extension members of the problem body (boxed: most errors have
    /// none, and an error travels in every `Result`).
    extensions: Box<Extensions>,
}

/// The problem body's extension members, by kind (see [`Problem`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Extensions {
    current_status: Option<Status>,
    allowed: Option<Vec<Status>>,
    latest_execution_index: Option<i32>,
    current_etag: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            allow: None,
            extensions: Box::default(),
        }
    }

    /// A 405 whose `Allow` header lists `allow` (e.g. `"GET, HEAD"`).
    pub fn method_not_allowed(allow: Arc<str>) -> Self {
        Self {
            detail: format!("this method is not allowed on this path; allowed: {allow}"),
            allow: Some(allow),
            ..Self::new(ErrorKind::MethodNotAllowed, "")
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::MalformedRequest, detail)
    }

    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound, "the resource does not exist")
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorKind::Unauthorized,
            "a valid API key is required: Authorization: Bearer fx_…",
        )
    }

    /// A 503 for work that waits on the client when the server stops.
    pub fn shutting_down() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            "the server is shutting down; retry the request",
        )
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            detail: format!("{} invalid field(s)", errors.len()),
            errors,
            ..Self::new(ErrorKind::ValidationFailed, "")
        }
    }

    /// Logs the cause once, here, and answers a bare 500.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorKind::Internal,
            "an internal error occurred; quote the request_id when reporting it",
        )
    }

    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.kind.spec();
        Problem {
            type_: format!("urn:flowexec:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: code.to_owned(),
            request_id: request_context::current_request_id(),
            errors: self.errors.clone(),
            current_status: self.extensions.current_status,
            allowed: self.extensions.allowed.clone(),
            latest_execution_index: self.extensions.latest_execution_index,
            current_etag: self.extensions.current_etag.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.spec().1, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.spec().0
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        match self.kind {
            ErrorKind::Unauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ErrorKind::MethodNotAllowed => {
                if let Some(allow) = self
                    .allow
                    .as_deref()
                    .and_then(|a| HeaderValue::from_str(a).ok())
                {
                    response.insert_header((header::ALLOW, allow));
                }
            }
            // The rest of the body was never read: the connection cannot
            // carry another request.
            ErrorKind::RequestTimeout | ErrorKind::PayloadTooLarge => {
                response.force_close();
            }
            _ => {}
        }
        match serde_json::to_vec(&self.problem()) {
            Ok(body) => response.body(body),
            Err(_) => HttpResponse::InternalServerError().finish(),
        }
    }
}

/// `input.a[0]` for the JSON pointer `/a/0` into a run's input: field
/// paths as the rest of the API writes them.
fn input_field(pointer: &str) -> String {
    let mut field = "input".to_owned();
    for step in pointer.split('/').skip(1) {
        let step = step.replace("~1", "/").replace("~0", "~");
        if step.parse::<usize>().is_ok() {
            field.push_str(&format!("[{step}]"));
        } else {
            field.push('.');
            field.push_str(&step);
        }
    }
    field
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Unauthorized => Self::unauthorized(),
            ServiceError::Forbidden { required } => Self::new(
                ErrorKind::Forbidden,
                format!("this operation needs a key with role {required}"),
            ),
            ServiceError::NotFound => Self::not_found(),
            ServiceError::InvalidDefinition(errors) => {
                let errors: Vec<FieldError> = errors
                    .into_iter()
                    .map(|e| FieldError {
                        field: e.pointer,
                        message: e.message,
                        code: serde_json::to_value(e.code)
                            .ok()
                            .and_then(|c| c.as_str().map(str::to_owned)),
                        line: e.location.map(|l| l.line),
                        column: e.location.map(|l| l.column),
                    })
                    .collect();
                Self {
                    detail: format!(
                        "the flow definition has {} error(s); each is listed with where it is",
                        errors.len()
                    ),
                    errors,
                    ..Self::new(ErrorKind::InvalidDefinition, "")
                }
            }
            ServiceError::FlowState { detail, .. } => Self::new(ErrorKind::FlowState, detail),
            ServiceError::InvalidFields(fields) => Self::validation(
                fields
                    .into_iter()
                    .map(|(field, message)| FieldError {
                        field,
                        message,
                        ..FieldError::default()
                    })
                    .collect(),
            ),
            ServiceError::InputMismatch(mismatches) => Self::validation(
                mismatches
                    .into_iter()
                    .map(|(pointer, message)| FieldError {
                        field: input_field(&pointer),
                        message,
                        ..FieldError::default()
                    })
                    .collect(),
            ),
            // The cause names a database constraint: logged, never shown, so
            // that both stores answer the same.
            ServiceError::Conflict(what) => {
                tracing::info!(conflict = %what, "conflict");
                Self::new(
                    ErrorKind::Conflict,
                    "the request conflicts with an existing resource",
                )
            }
            ServiceError::InvalidTransition { current, requested } => {
                let allowed = current.allowed_to();
                let listed = if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                };
                Self {
                    extensions: Box::new(Extensions {
                        current_status: Some(current.into()),
                        allowed: Some(allowed.into_iter().map(Into::into).collect()),
                        ..Extensions::default()
                    }),
                    ..Self::new(
                        ErrorKind::InvalidTransition,
                        format!(
                            "cannot move a task execution from {current} to {requested}; from {current} it may move to: {listed}"
                        ),
                    )
                }
            }
            ServiceError::LeaseLost { current } => Self {
                extensions: Box::new(Extensions {
                    current_status: Some(current.into()),
                    ..Extensions::default()
                }),
                ..Self::new(
                    ErrorKind::LeaseLost,
                    format!(
                        "the task execution is {current} and no longer held by this worker: stop working on it"
                    ),
                )
            },
            ServiceError::PreconditionFailed { current_version } => Self {
                extensions: Box::new(Extensions {
                    current_etag: Some(etag(current_version)),
                    ..Extensions::default()
                }),
                ..Self::new(
                    ErrorKind::PreconditionFailed,
                    "If-Match does not name the task execution's current ETag; it has changed since it was read",
                )
            },
            ServiceError::RetryRefused(refusal) => {
                let extensions = match refusal {
                    RetryRefusal::NotFinished { status } => Extensions {
                        current_status: Some(status.into()),
                        ..Extensions::default()
                    },
                    RetryRefusal::Superseded {
                        latest_execution_index,
                    } => Extensions {
                        latest_execution_index: Some(latest_execution_index),
                        ..Extensions::default()
                    },
                    RetryRefusal::FlowCancelled | RetryRefusal::StaleInFlow => {
                        Extensions::default()
                    }
                };
                Self {
                    extensions: Box::new(extensions),
                    ..Self::new(ErrorKind::RetryNotAllowed, refusal.to_string())
                }
            }
            ServiceError::LastAdminKey => Self::new(
                ErrorKind::LastAdminKey,
                "this is the organization's last active admin key; create another admin key before revoking it",
            ),
            ServiceError::Invalid(detail) => Self::malformed(detail),
            ServiceError::InvalidCursor(why) => Self::malformed(format!("cursor: {why}")),
            ServiceError::Unavailable(cause) => {
                tracing::error!(error = format!("{cause:#}"), "store unavailable");
                Self::new(ErrorKind::Unavailable, "the database is unavailable; retry later")
            }
            ServiceError::Internal(cause) => Self::internal(&format!("{cause:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_snake_case_and_unique() {
        let kinds = ErrorKind::ALL;
        let mut codes: Vec<&str> = kinds.iter().map(|k| k.spec().1).collect();
        assert!(codes
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
    }

    #[test]
    fn internal_causes_never_reach_the_body() {
        let error = ApiError::from(ServiceError::Internal(anyhow_like(
            "password=hunter2 at db:5432",
        )));
        let body = serde_json::to_string(&error.problem()).unwrap_or_default();
        assert!(!body.contains("hunter2"), "{body}");
        assert!(body.contains("\"code\":\"internal\""), "{body}");
    }

    fn anyhow_like(text: &str) -> anyhow::Error {
        anyhow::anyhow!(text.to_owned())
    }
}
