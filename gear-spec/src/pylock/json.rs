//! Python's `json.dumps(value, sort_keys=True)` over TOML values, byte for byte: poetry hashes
//! that text, so `", "`/`": "` separators, ASCII-only output with `\uXXXX` escapes (UTF-16
//! surrogate pairs), keys sorted by code point, floats as Python's `repr`.

use std::fmt::Write;

use toml::{Table, Value};

/// A value as poetry hands it to `json.dumps`: TOML values, `None` for absent keys it keeps,
/// and the objects it builds around them.
#[derive(Debug, Clone)]
pub(crate) enum Json<'a> {
    /// Python's `None`: JSON `null`.
    Null,
    /// A value read from TOML.
    Toml(&'a Value),
    /// A table read from TOML.
    Table(&'a Table),
    /// A dict poetry builds; its keys are sorted on output.
    Object(Vec<(&'a str, Json<'a>)>),
}

/// A TOML date-time: Python's `json.dumps` raises on it, so no poetry lock can hash one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateTimeValue(pub(crate) String);

/// `json.dumps(value, sort_keys=True)` as Python writes it.
pub(crate) fn dumps(value: &Json<'_>) -> Result<String, DateTimeValue> {
    let mut out = String::new();
    write_json(value, &mut out)?;
    Ok(out)
}

fn write_json(value: &Json<'_>, out: &mut String) -> Result<(), DateTimeValue> {
    match value {
        Json::Null => out.push_str("null"),
        Json::Toml(v) => write_toml(v, out)?,
        Json::Table(t) => write_table(t, out)?,
        Json::Object(entries) => {
            let mut entries: Vec<_> = entries.iter().map(|(k, v)| (*k, v.clone())).collect();
            write_object(&mut entries, out)?;
        }
    }
    Ok(())
}

fn write_toml(value: &Value, out: &mut String) -> Result<(), DateTimeValue> {
    match value {
        Value::String(s) => write_str(s, out),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(*f, out),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Datetime(d) => return Err(DateTimeValue(d.to_string())),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_toml(item, out)?;
            }
            out.push(']');
        }
        Value::Table(table) => write_table(table, out)?,
    }
    Ok(())
}

fn write_table(table: &Table, out: &mut String) -> Result<(), DateTimeValue> {
    let mut entries: Vec<_> = table
        .iter()
        .map(|(k, v)| (k.as_str(), Json::Toml(v)))
        .collect();
    write_object(&mut entries, out)
}

fn write_object(entries: &mut [(&str, Json<'_>)], out: &mut String) -> Result<(), DateTimeValue> {
    // Python sorts `str` keys by code point; UTF-8 byte order is the same order.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(key, out);
        out.push_str(": ");
        write_json(value, out)?;
    }
    out.push('}');
    Ok(())
}

/// A JSON string with `ensure_ascii=True`: everything outside `' '..='~'` escaped.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `float.__repr__` (and json's `NaN`/`Infinity`): the shortest digits that round-trip,
/// positional for `1e-4 <= |x| < 1e16`, otherwise `d.ddde±XX` with at least two exponent digits.
fn write_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else if f != 0.0 && !(1e-4..1e16).contains(&f.abs()) {
        // Rust's `{:e}` has the same shortest digits: `1e20`, `1.5e-5`.
        let s = format!("{f:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(digits) => ('-', digits),
            None => ('+', exponent),
        };
        let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
    } else {
        // Rust's `{:?}` writes positional floats with a `.0` as Python does: `1.0`, `0.0001`.
        let _ = write!(out, "{f:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/pylock/json-dumps/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn writes_what_python_json_dumps_wrote() {
        // expected.json is the output of Python 3.11's json.dumps(tomllib.load(input), sort_keys=True).
        let input: Value = fixture("input.toml")
            .parse::<Table>()
            .map(Value::Table)
            .unwrap();
        assert_eq!(
            dumps(&Json::Toml(&input)).unwrap(),
            fixture("expected.json")
        );
    }

    #[test]
    fn null_and_built_objects_sort_with_the_rest() {
        let deps = Value::Array(vec![Value::String("é".into())]);
        let built = Json::Object(vec![
            (
                "tool",
                Json::Object(vec![("source", Json::Null), ("dependencies", Json::Null)]),
            ),
            (
                "project",
                Json::Object(vec![("dependencies", Json::Toml(&deps))]),
            ),
        ]);
        assert_eq!(
            dumps(&built).unwrap(),
            r#"{"project": {"dependencies": ["\u00e9"]}, "tool": {"dependencies": null, "source": null}}"#
        );
    }

    #[test]
    fn a_date_time_cannot_be_dumped() {
        let table: Table = "when = 2024-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(
            dumps(&Json::Toml(&Value::Table(table))),
            Err(DateTimeValue("2024-01-02T03:04:05Z".into()))
        );
    }
}
