//! Configuration values against their `[gear.config.KEY]` schema: parsing `KEY=VALUE`
//! text by type and checking type, `enum`, bounds, `pattern` and lengths. Shared by
//! Gear.toml validation (defaults) and `cargo gear run` (values given when running).

use std::fmt;

use regex::Regex;
use serde_json::Value;

use crate::diagnostic::did_you_mean;
use crate::manifest::json_number;
use crate::model::{ConfigDecl, ConfigType};

/// One rule of the schema a value breaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// The value is of another type (the other checks are then skipped).
    Type {
        expected: ConfigType,
        found: &'static str,
    },
    /// Not one of the `enum` values; `suggestion` is a close string value.
    NotInEnum {
        allowed: Vec<Value>,
        suggestion: Option<String>,
    },
    /// Outside a bound: `name` is `minimum`, `exclusiveMinimum`, `maximum` or `exclusiveMaximum`.
    Range {
        name: &'static str,
        bound: f64,
        relation: &'static str,
    },
    /// A string not matching `pattern`.
    Pattern { pattern: String },
    /// Too short or too long: `name` is `minLength`, `maxLength`, `minItems` or `maxItems`.
    Length {
        name: &'static str,
        bound: u64,
        len: u64,
        unit: &'static str,
        short: bool,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Type { expected, found } => {
                write!(f, "is {found}, but the type is {}", expected.as_str())
            }
            Violation::NotInEnum { allowed, .. } => {
                write!(f, "is not one of the `enum` values ({})", list(allowed))
            }
            Violation::Range {
                name,
                bound,
                relation,
            } => write!(f, "is {relation} its `{name}` {}", show(*bound)),
            Violation::Pattern { pattern } => write!(f, "does not match its `pattern` `{pattern}`"),
            Violation::Length {
                name,
                bound,
                len,
                unit,
                ..
            } => write!(f, "has {len} {unit}, but its `{name}` is {bound}"),
        }
    }
}

/// Every rule of `c` that `v` breaks. An invalid `pattern` is not checked here (Gear.toml
/// validation reports it).
pub fn check_value(c: &ConfigDecl, v: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if !type_matches(c.kind, v) {
        out.push(Violation::Type {
            expected: c.kind,
            found: describe(v),
        });
        return out;
    }
    if let Some(allowed) = &c.allowed
        && !allowed.iter().any(|a| json_eq(a, v))
    {
        let suggestion = v
            .as_str()
            .and_then(|s| did_you_mean(s, allowed.iter().filter_map(Value::as_str)))
            .map(str::to_string);
        out.push(Violation::NotInEnum {
            allowed: allowed.clone(),
            suggestion,
        });
    }
    if let Some(x) = v.as_f64()
        && matches!(c.kind, ConfigType::Integer | ConfigType::Number)
    {
        let bounds = [
            (
                "minimum",
                c.minimum,
                x < c.minimum.unwrap_or(f64::NEG_INFINITY),
                "below",
            ),
            (
                "exclusiveMinimum",
                c.exclusive_minimum,
                x <= c.exclusive_minimum.unwrap_or(f64::NEG_INFINITY),
                "not above",
            ),
            (
                "maximum",
                c.maximum,
                x > c.maximum.unwrap_or(f64::INFINITY),
                "above",
            ),
            (
                "exclusiveMaximum",
                c.exclusive_maximum,
                x >= c.exclusive_maximum.unwrap_or(f64::INFINITY),
                "not below",
            ),
        ];
        for (name, bound, violated, relation) in bounds {
            if let (Some(bound), true) = (bound, violated) {
                out.push(Violation::Range {
                    name,
                    bound,
                    relation,
                });
            }
        }
    }
    if let Some(s) = v.as_str() {
        if let Some(re) = c.pattern.as_deref().and_then(|p| Regex::new(p).ok())
            && !re.is_match(s)
        {
            out.push(Violation::Pattern {
                pattern: re.as_str().to_string(),
            });
        }
        out.extend(length(
            s.chars().count() as u64,
            c.min_length,
            c.max_length,
            "characters",
            ("minLength", "maxLength"),
        ));
    }
    if let Some(items) = v.as_array() {
        out.extend(length(
            items.len() as u64,
            c.min_items,
            c.max_items,
            "items",
            ("minItems", "maxItems"),
        ));
    }
    out
}

fn length(
    len: u64,
    min: Option<u64>,
    max: Option<u64>,
    unit: &'static str,
    names: (&'static str, &'static str),
) -> Option<Violation> {
    if let Some(bound) = min.filter(|m| len < *m) {
        return Some(Violation::Length {
            name: names.0,
            bound,
            len,
            unit,
            short: true,
        });
    }
    max.filter(|m| len > *m).map(|bound| Violation::Length {
        name: names.1,
        bound,
        len,
        unit,
        short: false,
    })
}

/// Parses command-line text as a value of the config's type: integers, numbers,
/// `true`/`false`, and arrays as JSON (`[1, 2]`) or comma-separated items typed by `items.type`.
pub fn parse_value(c: &ConfigDecl, raw: &str) -> Result<Value, String> {
    let t = raw.trim();
    match c.kind {
        ConfigType::String => Ok(Value::String(raw.to_string())),
        ConfigType::Integer => t
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{raw}` is not an integer")),
        ConfigType::Number => t
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .and_then(|x| {
                if t.contains(['.', 'e', 'E']) {
                    serde_json::Number::from_f64(x)
                } else {
                    json_number(x)
                }
            })
            .map(Value::Number)
            .ok_or_else(|| format!("`{raw}` is not a number")),
        ConfigType::Boolean => match t {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not a boolean: write `true` or `false`")),
        },
        ConfigType::Array => {
            if t.starts_with('[') {
                return serde_json::from_str::<Value>(t)
                    .ok()
                    .filter(Value::is_array)
                    .ok_or_else(|| format!("`{raw}` is not a JSON array"));
            }
            let item_type = c
                .items
                .as_ref()
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str);
            let items: Result<Vec<Value>, String> = t
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| match item_type {
                    Some("integer") => s
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| format!("item `{s}` is not an integer")),
                    Some("number") => s
                        .parse::<f64>()
                        .ok()
                        .and_then(json_number)
                        .map(Value::Number)
                        .ok_or_else(|| format!("item `{s}` is not a number")),
                    Some("boolean") => s
                        .parse::<bool>()
                        .map(Value::Bool)
                        .map_err(|_| format!("item `{s}` is not a boolean")),
                    _ => Ok(Value::String(s.to_string())),
                })
                .collect();
            items.map(Value::Array)
        }
    }
}

/// Whether a JSON value has the config type.
pub fn type_matches(kind: ConfigType, v: &Value) -> bool {
    match kind {
        ConfigType::String => v.is_string(),
        ConfigType::Integer => v.is_i64() || v.is_u64(),
        ConfigType::Number => v.is_number(),
        ConfigType::Boolean => v.is_boolean(),
        ConfigType::Array => v.is_array(),
    }
}

/// Equal as JSON values, numbers compared by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

/// "a string", "an integer", … for messages.
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// A bound as the user would write it (`1`, not `1.0`).
pub fn show(x: f64) -> String {
    json_number(x).map_or_else(|| x.to_string(), |n| n.to_string())
}

/// Values joined for messages.
pub fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl(extra: Value) -> ConfigDecl {
        let mut v = json!({"type": "integer"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_by_type() {
        assert_eq!(parse_value(&decl(json!({})), "42"), Ok(json!(42)));
        assert!(parse_value(&decl(json!({})), "4.2").is_err());
        let num = decl(json!({"type": "number"}));
        assert_eq!(parse_value(&num, "3"), Ok(json!(3)));
        assert_eq!(parse_value(&num, "3.5"), Ok(json!(3.5)));
        let b = decl(json!({"type": "boolean"}));
        assert_eq!(parse_value(&b, "true"), Ok(json!(true)));
        assert!(parse_value(&b, "yes").is_err());
        let arr = decl(json!({"type": "array", "items": {"type": "integer"}}));
        assert_eq!(parse_value(&arr, "1, 2,3"), Ok(json!([1, 2, 3])));
        assert_eq!(parse_value(&arr, "[\"a\"]"), Ok(json!(["a"])));
        assert!(parse_value(&arr, "1,x").is_err());
    }

    #[test]
    fn checks_rules() {
        let c = decl(json!({"minimum": 1, "maximum": 8, "enum": [1, 2, 64]}));
        assert_eq!(check_value(&c, &json!(2)), vec![]);
        let v = check_value(&c, &json!(64));
        assert_eq!(
            v,
            vec![Violation::Range {
                name: "maximum",
                bound: 8.0,
                relation: "above"
            }]
        );
        assert_eq!(v[0].to_string(), "is above its `maximum` 8");
        assert!(matches!(
            check_value(&c, &json!(3))[0],
            Violation::NotInEnum { .. }
        ));
        assert!(matches!(
            check_value(&c, &json!("3"))[0],
            Violation::Type { .. }
        ));
        let s = decl(json!({"type": "string", "pattern": "^sub-", "maxLength": 6}));
        assert_eq!(check_value(&s, &json!("ses-0001")).len(), 2);
    }
}
