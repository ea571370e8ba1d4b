//! The answers every operation of a kind can give, added to the document in
//! one place instead of being repeated in each handler's annotation:
//!
//! - every operation: the `X-Request-Id` header on every response;
//! - every operation that needs a key: 401, 500, 503;
//! - every operation with a JSON body: 400, 408, 413, 415, 422.
//!
//! A handler's own annotation wins where it documents the same status.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::Modify;

/// Answers of operations that need an API key.
const PROTECTED: [(&str, &str); 3] = [
    ("401", "Missing or invalid API key (`unauthorized`)"),
    (
        "500",
        "Internal error (`internal`); quote the `request_id` when reporting it",
    ),
    (
        "503",
        "The database is unavailable (`unavailable`); retry later",
    ),
];

/// Answers of operations that read a JSON body (after the key is checked).
const WITH_BODY: [(&str, &str); 5] = [
    (
        "400",
        "The body is not JSON, or an object names a key twice (`malformed_request`)",
    ),
    (
        "408",
        "The body did not arrive within the server's body timeout (`request_timeout`); the connection is closed",
    ),
    ("413", "The body is over the size limit (`payload_too_large`)"),
    (
        "415",
        "The body is not sent as `application/json` (`unsupported_media_type`)",
    ),
    (
        "422",
        "Well-formed but invalid: every invalid field is listed in `errors` (`validation_failed`)",
    ),
];

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

pub(super) struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                complete(operation);
            }
        }
    }
}

fn complete(operation: &mut Operation) {
    let mut added: Vec<(&str, &str)> = Vec::new();
    if operation.security.is_some() {
        added.extend(PROTECTED);
    }
    if operation.request_body.is_some() {
        added.extend(WITH_BODY);
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in added {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem(description)));
    }
    for response in responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.entry("X-Request-Id".to_owned()).or_insert_with(|| {
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(
                        "The request's id: the client's `X-Request-Id` when well-formed, else a new UUID",
                    ))
                    .build()
            });
        }
    }
}
