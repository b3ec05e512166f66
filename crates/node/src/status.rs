//! Pod status as the kubelet computes it (pkg/kubelet/kubelet_pods.go
//! `generateAPIPodStatus`, `getPhase`; pkg/kubelet/status/generate.go for the
//! Ready/ContainersReady/Initialized conditions; pkg/apis/core/v1/helper/qos for qosClass).

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What the worker knows about one container, for status.
#[derive(Debug, Clone)]
pub struct ContainerView {
    /// Container name.
    pub name: String,
    /// The image as written in the spec.
    pub image: String,
    /// The resolved image ID (`docker.io/library/busybox@sha256:...`), empty if unknown.
    pub image_id: String,
    /// `state` (one of waiting/running/terminated).
    pub state: Value,
    /// `lastState` (`{}` or `{terminated: ...}`).
    pub last_state: Value,
    /// Restart count.
    pub restart_count: u32,
    /// `crun://<id>` of the current instance.
    pub container_id: Option<String>,
    /// Running now.
    pub running: bool,
    /// Running and its readiness probe (if any) succeeds.
    pub ready: bool,
    /// Running and its startup probe (if any) succeeded.
    pub started: bool,
    /// Terminated with exit code 0 (init containers: done).
    pub succeeded: bool,
    /// Terminated and will not be restarted.
    pub finished: bool,
}

/// Inputs of [`pod_status`] besides the containers.
pub struct PodFacts<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Sandbox exists.
    pub sandbox_ready: bool,
    /// Init containers (spec order).
    pub init: &'a [ContainerView],
    /// Regular containers (spec order).
    pub containers: &'a [ContainerView],
    /// The node's IP.
    pub host_ip: &'a str,
    /// The pod's IP on the node's pod network, once attached.
    pub pod_ip: Option<&'a str>,
    /// `startTime`.
    pub start_time: &'a str,
    /// Whether an init container failed for good (restartPolicy Never).
    pub init_failed: bool,
}

/// Remembers `lastTransitionTime` per condition type.
#[derive(Debug, Default, Clone)]
pub struct Transitions(HashMap<String, (String, String)>);

impl Transitions {
    fn condition(
        &mut self,
        type_: &str,
        ok: bool,
        reason: Option<&str>,
        message: Option<String>,
    ) -> Value {
        let status = if ok { "True" } else { "False" };
        let entry = self
            .0
            .entry(type_.to_owned())
            .or_insert_with(|| (status.to_owned(), crate::time::now()));
        if entry.0 != status {
            *entry = (status.to_owned(), crate::time::now());
        }
        let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": entry.1});
        if !ok {
            if let Some(r) = reason {
                c["reason"] = r.into();
            }
            if let Some(m) = message {
                c["message"] = m.into();
            }
        }
        c
    }
}

/// The full `status` object for a pod the node runs.
pub fn pod_status(f: &PodFacts<'_>, tr: &mut Transitions) -> Value {
    let phase = phase(f);
    let initialized = f.init.iter().all(|c| c.succeeded);
    let unready: Vec<&str> = f
        .containers
        .iter()
        .filter(|c| !c.running)
        .map(|c| c.name.as_str())
        .collect();
    let incomplete: Vec<&str> = f
        .init
        .iter()
        .filter(|c| !c.succeeded)
        .map(|c| c.name.as_str())
        .collect();
    let ready_msg = format!("containers with unready status: [{}]", unready.join(" "));
    let mut conditions = vec![
        tr.condition("PodReadyToStartContainers", f.sandbox_ready, None, None),
        tr.condition(
            "Initialized",
            initialized,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        ),
        tr.condition(
            "Ready",
            unready.is_empty() && initialized,
            Some("ContainersNotReady"),
            Some(ready_msg.clone()),
        ),
        tr.condition(
            "ContainersReady",
            unready.is_empty() && initialized,
            Some("ContainersNotReady"),
            Some(ready_msg),
        ),
    ];
    conditions.push(scheduled_condition(f.pod, tr));
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": f.host_ip,
        "hostIPs": [{"ip": f.host_ip}],
        "podIP": f.pod_ip,
        "podIPs": f.pod_ip.map(|ip| json!([{"ip": ip}])),
        "startTime": f.start_time,
        "qosClass": qos_class(f.pod),
        "containerStatuses": f.containers.iter().map(container_status).collect::<Vec<_>>(),
        "reason": null,
        "message": null,
    });
    if !f.init.is_empty() {
        status["initContainerStatuses"] = f
            .init
            .iter()
            .map(container_status)
            .collect::<Vec<_>>()
            .into();
    }
    status
}

fn scheduled_condition(pod: &Pod, tr: &mut Transitions) -> Value {
    let existing = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|l| l.iter().find(|c| c.type_ == "PodScheduled"));
    match existing {
        Some(c) => serde_json::to_value(c).unwrap_or(Value::Null),
        None => tr.condition("PodScheduled", true, None, None),
    }
}

fn container_status(c: &ContainerView) -> Value {
    let mut v = json!({
        "name": c.name, "state": c.state, "lastState": c.last_state, "ready": c.ready,
        "started": c.started, "restartCount": c.restart_count, "image": c.image, "imageID": c.image_id,
    });
    if let Some(id) = &c.container_id {
        v["containerID"] = id.clone().into();
    }
    v
}

/// pkg/kubelet/kubelet_pods.go `getPhase`.
fn phase(f: &PodFacts<'_>) -> &'static str {
    let policy = f
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    if f.init_failed {
        return "Failed";
    }
    if !f.init.iter().all(|c| c.succeeded) {
        return "Pending";
    }
    let never_ran = f.containers.iter().any(|c| {
        !c.running
            && c.last_state.as_object().is_none_or(|o| o.is_empty())
            && !c.finished
            && c.state.get("terminated").is_none()
    });
    if never_ran {
        return "Pending";
    }
    if f.containers.iter().any(|c| c.running) {
        return "Running";
    }
    let all_finished = f.containers.iter().all(|c| c.finished);
    if !all_finished {
        return "Running";
    }
    if f.containers.iter().all(|c| c.succeeded) {
        "Succeeded"
    } else if policy == "Always" {
        "Running"
    } else {
        "Failed"
    }
}

/// pkg/apis/core/v1/helper/qos/qos.go `GetPodQOS` (simplified to cpu/memory).
pub fn qos_class(pod: &Pod) -> &'static str {
    let spec = match &pod.spec {
        Some(s) => s,
        None => return "BestEffort",
    };
    let all: Vec<_> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.as_ref();
        let req = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        let lim = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        for k in ["cpu", "memory"] {
            let (q, l) = (req.get(k), lim.get(k));
            any |= q.is_some() || l.is_some();
            match (q, l) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q.0 != l.0 => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        _ => "Burstable",
    }
}
