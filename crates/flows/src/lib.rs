//! Flow definitions: a flow's tasks, their dependencies and their input
//! templates, written in YAML (or JSON) and checked at upload with every
//! error at once, each with its place in the text.
//!
//! - [`source`]: the text as a JSON value, every node located (saphyr).
//! - [`definition`]: the format's fields and types ([`parse`]).
//! - [`graph`]: duplicate names, unknown dependencies, cycles.
//! - [`template`]: input templates checked and rendered (minijinja).
//! - [`schema`]: `input_schema` checked, a run's input validated against it.

pub mod definition;
pub mod error;
pub mod graph;
pub mod schema;
pub mod source;
pub mod template;

pub use definition::{parse, FlowDefinition, TaskDefaults, TaskDefinition};
pub use error::{DefinitionError, ErrorCode};
pub use source::Location;
