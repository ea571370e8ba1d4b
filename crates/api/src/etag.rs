//! Entity tags of task executions: the row's version as a strong `ETag`
//! (`"3"`), and `If-Match` read into the domain's precondition.

use actix_web::http::header::{HeaderMap, IF_MATCH};
use flowexec_domain::IfMatch;

use crate::error::ApiError;

/// The `ETag` of a task execution at `version`.
pub(crate) fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The request's `If-Match` precondition (RFC 9110 §13.1.1): absent or `*`
/// is [`IfMatch::Any`] (the handlers only reach it for a row that exists);
/// otherwise the listed tags, compared strongly: a weak tag (`W/"3"`) or
/// one this server never issued matches nothing. A header that is not a
/// list of entity tags is a 400.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<IfMatch, ApiError> {
    let values: Vec<&str> = headers
        .get_all(IF_MATCH)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ApiError::malformed("If-Match must be ASCII entity tags"))
        })
        .collect::<Result<_, _>>()?;
    if values.is_empty() {
        return Ok(IfMatch::Any);
    }
    let mut versions = Vec::new();
    for tag in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if tag.is_empty() {
            continue;
        }
        if tag == "*" {
            return Ok(IfMatch::Any);
        }
        let (weak, quoted) = match tag.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let opaque = quoted
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.contains('"'))
            .ok_or_else(|| {
                ApiError::malformed(format!(
                    "If-Match must list entity tags such as \"3\"; found {tag}"
                ))
            })?;
        if let (false, Ok(version)) = (weak, opaque.parse::<i64>()) {
            versions.push(version);
        }
    }
    Ok(IfMatch::Versions(versions))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn parse(values: &[&str]) -> Result<IfMatch, ApiError> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                IF_MATCH,
                HeaderValue::from_str(value).unwrap_or_else(|_| unreachable!()),
            );
        }
        if_match(&headers)
    }

    #[test]
    fn tags_are_read_strongly_and_star_is_any() {
        assert_eq!(parse(&[]).ok(), Some(IfMatch::Any));
        assert_eq!(parse(&["*"]).ok(), Some(IfMatch::Any));
        assert_eq!(parse(&[&etag(3)]).ok(), Some(IfMatch::Versions(vec![3])));
        assert_eq!(
            parse(&["\"3\", W/\"4\"", "\"abc\"", "\"5\""]).ok(),
            Some(IfMatch::Versions(vec![3, 5]))
        );
        assert!(parse(&["3"]).is_err());
        assert!(parse(&["\"3"]).is_err());
    }
}
