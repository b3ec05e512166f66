//! The node lifecycle controller (kube-controller-manager's `nodelifecycle` controller, reduced
//! to health): a node whose heartbeat — its Lease in `kube-node-lease` or its Ready condition's
//! `lastHeartbeatTime` — has not changed for the grace period gets every condition set to
//! `Unknown` (`NodeStatusUnknown`, `Kubelet stopped posting node status.`) and the
//! `node.kubernetes.io/unreachable` taints (`NoSchedule` and `NoExecute`); once it posts again
//! the taints are removed (the node agent rewrites its own conditions).
//! See `pkg/controller/nodelifecycle/node_lifecycle_controller.go` `tryUpdateNodeHealth`.
//!
//! Staleness is judged as kube-controller-manager judges it: by when this controller last saw a
//! heartbeat value change (its `nodeHealthMap` `probeTimestamp`, taken from Go's monotonic clock
//! reading), never by comparing the heartbeat's wall-clock time with the wall clock. A jump of
//! the machine's clock therefore neither makes a live node look silent nor a silent one live.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use armorlet_store::time::now_rfc3339;
use armorlet_store::{Gvr, ListOptions, WriteOptions};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::State;

/// kube-controller-manager's `--node-monitor-grace-period` default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(40);

/// The taint key of an unreachable node.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

const CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The heartbeats of one node as last seen, and when they last changed.
#[derive(Debug)]
struct Observed {
    /// The Lease's `spec.renewTime`.
    lease: Option<String>,
    /// The Ready condition's `lastHeartbeatTime`.
    ready: Option<String>,
    /// When one of them last changed (or the node was first seen), on the monotonic clock.
    probe: Instant,
}

/// The controller's memory of the nodes' heartbeats (kube-controller-manager's
/// `nodeHealthMap`): kept across passes by the controller loop.
#[derive(Debug, Default)]
pub struct NodeHealth {
    nodes: HashMap<String, Observed>,
}

impl NodeHealth {
    /// Records what `node` shows now (`lease`: its Lease's renewTime); returns how long ago
    /// (monotonic) its heartbeat last changed. A node seen for the first time counts as just
    /// heard from ("Missing timestamp for Node %s. Assuming now as a timestamp.").
    fn observe(
        &mut self,
        name: &str,
        lease: Option<String>,
        ready: Option<String>,
        now: Instant,
    ) -> Duration {
        match self.nodes.get_mut(name) {
            Some(o) => {
                // Any change counts, forwards or backwards: a heartbeat written after the wall
                // clock went back is still a heartbeat.
                if o.lease != lease || o.ready != ready {
                    o.lease = lease;
                    o.ready = ready;
                    o.probe = now;
                }
                now.saturating_duration_since(o.probe)
            }
            None => {
                self.nodes.insert(
                    name.to_owned(),
                    Observed {
                        lease,
                        ready,
                        probe: now,
                    },
                );
                Duration::ZERO
            }
        }
    }
}

/// The node's heartbeat values: its Lease's renewTime and its Ready lastHeartbeatTime.
fn heartbeats(state: &State, node: &Value) -> (Option<String>, Option<String>) {
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let lease = state
        .store
        .get(
            &Gvr::new("coordination.k8s.io", "v1", "leases"),
            "kube-node-lease",
            name,
        )
        .ok()
        .and_then(|l| l["spec"]["renewTime"].as_str().map(str::to_owned));
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["lastHeartbeatTime"].as_str().map(str::to_owned));
    (lease, ready)
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

/// One pass over the nodes; `health` is the controller's memory from the passes before.
pub fn check_once(state: &State, grace: Duration, health: &mut NodeHealth) -> Result<(), ApiError> {
    let nodes = Gvr::new("", "v1", "nodes");
    let now = Instant::now();
    let listed = state
        .store
        .list(&nodes, None, &ListOptions::default())?
        .items;
    health.nodes.retain(|name, _| {
        listed
            .iter()
            .any(|n| n["metadata"]["name"].as_str() == Some(name.as_str()))
    });
    for node in listed {
        let Some(name) = node["metadata"]["name"].as_str().map(String::from) else {
            continue;
        };
        let (lease, ready) = heartbeats(state, &node);
        let stale = health.observe(&name, lease, ready, now) > grace;
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

    #[test]
    fn staleness_is_monotonic_time_since_the_heartbeat_last_changed() {
        let mut h = NodeHealth::default();
        let t0 = Instant::now();
        let hb = |s: &str| Some(s.to_owned());
        // First sight: just heard from, whatever the heartbeat's wall-clock time says.
        assert_eq!(
            h.observe("n", hb("2020-01-01T00:00:00Z"), None, t0),
            Duration::ZERO
        );
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            h.observe("n", hb("2020-01-01T00:00:00Z"), None, later),
            Duration::from_secs(30)
        );
        // A renewal stamped an hour *earlier* (the wall clock went back) is still a renewal.
        assert_eq!(
            h.observe("n", hb("2019-12-31T23:00:10Z"), None, later),
            Duration::ZERO
        );
        // A Ready heartbeat alone counts too.
        let t2 = later + Duration::from_secs(50);
        assert_eq!(
            h.observe("n", hb("2019-12-31T23:00:10Z"), hb("x"), t2),
            Duration::ZERO
        );
        assert_eq!(
            h.observe(
                "n",
                hb("2019-12-31T23:00:10Z"),
                hb("x"),
                t2 + DEFAULT_GRACE * 2
            ),
            DEFAULT_GRACE * 2
        );
    }
}
