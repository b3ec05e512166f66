//! The Security Profiles Operator's manager, for `SeccompProfile`s and
//! `AppArmorProfile`s (security-profiles-operator, internal/pkg/manager/...): run
//! on every controller pass, it keeps each profile's `status` (`localhostProfile`:
//! `operator/<ns>/<name>.json` for seccomp, the profile name for AppArmor; `status`
//! from the nodes' `SecurityProfileNodeStatus` objects; `activeWorkloads`) and its
//! `in-use-by-active-pods` finalizer: while a pod that is not finished refers to the
//! profile, deleting it only marks it `Terminating`, and it goes away once the last
//! such pod is gone. The node agents install the profiles (`armorlet_node`'s
//! operator loop).

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

use armorlet_confinement::profiles::{
    PROFILE_RECORDING_ANNOTATION, RECORD_APPARMOR_ANNOTATION, RECORD_SECCOMP_ANNOTATION,
    SPO_NAMESPACE,
};

/// One kind of profile the manager keeps.
struct Kind {
    gvr: Gvr,
    /// The `spo.x-k8s.io/profile-kind` of its node statuses.
    kind: &'static str,
    /// The `securityContext` field pods name it in.
    field: &'static str,
    /// The annotation prefixes pods name it in (`localhost/<ref>`).
    annotations: &'static [&'static str],
}

const SECCOMP_ANNOTATIONS: &[&str] = &[
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.seccomp.security.alpha.kubernetes.io/",
];
const APPARMOR_ANNOTATIONS: &[&str] = &["container.apparmor.security.beta.kubernetes.io/"];

fn kinds() -> [Kind; 2] {
    [
        Kind {
            gvr: Gvr::new(SPO_GROUP, "v1beta1", "seccompprofiles"),
            kind: "SeccompProfile",
            field: "seccompProfile",
            annotations: SECCOMP_ANNOTATIONS,
        },
        Kind {
            gvr: Gvr::new(SPO_GROUP, "v1alpha1", "apparmorprofiles"),
            kind: "AppArmorProfile",
            field: "appArmorProfile",
            annotations: APPARMOR_ANNOTATIONS,
        },
    ]
}

/// Every Localhost profile of one kind a pod refers to (fields and annotations).
fn localhost_refs(pod: &Value, kind: &Kind) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let spec = &pod["spec"];
    let mut field = |sc: &Value| {
        if sc[kind.field]["type"] == "Localhost" {
            if let Some(p) = sc[kind.field]["localhostProfile"].as_str() {
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
            let named = kind
                .annotations
                .iter()
                .any(|a| k == a || (a.ends_with('/') && k.starts_with(a)));
            if let Some(p) = v.as_str().and_then(|v| v.strip_prefix("localhost/")) {
                if named {
                    out.insert(p.to_owned());
                }
            }
        }
    }
    out
}

/// The namespace label that lets ProfileBindings act on a namespace's pods (SPO's
/// binding webhook only acts on namespaces that opt in).
pub const ENABLE_BINDING_LABEL: &str = "spo.x-k8s.io/enable-binding";

/// Whether a LabelSelector object selects `obj` (an empty one selects everything).
fn selects(selector: &Value, obj: &Value) -> bool {
    let text = crate::table::label_selector_string(selector);
    text == "<none>"
        || armorlet_store::LabelSelector::parse(&text).is_ok_and(|l| l.matches_object(obj))
}

/// The Security Profiles Operator's pod webhooks, on pod create (before confinement
/// admission, which then validates the result):
///
/// - each `ProfileBinding` of the pod's namespace (when the namespace has the label
///   [`ENABLE_BINDING_LABEL`]) gives the containers running its `image` (`*`: all) its
///   profile, unless they ask for one of that kind themselves: a SeccompProfile as a
///   `Localhost` `seccompProfile`, an AppArmorProfile as a `Localhost` `appArmorProfile`
///   (or, before the field exists in the emulated release, the annotation);
/// - a `ProfileRecording` of the namespace whose `podSelector` selects the pod makes the
///   node record it (the recording annotations), and names itself in
///   [`PROFILE_RECORDING_ANNOTATION`].
pub fn admit_pod(
    state: &State,
    pod: &mut Value,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let all = ListOptions::default();
    let namespace = state
        .store
        .get(&Gvr::new("", "v1", "namespaces"), "", &ns)
        .ok();
    let enabled = namespace
        .as_ref()
        .is_some_and(|n| n["metadata"]["labels"][ENABLE_BINDING_LABEL] == "true");
    if enabled {
        let bindings = state
            .store
            .list(
                &Gvr::new(SPO_GROUP, "v1alpha1", "profilebindings"),
                Some(&ns),
                &all,
            )?
            .items;
        for b in &bindings {
            bind(state, pod, b, warnings);
        }
    }
    let recordings = state
        .store
        .list(
            &Gvr::new(SPO_GROUP, "v1alpha1", "profilerecordings"),
            Some(&ns),
            &all,
        )?
        .items;
    for r in recordings {
        if !selects(&r["spec"]["podSelector"], pod) {
            continue;
        }
        let name = r["metadata"]["name"].as_str().unwrap_or("");
        let annotation = match r["spec"]["kind"].as_str() {
            Some("SeccompProfile") => RECORD_SECCOMP_ANNOTATION,
            Some("AppArmorProfile") => RECORD_APPARMOR_ANNOTATION,
            other => {
                warnings.push(format!(
                    "ProfileRecording {name}: recording a {} is not supported by armorlet; the pod is not recorded",
                    other.unwrap_or("profile of no kind")
                ));
                continue;
            }
        };
        let containers: Vec<&str> = r["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let which = if containers.is_empty() {
            "*".to_owned()
        } else {
            containers.join(",")
        };
        if !pod["metadata"]["annotations"].is_object() {
            pod["metadata"]["annotations"] = json!({});
        }
        pod["metadata"]["annotations"][annotation] = json!(which);
        pod["metadata"]["annotations"][PROFILE_RECORDING_ANNOTATION] = json!(name);
    }
    Ok(())
}

/// Applies one ProfileBinding to a pod.
fn bind(state: &State, pod: &mut Value, binding: &Value, warnings: &mut Vec<String>) {
    let image = binding["spec"]["image"].as_str().unwrap_or("");
    let profile = binding["spec"]["profileRef"]["name"].as_str().unwrap_or("");
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let (field, value) = match binding["spec"]["profileRef"]["kind"].as_str() {
        Some("SeccompProfile") => (
            "seccompProfile",
            json!({"type": "Localhost", "localhostProfile": localhost_profile(&ns, profile)}),
        ),
        Some("AppArmorProfile") => (
            "appArmorProfile",
            json!({"type": "Localhost", "localhostProfile": profile}),
        ),
        other => {
            warnings.push(format!(
                "ProfileBinding {}: binding a {} is not supported by armorlet",
                binding["metadata"]["name"].as_str().unwrap_or(""),
                other.unwrap_or("profile of no kind")
            ));
            return;
        }
    };
    // What the pod asks for itself wins over a binding.
    if pod["spec"]["securityContext"][field].is_object() {
        return;
    }
    let fields = state
        .emulated_version
        .has(armorlet_confinement::Switch::AppArmorFields);
    for list in ["initContainers", "containers"] {
        let Some(cs) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        let mut annotate = Vec::new();
        for c in cs.iter_mut() {
            if image != "*" && c["image"] != image {
                continue;
            }
            if c["securityContext"][field].is_object() {
                continue;
            }
            if field == "appArmorProfile" && !fields {
                annotate.push(c["name"].as_str().unwrap_or("").to_owned());
                continue;
            }
            if !c["securityContext"].is_object() {
                c["securityContext"] = json!({});
            }
            c["securityContext"][field] = value.clone();
        }
        for name in annotate {
            let key = format!("container.apparmor.security.beta.kubernetes.io/{name}");
            if !pod["metadata"]["annotations"].is_object() {
                pod["metadata"]["annotations"] = json!({});
            }
            if pod["metadata"]["annotations"].get(&key).is_none() {
                pod["metadata"]["annotations"][key] = json!(format!("localhost/{profile}"));
            }
        }
    }
}

/// One pass over every SeccompProfile and AppArmorProfile; `pods` are every stored pod (the
/// controllers' informer, [`armorlet_store::Informer`]).
pub fn sync_once(state: &State, pods: &[&Value]) -> Result<(), ApiError> {
    for kind in kinds() {
        sync_kind(state, &kind, pods)?;
    }
    Ok(())
}

fn sync_kind(state: &State, kind: &Kind, pods: &[&Value]) -> Result<(), ApiError> {
    let all = ListOptions::default();
    let profiles = state.store.list(&kind.gvr, None, &all)?.items;
    if profiles.is_empty() {
        return Ok(());
    }
    if kind.kind != "SeccompProfile" {
        // Where the nodes report cluster-scoped profiles (SPO's own namespace).
        crate::handlers::ensure_namespace(state, SPO_NAMESPACE)?;
    }
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
    let seccomp = kind.kind == "SeccompProfile";
    for p in &profiles {
        let ns = p["metadata"]["namespace"].as_str().unwrap_or("");
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        // A seccomp profile is a file under the kubelet's seccomp root, which pods of its
        // own namespace use; an AppArmor profile is named, and any pod may use it.
        let path = if seccomp {
            localhost_profile(ns, name)
        } else {
            name.to_owned()
        };
        let status_ns = if seccomp { ns } else { SPO_NAMESPACE };
        let users: Vec<String> = pods
            .iter()
            .filter(|pod| !seccomp || pod["metadata"]["namespace"] == ns)
            .filter(|pod| {
                !matches!(
                    pod["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                )
            })
            .filter(|pod| localhost_refs(pod, kind).contains(&path))
            .filter_map(|pod| {
                let n = pod["metadata"]["name"].as_str()?;
                Some(if seccomp {
                    n.to_owned()
                } else {
                    format!(
                        "{}/{n}",
                        pod["metadata"]["namespace"].as_str().unwrap_or("")
                    )
                })
            })
            .collect();
        let deleting = p["metadata"]["deletionTimestamp"].is_string();
        let node_state = |node: &str| {
            statuses
                .iter()
                .find(|s| {
                    s["metadata"]["namespace"] == status_ns
                        && s["metadata"]["labels"]["spo.x-k8s.io/profile-kind"] == kind.kind
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
        let mut want = json!({"status": status, "localhostProfile": path});
        if seccomp {
            want["path"] = json!(format!("/var/lib/kubelet/seccomp/{path}"));
        }
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
        state
            .store
            .guaranteed_update(&kind.gvr, ns, name, &WriteOptions::default(), |cur| {
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
            })?;
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
        let [seccomp, apparmor] = kinds();
        assert_eq!(
            localhost_refs(&pod, &seccomp)
                .into_iter()
                .collect::<Vec<_>>(),
            ["operator/default/a.json", "operator/default/b.json"]
        );
        let pod = json!({
            "metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/c": "localhost/aa-one",
                "container.seccomp.security.alpha.kubernetes.io/c": "localhost/x"
            }},
            "spec": {"containers": [{"securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "aa-two"}}}]}
        });
        assert_eq!(
            localhost_refs(&pod, &apparmor)
                .into_iter()
                .collect::<Vec<_>>(),
            ["aa-one", "aa-two"]
        );
    }
}
