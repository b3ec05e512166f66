//! Unknown fields of built-in kinds, as kube-apiserver's decoder meets them.
//!
//! kube-apiserver decodes a built-in object into its Go type: a field the type does not have
//! is dropped, and `fieldValidation` decides what the client hears
//! (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/create.go and update.go, with the
//! strict decoder of staging/src/k8s.io/apimachinery/pkg/runtime/serializer/json/json.go):
//! `Ignore` nothing, `Warn` (the default) one `unknown field "path"` warning per field, `Strict`
//! a 400 `<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error: unknown
//! field "spec.foo", ...`. Here the Go type is the kind's OpenAPI schema as the emulated release
//! has it ([`crate::openapi::kind_schema`]), so a field a release did not have yet is unknown
//! to it, as it is to that release's decoder.
//!
//! One departure, to fail closed: an unknown `appArmorProfile` (a pre-1.30 release) is refused
//! whatever `fieldValidation` says, since dropping it would run the pod without the
//! confinement it asked for.

use serde_json::{Map, Value};

use crate::crd::FieldValidation;
use crate::error::ApiError;

/// The part of an OpenAPI schema that [`check_unknown`] reads: `$ref`, `allOf`, `properties`,
/// `additionalProperties`, `items` and `x-kubernetes-preserve-unknown-fields`, recursively.
/// The schemas are kept for the life of the server, and descriptions are most of their size.
pub fn structural(schema: &Value) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let kept = match k.as_str() {
            "$ref" | "x-kubernetes-preserve-unknown-fields" => v.clone(),
            "allOf" => Value::Array(v.as_array().into_iter().flatten().map(structural).collect()),
            "items" | "additionalProperties" => structural(v),
            "properties" => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, p)| (name.clone(), structural(p)))
                    .collect(),
            ),
            _ => continue,
        };
        out.insert(k.clone(), kept);
    }
    Value::Object(out)
}

/// The schema `s` stands for: through `$ref`s and single-element `allOf`s.
fn resolve<'a>(components: &'a Map<String, Value>, mut s: &'a Value) -> &'a Value {
    // The chain is short in practice (a field's `allOf: [{$ref}]`); the bound guards a cycle.
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r
                .strip_prefix("#/components/schemas/")
                .and_then(|n| components.get(n))
            {
                Some(next) => s = next,
                None => return s,
            }
        } else if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = only;
        } else {
            return s;
        }
    }
    s
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes from `v` the fields `schema` does not declare, recording their paths.
fn prune(
    components: &Map<String, Value>,
    schema: &Value,
    v: &mut Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let schema = resolve(components, schema);
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match v {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    match props.get(&k) {
                        Some(sub) => {
                            let field = map.get_mut(&k).expect("listed key");
                            prune(components, sub, field, &child(path, &k), out);
                        }
                        None => {
                            map.remove(&k);
                            out.push(child(path, &k));
                        }
                    }
                }
            } else if let Some(values) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for (k, field) in map.iter_mut() {
                    prune(components, values, field, &child(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, x) in items.iter_mut().enumerate() {
                    prune(components, item, x, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Drops the fields of `obj` that kind `root` (a schema in `components`) does not have and
/// answers as `fv` says: warnings to add, or the strict decoding error.
pub fn check_unknown(
    (kind, version): (&str, &str),
    components: &Map<String, Value>,
    root: &str,
    obj: &mut Value,
    fv: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let Some(schema) = components.get(root) else {
        return Ok(Vec::new());
    };
    let mut unknown = Vec::new();
    prune(components, schema, obj, "", &mut unknown);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = unknown
        .iter()
        .map(|p| {
            format!(
                "unknown field {}",
                serde_json::to_string(p).unwrap_or_default()
            )
        })
        .collect();
    let fail_closed = unknown.iter().any(|p| p.ends_with(".appArmorProfile"));
    match fv {
        FieldValidation::Strict => Err(strict_error(kind, version, &texts)),
        _ if fail_closed => Err(strict_error(kind, version, &texts)),
        FieldValidation::Warn => Ok(texts),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

/// kube-apiserver's 400 for a strict decoding failure.
pub fn strict_error(kind: &str, version: &str, texts: &[String]) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
        texts.join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn components() -> Map<String, Value> {
        json!({
            "Pod": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "metadata": {"allOf": [{"$ref": "#/components/schemas/Meta"}]},
                "spec": {"allOf": [{"$ref": "#/components/schemas/Spec"}]}}},
            "Meta": {"type": "object", "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "managedFields": {"type": "array", "items": {"$ref": "#/components/schemas/Raw"}}}},
            "Raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "Spec": {"type": "object", "properties": {
                "containers": {"type": "array", "items": {"$ref": "#/components/schemas/C"}},
                "securityContext": {"type": "object", "properties": {"runAsUser": {"type": "integer"}}}}},
            "C": {"type": "object", "description": "A container.", "properties": {"name": {"type": "string"}}},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn def() -> (&'static str, &'static str) {
        ("Pod", "v1")
    }

    #[test]
    fn unknown_fields_are_dropped_and_named_by_path() {
        let mut obj = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1,
                         "managedFields": [{"anything": {"f:x": {}}}]},
            "spec": {"containers": [{"name": "c"}, {"name": "d", "extra": true}], "top": 1},
            "status2": {}});
        let w =
            check_unknown(def(), &components(), "Pod", &mut obj, FieldValidation::Warn).unwrap();
        assert_eq!(
            w,
            [
                "unknown field \"metadata.bogus\"",
                "unknown field \"spec.containers[1].extra\"",
                "unknown field \"spec.top\"",
                "unknown field \"status2\"",
            ]
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": {"a": "b"},
                             "managedFields": [{"anything": {"f:x": {}}}]},
                "spec": {"containers": [{"name": "c"}, {"name": "d"}]}})
        );
    }

    #[test]
    fn the_structural_schema_keeps_what_the_check_reads_only() {
        let full = components();
        let slim: Map<String, Value> = full
            .iter()
            .map(|(k, v)| (k.clone(), structural(v)))
            .collect();
        assert_eq!(slim["C"], json!({"properties": {"name": {}}}));
        assert_eq!(
            slim["Meta"]["properties"]["managedFields"],
            json!({"items": {"$ref": "#/components/schemas/Raw"}})
        );
        assert_eq!(
            slim["Raw"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        let obj = json!({"metadata": {"name": "p", "x": 1, "labels": {"a": "b"},
                                      "managedFields": [{"y": 2}]},
                         "spec": {"containers": [{"name": "c", "z": 3}], "top": 1}});
        let (mut a, mut b) = (obj.clone(), obj);
        let wa = check_unknown(def(), &full, "Pod", &mut a, FieldValidation::Warn).unwrap();
        let wb = check_unknown(def(), &slim, "Pod", &mut b, FieldValidation::Warn).unwrap();
        assert_eq!((wa.len(), &a), (3, &b));
        assert_eq!(wa, wb);
    }

    #[test]
    fn strict_refuses_ignore_is_silent_known_objects_pass() {
        let mut obj = json!({"spec": {"top": 1}});
        let e = check_unknown(
            def(),
            &components(),
            "Pod",
            &mut obj.clone(),
            FieldValidation::Strict,
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.top\""
        );
        let w = check_unknown(
            def(),
            &components(),
            "Pod",
            &mut obj,
            FieldValidation::Ignore,
        )
        .unwrap();
        assert!(w.is_empty());
        assert_eq!(obj, json!({"spec": {}}));
        let mut ok =
            json!({"spec": {"containers": [{"name": "c"}], "securityContext": {"runAsUser": 1}}});
        let before = ok.clone();
        let w = check_unknown(
            def(),
            &components(),
            "Pod",
            &mut ok,
            FieldValidation::Strict,
        )
        .unwrap();
        assert!(w.is_empty());
        assert_eq!(ok, before);
    }

    #[test]
    fn an_unknown_apparmor_profile_is_refused_even_when_warned() {
        let mut obj =
            json!({"spec": {"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}}});
        let e = check_unknown(def(), &components(), "Pod", &mut obj, FieldValidation::Warn)
            .unwrap_err();
        assert!(
            e.message.ends_with(
                "strict decoding error: unknown field \"spec.securityContext.appArmorProfile\""
            ),
            "{}",
            e.message
        );
    }
}
