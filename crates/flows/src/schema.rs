//! A flow's `input_schema`: checked at upload to be a JSON Schema (against
//! its meta-schema, every error at once, and compiled, so that a `$ref`
//! that cannot be resolved is refused then, not when a run starts); a run's
//! input validated against it.
//!
//! jsonschema is built without its network and file retrievers, and is
//! used offline besides (a refusing retriever; a `$schema` other than the
//! drafts it carries is refused before anything would resolve it): a
//! remote `$ref` is an error, never a request the server makes, even if a
//! build someday enabled the retrievers.

use serde_json::Value;

use crate::definition::FlowDefinition;
use crate::error::{DefinitionError, ErrorCode};
use crate::source::Located;

/// Every error of the flow's `input_schema`, located.
pub fn check(flow: &FlowDefinition, located: &Located) -> Vec<DefinitionError> {
    let Some(schema) = &flow.input_schema else {
        return Vec::new();
    };
    let error = |pointer: String, message: String| {
        let at = located
            .value_at(&pointer)
            .or_else(|| located.value_at("/input_schema"));
        DefinitionError::new(ErrorCode::InvalidSchema, &pointer, at, message)
    };
    if let Some(named) = schema.get("$schema") {
        let known = named
            .as_str()
            .map(|uri| uri.trim_end_matches('#').replacen("https://", "http://", 1))
            .is_some_and(|uri| KNOWN_DRAFTS.contains(&uri.as_str()));
        if !known {
            return vec![error(
                "/input_schema/$schema".to_owned(),
                format!(
                    "`$schema` must name one of the drafts {}",
                    KNOWN_DRAFTS.join(", ")
                ),
            )];
        }
    }
    let meta = match jsonschema::meta::validator_for(schema) {
        Ok(meta) => meta,
        Err(refused) => {
            return vec![error(
                "/input_schema".to_owned(),
                format!("not a JSON Schema this server knows: {refused}"),
            )]
        }
    };
    let errors: Vec<DefinitionError> = meta
        .iter_errors(schema)
        .map(|e| {
            error(
                format!("/input_schema{}", e.instance_path().as_str()),
                format!("not a valid JSON Schema: {e}"),
            )
        })
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    match compile(schema) {
        Ok(_) => Vec::new(),
        Err(refused) => vec![error(
            "/input_schema".to_owned(),
            format!("the schema cannot be used: {refused}"),
        )],
    }
}

/// The meta-schemas jsonschema carries (`$schema`, `http:` and without a
/// trailing `#`).
const KNOWN_DRAFTS: &[&str] = &[
    "http://json-schema.org/draft-04/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft/2020-12/schema",
];

/// `schema` compiled offline: a reference outside it is an error.
fn compile(schema: &Value) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options().offline().build(schema)
}

/// Why `input` does not match `schema`: one line a mismatch, each with the
/// JSON pointer of the input's part it is about (none: it matches).
pub fn mismatches(schema: &Value, input: &Value) -> Vec<(String, String)> {
    match compile(schema) {
        Ok(validator) => validator
            .iter_errors(input)
            .map(|e| (e.instance_path().as_str().to_owned(), e.to_string()))
            .collect(),
        Err(refused) => vec![(
            String::new(),
            format!("the flow's input_schema cannot be used: {refused}"),
        )],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::mismatches;
    use crate::definition::parse;
    use crate::error::ErrorCode;
    use crate::source::Location;

    #[test]
    fn a_schema_that_is_not_one_is_refused_where_it_is_wrong() {
        let text = "\
name: f
input_schema:
  type: object
  required: day
  properties:
    day: {type: date}
tasks:
  - name: a
";
        let errors = parse(text).err().unwrap_or_default();
        let got: Vec<(ErrorCode, &str, Option<Location>)> = errors
            .iter()
            .map(|e| (e.code, e.pointer.as_str(), e.location))
            .collect();
        let mut got = got;
        got.sort_by_key(|e| e.1);
        assert_eq!(
            got,
            [
                (
                    ErrorCode::InvalidSchema,
                    "/input_schema/properties/day/type",
                    Some(Location {
                        line: 6,
                        column: 17
                    })
                ),
                (
                    ErrorCode::InvalidSchema,
                    "/input_schema/required",
                    Some(Location {
                        line: 4,
                        column: 13
                    })
                ),
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn a_remote_reference_is_refused_not_fetched() -> std::io::Result<()> {
        // A listener the schema points at: nothing may connect to it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/schema.json", listener.local_addr()?);
        for schema in [
            format!("{{$ref: \"{url}\"}}"),
            format!("{{$schema: \"{url}\"}}"),
            format!("{{properties: {{a: {{$ref: \"{url}#/x\"}}}}}}"),
        ] {
            let text = format!("name: f\ninput_schema: {schema}\ntasks:\n  - name: a\n");
            let errors = parse(&text).err().unwrap_or_default();
            assert_eq!(
                errors.iter().map(|e| e.code).collect::<Vec<_>>(),
                [ErrorCode::InvalidSchema],
                "{errors:#?}"
            );
        }
        match listener.accept() {
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            other => panic!("the schema's URL was fetched: {other:?}"),
        }
    }

    #[test]
    fn a_schema_may_name_a_known_draft() {
        for draft in [
            "https://json-schema.org/draft/2020-12/schema",
            "http://json-schema.org/draft-07/schema#",
        ] {
            let text = format!(
                "name: f\ninput_schema: {{$schema: \"{draft}\", type: object}}\ntasks:\n  - name: a\n"
            );
            assert!(parse(&text).is_ok(), "{draft}: {:?}", parse(&text).err());
        }
    }

    #[test]
    fn an_input_is_checked_against_the_schema() {
        let schema = json!({"type": "object", "required": ["day"],
            "properties": {"day": {"type": "string"}, "n": {"type": "integer"}}});
        assert!(mismatches(&schema, &json!({"day": "2026-11-29"})).is_empty());
        let wrong = mismatches(&schema, &json!({"n": "x"}));
        let mut pointers: Vec<&str> = wrong.iter().map(|(p, _)| p.as_str()).collect();
        pointers.sort_unstable();
        assert_eq!(pointers, ["", "/n"], "{wrong:?}");
    }
}
