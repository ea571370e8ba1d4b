//! The format of a flow definition: its fields and their types, read from
//! a located value with every error collected, never only the first.

use serde_json::{Map, Value};

use crate::error::{DefinitionError, ErrorCode};
use crate::source::{self, pointer_step, Located};
use crate::{graph, run, schema, template};
use flowexec_domain::entities::MAX_PRIORITY;
use flowexec_domain::{FlowName, TaskName};

/// The longest run a definition may give a task, in seconds (a week).
pub const MAX_TIMEOUT_SECONDS: u64 = 604_800;
/// The most tasks a flow may have.
pub const MAX_TASKS: usize = 2_000;
/// The most errors one answer lists; the last one says how many more.
pub const MAX_ERRORS: usize = 200;

/// A flow definition, as uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDefinition {
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema for the input of a run, if any.
    pub input_schema: Option<Value>,
    pub defaults: TaskDefaults,
    /// In the order written; names are unique and dependencies form no
    /// cycle.
    pub tasks: Vec<TaskDefinition>,
}

/// What every task has unless it says otherwise.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskDefaults {
    /// A retry policy, as the API takes it (`max_attempts`, `backoff`,
    /// `jitter`); checked where runs are created.
    pub retry: Option<Value>,
    pub timeout_seconds: Option<u32>,
    pub priority: Option<i32>,
}

/// One task of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinition {
    pub name: String,
    /// The tasks that must complete first, in the order written.
    pub depends_on: Vec<String>,
    /// A template giving a list: one run of the task per item.
    pub for_each: Option<String>,
    /// The input, its strings templates.
    pub input: Option<Value>,
    pub retry: Option<Value>,
    pub timeout_seconds: Option<u32>,
    pub priority: Option<i32>,
}

const FLOW_FIELDS: &[&str] = &["name", "description", "input_schema", "defaults", "tasks"];
const DEFAULT_FIELDS: &[&str] = &["retry", "timeout_seconds", "priority"];
const TASK_FIELDS: &[&str] = &[
    "name",
    "depends_on",
    "for_each",
    "input",
    "retry",
    "timeout_seconds",
    "priority",
];

/// Reads a definition from its text (YAML or JSON): every error of the
/// format and of the task graph at once, each located.
pub fn parse(text: &str) -> Result<FlowDefinition, Vec<DefinitionError>> {
    parse_located(text).map(|(definition, _)| definition)
}

/// [`parse`], answering also the text as a located JSON value (what the
/// definition is stored and compared as).
pub fn parse_located(text: &str) -> Result<(FlowDefinition, Located), Vec<DefinitionError>> {
    let located = source::parse(text)?;
    let mut reader = Reader {
        located: &located,
        errors: Vec::new(),
    };
    // Read as far as it goes: the graph, templates and schema of what was
    // read are checked even when other parts are wrong.
    let definition = reader.flow();
    let mut errors = reader.errors;
    if let Some(definition) = &definition {
        errors.extend(graph::check(&definition.tasks, &located));
        errors.extend(template::check(definition, &located));
        errors.extend(schema::check(definition, &located));
    }
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - (MAX_ERRORS - 1);
        errors.truncate(MAX_ERRORS - 1);
        errors.push(DefinitionError::new(
            ErrorCode::TooManyErrors,
            "",
            None,
            format!("and {more} more errors"),
        ));
    }
    match definition {
        Some(definition) if errors.is_empty() => Ok((definition, located)),
        _ => Err(errors),
    }
}

struct Reader<'a> {
    located: &'a Located,
    errors: Vec<DefinitionError>,
}

impl Reader<'_> {
    fn error(&mut self, code: ErrorCode, pointer: &str, message: impl Into<String>) {
        let at = match code {
            ErrorCode::UnknownField => self.located.key_at(pointer),
            _ => self.located.value_at(pointer),
        };
        self.errors
            .push(DefinitionError::new(code, pointer, at, message));
    }

    fn flow(&mut self) -> Option<FlowDefinition> {
        let root = self.located.value.clone();
        let fields = self.object(&root, "", FLOW_FIELDS)?;
        let name = self.required_string(&fields, "", "name");
        let name = self.named(name, "", |n| FlowName::parse(n).map(drop));
        let description = self.optional_string(&fields, "", "description");
        let input_schema = match fields.get("input_schema") {
            None | Some(Value::Null) => None,
            Some(schema @ (Value::Object(_) | Value::Bool(_))) => Some(schema.clone()),
            Some(_) => {
                self.error(
                    ErrorCode::WrongType,
                    "/input_schema",
                    "input_schema must be a JSON Schema (an object, or true or false)",
                );
                None
            }
        };
        let defaults = match fields.get("defaults") {
            None | Some(Value::Null) => Some(TaskDefaults::default()),
            Some(value) => {
                self.object(value, "/defaults", DEFAULT_FIELDS)
                    .map(|map| TaskDefaults {
                        retry: self.retry(&map, "/defaults"),
                        timeout_seconds: self.timeout(&map, "/defaults"),
                        priority: self.priority(&map, "/defaults"),
                    })
            }
        };
        let tasks = match fields.get("tasks") {
            Some(Value::Array(items)) if items.len() > MAX_TASKS => {
                self.error(
                    ErrorCode::WrongType,
                    "/tasks",
                    format!("a flow has at most {MAX_TASKS} tasks"),
                );
                Vec::new()
            }
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.task(item, &format!("/tasks/{i}")))
                .collect(),
            Some(Value::Array(_)) => {
                self.error(
                    ErrorCode::WrongType,
                    "/tasks",
                    "a flow needs at least one task",
                );
                Vec::new()
            }
            Some(_) => {
                self.error(
                    ErrorCode::WrongType,
                    "/tasks",
                    "tasks must be a list of tasks",
                );
                Vec::new()
            }
            None => {
                self.error(ErrorCode::MissingField, "", "a flow needs `tasks`");
                Vec::new()
            }
        };
        Some(FlowDefinition {
            name: name.unwrap_or_default(),
            description,
            input_schema,
            defaults: defaults.unwrap_or_default(),
            tasks,
        })
    }

    /// A task as far as it reads (a name it lacks is empty; its errors are
    /// recorded), so that the checks of the others still run.
    fn task(&mut self, value: &Value, pointer: &str) -> TaskDefinition {
        let fields = self.object(value, pointer, TASK_FIELDS);
        let name = fields
            .as_ref()
            .and_then(|map| self.required_string(map, pointer, "name"));
        let name = self.named(name, pointer, |n| TaskName::parse(n).map(drop));
        let fields = fields.unwrap_or_default();
        let depends_on = match fields.get("depends_on") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::String(name) => Some(name.clone()),
                    _ => {
                        self.error(
                            ErrorCode::WrongType,
                            &format!("{pointer}/depends_on/{i}"),
                            "a dependency is the name of a task",
                        );
                        None
                    }
                })
                .collect(),
            Some(_) => {
                self.error(
                    ErrorCode::WrongType,
                    &pointer_step(pointer, "depends_on"),
                    "depends_on must be a list of task names",
                );
                Vec::new()
            }
        };
        let for_each = self.optional_string(&fields, pointer, "for_each");
        let input = fields.get("input").filter(|v| !v.is_null()).cloned();
        let retry = self.retry(&fields, pointer);
        let timeout_seconds = self.timeout(&fields, pointer);
        let priority = self.priority(&fields, pointer);
        TaskDefinition {
            name: name.unwrap_or_default(),
            depends_on,
            for_each,
            input,
            retry,
            timeout_seconds,
            priority,
        }
    }

    /// `value` as an object whose fields are all `known`; each unknown one
    /// is an error of its own.
    fn object(
        &mut self,
        value: &Value,
        pointer: &str,
        known: &[&str],
    ) -> Option<Map<String, Value>> {
        let Value::Object(map) = value else {
            self.error(ErrorCode::WrongType, pointer, "must be a mapping of fields");
            return None;
        };
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            self.error(
                ErrorCode::UnknownField,
                &pointer_step(pointer, key),
                format!(
                    "unknown field `{key}`; the fields here are {}",
                    known.join(", ")
                ),
            );
        }
        Some(map.clone())
    }

    fn required_string(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        field: &str,
    ) -> Option<String> {
        match map.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => {
                self.error(
                    ErrorCode::WrongType,
                    &pointer_step(pointer, field),
                    format!("`{field}` must be a non-empty string"),
                );
                None
            }
            None => {
                self.error(
                    ErrorCode::MissingField,
                    pointer,
                    format!("`{field}` is missing"),
                );
                None
            }
        }
    }

    /// `field` of `map` when it is there and not null, as `take` reads it;
    /// a value `take` refuses is an error ("must be `what`").
    fn optional<T>(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        field: &str,
        what: &str,
        take: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        let value = map.get(field).filter(|v| !v.is_null())?;
        let taken = take(value);
        if taken.is_none() {
            self.error(
                ErrorCode::WrongType,
                &pointer_step(pointer, field),
                format!("`{field}` must be {what}"),
            );
        }
        taken
    }

    fn optional_string(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        field: &str,
    ) -> Option<String> {
        self.optional(map, pointer, field, "a string", |v| {
            v.as_str().map(str::to_owned)
        })
    }

    fn optional_object(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        field: &str,
    ) -> Option<Value> {
        self.optional(map, pointer, field, "a mapping", |v| {
            v.is_object().then(|| v.clone())
        })
    }

    fn timeout(&mut self, map: &Map<String, Value>, pointer: &str) -> Option<u32> {
        let what = format!("a whole number from 1 to {MAX_TIMEOUT_SECONDS}");
        self.optional(map, pointer, "timeout_seconds", &what, |v| {
            v.as_u64()
                .filter(|n| (1..=MAX_TIMEOUT_SECONDS).contains(n))
                .and_then(|n| u32::try_from(n).ok())
        })
    }

    fn priority(&mut self, map: &Map<String, Value>, pointer: &str) -> Option<i32> {
        let what = format!("a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY}");
        self.optional(map, pointer, "priority", &what, |v| {
            v.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| (-MAX_PRIORITY..=MAX_PRIORITY).contains(n))
        })
    }

    /// A `retry` mapping whose policy ([`run::retry_policy`]) holds.
    fn retry(&mut self, map: &Map<String, Value>, pointer: &str) -> Option<Value> {
        let value = self.optional_object(map, pointer, "retry")?;
        match run::retry_policy(&value) {
            Ok(_) => Some(value),
            Err(why) => {
                self.error(
                    ErrorCode::WrongType,
                    &pointer_step(pointer, "retry"),
                    format!("not a retry policy: {why}"),
                );
                None
            }
        }
    }

    /// `name` if `valid` takes it; else an error at `pointer`/name.
    fn named<E: std::fmt::Display>(
        &mut self,
        name: Option<String>,
        pointer: &str,
        valid: impl Fn(String) -> Result<(), E>,
    ) -> Option<String> {
        let name = name?;
        match valid(name.clone()) {
            Ok(()) => Some(name),
            Err(why) => {
                self.error(
                    ErrorCode::WrongType,
                    &pointer_step(pointer, "name"),
                    why.to_string(),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Location;
    use crate::test_support::{assert_placed, at};

    const EXAMPLE: &str = "\
name: nightly-etl
input_schema: {type: object, required: [day]}
defaults: {retry: {max_attempts: 3}, timeout_seconds: 600}
tasks:
  - name: extract
    input: {day: \"{{ flow.input.day }}\"}
  - name: transform
    depends_on: [extract]
    for_each: \"{{ tasks.extract.output.files }}\"
    input: {file: \"{{ item }}\"}
  - name: load
    depends_on: [transform]
    input: {rows: \"{{ tasks.transform.outputs }}\"}
";

    #[test]
    fn the_example_reads_as_written() {
        let flow = parse(EXAMPLE).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(flow.name, "nightly-etl");
        assert_eq!(flow.defaults.timeout_seconds, Some(600));
        assert_eq!(
            flow.defaults.retry,
            Some(serde_json::json!({"max_attempts": 3}))
        );
        let names: Vec<&str> = flow.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["extract", "transform", "load"]);
        assert_eq!(flow.tasks[1].depends_on, ["extract"]);
        assert_eq!(
            flow.tasks[1].for_each.as_deref(),
            Some("{{ tasks.extract.output.files }}")
        );
        assert_eq!(
            flow.input_schema,
            Some(serde_json::json!({"type": "object", "required": ["day"]}))
        );
    }

    #[test]
    fn every_error_comes_at_once_each_at_its_place() {
        let text = "\
name: 7
colour: blue
tasks:
  - name: a
    retries: 3
    timeout_seconds: 0
  - depends_on: a
  - name: b
    priority: high
";
        assert_placed(
            text,
            &[
                (ErrorCode::UnknownField, "/colour", at(2, 1)),
                (ErrorCode::WrongType, "/name", at(1, 7)),
                (ErrorCode::UnknownField, "/tasks/0/retries", at(5, 5)),
                (ErrorCode::WrongType, "/tasks/0/timeout_seconds", at(6, 22)),
                (ErrorCode::MissingField, "/tasks/1", at(7, 5)),
                (ErrorCode::WrongType, "/tasks/1/depends_on", at(7, 17)),
                (ErrorCode::WrongType, "/tasks/2/priority", at(9, 15)),
            ],
        );
    }

    #[test]
    fn names_retry_policies_and_priorities_are_held_to_the_apis_rules() {
        let text = "\
name: bad name
defaults: {retry: {max_attempts: 0}}
tasks:
  - name: \"-x\"
  - name: b
    retry: {max_attempts: 2, tries: 1}
    priority: 2000000
  - name: c
    retry: {max_attempts: 5}
";
        assert_placed(
            text,
            &[
                (ErrorCode::WrongType, "/name", at(1, 7)),
                (ErrorCode::WrongType, "/defaults/retry", at(2, 20)),
                (ErrorCode::WrongType, "/tasks/0/name", at(4, 11)),
                (ErrorCode::WrongType, "/tasks/1/retry", at(6, 13)),
                (ErrorCode::WrongType, "/tasks/1/priority", at(7, 15)),
            ],
        );
    }

    /// The example of docs/flows.md, "Errors".
    #[test]
    fn the_documented_errors_come_together_where_the_docs_say() {
        let text = "\
name: f
tasks:
  - name: a
    depends_on: [b]
  - name: b
    depends_on: [a]
    input: {x: \"{{ tasks.c.output }}\"}
    retries: 3
";
        assert_placed(
            text,
            &[
                (ErrorCode::UnknownField, "/tasks/1/retries", at(8, 5)),
                (ErrorCode::Cycle, "/tasks/0/depends_on", at(4, 5)),
                (ErrorCode::UnknownReference, "/tasks/1/input/x", at(7, 16)),
            ],
        );
        let errors = parse(text).err().unwrap_or_default();
        assert!(
            errors[1].message.ends_with("a → b → a"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn one_wrong_part_hides_no_check_of_the_others() {
        let text = "\
name: 7
input_schema: {type: 12}
defaults: []
tasks:
  - 5
  - depends_on: [3]
  - name: a
    depends_on: [b]
  - name: b
    depends_on: [a]
";
        let errors = parse(text).err().unwrap_or_default();
        let mut got: Vec<(ErrorCode, &str)> = errors
            .iter()
            .map(|e| (e.code, e.pointer.as_str()))
            .collect();
        got.sort_by_key(|e| e.1);
        assert_eq!(
            got,
            [
                (ErrorCode::WrongType, "/defaults"),
                (ErrorCode::InvalidSchema, "/input_schema/type"),
                (ErrorCode::WrongType, "/name"),
                (ErrorCode::WrongType, "/tasks/0"),
                (ErrorCode::MissingField, "/tasks/1"),
                (ErrorCode::WrongType, "/tasks/1/depends_on/0"),
                (ErrorCode::Cycle, "/tasks/2/depends_on"),
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn the_tasks_and_the_errors_listed_are_bounded() {
        let many: String = (0..=MAX_TASKS)
            .map(|i| format!("  - name: t{i}\n"))
            .collect();
        let errors = parse(&format!("name: f\ntasks:\n{many}"))
            .err()
            .unwrap_or_default();
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.code, e.pointer.as_str()))
                .collect::<Vec<_>>(),
            [(ErrorCode::WrongType, "/tasks")]
        );
        let unknown: String = (0..300)
            .map(|i| format!("  - name: t{i}\n    x: 1\n"))
            .collect();
        let errors = parse(&format!("name: f\ntasks:\n{unknown}"))
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), MAX_ERRORS);
        assert_eq!(
            errors.last().map(|e| (e.code, e.message.as_str())),
            Some((ErrorCode::TooManyErrors, "and 101 more errors"))
        );
    }

    #[test]
    fn a_flow_needs_a_name_and_tasks() {
        let errors = parse("description: nothing\n").err().unwrap_or_default();
        let codes: Vec<ErrorCode> = errors.iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            [ErrorCode::MissingField, ErrorCode::MissingField],
            "{errors:?}"
        );
        let errors = parse("name: x\ntasks: []\n").err().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].location,
            Some(Location { line: 2, column: 1 }),
            "an empty list stands where its key does"
        );
    }
}
