//! Stored flow definitions: `PUT /flows/{name}` (YAML or JSON), reads,
//! the list, `DELETE`.

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use flowexec_domain::FlowName;
use flowexec_service::{require_write, Authenticate, FlowUseCases, StoredFlow};
use flowexec_wire::{FlowBody, FlowPageBody};
use serde::Deserialize;

use super::{page, query};
use crate::auth::{authenticate, BearerKey};
use crate::error::{ApiError, ErrorKind, Problem};
use crate::{blocking, json_body, ApiSettings};

fn flow_name(text: &str) -> Result<FlowName, ApiError> {
    FlowName::parse(text).map_err(|e| ApiError::malformed(format!("flow name {}", e.message())))
}

fn body(stored: StoredFlow) -> FlowBody {
    FlowBody::new(stored.flow, stored.version)
}

/// YAML (`application/yaml`, `application/x-yaml`, `text/yaml`,
/// `text/x-yaml`) or JSON (`application/json`, `application/…+json`).
fn check_definition_type(req: &HttpRequest) -> Result<(), ApiError> {
    let accepted = req.mime_type().ok().flatten().is_some_and(|mime| {
        let (kind, sub) = (mime.type_().as_str(), mime.subtype().as_str());
        matches!(
            (kind, sub),
            ("application", "yaml" | "x-yaml" | "json") | ("text", "yaml" | "x-yaml")
        ) || (kind == "application" && mime.suffix().is_some_and(|s| s == "json" || s == "yaml"))
    });
    if accepted {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "a flow definition is YAML (Content-Type: application/yaml) or JSON (application/json)",
        ))
    }
}

/// Store a flow definition.
///
/// The body is the definition, in YAML (`Content-Type: application/yaml`)
/// or JSON (docs/flows.md describes the format). It is checked in full:
/// every error at once, each with its JSON pointer and, where the text has
/// one, its line and column (422 `invalid_definition`). When its content
/// differs from the latest version's, it is stored as the next version
/// (201); when it does not, the latest version is answered (200). Storing
/// a deleted flow again revives it with the next version.
#[utoipa::path(
    put,
    path = "/flows/{name}",
    tag = "flows",
    operation_id = "putFlow",
    params(("name" = String, Path, description = "The flow's name: the same as the definition's `name`", pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length = 1, max_length = 128)),
    request_body(content(
        (Object = "application/yaml"),
        (Object = "application/json"),
    )),
    responses(
        (status = 200, description = "Unchanged: the latest version already has this content", body = FlowBody),
        (status = 400, description = "A name that is not one, or a body that is not UTF-8 (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Stored as a new version", body = FlowBody,
            headers(("Location" = String, description = "Path of the new version"))),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is neither YAML (`application/yaml`, `application/x-yaml`, `text/yaml`) nor JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The definition has errors (`invalid_definition`): each in `errors`, with `code`, `field` (a JSON pointer), `line` and `column`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn put(
    req: HttpRequest,
    key: BearerKey,
    path: web::Path<String>,
    auth: web::Data<dyn Authenticate>,
    flows: web::Data<dyn FlowUseCases>,
    settings: web::Data<ApiSettings>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_write(&principal)?;
    let name = flow_name(&path)?;
    check_definition_type(&req)?;
    let bytes = json_body::read_bytes(&req, payload, &settings).await?;
    let source = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::malformed("the definition is not UTF-8 text"))?;
    let flows = flows.into_inner();
    let outcome = blocking::run(move || flows.put_flow(&principal, name, source)).await?;
    let created = outcome.created;
    let body = body(outcome.stored);
    let location = format!("/flows/{}/versions/{}", body.name, body.version);
    Ok(if created {
        HttpResponse::Created()
            .insert_header((LOCATION, location))
            .json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// The query of `GET /flows`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowsQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// List the organization's flows.
///
/// By name; deleted flows are left out. Keyset pages: pass `next_cursor`
/// back as `cursor`.
#[utoipa::path(
    get,
    path = "/flows",
    tag = "flows",
    operation_id = "listFlows",
    params(
        ("limit" = Option<usize>, Query, description = "Page size, 1–500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of flows", body = FlowPageBody),
        (status = 400, description = "An unknown parameter, a limit out of range, or a cursor not issued for this list (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    flows: web::Data<dyn FlowUseCases>,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    let request = query(&req, |q: FlowsQuery| {
        Ok::<_, String>(page(q.limit, q.cursor))
    })?;
    let flows = flows.into_inner();
    let listed = blocking::run(move || flows.list_flows(&principal, request)).await?;
    Ok(HttpResponse::Ok().json(FlowPageBody {
        flows: listed.items.into_iter().map(Into::into).collect(),
        next_cursor: listed.next_cursor,
    }))
}

/// Retrieve a flow's latest version.
#[utoipa::path(
    get,
    path = "/flows/{name}",
    tag = "flows",
    operation_id = "getFlow",
    params(("name" = String, Path, description = "The flow's name", pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The flow's latest version", body = FlowBody),
        (status = 400, description = "A name or version that is not one (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow (or version) in the key's organization, or it was deleted (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    key: BearerKey,
    path: web::Path<String>,
    auth: web::Data<dyn Authenticate>,
    flows: web::Data<dyn FlowUseCases>,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    let name = flow_name(&path)?;
    let flows = flows.into_inner();
    let stored = blocking::run(move || flows.get_flow(&principal, name, None)).await?;
    Ok(HttpResponse::Ok().json(body(stored)))
}

/// Retrieve one version of a flow.
#[utoipa::path(
    get,
    path = "/flows/{name}/versions/{version}",
    tag = "flows",
    operation_id = "getFlowVersion",
    params(
        ("name" = String, Path, description = "The flow's name", pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length = 1, max_length = 128),
        ("version" = i32, Path, description = "The version, from 1", minimum = 1),
    ),
    responses(
        (status = 200, description = "The version", body = FlowBody),
        (status = 400, description = "A name or version that is not one (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow (or version) in the key's organization, or it was deleted (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get_version(
    key: BearerKey,
    path: web::Path<(String, String)>,
    auth: web::Data<dyn Authenticate>,
    flows: web::Data<dyn FlowUseCases>,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    let (name, version) = path.into_inner();
    let name = flow_name(&name)?;
    let version: i32 = version
        .parse()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::malformed("version must be a whole number from 1"))?;
    let flows = flows.into_inner();
    let stored = blocking::run(move || flows.get_flow(&principal, name, Some(version))).await?;
    Ok(HttpResponse::Ok().json(body(stored)))
}

/// Delete a flow.
///
/// It starts no more runs; runs already started go on to their end. Its
/// versions are kept for them, but no longer shown. Storing it again
/// revives it with the next version.
#[utoipa::path(
    delete,
    path = "/flows/{name}",
    tag = "flows",
    operation_id = "deleteFlow",
    params(("name" = String, Path, description = "The flow's name", pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length = 1, max_length = 128)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A name that is not one (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow (or version) in the key's organization, or it was deleted (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin or write (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn delete(
    key: BearerKey,
    path: web::Path<String>,
    auth: web::Data<dyn Authenticate>,
    flows: web::Data<dyn FlowUseCases>,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_write(&principal)?;
    let name = flow_name(&path)?;
    let flows = flows.into_inner();
    blocking::run(move || flows.delete_flow(&principal, name)).await?;
    Ok(HttpResponse::NoContent().finish())
}
