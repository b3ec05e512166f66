//! The Security Profiles Operator's manager, for `SeccompProfile`s
//! (security-profiles-operator, internal/pkg/manager/...): run on every
//! controller pass, it keeps each profile's `status` (`localhostProfile`
//! `operator/<ns>/<name>.json`, `status` from the nodes' `SecurityProfileNodeStatus`
//! objects, `activeWorkloads`) and its `in-use-by-active-pods` finalizer: while a
//! pod that is not finished refers to the profile, deleting it only marks it
//! `Terminating`, and it goes away once the last such pod is gone. The node
//! agents install the profiles (`armorlet_node`'s operator loop).

use std::collections::BTreeSet;

use armorlet_store::{Gvr, ListOptions, WriteOptions};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::State;
use crate::registry::SPO_GROUP;

/// The finalizer of a profile pods use.
pub const IN_USE_FINALIZER: &str = "in-use-by-active-pods";

/// The profile's path under the kubelet's seccomp root.
pub fn localhost_profile(namespace: &str, name: &str) -> String {
    format!("operator/{namespace}/{name}.json")
}

fn seccompprofiles() -> Gvr {
    Gvr::new(SPO_GROUP, "v1beta1", "seccompprofiles")
}

/// Every Localhost seccomp profile a pod refers to (fields and annotations).
fn localhost_refs(pod: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let spec = &pod["spec"];
    let mut field = |sc: &Value| {
        if sc["seccompProfile"]["type"] == "Localhost" {
            if let Some(p) = sc["seccompProfile"]["localhostProfile"].as_str() {
                out.insert(p.to_owned());
            }
        }
    };
    field(&spec["securityContext"]);
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            field(&c["securityContext"]);
        }
    }
    if let Some(a) = pod["metadata"]["annotations"].as_object() {
        for (k, v) in a {
            let seccomp = k == "seccomp.security.alpha.kubernetes.io/pod"
                || k.starts_with("container.seccomp.security.alpha.kubernetes.io/");
            if let Some(p) = v.as_str().and_then(|v| v.strip_prefix("localhost/")) {
                if seccomp {
                    out.insert(p.to_owned());
                }
            }
        }
    }
    out
}

/// One pass over every SeccompProfile.
pub fn sync_once(state: &State) -> Result<(), ApiError> {
    let all = ListOptions::default();
    let profiles = state.store.list(&seccompprofiles(), None, &all)?.items;
    if profiles.is_empty() {
        return Ok(());
    }
    let pods = state
        .store
        .list(&Gvr::new("", "v1", "pods"), None, &all)?
        .items;
    let statuses = state
        .store
        .list(
            &Gvr::new(SPO_GROUP, "v1alpha1", "securityprofilenodestatuses"),
            None,
            &all,
        )?
        .items;
    let nodes: Vec<String> = state
        .store
        .list(&Gvr::new("", "v1", "nodes"), None, &all)?
        .items
        .iter()
        .filter(|n| crate::scheduler::ready(n))
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    for p in &profiles {
        let ns = p["metadata"]["namespace"].as_str().unwrap_or("");
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        let path = localhost_profile(ns, name);
        let users: Vec<String> = pods
            .iter()
            .filter(|pod| pod["metadata"]["namespace"] == ns)
            .filter(|pod| {
                !matches!(
                    pod["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                )
            })
            .filter(|pod| localhost_refs(pod).contains(&path))
            .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        let deleting = p["metadata"]["deletionTimestamp"].is_string();
        let node_state = |node: &str| {
            statuses
                .iter()
                .find(|s| {
                    s["metadata"]["namespace"] == ns
                        && s["metadata"]["name"] == format!("{name}-{node}").as_str()
                })
                .and_then(|s| s["status"].as_str())
        };
        let status = if deleting {
            "Terminating"
        } else if nodes.iter().any(|n| node_state(n) == Some("Error")) {
            "Error"
        } else if !nodes.is_empty() && nodes.iter().all(|n| node_state(n) == Some("Installed")) {
            "Installed"
        } else {
            "InProgress"
        };
        let mut want = json!({
            "status": status,
            "localhostProfile": path,
            "path": format!("/var/lib/kubelet/seccomp/{path}"),
        });
        if !users.is_empty() {
            want["activeWorkloads"] = json!(users);
        }
        let in_use = !users.is_empty();
        let has_finalizer = p["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == IN_USE_FINALIZER));
        if p["status"] == want && has_finalizer == in_use {
            continue;
        }
        state.store.guaranteed_update(
            &seccompprofiles(),
            ns,
            name,
            &WriteOptions::default(),
            |cur| {
                let mut cur = cur.clone();
                cur["status"] = want.clone();
                let mut fins: Vec<Value> = cur["metadata"]["finalizers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                fins.retain(|f| f != IN_USE_FINALIZER);
                if in_use {
                    fins.push(json!(IN_USE_FINALIZER));
                }
                if fins.is_empty() {
                    if let Some(m) = cur["metadata"].as_object_mut() {
                        m.remove("finalizers");
                    }
                } else {
                    cur["metadata"]["finalizers"] = json!(fins);
                }
                Ok(cur)
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_localhost_references_in_fields_and_annotations() {
        let pod = json!({
            "metadata": {"annotations": {
                "container.seccomp.security.alpha.kubernetes.io/c": "localhost/operator/default/a.json",
                "other": "localhost/x"
            }},
            "spec": {
                "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/default/b.json"}},
                "containers": [{"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}]
            }
        });
        assert_eq!(
            localhost_refs(&pod).into_iter().collect::<Vec<_>>(),
            ["operator/default/a.json", "operator/default/b.json"]
        );
    }
}
