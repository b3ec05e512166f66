//! PATCH bodies: JSON patch, JSON merge patch, and an approximation of strategic merge patch.
//!
//! Strategic merge (staging/src/k8s.io/apimachinery/pkg/util/strategicpatch/patch.go) is driven by
//! the Go struct tags `patchStrategy`/`patchMergeKey`. Without the Go types, this module uses a
//! fixed table of merge keys by field name (the common ones of the built-in kinds):
//! - object lists merge by key: containers, initContainers, ephemeralContainers, env, volumes,
//!   imagePullSecrets, hostAliases by `name`/`ip`; container ports by `containerPort`, service
//!   ports by `port`; volumeMounts by `mountPath`; volumeDevices by `devicePath`; conditions by
//!   `type`; ownerReferences by `uid`; topologySpreadConstraints by `topologyKey`;
//! - `finalizers` merges as a set of strings;
//! - every other list is replaced, as for merge patch;
//! - directives: `null` deletes a key, `{"$patch":"delete", key}` removes a list item,
//!   `{"$patch":"replace"}` replaces a map, `$deleteFromPrimitiveList/<f>` removes strings,
//!   `$setElementOrder/<f>` and `$retainKeys` are accepted and dropped.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch flavours, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply; JSON bodies only for now).
    Apply,
}

impl PatchType {
    /// Maps a Content-Type to a patch type.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            _ => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {base:?})"
            ))),
        }
    }
}

/// How deeply (arrays and objects) a patched object may nest: stored objects are read back by
/// serde_json, which refuses 128 levels, so a deeper object could be stored but never read or
/// listed again. Bodies are parsed with the same limit; only a JSON patch, which puts a value
/// at a path, can nest deeper than its body.
pub const MAX_DEPTH: usize = 127;

/// Applies `patch` of type `ty` to `doc`; `doc` is unchanged on error.
pub fn apply(ty: PatchType, doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let mut patched = doc.clone();
    apply_in_place(ty, &mut patched, patch)?;
    if depth(&patched) > MAX_DEPTH {
        return Err(ApiError::unprocessable(format!(
            "the patched object would be nested more than {MAX_DEPTH} levels deep"
        )));
    }
    *doc = patched;
    Ok(())
}

/// The nesting depth of arrays and objects (a scalar is 0).
pub(crate) fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            Value::Object(m) => stack.extend(m.values().map(|c| (c, d + 1))),
            _ => {}
        }
        if matches!(v, Value::Array(_) | Value::Object(_)) {
            deepest = deepest.max(d + 1);
        }
    }
    deepest
}

fn apply_in_place(ty: PatchType, doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    match ty {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            // On a failing operation `json_patch::patch` undoes the earlier ones, and that undo
            // panics for some sequences (json-patch 4.2: a `move` to the root, then any failing
            // operation). `apply` works on a copy, so no undo is needed.
            json_patch::patch_unsafe(doc, &p).map_err(|e| ApiError::unprocessable(e.to_string()))
        }
        PatchType::Merge => {
            json_patch::merge(doc, patch);
            Ok(())
        }
        PatchType::Strategic | PatchType::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(doc, patch, "");
            Ok(())
        }
    }
}

/// The merge key of a list field, by name (also the associative lists of
/// [`crate::fieldmanager`]).
pub(crate) fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some("name"),
        "hostAliases" => Some("ip"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "topologySpreadConstraints" => Some("topologyKey"),
        _ => None,
    }
}

/// Removes `$`-directives from a value that is inserted as is.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

fn strategic_merge(target: &mut Value, patch: &Value, field: &str) {
    let Some(pm) = patch.as_object() else {
        *target = strip(patch);
        return;
    };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let _ = field;
    for (k, v) in pm {
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(arr), Some(del)) = (
                target.get_mut(list).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                arr.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let tm = target.as_object_mut().expect("made an object above");
        if v.is_null() {
            tm.remove(k);
            continue;
        }
        match (tm.get_mut(k), v) {
            (Some(t @ Value::Object(_)), Value::Object(_)) => strategic_merge(t, v, k),
            (Some(Value::Array(t)), Value::Array(p)) => {
                if k == "finalizers" {
                    for x in p {
                        if !t.contains(x) {
                            t.push(x.clone());
                        }
                    }
                } else if let Some(key) = merge_key(k, p) {
                    merge_list(t, p, key, k);
                } else {
                    *t = p.iter().map(strip).collect();
                }
            }
            _ => {
                tm.insert(k.clone(), strip(v));
            }
        }
    }
}

fn merge_list(target: &mut Vec<Value>, patch: &[Value], key: &str, field: &str) {
    for item in patch {
        let Some(kv) = item.get(key) else {
            target.push(strip(item));
            continue;
        };
        let pos = target.iter().position(|t| t.get(key) == Some(kv));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut target[i], item, field),
            (None, false) => target.push(strip(item)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_applies_kubectl_apply_patches() {
        let mut live = json!({"metadata": {"labels": {"app": "web", "tier": "x"}},
            "spec": {"containers": [
                {"name": "a", "image": "i1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "b", "image": "i2"}]}});
        let patch = json!({"metadata": {"labels": {"tier": null}},
            "spec": {"$setElementOrder/containers": [{"name": "a"}],
                     "containers": [{"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}], "name": "a", "image": "i3"},
                                    {"$patch": "delete", "name": "b"}]}});
        apply(PatchType::Strategic, &mut live, &patch).unwrap();
        assert_eq!(
            live,
            json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "a", "image": "i3", "env": [{"name": "A", "value": "1"}]}]}})
        );
    }

    #[test]
    fn strategic_merge_appends_new_keyed_items_and_replaces_other_lists() {
        let mut live =
            json!({"spec": {"containers": [{"name": "a"}], "args": ["x"], "finalizers": ["f1"]}});
        let patch =
            json!({"spec": {"containers": [{"name": "b"}], "args": ["y"], "finalizers": ["f2"]}});
        apply(PatchType::Strategic, &mut live, &patch).unwrap();
        assert_eq!(
            live,
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "args": ["y"], "finalizers": ["f1", "f2"]}})
        );
    }

    #[test]
    fn merge_and_json_patches_follow_their_rfcs() {
        let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        apply(
            PatchType::Merge,
            &mut doc,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
        )
        .unwrap();
        assert_eq!(doc, json!({"metadata": {"labels": {"b": "2", "c": "3"}}}));
        apply(
            PatchType::Json,
            &mut doc,
            &json!([{"op": "replace", "path": "/metadata/labels/b", "value": "9"}]),
        )
        .unwrap();
        assert_eq!(doc["metadata"]["labels"]["b"], "9");
        let err = apply(
            PatchType::Json,
            &mut doc,
            &json!([{"op": "remove", "path": "/nope"}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(PatchType::from_content_type("text/plain").is_err());
    }

    /// Found by tests/fuzz.rs: a JSON patch putting a 120-deep value 120 levels down stored
    /// an object the server could never read back (every GET and LIST of the kind failed).
    #[test]
    fn patches_cannot_nest_deeper_than_the_parser_reads() {
        let deep = |n: usize| -> Value {
            serde_json::from_str(&format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))).unwrap()
        };
        let doc = json!({"spec": deep(120)});
        assert_eq!(depth(&doc), 121);
        let path = format!("/spec{}", "/a".repeat(119));
        for n in [1, 6, 7, 8, 120] {
            let p = json!([{"op": "replace", "path": path, "value": deep(n)}]);
            let mut patched = doc.clone();
            let ops: json_patch::Patch = serde_json::from_value(p.clone()).unwrap();
            let readable = json_patch::patch_unsafe(&mut patched, &ops).is_ok()
                && serde_json::from_str::<Value>(&patched.to_string()).is_ok();
            let mut d = doc.clone();
            match apply(PatchType::Json, &mut d, &p) {
                Ok(()) => assert!(readable, "{n}: accepted an unreadable object"),
                Err(e) => {
                    assert!(!readable, "{n}: refused a readable object");
                    assert_eq!(e.code, 422);
                    assert!(
                        e.message.contains("nested more than 127 levels"),
                        "{}",
                        e.message
                    );
                    assert_eq!(d, doc, "unchanged on error");
                }
            }
        }
        let mut d = doc.clone();
        assert!(apply(
            PatchType::Json,
            &mut d,
            &json!([{"op": "replace", "path": path, "value": deep(120)}])
        )
        .is_err());
        assert!(apply(
            PatchType::Json,
            &mut d,
            &json!([{"op": "replace", "path": path, "value": deep(6)}])
        )
        .is_ok());
    }

    /// Found by tests/fuzz.rs: json-patch's undo of a `move` to the root panicked when a later
    /// operation failed. Now the failure is an error and the document is unchanged.
    #[test]
    fn a_failing_json_patch_after_a_move_to_the_root_is_an_error() {
        let mut doc = json!({"kind": "Pod", "metadata": {"name": "a"}});
        let before = doc.clone();
        let err = apply(
            PatchType::Json,
            &mut doc,
            &json!([{"op": "move", "from": "/kind", "path": ""}, {"op": "add", "path": "/", "value": null}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(doc, before);
    }
}
