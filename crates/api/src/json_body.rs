//! Reading a JSON request body: only after the caller is authenticated,
//! within a deadline, up to a size limit, parsed strictly, and put in the
//! form every store keeps.
//!
//! In order: `Content-Type` must be JSON (415); a declared length over the
//! limit is refused before a byte is read, and so is a body that grows past
//! it (413); the whole body must arrive within the body timeout (408, and
//! the connection is closed); a shutdown stops the wait (503). The text must
//! be JSON with no key twice in one object (400, naming the key); then
//! [`flowexec_domain::json::canonicalize`] refuses what no store can keep
//! (422 per field, or 413 when writing numbers out in full would pass the
//! limit).

use std::collections::HashSet;
use std::fmt;

use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::{web, HttpMessage, HttpRequest};
use flowexec_domain::json::{canonicalize, JsonRejection};
use futures_util::StreamExt;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use crate::error::{ApiError, ErrorKind, FieldError};
use crate::ApiSettings;

/// The body of `req` as a canonical JSON value.
pub(crate) async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    settings: &ApiSettings,
) -> Result<Value, ApiError> {
    check_content_type(req)?;
    let limit = settings.max_body_bytes;
    let body = read_bytes(req, payload, settings).await?;
    let value = parse_strict(&body)
        .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    // Written out in full, the numbers may take the body up to the limit.
    canonicalize(value, limit.saturating_sub(body.len())).map_err(|rejection| match rejection {
        JsonRejection::TooLarge => ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the body's numbers, written out in full, would make it larger than the limit of {limit} bytes"
            ),
        ),
        JsonRejection::Invalid(problems) => ApiError::validation(
            problems
                .into_iter()
                .map(|p| FieldError {
                    field: p.path.trim_start_matches('.').to_owned(),
                    message: p.message,
                    ..FieldError::default()
                })
                .collect(),
        ),
    })
}

/// The body's bytes, whatever its type: within the size limit and the
/// body timeout, or the error that says which was broken.
pub(crate) async fn read_bytes(
    req: &HttpRequest,
    mut payload: web::Payload,
    settings: &ApiSettings,
) -> Result<web::BytesMut, ApiError> {
    let limit = settings.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    let deadline = tokio::time::Instant::now() + settings.body_timeout;
    let mut body = web::BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    loop {
        let chunk = tokio::select! {
            chunk = payload.next() => chunk,
            () = tokio::time::sleep_until(deadline) => {
                return Err(ApiError::new(
                    ErrorKind::RequestTimeout,
                    format!(
                        "the body did not arrive within {} s",
                        settings.body_timeout.as_secs_f64()
                    ),
                ));
            }
            () = settings.shutdown.triggered() => return Err(ApiError::shutting_down()),
        };
        match chunk {
            None => break,
            Some(Ok(bytes)) if body.len() + bytes.len() > limit => return Err(too_large(limit)),
            Some(Ok(bytes)) => body.extend_from_slice(&bytes),
            Some(Err(error)) => {
                return Err(ApiError::malformed(format!(
                    "the body could not be read: {error}"
                )))
            }
        }
    }
    Ok(body)
}

/// An optional body: `None` when the request carries none (no
/// `Content-Length`, or 0, and no `Transfer-Encoding`), else as [`read`].
pub(crate) async fn read_optional(
    req: &HttpRequest,
    payload: web::Payload,
    settings: &ApiSettings,
) -> Result<Option<Value>, ApiError> {
    let headers = req.headers();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.unwrap_or(0) == 0 && !headers.contains_key(TRANSFER_ENCODING) {
        return Ok(None);
    }
    read(req, payload, settings).await.map(Some)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("the body is larger than the limit of {limit} bytes"),
    )
}

/// `application/json`, or any `application/…+json`, with any parameters.
fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
    });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "the body must be JSON, sent with Content-Type: application/json",
        ))
    }
}

/// Parses JSON, refusing an object that names a key twice (where parsers
/// disagree on which value counts). Numbers keep every digit.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut deserializer)?;
    deserializer.end()?;
    serde_json::from_slice(bytes)
}

/// Walks a JSON document without keeping it, failing on a repeated key.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_TOKEN {
                // serde_json hands an exact number over as a one-entry map
                // under this key, its text passed as an owned string; an
                // object that names the key itself would be read as a number.
                if map.next_value_seed(NumberText)? {
                    continue;
                }
                return Err(A::Error::custom(format!(
                    "the key {NUMBER_TOKEN:?} is reserved"
                )));
            }
            if seen.contains(&key) {
                return Err(A::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value_seed(self)?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// The key under which serde_json (with `arbitrary_precision`) passes a
/// number through `deserialize_any`.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Whether a value under [`NUMBER_TOKEN`] is serde_json's own number text
/// (an owned string) rather than a value written in the document.
struct NumberText;

impl<'de> DeserializeSeed<'de> for NumberText {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NumberText {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_string<E>(self, _: String) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named() {
        for (text, key) in [
            (r#"{"a": 1, "a": 2}"#, "\"a\""),
            (r#"{"x": [{"k": 1, "j": 2, "k": 3}]}"#, "\"k\""),
            (r#"{"a": {"b": 1}, "c": {"b": 2}, "a": 3}"#, "\"a\""),
        ] {
            let error = parse_strict(text.as_bytes()).map(|_| ()).err();
            assert!(
                error.is_some_and(|e| e.to_string().contains(&format!("duplicate key {key}"))),
                "{text}"
            );
        }
    }

    #[test]
    fn the_same_key_in_different_objects_and_every_number_are_kept() {
        let text = r#"{"a": {"b": 1}, "c": {"b": [123456789012345678901234567890, 1e400, -0.0]}}"#;
        let value = parse_strict(text.as_bytes()).map(|v| v.to_string()).ok();
        assert_eq!(
            value.as_deref(),
            Some(r#"{"a":{"b":1},"c":{"b":[123456789012345678901234567890,1e+400,-0.0]}}"#)
        );
    }

    #[test]
    fn an_object_naming_serde_jsons_number_key_is_refused_not_read_as_a_number() {
        for text in [
            r#"{"$serde_json::private::Number": "5"}"#,
            r#"{"\u0024serde_json::private::Number": "5"}"#,
            r#"{"a": [{"$serde_json::private::Number": 5}]}"#,
            r#"{"x": 1, "$serde_json::private::Number": "5"}"#,
        ] {
            let error = parse_strict(text.as_bytes()).map(|v| v.to_string()).err();
            assert!(
                error.is_some_and(|e| e.to_string().contains("is reserved")),
                "{text}"
            );
        }
        // Numbers themselves pass through that key, and are kept.
        assert_eq!(
            parse_strict(b"[5, 1.50, {\"n\": -7}]")
                .map(|v| v.to_string())
                .ok(),
            Some("[5,1.50,{\"n\":-7}]".to_owned())
        );
    }

    #[test]
    fn trailing_text_and_bad_syntax_are_refused() {
        for text in ["{} {}", "{", "[1,]", "{\"a\" 1}", "nul", ""] {
            assert!(parse_strict(text.as_bytes()).is_err(), "{text:?}");
        }
    }
}
