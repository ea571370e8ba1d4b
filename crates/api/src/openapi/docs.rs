//! The API reference at `/docs/`: Swagger UI, whose assets are compiled
//! into the binary (utoipa-swagger-ui, vendored), reading `/openapi.json`.
//! The page loads nothing from any other host, which its
//! Content-Security-Policy enforces.

use std::sync::{Arc, LazyLock};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

use crate::error::ApiError;

/// Swagger UI's settings: our document, and no online validator (which
/// would send it to another host).
static SWAGGER: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        utoipa_swagger_ui::Config::new(["/openapi.json"])
            .validator_url("none")
            .try_it_out_enabled(true)
            .persist_authorization(false),
    )
});

/// Everything the page loads comes from this server.
const DOCS_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// `/docs`: the reference lives at `/docs/`, whose assets are relative.
pub(crate) async fn docs_root() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Swagger UI's page, with a pointer to the document for a browser that
/// runs no JavaScript.
const DOCS_INDEX: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>flowexec API reference</title>
<link rel="stylesheet" type="text/css" href="./swagger-ui.css">
<link rel="stylesheet" type="text/css" href="./index.css">
</head>
<body>
<noscript><p>This reference needs JavaScript. The API is described by
<a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p></noscript>
<div id="swagger-ui"></div>
<script src="./swagger-ui-bundle.js" charset="utf-8"></script>
<script src="./swagger-ui-standalone-preset.js" charset="utf-8"></script>
<script src="./swagger-initializer.js" charset="utf-8"></script>
</body>
</html>
"#;

/// `/docs/{file}`: a file of Swagger UI.
pub(crate) async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    if file.is_empty() || file.as_str() == "index.html" {
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_POLICY),
            ))
            .body(DOCS_INDEX));
    }
    match utoipa_swagger_ui::serve(&file, SWAGGER.clone()) {
        Ok(Some(found)) => Ok(HttpResponse::Ok()
            .content_type(found.content_type)
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_POLICY),
            ))
            .body(found.bytes.into_owned())),
        Ok(None) => Err(ApiError::not_found()),
        Err(error) => Err(ApiError::internal(&error)),
    }
}
