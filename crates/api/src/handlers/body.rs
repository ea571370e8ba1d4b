//! Field-by-field parsing of JSON bodies into domain commands, so that a 422
//! lists every invalid field at once.

use flowexec_domain::{FlowName, NewFlowExecution, NewTask, TaskName};
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};

/// Collects field errors while a body is read.
#[derive(Default)]
struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn object<'a>(
        &mut self,
        field: &str,
        value: &'a Value,
        allowed: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Some(object) = value.as_object() else {
            self.error(field, "must be a JSON object");
            return None;
        };
        for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.error(join(field, key), "is not a known field");
        }
        Some(object)
    }

    fn string<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<&'a str> {
        match object.get(key) {
            None | Some(Value::Null) => {
                self.error(join(parent, key), "is required");
                None
            }
            Some(Value::String(text)) => Some(text),
            Some(_) => {
                self.error(join(parent, key), "must be a string");
                None
            }
        }
    }

    fn parsed<T, E: std::fmt::Display>(
        &mut self,
        field: String,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|e| self.error(field, e.to_string())).ok()
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// JSON `null` and an absent field both mean "no input". The body was
/// already put in canonical form when it was read (`json_body`).
fn optional_json(object: &Map<String, Value>, key: &str) -> Option<Value> {
    object.get(key).filter(|v| !v.is_null()).cloned()
}

/// `{"flow_name", "input"?, "tasks": [{"task_name", "input"?}]}`
pub(crate) fn new_flow_execution(body: &Value) -> Result<NewFlowExecution, ApiError> {
    let mut fields = Fields::default();
    let Some(object) = fields.object("", body, &["flow_name", "input", "tasks"]) else {
        return Err(ApiError::validation(fields.errors));
    };
    let flow_name = fields
        .string(object, "", "flow_name")
        .and_then(|name| fields.parsed("flow_name".into(), FlowName::parse(name)));

    let mut tasks = Vec::new();
    match object.get("tasks") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("tasks[{i}]");
                let Some(task) = fields.object(&path, item, &["task_name", "input"]) else {
                    continue;
                };
                if let Some(name) = fields.string(task, &path, "task_name").and_then(|name| {
                    fields.parsed(format!("{path}.task_name"), TaskName::parse(name))
                }) {
                    tasks.push(NewTask {
                        task_name: name,
                        input: optional_json(task, "input"),
                    });
                }
            }
        }
        None | Some(Value::Null) => fields.error("tasks", "is required"),
        Some(_) => fields.error("tasks", "must be an array"),
    }

    match (flow_name, fields.errors.is_empty()) {
        (Some(flow_name), true) => {
            NewFlowExecution::new(flow_name, optional_json(object, "input"), tasks).map_err(|e| {
                ApiError::validation(vec![FieldError {
                    field: "tasks".into(),
                    message: e.message().to_owned(),
                }])
            })
        }
        _ => Err(ApiError::validation(fields.errors)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_errors(body: Value) -> Vec<String> {
        match new_flow_execution(&body) {
            Ok(_) => vec![],
            Err(e) => e.problem().errors.into_iter().map(|f| f.field).collect(),
        }
    }

    #[test]
    fn a_valid_body_parses_with_null_input_meaning_none() {
        let parsed = new_flow_execution(&json!({
            "flow_name": "etl", "input": null,
            "tasks": [{"task_name": "a", "input": {"k": 1}}, {"task_name": "b"}]
        }));
        let parsed = parsed.ok();
        assert!(parsed
            .as_ref()
            .is_some_and(|p| p.input().is_none() && p.tasks().len() == 2));
        assert!(parsed.is_some_and(|p| p.tasks()[0].input == Some(json!({"k": 1}))));
    }

    #[test]
    fn every_invalid_field_is_listed_at_once() {
        let fields = field_errors(json!({
            "flow_name": "bad name", "extra": 1,
            "tasks": [{"task_name": ""}, 7, {"task_name": 3}, {"task_name": "ok", "nope": true}]
        }));
        assert_eq!(
            fields,
            vec![
                "extra",
                "flow_name",
                "tasks[0].task_name",
                "tasks[1]",
                "tasks[2].task_name",
                "tasks[3].nope"
            ]
        );
    }

    #[test]
    fn missing_fields_and_a_non_object_body_are_reported() {
        assert_eq!(field_errors(json!({})), vec!["flow_name", "tasks"]);
        assert_eq!(field_errors(json!([1])), vec![""]);
        assert_eq!(
            field_errors(json!({"flow_name": "f", "tasks": {}})),
            vec!["tasks"]
        );
    }

    #[test]
    fn duplicate_and_missing_tasks_are_reported_on_tasks() {
        assert_eq!(
            field_errors(json!({"flow_name": "f", "tasks": []})),
            vec!["tasks"]
        );
        assert_eq!(
            field_errors(
                json!({"flow_name": "f", "tasks": [{"task_name": "a"}, {"task_name": "a"}]})
            ),
            vec!["tasks"]
        );
    }
}
