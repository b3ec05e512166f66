//! The endpoints controller (kube-controller-manager's, pkg/controller/endpoint): keeps one
//! `Endpoints` object per Service with a selector, computed by `armorlet_net::endpoints_for`
//! from the pods' readiness and IPs, and removes the Endpoints it manages when their Service
//! is gone. Run on every controller pass; writes only what changed.

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

fn key(obj: &Value) -> (String, String) {
    (
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        obj["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    )
}

/// One pass over every Service.
pub fn sync_once(state: &State) -> Result<(), ApiError> {
    let list = |r: &str| -> Result<Vec<Value>, ApiError> {
        Ok(state
            .store
            .list(&gvr(r), None, &ListOptions::default())?
            .items)
    };
    let services = list("services")?;
    let pods = list("pods")?;
    let mut existing: BTreeMap<(String, String), Value> = list("endpoints")?
        .into_iter()
        .map(|e| (key(&e), e))
        .collect();
    for svc in &services {
        let k = key(svc);
        let current = existing.remove(&k);
        let Some(mut want) = armorlet_net::endpoints_for(svc, &pods) else {
            continue;
        };
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
