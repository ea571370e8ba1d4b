use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use flowexec_domain::ApiKeyId;
use flowexec_service::{require_admin, Authenticate, KeyUseCases};
use flowexec_wire::{ApiKeyBody, ApiKeyListBody, IssuedApiKeyBody, NewApiKeyBody};

use super::parse_id;
use crate::auth::{as_caller, authenticate, BearerKey};
use crate::error::{ApiError, Problem};
use crate::{blocking, json_body, request_schema, ApiSettings};

/// Issue an API key for the key's organization.
///
/// The key is in the answer, once: only its SHA-256 is stored.
#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "api keys",
    operation_id = "createApiKey",
    request_body = NewApiKeyBody,
    responses(
        (status = 201, description = "The key, shown this once", body = IssuedApiKeyBody,
            headers(("Location" = String, description = "Path of the new key"))),
        (status = 403, description = "The key's role is not admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    req: HttpRequest,
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    keys: web::Data<dyn KeyUseCases>,
    settings: web::Data<ApiSettings>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = authenticate(auth.into_inner(), key).await?;
    require_admin(&principal)?;
    let body = json_body::read(&req, payload, &settings).await?;
    let (role, actor) = request_schema::command(body, NewApiKeyBody::into_command)?;
    let keys = keys.into_inner();
    let issued = blocking::run(move || keys.create_key(&principal, role, actor)).await?;
    let body = IssuedApiKeyBody {
        id: issued.id.into_uuid(),
        organization_id: issued.organization_id.into_uuid(),
        role: issued.role.into(),
        actor: issued.actor.to_string(),
        created_at: issued.created_at,
        key: issued.plaintext,
    };
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/api-keys/{}", body.id)))
        .json(body))
}

/// List the organization's API keys.
///
/// Oldest first, revoked ones included; never a secret or a hash.
#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "api keys",
    operation_id = "listApiKeys",
    responses(
        (status = 200, description = "The keys", body = ApiKeyListBody),
        (status = 403, description = "The key's role is not admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    keys: web::Data<dyn KeyUseCases>,
) -> Result<web::Json<ApiKeyListBody>, ApiError> {
    let keys = keys.into_inner();
    let all = as_caller(auth.into_inner(), key, move |principal| {
        Ok(keys.list_keys(principal)?)
    })
    .await?;
    Ok(web::Json(ApiKeyListBody {
        api_keys: all.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke an API key.
///
/// Refused from then on: at once by this server, within
/// `auth.key_cache_secs` by others. Revoking a revoked key answers it as
/// it is. An organization's last active admin key cannot be revoked (409).
#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    tag = "api keys",
    operation_id = "revokeApiKey",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKeyBody),
        (status = 400, description = "The id is not a UUID (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is not admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in the key's organization (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is the organization's last active admin key (`last_admin_key`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn revoke(
    key: BearerKey,
    auth: web::Data<dyn Authenticate>,
    keys: web::Data<dyn KeyUseCases>,
    id: web::Path<String>,
) -> Result<web::Json<ApiKeyBody>, ApiError> {
    let id = parse_id::<ApiKeyId>(&id);
    let keys = keys.into_inner();
    let revoked = as_caller(auth.into_inner(), key, move |principal| {
        require_admin(principal)?;
        Ok(keys.revoke_key(principal, id?)?)
    })
    .await?;
    Ok(web::Json(revoked.into()))
}
