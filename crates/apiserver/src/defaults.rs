//! Names, defaulting and per-kind create/delete policy.
//!
//! Only what the API server does for every object of a kind and what kubectl's output depends
//! on; full validation (issue 5, part 3) is not here yet.

use serde_json::{json, Map, Value};

use crate::error::{ApiError, Cause};
use crate::registry::ResourceDef;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Validates `metadata.name` (staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go):
/// namespaces need an RFC 1123 label, other kinds a subdomain.
pub fn validate_name(def: &ResourceDef, name: &str) -> Result<(), ApiError> {
    let (ok, msg) = if def.plural == "namespaces" && def.group.is_empty() {
        (is_dns_label(name), LABEL_MSG)
    } else {
        (is_dns_subdomain(name), SUBDOMAIN_MSG)
    };
    if ok {
        return Ok(());
    }
    Err(ApiError::invalid(
        &def.kind,
        name,
        vec![Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {name:?}: {msg}"),
            field: "metadata.name".into(),
        }],
    ))
}

/// Resolves `generateName` into a name: the prefix plus five characters, as
/// staging/src/k8s.io/apiserver/pkg/storage/names/generate.go does.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    // Truncated to leave room for the suffix, at a character boundary.
    let mut end = prefix.len().min(63 - 5);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = &prefix[..end];
    format!("{prefix}{suffix}")
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("just made an object")
}

fn default_str(m: &mut Map<String, Value>, key: &str, value: &str) {
    if m.get(key).and_then(Value::as_str).unwrap_or("").is_empty() {
        m.insert(key.into(), json!(value));
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    let image = m
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // pkg/apis/core/v1/defaults.go SetDefaults_Container: Always for :latest or no tag.
    let last = image.rsplit('/').next().unwrap_or("");
    let untagged = !last.contains(':') && !image.contains('@');
    let policy = if untagged || image.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    default_str(m, "imagePullPolicy", policy);
    default_str(m, "terminationMessagePath", "/dev/termination-log");
    default_str(m, "terminationMessagePolicy", "File");
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_str(p, "protocol", "TCP");
        }
    }
    if !m.contains_key("resources") {
        m.insert("resources".into(), json!({}));
    }
}

/// The pod's QoS class (pkg/apis/core/helper/qos/qos.go, simplified to requests/limits presence).
fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut any = false;
    let mut all_guaranteed = !containers.is_empty();
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|m| !m.is_empty()) || lim.is_some_and(|m| !m.is_empty()) {
            any = true;
        }
        let guaranteed = lim.is_some_and(|l| {
            ["cpu", "memory"].iter().all(|r| l.contains_key(*r))
                && req.is_none_or(|q| q.iter().all(|(k, v)| l.get(k) == Some(v)))
        });
        all_guaranteed &= guaranteed;
    }
    if !any {
        "BestEffort"
    } else if all_guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Applies create-time defaults and status resets for `def`'s kind.
pub fn on_create(def: &ResourceDef, obj: &mut Value) {
    match (def.group.as_str(), def.plural.as_str()) {
        // pkg/apis/policy/v1beta1 SetDefaults_PodSecurityPolicySpec.
        ("policy", "podsecuritypolicies") => {
            let spec = obj_mut(obj, "spec");
            if !spec.contains_key("allowPrivilegeEscalation") {
                spec.insert("allowPrivilegeEscalation".into(), json!(true));
            }
        }
        ("", "pods") => {
            let spec = obj_mut(obj, "spec");
            default_str(spec, "restartPolicy", "Always");
            default_str(spec, "dnsPolicy", "ClusterFirst");
            default_str(spec, "schedulerName", "default-scheduler");
            if !spec.contains_key("terminationGracePeriodSeconds") {
                spec.insert("terminationGracePeriodSeconds".into(), json!(30));
            }
            if !spec.contains_key("securityContext") {
                spec.insert("securityContext".into(), json!({}));
            }
            if !spec.contains_key("enableServiceLinks") {
                spec.insert("enableServiceLinks".into(), json!(true));
            }
            default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
            if !spec.contains_key("priority") {
                spec.insert("priority".into(), json!(0));
            }
            for list in ["containers", "initContainers"] {
                if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    cs.iter_mut().for_each(default_container);
                }
            }
            // pkg/registry/core/pod/strategy.go PrepareForCreate: status starts as Pending.
            let qos = qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "namespaces") => {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let meta = obj_mut(obj, "metadata");
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "services") => {
            let spec = obj_mut(obj, "spec");
            default_str(spec, "type", "ClusterIP");
            default_str(spec, "sessionAffinity", "None");
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    default_str(p, "protocol", "TCP");
                    if !p.contains_key("targetPort") {
                        if let Some(port) = p.get("port").cloned() {
                            p.insert("targetPort".into(), port);
                        }
                    }
                }
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("", "secrets")
            if obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty() =>
        {
            obj["type"] = json!("Opaque");
        }
        ("apps", _) => {
            obj["status"] = json!({});
        }
        _ => {}
    }
}

/// The grace period of a pod deletion (pkg/registry/core/pod/strategy.go `CheckGracefulDelete`):
/// the request's value, else `terminationGracePeriodSeconds`; 0 for pods never scheduled to a node
/// and for pods that already finished.
pub fn pod_grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !scheduled || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn names_are_validated_like_the_apiserver() {
        let pods = registry::core("pods");
        assert!(validate_name(&pods, "web-1.example").is_ok());
        let e = validate_name(&pods, "Web").unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.starts_with("Pod \"Web\" is invalid: metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain"));
        assert!(validate_name(&registry::core("namespaces"), "a.b").is_err());
    }

    #[test]
    fn generated_names_keep_the_prefix() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9, "{n}");
        assert_ne!(generate_name("web-"), generate_name("web-"));
        let long = "é".repeat(40);
        assert!(generate_name(&long).len() <= 63);
    }

    #[test]
    fn pods_get_defaults_and_a_pending_status() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Running"}});
        on_create(&registry::core("pods"), &mut pod);
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
    }

    #[test]
    fn only_scheduled_running_pods_are_deleted_gracefully() {
        let unscheduled = json!({"spec": {}, "status": {"phase": "Pending"}});
        assert_eq!(pod_grace_period(&unscheduled, None), 0);
        let bound = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 10}, "status": {"phase": "Running"}});
        assert_eq!(pod_grace_period(&bound, None), 10);
        assert_eq!(pod_grace_period(&bound, Some(0)), 0);
        let done = json!({"spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}});
        assert_eq!(pod_grace_period(&done, Some(30)), 0);
    }
}
