//! Typed reads of pod JSON fields, each failure naming the field's path
//! (`spec.containers[0].securityContext.runAsUser`): `path` is the parent's path, the helpers
//! add the key.

use serde_json::{Map, Value};

use crate::pod::{wrong, ShapeError};

pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

pub(crate) fn object<'a>(
    v: &'a Value,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ShapeError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(wrong(path, "object", other)),
    }
}

pub(crate) fn get_object<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ShapeError> {
    match parent.get(key) {
        None => Ok(None),
        Some(v) => object(v, &join(path, key)),
    }
}

pub(crate) fn get_array<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a [Value], ShapeError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(wrong(&join(path, key), "array", other)),
    }
}

pub(crate) fn get_string(
    parent: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, ShapeError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong(&join(path, key), "string", other)),
    }
}

pub(crate) fn get_bool(
    parent: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<bool>, ShapeError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong(&join(path, key), "boolean", other)),
    }
}

/// An integer, as Go decodes one into `int32`/`int64` (a fraction or exponent is an error).
pub(crate) fn get_int(
    parent: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<i64>, ShapeError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) => Ok(Some(n)),
            None => Err(wrong(&join(path, key), "integer", v)),
        },
    }
}

pub(crate) fn strings(
    parent: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Vec<String>, ShapeError> {
    let mut out = Vec::new();
    for (i, v) in get_array(parent, key, path)?.iter().enumerate() {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Null => out.push(String::new()),
            other => return Err(wrong(&format!("{}[{i}]", join(path, key)), "string", other)),
        }
    }
    Ok(out)
}
