//! Conversion between a served version and the storage version of a kind.
//!
//! `events.k8s.io/v1` Events are stored as core `v1` Events, so both APIs see the same objects, as
//! in Kubernetes; the field mapping follows pkg/apis/events/v1/conversion.go. Every other kind is
//! stored as served.

use serde_json::{json, Value};

use crate::registry::ResourceDef;

/// (`events.k8s.io/v1` name, core `v1` name) of the renamed Event fields.
const EVENT_FIELDS: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_events_api(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io" && def.plural == "events"
}

fn rename(obj: &mut Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    if let Some(m) = obj.as_object_mut() {
        for (from, to) in pairs {
            match m.remove(from) {
                Some(v) => {
                    m.insert(to.to_string(), v);
                }
                None => {
                    m.remove(to);
                }
            }
        }
    }
}

/// Converts an object as served by `def` into its stored form.
pub fn to_storage(def: &ResourceDef, mut obj: Value) -> Value {
    if is_events_api(def) && obj.is_object() {
        rename(&mut obj, EVENT_FIELDS.iter().copied());
        obj["apiVersion"] = json!("v1");
    }
    obj
}

/// Converts a stored object into the form `def` serves.
pub fn from_storage(def: &ResourceDef, mut obj: Value) -> Value {
    if is_events_api(def) && obj.is_object() {
        rename(&mut obj, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)));
        obj["apiVersion"] = json!("events.k8s.io/v1");
    }
    obj
}

/// Maps a field selector label of `def` to the stored object's field.
pub fn field_label(def: &ResourceDef, field: &str) -> String {
    if is_events_api(def) {
        for (api, stored) in EVENT_FIELDS {
            if let Some(rest) = field.strip_prefix(api) {
                if rest.is_empty() || rest.starts_with('.') {
                    return format!("{stored}{rest}");
                }
            }
        }
    }
    field.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn events_round_trip_between_the_two_apis() {
        let def = registry::builtin("events.k8s.io", "v1", "events").unwrap();
        let api = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
                         "regarding": {"kind": "Pod", "name": "web"}, "note": "hello",
                         "reason": "Started", "reportingController": "armorlet", "eventTime": null});
        let stored = to_storage(&def, api.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "web");
        assert_eq!(stored["message"], "hello");
        assert_eq!(stored["reportingComponent"], "armorlet");
        assert!(stored.get("note").is_none());
        assert_eq!(from_storage(&def, stored), api);
        assert_eq!(field_label(&def, "regarding.name"), "involvedObject.name");
        assert_eq!(field_label(&def, "reason"), "reason");
        let core = registry::core("events");
        assert_eq!(
            to_storage(&core, json!({"message": "m"})),
            json!({"message": "m"})
        );
    }
}
