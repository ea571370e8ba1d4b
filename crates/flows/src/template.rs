//! Input templates (minijinja): checked at upload — syntax, and every name
//! they use: `flow.input…`, `tasks.NAME.output…` (`.outputs…` of a
//! `for_each` task) of a task upstream of the one that uses it, `item` and
//! `index` in a task with `for_each` — and rendered when a task is created.
//!
//! Only `{{ path }}` expressions are accepted: a dotted path with `[n]`
//! indexes, no statements, operators, literals or filters, and at most
//! [`MAX_TEMPLATE_CHARS`] a string. A tenant's template then costs what
//! reading its data costs, never a loop or an allocation of its choosing. A string that is exactly one `{{ … }}` renders to the
//! value of its expression with its JSON type (a number stays a number, a
//! list a list); text around it makes a string. A name that does not
//! resolve is an error, never a silent null.

use std::collections::{HashMap, HashSet};

use minijinja::{Environment, UndefinedBehavior, Value as TemplateValue};
use serde_json::{Number, Value};

use crate::definition::{FlowDefinition, TaskDefinition};
use crate::error::{DefinitionError, ErrorCode};
use crate::graph;
use crate::source::{pointer_step, Located};

/// The longest template string, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 4096;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Whether `text` has template syntax at all.
fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Why `text` is not in the accepted subset: statements or comments, an
/// expression that is not a path, or too long.
fn outside_subset(text: &str) -> Option<String> {
    if text.chars().count() > MAX_TEMPLATE_CHARS {
        return Some(format!(
            "a template is at most {MAX_TEMPLATE_CHARS} characters"
        ));
    }
    if text.contains("{%") || text.contains("{#") {
        return Some(
            "only {{ … }} expressions are supported, no {% … %} statements or {# … #} comments"
                .to_owned(),
        );
    }
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Some("a {{ is not closed by }}".to_owned());
        };
        let inner = after[..end].trim();
        if !is_path(inner) {
            return Some(format!(
                "`{{{{ {inner} }}}}`: an expression is a path such as tasks.NAME.output.field or item[0] \
                 (names of letters, digits and _; no operators, literals, filters or whitespace control)"
            ));
        }
        rest = &after[end + 2..];
    }
    None
}

/// `name(.name | [digits])*`, a name being `[A-Za-z_][A-Za-z0-9_]*`.
fn is_path(text: &str) -> bool {
    fn name(s: &str) -> Option<&str> {
        let end = s
            .char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(s.len(), |(i, _)| i);
        (end > 0).then(|| &s[end..])
    }
    let Some(mut rest) = name(text) else {
        return false;
    };
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            match name(after) {
                Some(next) => rest = next,
                None => return false,
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let digits = after.chars().take_while(char::is_ascii_digit).count();
            match after[digits..].strip_prefix(']') {
                Some(next) if digits > 0 => rest = next,
                _ => return false,
            }
        } else {
            return false;
        }
    }
    true
}

/// The expression of a string that is exactly one `{{ … }}`.
fn sole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

/// Every template error of `flow`'s tasks, located.
pub fn check(flow: &FlowDefinition, located: &Located) -> Vec<DefinitionError> {
    let env = environment();
    let tasks: HashMap<&str, &TaskDefinition> =
        flow.tasks.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut errors = Vec::new();
    for (i, task) in flow.tasks.iter().enumerate() {
        let scope = Scope {
            task,
            tasks: &tasks,
            upstream: graph::upstream(&flow.tasks, task),
        };
        if let Some(for_each) = &task.for_each {
            let pointer = format!("/tasks/{i}/for_each");
            if sole_expression(for_each).is_none() {
                errors.push(DefinitionError::new(
                    ErrorCode::TemplateSyntax,
                    &pointer,
                    located.value_at(&pointer),
                    "for_each must be one expression giving a list, such as \"{{ tasks.NAME.output.items }}\"",
                ));
            } else {
                scope.check_text(&env, for_each, false, &pointer, located, &mut errors);
            }
        }
        if let Some(input) = &task.input {
            let pointer = format!("/tasks/{i}/input");
            scope.check_value(&env, input, &pointer, located, &mut errors);
        }
    }
    errors
}

struct Scope<'a> {
    task: &'a TaskDefinition,
    tasks: &'a HashMap<&'a str, &'a TaskDefinition>,
    upstream: HashSet<&'a str>,
}

impl Scope<'_> {
    fn check_value(
        &self,
        env: &Environment<'static>,
        value: &Value,
        pointer: &str,
        located: &Located,
        errors: &mut Vec<DefinitionError>,
    ) {
        match value {
            Value::String(text) => {
                let loop_names = self.task.for_each.is_some();
                self.check_text(env, text, loop_names, pointer, located, errors);
            }
            Value::Array(items) => {
                for (k, item) in items.iter().enumerate() {
                    let inner = pointer_step(pointer, &k.to_string());
                    self.check_value(env, item, &inner, located, errors);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let inner = pointer_step(pointer, key);
                    self.check_value(env, item, &inner, located, errors);
                }
            }
            _ => {}
        }
    }

    fn check_text(
        &self,
        env: &Environment<'static>,
        text: &str,
        loop_names: bool,
        pointer: &str,
        located: &Located,
        errors: &mut Vec<DefinitionError>,
    ) {
        if !is_template(text) {
            return;
        }
        let at = located.value_at(pointer);
        if let Some(problem) = outside_subset(text) {
            errors.push(DefinitionError::new(
                ErrorCode::TemplateSyntax,
                pointer,
                at,
                problem,
            ));
            return;
        }
        let used = match env.template_from_str(text) {
            Ok(template) => template.undeclared_variables(true),
            Err(error) => {
                let place = error
                    .range()
                    .map(|r| format!(" at character {}", r.start + 1))
                    .unwrap_or_default();
                errors.push(DefinitionError::new(
                    ErrorCode::TemplateSyntax,
                    pointer,
                    at,
                    format!(
                        "template error{place}: {}",
                        error.detail().unwrap_or("syntax error")
                    ),
                ));
                return;
            }
        };
        let mut used: Vec<String> = used.into_iter().collect();
        used.sort();
        for name in used {
            if let Some(problem) = self.refuse(&name, loop_names) {
                errors.push(DefinitionError::new(problem.0, pointer, at, problem.1));
            }
        }
    }

    /// Why `name` (dotted, as minijinja reports it) may not be used here.
    fn refuse(&self, name: &str, loop_names: bool) -> Option<(ErrorCode, String)> {
        let unknown = |message: String| Some((ErrorCode::UnknownReference, message));
        let mut parts = name.split('.');
        let root = parts.next().unwrap_or_default();
        match root {
            "flow" => match parts.next() {
                Some("input") => None,
                _ => unknown(format!("`{name}`: a flow's templates see flow.input")),
            },
            "tasks" => {
                let Some(task) = parts.next() else {
                    return unknown("name the task: tasks.NAME.output (.outputs of a for_each task)".to_owned());
                };
                let Some(referred) = self.tasks.get(task) else {
                    return unknown(format!("`{name}`: `{task}` is no task of this flow"));
                };
                let field = if referred.for_each.is_some() { "outputs" } else { "output" };
                if parts.next() != Some(field) {
                    return unknown(format!("`{name}`: use tasks.{task}.{field}"));
                }
                if !self.upstream.contains(task) {
                    return Some((
                        ErrorCode::NotUpstream,
                        format!(
                            "`{name}`: `{task}` is not upstream of `{}` (add it to depends_on, directly or through another task)",
                            self.task.name
                        ),
                    ));
                }
                None
            }
            "item" | "index" if loop_names => None,
            "item" | "index" => unknown(format!(
                "`{root}` exists only in the input of a task with for_each"
            )),
            other => unknown(format!(
                "unknown name `{other}`: templates see flow.input, tasks, and item and index in a for_each task"
            )),
        }
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// Where in the rendered value (a JSON pointer).
    pub pointer: String,
    pub message: String,
}

/// `template` (a task's input, or a for_each) rendered against `context`
/// (`{"flow": {"input": …}, "tasks": {NAME: {"output": …}}, "item": …}`).
pub fn render(template: &Value, context: &Value) -> Result<Value, RenderError> {
    let env = environment();
    let context = to_template(context, "")?;
    render_at(&env, template, &context, "")
}

fn render_at(
    env: &Environment<'static>,
    template: &Value,
    context: &TemplateValue,
    pointer: &str,
) -> Result<Value, RenderError> {
    let failed = |message: String| RenderError {
        pointer: pointer.to_owned(),
        message,
    };
    match template {
        Value::String(text) if is_template(text) => {
            if let Some(expression) = sole_expression(text) {
                let value = env
                    .compile_expression(expression)
                    .and_then(|compiled| compiled.eval(context))
                    .map_err(|e| failed(e.to_string()))?;
                if value.is_undefined() {
                    return Err(failed(format!("`{}` is undefined", expression.trim())));
                }
                serde_json::to_value(&value).map_err(|e| failed(e.to_string()))
            } else {
                env.render_str(text, context)
                    .map(Value::String)
                    .map_err(|e| failed(e.to_string()))
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(k, item)| render_at(env, item, context, &pointer_step(pointer, &k.to_string())))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(key, item)| {
                render_at(env, item, context, &pointer_step(pointer, key)).map(|v| (key.clone(), v))
            })
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// A JSON value as minijinja's, number by number (serde_json's exact
/// numbers would otherwise reach minijinja as a private map); a number
/// minijinja cannot hold exactly is refused, never rounded or nulled.
fn to_template(value: &Value, pointer: &str) -> Result<TemplateValue, RenderError> {
    Ok(match value {
        Value::Null => TemplateValue::from(()),
        Value::Bool(b) => TemplateValue::from(*b),
        Value::Number(n) => number(n).ok_or_else(|| RenderError {
            pointer: pointer.to_owned(),
            message: format!("the number {n} is beyond what a template can use"),
        })?,
        Value::String(s) => TemplateValue::from(s.as_str()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(k, item)| to_template(item, &pointer_step(pointer, &k.to_string())))
            .collect::<Result<TemplateValue, _>>()?,
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.as_str(), to_template(v, &pointer_step(pointer, k))?)))
            .collect::<Result<Vec<_>, RenderError>>()?
            .into_iter()
            .collect::<TemplateValue>(),
    })
}

/// A whole number that fits 128 bits exactly, or a finite float.
fn number(n: &Number) -> Option<TemplateValue> {
    if let Some(i) = n.as_i64() {
        return Some(TemplateValue::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(TemplateValue::from(u));
    }
    let text = n.to_string();
    if let Ok(i) = text.parse::<i128>() {
        return Some(TemplateValue::from(i));
    }
    if let Ok(u) = text.parse::<u128>() {
        return Some(TemplateValue::from(u));
    }
    n.as_f64()
        .filter(|f| f.is_finite() && !text.chars().all(|c| c.is_ascii_digit() || c == '-'))
        .map(TemplateValue::from)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::render;
    use crate::definition::parse;
    use crate::error::ErrorCode;
    use crate::source::Location;

    use crate::test_support::placed as errors;

    #[test]
    fn every_name_a_template_uses_is_checked() {
        let text = "\
name: f
tasks:
  - name: a
    input: {x: \"{{ flow.input.x }}\", y: \"{{ item }}\"}
  - name: b
    depends_on: [a]
    for_each: \"{{ tasks.a.output.files }}\"
    input: {f: \"{{ item }} of {{ index }}\", c: \"{{ tasks.c.output }}\", z: \"{{ nowhere }}\"}
  - name: c
    input: {t: \"{{ tasks.b.outputs }} {{ tasks.missing.output }}\", bad: \"{{ tasks.a.output\"}
";
        let got = errors(text);
        let at = |line, column| Some(Location { line, column });
        let expected: Vec<(ErrorCode, String, Option<Location>)> = vec![
            (
                ErrorCode::UnknownReference,
                "/tasks/0/input/y".into(),
                at(4, 41),
            ),
            (ErrorCode::NotUpstream, "/tasks/1/input/c".into(), at(8, 48)),
            (
                ErrorCode::UnknownReference,
                "/tasks/1/input/z".into(),
                at(8, 75),
            ),
            (
                ErrorCode::TemplateSyntax,
                "/tasks/2/input/bad".into(),
                at(10, 73),
            ),
            (
                ErrorCode::NotUpstream,
                "/tasks/2/input/t".into(),
                at(10, 16),
            ),
            (
                ErrorCode::UnknownReference,
                "/tasks/2/input/t".into(),
                at(10, 16),
            ),
        ];
        let mut got_sorted = got.clone();
        got_sorted.sort_by(|a, b| a.1.cmp(&b.1));
        let mut expected_sorted = expected;
        expected_sorted.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(got_sorted, expected_sorted, "{got:#?}");
    }

    #[test]
    fn only_paths_are_accepted_and_references_name_what_exists() {
        let refused = [
            "{% for i in range(9) %}x{% endfor %}",
            "{# note #}",
            "{{ flow.input.s | indent(1000000000000) }}",
            "{{- flow.input.day -}}",
            "{{ flow.input.a ~ flow.input.b }}",
            "{{ [flow.input.missing] }}",
            "{{ debug() }}",
            "{{ tasks['a'].output }}",
            "{{ flow.input.day",
        ];
        let long = format!("{{{{ flow.input.{} }}}}", "a".repeat(5000));
        for template in refused.iter().copied().chain([long.as_str()]) {
            let text = format!(
                "name: f\ntasks:\n  - name: a\n  - name: b\n    depends_on: [a]\n    input: {{v: {}}}\n",
                serde_json::to_string(template).unwrap_or_default()
            );
            let got = errors(&text);
            assert_eq!(
                got.iter().map(|e| (e.0, e.1.as_str())).collect::<Vec<_>>(),
                [(ErrorCode::TemplateSyntax, "/tasks/1/input/v")],
                "{template}"
            );
        }
        let text = "\
name: f
tasks:
  - name: a
    for_each: \"{{ flow.input.list }}\"
  - name: b
    depends_on: [a]
    input:
      fine: \"{{ tasks.a.outputs[0].x }} {{ flow.input.list[2] }}\"
      typo: \"{{ flow.inptu.x }}\"
      bare: \"{{ tasks.a }}\"
      field: \"{{ tasks.a.output }}\"
";
        let got = errors(text);
        assert_eq!(
            got.iter().map(|e| (e.0, e.1.as_str())).collect::<Vec<_>>(),
            [
                (ErrorCode::UnknownReference, "/tasks/1/input/bare"),
                (ErrorCode::UnknownReference, "/tasks/1/input/field"),
                (ErrorCode::UnknownReference, "/tasks/1/input/typo"),
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn a_for_each_is_one_expression() {
        let got = errors("name: f\ntasks:\n  - name: a\n    for_each: \"files: {{ x }}\"\n");
        assert_eq!(
            got.iter().map(|e| (e.0, e.1.as_str())).collect::<Vec<_>>(),
            [(ErrorCode::TemplateSyntax, "/tasks/0/for_each")]
        );
    }

    #[test]
    fn a_sole_expression_keeps_its_type_and_text_around_makes_a_string() {
        let context = json!({
            "flow": {"input": {"n": 3, "big": 12345678901234567_u64, "cfg": {"a": [1, 2]}}},
            "tasks": {"extract": {"output": {"files": ["x", "y"], "ratio": 0.5}}},
            "item": "x", "index": 0
        });
        let template = json!({
            "n": "{{ flow.input.n }}",
            "big": "{{ flow.input.big }}",
            "cfg": "{{ flow.input.cfg }}",
            "files": " {{ tasks.extract.output.files }} ",
            "ratio": "{{ tasks.extract.output.ratio }}",
            "text": "file {{ item }} #{{ index }}",
            "plain": "no template",
            "nested": [{"i": "{{ index }}"}, 7, null]
        });
        let rendered = render(&template, &context).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            rendered,
            json!({
                "n": 3, "big": 12345678901234567_u64, "cfg": {"a": [1, 2]},
                "files": ["x", "y"], "ratio": 0.5,
                "text": "file x #0", "plain": "no template",
                "nested": [{"i": 0}, 7, null]
            })
        );
    }

    #[test]
    fn numbers_pass_exactly_or_not_at_all() {
        let context: serde_json::Value = serde_json::from_str(
            r#"{"flow": {"input": {"max": 18446744073709551615, "huge": 170141183460469231731687303715884105727,
                "neg": -9223372036854775809, "half": 0.5, "beyond": 1e400, "wide": 340282366920938463463374607431768211456}}}"#,
        )
        .unwrap_or_default();
        let keep = |path: &str| render(&json!(format!("{{{{ flow.input.{path} }}}}")), &context);
        // Every number of the context must be usable, so the context with
        // an unusable one is refused as a whole, where it stands.
        assert_eq!(
            keep("max").err().map(|e| e.pointer),
            Some("/flow/input/beyond".to_owned())
        );
        let mut usable = context.clone();
        if let Some(input) = usable["flow"]["input"].as_object_mut() {
            input.remove("beyond");
            input.remove("wide");
        }
        let keep = |path: &str| render(&json!(format!("{{{{ flow.input.{path} }}}}")), &usable);
        for path in ["max", "huge", "neg", "half"] {
            assert_eq!(
                keep(path).map(|v| v.to_string()),
                Ok(usable["flow"]["input"][path].to_string()),
                "{path}"
            );
        }
    }

    /// The worked example of docs/flows.md.
    #[test]
    fn the_documented_example_renders_as_the_docs_say() {
        let text = "\
name: nightly-etl
description: Extract a day's files, transform each, load the rows.
input_schema: {type: object, required: [day], properties: {day: {type: string}}}
defaults: {retry: {max_attempts: 3}, timeout_seconds: 600}
tasks:
  - name: extract
    input: {day: \"{{ flow.input.day }}\"}
  - name: transform
    depends_on: [extract]
    for_each: \"{{ tasks.extract.output.files }}\"
    input: {file: \"{{ item }}\", position: \"{{ index }}\"}
  - name: load
    depends_on: [transform]
    input: {rows: \"{{ tasks.transform.outputs }}\", day: \"day {{ flow.input.day }}\"}
";
        let flow = parse(text).unwrap_or_else(|e| panic!("{e:?}"));
        let input = |i: usize| flow.tasks[i].input.clone().unwrap_or_default();
        let flow_input = json!({"day": "2026-11-29"});
        let extract = render(&input(0), &json!({"flow": {"input": flow_input}}));
        assert_eq!(extract, Ok(json!({"day": "2026-11-29"})));
        let upstream = json!({"flow": {"input": flow_input},
            "tasks": {"extract": {"output": {"files": ["a.csv", "b.csv"]}}}});
        let items = render(
            &json!(flow.tasks[1].for_each.clone().unwrap_or_default()),
            &upstream,
        );
        assert_eq!(items, Ok(json!(["a.csv", "b.csv"])));
        let second = render(
            &input(1),
            &json!({"flow": {"input": flow_input}, "item": "b.csv", "index": 1}),
        );
        assert_eq!(second, Ok(json!({"file": "b.csv", "position": 1})));
        let load = render(
            &input(2),
            &json!({"flow": {"input": flow_input},
                "tasks": {"transform": {"outputs": [{"rows": 1}, {"rows": 2}]}}}),
        );
        assert_eq!(
            load,
            Ok(json!({"rows": [{"rows": 1}, {"rows": 2}], "day": "day 2026-11-29"}))
        );
    }

    #[test]
    fn an_undefined_name_is_an_error_never_a_null() {
        let context = json!({"flow": {"input": {}}, "tasks": {"a": {"output": {"x": 1}}}});
        for template in [
            json!({"v": "{{ flow.input.missing }}"}),
            json!({"v": "{{ tasks.a.output.nope }}"}),
            json!({"v": "text {{ tasks.b.output }}"}),
        ] {
            let error = render(&template, &context).err();
            assert_eq!(
                error.as_ref().map(|e| e.pointer.as_str()),
                Some("/v"),
                "{template} rendered: {error:?}"
            );
        }
    }
}
