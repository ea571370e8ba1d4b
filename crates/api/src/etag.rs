//! Entity tags of task executions: the row's version as a strong `ETag`
//! (`"3"`), and `If-Match` read into the domain's precondition.

use actix_web::http::header::{HeaderMap, IF_MATCH};
use flowexec_domain::IfMatch;

/// The `ETag` of a task execution at `version`.
pub(crate) fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The request's `If-Match` precondition (RFC 9110 §13.1.1): absent or `*`
/// is [`IfMatch::Any`] (the handlers only reach it for a row that exists);
/// otherwise the listed tags, compared strongly: a weak tag (`W/"3"`), one
/// this server never issued or text that is no entity tag at all matches
/// nothing, so such a precondition fails (412) rather than the request
/// being malformed — and never before a missing id is a 404.
pub(crate) fn if_match(headers: &HeaderMap) -> IfMatch {
    let values: Vec<&[u8]> = headers.get_all(IF_MATCH).map(|v| v.as_bytes()).collect();
    if values.is_empty() {
        return IfMatch::Any;
    }
    let mut versions = Vec::new();
    for value in values {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for tag in value.split(',').map(str::trim) {
            if tag == "*" {
                return IfMatch::Any;
            }
            // Exactly the tags issued: `"N"`, N a positive decimal integer
            // without sign or leading zero (so `"03"` is not `"3"`).
            let version = tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| {
                    t.bytes().all(|b| b.is_ascii_digit()) && !t.starts_with('0') && !t.is_empty()
                })
                .and_then(|t| t.parse::<i64>().ok());
            versions.extend(version);
        }
    }
    IfMatch::Versions(versions)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn parse(values: &[&str]) -> IfMatch {
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
        assert_eq!(parse(&[]), IfMatch::Any);
        assert_eq!(parse(&["*"]), IfMatch::Any);
        assert_eq!(parse(&[&etag(3)]), IfMatch::Versions(vec![3]));
        assert_eq!(
            parse(&["\"3\", W/\"4\"", "\"abc\"", "\"5\""]),
            IfMatch::Versions(vec![3, 5])
        );
        assert_eq!(
            parse(&["3", "\"3", "\"03\"", "\"+3\"", "\"-1\""]),
            IfMatch::Versions(vec![])
        );
    }
}
