//! OpenAPI v3 (`/openapi/v3`, `/openapi/v3/api/v1?hash=...`), which `kubectl explain` reads for
//! every kind and `kubectl apply` for its patches and to learn that the server validates fields
//! (`fieldValidation`).
//!
//! Built-in group/versions get documents shaped as kube-apiserver's: the schemas of the kinds
//! served (from k8s-openapi's `JsonSchema` impls, [`builtin`]; `policy/v1beta1`
//! PodSecurityPolicy written by hand, [`psp`]) under their upstream names, and the paths of the
//! resources and subresources this server serves. Below the newest release the schemas lose the
//! properties the emulated release did not have yet ([`since`]; e.g. `appArmorProfile` before
//! 1.30). Each is generated on first use, once per release, then served as the same bytes.
//! Custom resources get their definition's schema under the name kube-apiserver gives it
//! (reversed group, version, kind), merged into the built-in document when they share its
//! group/version.
//!
//! The `?hash=` of each URL in the root document is a hash of the document served there; as
//! kube-openapi's handler3 (staging/src/k8s.io/kube-openapi/pkg/handler3/handler.go), a request
//! with the current hash is answered as immutable, and one with another hash is redirected to the
//! current URL.

mod builtin;
mod psp;
mod since;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::registry::{Registry, ResourceDef};

/// A document ready to serve.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The JSON bytes.
    pub bytes: Bytes,
    /// The hash in its `?hash=` URL.
    pub hash: String,
}

impl Doc {
    fn new(v: &Value) -> Self {
        let bytes = Bytes::from(v.to_string());
        let hash = fnv(&bytes);
        Doc { bytes, hash }
    }
}

/// Document path and release minor → the document, if the release serves it.
type DocCache = HashMap<(String, u32), Option<Arc<Doc>>>;

/// The built-in documents, per (path, minor): generated once, then shared.
static BUILTIN: LazyLock<Mutex<DocCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// `api/v1` or `apis/apps/v1`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a over the document, for its `?hash=` URL.
fn fnv(b: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in b {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// The query parameters of a write (kube-apiserver's, as kubectl looks for `fieldValidation`
/// to learn that the server validates fields).
fn write_params() -> Value {
    json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
    ])
}

/// One operation of a path: kube-openapi's `x-kubernetes-action` and
/// `x-kubernetes-group-version-kind`, the write parameters, and the kind as the response.
/// PATCH has no `requestBody`: kubectl apply then computes its strategic merge patches from its
/// compiled-in types (kubectl pkg/cmd/apply/patcher.go `gvkSupportsPatchOpenAPIV3`), not from
/// these schemas, which lack kube-openapi's `x-kubernetes-patch-*` extensions.
fn op(action: &str, gvk: &Value, schema: Option<&str>) -> Value {
    let mut ok = json!({"description": "OK"});
    if let Some(s) = schema {
        ok["content"] =
            json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{s}")}}});
    }
    let mut o = json!({
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "responses": {"200": ok},
    });
    if matches!(action, "post" | "put" | "patch") {
        o["parameters"] = write_params();
    }
    o
}

/// The paths kube-apiserver publishes for built-in resource `r` and its subresources, as far
/// as this server serves them (kube-apiserver's endpoints/installer.go naming).
fn resource_paths(r: &ResourceDef, paths: &mut Map<String, Value>) {
    let base = format!("/{}", gv_path(&r.group, &r.version));
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let schema = builtin::schema_name(&r.group, &r.version, &r.kind);
    let s = Some(schema.as_str());
    let ns = if r.namespaced {
        "namespaces/{namespace}/"
    } else {
        ""
    };
    let coll = format!("{base}/{ns}{}", r.plural);
    let item = format!("{coll}/{{name}}");
    paths.insert(
        coll.clone(),
        json!({"get": op("list", &gvk, None), "post": op("post", &gvk, s), "delete": op("deletecollection", &gvk, None)}),
    );
    paths.insert(
        item.clone(),
        json!({"get": op("get", &gvk, s), "put": op("put", &gvk, s), "patch": op("patch", &gvk, s), "delete": op("delete", &gvk, None)}),
    );
    let watch = format!("{base}/watch/{ns}{}", r.plural);
    paths.insert(watch.clone(), json!({"get": op("watchlist", &gvk, None)}));
    paths.insert(
        format!("{watch}/{{name}}"),
        json!({"get": op("watch", &gvk, None)}),
    );
    if r.namespaced {
        // Across namespaces.
        paths.insert(
            format!("{base}/{}", r.plural),
            json!({"get": op("list", &gvk, None)}),
        );
        paths.insert(
            format!("{base}/watch/{}", r.plural),
            json!({"get": op("watchlist", &gvk, None)}),
        );
    }
    if r.has_status {
        paths.insert(
            format!("{item}/status"),
            json!({"get": op("get", &gvk, s), "put": op("put", &gvk, s), "patch": op("patch", &gvk, s)}),
        );
    }
    if r.is("", "namespaces") {
        paths.insert(
            format!("{item}/finalize"),
            json!({"put": op("put", &gvk, s)}),
        );
    }
    if r.is("", "pods") {
        let connect = json!({"get": op("connect", &gvk, None), "post": op("connect", &gvk, None)});
        paths.insert(format!("{item}/attach"), connect.clone());
        paths.insert(format!("{item}/exec"), connect);
        paths.insert(format!("{item}/log"), json!({"get": op("get", &gvk, None)}));
        paths.insert(
            format!("{item}/binding"),
            json!({"post": op("post", &gvk, None)}),
        );
    }
}

/// Every `$ref` target in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("$ref", Value::String(s)) => {
                        out.extend(s.strip_prefix("#/components/schemas/"));
                    }
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// Drops what release `minor` did not have ([`since::SINCE`]), then every schema the kinds no
/// longer refer to.
fn emulate(schemas: &mut Map<String, Value>, minor: u32) {
    for &(name, prop, m) in since::SINCE {
        if m <= minor {
            continue;
        }
        let Some(schema) = schemas.get_mut(name) else {
            continue;
        };
        if let Some(p) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            p.remove(prop);
        }
        if let Some(r) = schema.get_mut("required").and_then(Value::as_array_mut) {
            r.retain(|v| v != prop);
        }
    }
    for &(name, prop, text, m) in since::SINCE_TEXT {
        if m <= minor {
            continue;
        }
        let Some(mut at) = schemas.get_mut(name) else {
            continue;
        };
        if !prop.is_empty() {
            match at.get_mut("properties").and_then(|p| p.get_mut(prop)) {
                Some(p) => at = p,
                None => continue,
            }
        }
        if let Some(d) = at.get("description").and_then(Value::as_str) {
            let d = d.replacen(text, "", 1);
            at["description"] = Value::String(d);
        }
    }
    let mut live: HashSet<String> = schemas
        .iter()
        .filter(|(_, s)| s.get("x-kubernetes-group-version-kind").is_some())
        .map(|(n, _)| n.clone())
        .collect();
    let mut todo: Vec<String> = live.iter().cloned().collect();
    while let Some(n) = todo.pop() {
        let mut found = Vec::new();
        if let Some(s) = schemas.get(&n) {
            refs(s, &mut found);
        }
        for f in found {
            if live.insert(f.to_owned()) {
                todo.push(f.to_owned());
            }
        }
    }
    schemas.retain(|n, _| live.contains(n));
}

/// The built-in resources `rel` serves in `group`/`version`.
fn served_builtins(group: &str, version: &str, rel: &Registry) -> Vec<Arc<ResourceDef>> {
    rel.in_group_version(group, version)
        .into_iter()
        .filter(|r| r.custom.is_none())
        .collect()
}

/// The schemas of the built-in kinds of `group`/`version` as `rel`'s release has them.
fn builtin_schemas(
    group: &str,
    version: &str,
    served: &[Arc<ResourceDef>],
    rel: &Registry,
) -> Option<Map<String, Value>> {
    let mut schemas = if (group, version) == ("policy", "v1beta1") {
        psp::schemas()
    } else {
        let kinds: Vec<&str> = served.iter().map(|r| r.kind.as_str()).collect();
        builtin::schemas(group, version, &kinds)?
    };
    emulate(&mut schemas, rel.release().minor());
    Some(schemas)
}

/// Group/version and release minor → the emulated schemas of its built-in kinds.
type SchemaCache = HashMap<(String, u32), Option<Arc<Map<String, Value>>>>;

static BUILTIN_SCHEMAS: LazyLock<Mutex<SchemaCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The schema of a built-in kind as `rel`'s release has it, with the schemas it refers to,
/// for the decoder's unknown-field check ([`crate::fields`]); `None` for kinds without a
/// generated schema (custom resources, and PodSecurityPolicy, whose hand-written schema lists
/// only the fields armorlet enforces, so the policy checks refuse the rest by name).
pub fn kind_schema(def: &ResourceDef, rel: &Registry) -> Option<(Arc<Map<String, Value>>, String)> {
    if def.custom.is_some() || (def.group.as_str(), def.version.as_str()) == ("policy", "v1beta1") {
        return None;
    }
    let key = (gv_path(&def.group, &def.version), rel.release().minor());
    let schemas = {
        let mut cache = BUILTIN_SCHEMAS.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let served = served_builtins(&def.group, &def.version, rel);
                builtin_schemas(&def.group, &def.version, &served, rel).map(|all| {
                    // Only what the unknown-field check reads: a third of the size.
                    Arc::new(
                        all.iter()
                            .map(|(k, v)| (k.clone(), crate::fields::structural(v)))
                            .collect(),
                    )
                })
            })
            .clone()?
    };
    let name = builtin::schema_name(&def.group, &def.version, &def.kind);
    schemas.contains_key(&name).then_some((schemas, name))
}

/// The built-in document of `group`/`version` as `rel`'s release serves it.
fn builtin_value(group: &str, version: &str, rel: &Registry) -> Option<Value> {
    let served = served_builtins(group, version, rel);
    if served.is_empty() {
        return None;
    }
    let schemas = builtin_schemas(group, version, &served, rel)?;
    let mut paths = Map::new();
    paths.insert(
        format!("/{}/", gv_path(group, version)),
        json!({"get": {"description": "get available resources", "responses": {"200": {"description": "OK"}}}}),
    );
    for r in &served {
        resource_paths(r, &mut paths);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The built-in document of a group/version, generated once per release.
fn builtin_doc(group: &str, version: &str, rel: &Registry) -> Option<Arc<Doc>> {
    let key = (gv_path(group, version), rel.release().minor());
    let mut cache = BUILTIN.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| builtin_value(group, version, rel).map(|v| Arc::new(Doc::new(&v))))
        .clone()
}

/// A year from now as Go's `time.RFC1123` prints it in UTC (`Mon, 02 Jan 2006 15:04:05 UTC`),
/// handler3's `Expires` for a document asked for by its current hash.
pub fn expires_in_a_year() -> String {
    let secs = armorlet_store::time::now_unix() + 365 * 86_400;
    let iso = armorlet_store::time::format_rfc3339(secs);
    let (y, m, d, hms) = (&iso[0..4], &iso[5..7], &iso[8..10], &iso[11..19]);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    let mon = MONTHS[m.parse::<usize>().unwrap_or(1).clamp(1, 12) - 1];
    format!("{wd}, {d} {mon} {y} {hms} UTC")
}

/// A PATCH operation for a custom resource: tagged with its GVK and the `fieldValidation`
/// parameter, which makes kubectl leave validation to the server.
fn custom_patch_op(group: &str, version: &str, kind: &str) -> Value {
    json!({"patch": {
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
        "parameters": write_params(),
        "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
    }})
}

/// The OpenAPI v3 document of one group/version, if served.
pub fn document(group: &str, version: &str, rel: &Registry) -> Option<Arc<Doc>> {
    if !rel.has_group_version(group, version) {
        return None;
    }
    let customs: Vec<_> = rel
        .in_group_version(group, version)
        .into_iter()
        .filter(|r| r.custom.is_some())
        .collect();
    let base = builtin_doc(group, version, rel);
    if customs.is_empty() {
        return base;
    }
    let mut doc = match &base {
        Some(b) => serde_json::from_slice(&b.bytes).ok()?,
        None => json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": {},
            "components": {"schemas": {}},
        }),
    };
    let mut paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let mut schemas: Map<String, Value> = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for r in customs {
        let Some(custom) = &r.custom else { continue };
        let reversed: Vec<&str> = r.group.split('.').rev().collect();
        let mut schema = custom.schema.clone();
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        schemas.insert(
            format!("{}.{}.{}", reversed.join("."), r.version, r.kind),
            schema,
        );
        let base = format!("/{}", gv_path(group, version));
        let path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        paths.insert(path, custom_patch_op(&r.group, &r.version, &r.kind));
    }
    doc["paths"] = Value::Object(paths);
    doc["components"]["schemas"] = Value::Object(schemas);
    Some(Arc::new(Doc::new(&doc)))
}

/// `/openapi/v3`: where each group/version document lives.
pub fn root(rel: &Registry) -> Value {
    let mut gvs: Vec<(String, String)> = Vec::new();
    for r in rel.served() {
        let gv = (r.group.clone(), r.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    let mut paths = Map::new();
    for (g, v) in gvs {
        let Some(doc) = document(&g, &v, rel) else {
            continue;
        };
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", doc.hash)}),
        );
    }
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;
    use armorlet_confinement::EmulatedVersion;

    fn rel(minor: &str) -> Registry {
        Registry::new(minor.parse().unwrap())
    }

    fn parsed(g: &str, v: &str, r: &Registry) -> Value {
        serde_json::from_slice(&document(g, v, r).unwrap().bytes).unwrap()
    }

    #[test]
    fn root_points_at_the_documents_served() {
        let r = Registry::new(EmulatedVersion::DEFAULT);
        let root = root(&r);
        let url = root["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let doc = document("", "v1", &r).unwrap();
        assert_eq!(url, format!("/openapi/v3/api/v1?hash={}", doc.hash));
        let doc = parsed("", "v1", &r);
        let op = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Pod");
        assert!(op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(document("nope", "v1", &r).is_none());
        for gv in [
            "apis/apps/v1",
            "apis/rbac.authorization.k8s.io/v1",
            "apis/events.k8s.io/v1",
        ] {
            assert!(root["paths"].get(gv).is_some(), "{gv}");
        }
    }

    #[test]
    fn only_served_resources_and_subresources_have_paths() {
        let doc = parsed("", "v1", &rel("1.32"));
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/",
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "/api/v1/namespaces/{namespace}/pods/{name}/status",
            "/api/v1/watch/namespaces/{namespace}/pods",
            "/api/v1/nodes/{name}/status",
            "/api/v1/namespaces/{name}",
            "/api/v1/namespaces/{name}/finalize",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        for p in [
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
            "/api/v1/persistentvolumes",
            "/api/v1/namespaces/{namespace}/replicationcontrollers",
        ] {
            assert!(!paths.contains_key(p), "{p}");
        }
        assert!(
            doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"]["description"]
                .as_str()
                .unwrap()
                .starts_with("Pod is a collection of containers")
        );
    }

    #[test]
    fn emulated_releases_lack_later_fields() {
        let sc = |minor: &str| {
            let doc = parsed("", "v1", &rel(minor));
            let schemas = &doc["components"]["schemas"];
            (
                schemas["io.k8s.api.core.v1.SecurityContext"]["properties"]
                    .get("appArmorProfile")
                    .is_some(),
                schemas["io.k8s.api.core.v1.PodSecurityContext"]["properties"]
                    .get("supplementalGroupsPolicy")
                    .is_some(),
                schemas.get("io.k8s.api.core.v1.AppArmorProfile").is_some(),
            )
        };
        assert_eq!(sc("1.32"), (true, true, true));
        assert_eq!(sc("1.31"), (true, true, true));
        assert_eq!(sc("1.30"), (true, false, true));
        assert_eq!(sc("1.29"), (false, false, false));
        // 1.33's additions are in no emulated release; their types go with them.
        let doc = parsed("", "v1", &rel("1.32"));
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["io.k8s.api.core.v1.Lifecycle"]["properties"]
            .get("stopSignal")
            .is_none());
        assert!(schemas.get("io.k8s.api.core.v1.NodeSwapStatus").is_none());
        let disc = parsed("discovery.k8s.io", "v1", &rel("1.32"));
        assert!(disc["components"]["schemas"]
            .get("io.k8s.api.discovery.v1.ForNode")
            .is_none());
        assert_eq!(sc("1.22"), (false, false, false));
        // apps/v1 embeds the pod template's types too.
        let apps = parsed("apps", "v1", &rel("1.29"));
        assert!(
            apps["components"]["schemas"]["io.k8s.api.core.v1.SecurityContext"]["properties"]
                .get("appArmorProfile")
                .is_none()
        );
        // A different document, a different hash.
        assert_ne!(
            document("", "v1", &rel("1.29")).unwrap().hash,
            document("", "v1", &rel("1.30")).unwrap().hash
        );
    }

    #[test]
    fn policy_v1beta1_is_served_up_to_1_24() {
        let doc = parsed("policy", "v1beta1", &rel("1.24"));
        let schemas = &doc["components"]["schemas"];
        let psp = &schemas["io.k8s.api.policy.v1beta1.PodSecurityPolicy"];
        assert_eq!(
            psp["x-kubernetes-group-version-kind"],
            json!([{"group": "policy", "kind": "PodSecurityPolicy", "version": "v1beta1"}])
        );
        let spec = &schemas["io.k8s.api.policy.v1beta1.PodSecurityPolicySpec"];
        // What the admission plugin enforces is there; what it refuses is not.
        for f in [
            "privileged",
            "runAsUser",
            "allowedHostPaths",
            "hostPorts",
            "volumes",
        ] {
            assert!(spec["properties"].get(f).is_some(), "{f}");
        }
        for f in [
            "allowedUnsafeSysctls",
            "forbiddenSysctls",
            "runtimeClass",
            "allowedFlexVolumes",
            "allowedCSIDrivers",
        ] {
            assert!(spec["properties"].get(f).is_none(), "{f}");
        }
        assert_eq!(
            spec["required"],
            json!(["seLinux", "runAsUser", "supplementalGroups", "fsGroup"])
        );
        // Its metadata and SELinux options are the shared types.
        assert!(schemas
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .is_some());
        assert!(schemas.get("io.k8s.api.core.v1.SELinuxOptions").is_some());
        assert!(document("policy", "v1beta1", &rel("1.25")).is_none());
    }

    /// Every `$ref` of every document of every release resolves, and every built-in kind
    /// served has its schema, marked with its group/version/kind.
    #[test]
    fn every_release_has_whole_documents() {
        for minor in 22..=32 {
            let r = rel(&format!("1.{minor}"));
            for def in r.served() {
                let doc = parsed(&def.group, &def.version, &r);
                let schemas = doc["components"]["schemas"].as_object().unwrap();
                let mut found = Vec::new();
                refs(&doc, &mut found);
                for f in found {
                    assert!(schemas.contains_key(f), "1.{minor} {}: {f}", def.group);
                }
                let name = builtin::schema_name(&def.group, &def.version, &def.kind);
                let gvk = &schemas[&name]["x-kubernetes-group-version-kind"][0];
                assert_eq!(
                    (&gvk["group"], &gvk["version"], &gvk["kind"]),
                    (&json!(def.group), &json!(def.version), &json!(def.kind)),
                    "{name}"
                );
            }
        }
    }

    /// The forms kube-apiserver publishes, where k8s-openapi's differ.
    #[test]
    fn schemas_have_the_upstream_shape() {
        let doc = parsed("", "v1", &rel("1.32"));
        let s = &doc["components"]["schemas"];
        let pod = &s["io.k8s.api.core.v1.Pod"];
        assert!(pod.get("required").is_none(), "{pod}");
        assert_eq!(
            pod["properties"]["spec"]["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}])
        );
        assert!(pod["properties"]["spec"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Specification of the desired behavior of the pod."));
        assert_eq!(
            s["io.k8s.api.core.v1.Event"]["required"],
            json!(["involvedObject", "metadata"])
        );
        assert!(s["io.k8s.api.core.v1.LocalObjectReference"]
            .get("required")
            .is_none());
        assert_eq!(
            s["io.k8s.api.core.v1.SecretKeySelector"]["required"],
            json!(["key"])
        );
        let ios = &s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(ios["format"], "int-or-string");
        assert_eq!(
            ios["oneOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert!(ios.get("x-kubernetes-int-or-string").is_none());
        // 1.33's texts that name 1.33 are not in an emulated 1.32.
        let ep = s["io.k8s.api.core.v1.Endpoints"]["description"]
            .as_str()
            .unwrap();
        assert!(
            ep.starts_with("Endpoints is a collection of endpoints"),
            "{ep}"
        );
        assert!(!ep.contains("1.33") && !ep.ends_with('\n'), "{ep}");
        let events = parsed("events.k8s.io", "v1", &rel("1.32"));
        assert_eq!(
            events["components"]["schemas"]["io.k8s.api.events.v1.Event"]["required"],
            json!(["eventTime"])
        );
        let crd = parsed("apiextensions.k8s.io", "v1", &rel("1.32"));
        let json_any = &crd["components"]["schemas"]
            ["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"];
        assert!(json_any.get("type").is_none(), "{json_any}");
    }

    /// Every row of the emulation tables names what the generated schemas have, so a row
    /// cannot go stale silently when k8s-openapi changes.
    #[test]
    fn every_since_row_applies() {
        let mut all = Map::new();
        for def in rel("1.32").served() {
            if let Some(s) = builtin::schemas(&def.group, &def.version, &[def.kind.as_str()]) {
                all.extend(s);
            }
        }
        for &(name, prop, _) in since::SINCE {
            assert!(
                all.get(name)
                    .and_then(|s| s["properties"].get(prop))
                    .is_some(),
                "{name}.{prop}"
            );
        }
        for &(name, prop, text, _) in since::SINCE_TEXT {
            let s = &all[name];
            let d = if prop.is_empty() {
                &s["description"]
            } else {
                &s["properties"][prop]["description"]
            };
            assert!(d.as_str().unwrap_or("").contains(text), "{name}.{prop}");
        }
    }
}
