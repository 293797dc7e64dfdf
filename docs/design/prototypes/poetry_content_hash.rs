//! Scratch: poetry.lock content-hash (poetry >= 2.3 with the < 2.3 fallback) in Rust.
use sha2::{Digest, Sha256};
use std::fmt::Write;
use toml::{Table, Value};

const LEGACY: [&str; 4] = ["dependencies", "source", "extras", "dev-dependencies"];

/// Python `json.dumps(v, sort_keys=True)`: `", "`/`": "` separators, ASCII-only output.
fn py_json(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => py_str(s, out),
        Value::Integer(i) => { let _ = write!(out, "{i}"); }
        Value::Float(f) => out.push_str(&py_float(*f)),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Datetime(d) => py_str(&d.to_string(), out), // json.dumps would raise; never in deps
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() { if i > 0 { out.push_str(", ") } py_json(x, out) }
            out.push(']');
        }
        Value::Table(t) => py_obj(t.iter().map(|(k, v)| (k.as_str(), Some(v))).collect(), out),
    }
}
/// `None` values are JSON `null` (poetry keeps absent legacy keys as None).
fn py_obj(mut kv: Vec<(&str, Option<&Value>)>, out: &mut String) {
    // Python sorts str keys by code point; for UTF-8 strings byte order is the same.
    kv.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in kv.iter().enumerate() {
        if i > 0 { out.push_str(", ") }
        py_str(k, out);
        out.push_str(": ");
        match v { Some(v) => py_json(v, out), None => out.push_str("null") }
    }
    out.push('}');
}
fn py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""), '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"), '\r' => out.push_str("\\r"), '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"), '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) { let _ = write!(out, "\\u{:04x}", u); }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
/// Python `repr(float)`: shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16.
fn py_float(f: f64) -> String {
    if f.is_nan() { return "NaN".into() }
    if f.is_infinite() { return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() } }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}"); // e.g. 1e16, 1.5e-5
        let (m, e) = s.split_once('e').unwrap();
        let e: i32 = e.parse().unwrap();
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        let s = format!("{f:?}"); // Rust Debug: "1.0", "0.0001"
        s
    }
}

fn content_hash(py: &Table, with_groups: bool) -> String {
    let empty = Table::new();
    let get = |t: &Table, k: &str| t.get(k).and_then(Value::as_table).cloned();
    let project = get(py, "project").unwrap_or_default();
    let groups = if with_groups { get(py, "dependency-groups").unwrap_or_default() } else { empty.clone() };
    let tool_poetry = get(py, "tool").and_then(|t| get(&t, "poetry")).unwrap_or_default();
    let rel_project: Vec<(&str, Option<&Value>)> = ["requires-python", "dependencies", "optional-dependencies"]
        .into_iter().filter_map(|k| project.get(k).map(|v| (k, Some(v)))).collect();
    let mut rel_poetry = Vec::new();
    for k in LEGACY.iter().copied().chain(["group"]) {
        let d = tool_poetry.get(k);
        if d.is_none() && (!LEGACY.contains(&k) || !rel_project.is_empty() || !groups.is_empty()) { continue }
        rel_poetry.push((k, d));
    }
    let mut s = String::new();
    if rel_project.is_empty() && groups.is_empty() {
        py_obj(rel_poetry, &mut s);
    } else {
        // {"dependency-groups": …, "project": {…}, "tool": {"poetry": {…}}}, keys sorted
        s.push('{');
        if !groups.is_empty() { py_str("dependency-groups", &mut s); s.push_str(": "); py_json(&Value::Table(groups.clone()), &mut s); s.push_str(", "); }
        if !rel_project.is_empty() { py_str("project", &mut s); s.push_str(": "); py_obj(rel_project, &mut s); s.push_str(", "); }
        s.push_str("\"tool\": {\"poetry\": "); py_obj(rel_poetry, &mut s); s.push_str("}}");
    }
    if std::env::var_os("SHOW_JSON").is_some() { eprintln!("{s}") }
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    for dir in std::env::args().skip(1) {
        let py: Table = std::fs::read_to_string(format!("{dir}/pyproject.toml")).unwrap().parse().unwrap();
        let lock_text = std::fs::read_to_string(format!("{dir}/poetry.lock")).unwrap();
        let lock: Table = lock_text.parse().unwrap();
        let want = lock["metadata"]["content-hash"].as_str().unwrap().to_string();
        let now = content_hash(&py, true);
        // poetry: a lock written before 2.3.0 did not hash dependency-groups
        let header_version = lock_text.lines().next().and_then(|l| l.split("Poetry ").nth(1)).and_then(|r| r.split(' ').next()).unwrap_or("");
        let pre_2_3 = header_version.split('.').take(2).map(|x| x.parse::<u32>().unwrap_or(u32::MAX)).collect::<Vec<_>>() < vec![2, 3];
        let fresh = now == want || (pre_2_3 && content_hash(&py, false) == want);
        println!("{dir}: fresh={fresh} (header {header_version:?})");
    }
}
