//! Authentication: the `BearerKey` extractor takes the key from
//! `Authorization: Bearer <key>` (401 when absent or of another scheme);
//! `as_caller` checks it with the service and runs the operation as the
//! caller, both in one trip to the blocking pool.

use std::future::{ready, Ready};

use actix_web::http::header::AUTHORIZATION;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use flowexec_domain::Principal;
use flowexec_service::ExecutionService;

use crate::blocking;
use crate::error::ApiError;

/// The bearer key of a request, not yet checked.
pub struct BearerKey(String);

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerKey(<redacted>)")
    }
}

fn bearer_key(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
        .filter(|key| !key.is_empty())
}

impl FromRequest for BearerKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(bearer_key(req).map(Self).ok_or_else(ApiError::unauthorized))
    }
}

/// Authenticates `key` and runs `work` as its principal, on the blocking
/// pool. An invalid key is a 401 before `work` runs.
pub(crate) async fn as_caller<T, F>(
    service: web::Data<dyn ExecutionService>,
    key: BearerKey,
    work: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&dyn ExecutionService, &Principal) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let service = service.into_inner();
    blocking::run(move || {
        let principal = service.authenticate(&key.0)?;
        tracing::Span::current().record(
            "organization.id",
            tracing::field::display(principal.organization_id),
        );
        work(&*service, &principal)
    })
    .await
}
