//! Flow definitions: a flow's tasks, their dependencies and their input
//! templates, written in YAML (or JSON) and checked at upload with every
//! error at once, each with its place in the text.
//!
//! - [`source`]: the text as a JSON value, every node located (saphyr).
//! - [`definition`]: the format's fields and types ([`parse`]).
//! - [`graph`]: duplicate names, unknown dependencies, cycles.
//! - [`template`]: input templates checked and rendered (minijinja).
//! - [`schema`]: `input_schema` checked, a run's input validated against it.
//! - [`run`]: a task's retry policy, time limit and priority.
//! - [`engine`]: which tasks of a run are ready, and the input of each of
//!   their runs (one, or one per `for_each` item).

pub mod definition;
pub mod engine;
pub mod error;
pub mod graph;
pub mod run;
pub mod schema;
pub mod source;
pub mod template;

pub use definition::{parse, parse_located, FlowDefinition, TaskDefaults, TaskDefinition};

pub use error::{DefinitionError, ErrorCode};
pub use source::{Located, Location};

#[cfg(test)]
pub(crate) mod test_support {
    use crate::{parse, ErrorCode, Location};

    /// The errors of `text`, each as (code, pointer, place).
    pub fn placed(text: &str) -> Vec<(ErrorCode, String, Option<Location>)> {
        parse(text)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.code, e.pointer, e.location))
            .collect()
    }

    /// Asserts that `text`'s errors are `expected`, in order.
    pub fn assert_placed(text: &str, expected: &[(ErrorCode, &str, Option<Location>)]) {
        let got = placed(text);
        let brief: Vec<(ErrorCode, &str, Option<Location>)> =
            got.iter().map(|(c, p, l)| (*c, p.as_str(), *l)).collect();
        assert_eq!(brief, expected, "{got:#?}");
    }

    /// Line and column, as the errors carry them.
    pub fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }
}
