//! Integers as JSON Schema counts them: any number without a fractional
//! part (`3`, `3.0`, `3e0`) is an integer, so a body the published schema
//! accepts must also read into the Rust integer types (serde alone refuses
//! `3.0`). Used with `#[serde(deserialize_with = …)]` on integer fields of
//! request bodies.

use serde::de::{Deserializer, Error};
use serde::Deserialize;
use serde_json::Number;

/// The largest magnitude below which every integer is exact as a float.
const EXACT: f64 = 9_007_199_254_740_992.0;

fn whole(n: &Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        (f.is_finite() && f.fract() == 0.0 && f.abs() < EXACT).then_some(f as i64)
    })
}

/// An integer of type `T`, from any JSON number without a fraction.
pub(crate) fn integral<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let n = Number::deserialize(deserializer)?;
    let value = whole(&n).ok_or_else(|| D::Error::custom(format!("{n} is not an integer")))?;
    T::try_from(value).map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

/// [`integral`], or `None` for `null`.
pub(crate) fn optional_integral<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let n = Option::<Number>::deserialize(deserializer)?;
    n.map(|n| {
        let value = whole(&n).ok_or_else(|| D::Error::custom(format!("{n} is not an integer")))?;
        T::try_from(value).map_err(|_| D::Error::custom(format!("{n} is out of range")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Counts {
        #[serde(deserialize_with = "super::integral")]
        n: u32,
        #[serde(default, deserialize_with = "super::optional_integral")]
        m: Option<i32>,
    }

    #[test]
    fn whole_numbers_in_any_notation_read_as_integers() {
        for (value, n) in [(json!(3), 3), (json!(3.0), 3), (json!(1e2), 100)] {
            let read: Counts =
                serde_json::from_value(json!({"n": value})).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(read.n, n);
            assert_eq!(read.m, None);
        }
        let read: Counts =
            serde_json::from_value(json!({"n": 1, "m": -4.0})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.m, Some(-4));
        for bad in [json!(1.5), json!(-1), json!(1e20), json!("1")] {
            assert!(
                serde_json::from_value::<Counts>(json!({"n": bad})).is_err(),
                "{bad} was read"
            );
        }
    }
}
