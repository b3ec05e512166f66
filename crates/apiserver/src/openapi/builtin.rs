//! The built-in kinds' schemas, from the `JsonSchema` impls of the `k8s-openapi` crate (API
//! version 1.33, generated from the Kubernetes API types with their descriptions), shaped as
//! kube-apiserver publishes them in its OpenAPI v3 documents
//! (staging/src/k8s.io/kube-openapi/pkg/builder3: components named by the Go package path,
//! `$ref: "#/components/schemas/..."`, a field's own description beside an `allOf` of its
//! type's reference, `x-kubernetes-group-version-kind` on each kind).

use k8s_openapi::api::{apps, coordination, core, discovery, events, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

/// Adds `kind`'s schema (and every schema it refers to) to `gen`, if it is a built-in kind of
/// `group`/`version` this module knows.
fn add_kind(gen: &mut SchemaGenerator, group: &str, version: &str, kind: &str) -> bool {
    match (group, version, kind) {
        ("", "v1", "Namespace") => gen.subschema_for::<core::v1::Namespace>(),
        ("", "v1", "Pod") => gen.subschema_for::<core::v1::Pod>(),
        ("", "v1", "Node") => gen.subschema_for::<core::v1::Node>(),
        ("", "v1", "Event") => gen.subschema_for::<core::v1::Event>(),
        ("", "v1", "Service") => gen.subschema_for::<core::v1::Service>(),
        ("", "v1", "Endpoints") => gen.subschema_for::<core::v1::Endpoints>(),
        ("", "v1", "ConfigMap") => gen.subschema_for::<core::v1::ConfigMap>(),
        ("", "v1", "Secret") => gen.subschema_for::<core::v1::Secret>(),
        ("", "v1", "ServiceAccount") => gen.subschema_for::<core::v1::ServiceAccount>(),
        ("apps", "v1", "DaemonSet") => gen.subschema_for::<apps::v1::DaemonSet>(),
        ("apps", "v1", "Deployment") => gen.subschema_for::<apps::v1::Deployment>(),
        ("apps", "v1", "ReplicaSet") => gen.subschema_for::<apps::v1::ReplicaSet>(),
        ("coordination.k8s.io", "v1", "Lease") => gen.subschema_for::<coordination::v1::Lease>(),
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            gen.subschema_for::<discovery::v1::EndpointSlice>()
        }
        ("events.k8s.io", "v1", "Event") => gen.subschema_for::<events::v1::Event>(),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            gen.subschema_for::<apiextensions::v1::CustomResourceDefinition>()
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => {
            gen.subschema_for::<rbac::v1::ClusterRole>()
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            gen.subschema_for::<rbac::v1::ClusterRoleBinding>()
        }
        ("rbac.authorization.k8s.io", "v1", "Role") => gen.subschema_for::<rbac::v1::Role>(),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => {
            gen.subschema_for::<rbac::v1::RoleBinding>()
        }
        _ => return false,
    };
    true
}

/// The name kube-apiserver gives a kind's schema: the Go package path of its type, reversed
/// for the group (`io.k8s.api.core.v1.Pod`, `io.k8s.api.apps.v1.Deployment`,
/// `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition`).
pub fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let pkg = match group {
        "" => "core".to_owned(),
        "apiextensions.k8s.io" => {
            return format!(
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}"
            )
        }
        g => g
            .strip_suffix(".k8s.io")
            .unwrap_or(g)
            .split('.')
            .next()
            .unwrap_or(g)
            .to_owned(),
    };
    format!("io.k8s.api.{pkg}.{version}.{kind}")
}

/// The schemas of `kinds` of `group`/`version` and of everything they refer to, keyed by
/// their upstream names; `None` when this module knows none of the kinds.
pub fn schemas(group: &str, version: &str, kinds: &[&str]) -> Option<Map<String, Value>> {
    let mut gen = SchemaSettings::openapi3().into_generator();
    let known: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| add_kind(&mut gen, group, version, k))
        .collect();
    if known.is_empty() {
        return None;
    }
    let mut defs = gen.take_definitions(true);
    fixups(&mut defs);
    for kind in known {
        let Some(s) = defs.get_mut(&schema_name(group, version, kind)) else {
            continue;
        };
        set_gvk(s, group, version, kind);
        // k8s-openapi makes every kind's metadata mandatory; upstream only core Event's (its
        // Go field has no omitempty).
        if (group, kind) != ("", "Event") {
            unrequire(s, "metadata");
        }
    }
    Some(defs)
}

fn unrequire(s: &mut Value, field: &str) {
    let empty = match s.get_mut("required").and_then(Value::as_array_mut) {
        Some(r) => {
            r.retain(|f| f != field);
            r.is_empty()
        }
        None => false,
    };
    if empty {
        if let Some(o) = s.as_object_mut() {
            o.remove("required");
        }
    }
}

fn remove(defs: &mut Map<String, Value>, name: &str, key: &str) {
    if let Some(o) = defs.get_mut(name).and_then(Value::as_object_mut) {
        o.remove(key);
    }
}

/// Where k8s-openapi's schemas depart from kube-apiserver's published ones, the published
/// form.
fn fixups(defs: &mut Map<String, Value>) {
    // Quantity and IntOrString are `oneOf` their two JSON types in kube-openapi's v3
    // (k8s.io/apimachinery pkg/api/resource/quantity.go and pkg/util/intstr/intstr.go,
    // OpenAPIV3OneOfTypes); k8s-openapi marks them `x-kubernetes-int-or-string`, the form of
    // CustomResourceDefinition schemas.
    for (name, one_of, format) in [
        (
            "io.k8s.apimachinery.pkg.api.resource.Quantity",
            json!([{"type": "string"}, {"type": "number"}]),
            None,
        ),
        (
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
            json!([{"type": "integer"}, {"type": "string"}]),
            Some("int-or-string"),
        ),
    ] {
        let Some(o) = defs.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        o.remove("x-kubernetes-int-or-string");
        o.insert("oneOf".into(), one_of);
        if let Some(f) = format {
            o.insert("format".into(), json!(f));
        }
    }
    // apiextensions' any-JSON and either-or types carry only their description upstream
    // (their OpenAPISchemaType is empty: staging/src/k8s.io/apiextensions-apiserver
    // pkg/apis/apiextensions/v1/types_jsonschema.go and its *_openapi.go).
    const APIEXT: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.";
    remove(defs, &format!("{APIEXT}JSON"), "type");
    for either in [
        "JSONSchemaPropsOrArray",
        "JSONSchemaPropsOrBool",
        "JSONSchemaPropsOrStringArray",
    ] {
        remove(defs, &format!("{APIEXT}{either}"), "oneOf");
    }
    // The references whose `name` is "effectively required, but due to backwards
    // compatibility is allowed to be empty" (their descriptions say): optional upstream,
    // a plain `String` in k8s-openapi.
    for r in [
        "LocalObjectReference",
        "ConfigMapEnvSource",
        "ConfigMapKeySelector",
        "ConfigMapProjection",
        "ConfigMapVolumeSource",
        "SecretEnvSource",
        "SecretKeySelector",
        "SecretProjection",
    ] {
        if let Some(s) = defs.get_mut(&format!("io.k8s.api.core.v1.{r}")) {
            unrequire(s, "name");
        }
    }
    // events.k8s.io/v1 Event's eventTime is required upstream (k8s.io/api events/v1
    // types.go); k8s-openapi makes it optional.
    if let Some(r) = defs
        .get_mut("io.k8s.api.events.v1.Event")
        .and_then(|s| s.get_mut("required"))
        .and_then(Value::as_array_mut)
    {
        if !r.iter().any(|f| f == "eventTime") {
            r.push(json!("eventTime"));
        }
    }
}

/// Marks a kind's schema as kube-apiserver does.
pub fn set_gvk(s: &mut Value, group: &str, version: &str, kind: &str) {
    s["x-kubernetes-group-version-kind"] =
        json!([{"group": group, "kind": kind, "version": version}]);
}
