//! The endpoints controller (kube-controller-manager's, pkg/controller/endpoint): keeps one
//! `Endpoints` object per Service with a selector, computed by `armorlet_net::endpoints_for`
//! from the pods' readiness and IPs, and removes the Endpoints it manages when their Service
//! is gone, and beside each the `discovery.k8s.io/v1` EndpointSlice the endpointslice
//! controller (pkg/controller/endpointslice) would keep. Run on every controller pass;
//! writes only what changed.

use std::collections::BTreeMap;

use armorlet_store::{DeleteOptions, Gvr, ListOptions, WriteOptions};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::State;

/// The annotation the upstream controller sets on the Endpoints it manages; here it also
/// marks them as ours (an Endpoints object without it belongs to the user).
pub const TRIGGER_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

fn gvr(resource: &str) -> Gvr {
    Gvr::new("", "v1", resource)
}

fn slices_gvr() -> Gvr {
    Gvr::new("discovery.k8s.io", "v1", "endpointslices")
}

/// The label naming a slice's Service, and the manager label of the upstream controller.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// The EndpointSlice matching the Endpoints `ep` of `svc`: one slice per Service (upstream
/// splits at 100 endpoints and per port set; the first subset's ports are used here). Its
/// name is the Service's plus a suffix from the Service's UID, where upstream uses
/// `generateName`; a stable name keeps the controller idempotent.
fn slice_for(svc: &Value, ep: &Value) -> Value {
    let (ns, name) = key(svc);
    let uid = svc["metadata"]["uid"].as_str().unwrap_or("");
    let suffix: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(5)
        .collect();
    let mut labels = svc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), json!(name));
    labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY));
    let subsets = ep["subsets"].as_array().cloned().unwrap_or_default();
    let mut endpoints = Vec::new();
    for subset in &subsets {
        for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for a in subset[field].as_array().into_iter().flatten() {
                let mut e = json!({
                    "addresses": [a["ip"]],
                    "conditions": {"ready": ready, "serving": ready, "terminating": false},
                });
                for (from, to) in [("nodeName", "nodeName"), ("targetRef", "targetRef")] {
                    if !a[from].is_null() {
                        e[to] = a[from].clone();
                    }
                }
                endpoints.push(e);
            }
        }
    }
    let ports = subsets
        .first()
        .and_then(|s| s["ports"].as_array())
        .cloned()
        .unwrap_or_default();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{name}-{suffix}"),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Service", "name": name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

/// Creates or updates the slice of `svc` when it differs from `want`.
fn sync_slice(
    state: &State,
    want: Value,
    existing: &mut BTreeMap<(String, String), Value>,
) -> Result<(), ApiError> {
    let k = key(&want);
    match existing.remove(&k) {
        Some(cur)
            if cur["endpoints"] == want["endpoints"]
                && cur["ports"] == want["ports"]
                && cur["metadata"]["labels"] == want["metadata"]["labels"] => {}
        Some(cur) => {
            let mut next = want;
            let labels = next["metadata"]["labels"].clone();
            next["metadata"] = cur["metadata"].clone();
            next["metadata"]["labels"] = labels;
            state
                .store
                .update(&slices_gvr(), &k.0, &k.1, next, &WriteOptions::default())?;
        }
        None => {
            state
                .store
                .create(&slices_gvr(), &k.0, want, &WriteOptions::default())?;
        }
    }
    Ok(())
}

fn key(obj: &Value) -> (String, String) {
    (
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        obj["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    )
}

/// One pass over every Service; `pods` are every stored pod (the controllers' informer,
/// [`armorlet_store::Informer`]).
pub fn sync_once(state: &State, pods: &[&Value]) -> Result<(), ApiError> {
    let list = |r: &str| -> Result<Vec<Value>, ApiError> {
        Ok(state
            .store
            .list(&gvr(r), None, &ListOptions::default())?
            .items)
    };
    let services = list("services")?;
    let mut existing: BTreeMap<(String, String), Value> = list("endpoints")?
        .into_iter()
        .map(|e| (key(&e), e))
        .collect();
    let mut slices: BTreeMap<(String, String), Value> = state
        .store
        .list(&slices_gvr(), None, &ListOptions::default())?
        .items
        .into_iter()
        .filter(|s| s["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY)
        .map(|s| (key(&s), s))
        .collect();
    for svc in &services {
        let k = key(svc);
        let current = existing.remove(&k);
        let Some(mut want) = armorlet_net::endpoints_for(svc, pods) else {
            continue;
        };
        sync_slice(state, slice_for(svc, &want), &mut slices)?;
        match current {
            Some(cur)
                if cur["subsets"] == want["subsets"]
                    && cur["metadata"]["labels"] == want["metadata"]["labels"] => {}
            Some(cur) => {
                want["metadata"] = cur["metadata"].clone();
                want["metadata"]["labels"] = svc["metadata"]["labels"].clone();
                if want["metadata"]["labels"].is_null() {
                    if let Some(m) = want["metadata"].as_object_mut() {
                        m.remove("labels");
                    }
                }
                want["metadata"]["annotations"][TRIGGER_ANNOTATION] = json!(crate_now());
                state.store.update(
                    &gvr("endpoints"),
                    &k.0,
                    &k.1,
                    want,
                    &WriteOptions::default(),
                )?;
            }
            None => {
                want["metadata"]["annotations"] = json!({TRIGGER_ANNOTATION: crate_now()});
                state
                    .store
                    .create(&gvr("endpoints"), &k.0, want, &WriteOptions::default())?;
            }
        }
    }
    // Slices we manage whose Service no longer has a selector; those of a Service that is gone
    // are the garbage collector's (they are owned by it), as upstream.
    for ((ns, name), slice) in slices {
        let owner_exists = slice["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| {
                services.iter().any(|s| {
                    s["metadata"]["uid"] == r["uid"] && s["metadata"]["namespace"] == ns.as_str()
                })
            });
        if !owner_exists {
            continue;
        }
        match state
            .store
            .delete(&slices_gvr(), &ns, &name, &DeleteOptions::default())
        {
            Ok(_) | Err(armorlet_store::StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Endpoints we manage whose Service is gone.
    for ((ns, name), ep) in existing {
        let ours = ep["metadata"]["annotations"][TRIGGER_ANNOTATION].is_string();
        let has_service = services
            .iter()
            .any(|s| key(s) == (ns.clone(), name.clone()));
        if ours && !has_service {
            match state
                .store
                .delete(&gvr("endpoints"), &ns, &name, &DeleteOptions::default())
            {
                Ok(_) | Err(armorlet_store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn crate_now() -> String {
    armorlet_store::time::now_rfc3339()
}
