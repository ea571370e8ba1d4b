//! A flow definition's text (YAML, or JSON, which YAML reads too) as a JSON
//! value, with where in the text each of its nodes stands.
//!
//! saphyr parses the text into nodes that carry their spans, mapping keys
//! included; this module turns them into a `serde_json::Value` and a map
//! from each node's JSON pointer (RFC 6901) to its place, so that every
//! later check can name the line and column of what it refuses.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, Marker, ScalarOwned, YamlDataOwned};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::{DefinitionError, ErrorCode};

/// A place in the text: line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    fn of(marker: &Marker) -> Self {
        Self {
            line: marker.line(),
            // saphyr counts columns from 0.
            column: marker.col() + 1,
        }
    }
}

/// The text as a value, and where each node of it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub value: Value,
    /// JSON pointer → where its value starts.
    values: HashMap<String, Location>,
    /// JSON pointer of a mapping entry → where its key starts.
    keys: HashMap<String, Location>,
}

impl Located {
    /// Where the value at `pointer` starts (else its key), if the text
    /// has it.
    pub fn value_at(&self, pointer: &str) -> Option<Location> {
        self.values
            .get(pointer)
            .or_else(|| self.keys.get(pointer))
            .copied()
    }

    /// Where the key of the entry at `pointer` starts (else its value).
    pub fn key_at(&self, pointer: &str) -> Option<Location> {
        self.keys
            .get(pointer)
            .or_else(|| self.values.get(pointer))
            .copied()
    }
}

/// One step of a JSON pointer, escaped (RFC 6901).
pub fn pointer_step(parent: &str, step: &str) -> String {
    format!("{parent}/{}", step.replace('~', "~0").replace('/', "~1"))
}

/// The deepest nesting of lists and mappings a definition may have.
pub const MAX_DEPTH: usize = 32;

/// Reads the text's events once before any tree is built, refusing what
/// would make building it costly: aliases (each one copies its anchor's
/// whole tree: a few hundred bytes can stand for a billion nodes) and
/// nesting deeper than [`MAX_DEPTH`]. A syntax error is left to the loader.
fn screen(text: &str) -> Result<(), DefinitionError> {
    use saphyr_parser::{Event, Parser};
    let mut depth = 0_usize;
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            return Ok(());
        };
        match event {
            Event::Alias(_) => {
                return Err(DefinitionError::new(
                    ErrorCode::Syntax,
                    "",
                    Some(Location::of(&span.start)),
                    "aliases (*name) are not supported in a flow definition: write the value out",
                ))
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DefinitionError::new(
                        ErrorCode::Syntax,
                        "",
                        Some(Location::of(&span.start)),
                        format!("nested more than {MAX_DEPTH} levels deep"),
                    ));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses `text`: one document, every node converted; a syntax error, or
/// nodes that JSON cannot hold, are the errors (all of them, located).
pub fn parse(text: &str) -> Result<Located, Vec<DefinitionError>> {
    screen(text).map_err(|error| vec![error])?;
    let documents = MarkedYamlOwned::load_from_str(text).map_err(|error| {
        vec![DefinitionError::new(
            ErrorCode::Syntax,
            "",
            Some(Location::of(error.marker())),
            format!("not YAML or JSON: {}", error.info()),
        )]
    })?;
    let root = match documents.as_slice() {
        [one] => one,
        [] => {
            return Err(vec![DefinitionError::new(
                ErrorCode::Syntax,
                "",
                None,
                "the definition is empty",
            )])
        }
        [_, second, ..] => {
            let mut scratch = Located {
                value: Value::Null,
                values: HashMap::new(),
                keys: HashMap::new(),
            };
            convert(second, "", &mut scratch, &mut Vec::new());
            return Err(vec![DefinitionError::new(
                ErrorCode::Syntax,
                "",
                scratch.value_at(""),
                "one definition a text: a second YAML document starts here",
            )]);
        }
    };
    let mut located = Located {
        value: Value::Null,
        values: HashMap::new(),
        keys: HashMap::new(),
    };
    let mut errors = Vec::new();
    located.value = convert(root, "", &mut located, &mut errors);
    if errors.is_empty() {
        Ok(located)
    } else {
        Err(errors)
    }
}

fn convert(
    node: &MarkedYamlOwned,
    pointer: &str,
    located: &mut Located,
    errors: &mut Vec<DefinitionError>,
) -> Value {
    let at = Location::of(&node.span.start);
    // saphyr leaves some collections unplaced (line 0): such a node stands
    // where its first entry does, an empty one where its key does.
    if at.line > 0 {
        located.values.insert(pointer.to_owned(), at);
    }
    let value = convert_data(node, pointer, at, located, errors);
    if at.line == 0 {
        let first = match &value {
            Value::Object(map) => map
                .keys()
                .next()
                .and_then(|key| located.keys.get(&pointer_step(pointer, key)).copied()),
            Value::Array(items) if !items.is_empty() => {
                located.values.get(&pointer_step(pointer, "0")).copied()
            }
            _ => None,
        };
        if let Some(first) = first {
            located.values.insert(pointer.to_owned(), first);
        }
    }
    value
}

fn convert_data(
    node: &MarkedYamlOwned,
    pointer: &str,
    at: Location,
    located: &mut Located,
    errors: &mut Vec<DefinitionError>,
) -> Value {
    match &node.data {
        YamlDataOwned::Value(scalar) => scalar_value(scalar, pointer, at, errors),
        YamlDataOwned::Representation(text, _, _) => Value::String(text.clone()),
        YamlDataOwned::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    convert(
                        item,
                        &pointer_step(pointer, &i.to_string()),
                        located,
                        errors,
                    )
                })
                .collect(),
        ),
        YamlDataOwned::Mapping(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let Some(name) = key_text(key) else {
                    errors.push(DefinitionError::new(
                        ErrorCode::WrongType,
                        pointer,
                        Some(Location::of(&key.span.start)),
                        "a key must be a string, a number or a boolean",
                    ));
                    continue;
                };
                let inner = pointer_step(pointer, &name);
                if map.contains_key(&name) {
                    // `1:` and `"1":` are one key in JSON.
                    errors.push(DefinitionError::new(
                        ErrorCode::WrongType,
                        &inner,
                        Some(Location::of(&key.span.start)),
                        format!("the key `{name}` a second time"),
                    ));
                    continue;
                }
                located
                    .keys
                    .insert(inner.clone(), Location::of(&key.span.start));
                let converted = convert(value, &inner, located, errors);
                map.insert(name, converted);
            }
            Value::Object(map)
        }
        YamlDataOwned::Tagged(_, inner) => convert(inner, pointer, located, errors),
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => {
            errors.push(DefinitionError::new(
                ErrorCode::WrongType,
                pointer,
                Some(at),
                "not a value JSON can hold (an unresolved alias or a malformed scalar)",
            ));
            Value::Null
        }
    }
}

fn scalar_value(
    scalar: &ScalarOwned,
    pointer: &str,
    at: Location,
    errors: &mut Vec<DefinitionError>,
) -> Value {
    match scalar {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(*b),
        ScalarOwned::Integer(i) => Value::Number(Number::from(*i)),
        ScalarOwned::FloatingPoint(f) => match Number::from_f64(f.into_inner()) {
            Some(number) => Value::Number(number),
            None => {
                errors.push(DefinitionError::new(
                    ErrorCode::WrongType,
                    pointer,
                    Some(at),
                    "not a finite number (JSON has no NaN or infinity)",
                ));
                Value::Null
            }
        },
        ScalarOwned::String(s) => Value::String(s.clone()),
    }
}

fn key_text(key: &MarkedYamlOwned) -> Option<String> {
    match &key.data {
        YamlDataOwned::Value(ScalarOwned::String(s)) => Some(s.clone()),
        YamlDataOwned::Value(ScalarOwned::Integer(i)) => Some(i.to_string()),
        YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Some(b.to_string()),
        YamlDataOwned::Representation(text, _, _) => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_becomes_json_with_every_node_located() {
        let text = "name: etl\ntasks:\n  - name: a\n    input: {n: 1, x: 2.5, ok: true, none: null, s: \"1\"}\n";
        let located = parse(text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            located.value,
            serde_json::json!({"name": "etl", "tasks": [{"name": "a",
                "input": {"n": 1, "x": 2.5, "ok": true, "none": null, "s": "1"}}]})
        );
        assert_eq!(
            located.value_at("/tasks/0/name"),
            Some(Location {
                line: 3,
                column: 11
            })
        );
        assert_eq!(
            located.key_at("/tasks/0/input"),
            Some(Location { line: 4, column: 5 })
        );
        assert_eq!(
            located.key_at("/name"),
            Some(Location { line: 1, column: 1 })
        );
    }

    #[test]
    fn json_reads_as_well() {
        let located = parse(r#"{"name": "etl", "tasks": [{"name": "a/b~c"}]}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(located.value["tasks"][0]["name"], "a/b~c");
        assert!(located.value_at("/tasks/0/name").is_some());
        assert_eq!(pointer_step("/x", "a/b~c"), "/x/a~1b~0c");
    }

    #[test]
    fn a_syntax_error_is_located_and_two_documents_are_refused() {
        let errors = parse("name: [unclosed\ntasks: []\n")
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].code, ErrorCode::Syntax);
        assert!(errors[0].location.is_some(), "{errors:?}");
        let errors = parse("name: a\n---\nname: b\n").err().unwrap_or_default();
        assert_eq!(
            (
                errors.len(),
                errors.first().and_then(|e| e.location).map(|l| l.line)
            ),
            (1, Some(3)),
            "{errors:?}"
        );
        let errors = parse("x: .nan\n").err().unwrap_or_default();
        assert_eq!(errors.first().map(|e| e.pointer.as_str()), Some("/x"));
    }

    /// The errors of `text`, each as (code, place).
    fn refused(text: &str) -> Vec<(ErrorCode, Option<Location>)> {
        parse(text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| (e.code, e.location))
            .collect()
    }

    #[test]
    fn aliases_and_deep_nesting_are_refused_before_any_tree_is_built() {
        // Nine levels of ten aliases each would be a billion nodes.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let refs = vec![format!("*a{}", level - 1); 10].join(", ");
            bomb.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let at = |line, column| Some(Location { line, column });
        assert_eq!(refused(&bomb), [(ErrorCode::Syntax, at(2, 10))]);
        let deep = format!("{}x\n", "- ".repeat(100_000));
        assert_eq!(refused(&deep), [(ErrorCode::Syntax, at(1, 65))]);
        let fine = format!("{}x\n", "- ".repeat(MAX_DEPTH));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn keys_that_are_one_in_json_are_refused() {
        let errors = parse("a:\n  1: x\n  \"1\": y\n").err().unwrap_or_default();
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.pointer.as_str(), e.location))
                .collect::<Vec<_>>(),
            [("/a/1", Some(Location { line: 3, column: 3 }))],
            "{errors:?}"
        );
    }
}
