//! `policy/v1beta1` PodSecurityPolicy's schema, written here: k8s-openapi's API versions
//! start after its removal (1.25). It has the fields armorlet's admission plugin enforces
//! (`armorlet_confinement::psp`); the ones it refuses (sysctls, `runtimeClass`,
//! `allowedFlexVolumes`, `allowedCSIDrivers`) are left out, so `kubectl explain` does not
//! offer them. Names and required fields are kube-apiserver 1.24's (k8s.io/api
//! policy/v1beta1 types.go); the descriptions are armorlet's own.

use k8s_openapi::api::core;
use k8s_openapi::apimachinery::pkg::apis::meta;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

const P: &str = "io.k8s.api.policy.v1beta1.";

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A field holding the named schema, with its own description.
fn field(name: &str, description: &str) -> Value {
    json!({"allOf": [r(name)], "default": {}, "description": description})
}

fn string(description: &str) -> Value {
    json!({"type": "string", "default": "", "description": description})
}

fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

fn strings(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string", "default": ""}, "description": description})
}

fn list_of(name: &str, description: &str) -> Value {
    json!({"type": "array", "items": {"allOf": [r(name)], "default": {}}, "description": description})
}

/// One of the `*StrategyOptions` objects: a rule and, for most, ID ranges.
fn strategy(description: &str, rules: &str, ranges: Option<&str>) -> Value {
    let mut props = Map::new();
    props.insert(
        "rule".into(),
        string(&format!(
            "rule is the strategy that decides the value: {rules}."
        )),
    );
    if let Some(what) = ranges {
        props.insert(
            "ranges".into(),
            list_of(
                &format!("{P}IDRange"),
                &format!("ranges are the allowed {what}; with MustRunAs the first range's minimum is the default."),
            ),
        );
    }
    json!({"description": description, "type": "object", "properties": props})
}

/// The schemas of the `policy/v1beta1` document: PodSecurityPolicy and what it refers to.
pub fn schemas() -> Map<String, Value> {
    let mut gen = SchemaSettings::openapi3().into_generator();
    gen.subschema_for::<meta::v1::ObjectMeta>();
    gen.subschema_for::<core::v1::SELinuxOptions>();
    let mut out = gen.take_definitions(true);
    let mut add = |name: &str, v: Value| {
        out.insert(format!("{P}{name}"), v);
    };
    let mut psp = json!({
        "description": "PodSecurityPolicy is a cluster-wide policy that the PodSecurityPolicy admission plugin checks pods against: a pod is admitted if some policy it may use allows its security settings, and gets that policy's defaults. Removed from Kubernetes in 1.25.",
        "type": "object",
        "properties": {
            "apiVersion": string("apiVersion is the versioned schema of this object: policy/v1beta1."),
            "kind": string("kind is the REST resource this object represents: PodSecurityPolicy."),
            "metadata": field("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "Standard object metadata. Annotations select AppArmor and seccomp profiles (apparmor.security.beta.kubernetes.io/defaultProfileName and allowedProfileNames, seccomp.security.alpha.kubernetes.io/defaultProfileName and allowedProfileNames)."),
            "spec": field(&format!("{P}PodSecurityPolicySpec"), "spec is what the policy allows and the defaults it sets."),
        },
    });
    super::builtin::set_gvk(&mut psp, "policy", "v1beta1", "PodSecurityPolicy");
    add("PodSecurityPolicy", psp);
    add(
        "PodSecurityPolicySpec",
        json!({
            "description": "PodSecurityPolicySpec lists the security settings a policy allows and the defaults it applies.",
            "type": "object",
            "required": ["seLinux", "runAsUser", "supplementalGroups", "fsGroup"],
            "properties": {
                "privileged": boolean("privileged allows containers to run privileged."),
                "defaultAddCapabilities": strings("defaultAddCapabilities are added to every container's capabilities unless the container drops them; they must not also be required drops."),
                "requiredDropCapabilities": strings("requiredDropCapabilities are dropped from every container; a container may not add them."),
                "allowedCapabilities": strings("allowedCapabilities may be added by containers beyond the defaults; \"*\" allows any."),
                "volumes": strings("volumes are the volume types pods may use (configMap, secret, hostPath, ...); \"*\" allows all."),
                "hostNetwork": boolean("hostNetwork allows pods to use the node's network namespace."),
                "hostPorts": list_of(&format!("{P}HostPortRange"), "hostPorts are the host ports containers may expose."),
                "hostPID": boolean("hostPID allows pods to share the node's process ID namespace."),
                "hostIPC": boolean("hostIPC allows pods to share the node's IPC namespace."),
                "seLinux": field(&format!("{P}SELinuxStrategyOptions"), "seLinux decides the SELinux context of containers."),
                "runAsUser": field(&format!("{P}RunAsUserStrategyOptions"), "runAsUser decides the user ID containers run as."),
                "runAsGroup": field(&format!("{P}RunAsGroupStrategyOptions"), "runAsGroup decides the primary group ID containers run as; unset, pods choose freely."),
                "supplementalGroups": field(&format!("{P}SupplementalGroupsStrategyOptions"), "supplementalGroups decides the pod's supplemental group IDs."),
                "fsGroup": field(&format!("{P}FSGroupStrategyOptions"), "fsGroup decides the group that owns the pod's volumes."),
                "readOnlyRootFilesystem": boolean("readOnlyRootFilesystem requires containers to run with a read-only root filesystem (and defaults it to true)."),
                "defaultAllowPrivilegeEscalation": boolean("defaultAllowPrivilegeEscalation is the allowPrivilegeEscalation a container gets when it sets none."),
                "allowPrivilegeEscalation": boolean("allowPrivilegeEscalation lets containers allow privilege escalation; false forbids it. Defaults to true."),
                "allowedHostPaths": list_of(&format!("{P}AllowedHostPath"), "allowedHostPaths are the host path prefixes hostPath volumes may use; empty allows any path."),
                "allowedProcMountTypes": strings("allowedProcMountTypes are the procMount types containers may ask for; empty or unset allows only Default."),
            },
        }),
    );
    add(
        "HostPortRange",
        json!({
            "description": "HostPortRange is an inclusive range of host ports.",
            "type": "object",
            "required": ["min", "max"],
            "properties": {
                "min": {"type": "integer", "format": "int32", "default": 0, "description": "min is the first port of the range."},
                "max": {"type": "integer", "format": "int32", "default": 0, "description": "max is the last port of the range."},
            },
        }),
    );
    add(
        "IDRange",
        json!({
            "description": "IDRange is an inclusive range of user or group IDs.",
            "type": "object",
            "required": ["min", "max"],
            "properties": {
                "min": {"type": "integer", "format": "int64", "default": 0, "description": "min is the first ID of the range."},
                "max": {"type": "integer", "format": "int64", "default": 0, "description": "max is the last ID of the range."},
            },
        }),
    );
    add(
        "AllowedHostPath",
        json!({
            "description": "AllowedHostPath is a host path prefix hostPath volumes may use.",
            "type": "object",
            "properties": {
                "pathPrefix": string("pathPrefix is the allowed prefix, matched by whole path components: /foo allows /foo and /foo/bar, not /food."),
                "readOnly": boolean("readOnly requires volumes under this prefix to be mounted read-only."),
            },
        }),
    );
    let mut selinux = strategy(
        "SELinuxStrategyOptions decides the SELinux context of containers.",
        "MustRunAs (seLinuxOptions is required and applied) or RunAsAny",
        None,
    );
    selinux["required"] = json!(["rule"]);
    selinux["properties"]["seLinuxOptions"] = field(
        "io.k8s.api.core.v1.SELinuxOptions",
        "seLinuxOptions is the context containers must have with MustRunAs.",
    );
    add("SELinuxStrategyOptions", selinux);
    for (name, what, rules, ids) in [
        (
            "RunAsUserStrategyOptions",
            "the user ID containers run as",
            "MustRunAs, MustRunAsNonRoot or RunAsAny",
            "user IDs",
        ),
        (
            "RunAsGroupStrategyOptions",
            "the primary group ID containers run as",
            "MustRunAs, MayRunAs or RunAsAny",
            "group IDs",
        ),
        (
            "SupplementalGroupsStrategyOptions",
            "the pod's supplemental group IDs",
            "MustRunAs, MayRunAs or RunAsAny",
            "group IDs",
        ),
        (
            "FSGroupStrategyOptions",
            "the group that owns the pod's volumes",
            "MustRunAs, MayRunAs or RunAsAny",
            "group IDs",
        ),
    ] {
        let mut s = strategy(&format!("{name} decides {what}."), rules, Some(ids));
        if name.starts_with("Run") {
            s["required"] = json!(["rule"]);
        }
        add(name, s);
    }
    out
}
