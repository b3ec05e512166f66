//! `/version` and discovery (aggregated and legacy; see shared/docs/kubectl-wire.md §3). The
//! OpenAPI documents are [`crate::openapi`]'s.

use serde_json::{json, Value};

use crate::registry::{self, Registry, ResourceDef};
use armorlet_confinement::EmulatedVersion;

/// The Kubernetes minor version whose behaviour the server follows.
pub const KUBE_MINOR: &str = "32";

/// The `/version` document: the emulated release (what `kubectl version` shows as the server,
/// as the tutorials' "Your Kubernetes server must be version v1.22" checks).
pub fn version(rel: EmulatedVersion) -> Value {
    let minor = rel.minor();
    json!({
        "major": "1",
        "minor": minor.to_string(),
        "gitVersion": format!("v1.{minor}.0+armorlet.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-23T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": format!("linux/{}", match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

fn aggregated_resource(r: &ResourceDef) -> Value {
    let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let mut v = json!({
        "resource": r.plural,
        "responseKind": kind,
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": registry::verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if r.has_status {
        v["subresources"] = json!([{"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}]);
    }
    if r.group.is_empty() && r.plural == "pods" {
        // As kube-apiserver's aggregated discovery lists them.
        let subs = v["subresources"].as_array_mut().expect("pods have status");
        subs.push(json!({"subresource": "attach", "responseKind": {"group": "", "version": "", "kind": "PodAttachOptions"}, "verbs": ["create", "get"]}));
        subs.push(json!({"subresource": "binding", "responseKind": {"group": "", "version": "", "kind": "Binding"}, "verbs": ["create"]}));
        subs.push(json!({"subresource": "exec", "responseKind": {"group": "", "version": "", "kind": "PodExecOptions"}, "verbs": ["create", "get"]}));
        subs.push(json!({"subresource": "log", "responseKind": {"group": "", "version": "", "kind": "Pod"}, "verbs": ["get"]}));
        subs.push(json!({"subresource": "portforward", "responseKind": {"group": "", "version": "", "kind": "PodPortForwardOptions"}, "verbs": ["create", "get"]}));
    }
    v
}

fn aggregated_group(group: &str, versions: &[String], rel: &Registry) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({"version": v, "freshness": "Current",
                   "resources": rel.in_group_version(group, v).iter().map(|r| aggregated_resource(r)).collect::<Vec<_>>()})
        })
        .collect();
    let mut g = json!({"metadata": {"creationTimestamp": null}, "versions": versions});
    if !group.is_empty() {
        g["metadata"]["name"] = json!(group);
    }
    g
}

/// The Content-Type of aggregated discovery responses (v2).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The aggregated discovery version an `Accept` header asks for first: `v2` (kubectl 1.30+
/// lists it before `v2beta1`) or `v2beta1` (all kubectl 1.27 to 1.29 ask for, e.g. the kubectl
/// the dispatcher runs against `--emulated-version 1.29`); `None` for the legacy documents.
/// kube-apiserver 1.30 to 1.32 serve both (staging/src/k8s.io/apiserver/pkg/endpoints/discovery/aggregated/negotiation.go).
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|range| {
        let params: Vec<&str> = range.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if !(has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList")) {
            return None;
        }
        if has("v=v2") {
            Some("v2")
        } else if has("v=v2beta1") {
            Some("v2beta1")
        } else {
            None
        }
    })
}

/// The Content-Type of an aggregated discovery response of `version`.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `/api` (core) or `/apis` (named groups) in the aggregated v2 form.
pub fn aggregated(core: bool, rel: &Registry) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group("", &["v1".to_owned()], rel)]
    } else {
        rel.groups()
            .iter()
            .map(|(g, vs)| aggregated_group(g, vs, rel))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Legacy `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs[0]})
}

/// Legacy `/apis`.
pub fn api_group_list(rel: &Registry) -> Value {
    let groups: Vec<Value> = rel
        .groups()
        .iter()
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/apis/<group>`, if served.
pub fn group(group: &str, rel: &Registry) -> Option<Value> {
    rel.groups()
        .iter()
        .find(|(g, _)| g == group)
        .map(|(g, vs)| {
            let mut v = api_group(g, vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        })
}

/// Legacy `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(group: &str, version: &str, rel: &Registry) -> Value {
    let mut resources = Vec::new();
    for r in rel.in_group_version(group, version) {
        let mut v = json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                           "kind": r.kind, "verbs": registry::verbs()});
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            v["categories"] = json!(r.categories);
        }
        resources.push(v);
        if r.has_status {
            resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "",
                                  "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        if r.group.is_empty() && r.plural == "pods" {
            for (sub, kind, verbs) in [
                ("attach", "PodAttachOptions", json!(["create", "get"])),
                ("binding", "Binding", json!(["create"])),
                ("exec", "PodExecOptions", json!(["create", "get"])),
                ("log", "Pod", json!(["get"])),
                (
                    "portforward",
                    "PodPortForwardOptions",
                    json!(["create", "get"]),
                ),
            ] {
                resources.push(json!({"name": format!("pods/{sub}"), "singularName": "",
                                      "namespaced": true, "kind": kind, "verbs": verbs}));
            }
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v132() -> Registry {
        Registry::new(EmulatedVersion::DEFAULT)
    }

    #[test]
    fn every_aggregated_resource_has_a_response_kind() {
        for core in [true, false] {
            let doc = aggregated(core, &v132());
            for item in doc["items"].as_array().unwrap() {
                for v in item["versions"].as_array().unwrap() {
                    for r in v["resources"].as_array().unwrap() {
                        assert!(r["responseKind"]["kind"].is_string(), "{r}");
                    }
                }
            }
        }
        assert!(aggregated(true, &v132())["items"][0]["metadata"]
            .get("name")
            .is_none());
        assert_eq!(
            aggregated(false, &v132())["items"][0]["metadata"]["name"],
            "apps"
        );
    }

    #[test]
    fn policy_v1beta1_is_served_up_to_1_24() {
        let v122 = Registry::new("1.22".parse().unwrap());
        let psp = |rel: &Registry| {
            resource_list("policy", "v1beta1", rel)["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "podsecuritypolicies")
        };
        assert!(psp(&v122));
        assert!(!psp(&v132()));
        assert!(group("policy", &v132()).is_none());
        assert_eq!(version(v122.release())["minor"], "22");
    }

    #[test]
    fn aggregated_discovery_is_negotiated() {
        // kubectl 1.32, then kubectl 1.29 (the dispatcher's choice for a 1.29 server).
        assert_eq!(
            aggregated_version("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"),
            Some("v2")
        );
        assert_eq!(
            aggregated_version("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"),
            Some("v2beta1")
        );
        assert_eq!(aggregated_version("application/json"), None);
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"
            ),
            None
        );
        assert_eq!(
            aggregated_content_type("v2beta1"),
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn version_reports_minor_32() {
        let v = version(EmulatedVersion::DEFAULT);
        assert_eq!(
            (v["major"].as_str(), v["minor"].as_str()),
            (Some("1"), Some("32"))
        );
        assert!(v["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.32.0+armorlet."));
    }
}
