//! `as=Table` responses: the columns and cells the real API server prints.
//!
//! Columns and cell logic follow pkg/printers/internalversion/printers.go (the server always
//! renders the wide columns; kubectl hides `priority > 0` ones without `-o wide`). Kinds without a
//! printer there get the default `Name`/`Created At` pair of
//! staging/src/k8s.io/apiserver/pkg/registry/rest/table.go; here every served kind has one.

use serde_json::{json, Map, Value};

use crate::registry::ResourceDef;
use armorlet_store::time;

/// What each row's `object` carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// `duration.HumanDuration` from staging/src/k8s.io/apimachinery/pkg/util/duration/duration.go.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `translateTimestampSince`: "<unknown>" for a missing timestamp.
pub(crate) fn age(ts: Option<&Value>, now: i64) -> String {
    match ts.and_then(Value::as_str).and_then(time::parse_rfc3339) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn or_none(x: &str) -> String {
    if x.is_empty() {
        "<none>".into()
    } else {
        x.into()
    }
}

fn col(name: &str, ty: &str, format: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

/// Column definitions for a resource.
pub fn columns(def: &ResourceDef) -> Vec<Value> {
    if let Some(custom) = &def.custom {
        return crate::crd::columns(custom);
    }
    let name = col("Name", "string", "name", 0);
    let age = col("Age", "string", "", 0);
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => vec![
            name,
            col("Ready", "string", "", 0),
            col("Status", "string", "", 0),
            col("Restarts", "string", "", 0),
            age,
            col("IP", "string", "", 1),
            col("Node", "string", "", 1),
            col("Nominated Node", "string", "", 1),
            col("Readiness Gates", "string", "", 1),
        ],
        ("", "namespaces") => vec![name, col("Status", "string", "", 0), age],
        ("", "nodes") => vec![
            name,
            col("Status", "string", "", 0),
            col("Roles", "string", "", 0),
            age,
            col("Version", "string", "", 0),
            col("Internal-IP", "string", "", 1),
            col("External-IP", "string", "", 1),
            col("OS-Image", "string", "", 1),
            col("Kernel-Version", "string", "", 1),
            col("Container-Runtime", "string", "", 1),
        ],
        ("", "events") | ("events.k8s.io", "events") => vec![
            col("Last Seen", "string", "", 0),
            col("Type", "string", "", 0),
            col("Reason", "string", "", 0),
            col("Object", "string", "", 0),
            col("Subobject", "string", "", 1),
            col("Source", "string", "", 1),
            col("Message", "string", "", 0),
            col("First Seen", "string", "", 1),
            col("Count", "string", "", 1),
            col("Name", "string", "", 1),
        ],
        ("", "configmaps") => vec![name, col("Data", "string", "", 0), age],
        // pkg/printers/internalversion/printers.go podSecurityPolicyColumnDefinitions (no Age).
        ("policy", "podsecuritypolicies") => vec![
            name,
            col("Priv", "string", "", 0),
            col("Caps", "string", "", 0),
            col("SELinux", "string", "", 0),
            col("RunAsUser", "string", "", 0),
            col("FsGroup", "string", "", 0),
            col("SupGroup", "string", "", 0),
            col("ReadOnlyRootFs", "boolean", "", 0),
            col("Volumes", "string", "", 0),
        ],
        ("", "endpoints") => vec![name, col("Endpoints", "string", "", 0), age],
        // rest.DefaultTableConvertor's pair, and printers.go roleColumnDefinitions.
        ("apiextensions.k8s.io", "customresourcedefinitions")
        | ("rbac.authorization.k8s.io", "clusterroles" | "roles") => {
            vec![name, col("Created At", "date", "", 0)]
        }
        // printers.go roleBindingsColumnDefinitions.
        ("rbac.authorization.k8s.io", "clusterrolebindings" | "rolebindings") => vec![
            name,
            col("Role", "string", "", 0),
            age,
            col("Users", "string", "", 1),
            col("Groups", "string", "", 1),
            col("ServiceAccounts", "string", "", 1),
        ],
        // pkg/printers/internalversion/printers.go endpointSliceColumnDefinitions.
        ("discovery.k8s.io", "endpointslices") => vec![
            name,
            col("AddressType", "string", "", 0),
            col("Ports", "string", "", 0),
            col("Endpoints", "string", "", 0),
            age,
        ],
        ("", "secrets") => vec![
            name,
            col("Type", "string", "", 0),
            col("Data", "string", "", 0),
            age,
        ],
        ("", "services") => vec![
            name,
            col("Type", "string", "", 0),
            col("Cluster-IP", "string", "", 0),
            col("External-IP", "string", "", 0),
            col("Port(s)", "string", "", 0),
            age,
            col("Selector", "string", "", 1),
        ],
        ("apps", "daemonsets") => vec![
            name,
            col("Desired", "integer", "", 0),
            col("Current", "integer", "", 0),
            col("Ready", "integer", "", 0),
            col("Up-to-date", "integer", "", 0),
            col("Available", "integer", "", 0),
            col("Node Selector", "string", "", 0),
            age,
            col("Containers", "string", "", 1),
            col("Images", "string", "", 1),
            col("Selector", "string", "", 1),
        ],
        _ => vec![name, age],
    }
}

fn format_labels(m: Option<&Value>) -> String {
    let Some(m) = m.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

pub(crate) fn label_selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        let mut v: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        v.sort();
        parts.extend(v);
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = s(e, "/key");
        let vals: Vec<&str> = arr(e, "/values").iter().filter_map(Value::as_str).collect();
        parts.push(match s(e, "/operator") {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op}"),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn is_restartable_init(c: Option<&Value>) -> bool {
    c.is_some_and(|c| s(c, "/restartPolicy") == "Always")
}

fn terminated_at(cs: &Value) -> Option<i64> {
    cs.pointer("/lastState/terminated/finishedAt")
        .and_then(Value::as_str)
        .and_then(time::parse_rfc3339)
}

/// The pod row: NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES, following
/// `printPod` in pkg/printers/internalversion/printers.go.
pub fn pod_cells(pod: &Value, now: i64) -> Vec<Value> {
    let containers = arr(pod, "/spec/containers");
    let init_specs = arr(pod, "/spec/initContainers");
    let mut total = containers.len();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut restartable_restarts = 0i64;
    let mut last_restart: Option<i64> = None;
    let mut last_restartable_restart: Option<i64> = None;
    let phase = s(pod, "/status/phase");
    let mut reason = if s(pod, "/status/reason").is_empty() {
        phase.to_string()
    } else {
        s(pod, "/status/reason").to_string()
    };
    let conditions = arr(pod, "/status/conditions");
    if conditions
        .iter()
        .any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }
    let init_spec = |name: &str| init_specs.iter().find(|c| s(c, "/name") == name);
    total += init_specs
        .iter()
        .filter(|c| is_restartable_init(Some(c)))
        .count();

    let mut initializing = false;
    for (i, cs) in arr(pod, "/status/initContainerStatuses").iter().enumerate() {
        let count = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        restarts += count;
        if let Some(t) = terminated_at(cs) {
            last_restart = last_restart.max(Some(t));
        }
        let restartable = is_restartable_init(init_spec(s(cs, "/name")));
        if restartable {
            restartable_restarts += count;
            if let Some(t) = terminated_at(cs) {
                last_restartable_restart = last_restartable_restart.max(Some(t));
            }
        }
        let term = cs.pointer("/state/terminated");
        let exit = |t: &Value| t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        let waiting_reason = s(cs, "/state/waiting/reason");
        if let Some(t) = term.filter(|t| exit(t) == 0) {
            let _ = t;
            continue;
        }
        if restartable && cs.get("started").and_then(Value::as_bool) == Some(true) {
            if cs.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = term {
            let r = s(t, "/reason");
            let signal = t.get("signal").and_then(Value::as_i64).unwrap_or(0);
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if signal != 0 {
                format!("Init:Signal:{signal}")
            } else {
                format!("Init:ExitCode:{}", exit(t))
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }
    let initialized = conditions
        .iter()
        .any(|c| s(c, "/type") == "Initialized" && s(c, "/status") == "True");
    if !initializing || initialized {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for cs in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            if let Some(t) = terminated_at(cs) {
                last_restart = last_restart.max(Some(t));
            }
            let waiting = s(cs, "/state/waiting/reason");
            let term = cs.pointer("/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = term {
                let r = s(t, "/reason");
                let signal = t.get("signal").and_then(Value::as_i64).unwrap_or(0);
                reason = if !r.is_empty() {
                    r.to_string()
                } else if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!(
                        "ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    )
                };
            } else if cs.get("ready").and_then(Value::as_bool) == Some(true)
                && cs.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }
    let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
    if deleting && s(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }
    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };
    let ip = arr(pod, "/status/podIPs")
        .first()
        .map(|p| s(p, "/ip"))
        .unwrap_or("");
    let gates = arr(pod, "/spec/readinessGates");
    let gates_str = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let t = gates
            .iter()
            .filter(|g| {
                let ty = s(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| s(c, "/type") == ty)
                    .is_some_and(|c| s(c, "/status") == "True")
            })
            .count();
        format!("{t}/{}", gates.len())
    };
    vec![
        json!(s(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_str),
        json!(age(pod.pointer("/metadata/creationTimestamp"), now)),
        json!(or_none(ip)),
        json!(or_none(s(pod, "/spec/nodeName"))),
        json!(or_none(s(pod, "/status/nominatedNodeName"))),
        json!(gates_str),
    ]
}

fn node_cells(node: &Value, now: i64) -> Vec<Value> {
    let conditions = arr(node, "/status/conditions");
    let mut status: Vec<String> = Vec::new();
    match conditions.iter().find(|c| s(c, "/type") == "Ready") {
        Some(c) if s(c, "/status") == "True" => status.push("Ready".into()),
        Some(_) => status.push("NotReady".into()),
        None => status.push("Unknown".into()),
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                (!r.is_empty()).then(|| r.to_string())
            } else if k == "kubernetes.io/role" {
                v.as_str().map(str::to_string)
            } else {
                None
            }
        })
        .collect();
    roles.sort();
    let addr = |ty: &str| {
        arr(node, "/status/addresses")
            .iter()
            .find(|a| s(a, "/type") == ty)
            .map(|a| s(a, "/address").to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    let unknown = |x: &str| {
        if x.is_empty() {
            "<unknown>".to_string()
        } else {
            x.to_string()
        }
    };
    vec![
        json!(s(node, "/metadata/name")),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".into()
        } else {
            roles.join(",")
        }),
        json!(age(node.pointer("/metadata/creationTimestamp"), now)),
        json!(s(node, "/status/nodeInfo/kubeletVersion")),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(unknown(s(node, "/status/nodeInfo/osImage"))),
        json!(unknown(s(node, "/status/nodeInfo/kernelVersion"))),
        json!(unknown(s(node, "/status/nodeInfo/containerRuntimeVersion"))),
    ]
}

fn event_cells(ev: &Value, now: i64) -> Vec<Value> {
    let first = ev
        .get("firstTimestamp")
        .filter(|v| v.is_string())
        .or_else(|| ev.get("eventTime").filter(|v| v.is_string()))
        .or_else(|| ev.pointer("/metadata/creationTimestamp"));
    let last = ev.get("lastTimestamp").filter(|v| v.is_string()).or(first);
    let obj = ev.get("involvedObject").or_else(|| ev.get("regarding"));
    let kind = obj.map(|o| s(o, "/kind")).unwrap_or("");
    let name = obj.map(|o| s(o, "/name")).unwrap_or("");
    let source = if !s(ev, "/source/component").is_empty() {
        let host = s(ev, "/source/host");
        if host.is_empty() {
            s(ev, "/source/component").to_string()
        } else {
            format!("{}, {host}", s(ev, "/source/component"))
        }
    } else {
        s(ev, "/reportingComponent").to_string()
    };
    let message = if ev.get("message").is_some() {
        s(ev, "/message")
    } else {
        s(ev, "/note")
    };
    vec![
        json!(age(last, now)),
        json!(s(ev, "/type")),
        json!(s(ev, "/reason")),
        json!(format!("{}/{}", kind.to_lowercase(), name)),
        json!(obj.map(|o| s(o, "/fieldPath")).unwrap_or("")),
        json!(source),
        json!(message.trim()),
        json!(age(first, now)),
        json!(ev
            .get("count")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .to_string()),
        json!(s(ev, "/metadata/name")),
    ]
}

fn map_len(v: &Value, ptr: &str) -> usize {
    v.pointer(ptr)
        .and_then(Value::as_object)
        .map(Map::len)
        .unwrap_or(0)
}

/// `ip:port` per address and port, at most three then ` + N more...`, `<none>` when empty
/// (pkg/printers/internalversion/printers.go `formatEndpoints`).
/// The first three items, then ` + N more...`; `<unset>` for none (printers.go
/// formatDiscoveryPorts / formatDiscoveryEndpoints).
fn first_three(items: Vec<String>) -> String {
    if items.is_empty() {
        return "<unset>".into();
    }
    let mut text = items[..items.len().min(3)].join(",");
    if items.len() > 3 {
        text.push_str(&format!(" + {} more...", items.len() - 3));
    }
    text
}

fn slice_ports_text(slice: &Value) -> String {
    first_three(
        arr(slice, "/ports")
            .iter()
            .map(|p| {
                p["port"]
                    .as_i64()
                    .map_or("<unset>".to_owned(), |n| n.to_string())
            })
            .collect(),
    )
}

fn slice_endpoints_text(slice: &Value) -> String {
    first_three(
        arr(slice, "/endpoints")
            .iter()
            .flat_map(|e| arr(e, "/addresses").iter().map(|a| s(a, "").to_owned()))
            .collect(),
    )
}

fn endpoints_text(ep: &Value) -> String {
    let mut list: Vec<String> = Vec::new();
    let mut count = 0usize;
    for subset in arr(ep, "/subsets") {
        let addresses = arr(subset, "/addresses");
        let ports = arr(subset, "/ports");
        let ports: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports.iter().map(|p| p["port"].as_i64()).collect()
        };
        for port in &ports {
            for a in addresses {
                count += 1;
                if list.len() < 3 {
                    let ip = s(a, "/ip");
                    list.push(match port {
                        Some(p) => format!("{ip}:{p}"),
                        None => ip.to_string(),
                    });
                }
            }
        }
    }
    if list.is_empty() {
        return "<none>".into();
    }
    let mut text = list.join(",");
    if count > list.len() {
        text.push_str(&format!(" + {} more...", count - list.len()));
    }
    text
}

fn service_cells(svc: &Value, now: i64) -> Vec<Value> {
    let ty = match s(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    let external_ips: Vec<&str> = arr(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match ty {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let mut ips: Vec<String> = arr(svc, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| {
                    if s(i, "/ip").is_empty() {
                        s(i, "/hostname").to_string()
                    } else {
                        s(i, "/ip").to_string()
                    }
                })
                .collect();
            ips.extend(external_ips.iter().map(|x| x.to_string()));
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => s(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = match s(p, "/protocol") {
                "" => "TCP",
                x => x,
            };
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) if np > 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        json!(s(svc, "/metadata/name")),
        json!(ty),
        json!(or_none(s(svc, "/spec/clusterIP"))),
        json!(external),
        json!(if ports.is_empty() {
            "<none>".into()
        } else {
            ports.join(",")
        }),
        json!(age(svc.pointer("/metadata/creationTimestamp"), now)),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
}

fn daemonset_cells(ds: &Value, now: i64) -> Vec<Value> {
    let n = |p: &str| ds.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let containers = arr(ds, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    vec![
        json!(s(ds, "/metadata/name")),
        json!(n("/status/desiredNumberScheduled")),
        json!(n("/status/currentNumberScheduled")),
        json!(n("/status/numberReady")),
        json!(n("/status/updatedNumberScheduled")),
        json!(n("/status/numberAvailable")),
        json!(format_labels(
            ds.pointer("/spec/template/spec/nodeSelector")
        )),
        json!(age(ds.pointer("/metadata/creationTimestamp"), now)),
        json!(names.join(",")),
        json!(images.join(",")),
        json!(ds
            .pointer("/spec/selector")
            .map(label_selector_string)
            .unwrap_or_else(|| "<none>".into())),
    ]
}

/// The cells of one object's row.
pub fn cells(def: &ResourceDef, obj: &Value, now: i64) -> Vec<Value> {
    if let Some(custom) = &def.custom {
        return crate::crd::cells(custom, obj, now);
    }
    let name = json!(s(obj, "/metadata/name"));
    let created = json!(age(obj.pointer("/metadata/creationTimestamp"), now));
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => pod_cells(obj, now),
        ("", "nodes") => node_cells(obj, now),
        ("", "events") | ("events.k8s.io", "events") => event_cells(obj, now),
        ("", "namespaces") => vec![name, json!(s(obj, "/status/phase")), created],
        ("", "configmaps") => vec![
            name,
            json!((map_len(obj, "/data") + map_len(obj, "/binaryData")).to_string()),
            created,
        ],
        ("", "secrets") => vec![
            name,
            json!(s(obj, "/type")),
            json!(map_len(obj, "/data").to_string()),
            created,
        ],
        ("", "services") => service_cells(obj, now),
        ("", "endpoints") => vec![name, json!(endpoints_text(obj)), created],
        ("discovery.k8s.io", "endpointslices") => vec![
            name,
            json!(s(obj, "/addressType")),
            json!(slice_ports_text(obj)),
            json!(slice_endpoints_text(obj)),
            created,
        ],
        ("apps", "daemonsets") => daemonset_cells(obj, now),
        ("apiextensions.k8s.io", "customresourcedefinitions")
        | ("rbac.authorization.k8s.io", "clusterroles" | "roles") => {
            vec![name, json!(s(obj, "/metadata/creationTimestamp"))]
        }
        ("rbac.authorization.k8s.io", "clusterrolebindings" | "rolebindings") => {
            let subjects = |kind: &str| {
                arr(obj, "/subjects")
                    .iter()
                    .filter(|x| x["kind"] == kind)
                    .map(|x| {
                        let (ns, n) = (s(x, "/namespace"), s(x, "/name"));
                        if kind == "ServiceAccount" {
                            format!("{ns}/{n}")
                        } else {
                            n.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s(obj, "/roleRef/kind"),
                    s(obj, "/roleRef/name")
                )),
                created,
                json!(subjects("User")),
                json!(subjects("Group")),
                json!(subjects("ServiceAccount")),
            ]
        }
        ("policy", "podsecuritypolicies") => {
            let join = |p: &str| {
                obj.pointer(p)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            let flag = |p: &str| obj.pointer(p).and_then(Value::as_bool).unwrap_or(false);
            vec![
                name,
                json!(flag("/spec/privileged").to_string()),
                json!(join("/spec/allowedCapabilities")),
                json!(s(obj, "/spec/seLinux/rule")),
                json!(s(obj, "/spec/runAsUser/rule")),
                json!(s(obj, "/spec/fsGroup/rule")),
                json!(s(obj, "/spec/supplementalGroups/rule")),
                json!(flag("/spec/readOnlyRootFilesystem")),
                json!(join("/spec/volumes")),
            ]
        }
        _ => vec![name, created],
    }
}

fn row_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        }),
    }
}

/// A Table over `objects`.
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    resource_version: Option<String>,
    continue_token: Option<String>,
    include: IncludeObject,
) -> Value {
    let now = time::now_unix();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(def, o, now)});
            if include != IncludeObject::None {
                row["object"] = row_object(o, include);
            }
            row
        })
        .collect();
    let mut meta = json!({});
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv);
    }
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(def),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_apimachinery() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600, "8h"),
            (3 * 86400, "3d"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    fn pod(status: Value) -> Value {
        json!({"metadata": {"name": "p", "creationTimestamp": time::now_rfc3339()},
               "spec": {"containers": [{"name": "c"}]}, "status": status})
    }

    fn status_cell(p: &Value) -> String {
        pod_cells(p, time::now_unix())[2]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn pod_status_column_follows_the_printer() {
        assert_eq!(status_cell(&pod(json!({"phase": "Pending"}))), "Pending");
        let running = json!({"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": true, "restartCount": 0, "state": {"running": {}}}]});
        let cells = pod_cells(&pod(running), time::now_unix());
        assert_eq!(
            (cells[1].as_str(), cells[2].as_str()),
            (Some("1/1"), Some("Running"))
        );
        let crash = json!({"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 2,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": time::format_rfc3339(time::now_unix() - 24)}}}]});
        let cells = pod_cells(&pod(crash), time::now_unix());
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "2 (24s ago)");
        let done = json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        assert_eq!(status_cell(&pod(done)), "Completed");
        let failed_aa = json!({"phase": "Failed", "reason": "AppArmor"});
        assert_eq!(status_cell(&pod(failed_aa)), "AppArmor");
        let init = json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}]});
        let mut p = pod(init);
        p["spec"]["initContainers"] = json!([{"name": "i"}]);
        assert_eq!(status_cell(&p), "Init:0/1");
        let mut terminating = pod(json!({"phase": "Running"}));
        terminating["metadata"]["deletionTimestamp"] = json!(time::now_rfc3339());
        assert_eq!(status_cell(&terminating), "Terminating");
    }

    #[test]
    fn wide_pod_cells_show_none_for_missing_values() {
        let cells = pod_cells(&pod(json!({"phase": "Pending"})), time::now_unix());
        assert_eq!(
            &cells[5..],
            &[
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }
}
