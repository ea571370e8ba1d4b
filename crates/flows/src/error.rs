//! What is wrong with a flow definition, where.

use serde::Serialize;

use crate::source::Location;

/// The kinds of error a definition can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not YAML or JSON, or not one document.
    Syntax,
    /// A field the format does not have.
    UnknownField,
    /// A field that must be there is not.
    MissingField,
    /// A value of the wrong type or out of its range.
    WrongType,
    /// Two tasks of one name.
    DuplicateTask,
    /// `depends_on` names a task the definition does not have.
    UnknownDependency,
    /// Tasks that depend on each other in a circle.
    Cycle,
    /// A template that does not parse.
    TemplateSyntax,
    /// A template names something that does not exist where it is used.
    UnknownReference,
    /// A template uses the output of a task that is not upstream.
    NotUpstream,
    /// `input_schema` is not a usable JSON Schema.
    InvalidSchema,
    /// The last of a list cut short: how many more errors there are.
    TooManyErrors,
}

/// One error: what, where (a JSON pointer into the definition, and the
/// line and column of the text where it has them), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefinitionError {
    pub code: ErrorCode,
    pub pointer: String,
    pub location: Option<Location>,
    pub message: String,
}

impl DefinitionError {
    pub fn new(
        code: ErrorCode,
        pointer: &str,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            pointer: pointer.to_owned(),
            location,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.location {
            Some(at) => write!(
                f,
                "line {}, column {}: {}",
                at.line, at.column, self.message
            ),
            None => write!(f, "{}: {}", self.pointer, self.message),
        }
    }
}
