//! The in-process scheduler (kube-scheduler's default profile, reduced to the filters a
//! one-machine cluster needs): binds pods without `spec.nodeName` to a Ready, schedulable node
//! that matches the pod's `nodeSelector` and required node affinity, whose `NoSchedule` /
//! `NoExecute` taints the pod tolerates, and that has room under its `pods` allocatable.
//! Binding has the `pods/binding` semantics; success records the `PodScheduled` condition and a
//! `Scheduled` event from `default-scheduler`; failure records `PodScheduled=False`
//! (`Unschedulable`) and a `FailedScheduling` event with the upstream message shape
//! (`pkg/scheduler/framework/types.go` `FitError.Error`). Pending pods are retried on every
//! pass, so a node that appears or changes is picked up.

use std::collections::BTreeMap;
use std::time::Duration;

use armorlet_store::{Gvr, ListOptions, WriteOptions};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::State;

type Result<T> = std::result::Result<T, ApiError>;

/// How often pending pods are looked at.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The scheduler's name in events and `spec.schedulerName`.
pub const SCHEDULER: &str = "default-scheduler";

fn pods() -> Gvr {
    Gvr::new("", "v1", "pods")
}

fn list(state: &State, gvr: &Gvr) -> Result<Vec<Value>> {
    Ok(state.store.list(gvr, None, &ListOptions::default())?.items)
}

/// Why a node does not fit; `resolvable` when preemption could help.
struct Misfit {
    reason: String,
    resolvable: bool,
}

fn misfit(reason: impl Into<String>) -> Option<Misfit> {
    Some(Misfit {
        reason: reason.into(),
        resolvable: false,
    })
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Whether a pod or node has the condition `Ready` = `True`.
pub(crate) fn ready(obj: &Value) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// One `matchExpressions` entry against the node's labels (`NodeSelectorRequirement`).
fn expression_matches(expr: &Value, labels: &Value) -> bool {
    let key = expr["key"].as_str().unwrap_or("");
    let value = labels.get(key).and_then(Value::as_str);
    let values: Vec<&str> = expr["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let int = |s: &str| s.parse::<i64>().ok();
    match expr["operator"].as_str().unwrap_or("") {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(int), values.first().and_then(|v| int(v))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.and_then(int), values.first().and_then(|v| int(v))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

/// `nodeSelector` and `requiredDuringSchedulingIgnoredDuringExecution` (terms are ORed,
/// expressions within a term ANDed).
pub(crate) fn selector_matches(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let terms = &pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    let affinity_ok = match terms.as_array() {
        None => true,
        Some(terms) => terms.iter().any(|t| {
            t["matchExpressions"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
                && t["matchExpressions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|e| expression_matches(e, labels))
        }),
    };
    selector_ok && affinity_ok
}

fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect_ok = match toleration["effect"].as_str().unwrap_or("") {
        "" => true,
        e => Some(e) == taint["effect"].as_str(),
    };
    let key = toleration["key"].as_str().unwrap_or("");
    let key_ok = key.is_empty() || Some(key) == taint["key"].as_str();
    let value_ok = match toleration["operator"].as_str().unwrap_or("Equal") {
        "Exists" => true,
        _ => toleration["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or(""),
    };
    effect_ok && key_ok && value_ok
}

/// The first NoSchedule/NoExecute taint the pod does not tolerate.
pub(crate) fn untolerated(pod: &Value, taints: &[Value]) -> Option<Value> {
    let tolerations = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    taints
        .iter()
        .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
        .cloned()
}

/// Whether `pod` fits `node` holding `bound` pods.
fn check(pod: &Value, node: &Value, bound: usize) -> Option<Misfit> {
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        return misfit("node(s) were unschedulable");
    }
    let mut taints = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !ready(node)
        && !taints.iter().any(|t| {
            t["key"] == "node.kubernetes.io/not-ready"
                || t["key"] == "node.kubernetes.io/unreachable"
        })
    {
        // The node lifecycle controller taints a NotReady node; apply that taint's effect here.
        taints.push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}));
    }
    if !selector_matches(pod, node) {
        return misfit("node(s) didn't match Pod's node affinity/selector");
    }
    if let Some(t) = untolerated(pod, &taints) {
        return misfit(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t["key"].as_str().unwrap_or(""),
            t["value"].as_str().unwrap_or("")
        ));
    }
    let max = node["status"]["allocatable"]["pods"]
        .as_str()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(110);
    if bound >= max {
        return Some(Misfit {
            reason: "Too many pods".into(),
            resolvable: true,
        });
    }
    None
}

/// `0/N nodes are available: ... preemption: 0/N nodes are available: ...`.
fn fit_error(total: usize, misfits: &[Misfit]) -> String {
    if total == 0 {
        return "no nodes available to schedule pods".into();
    }
    let count = |it: &mut dyn Iterator<Item = String>| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in it {
            *counts.entry(r).or_default() += 1;
        }
        let mut parts: Vec<String> = counts
            .into_iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        parts.sort();
        parts.join(", ")
    };
    let reasons = count(&mut misfits.iter().map(|m| m.reason.clone()));
    let preemption = count(&mut misfits.iter().map(|m| {
        if m.resolvable {
            "No preemption victims found for incoming pod.".to_string()
        } else {
            "Preemption is not helpful for scheduling.".to_string()
        }
    }));
    let preemption = preemption.trim_end_matches('.');
    format!("0/{total} nodes are available: {reasons}. preemption: 0/{total} nodes are available: {preemption}.")
}

/// Records an event about `pod`.
pub fn record_event(
    state: &State,
    pod: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) -> Result<()> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let now = armorlet_store::time::now_rfc3339();
    // client-go's recorder names events `<object>.<hex UnixNano>` (tools/record/event.go
    // makeEvent), so a list (and `kubectl get events`) is in the order they happened.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name,
                           "uid": pod["metadata"]["uid"], "resourceVersion": pod["metadata"]["resourceVersion"]},
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": kind,
        "reportingComponent": component,
        "reportingInstance": "",
    });
    state.store.create(
        &Gvr::new("", "v1", "events"),
        ns,
        event,
        &WriteOptions::default(),
    )?;
    Ok(())
}

/// Sets the `PodScheduled` condition (keeping its transition time when the status is unchanged).
fn set_condition(pod: &mut Value, status: &str, reason: Option<&str>, message: Option<&str>) {
    let now = armorlet_store::time::now_rfc3339();
    let mut cond = json!({"type": "PodScheduled", "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        cond["reason"] = json!(r);
    }
    if let Some(m) = message {
        cond["message"] = json!(m);
    }
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if pod["status"]["phase"].is_null() {
        pod["status"]["phase"] = json!("Pending");
    }
    let conds = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Value> = conds
        .into_iter()
        .filter(|c| c["type"] != "PodScheduled")
        .collect();
    out.push(cond);
    pod["status"]["conditions"] = json!(out);
}

/// `pods/binding`: assigns the pod to `node` (409 when it already has one).
pub fn bind(state: &State, ns: &str, name: &str, node: &str) -> Result<Value> {
    if node.is_empty() {
        let mut e = ApiError::bad_request("Binding.target.name: Required value");
        e.reason = "Invalid";
        e.code = 422;
        return Err(e);
    }
    let bound =
        state
            .store
            .guaranteed_update(&pods(), ns, name, &WriteOptions::default(), |mut pod| {
                if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    return Err(armorlet_store::StoreError::Conflict {
                        resource: "pods/binding".into(),
                        name: name.to_string(),
                        detail: format!("pod {name} is already assigned to node {existing:?}"),
                    });
                }
                pod["spec"]["nodeName"] = json!(node);
                set_condition(&mut pod, "True", None, None);
                Ok(pod)
            })?;
    Ok(bound)
}

/// One scheduling pass over the pending pods; `all_pods` are every stored pod (the
/// controllers' informer, [`armorlet_store::Informer`]).
pub fn schedule_once(state: &State, all_pods: &[&Value]) -> Result<()> {
    let nodes = list(state, &Gvr::new("", "v1", "nodes"))?;
    let mut load: BTreeMap<String, usize> = BTreeMap::new();
    for p in all_pods.iter().filter(|p| !is_terminal(p)) {
        if let Some(n) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            *load.entry(n.to_string()).or_default() += 1;
        }
    }
    let pending = all_pods.iter().filter(|p| {
        p["spec"]["nodeName"].as_str().unwrap_or("").is_empty()
            && p["metadata"]["deletionTimestamp"].is_null()
            && !is_terminal(p)
            && p["spec"]["schedulerName"]
                .as_str()
                .is_none_or(|s| s == SCHEDULER)
    });
    for pod in pending {
        let mut misfits = Vec::new();
        let mut chosen = None;
        for node in &nodes {
            let name = node["metadata"]["name"].as_str().unwrap_or("");
            match check(pod, node, load.get(name).copied().unwrap_or(0)) {
                None => {
                    chosen = Some(name.to_string());
                    break;
                }
                Some(m) => misfits.push(m),
            }
        }
        let (ns, name) = (
            pod["metadata"]["namespace"].as_str().unwrap_or("default"),
            pod["metadata"]["name"].as_str().unwrap_or(""),
        );
        match chosen {
            Some(node) => {
                let bound = bind(state, ns, name, &node)?;
                *load.entry(node.clone()).or_default() += 1;
                let msg = format!("Successfully assigned {ns}/{name} to {node}");
                record_event(state, &bound, "Normal", "Scheduled", &msg, SCHEDULER)?;
            }
            None => unschedulable(state, pod, &fit_error(nodes.len(), &misfits))?,
        }
    }
    Ok(())
}

/// Records a failed attempt once per distinct message.
fn unschedulable(state: &State, pod: &Value, message: &str) -> Result<()> {
    let already = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "PodScheduled" && c["message"] == message);
    if already {
        return Ok(());
    }
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let updated =
        state
            .store
            .guaranteed_update(&pods(), ns, name, &WriteOptions::default(), |mut p| {
                set_condition(&mut p, "False", Some("Unschedulable"), Some(message));
                Ok(p)
            })?;
    record_event(
        state,
        &updated,
        "Warning",
        "FailedScheduling",
        message,
        SCHEDULER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_error_matches_upstream() {
        let m = [Misfit {
            reason: "node(s) didn't match Pod's node affinity/selector".into(),
            resolvable: false,
        }];
        assert_eq!(
            fit_error(1, &m),
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn filters() {
        let node = json!({"metadata": {"name": "n", "labels": {"disk": "ssd", "gen": "5"}},
                          "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
                          "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"pods": "1"}}});
        let tol = json!([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]);
        let pod = json!({"spec": {"nodeSelector": {"disk": "ssd"}, "tolerations": tol,
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]}}}}});
        assert!(check(&pod, &node, 0).is_none());
        assert_eq!(check(&pod, &node, 1).unwrap().reason, "Too many pods");
        let untol = json!({"spec": {"nodeSelector": {"disk": "ssd"}}});
        assert_eq!(
            check(&untol, &node, 0).unwrap().reason,
            "node(s) had untolerated taint {k: v}"
        );
        let wrong = json!({"spec": {"nodeSelector": {"disk": "hdd"}, "tolerations": tol}});
        assert_eq!(
            check(&wrong, &node, 0).unwrap().reason,
            "node(s) didn't match Pod's node affinity/selector"
        );
    }
}
