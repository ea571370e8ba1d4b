//! The `Authenticated` extractor: a bearer API key, checked by the service.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use flowexec_domain::Principal;
use flowexec_service::ExecutionService;

use crate::blocking;
use crate::error::ApiError;

/// The caller, authenticated by `Authorization: Bearer <key>`. A missing
/// header, another scheme, or a key the service rejects is a 401.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Principal);

fn bearer_key(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
        .filter(|key| !key.is_empty())
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = bearer_key(req);
        let service = req.app_data::<web::Data<dyn ExecutionService>>().cloned();
        Box::pin(async move {
            let key = key.ok_or_else(ApiError::unauthorized)?;
            let service = service.ok_or_else(|| ApiError::internal(&"no service configured"))?;
            let principal = blocking::run(move || service.authenticate(&key)).await?;
            tracing::Span::current().record(
                "organization.id",
                tracing::field::display(principal.organization_id),
            );
            Ok(Self(principal))
        })
    }
}
