//! What a run of a flow does next, decided from what it knows: which tasks
//! are ready (every task they depend on completed), and the input of each
//! run of a ready task — one, or one per item of its `for_each` — rendered
//! from the flow's input and the outputs of the tasks upstream of it, and of
//! no other. The service asks this in the unit of work of the completion
//! that made a task ready, and writes what it answers.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::definition::{FlowDefinition, TaskDefinition};
use crate::graph;
use crate::template::{render, RenderError};

/// The most runs one `for_each` may make.
pub const MAX_ITEMS: usize = 10_000;

/// Where a task of a run stands: the latest attempt of each of its runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// No run of it exists yet.
    NotCreated,
    /// Created, not all finished (queued or running, or retrying).
    Underway,
    /// Every run completed: their outputs, in item order (one for a task
    /// without `for_each`).
    Completed(Vec<Value>),
    /// A run failed with no attempt left.
    Failed,
}

/// The tasks of `flow` to create now: not created, and every task they
/// depend on completed; in the order written.
pub fn ready<'f>(
    flow: &'f FlowDefinition,
    progress: &BTreeMap<String, Progress>,
) -> Vec<&'f TaskDefinition> {
    let state = |name: &str| progress.get(name).unwrap_or(&Progress::NotCreated);
    flow.tasks
        .iter()
        .filter(|task| *state(&task.name) == Progress::NotCreated)
        .filter(|task| {
            task.depends_on
                .iter()
                .all(|up| matches!(state(up), Progress::Completed(_)))
        })
        .collect()
}

/// Why a ready task's runs could not be made: the task fails with this
/// error (`{"code": "template_error", …}`), never runs with a guess.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    pub message: String,
    /// Where in the definition's task (a JSON pointer: `/for_each`,
    /// `/input/…`).
    pub pointer: String,
}

impl PlanError {
    /// The error a task failed by this carries.
    pub fn to_error(&self) -> Value {
        json!({"code": "template_error", "pointer": self.pointer, "message": self.message})
    }
}

/// One run of a task to create: its input, and for a `for_each` task the
/// item's position.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub iteration: Option<usize>,
    pub input: Option<Value>,
}

/// The runs of `task`, ready, in `flow`, given the run's input and the
/// outputs of the completed tasks (`progress`): one, or one per item of
/// its `for_each` (in item order, at most [`MAX_ITEMS`]).
pub fn plan_runs(
    flow: &FlowDefinition,
    task: &TaskDefinition,
    flow_input: &Value,
    progress: &BTreeMap<String, Progress>,
) -> Result<Vec<PlannedRun>, PlanError> {
    let context = context_for(flow, task, flow_input, progress);
    let input = |context: &Value| -> Result<Option<Value>, PlanError> {
        task.input
            .as_ref()
            .map(|template| render(template, context).map_err(|e| at("/input", e)))
            .transpose()
    };
    let Some(for_each) = &task.for_each else {
        return Ok(vec![PlannedRun {
            iteration: None,
            input: input(&context)?,
        }]);
    };
    let items =
        render(&Value::String(for_each.clone()), &context).map_err(|e| at("/for_each", e))?;
    let Value::Array(items) = items else {
        return Err(PlanError {
            message: format!("for_each gave {}, not a list", kind(&items)),
            pointer: "/for_each".to_owned(),
        });
    };
    if items.len() > MAX_ITEMS {
        return Err(PlanError {
            message: format!(
                "for_each gave {} items; a task runs at most {MAX_ITEMS} times",
                items.len()
            ),
            pointer: "/for_each".to_owned(),
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let mut context = context.clone();
            if let Value::Object(map) = &mut context {
                map.insert("item".to_owned(), item);
                map.insert("index".to_owned(), Value::from(index));
            }
            Ok(PlannedRun {
                iteration: Some(index),
                input: input(&context)?,
            })
        })
        .collect()
}

fn at(prefix: &str, error: RenderError) -> PlanError {
    PlanError {
        message: error.message,
        pointer: format!("{prefix}{}", error.pointer),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What `task`'s templates see: the run's input, and the outputs of the
/// completed tasks upstream of it — of no other, whatever has completed.
pub fn context_for(
    flow: &FlowDefinition,
    task: &TaskDefinition,
    flow_input: &Value,
    progress: &BTreeMap<String, Progress>,
) -> Value {
    let upstream = graph::upstream(&flow.tasks, task);
    let mut tasks = Map::new();
    for other in flow
        .tasks
        .iter()
        .filter(|t| upstream.contains(t.name.as_str()))
    {
        if let Some(Progress::Completed(outputs)) = progress.get(&other.name) {
            let seen = if other.for_each.is_some() {
                json!({"outputs": outputs})
            } else {
                json!({"output": outputs.first().cloned().unwrap_or(Value::Null)})
            };
            tasks.insert(other.name.clone(), seen);
        }
    }
    json!({"flow": {"input": flow_input}, "tasks": tasks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse;

    fn flow(text: &str) -> FlowDefinition {
        parse(text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn progress(entries: &[(&str, Progress)]) -> BTreeMap<String, Progress> {
        entries
            .iter()
            .map(|(name, p)| ((*name).to_owned(), p.clone()))
            .collect()
    }

    const DIAMOND: &str = "\
name: d
tasks:
  - name: a
    input: {n: \"{{ flow.input.n }}\"}
  - name: b
    depends_on: [a]
    input: {from_a: \"{{ tasks.a.output.v }}\"}
  - name: c
    depends_on: [a]
  - name: d
    depends_on: [b, c]
    input: {a: \"{{ tasks.a.output.v }}\", b: \"{{ tasks.b.output }}\"}
";

    #[test]
    fn a_task_is_ready_once_every_task_it_depends_on_completed() {
        let flow = flow(DIAMOND);
        let names = |p: &BTreeMap<String, Progress>| -> Vec<String> {
            ready(&flow, p).iter().map(|t| t.name.clone()).collect()
        };
        assert_eq!(names(&progress(&[])), ["a"]);
        assert_eq!(
            names(&progress(&[("a", Progress::Underway)])),
            Vec::<String>::new()
        );
        let a_done = ("a", Progress::Completed(vec![json!({"v": 1})]));
        assert_eq!(names(&progress(std::slice::from_ref(&a_done))), ["b", "c"]);
        assert_eq!(
            names(&progress(&[
                a_done.clone(),
                ("b", Progress::Completed(vec![json!(2)])),
                ("c", Progress::Underway)
            ])),
            Vec::<String>::new()
        );
        assert_eq!(
            names(&progress(&[
                a_done.clone(),
                ("b", Progress::Completed(vec![json!(2)])),
                ("c", Progress::Completed(vec![Value::Null]))
            ])),
            ["d"]
        );
        // A failed task stops what depends on it; an independent branch goes on.
        assert_eq!(
            names(&progress(&[
                a_done,
                ("b", Progress::Failed),
                ("c", Progress::Underway)
            ])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_run_sees_the_outputs_of_its_upstream_tasks_and_of_no_other() {
        let flow = flow(DIAMOND);
        let done = progress(&[
            ("a", Progress::Completed(vec![json!({"v": 1})])),
            ("b", Progress::Completed(vec![json!([2])])),
            ("c", Progress::Completed(vec![json!("secret")])),
        ]);
        let b = &flow.tasks[1];
        assert_eq!(
            context_for(&flow, b, &json!({"n": 5}), &done),
            json!({"flow": {"input": {"n": 5}}, "tasks": {"a": {"output": {"v": 1}}}})
        );
        let d = &flow.tasks[3];
        assert_eq!(
            plan_runs(&flow, d, &json!({"n": 5}), &done),
            Ok(vec![PlannedRun {
                iteration: None,
                input: Some(json!({"a": 1, "b": [2]}))
            }])
        );
    }

    #[test]
    fn a_for_each_task_runs_once_per_item_in_order() {
        let flow = flow(
            "\
name: loop
tasks:
  - name: list
  - name: each
    depends_on: [list]
    for_each: \"{{ tasks.list.output.files }}\"
    input: {file: \"{{ item }}\", at: \"{{ index }}\"}
  - name: after
    depends_on: [each]
    input: {all: \"{{ tasks.each.outputs }}\"}
",
        );
        let listed = progress(&[(
            "list",
            Progress::Completed(vec![json!({"files": ["x", "y"]})]),
        )]);
        assert_eq!(
            plan_runs(&flow, &flow.tasks[1], &Value::Null, &listed),
            Ok(vec![
                PlannedRun {
                    iteration: Some(0),
                    input: Some(json!({"file": "x", "at": 0}))
                },
                PlannedRun {
                    iteration: Some(1),
                    input: Some(json!({"file": "y", "at": 1}))
                },
            ])
        );
        let each_done = progress(&[
            (
                "list",
                Progress::Completed(vec![json!({"files": ["x", "y"]})]),
            ),
            ("each", Progress::Completed(vec![json!(1), json!(2)])),
        ]);
        assert_eq!(
            plan_runs(&flow, &flow.tasks[2], &Value::Null, &each_done),
            Ok(vec![PlannedRun {
                iteration: None,
                input: Some(json!({"all": [1, 2]}))
            }])
        );
        let not_a_list = progress(&[("list", Progress::Completed(vec![json!({"files": "x"})]))]);
        assert_eq!(
            plan_runs(&flow, &flow.tasks[1], &Value::Null, &not_a_list).map_err(|e| e.pointer),
            Err("/for_each".to_owned())
        );
        let too_many: Vec<Value> = (0..=MAX_ITEMS).map(Value::from).collect();
        let many = progress(&[(
            "list",
            Progress::Completed(vec![json!({"files": too_many})]),
        )]);
        let refused = plan_runs(&flow, &flow.tasks[1], &Value::Null, &many);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.message.contains("at most 10000")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_missing_value_fails_the_task_with_a_template_error() {
        let flow = flow(DIAMOND);
        let done = progress(&[("a", Progress::Completed(vec![json!({"w": 1})]))]);
        let refused = plan_runs(&flow, &flow.tasks[1], &json!({}), &done);
        let error = refused.err().map(|e| e.to_error());
        assert_eq!(
            error.as_ref().map(|e| (&e["code"], &e["pointer"])),
            Some((&json!("template_error"), &json!("/input/from_a"))),
            "{error:?}"
        );
    }
}
