//! The task graph of a definition: names unique, dependencies known, no
//! cycle (each one reported once, naming its tasks in order).

use std::collections::{HashMap, HashSet};

use crate::definition::TaskDefinition;
use crate::error::{DefinitionError, ErrorCode};
use crate::source::Located;

/// Every error of the graph of `tasks`, located in `located`.
pub fn check(tasks: &[TaskDefinition], located: &Located) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    // A task without a name (an error already) is in no one's way.
    for (i, task) in tasks.iter().enumerate().filter(|(_, t)| !t.name.is_empty()) {
        if let Some(first) = index.get(task.name.as_str()) {
            let pointer = format!("/tasks/{i}/name");
            errors.push(DefinitionError::new(
                ErrorCode::DuplicateTask,
                &pointer,
                located.value_at(&pointer),
                format!(
                    "a second task named `{}` (the first is tasks[{first}])",
                    task.name
                ),
            ));
        } else {
            index.insert(&task.name, i);
        }
    }
    for (i, task) in tasks.iter().enumerate() {
        for (d, dependency) in task.depends_on.iter().enumerate() {
            if !index.contains_key(dependency.as_str()) {
                let pointer = format!("/tasks/{i}/depends_on/{d}");
                errors.push(DefinitionError::new(
                    ErrorCode::UnknownDependency,
                    &pointer,
                    located.value_at(&pointer),
                    format!(
                        "`{}` depends on `{dependency}`, which is no task of this flow",
                        task.name
                    ),
                ));
            }
        }
    }
    for cycle in cycles(tasks, &index) {
        let first = cycle[0];
        let names: Vec<&str> = cycle.iter().map(|&i| tasks[i].name.as_str()).collect();
        let pointer = format!("/tasks/{first}/depends_on");
        errors.push(DefinitionError::new(
            ErrorCode::Cycle,
            &pointer,
            located.key_at(&pointer),
            format!(
                "these tasks depend on each other in a circle: {} → {}",
                names.join(" → "),
                names[0]
            ),
        ));
    }
    errors
}

/// The names of the tasks upstream of `task` in `tasks` (through
/// `depends_on`, transitively; a name that is no task is kept, its own
/// dependencies being none).
pub fn upstream<'t>(tasks: &'t [TaskDefinition], task: &'t TaskDefinition) -> HashSet<&'t str> {
    let by_name: HashMap<&str, &TaskDefinition> =
        tasks.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut seen = HashSet::new();
    let mut todo: Vec<&str> = task.depends_on.iter().map(String::as_str).collect();
    while let Some(name) = todo.pop() {
        if seen.insert(name) {
            if let Some(up) = by_name.get(name) {
                todo.extend(up.depends_on.iter().map(String::as_str));
            }
        }
    }
    seen
}

/// `name` and the names of the tasks downstream of it in `tasks` (that
/// depend on it, transitively).
pub fn downstream<'t>(tasks: &'t [TaskDefinition], name: &'t str) -> HashSet<&'t str> {
    let mut seen = HashSet::from([name]);
    let mut grew = true;
    while grew {
        grew = false;
        for task in tasks {
            if !seen.contains(task.name.as_str())
                && task.depends_on.iter().any(|up| seen.contains(up.as_str()))
            {
                seen.insert(task.name.as_str());
                grew = true;
            }
        }
    }
    seen
}

/// The cycles of the graph, each once: task indices, each depending on the
/// next and the last on the first, starting at the one written first.
fn cycles(tasks: &[TaskDefinition], index: &HashMap<&str, usize>) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        at: usize,
        tasks: &[TaskDefinition],
        index: &HashMap<&str, usize>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        found: &mut Vec<Vec<usize>>,
    ) {
        marks[at] = Mark::OnPath;
        path.push(at);
        for dependency in &tasks[at].depends_on {
            let Some(&next) = index.get(dependency.as_str()) else {
                continue;
            };
            match marks[next] {
                Mark::New => visit(next, tasks, index, marks, path, found),
                Mark::OnPath => {
                    let start = path.iter().position(|&p| p == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    // Written-first task first, the order of dependence kept.
                    let lowest = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, &task)| task)
                        .map_or(0, |(k, _)| k);
                    cycle.rotate_left(lowest);
                    if !found.contains(&cycle) {
                        found.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[at] = Mark::Done;
    }
    let mut marks = vec![Mark::New; tasks.len()];
    let mut found = Vec::new();
    for start in 0..tasks.len() {
        if marks[start] == Mark::New {
            visit(start, tasks, index, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::definition::parse;
    use crate::error::ErrorCode;
    use crate::source::Location;

    fn errors(text: &str) -> Vec<(ErrorCode, String, Option<Location>, String)> {
        parse(text)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.code, e.pointer, e.location, e.message))
            .collect()
    }

    #[test]
    fn duplicate_names_and_unknown_dependencies_are_each_located() {
        let got = errors(
            "name: f\ntasks:\n  - name: a\n  - name: b\n    depends_on: [a, nope]\n  - name: a\n",
        );
        let at = |line, column| Some(Location { line, column });
        let brief: Vec<(ErrorCode, &str, Option<Location>)> = got
            .iter()
            .map(|(c, p, l, _)| (*c, p.as_str(), *l))
            .collect();
        assert_eq!(
            brief,
            [
                (ErrorCode::DuplicateTask, "/tasks/2/name", at(6, 11)),
                (
                    ErrorCode::UnknownDependency,
                    "/tasks/1/depends_on/1",
                    at(5, 21)
                ),
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn each_cycle_is_named_once_in_order() {
        let got = errors(
            "name: f\ntasks:\n  - name: a\n    depends_on: [c]\n  - name: b\n    depends_on: [a]\n  - name: c\n    depends_on: [b]\n  - name: d\n    depends_on: [d]\n  - name: e\n    depends_on: [a]\n",
        );
        let cycles: Vec<(&str, Option<Location>, &str)> = got
            .iter()
            .filter(|(c, ..)| *c == ErrorCode::Cycle)
            .map(|(_, p, l, m)| (p.as_str(), *l, m.as_str()))
            .collect();
        assert_eq!(
            cycles,
            [
                (
                    "/tasks/0/depends_on",
                    Some(Location { line: 4, column: 5 }),
                    "these tasks depend on each other in a circle: a → c → b → a"
                ),
                (
                    "/tasks/3/depends_on",
                    Some(Location {
                        line: 10,
                        column: 5
                    }),
                    "these tasks depend on each other in a circle: d → d"
                ),
            ],
            "{got:#?}"
        );
        assert_eq!(got.len(), 2, "only the cycles: {got:#?}");
    }

    #[test]
    fn a_diamond_is_no_cycle() {
        let text = "name: f\ntasks:\n  - name: a\n  - name: b\n    depends_on: [a]\n  - name: c\n    depends_on: [a]\n  - name: d\n    depends_on: [b, c]\n";
        assert!(parse(text).is_ok(), "{:?}", errors(text));
    }
}
