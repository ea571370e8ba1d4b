//! JSON values as every store keeps them.
//!
//! Clients send any JSON as `input` (and, later, `output` and `error`).
//! Both stores must give back exactly the value that was sent, and the same
//! bytes as each other. PostgreSQL's `jsonb` keeps a number's digits but
//! writes it in plain decimal notation (`1e2` becomes `100`, `1.50e1`
//! becomes `15.0`) and has no negative zero; it cannot store the NUL
//! character. So a value is put in that one canonical form before any store
//! sees it ([`canonicalize`]): every number keeps its exact value and its
//! scale, only its notation changes; values no store can keep are refused.
//!
//! Numbers are limited to [`MAX_NUMBER_DIGITS`] digits before and after the
//! decimal point (every `f64`, written out, fits), and the growth of a body
//! by writing its numbers out in full is bounded by the caller, so that a
//! short `1e999` cannot become a large document.

use serde_json::{Map, Number, Value};

/// Most digits a number may have before its decimal point, and after it,
/// once written in plain decimal notation.
pub const MAX_NUMBER_DIGITS: usize = 1000;

/// One place in a JSON value that no store can keep as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonProblem {
    /// Where, as a path below the value (`.a[2].b`; empty for the value itself).
    pub path: String,
    pub message: String,
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonRejection {
    /// Places that cannot be stored, each named.
    Invalid(Vec<JsonProblem>),
    /// Writing its numbers out in full would grow the value by more than the
    /// caller allowed.
    TooLarge,
}

/// A number in the plain decimal notation PostgreSQL's `numeric` writes:
/// no exponent, the scale of the text as written (`1.50e1` → `15.0`,
/// `1e-2` → `0.01`, `100e-2` → `1.00`), no sign on zero. `None` when `text`
/// is not a JSON number or has more than [`MAX_NUMBER_DIGITS`] digits on
/// either side of the point.
pub fn canonical_number(text: &str) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], parse_exponent(&unsigned[at + 1..])?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !all_digits(int)
        || !all_digits(frac)
        || (mantissa.contains('.') && frac.is_empty())
    {
        return None;
    }
    let digits: String = [int, frac].concat();
    // The point sits `point` digits into `digits` (negative: before them).
    let point = i64::try_from(int.len()).ok()?.checked_add(exponent)?;
    let scale = i64::try_from(frac.len())
        .ok()?
        .checked_sub(exponent)?
        .max(0);
    let significant = digits.trim_start_matches('0');
    let limit = i64::try_from(MAX_NUMBER_DIGITS).ok()?;
    if significant.is_empty() {
        // Zero: only its scale is written, however large the exponent.
        if scale > limit {
            return None;
        }
        let zeros = usize::try_from(scale).ok()?;
        return Some(if zeros == 0 {
            "0".to_owned()
        } else {
            format!("0.{}", "0".repeat(zeros))
        });
    }
    let int_digits = point - i64::try_from(digits.len() - significant.len()).ok()?;
    if scale > limit || int_digits > limit {
        return None;
    }
    let (mut int_part, frac_part) = if point >= i64::try_from(digits.len()).ok()? {
        let zeros = usize::try_from(point).ok()? - digits.len();
        (format!("{digits}{}", "0".repeat(zeros)), String::new())
    } else if point <= 0 {
        let zeros = usize::try_from(-point).ok()?;
        ("0".to_owned(), format!("{}{digits}", "0".repeat(zeros)))
    } else {
        let at = usize::try_from(point).ok()?;
        (digits[..at].to_owned(), digits[at..].to_owned())
    };
    let trimmed = int_part.trim_start_matches('0');
    int_part = if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    };
    let mut out = String::with_capacity(int_part.len() + frac_part.len() + 2);
    if negative {
        out.push('-');
    }
    out.push_str(&int_part);
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(&frac_part);
    }
    Some(out)
}

/// An exponent's value, refusing any too large to matter: a number that
/// needs one beyond ±10⁹ is far past the digit limits anyway.
fn parse_exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `value` in the form every store keeps (see the module documentation).
///
/// Refuses, listing each place, strings and keys holding the NUL character
/// and numbers beyond [`MAX_NUMBER_DIGITS`]; refuses the whole value when
/// writing its numbers out would add more than `max_growth` bytes.
pub fn canonicalize(value: Value, max_growth: usize) -> Result<Value, JsonRejection> {
    let mut walk = Walk {
        problems: Vec::new(),
        growth: 0,
        max_growth,
    };
    let mut path = String::new();
    let value = walk.value(value, &mut path);
    if walk.growth > walk.max_growth {
        return Err(JsonRejection::TooLarge);
    }
    if walk.problems.is_empty() {
        Ok(value)
    } else {
        Err(JsonRejection::Invalid(walk.problems))
    }
}

struct Walk {
    problems: Vec<JsonProblem>,
    growth: usize,
    max_growth: usize,
}

const NUL_MESSAGE: &str = "must not contain the NUL character (\\u0000)";

impl Walk {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(JsonProblem {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn value(&mut self, value: Value, path: &mut String) -> Value {
        if self.growth > self.max_growth {
            return Value::Null;
        }
        match value {
            Value::Number(number) => self.number(number, path),
            Value::String(text) => {
                if text.contains('\0') {
                    self.problem(path, NUL_MESSAGE);
                }
                Value::String(text)
            }
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        let item = self.value(item, path);
                        path.truncate(len);
                        item
                    })
                    .collect(),
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, item) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(&key);
                    if key.contains('\0') {
                        self.problem(path, NUL_MESSAGE);
                    }
                    let item = self.value(item, path);
                    path.truncate(len);
                    out.insert(key, item);
                }
                Value::Object(out)
            }
            other => other,
        }
    }

    fn number(&mut self, number: Number, path: &str) -> Value {
        let text = number.to_string();
        let Some(canonical) = canonical_number(&text) else {
            self.problem(
                path,
                format!(
                    "is a number out of range: at most {MAX_NUMBER_DIGITS} digits before and after the decimal point"
                ),
            );
            return Value::Number(number);
        };
        self.growth = self
            .growth
            .saturating_add(canonical.len().saturating_sub(text.len()));
        match canonical.parse::<Number>() {
            Ok(number) => Value::Number(number),
            Err(_) => {
                self.problem(path, "is not a JSON number");
                Value::Number(number)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What PostgreSQL 15 answers for `SELECT '<text>'::jsonb`.
    const AS_POSTGRES_WRITES_THEM: [(&str, &str); 19] = [
        ("0", "0"),
        ("-0", "0"),
        ("-0.0", "0.0"),
        ("0.000", "0.000"),
        ("0e5", "0"),
        ("0.0e-5", "0.000000"),
        ("-0e0", "0"),
        ("1e2", "100"),
        ("1E+2", "100"),
        ("1.50e1", "15.0"),
        ("1.5e-3", "0.0015"),
        ("100e-2", "1.00"),
        ("-1.0e-2", "-0.010"),
        ("2.50E0", "2.50"),
        ("12e-1", "1.2"),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        ),
        ("100000000000000000000.5", "100000000000000000000.5"),
        ("-18446744073709551616", "-18446744073709551616"),
        ("5e-3", "0.005"),
    ];

    #[test]
    fn numbers_are_written_as_postgresql_writes_them() {
        for (sent, stored) in AS_POSTGRES_WRITES_THEM {
            assert_eq!(canonical_number(sent).as_deref(), Some(stored), "{sent}");
        }
        let max = canonical_number("1.7976931348623157e308");
        assert_eq!(max, Some(format!("17976931348623157{}", "0".repeat(292))));
    }

    #[test]
    fn numbers_past_the_digit_limits_or_not_numbers_are_refused() {
        let big = format!("1{}", "0".repeat(MAX_NUMBER_DIGITS));
        let small = format!("0.{}1", "0".repeat(MAX_NUMBER_DIGITS));
        assert!(canonical_number(&big).is_none());
        assert!(canonical_number(&small).is_none());
        assert!(canonical_number(&format!("1e{MAX_NUMBER_DIGITS}")).is_none());
        assert!(canonical_number(&format!("1e{}", MAX_NUMBER_DIGITS - 1)).is_some());
        assert!(canonical_number(&format!("1e-{MAX_NUMBER_DIGITS}")).is_some());
        assert!(canonical_number(&format!("1e-{}", MAX_NUMBER_DIGITS + 1)).is_none());
        assert!(
            canonical_number("5e-324").is_some(),
            "the smallest f64 fits"
        );
        // Leading zeros do not count; a huge exponent on zero costs nothing,
        // a huge scale on zero is refused like any other.
        assert_eq!(canonical_number("0.001e3").as_deref(), Some("1"));
        assert_eq!(canonical_number("0e999999999").as_deref(), Some("0"));
        assert_eq!(canonical_number("-0.00e1").as_deref(), Some("0.0"));
        assert!(canonical_number("0e-999999999").is_none());
        for bad in [
            "",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "abc",
            "1e99999999999",
            "0x10",
            "1.2.3",
        ] {
            assert!(canonical_number(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_value_keeps_its_shape_and_every_exact_number() -> Result<(), serde_json::Error> {
        let sent: Value = serde_json::from_str(
            r#"{"a": [1e2, -0.0, "x", null, true], "b": {"c": 123456789012345678901234567890}}"#,
        )?;
        let stored = canonicalize(sent, 1024);
        assert_eq!(
            stored.map(|v| v.to_string()),
            Ok(
                r#"{"a":[100,0.0,"x",null,true],"b":{"c":123456789012345678901234567890}}"#
                    .to_owned()
            )
        );
        Ok(())
    }

    #[test]
    fn every_nul_and_out_of_range_number_is_named_by_its_path() -> Result<(), serde_json::Error> {
        let sent: Value =
            serde_json::from_str(r#"{"a\u0000": 1, "b": ["ok", "x\u0000", 1e5000]}"#)?;
        let paths = match canonicalize(sent, 1 << 20) {
            Err(JsonRejection::Invalid(problems)) => {
                problems.into_iter().map(|p| p.path).collect::<Vec<_>>()
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(paths, vec![".a\u{0}", ".b[1]", ".b[2]"]);
        Ok(())
    }

    #[test]
    fn writing_numbers_out_may_not_grow_a_value_past_the_allowance() {
        let many: Value = serde_json::from_str(&format!("[{}]", vec!["1e999"; 100].join(",")))
            .unwrap_or_default();
        assert_eq!(
            canonicalize(many.clone(), 10_000),
            Err(JsonRejection::TooLarge)
        );
        assert!(canonicalize(many, 100_000).is_ok());
        assert_eq!(canonicalize(json!("short"), 0), Ok(json!("short")));
    }
}
