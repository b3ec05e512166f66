//! The resources this server serves, with what discovery, routing and storage need to know.

use armorlet_store::Gvr;

/// One served resource.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group; empty for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural name (the URL segment).
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `svc`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Whether the resource has a `status` subresource (the main endpoint then keeps status).
    pub has_status: bool,
    /// Whether `metadata.generation` is maintained.
    pub tracks_generation: bool,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`.
    pub field_labels: &'static [&'static str],
}

impl ResourceDef {
    /// The storage key space: the served one, except for `events.k8s.io` Events, which share
    /// the core Events' storage (see [`crate::convert`]).
    pub fn gvr(&self) -> Gvr {
        if self.group == "events.k8s.io" && self.plural == "events" {
            return Gvr::new("", "v1", "events");
        }
        Gvr::new(self.group, self.version, self.plural)
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `daemonsets.apps`, as in error messages.
    pub fn qualified(&self) -> String {
        self.gvr().qualified()
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

macro_rules! res {
    ($g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $short:expr, $cat:expr, $status:expr, $gen:expr, $fields:expr) => {
        ResourceDef {
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

/// Every served resource, in discovery order.
pub static RESOURCES: &[ResourceDef] = &[
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
    // The Security Profiles Operator's resources (kubernetes-sigs/security-profiles-operator,
    // api/seccompprofile/v1beta1 and api/secprofnodestatus/v1alpha1), served as if its CRDs
    // were installed: `kubectl apply` of its YAML works unchanged (see `crate::profiles`).
    res!(
        SPO_GROUP,
        "v1beta1",
        "seccompprofiles",
        "seccompprofile",
        "SeccompProfile",
        true,
        &["sp"],
        &["security"],
        true,
        true,
        &[]
    ),
    res!(
        SPO_GROUP,
        "v1alpha1",
        "securityprofilenodestatuses",
        "securityprofilenodestatus",
        "SecurityProfileNodeStatus",
        true,
        &["spns"],
        &[],
        false,
        false,
        &[]
    ),
];

/// The Security Profiles Operator's API group.
pub const SPO_GROUP: &str = "security-profiles-operator.x-k8s.io";

/// Whether the emulated release serves `def`: `policy/v1beta1` PodSecurityPolicy exists up
/// to 1.24 (KEP-5; removed in 1.25), everything else always.
pub fn served(def: &ResourceDef, version: armorlet_confinement::EmulatedVersion) -> bool {
    !(def.group == "policy" && def.plural == "podsecuritypolicies")
        || version.has(armorlet_confinement::Switch::PodSecurityPolicy)
}

/// The resources the emulated release serves.
pub fn served_resources(
    version: armorlet_confinement::EmulatedVersion,
) -> impl Iterator<Item = &'static ResourceDef> {
    RESOURCES.iter().filter(move |r| served(r, version))
}

/// The API groups (other than core) in discovery order, each with its versions.
pub fn groups(
    version: armorlet_confinement::EmulatedVersion,
) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in served_resources(version).filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// Looks a resource up by group, version and plural, among those the release serves.
pub fn find_served(
    group: &str,
    version: &str,
    plural: &str,
    release: armorlet_confinement::EmulatedVersion,
) -> Option<&'static ResourceDef> {
    find(group, version, plural).filter(|d| served(d, release))
}

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Whether a group/version is served.
pub fn has_group_version(
    group: &str,
    version: &str,
    release: armorlet_confinement::EmulatedVersion,
) -> bool {
    served_resources(release).any(|r| r.group == group && r.version == version)
}

/// Looks a core resource up (for namespace lookups and cascades).
pub fn core(plural: &str) -> &'static ResourceDef {
    find("", "v1", plural).unwrap_or(&RESOURCES[0])
}

/// Looks a resource up by its storage key.
pub fn by_key(key: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.gvr().key() == key)
}
