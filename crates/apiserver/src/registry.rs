//! The resources this server serves, with what discovery, routing and storage need to know:
//! the built-in ones (a static table) and those CustomResourceDefinitions add at run time
//! ([`Registry`], kept by [`crate::crd`]).

use std::sync::{Arc, LazyLock, RwLock};

use armorlet_confinement::EmulatedVersion;
use armorlet_store::Gvr;

/// One served resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    /// API group; empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural name (the URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `svc`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether the resource has a `status` subresource (the main endpoint then keeps status).
    pub has_status: bool,
    /// Whether `metadata.generation` is maintained.
    pub tracks_generation: bool,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`.
    pub field_labels: Vec<String>,
    /// For a custom resource: its definition's storage version, schema and columns.
    pub custom: Option<Arc<crate::crd::Custom>>,
}

impl ResourceDef {
    /// The storage key space: the served one, except for `events.k8s.io` Events, which share
    /// the core Events' storage (see [`crate::convert`]), and custom resources, stored in their
    /// definition's storage version whatever version serves them.
    pub fn gvr(&self) -> Gvr {
        if self.group == "events.k8s.io" && self.plural == "events" {
            return Gvr::new("", "v1", "events");
        }
        if let Some(c) = &self.custom {
            return Gvr::new(&self.group, &c.storage_version, &self.plural);
        }
        Gvr::new(&self.group, &self.version, &self.plural)
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `daemonsets.apps`, as in error messages.
    pub fn qualified(&self) -> String {
        self.gvr().qualified()
    }

    /// Whether this is `group`'s `plural` (any version).
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs every resource supports.
pub fn verbs() -> &'static [&'static str] {
    &VERBS
}

/// A row of the built-in table.
struct Row {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    has_status: bool,
    tracks_generation: bool,
    field_labels: &'static [&'static str],
}

macro_rules! res {
    ($g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $short:expr, $cat:expr, $status:expr, $gen:expr, $fields:expr) => {
        Row {
            group: $g,
            version: $v,
            plural: $p,
            singular: $s,
            kind: $k,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            has_status: $status,
            tracks_generation: $gen,
            field_labels: $fields,
        }
    };
}

/// Field labels of core events (pkg/registry/core/event/strategy.go `ToSelectableFields`).
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// Field labels of pods (pkg/registry/core/pod/strategy.go `ToSelectableFields`).
const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// Every built-in resource, in discovery order.
static ROWS: &[Row] = &[
    res!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        &[],
        true,
        false,
        &["status.phase"]
    ),
    res!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &["all"],
        true,
        false,
        POD_FIELDS
    ),
    res!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        &[],
        true,
        false,
        &["spec.unschedulable"]
    ),
    res!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        &[],
        false,
        false,
        EVENT_FIELDS
    ),
    res!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        &["all"],
        true,
        false,
        &[]
    ),
    res!(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        &[],
        &[],
        false,
        false,
        &["type"]
    ),
    res!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        &["all"],
        true,
        true,
        &[]
    ),
    res!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &["all"],
        true,
        true,
        &[]
    ),
    res!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &["all"],
        true,
        true,
        &[]
    ),
    res!(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        &[],
        &[],
        false,
        false,
        &[]
    ),
    // Served only where the emulated release has it (up to 1.24): see `served`.
    res!(
        "policy",
        "v1beta1",
        "podsecuritypolicies",
        "podsecuritypolicy",
        "PodSecurityPolicy",
        false,
        &["psp"],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        true,
        true,
        &[]
    ),
    // RBAC objects are stored and served (manifests such as `armorlet manifests` apply
    // unchanged); the server authorizes by its own credentials, not by them.
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        &[],
        false,
        false,
        &[]
    ),
    res!(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        &[],
        false,
        false,
        &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "reportingController",
            "type"
        ]
    ),
];

/// The Security Profiles Operator's API group (its resources are CustomResourceDefinitions
/// the server installs: see [`crate::crd`]).
pub const SPO_GROUP: &str = "security-profiles-operator.x-k8s.io";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The built-in resources.
static BUILTIN: LazyLock<Vec<Arc<ResourceDef>>> = LazyLock::new(|| {
    ROWS.iter()
        .map(|r| {
            Arc::new(ResourceDef {
                group: r.group.into(),
                version: r.version.into(),
                plural: r.plural.into(),
                singular: r.singular.into(),
                kind: r.kind.into(),
                namespaced: r.namespaced,
                short_names: strings(r.short_names),
                categories: strings(r.categories),
                has_status: r.has_status,
                tracks_generation: r.tracks_generation,
                field_labels: strings(r.field_labels),
                custom: None,
            })
        })
        .collect()
});

/// Whether the emulated release serves built-in `def`: `policy/v1beta1` PodSecurityPolicy
/// exists up to 1.24 (KEP-5; removed in 1.25), everything else always.
fn served(def: &ResourceDef, version: EmulatedVersion) -> bool {
    !def.is("policy", "podsecuritypolicies")
        || version.has(armorlet_confinement::Switch::PodSecurityPolicy)
}

/// Looks a built-in resource up by group, version and plural (whether served or not).
pub fn builtin(group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
    BUILTIN
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
        .cloned()
}

/// Looks a core resource up (for namespace lookups and cascades).
pub fn core(plural: &str) -> Arc<ResourceDef> {
    builtin("", "v1", plural).unwrap_or_else(|| BUILTIN[0].clone())
}

/// What one server serves: the built-in resources of its emulated release, and the custom
/// resources of its established CustomResourceDefinitions.
#[derive(Debug)]
pub struct Registry {
    release: EmulatedVersion,
    custom: RwLock<Vec<Arc<ResourceDef>>>,
}

impl Registry {
    /// The built-in resources of `release`, no custom ones yet.
    pub fn new(release: EmulatedVersion) -> Self {
        Self {
            release,
            custom: RwLock::new(Vec::new()),
        }
    }

    /// The emulated release.
    pub fn release(&self) -> EmulatedVersion {
        self.release
    }

    /// Replaces the custom resources (after a CustomResourceDefinition changed).
    pub fn set_custom(&self, defs: Vec<Arc<ResourceDef>>) {
        *self.custom.write().unwrap_or_else(|e| e.into_inner()) = defs;
    }

    /// Every served resource, built-in first, in discovery order.
    pub fn served(&self) -> Vec<Arc<ResourceDef>> {
        let mut out: Vec<Arc<ResourceDef>> = BUILTIN
            .iter()
            .filter(|r| served(r, self.release))
            .cloned()
            .collect();
        out.extend(
            self.custom
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        out
    }

    /// The API groups (other than core) in discovery order, each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.served().iter().filter(|r| !r.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    /// Looks a served resource up by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.served()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Whether a group/version is served.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.served()
            .iter()
            .any(|r| r.group == group && r.version == version)
    }

    /// The served resources of one group/version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.served()
            .into_iter()
            .filter(|r| r.group == group && r.version == version)
            .collect()
    }

    /// Looks a resource up by its storage key (built-in, or a custom resource's storage
    /// version).
    pub fn by_key(&self, key: &str) -> Option<Arc<ResourceDef>> {
        let builtin = BUILTIN.iter().find(|r| r.gvr().key() == key).cloned();
        builtin.or_else(|| {
            self.custom
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|r| r.gvr().key() == key)
                .cloned()
        })
    }
}
