//! Request bodies are checked against the schema the OpenAPI document
//! publishes for them — the same schema, not a second description of it —
//! and every violation is listed in one 422. A body that passes is then
//! read into its typed wire struct, which cannot fail on structure.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use jsonschema::error::{TypeKind, ValidationError, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::Validator;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, FieldError};
use crate::openapi::ApiDoc;

/// Validators by schema name, compiled on first use.
static VALIDATORS: LazyLock<RwLock<HashMap<String, Arc<Validator>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

fn validator(name: &str) -> Result<Arc<Validator>, ApiError> {
    if let Some(found) = VALIDATORS.read().ok().and_then(|v| v.get(name).cloned()) {
        return Ok(found);
    }
    let document = serde_json::to_value(ApiDoc::openapi())
        .map_err(|e| ApiError::internal(&format!("the OpenAPI document: {e}")))?;
    // The named schema, resolving its references within the document.
    let schema = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": document["components"],
    });
    let compiled = Arc::new(
        // Formats are assertions here (`uuid`, `date-time`): a body the
        // schema accepts must read into the typed struct.
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| ApiError::internal(&format!("the schema of {name}: {e}")))?,
    );
    if let Ok(mut all) = VALIDATORS.write() {
        all.insert(name.to_owned(), compiled.clone());
    }
    Ok(compiled)
}

/// `tasks[0].task_name` for the path `/tasks/0/task_name`, then `child`.
fn field(location: &jsonschema::paths::Location, child: Option<&str>) -> String {
    let mut out = String::new();
    for segment in location {
        match segment {
            LocationSegment::Property(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&name);
            }
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if let Some(child) = child {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(child);
    }
    out
}

fn type_name(kind: &TypeKind) -> String {
    let article = |t: String| {
        let an = matches!(t.chars().next(), Some('a' | 'e' | 'i' | 'o' | 'u'));
        format!("{} {t}", if an { "an" } else { "a" })
    };
    match kind {
        TypeKind::Single(t) => article(t.to_string()),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| article(t.to_string()))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// The violations of `value` against the schema named `name`, as field
/// errors.
fn violations(name: &str, value: &Value) -> Result<Vec<FieldError>, ApiError> {
    let validator = validator(name)?;
    let mut errors = Vec::new();
    for error in validator.iter_errors(value) {
        describe(&error, &mut errors);
    }
    Ok(errors)
}

/// One violation as field errors. A value that matches none of a `oneOf`'s
/// forms is described by the form it comes closest to — one of its own type
/// before one that refuses the type outright (an object is closer to an
/// object form than to `null`), then the fewest violations, then the first
/// — rather than by the whole value.
fn describe(error: &ValidationError<'_>, errors: &mut Vec<FieldError>) {
    let at = error.instance_path();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for key in unexpected {
                errors.push(FieldError {
                    field: field(at, Some(key)),
                    message: "is not a known field".into(),
                    ..FieldError::default()
                });
            }
        }
        ValidationErrorKind::Required { property } => errors.push(FieldError {
            field: field(at, property.as_str()),
            message: "is required".into(),
            ..FieldError::default()
        }),
        ValidationErrorKind::OneOfNotValid { context } if !context.is_empty() => {
            let refuses_the_type = |branch: &Vec<ValidationError<'_>>| {
                matches!(branch.as_slice(), [only] if matches!(only.kind(), ValidationErrorKind::Type { .. })
                    && only.instance_path() == at)
            };
            let closest = context
                .iter()
                .min_by_key(|branch| (refuses_the_type(branch), branch.len()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            for error in closest {
                describe(error, errors);
            }
        }
        kind => {
            let message = match kind {
                ValidationErrorKind::Type { kind } => format!("must be {}", type_name(kind)),
                ValidationErrorKind::MinItems { limit } => {
                    format!("must have at least {limit} item(s)")
                }
                ValidationErrorKind::MaxItems { limit } => {
                    format!("must have at most {limit} items")
                }
                ValidationErrorKind::MinLength { limit } => {
                    format!("must be at least {limit} character(s) long")
                }
                ValidationErrorKind::MaxLength { limit } => {
                    format!("must be at most {limit} characters long")
                }
                ValidationErrorKind::Pattern { pattern } => format!("must match {pattern}"),
                ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
                ValidationErrorKind::Format { format } => format!("must be a valid {format}"),
                ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
                ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
                // Not `error.to_string()`: it quotes the value, which may be
                // as long as the body.
                other => format!("violates the schema's `{}`", other.keyword()),
            };
            errors.push(FieldError {
                field: field(at, None),
                message,
                ..FieldError::default()
            });
        }
    }
}

/// `value` as a `T`, if it matches `T`'s published schema; else a 422
/// listing every violation.
#[cfg(test)]
pub(crate) fn parse<T: DeserializeOwned + ToSchema>(value: Value) -> Result<T, ApiError> {
    command(value, Ok)
}

/// `value` read as a `T` and converted into a command by `convert`, which
/// checks what the schema cannot say. Every problem is listed in one 422:
/// the schema's violations and, whenever the body still reads as a `T`
/// (e.g. only a length or a pattern was violated), `convert`'s errors, which
/// take the place of the schema's on the same field.
pub(crate) fn command<T, C>(
    value: Value,
    convert: impl FnOnce(T) -> Result<C, Vec<FieldError>>,
) -> Result<C, ApiError>
where
    T: DeserializeOwned + ToSchema,
{
    let mut errors = violations(&T::name(), &value)?;
    let body = match serde_json::from_value::<T>(value) {
        Ok(body) => body,
        Err(_) if !errors.is_empty() => return Err(ApiError::validation(errors)),
        // The schema and the type disagree: a bug, not the client's.
        Err(e) => {
            return Err(ApiError::internal(&format!(
                "a body that matched its schema did not parse: {e}"
            )))
        }
    };
    match convert(body) {
        Ok(command) if errors.is_empty() => Ok(command),
        Ok(_) => Err(ApiError::validation(errors)),
        Err(more) => {
            // The command's own message on a field says more than the
            // schema's (e.g. why `output` is refused, not that it is not a
            // field of the closest form).
            errors.retain(|known| !more.iter().any(|e| e.field == known.field));
            errors.extend(more);
            Err(ApiError::validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use flowexec_wire::NewFlowExecutionBody;

    use super::*;

    fn fields(value: Value) -> Vec<(String, String)> {
        match parse::<NewFlowExecutionBody>(value) {
            Ok(_) => vec![],
            Err(e) => e
                .problem()
                .errors
                .into_iter()
                .map(|f| (f.field, f.message))
                .collect(),
        }
    }

    #[test]
    fn every_violation_of_the_published_schema_is_listed_at_once() {
        let mut got = fields(json!({
            "flow_name": "bad name", "extra": 1,
            "tasks": [{"task_name": ""}, 7, {"task_name": 3}, {"task_name": "ok", "nope": true}, {}]
        }));
        got.sort();
        let names: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "extra",
                "flow_name",
                "tasks[0].task_name",
                "tasks[0].task_name",
                "tasks[1]",
                "tasks[2].task_name",
                "tasks[3].nope",
                "tasks[4].task_name",
            ],
            "{got:?}"
        );
        assert!(
            got.contains(&("tasks[1]".into(), "must be an object".into())),
            "{got:?}"
        );
        assert!(got.contains(&("extra".into(), "is not a known field".into())));
        assert!(got.contains(&("tasks[4].task_name".into(), "is required".into())));
    }

    #[test]
    fn missing_fields_a_wrong_type_and_limits_are_named() {
        assert_eq!(
            fields(json!({})),
            [
                ("flow_name".to_owned(), "is required".to_owned()),
                ("tasks".to_owned(), "is required".to_owned())
            ]
        );
        assert_eq!(
            fields(json!({"flow_name": "f", "tasks": {}})),
            [("tasks".to_owned(), "must be an array".to_owned())]
        );
        assert_eq!(
            fields(json!({"flow_name": "f", "tasks": []})),
            [(
                "tasks".to_owned(),
                "must have at least 1 item(s)".to_owned()
            )]
        );
        assert!(fields(json!([1])).iter().any(|(f, _)| f.is_empty()));
    }

    #[test]
    fn a_body_that_matches_is_read_into_its_type() {
        let body: Result<NewFlowExecutionBody, _> =
            parse(json!({"flow_name": "f", "input": [1], "tasks": [{"task_name": "t"}]}));
        assert!(body.is_ok_and(|b| b.tasks[0].task_name == "t" && b.input == Some(json!([1]))));
    }
}
