//! Authentication: the `BearerKey` extractor takes the key from
//! `Authorization: Bearer <key>` (401 when absent or of another scheme);
//! [`authenticate`] checks it with the service before anything else of the
//! request is read, and [`as_caller`] runs a bodiless operation as the
//! caller. A verdict the service already knows (a malformed key, a key seen
//! moments ago) costs no trip to the blocking pool at all.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{dev::Payload, FromRequest, HttpRequest};
use flowexec_domain::Principal;
use flowexec_service::Authenticate;

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

fn record(principal: &Principal) {
    tracing::Span::current().record(
        "organization.id",
        tracing::field::display(principal.organization_id),
    );
}

/// The caller's principal: from the service's cached verdict, or else
/// looked up on the blocking pool. An invalid key is a 401.
pub(crate) async fn authenticate(
    auth: Arc<dyn Authenticate>,
    key: BearerKey,
) -> Result<Principal, ApiError> {
    let principal = match auth.authenticate_cached(&key.0) {
        Some(known) => known?,
        None => blocking::run(move || auth.authenticate(&key.0)).await?,
    };
    record(&principal);
    Ok(principal)
}

/// Authenticates `key` and runs `work` as its principal on the blocking
/// pool: one trip there in all, even when the key must be looked up. An
/// invalid key is a 401 before `work` runs.
pub(crate) async fn as_caller<T, F>(
    auth: Arc<dyn Authenticate>,
    key: BearerKey,
    work: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Principal) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let known = match auth.authenticate_cached(&key.0) {
        Some(known) => Some(known?),
        None => None,
    };
    blocking::run(move || {
        let principal = match known {
            Some(principal) => principal,
            None => auth.authenticate(&key.0)?,
        };
        record(&principal);
        work(&principal)
    })
    .await
}
