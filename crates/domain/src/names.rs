//! Validated names. Parse once at the edge; a value of these types is valid
//! by construction.
//!
//! Task and flow names: 1 to 128 characters from `A-Z a-z 0-9 _ - .`, the
//! first a letter or a digit. They are case-sensitive, as in the flow
//! definition YAML. Organization names: 1 to 200 characters, no control
//! characters, no leading or trailing white space. Worker ids (chosen by a
//! worker to name itself, e.g. `host-1/pid-42`): the same rule, at most 200
//! characters.

use std::fmt;

use crate::error::ParseError;

/// Longest task or flow name accepted.
pub const MAX_IDENTIFIER_LEN: usize = 128;
/// The characters of a task or flow name as a regular expression (the
/// length is [`MAX_IDENTIFIER_LEN`] besides): what the OpenAPI document
/// states, kept equal to [`TaskName::parse`] by a test.
pub const IDENTIFIER_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]*$";
/// Longest organization name accepted.
pub const MAX_ORGANIZATION_NAME_LEN: usize = 200;
/// Longest worker id accepted.
pub const MAX_WORKER_ID_LEN: usize = 200;
/// The characters of an organization name or worker id as a regular
/// expression (the length aside): no control characters, no white space
/// at either end. What the OpenAPI document states, kept equal to
/// [`WorkerId::parse`] by a test.
pub const DISPLAY_NAME_PATTERN: &str =
    r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$";

fn parse_identifier(value: &str) -> Result<(), ParseError> {
    if value.is_empty() {
        return Err(ParseError::new("must not be empty"));
    }
    if value.chars().count() > MAX_IDENTIFIER_LEN {
        return Err(ParseError::new(format!(
            "must be at most {MAX_IDENTIFIER_LEN} characters"
        )));
    }
    let mut chars = value.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(ParseError::new("must start with a letter or a digit"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(ParseError::new(
            "may contain only letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $check:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                $check(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// The name of a task as defined in the flow definition YAML.
    TaskName,
    parse_identifier
);
name_type!(
    /// The name of a flow.
    FlowName,
    parse_identifier
);
name_type!(
    /// The display name of an organization.
    OrganizationName,
    parse_organization_name
);
name_type!(
    /// The name a worker gives itself; a claimed task is held by it.
    WorkerId,
    parse_worker_id
);

fn parse_organization_name(value: &str) -> Result<(), ParseError> {
    parse_display_name(value, MAX_ORGANIZATION_NAME_LEN)
}

fn parse_worker_id(value: &str) -> Result<(), ParseError> {
    parse_display_name(value, MAX_WORKER_ID_LEN)
}

/// Free text shown as a name: not blank, not padded, at most `max`
/// characters, no control characters.
fn parse_display_name(value: &str, max: usize) -> Result<(), ParseError> {
    if value.trim().is_empty() {
        return Err(ParseError::new("must not be empty"));
    }
    if value.trim() != value {
        return Err(ParseError::new("must not start or end with white space"));
    }
    if value.chars().count() > max {
        return Err(ParseError::new(format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ParseError::new("must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names within the length limit, by the character rule.
    const GOOD: [&str; 7] = ["a", "extract", "Load_2", "step-1.b", "9lives", "x.", "Z-_."];
    const BAD: [&str; 10] = [
        "",
        "-lead",
        ".hidden",
        "_x",
        "has space",
        "tab\t",
        "semi;colon",
        "ünïcode",
        "slash/name",
        "a\n",
    ];

    #[test]
    fn task_names_accept_the_documented_character_set() -> Result<(), ParseError> {
        for good in GOOD.into_iter().map(str::to_owned).chain(["x".repeat(128)]) {
            assert_eq!(TaskName::parse(good.as_str())?.as_str(), good);
        }
        Ok(())
    }

    #[test]
    fn task_names_reject_empty_long_and_foreign_characters() {
        for bad in BAD.into_iter().map(str::to_owned).chain(["x".repeat(129)]) {
            assert!(
                TaskName::parse(bad.as_str()).is_err(),
                "{bad:?} was accepted"
            );
            assert!(
                FlowName::parse(bad.as_str()).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn the_published_pattern_accepts_exactly_what_parse_accepts() -> Result<(), regex::Error> {
        let pattern = regex::Regex::new(IDENTIFIER_PATTERN)?;
        for text in GOOD.into_iter().chain(BAD) {
            assert_eq!(
                pattern.is_match(text),
                TaskName::parse(text).is_ok(),
                "{text:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn names_are_case_sensitive() -> Result<(), ParseError> {
        assert_ne!(TaskName::parse("Extract")?, TaskName::parse("extract")?);
        Ok(())
    }

    #[test]
    fn organization_names_allow_free_text_but_not_control_characters() -> Result<(), ParseError> {
        assert_eq!(
            OrganizationName::parse("Acme, Inc.")?.as_str(),
            "Acme, Inc."
        );
        for bad in ["", "   ", " padded", "line\nbreak", &"o".repeat(201)] {
            assert!(
                OrganizationName::parse(bad).is_err(),
                "{bad:?} was accepted"
            );
        }
        Ok(())
    }

    #[test]
    fn the_display_name_pattern_accepts_exactly_what_parse_accepts() -> Result<(), regex::Error> {
        let pattern = regex::Regex::new(DISPLAY_NAME_PATTERN)?;
        for text in [
            "w",
            "host-1/pid 42",
            "ä ö",
            "x\u{a0}y",
            "",
            " ",
            " padded",
            "padded ",
            "tab\tin",
            "nul\0",
            "\u{85}next",
            "end\u{9f}",
            "\u{2003}em",
            "a\u{7f}",
        ] {
            assert_eq!(
                pattern.is_match(text),
                WorkerId::parse(text).is_ok(),
                "{text:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn worker_ids_follow_the_display_name_rule() -> Result<(), ParseError> {
        assert_eq!(WorkerId::parse("host-1/pid 42")?.as_str(), "host-1/pid 42");
        assert!(WorkerId::parse("w".repeat(MAX_WORKER_ID_LEN)).is_ok());
        for bad in ["", " ", "tab\t", &"w".repeat(MAX_WORKER_ID_LEN + 1)] {
            assert!(WorkerId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        Ok(())
    }
}
