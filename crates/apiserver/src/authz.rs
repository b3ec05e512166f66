//! Authorization and admission of node identities (`system:node:<name>` in `system:nodes`).
//!
//! [`authorize`] is kube-apiserver's authorization step for armorlet's two kinds of user:
//! `system:masters` may do everything; a node gets what the Node authorizer gives a kubelet
//! (plugin/pkg/auth/authorizer/node/node_authorizer.go, with the static rules of
//! plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go `NodeRules`), plus what
//! armorlet's agent needs for the two other jobs it does on a node: kube-proxy's reads
//! (the `system:node-proxier` role: Services, Endpoints, EndpointSlices) and the Security
//! Profiles Operator daemon's (its profiles and node statuses), and reads of namespaces and
//! CustomResourceDefinitions. Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccount
//! tokens are readable only when a pod bound to the node refers to them (the authorizer's
//! graph, here asked of the store through [`Graph`]). With the `AuthorizeNodeWithSelectors`
//! behaviour (1.32) a node reads only its own Node and the pods bound to it.
//!
//! [`admit`] is the NodeRestriction admission plugin
//! (plugin/pkg/admission/noderestriction/admission.go): a node may modify only its own Node
//! (not its taints) and Lease, the status of pods bound to it, delete only those pods and
//! create only mirror pods; and, armorlet's additions, write only its own
//! `SecurityProfileNodeStatus`es and only recorded profiles (those labelled
//! `spo.x-k8s.io/recording-id`, which its ProfileRecording export writes). Not carried over:
//! the Node label restrictions (armorlet's agents register kind's node-role labels, which
//! kubeadm sets with admin rights on a real cluster).
//!
//! Denials are kube-apiserver's 403 `Forbidden` Status: from the authorizer
//! `<resource> "<name>" is forbidden: User "<user>" cannot <verb> resource "<resource>" in API
//! group "<group>" in the namespace "<ns>": <reason>` (endpoints/handlers/responsewriters
//! `forbiddenMessage`), from admission `<resource> "<name>" is forbidden: <reason>`.

use serde_json::Value;

use crate::auth::User;
use crate::error::ApiError;
use crate::requestinfo::RequestInfo;

/// What the Node authorizer's graph answers, from the stored objects.
pub trait Graph {
    /// `spec.nodeName` of pod `ns/name` (`Some("")` for an unbound pod, `None` for none).
    fn pod_node(&self, ns: &str, name: &str) -> Option<String>;
    /// The pods in `ns` bound to `node`.
    fn pods_on_node(&self, ns: &str, node: &str) -> Vec<Value>;
    /// The uid of Node `node`.
    fn node_uid(&self, node: &str) -> Option<String>;
}

/// An object kind a pod can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `secrets`
    Secret,
    /// `configmaps`
    ConfigMap,
    /// `persistentvolumeclaims`
    PersistentVolumeClaim,
    /// `serviceaccounts`
    ServiceAccount,
}

/// The names of the objects of `kind` pod `pod` refers to (pkg/api/pod/util.go
/// `VisitPodSecretNames` and `VisitPodConfigmapNames`, and the graph populator's
/// PersistentVolumeClaim and ServiceAccount edges).
pub fn pod_references(pod: &Value, kind: RefKind) -> Vec<String> {
    let spec = &pod["spec"];
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
            out.push(s.to_owned());
        }
    };
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten();
    let volumes = spec["volumes"].as_array().into_iter().flatten();
    match kind {
        RefKind::Secret => {
            for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
                push(&s["name"]);
            }
            for c in containers {
                for e in c["envFrom"].as_array().into_iter().flatten() {
                    push(&e["secretRef"]["name"]);
                }
                for e in c["env"].as_array().into_iter().flatten() {
                    push(&e["valueFrom"]["secretKeyRef"]["name"]);
                }
            }
            for v in volumes {
                push(&v["secret"]["secretName"]);
                push(&v["azureFile"]["secretName"]);
                for k in [
                    "cephfs",
                    "cinder",
                    "flexVolume",
                    "rbd",
                    "scaleIO",
                    "iscsi",
                    "storageos",
                ] {
                    push(&v[k]["secretRef"]["name"]);
                }
                push(&v["csi"]["nodePublishSecretRef"]["name"]);
                for src in v["projected"]["sources"].as_array().into_iter().flatten() {
                    push(&src["secret"]["name"]);
                }
            }
        }
        RefKind::ConfigMap => {
            for c in containers {
                for e in c["envFrom"].as_array().into_iter().flatten() {
                    push(&e["configMapRef"]["name"]);
                }
                for e in c["env"].as_array().into_iter().flatten() {
                    push(&e["valueFrom"]["configMapKeyRef"]["name"]);
                }
            }
            for v in volumes {
                push(&v["configMap"]["name"]);
                for src in v["projected"]["sources"].as_array().into_iter().flatten() {
                    push(&src["configMap"]["name"]);
                }
            }
        }
        RefKind::PersistentVolumeClaim => {
            let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
            for v in volumes {
                push(&v["persistentVolumeClaim"]["claimName"]);
                if v.get("ephemeral").is_some() {
                    let name = v["name"].as_str().unwrap_or("");
                    push(&Value::String(format!("{pod_name}-{name}")));
                }
            }
        }
        RefKind::ServiceAccount => {
            push(&spec["serviceAccountName"]);
        }
    }
    out
}

/// An authorization rule: verbs on `group` `resources` (`resource` or `resource/sub`).
struct Rule {
    verbs: &'static [&'static str],
    groups: &'static [&'static str],
    resources: &'static [&'static str],
}

const fn rule(
    verbs: &'static [&'static str],
    groups: &'static [&'static str],
    resources: &'static [&'static str],
) -> Rule {
    Rule {
        verbs,
        groups,
        resources,
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const SPO: &str = "security-profiles-operator.x-k8s.io";

/// The node's static rules: bootstrappolicy `NodeRules` (the resources the authorizer
/// subdivides are handled before these are consulted), then armorlet's additions.
const NODE_RULES: &[Rule] = &[
    rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
    rule(
        &["create"],
        &["authorization.k8s.io"],
        &["subjectaccessreviews", "localsubjectaccessreviews"],
    ),
    rule(READ, &[""], &["services"]),
    rule(&["create", "get", "list", "watch"], &[""], &["nodes"]),
    rule(&["update", "patch"], &[""], &["nodes/status"]),
    rule(&["update", "patch"], &[""], &["nodes"]),
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    ),
    rule(READ, &[""], &["pods"]),
    rule(&["create", "delete"], &[""], &["pods"]),
    rule(&["update", "patch"], &[""], &["pods/status"]),
    rule(&["create"], &[""], &["pods/eviction"]),
    rule(&["get"], &[""], &["endpoints"]),
    rule(
        &["create", "get", "list", "watch"],
        &["certificates.k8s.io"],
        &["certificatesigningrequests"],
    ),
    rule(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
    rule(READ, &["storage.k8s.io"], &["csidrivers"]),
    rule(
        &["get", "create", "update", "patch", "delete"],
        &["storage.k8s.io"],
        &["csinodes"],
    ),
    rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
    // armorlet: the agent is also the node's kube-proxy (system:node-proxier).
    rule(READ, &[""], &["endpoints"]),
    rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
    // armorlet: namespaces and CustomResourceDefinitions are readable.
    rule(READ, &[""], &["namespaces"]),
    rule(
        READ,
        &["apiextensions.k8s.io"],
        &["customresourcedefinitions"],
    ),
    // armorlet: the Security Profiles Operator's node daemon (crates/node/src/operator.rs),
    // limited further by `admit`.
    rule(
        READ,
        &[SPO],
        &[
            "seccompprofiles",
            "apparmorprofiles",
            "profilerecordings",
            "profilebindings",
            "securityprofilenodestatuses",
        ],
    ),
    rule(
        &["create", "update", "patch", "delete"],
        &[SPO],
        &["securityprofilenodestatuses"],
    ),
    rule(
        &["create", "update", "patch"],
        &[SPO],
        &["seccompprofiles", "apparmorprofiles"],
    ),
];

/// The non-resource paths every authenticated user may `get` (the `system:discovery` and
/// `system:public-info-viewer` roles).
fn discovery_path(path: &str) -> bool {
    let exact = [
        "/livez",
        "/readyz",
        "/healthz",
        "/version",
        "/version/",
        "/openapi",
        "/api",
        "/apis",
    ];
    exact.contains(&path)
        || [
            "/livez/",
            "/readyz/",
            "/healthz/",
            "/openapi/",
            "/api/",
            "/apis/",
        ]
        .iter()
        .any(|p| path.starts_with(p))
}

fn rules_allow(info: &RequestInfo) -> bool {
    let resource = info.resource_and_subresource();
    NODE_RULES.iter().any(|r| {
        r.verbs.contains(&info.verb.as_str())
            && r.groups.contains(&info.api_group.as_str())
            && r.resources.contains(&resource.as_str())
    })
}

/// An authorizer's answer: allowed, or not with a reason (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// No rule allows it; the reason, if the authorizer gives one.
    Deny(String),
}

fn deny(reason: impl Into<String>) -> Decision {
    Decision::Deny(reason.into())
}

/// The Node authorizer's decision for node `node` (`with_selectors`: the
/// `AuthorizeNodeWithSelectors` behaviour of the emulated release).
pub fn node_decision(
    node: &str,
    info: &RequestInfo,
    with_selectors: bool,
    graph: &dyn Graph,
) -> Decision {
    if node.is_empty() {
        return deny("unknown node for user");
    }
    if !info.is_resource_request {
        return if info.verb == "get" && discovery_path(&info.path) {
            Decision::Allow
        } else {
            deny("")
        };
    }
    // node_authorizer.go `authorize`: a path in the graph from the object to the node, here
    // a pod bound to the node that refers to the object.
    let related = |kind: RefKind| -> Decision {
        if info.name.is_empty() {
            return deny("No Object name found");
        }
        let pods = graph.pods_on_node(&info.namespace, node);
        if pods
            .iter()
            .any(|p| pod_references(p, kind).contains(&info.name))
        {
            Decision::Allow
        } else {
            deny(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
    };
    match (info.api_group.as_str(), info.resource.as_str()) {
        ("", "secrets") | ("", "configmaps") => {
            if !READ.contains(&info.verb.as_str()) {
                return deny("can only read resources of this type");
            }
            if !info.subresource.is_empty() {
                return deny("cannot read subresource");
            }
            if info.namespace.is_empty() {
                return deny("can only read namespaced object of this type");
            }
            let kind = if info.resource == "secrets" {
                RefKind::Secret
            } else {
                RefKind::ConfigMap
            };
            related(kind)
        }
        ("", "persistentvolumeclaims") => {
            if info.subresource == "status" {
                if !matches!(info.verb.as_str(), "update" | "patch") {
                    return deny("can only get/update/patch this type");
                }
            } else {
                if info.verb != "get" {
                    return deny("can only get individual resources of this type");
                }
                if !info.subresource.is_empty() {
                    return deny("cannot get subresource");
                }
            }
            related(RefKind::PersistentVolumeClaim)
        }
        ("", "persistentvolumes") => {
            if info.verb != "get" {
                return deny("can only get individual resources of this type");
            }
            deny(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
        ("", "serviceaccounts") => {
            if info.verb != "create" || info.name.is_empty() {
                return deny("can only create tokens for individual service accounts");
            }
            if info.subresource != "token" {
                return deny("can only create token subresource of serviceaccount");
            }
            related(RefKind::ServiceAccount)
        }
        ("coordination.k8s.io", "leases") => {
            if !["get", "create", "update", "patch", "delete"].contains(&info.verb.as_str()) {
                return deny("can only get, create, update, patch, or delete a node lease");
            }
            if info.namespace != "kube-node-lease" {
                return deny("can only access leases in the \"kube-node-lease\" system namespace");
            }
            if info.verb != "create" && info.name != node {
                return deny(
                    "can only access node lease with the same name as the requesting node",
                );
            }
            Decision::Allow
        }
        ("", "nodes") if with_selectors => node_object(node, info),
        ("", "pods") if with_selectors => pod_object(node, info, graph),
        _ if rules_allow(info) => Decision::Allow,
        _ => deny(""),
    }
}

/// node_authorizer.go `authorizeNode`.
fn node_object(node: &str, info: &RequestInfo) -> Decision {
    match (info.subresource.as_str(), info.verb.as_str()) {
        ("", "create" | "update" | "patch") => Decision::Allow,
        ("", "get" | "list" | "watch") => match info.name.as_str() {
            n if n == node => Decision::Allow,
            "" => deny(format!(
                "node '{node}' cannot read all nodes, only its own Node object"
            )),
            other => deny(format!(
                "node '{node}' cannot read '{other}', only its own Node object"
            )),
        },
        ("status", "update" | "patch") => Decision::Allow,
        _ => deny(""),
    }
}

/// node_authorizer.go `authorizePod`.
fn pod_object(node: &str, info: &RequestInfo, graph: &dyn Graph) -> Decision {
    let bound = |name: &str| {
        if graph.pod_node(&info.namespace, name).as_deref() == Some(node) {
            Decision::Allow
        } else {
            deny(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
    };
    match (info.subresource.as_str(), info.verb.as_str()) {
        ("", "get") => {
            if info.name.is_empty() {
                deny("No Object name found")
            } else {
                bound(&info.name)
            }
        }
        ("", "list" | "watch") => {
            if info.field_requires("spec.nodeName").as_deref() == Some(node) {
                Decision::Allow
            } else if !info.name.is_empty() {
                bound(&info.name)
            } else {
                deny("can only list/watch pods with spec.nodeName field selector")
            }
        }
        ("", "create" | "delete") => Decision::Allow,
        ("status", "update" | "patch") => Decision::Allow,
        ("eviction", "create") => Decision::Allow,
        _ => deny(""),
    }
}

/// responsewriters.go `forbiddenMessage` with the authorizer's reason.
fn forbidden(user: &User, info: &RequestInfo, reason: &str) -> ApiError {
    let mut msg = if !info.is_resource_request {
        format!(
            "User {:?} cannot {} path {:?}",
            user.name, info.verb, info.path
        )
    } else if info.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.name,
            info.verb,
            info.resource_and_subresource(),
            info.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.name,
            info.verb,
            info.resource_and_subresource(),
            info.api_group,
            info.namespace
        )
    };
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    let qualified = if info.is_resource_request {
        info.qualified_resource()
    } else {
        String::new()
    };
    ApiError::forbidden(&qualified, &info.name, &msg)
}

/// Authorizes a request of `user`: `Ok(reason)` when allowed, else the 403 (kube-apiserver's
/// authorizers: privileged group, Node; RBAC grants armorlet's users nothing more).
pub fn authorize(
    user: &User,
    info: &RequestInfo,
    with_selectors: bool,
    graph: &dyn Graph,
) -> Result<(), (ApiError, String)> {
    if user.is_master() {
        return Ok(());
    }
    let decision = match user.node_name() {
        Some(node) => node_decision(node, info, with_selectors, graph),
        None => deny(""),
    };
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny(reason) => Err((forbidden(user, info, &reason), reason)),
    }
}

/// The write being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// POST (or server-side apply creating the object).
    Create,
    /// PUT or PATCH.
    Update,
    /// DELETE.
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// The object a write is about, as the handler resolved it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// API group.
    pub group: &'a str,
    /// Resource (plural).
    pub resource: &'a str,
    /// Subresource (`""` for none).
    pub subresource: &'a str,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: &'a str,
    /// The name from the URL (`""` on create).
    pub name: &'a str,
}

fn meta<'a>(obj: Option<&'a Value>, field: &str) -> &'a Value {
    obj.and_then(|o| o.get("metadata"))
        .and_then(|m| m.get(field))
        .unwrap_or(&Value::Null)
}

fn label<'a>(obj: Option<&'a Value>, key: &str) -> Option<&'a str> {
    meta(obj, "labels").get(key).and_then(Value::as_str)
}

/// The label SPO's recordings put on the profiles they produce.
pub const RECORDING_LABEL: &str = "spo.x-k8s.io/recording-id";

/// NodeRestriction for a write by node `node` (`old`: the stored object, on update and
/// delete; `new`: the object to store, on create and update). The error is admission's 403
/// (admission/errors.go `NewForbidden`: named after the URL's object, else the new one's).
pub fn admit(
    node: &str,
    op: Operation,
    t: Target<'_>,
    old: Option<&Value>,
    new: Option<&Value>,
    graph: &dyn Graph,
) -> Result<(), ApiError> {
    let name = if t.name.is_empty() {
        meta(new, "name").as_str().unwrap_or("")
    } else {
        t.name
    };
    let qualified = if t.group.is_empty() {
        t.resource.to_owned()
    } else {
        format!("{}.{}", t.resource, t.group)
    };
    let refuse =
        |why: String| -> Result<(), ApiError> { Err(ApiError::forbidden(&qualified, name, &why)) };
    if node.is_empty() {
        return refuse("could not determine node from user".into());
    }
    let spec_node = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/spec/nodeName"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match (t.group, t.resource) {
        ("", "pods") => match (t.subresource, op) {
            ("", Operation::Create) => admit_mirror_pod(node, new, graph, &refuse),
            ("", Operation::Delete) => {
                if spec_node(old) != node {
                    return refuse(format!(
                        "node {node:?} can only delete pods with spec.nodeName set to itself"
                    ));
                }
                Ok(())
            }
            ("", op) => refuse(format!(
                "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
                op.as_str()
            )),
            ("status", Operation::Update) => {
                if spec_node(old) != node {
                    return refuse(format!(
                        "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
                    ));
                }
                if meta(old, "labels") != meta(new, "labels") {
                    return refuse(format!(
                        "node {node:?} cannot update labels through pod status"
                    ));
                }
                Ok(())
            }
            ("status", op) => refuse(format!("unexpected operation {:?}", op.as_str())),
            (sub, _) => refuse(format!(
                "unexpected pod subresource {sub:?}, only 'status' and 'eviction' are allowed"
            )),
        },
        ("", "nodes") => {
            if name != node {
                return refuse(format!(
                    "node {node:?} is not allowed to modify node {name:?}"
                ));
            }
            if op == Operation::Update {
                let taints = |o: Option<&Value>| {
                    o.and_then(|o| o.pointer("/spec/taints"))
                        .cloned()
                        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                };
                if taints(old) != taints(new) {
                    return refuse(format!("node {node:?} is not allowed to modify taints"));
                }
            }
            Ok(())
        }
        ("coordination.k8s.io", "leases") => {
            if t.namespace != "kube-node-lease" {
                return refuse(
                    "can only access leases in the \"kube-node-lease\" system namespace".into(),
                );
            }
            if name != node {
                return refuse(
                    "can only access node lease with the same name as the requesting node".into(),
                );
            }
            Ok(())
        }
        (SPO, "securityprofilenodestatuses") => {
            let own = |o: Option<&Value>| {
                o.and_then(|o| o.get("nodeName")).and_then(Value::as_str) == Some(node)
                    && label(o, "spo.x-k8s.io/node-name") == Some(node)
            };
            let ok = match op {
                Operation::Create => own(new),
                Operation::Update => own(old) && own(new),
                Operation::Delete => own(old),
            };
            if ok {
                Ok(())
            } else {
                refuse(format!(
                    "node {node:?} can only modify securityprofilenodestatuses with nodeName set to itself"
                ))
            }
        }
        (SPO, "seccompprofiles" | "apparmorprofiles") => {
            let recorded = |o: Option<&Value>| label(o, RECORDING_LABEL).is_some();
            let ok = match op {
                Operation::Create => recorded(new),
                Operation::Update => recorded(old) && recorded(new),
                Operation::Delete => false,
            };
            if ok {
                Ok(())
            } else {
                refuse(format!(
                    "node {node:?} can only create or update profiles of a recording (labelled {RECORDING_LABEL})"
                ))
            }
        }
        _ => Ok(()),
    }
}

/// noderestriction `admitPodCreate`: only mirror pods bound to the node, owned by it, and
/// referring to no other object.
fn admit_mirror_pod(
    node: &str,
    new: Option<&Value>,
    graph: &dyn Graph,
    refuse: &dyn Fn(String) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let pod = new.unwrap_or(&Value::Null);
    if meta(new, "annotations")
        .get("kubernetes.io/config.mirror")
        .is_none()
    {
        return refuse(format!(
            "pod does not have \"kubernetes.io/config.mirror\" annotation, node {node:?} can only create mirror pods"
        ));
    }
    if pod.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node) {
        return refuse(format!(
            "node {node:?} can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = meta(new, "ownerReferences")
        .as_array()
        .cloned()
        .unwrap_or_default();
    if owners.len() > 1 {
        return refuse(format!(
            "node {node:?} can only create pods with a single owner reference set to itself"
        ));
    }
    let Some(owner) = owners.first() else {
        return refuse(format!(
            "node {node:?} can only create pods with an owner reference set to itself"
        ));
    };
    if owner["apiVersion"] != "v1" || owner["kind"] != "Node" || owner["name"] != node {
        return refuse(format!(
            "node {node:?} can only create pods with an owner reference set to itself"
        ));
    }
    if owner["controller"] != true {
        return refuse(format!(
            "node {node:?} can only create pods with a controller owner reference set to itself"
        ));
    }
    if owner["blockOwnerDeletion"] == true {
        return refuse(format!(
            "node {node:?} must not set blockOwnerDeletion on an owner reference"
        ));
    }
    let Some(uid) = graph.node_uid(node) else {
        return Err(ApiError::not_found("nodes", node));
    };
    let owner_uid = owner["uid"].as_str().unwrap_or("");
    if owner_uid != uid {
        return refuse(format!(
            "node {node} UID mismatch: expected {owner_uid} got {uid}"
        ));
    }
    if pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return refuse(format!(
            "node {node:?} can not create pods that reference a service account"
        ));
    }
    if !pod_references(pod, RefKind::Secret).is_empty() {
        return refuse(format!(
            "node {node:?} can not create pods that reference secrets"
        ));
    }
    if !pod_references(pod, RefKind::ConfigMap).is_empty() {
        return refuse(format!(
            "node {node:?} can not create pods that reference configmaps"
        ));
    }
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if volumes.iter().any(|v| {
        v["projected"]["sources"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s.get("clusterTrustBundle").is_some()))
    }) {
        return refuse(format!(
            "node {node:?} can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes
        .iter()
        .any(|v| v.get("persistentVolumeClaim").is_some())
    {
        return refuse(format!(
            "node {node:?} can not create pods that reference persistentvolumeclaims"
        ));
    }
    Ok(())
}

/// The graph over the store: pods are read when a node's request needs them.
impl Graph for crate::handlers::State {
    fn pod_node(&self, ns: &str, name: &str) -> Option<String> {
        let pod = self
            .store
            .get(&crate::registry::core("pods").gvr(), ns, name)
            .ok()?;
        Some(
            pod.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    }

    fn pods_on_node(&self, ns: &str, node: &str) -> Vec<Value> {
        let fields = armorlet_store::FieldSelector {
            requirements: vec![armorlet_store::selector::FieldRequirement {
                field: "spec.nodeName".into(),
                value: node.into(),
                negated: false,
            }],
        };
        self.store
            .list(
                &crate::registry::core("pods").gvr(),
                Some(ns),
                &armorlet_store::ListOptions {
                    fields,
                    ..Default::default()
                },
            )
            .map(|l| l.items)
            .unwrap_or_default()
    }

    fn node_uid(&self, node: &str) -> Option<String> {
        let n = self
            .store
            .get(&crate::registry::core("nodes").gvr(), "", node)
            .ok()?;
        n.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Pods: `mine` on n1 (secret s1 in a volume, configmap c1 in env, service account sa1),
    /// `theirs` on n2 (secret s2 through envFrom).
    struct Fake(Vec<Value>);

    fn fake() -> Fake {
        Fake(vec![
            json!({"metadata": {"name": "mine", "namespace": "default"},
                   "spec": {"nodeName": "n1", "serviceAccountName": "sa1",
                            "volumes": [{"name": "v", "secret": {"secretName": "s1"}},
                                        {"name": "t", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}}],
                            "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c1", "key": "k"}}}]}]}}),
            json!({"metadata": {"name": "theirs", "namespace": "default"},
                   "spec": {"nodeName": "n2",
                            "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s2"}}]}]}}),
        ])
    }

    impl Graph for Fake {
        fn pod_node(&self, ns: &str, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|p| p["metadata"]["namespace"] == ns && p["metadata"]["name"] == name)
                .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_owned())
        }
        fn pods_on_node(&self, ns: &str, node: &str) -> Vec<Value> {
            self.0
                .iter()
                .filter(|p| p["metadata"]["namespace"] == ns && p["spec"]["nodeName"] == node)
                .cloned()
                .collect()
        }
        fn node_uid(&self, node: &str) -> Option<String> {
            Some(format!("uid-{node}"))
        }
    }

    fn req(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
        RequestInfo::new(method, path, query)
    }

    fn check(user: &User, method: &str, path: &str, query: Option<&str>) -> Result<(), String> {
        authorize(user, &req(method, path, query), true, &fake()).map_err(|(e, _)| e.message)
    }

    #[test]
    fn secrets_and_configmaps_only_through_a_pod_on_the_node() {
        let n1 = User::node("n1");
        assert_eq!(
            check(&n1, "GET", "/api/v1/namespaces/default/secrets/s1", None),
            Ok(())
        );
        assert_eq!(
            check(&n1, "GET", "/api/v1/namespaces/default/secrets/s2", None),
            Err("secrets \"s2\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object".into())
        );
        assert!(check(
            &User::node("n2"),
            "GET",
            "/api/v1/namespaces/default/secrets/s2",
            None
        )
        .is_ok());
        // A list naming the object through metadata.name is a read of that object.
        assert!(check(
            &n1,
            "GET",
            "/api/v1/namespaces/default/secrets",
            Some("fieldSelector=metadata.name%3Ds1&watch=1")
        )
        .is_ok());
        assert_eq!(
            check(&n1, "GET", "/api/v1/namespaces/default/secrets", None),
            Err("secrets is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": No Object name found".into())
        );
        assert!(check(&n1, "GET", "/api/v1/secrets", None)
            .unwrap_err()
            .ends_with("at the cluster scope: can only read namespaced object of this type"));
        assert!(
            check(&n1, "PUT", "/api/v1/namespaces/default/secrets/s1", None)
                .unwrap_err()
                .ends_with(": can only read resources of this type")
        );
        assert!(check(&n1, "GET", "/api/v1/namespaces/default/configmaps/c1", None).is_ok());
        assert!(check(
            &n1,
            "GET",
            "/api/v1/namespaces/default/configmaps/kube-root-ca.crt",
            None
        )
        .is_ok());
        assert!(check(&n1, "GET", "/api/v1/namespaces/other/configmaps/c1", None).is_err());
        // ServiceAccount tokens: only create, only for a pod's account.
        assert!(check(
            &n1,
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/sa1/token",
            None
        )
        .is_ok());
        assert!(check(
            &n1,
            "GET",
            "/api/v1/namespaces/default/serviceaccounts/sa1",
            None
        )
        .unwrap_err()
        .ends_with(": can only create tokens for individual service accounts"));
        // The admin reads everything.
        assert!(check(
            &User::admin(),
            "GET",
            "/api/v1/namespaces/default/secrets/s2",
            None
        )
        .is_ok());
    }

    #[test]
    fn nodes_and_pods_are_read_through_selectors_from_1_32() {
        let n1 = User::node("n1");
        let g = fake();
        let at = |sel: bool, method: &str, path: &str, q: Option<&str>| {
            authorize(&n1, &req(method, path, q), sel, &g).map_err(|(e, _)| e.message)
        };
        assert!(at(true, "GET", "/api/v1/nodes/n1", None).is_ok());
        assert_eq!(
            at(true, "GET", "/api/v1/nodes/n2", None),
            Err("nodes \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'n1' cannot read 'n2', only its own Node object".into())
        );
        assert!(at(true, "GET", "/api/v1/nodes", None)
            .unwrap_err()
            .ends_with("node 'n1' cannot read all nodes, only its own Node object"));
        assert!(at(false, "GET", "/api/v1/nodes", None).is_ok());
        assert!(at(
            true,
            "GET",
            "/api/v1/pods",
            Some("fieldSelector=spec.nodeName%3Dn1&watch=true")
        )
        .is_ok());
        assert!(at(
            true,
            "GET",
            "/api/v1/pods",
            Some("fieldSelector=spec.nodeName%3Dn2")
        )
        .unwrap_err()
        .ends_with("can only list/watch pods with spec.nodeName field selector"));
        assert!(at(false, "GET", "/api/v1/pods", None).is_ok());
        assert!(at(true, "GET", "/api/v1/namespaces/default/pods/mine", None).is_ok());
        assert!(at(true, "GET", "/api/v1/namespaces/default/pods/theirs", None).is_err());
        // Writes are decided by admission.
        assert!(at(true, "PATCH", "/api/v1/nodes/n2", None).is_ok());
        assert!(at(
            true,
            "PATCH",
            "/api/v1/namespaces/default/pods/theirs/status",
            None
        )
        .is_ok());
        assert!(at(true, "DELETE", "/api/v1/nodes/n1", None).is_err());
        assert!(at(true, "PATCH", "/api/v1/namespaces/default/pods/mine", None).is_err());
        assert!(at(
            true,
            "POST",
            "/api/v1/namespaces/default/pods/mine/exec",
            None
        )
        .is_err());
        // attach and port-forward are exec's peers: no node may use them, even on its own pods.
        for sub in ["attach", "portforward"] {
            for method in ["GET", "POST"] {
                assert!(at(
                    true,
                    method,
                    &format!("/api/v1/namespaces/default/pods/mine/{sub}"),
                    None
                )
                .is_err());
            }
        }
    }

    #[test]
    fn leases_events_and_the_agents_other_reads() {
        let n1 = User::node("n1");
        let lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
        assert!(check(&n1, "PATCH", &format!("{lease}/n1"), None).is_ok());
        assert!(check(&n1, "POST", lease, None).is_ok());
        assert_eq!(
            check(&n1, "PUT", &format!("{lease}/n2"), None),
            Err("leases.coordination.k8s.io \"n2\" is forbidden: User \"system:node:n1\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": can only access node lease with the same name as the requesting node".into())
        );
        assert!(check(
            &n1,
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/n1",
            None
        )
        .is_err());
        for ok in [
            ("POST", "/api/v1/namespaces/default/events"),
            ("PATCH", "/api/v1/namespaces/default/events/e"),
            ("GET", "/api/v1/services"),
            ("GET", "/api/v1/endpoints"),
            ("GET", "/apis/discovery.k8s.io/v1/endpointslices"),
            ("GET", "/api/v1/namespaces"),
            ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
            ("GET", "/apis/security-profiles-operator.x-k8s.io/v1beta1/seccompprofiles"),
            ("POST", "/apis/security-profiles-operator.x-k8s.io/v1alpha1/namespaces/x/securityprofilenodestatuses"),
            ("DELETE", "/apis/security-profiles-operator.x-k8s.io/v1alpha1/namespaces/x/securityprofilenodestatuses/p-n1"),
            ("PUT", "/apis/security-profiles-operator.x-k8s.io/v1alpha1/apparmorprofiles/r-c"),
            ("GET", "/version"),
            ("GET", "/apis"),
            ("GET", "/openapi/v3/api/v1"),
        ] {
            assert!(check(&n1, ok.0, ok.1, None).is_ok(), "{ok:?}");
        }
        for no in [
            ("POST", "/api/v1/namespaces/default/services"),
            ("DELETE", "/api/v1/namespaces/default/events/e"),
            ("POST", "/api/v1/namespaces"),
            (
                "DELETE",
                "/apis/security-profiles-operator.x-k8s.io/v1beta1/namespaces/x/seccompprofiles/p",
            ),
            ("GET", "/apis/apps/v1/daemonsets"),
            ("POST", "/api/v1/namespaces/default/pods/mine/binding"),
            ("DELETE", "/api/v1/namespaces/default/pods"),
        ] {
            assert!(check(&n1, no.0, no.1, None).is_err(), "{no:?}");
        }
        assert_eq!(
            check(&n1, "POST", "/version", None),
            Err("forbidden: User \"system:node:n1\" cannot post path \"/version\"".into())
        );
    }

    fn t<'a>(
        group: &'a str,
        resource: &'a str,
        sub: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> Target<'a> {
        Target {
            group,
            resource,
            subresource: sub,
            namespace: ns,
            name,
        }
    }

    #[test]
    fn node_restriction_admission() {
        let g = fake();
        let admit = |op, target, old: Option<Value>, new: Option<Value>| {
            super::admit("n1", op, target, old.as_ref(), new.as_ref(), &g).map_err(|e| e.message)
        };
        use Operation::*;
        assert_eq!(
            admit(Update, t("", "nodes", "", "", "n2"), None, None),
            Err(
                "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
                    .into()
            )
        );
        assert_eq!(
            admit(
                Create,
                t("", "nodes", "", "", ""),
                None,
                Some(json!({"metadata": {"name": "n2"}}))
            ),
            Err(
                "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
                    .into()
            )
        );
        assert!(admit(
            Update,
            t("", "nodes", "status", "", "n1"),
            Some(json!({})),
            Some(json!({}))
        )
        .is_ok());
        let tainted = json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
        assert_eq!(
            admit(
                Update,
                t("", "nodes", "", "", "n1"),
                Some(tainted),
                Some(json!({"spec": {}}))
            ),
            Err("nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints".into())
        );
        let on =
            |node: &str| json!({"metadata": {"labels": {"a": "b"}}, "spec": {"nodeName": node}});
        assert!(admit(
            Update,
            t("", "pods", "status", "default", "mine"),
            Some(on("n1")),
            Some(on("n1"))
        )
        .is_ok());
        assert_eq!(
            admit(Update, t("", "pods", "status", "default", "theirs"), Some(on("n2")), Some(on("n2"))),
            Err("pods \"theirs\" is forbidden: node \"n1\" can only update pod status for pods with spec.nodeName set to itself".into())
        );
        assert!(admit(
            Delete,
            t("", "pods", "", "default", "mine"),
            Some(on("n1")),
            None
        )
        .is_ok());
        assert_eq!(
            admit(Delete, t("", "pods", "", "default", "theirs"), Some(on("n2")), None),
            Err("pods \"theirs\" is forbidden: node \"n1\" can only delete pods with spec.nodeName set to itself".into())
        );
        assert!(admit(
            Create,
            t("", "pods", "", "default", ""),
            None,
            Some(on("n1"))
        )
        .unwrap_err()
        .ends_with("node \"n1\" can only create mirror pods"));
        let mirror = json!({"metadata": {"name": "m", "annotations": {"kubernetes.io/config.mirror": "x"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-n1", "controller": true}]},
            "spec": {"nodeName": "n1"}});
        assert!(admit(Create, t("", "pods", "", "default", ""), None, Some(mirror)).is_ok());
        let lease = |name: &str| Some(json!({"metadata": {"name": name}}));
        assert!(admit(
            Create,
            t("coordination.k8s.io", "leases", "", "kube-node-lease", ""),
            None,
            lease("n1")
        )
        .is_ok());
        assert_eq!(
            admit(Create, t("coordination.k8s.io", "leases", "", "kube-node-lease", ""), None, lease("n2")),
            Err("leases.coordination.k8s.io \"n2\" is forbidden: can only access node lease with the same name as the requesting node".into())
        );
        let spns = |node: &str| {
            Some(
                json!({"metadata": {"name": "p", "labels": {"spo.x-k8s.io/node-name": node}}, "nodeName": node}),
            )
        };
        let spo = |res| t(SPO, res, "", "default", "p");
        assert!(admit(Create, spo("securityprofilenodestatuses"), None, spns("n1")).is_ok());
        assert!(admit(
            Update,
            spo("securityprofilenodestatuses"),
            spns("n1"),
            spns("n1")
        )
        .is_ok());
        assert!(admit(Create, spo("securityprofilenodestatuses"), None, spns("n2")).is_err());
        assert!(admit(
            Update,
            spo("securityprofilenodestatuses"),
            spns("n2"),
            spns("n1")
        )
        .is_err());
        assert!(admit(Delete, spo("securityprofilenodestatuses"), spns("n2"), None).is_err());
        let profile = |recorded: bool| {
            let labels = if recorded {
                json!({RECORDING_LABEL: "rec"})
            } else {
                json!({})
            };
            Some(json!({"metadata": {"name": "p", "labels": labels}}))
        };
        assert!(admit(Create, spo("seccompprofiles"), None, profile(true)).is_ok());
        assert!(admit(Update, spo("seccompprofiles"), profile(true), profile(true)).is_ok());
        assert!(admit(Create, spo("seccompprofiles"), None, profile(false)).is_err());
        assert!(admit(
            Update,
            spo("apparmorprofiles"),
            profile(false),
            profile(true)
        )
        .is_err());
        // Other writes are the authorizer's business.
        assert!(admit(
            Create,
            t("", "events", "", "default", ""),
            None,
            Some(json!({}))
        )
        .is_ok());
    }

    #[test]
    fn pod_references_follow_the_visitors() {
        let pod = json!({"spec": {
            "imagePullSecrets": [{"name": "pull"}],
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cm-env"}}]}],
            "containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}]}],
            "volumes": [{"name": "p", "projected": {"sources": [{"secret": {"name": "proj"}}, {"configMap": {"name": "cm-proj"}}]}},
                        {"name": "r", "rbd": {"secretRef": {"name": "ceph"}}},
                        {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}}]}});
        assert_eq!(
            pod_references(&pod, RefKind::Secret),
            ["pull", "env-secret", "proj", "ceph"]
        );
        assert_eq!(
            pod_references(&pod, RefKind::ConfigMap),
            ["cm-env", "cm-proj"]
        );
        assert_eq!(
            pod_references(&pod, RefKind::PersistentVolumeClaim),
            ["data"]
        );
    }
}
