//! Mutating admission of pods beyond defaulting, as kube-apiserver's default plugins do:
//! - `ServiceAccount` (`plugin/pkg/admission/serviceaccount/admission.go`): `serviceAccountName`
//!   defaults to `default`, and unless `automountServiceAccountToken: false` a projected
//!   `kube-api-access-<5 chars>` volume (token with `expirationSeconds: 3607`, the
//!   `kube-root-ca.crt` ConfigMap's `ca.crt`, the namespace via the downward API) is added and
//!   mounted read-only at `/var/run/secrets/kubernetes.io/serviceaccount` in every container.
//!   The ServiceAccount's existence is not checked (the per-namespace `default` account is
//!   created by [`ensure_namespace_defaults`] shortly after the namespace).
//! - `DefaultTolerationSeconds` (`plugin/pkg/admission/defaulttolerationseconds`): tolerations
//!   of the `not-ready` and `unreachable` NoExecute taints for 300 s unless already tolerated.
//!
//! Also owns the per-namespace objects the controller manager publishes: the `default`
//! ServiceAccount and the `kube-root-ca.crt` ConfigMap.

use armorlet_store::{Gvr, ListOptions, WriteOptions};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::State;

/// Where the service account volume is mounted.
pub const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Applies the ServiceAccount and DefaultTolerationSeconds admission to a new pod.
pub fn admit_pod(pod: &mut Value) {
    service_account(pod);
    default_tolerations(pod);
}

fn service_account(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let name = spec["serviceAccountName"]
        .as_str()
        .or_else(|| spec["serviceAccount"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    spec["serviceAccountName"] = json!(name);
    spec["serviceAccount"] = json!(name);
    if spec["automountServiceAccountToken"] == json!(false) {
        return;
    }
    let already = ["containers", "initContainers"].iter().any(|k| {
        spec[*k].as_array().into_iter().flatten().any(|c| {
            c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == SA_MOUNT)
        })
    });
    if already {
        return;
    }
    let volume = crate::defaults::generate_name("kube-api-access-");
    for k in ["containers", "initContainers"] {
        if let Some(cs) = spec[k].as_array_mut() {
            for c in cs {
                if !c["volumeMounts"].is_array() {
                    c["volumeMounts"] = json!([]);
                }
                if let Some(m) = c["volumeMounts"].as_array_mut() {
                    m.push(json!({"mountPath": SA_MOUNT, "name": volume, "readOnly": true}));
                }
            }
        }
    }
    if !spec["volumes"].is_array() {
        spec["volumes"] = json!([]);
    }
    if let Some(v) = spec["volumes"].as_array_mut() {
        v.push(json!({"name": volume, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
        ]}}));
    }
}

fn default_tolerations(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let existing = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let mut added = existing.clone();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = existing.iter().any(|t| {
            let effect_ok = matches!(t["effect"].as_str(), None | Some("") | Some("NoExecute"));
            let key_ok = t["key"].as_str().is_none_or(|k| k.is_empty() || k == key);
            effect_ok && key_ok && (t["operator"] == "Exists" || t["key"] == key)
        });
        if !tolerated {
            added.push(json!({"effect": "NoExecute", "key": key, "operator": "Exists", "tolerationSeconds": 300}));
        }
    }
    if !added.is_empty() {
        spec["tolerations"] = json!(added);
    }
}

/// Creates the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in every active
/// namespace lacking them (kube-controller-manager's serviceaccount and root-ca-cert-publisher
/// controllers).
pub fn ensure_namespace_defaults(state: &State) -> Result<(), ApiError> {
    let namespaces = state.store.list(
        &Gvr::new("", "v1", "namespaces"),
        None,
        &ListOptions::default(),
    )?;
    for ns in namespaces.items {
        if ns["status"]["phase"] == "Terminating" || !ns["metadata"]["deletionTimestamp"].is_null()
        {
            continue;
        }
        let Some(name) = ns["metadata"]["name"].as_str() else {
            continue;
        };
        let sa = Gvr::new("", "v1", "serviceaccounts");
        if state.store.get(&sa, name, "default").is_err() {
            let obj = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}});
            create_ignoring_exists(state, &sa, name, obj)?;
        }
        let cm = Gvr::new("", "v1", "configmaps");
        if state.store.get(&cm, name, "kube-root-ca.crt").is_err() {
            let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": name,
                             "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": state.ca_pem}});
            create_ignoring_exists(state, &cm, name, obj)?;
        }
    }
    Ok(())
}

fn create_ignoring_exists(state: &State, gvr: &Gvr, ns: &str, obj: Value) -> Result<(), ApiError> {
    match state.store.create(gvr, ns, obj, &WriteOptions::default()) {
        Ok(_) | Err(armorlet_store::StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_service_account_volume_and_tolerations() {
        let mut pod = json!({"spec": {"containers": [{"name": "c"}]}});
        admit_pod(&mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        let vol = spec["volumes"][0]["name"].as_str().unwrap();
        assert!(vol.starts_with("kube-api-access-") && vol.len() == 21);
        assert_eq!(
            spec["containers"][0]["volumeMounts"][0],
            json!({"mountPath": SA_MOUNT, "name": vol, "readOnly": true})
        );
        assert_eq!(
            spec["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
                ["expirationSeconds"],
            3607
        );
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(
            spec["tolerations"][1]["key"],
            "node.kubernetes.io/unreachable"
        );
        // Idempotent for an already tolerating pod; no token when opted out.
        let mut pod = json!({"spec": {"automountServiceAccountToken": false, "containers": [{"name": "c"}],
                             "tolerations": [{"operator": "Exists"}]}});
        admit_pod(&mut pod);
        assert!(pod["spec"]["volumes"].is_null());
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}
