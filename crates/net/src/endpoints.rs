//! The endpoints controller as a pure function: a Service and the pods of
//! the cluster → the Service's `Endpoints` object (serde_json values, like the
//! rest of armorlet). Behaviour follows pkg/controller/endpoint in
//! kubernetes/kubernetes: pods of the Service's namespace whose labels match
//! the selector and that have a pod IP and are not terminal; ready pods go to
//! `addresses`, others to `notReadyAddresses`; ports resolve `targetPort` by
//! number or by container port name; subsets group addresses with equal ports.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// The `Endpoints` object for `service` given all `pods`, or `None` when the
/// Service has no selector (its Endpoints are managed by the user).
pub fn endpoints_for(service: &Value, pods: &[&Value]) -> Option<Value> {
    let selector = service["spec"]["selector"].as_object()?;
    if selector.is_empty() {
        return None;
    }
    let namespace = service["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    // Ports (as JSON) → (ready addresses, not-ready addresses).
    let mut groups: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selects(selector, namespace, p)) {
        let Some(ip) = pod["status"]["podIP"].as_str().filter(|s| !s.is_empty()) else {
            continue;
        };
        let ports = Value::Array(pod_ports(service, pod));
        let address = json!({
            "ip": ip,
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {
                "kind": "Pod",
                "namespace": namespace,
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            }
        });
        let group = groups.entry(ports.to_string()).or_default();
        if is_ready(pod) {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    let subsets: Vec<Value> = groups
        .into_iter()
        .map(|(ports, lists)| subset(&ports, lists))
        .collect();
    let mut metadata = Map::new();
    metadata.insert("name".into(), service["metadata"]["name"].clone());
    metadata.insert("namespace".into(), json!(namespace));
    if let Some(labels) = service["metadata"]["labels"].as_object() {
        metadata.insert("labels".into(), Value::Object(labels.clone()));
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": metadata,
        "subsets": subsets,
    }))
}

fn subset(ports: &str, (mut ready, mut not_ready): (Vec<Value>, Vec<Value>)) -> Value {
    let by_ip = |a: &Value, b: &Value| a["ip"].as_str().cmp(&b["ip"].as_str());
    ready.sort_by(by_ip);
    not_ready.sort_by(by_ip);
    let mut s = Map::new();
    if !ready.is_empty() {
        s.insert("addresses".into(), Value::Array(ready));
    }
    if !not_ready.is_empty() {
        s.insert("notReadyAddresses".into(), Value::Array(not_ready));
    }
    s.insert(
        "ports".into(),
        serde_json::from_str(ports).expect("ports were serialized JSON"),
    );
    Value::Object(s)
}

/// Same namespace, labels match the selector, not terminal, not deleted.
fn selects(selector: &Map<String, Value>, namespace: &str, pod: &Value) -> bool {
    let pod_ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let labels = &pod["metadata"]["labels"];
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    pod_ns == namespace
        && pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(phase, "Succeeded" | "Failed")
        && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pod's `Ready` condition is `True`.
fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The endpoint ports of `pod` for each Service port whose target resolves.
fn pod_ports(service: &Value, pod: &Value) -> Vec<Value> {
    let ports = service["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|sp| {
            let protocol = sp["protocol"].as_str().unwrap_or("TCP");
            let number = target_port(sp, pod, protocol)?;
            let mut p = Map::new();
            if let Some(name) = sp["name"].as_str().filter(|n| !n.is_empty()) {
                p.insert("name".into(), json!(name));
            }
            p.insert("port".into(), json!(number));
            p.insert("protocol".into(), json!(protocol));
            Some(Value::Object(p))
        })
        .collect()
}

/// `targetPort` as a number, a container port name, or absent (= `port`).
fn target_port(service_port: &Value, pod: &Value, protocol: &str) -> Option<u64> {
    match &service_port["targetPort"] {
        Value::Number(n) => n.as_u64(),
        Value::String(name) => match name.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => named_container_port(pod, name, protocol),
        },
        _ => service_port["port"].as_u64(),
    }
}

fn named_container_port(pod: &Value, name: &str, protocol: &str) -> Option<u64> {
    let containers = pod["spec"]["containers"].as_array()?;
    containers
        .iter()
        .filter_map(|c| c["ports"].as_array())
        .flatten()
        .find(|p| p["name"] == name && p["protocol"].as_str().unwrap_or("TCP") == protocol)
        .and_then(|p| p["containerPort"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, app: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": app}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 5678}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        })
    }

    fn service(target: Value) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "x"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "h", "port": 80, "targetPort": target, "protocol": "TCP"}]}
        })
    }

    #[test]
    fn ready_and_not_ready_addresses_with_named_port() {
        let pods = [
            pod("b", "10.244.0.3", true, "web"),
            pod("a", "10.244.0.2", true, "web"),
            pod("c", "10.244.0.4", false, "web"),
            pod("other", "10.244.0.5", true, "db"),
        ];
        let ep = endpoints_for(&service(json!("http")), &pods.each_ref()).unwrap();
        assert_eq!(ep["kind"], "Endpoints");
        assert_eq!(ep["metadata"]["labels"]["tier"], "x");
        let s = &ep["subsets"][0];
        assert_eq!(s["addresses"][0]["ip"], "10.244.0.2");
        assert_eq!(s["addresses"][1]["ip"], "10.244.0.3");
        assert_eq!(s["addresses"][0]["targetRef"]["name"], "a");
        assert_eq!(s["notReadyAddresses"][0]["ip"], "10.244.0.4");
        assert_eq!(
            s["ports"],
            json!([{"name": "h", "port": 5678, "protocol": "TCP"}])
        );
        assert_eq!(ep["subsets"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn numeric_and_default_target_ports() {
        let pods = [pod("a", "10.244.0.2", true, "web")];
        let ep = endpoints_for(&service(json!(8080)), &pods.each_ref()).unwrap();
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
        let ep = endpoints_for(&service(Value::Null), &pods.each_ref()).unwrap();
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 80);
    }

    #[test]
    fn no_selector_and_no_pods() {
        let mut svc = service(json!(80));
        assert_eq!(endpoints_for(&svc, &[]).unwrap()["subsets"], json!([]));
        let no_ip = pod("a", "", true, "web");
        assert_eq!(
            endpoints_for(&svc, &[&no_ip]).unwrap()["subsets"],
            json!([])
        );
        svc["spec"]["selector"] = Value::Null;
        assert!(endpoints_for(&svc, &[]).is_none());
    }
}
