//! The node lifecycle controller (kube-controller-manager's `nodelifecycle` controller, reduced
//! to health): a node whose heartbeat — its Lease in `kube-node-lease` or its Ready condition's
//! `lastHeartbeatTime` — is older than the grace period gets every condition set to `Unknown`
//! (`NodeStatusUnknown`, `Kubelet stopped posting node status.`) and the
//! `node.kubernetes.io/unreachable` taints (`NoSchedule` and `NoExecute`); once it posts again
//! the taints are removed (the node agent rewrites its own conditions).
//! See `pkg/controller/nodelifecycle/node_lifecycle_controller.go` `tryUpdateNodeHealth`.

use std::time::Duration;

use armorlet_store::time::{now_rfc3339, now_unix, parse_rfc3339};
use armorlet_store::{Gvr, ListOptions, WriteOptions};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::State;

/// kube-controller-manager's `--node-monitor-grace-period` default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(40);

/// The taint key of an unreachable node.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

const CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The newest heartbeat of `node` (unix seconds): Lease renewal, Ready heartbeat, or creation.
fn heartbeat(state: &State, node: &Value) -> Option<i64> {
    let name = node["metadata"]["name"].as_str()?;
    let lease = state
        .store
        .get(
            &Gvr::new("coordination.k8s.io", "v1", "leases"),
            "kube-node-lease",
            name,
        )
        .ok()
        .and_then(|l| l["spec"]["renewTime"].as_str().and_then(parse_rfc3339));
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "Ready")
        .filter_map(|c| c["lastHeartbeatTime"].as_str().and_then(parse_rfc3339))
        .max();
    let created = node["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339);
    [lease, ready, created].into_iter().flatten().max()
}

fn ready_status(node: &Value) -> Option<&str> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
}

fn has_unreachable_taint(node: &Value) -> bool {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == UNREACHABLE)
}

/// Marks `node` Unknown and tainted.
fn mark_unknown(node: &mut Value) {
    let now = now_rfc3339();
    let mut conds = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for ty in CONDITIONS {
        if !conds.iter().any(|c| c["type"] == ty) {
            conds.push(json!({"type": ty}));
        }
    }
    let never = conds.iter().all(|c| c["lastHeartbeatTime"].is_null());
    for c in conds
        .iter_mut()
        .filter(|c| CONDITIONS.contains(&c["type"].as_str().unwrap_or("")))
    {
        c["status"] = json!("Unknown");
        c["reason"] = json!("NodeStatusUnknown");
        c["message"] = json!(if never {
            "Kubelet never posted node status."
        } else {
            "Kubelet stopped posting node status."
        });
        c["lastTransitionTime"] = json!(now);
        if c["lastHeartbeatTime"].is_null() {
            c["lastHeartbeatTime"] = json!(now);
        }
    }
    node["status"]["conditions"] = json!(conds);
    let mut taints: Vec<Value> = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    taints.retain(|t| t["key"] != UNREACHABLE);
    for effect in ["NoSchedule", "NoExecute"] {
        let mut t = json!({"key": UNREACHABLE, "effect": effect});
        if effect == "NoExecute" {
            t["timeAdded"] = json!(now);
        }
        taints.push(t);
    }
    node["spec"]["taints"] = json!(taints);
}

fn clear_taint(node: &mut Value) {
    let taints: Vec<Value> = node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["key"] != UNREACHABLE)
        .cloned()
        .collect();
    if taints.is_empty() {
        if let Some(spec) = node["spec"].as_object_mut() {
            spec.remove("taints");
        }
    } else {
        node["spec"]["taints"] = json!(taints);
    }
}

/// One pass over the nodes. `started` (unix seconds) is when the controller started: a
/// heartbeat older than that counts as seen then, so a restarted control plane gives every
/// node a full grace period to post again rather than marking at once the nodes that posted
/// nothing while it was down (kube-controller-manager does the same: "Missing timestamp for
/// Node. Assuming now as a timestamp", `tryUpdateNodeHealth`).
pub fn check_once(state: &State, grace: Duration, started: i64) -> Result<(), ApiError> {
    let nodes = Gvr::new("", "v1", "nodes");
    let now = now_unix();
    for node in state
        .store
        .list(&nodes, None, &ListOptions::default())?
        .items
    {
        let Some(name) = node["metadata"]["name"].as_str().map(String::from) else {
            continue;
        };
        let stale =
            now - heartbeat(state, &node).unwrap_or(0).max(started) > grace.as_secs() as i64;
        let unknown = ready_status(&node) == Some("Unknown");
        let update: Option<fn(&mut Value)> = match (stale, unknown, has_unreachable_taint(&node)) {
            (true, false, _) | (true, true, false) => Some(mark_unknown),
            (false, false, true) => Some(clear_taint),
            _ => None,
        };
        if let Some(f) = update {
            state.store.guaranteed_update(
                &nodes,
                "",
                &name,
                &WriteOptions::default(),
                |mut n| {
                    f(&mut n);
                    Ok(n)
                },
            )?;
            tracing::info!(node = %name, stale, "node health changed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_then_cleared() {
        let mut node = json!({"metadata": {"name": "n"}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z"}]}});
        mark_unknown(&mut node);
        let ready = &node["status"]["conditions"][0];
        assert_eq!(ready["status"], "Unknown");
        assert_eq!(ready["reason"], "NodeStatusUnknown");
        assert_eq!(ready["message"], "Kubelet stopped posting node status.");
        assert_eq!(node["status"]["conditions"].as_array().unwrap().len(), 4);
        assert_eq!(node["spec"]["taints"].as_array().unwrap().len(), 2);
        clear_taint(&mut node);
        assert!(node["spec"].get("taints").is_none());
    }
}
