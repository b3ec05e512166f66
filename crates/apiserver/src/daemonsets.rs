//! The DaemonSet controller (kube-controller-manager's, pkg/controller/daemon): one pod per
//! node the pod qualifies for (node selector, required affinity, taints), created through the
//! same admission as any client's pod (ServiceAccount, PodSecurityPolicy, confinement
//! validation), owned by the DaemonSet; pods on nodes that no longer qualify, extra pods on a
//! node, and pods whose DaemonSet is gone are deleted gracefully; `status` counts as upstream
//! does. Run on every controller pass; writes only what changed.
//!
//! Differences from upstream, on purpose: a pod is bound to its node directly
//! (`spec.nodeName`, as the controller did before 1.12) instead of through the scheduler with a
//! node-name affinity; only `RollingUpdate`'s first step exists (a changed template does not
//! replace running pods; delete them to roll); `ControllerRevision`s are not kept. The
//! controller is also the garbage collector of its pods (armorlet has no general one).

use std::collections::BTreeMap;

use armorlet_store::{DeleteOptions, Gvr, ListOptions, WriteOptions};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::State;

fn list(state: &State, gvr: &Gvr) -> Result<Vec<Value>, ApiError> {
    Ok(state.store.list(gvr, None, &ListOptions::default())?.items)
}

/// The tolerations the controller adds to every daemon pod
/// (pkg/controller/daemon/util AddOrUpdateDaemonPodTolerations).
fn daemon_tolerations(host_network: bool) -> Vec<Value> {
    let mut t = vec![
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}),
    ];
    if host_network {
        t.push(json!({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}));
    }
    t
}

/// Whether a daemon pod should run on `node` (daemon/util NodeShouldRunDaemonPod: the
/// scheduler's node selector, required node affinity and taint/toleration checks, with the
/// tolerations the controller adds).
fn should_run(ds: &Value, node: &Value) -> bool {
    let pod = pod_for(ds, node["metadata"]["name"].as_str().unwrap_or(""));
    let taints = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    crate::scheduler::selector_matches(&pod, node)
        && crate::scheduler::untolerated(&pod, &taints).is_none()
}

/// The daemon pod for `node`.
fn pod_for(ds: &Value, node: &str) -> Value {
    let template = &ds["spec"]["template"];
    let name = ds["metadata"]["name"].as_str().unwrap_or("");
    // controller_utils.go GetPodFromTemplate: the template's labels, annotations and
    // finalizers; never its name.
    let mut meta = json!({});
    for k in ["labels", "annotations", "finalizers"] {
        if !template["metadata"][k].is_null() {
            meta[k] = template["metadata"][k].clone();
        }
    }
    meta["generateName"] = json!(format!("{name}-"));
    meta["namespace"] = ds["metadata"]["namespace"].clone();
    meta["labels"]["pod-template-generation"] = json!(ds["metadata"]["generation"]
        .as_i64()
        .unwrap_or(1)
        .to_string());
    meta["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": name,
        "uid": ds["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    }]);
    let mut spec = template["spec"].clone();
    let host_network = spec["hostNetwork"] == true;
    let mut tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for t in daemon_tolerations(host_network) {
        if !tolerations.iter().any(|x| x["key"] == t["key"]) {
            tolerations.push(t);
        }
    }
    spec["tolerations"] = json!(tolerations);
    spec["nodeName"] = json!(node);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// One controller pass over every DaemonSet; `pods` are every stored pod (the controllers'
/// informer, [`armorlet_store::Informer`]).
pub fn sync_once(state: &State, pods: &[&Value]) -> Result<(), ApiError> {
    let ds_gvr = Gvr::new("apps", "v1", "daemonsets");
    let daemonsets = list(state, &ds_gvr)?;
    let nodes = list(state, &Gvr::new("", "v1", "nodes"))?;
    // Pods by the uid of the DaemonSet that controls them.
    let mut owned: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for &p in pods {
        if let Some(r) = p["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["kind"] == "DaemonSet" && r["controller"] == true)
        {
            owned
                .entry(r["uid"].as_str().unwrap_or("").to_owned())
                .or_default()
                .push(p);
        }
    }
    for ds in &daemonsets {
        let uid = ds["metadata"]["uid"].as_str().unwrap_or("").to_owned();
        let mine = owned.remove(&uid).unwrap_or_default();
        // A DaemonSet being deleted is left alone; the pods of one that is gone are the
        // garbage collector's ([`crate::gc`]), as upstream.
        if !ds["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        sync_daemonset(state, ds, &nodes, &mine)?;
    }
    Ok(())
}

fn sync_daemonset(
    state: &State,
    ds: &Value,
    nodes: &[Value],
    mine: &[&Value],
) -> Result<(), ApiError> {
    let ns = ds["metadata"]["namespace"].as_str().unwrap_or("default");
    let live: Vec<&Value> = mine
        .iter()
        .copied()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    let mut desired = 0;
    let mut scheduled = 0;
    let mut ready = 0;
    for node in nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or("");
        let on_node: Vec<&Value> = live
            .iter()
            .copied()
            .filter(|p| p["spec"]["nodeName"] == name)
            .collect();
        if !should_run(ds, node) {
            for p in on_node {
                delete_pod(state, p)?;
            }
            continue;
        }
        desired += 1;
        match on_node.split_first() {
            None => {
                let pod = pod_for(ds, name);
                if let Err(e) = crate::handlers::create_pod_as_controller(state, ns, pod) {
                    // Upstream records FailedCreate on the DaemonSet; the message is the
                    // admission's (e.g. a PodSecurityPolicy refusal).
                    tracing::warn!(daemonset = %ds["metadata"]["name"], node = %name, error = %e.message, "cannot create daemon pod");
                }
            }
            Some((first, extra)) => {
                scheduled += 1;
                if crate::scheduler::ready(first) {
                    ready += 1;
                }
                for p in extra {
                    delete_pod(state, p)?;
                }
            }
        }
    }
    let misscheduled = live
        .iter()
        .filter(|p| {
            let n = p["spec"]["nodeName"].as_str().unwrap_or("");
            !nodes
                .iter()
                .any(|node| node["metadata"]["name"] == n && should_run(ds, node))
        })
        .count();
    let mut status = json!({
        "currentNumberScheduled": scheduled,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "observedGeneration": ds["metadata"]["generation"].as_i64().unwrap_or(1),
        "updatedNumberScheduled": scheduled,
        "numberAvailable": ready,
    });
    if desired > ready {
        status["numberUnavailable"] = json!(desired - ready);
    }
    if ready == 0 {
        if let Some(m) = status.as_object_mut() {
            m.remove("numberAvailable");
        }
    }
    if ds["status"] != status {
        let name = ds["metadata"]["name"].as_str().unwrap_or("");
        state.store.guaranteed_update(
            &Gvr::new("apps", "v1", "daemonsets"),
            ns,
            name,
            &WriteOptions::default(),
            |cur| {
                let mut cur = cur.clone();
                cur["status"] = status.clone();
                Ok(cur)
            },
        )?;
    }
    Ok(())
}

/// Deletes a pod as a client would: gracefully once it is on a node.
fn delete_pod(state: &State, pod: &Value) -> Result<(), ApiError> {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return Ok(());
    }
    let grace = if pod["spec"]["nodeName"].is_string() {
        pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    } else {
        0
    };
    let opts = DeleteOptions {
        grace_period_seconds: Some(grace),
        precondition_uid: pod["metadata"]["uid"].as_str().map(str::to_owned),
        ..DeleteOptions::default()
    };
    match state.store.delete(
        &Gvr::new("", "v1", "pods"),
        pod["metadata"]["namespace"].as_str().unwrap_or(""),
        pod["metadata"]["name"].as_str().unwrap_or(""),
        &opts,
    ) {
        Ok(_) | Err(armorlet_store::StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_pods_are_bound_owned_and_tolerant() {
        let ds = json!({"metadata": {"name": "apparmor-loader", "namespace": "default",
                                     "uid": "u-1", "generation": 2},
            "spec": {"template": {"metadata": {"name": "ignored", "labels": {"app": "loader"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                           "tolerations": [{"key": "node.kubernetes.io/unschedulable",
                                                            "operator": "Exists", "effect": "NoSchedule"}]}}}});
        let p = pod_for(&ds, "vm-2");
        assert_eq!(p["spec"]["nodeName"], "vm-2");
        assert_eq!(p["metadata"]["generateName"], "apparmor-loader-");
        assert!(p["metadata"]["name"].is_null());
        assert_eq!(p["metadata"]["labels"]["app"], "loader");
        assert_eq!(p["metadata"]["labels"]["pod-template-generation"], "2");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        let keys: Vec<&str> = p["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), 6, "{keys:?}");
        assert!(keys.contains(&"node.kubernetes.io/not-ready"));
    }

    #[test]
    fn node_selector_and_taints_decide_where_pods_run() {
        let ds = |selector: Value| {
            json!({"metadata": {"name": "d", "uid": "u"},
                   "spec": {"template": {"spec": {"nodeSelector": selector}}}})
        };
        let yes = json!({"metadata": {"name": "a", "labels": {"apparmor": "yes"}}});
        let no = json!({"metadata": {"name": "b", "labels": {}}});
        assert!(should_run(&ds(json!({"apparmor": "yes"})), &yes));
        assert!(!should_run(&ds(json!({"apparmor": "yes"})), &no));
        assert!(should_run(&ds(json!({})), &no));
        let tainted = |key: &str| {
            json!({"metadata": {"name": "c", "labels": {}},
                   "spec": {"taints": [{"key": key, "effect": "NoSchedule"}]}})
        };
        // The controller's own tolerations cover an unschedulable node, not a control plane.
        assert!(should_run(
            &ds(json!({})),
            &tainted("node.kubernetes.io/unschedulable")
        ));
        assert!(!should_run(
            &ds(json!({})),
            &tainted("node-role.kubernetes.io/master")
        ));
    }
}
