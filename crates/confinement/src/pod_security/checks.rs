//! The checks of the Pod Security Standards' baseline and restricted levels, each with the
//! policy versions it has, and the choice of checks for a level and version.
//!
//! Followed (not copied) from kubernetes/pod-security-admission at v0.32.0 (kube-apiserver
//! 1.32, `staging/src/k8s.io/pod-security-admission/policy/`): `check_*.go` for each check and
//! its messages, `checks.go` (`AggregateCheckResults`), `registry.go` (which checks a level and
//! version run, in which order), `helpers.go` (`joinQuote`, `pluralize`), `visitor.go` (init
//! containers, containers, ephemeral containers). Older releases' differences are rows of
//! [`crate::version::SWITCHES`]:
//! - [`Switch::PodSecurityRestrictedOverrides`] (1.24): restricted checks replace the baseline
//!   checks they supersede; in 1.23 restricted runs every baseline check too.
//! - [`Switch::PodSecuritySELinuxUserRoleAlone`] (1.26): "user/role may not be set" is reported
//!   also when the type is allowed.
//! - [`Switch::PodSecurityAppArmorFieldCheck`] (1.30): the AppArmor check reads the
//!   `appArmorProfile` fields and words its detail as `... must not set AppArmor profile type to ...`.
//!
//! Each check version with minimum version `v1.N` first shipped in kube-apiserver 1.N (checked
//! against the module's tags v0.23.0 to v0.32.0: `runAsUser` 1.23, the Windows exemptions 1.25,
//! the sysctl lists 1.27/1.29/1.32, `container_engine_t` 1.31), so the emulated release is also
//! the newest policy version there is: `latest` and any later `v1.N` evaluate as it
//! (`registry.go` `EvaluatePod` clamps to the newest registered version).
//!
//! The relaxation for user-namespaced pods (`UserNamespacesPodSecurityStandards`, alpha, off by
//! default through 1.32) is not emulated: pods with `hostUsers: false` are checked like others.

use std::collections::BTreeSet;

use super::view::{Container, PodSpecView, SecurityContext};
use super::{Level, LevelVersion, PolicyVersion};
use crate::validate::go_quote;
use crate::version::{EmulatedVersion, Switch};

/// A check's refusal (`CheckResult` with `Allowed: false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// `ForbiddenReason`, e.g. `host namespaces`.
    pub reason: String,
    /// `ForbiddenDetail`, e.g. `hostNetwork=true` (may be empty).
    pub detail: String,
}

type CheckFn = fn(&PodSpecView, EmulatedVersion) -> Option<Forbidden>;

struct VersionedCheck {
    /// `MinimumVersion`: the first `v1.N` policy this version of the check belongs to.
    min: u64,
    check: CheckFn,
    /// `OverrideCheckIDs`: baseline checks this (restricted) check replaces.
    overrides: &'static [&'static str],
}

struct Check {
    id: &'static str,
    level: Level,
    versions: &'static [VersionedCheck],
}

const fn v(min: u64, check: CheckFn) -> VersionedCheck {
    VersionedCheck {
        min,
        check,
        overrides: &[],
    }
}

const fn v_over(min: u64, check: CheckFn, overrides: &'static [&'static str]) -> VersionedCheck {
    VersionedCheck {
        min,
        check,
        overrides,
    }
}

const CAPABILITIES_BASELINE: &str = "capabilities_baseline";
const HOST_PATH_VOLUMES: &str = "hostPathVolumes";
const SECCOMP_BASELINE: &str = "seccompProfile_baseline";

/// Every check of the 1.32 registry (`DefaultChecks`), by ID.
const CHECKS: &[Check] = &[
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            v(8, allow_privilege_escalation_1_8),
            v(25, allow_privilege_escalation_1_25),
        ],
    },
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[v(0, apparmor_profile_1_0)],
    },
    Check {
        id: CAPABILITIES_BASELINE,
        level: Level::Baseline,
        versions: &[v(0, capabilities_baseline_1_0)],
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(22, capabilities_restricted_1_22, &[CAPABILITIES_BASELINE]),
            v_over(25, capabilities_restricted_1_25, &[CAPABILITIES_BASELINE]),
        ],
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[v(0, host_namespaces_1_0)],
    },
    Check {
        id: HOST_PATH_VOLUMES,
        level: Level::Baseline,
        versions: &[v(0, host_path_volumes_1_0)],
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[v(0, host_ports_1_0)],
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        versions: &[v(0, privileged_1_0)],
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        versions: &[v(0, proc_mount_1_0)],
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[v_over(0, restricted_volumes_1_0, &[HOST_PATH_VOLUMES])],
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[v(0, run_as_non_root_1_0)],
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[v(23, run_as_user_1_23)],
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[v(0, se_linux_options_1_0), v(31, se_linux_options_1_31)],
    },
    Check {
        id: SECCOMP_BASELINE,
        level: Level::Baseline,
        versions: &[v(0, seccomp_baseline_1_0), v(19, seccomp_baseline_1_19)],
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            v_over(19, seccomp_restricted_1_19, &[SECCOMP_BASELINE]),
            v_over(25, seccomp_restricted_1_25, &[SECCOMP_BASELINE]),
        ],
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            v(0, sysctls_1_0),
            v(27, sysctls_1_27),
            v(29, sysctls_1_29),
            v(32, sysctls_1_32),
        ],
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[v(0, windows_host_process_1_0)],
    },
];

/// The policy version a level:version evaluates as at `version`: `latest` and versions past
/// the emulated release are the emulated release's own.
fn effective_minor(pv: PolicyVersion, version: EmulatedVersion) -> u64 {
    let newest = u64::from(version.minor());
    match pv {
        PolicyVersion::Latest => newest,
        PolicyVersion::Minor(m) => m.min(newest),
    }
}

/// The version of `check` in force at policy minor `minor`, if it exists there.
fn at(check: &Check, minor: u64) -> Option<&VersionedCheck> {
    check.versions.iter().rev().find(|vc| vc.min <= minor)
}

/// The checks `lv` runs at `version`, in upstream order: baseline checks by ID, then
/// restricted checks by ID (Go's byte-wise string order).
fn checks_for(lv: LevelVersion, version: EmulatedVersion) -> Vec<(&'static str, CheckFn)> {
    if lv.level == Level::Privileged {
        return Vec::new();
    }
    let minor = effective_minor(lv.version, version);
    let mut ids: Vec<&Check> = CHECKS.iter().collect();
    ids.sort_by(|a, b| (a.level, a.id.as_bytes()).cmp(&(b.level, b.id.as_bytes())));
    let restricted = lv.level == Level::Restricted;
    let overridden: BTreeSet<&str> =
        if restricted && version.has(Switch::PodSecurityRestrictedOverrides) {
            CHECKS
                .iter()
                .filter(|c| c.level == Level::Restricted)
                .filter_map(|c| at(c, minor))
                .flat_map(|vc| vc.overrides.iter().copied())
                .collect()
        } else {
            BTreeSet::new()
        };
    ids.into_iter()
        .filter(|c| c.level == Level::Baseline || restricted)
        .filter(|c| !overridden.contains(c.id))
        .filter_map(|c| at(c, minor).map(|vc| (c.id, vc.check)))
        .collect()
}

/// Every check's refusal of the pod at `lv` (empty: allowed), in upstream order.
pub fn evaluate(lv: LevelVersion, pod: &PodSpecView, version: EmulatedVersion) -> Vec<Forbidden> {
    checks_for(lv, version)
        .into_iter()
        .filter_map(|(_, check)| check(pod, version))
        .collect()
}

/// Check `id` alone, as `lv` runs it at `version` (None: allowed, or not a check of `lv`).
pub fn evaluate_one(
    id: &str,
    lv: LevelVersion,
    pod: &PodSpecView,
    version: EmulatedVersion,
) -> Option<Forbidden> {
    checks_for(lv, version)
        .into_iter()
        .find(|(i, _)| *i == id)
        .and_then(|(_, check)| check(pod, version))
}

/// The IDs of the checks `lv` runs at `version` (for tests and diagnostics).
pub fn check_ids(lv: LevelVersion, version: EmulatedVersion) -> Vec<&'static str> {
    checks_for(lv, version)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

// ---------------------------------------------------------------------------
// helpers.go

/// `joinQuote`: `"a", "b"`.
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn forbid(reason: impl Into<String>, detail: impl Into<String>) -> Option<Forbidden> {
    Some(Forbidden {
        reason: reason.into(),
        detail: detail.into(),
    })
}

fn sc(c: &Container) -> Option<&SecurityContext> {
    c.security_context.as_ref()
}

fn sorted(set: BTreeSet<String>) -> Vec<String> {
    set.into_iter().collect()
}

// ---------------------------------------------------------------------------
// check_allowPrivilegeEscalation.go

fn allow_privilege_escalation_1_8(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let bad: Vec<String> = pod
        .containers
        .iter()
        .filter(|c| sc(c).and_then(|s| s.allow_privilege_escalation) != Some(false))
        .map(|c| c.name.clone())
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

/// Windows pods (`spec.os.name: windows`) are exempt from 1.25.
fn allow_privilege_escalation_1_25(pod: &PodSpecView, v: EmulatedVersion) -> Option<Forbidden> {
    if pod.windows {
        return None;
    }
    allow_privilege_escalation_1_8(pod, v)
}

// ---------------------------------------------------------------------------
// check_appArmorProfile.go

const APPARMOR_ANNOTATION_PREFIX: &str = crate::pod::APPARMOR_CONTAINER_ANNOTATION_PREFIX;

fn apparmor_annotation_allowed(value: &str) -> bool {
    value.is_empty() || value == "runtime/default" || value.starts_with("localhost/")
}

fn apparmor_type_allowed(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn apparmor_profile_1_0(pod: &PodSpecView, version: EmulatedVersion) -> Option<Forbidden> {
    let mut annotations: Vec<String> = pod
        .annotations
        .iter()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION_PREFIX) && !apparmor_annotation_allowed(v)
        })
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    annotations.sort();
    if !version.has(Switch::PodSecurityAppArmorFieldCheck) {
        // Before 1.30 only the annotations, listed as the detail.
        if annotations.is_empty() {
            return None;
        }
        return forbid(
            pluralize(
                "forbidden AppArmor profile",
                "forbidden AppArmor profiles",
                annotations.len(),
            ),
            annotations.join(", "),
        );
    }
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    if let Some(t) = pod
        .security_context
        .as_ref()
        .and_then(|s| s.apparmor_type.as_ref())
    {
        if !apparmor_type_allowed(t) {
            setters.push("pod".to_string());
            values.insert(t.clone());
        }
    }
    let mut bad = Vec::new();
    for c in &pod.containers {
        if let Some(t) = sc(c).and_then(|s| s.apparmor_type.as_ref()) {
            if !apparmor_type_allowed(t) {
                bad.push(c.name.clone());
                values.insert(t.clone());
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let mut list = sorted(values);
    if !annotations.is_empty() {
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        list.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    forbid(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            list.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&list)
        ),
    )
}

// ---------------------------------------------------------------------------
// check_capabilities_baseline.go

const CAPABILITIES_ALLOWED_1_0: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in &pod.containers {
        let Some(capabilities) = sc(c).and_then(|s| s.capabilities.as_ref()) else {
            continue;
        };
        let mut valid = true;
        for cap in &capabilities.add {
            if !CAPABILITIES_ALLOWED_1_0.contains(&cap.as_str()) {
                valid = false;
                caps.insert(cap.clone());
            }
        }
        if !valid {
            bad.push(c.name.clone());
        }
    }
    if bad.is_empty() {
        return None;
    }
    forbid(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&sorted(caps))
        ),
    )
}

// ---------------------------------------------------------------------------
// check_capabilities_restricted.go

fn capabilities_restricted_1_22(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut missing_drop_all = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in &pod.containers {
        let Some(capabilities) = sc(c).and_then(|s| s.capabilities.as_ref()) else {
            missing_drop_all.push(c.name.clone());
            continue;
        };
        if !capabilities.drop.iter().any(|d| d == "ALL") {
            missing_drop_all.push(c.name.clone());
        }
        let mut added = false;
        for cap in &capabilities.add {
            if cap != "NET_BIND_SERVICE" {
                added = true;
                caps.insert(cap.clone());
            }
        }
        if added {
            adding.push(c.name.clone());
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&sorted(caps))
        ));
    }
    if details.is_empty() {
        return None;
    }
    forbid("unrestricted capabilities", details.join("; "))
}

fn capabilities_restricted_1_25(pod: &PodSpecView, v: EmulatedVersion) -> Option<Forbidden> {
    if pod.windows {
        return None;
    }
    capabilities_restricted_1_22(pod, v)
}

// ---------------------------------------------------------------------------
// check_hostNamespaces.go

fn host_namespaces_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut set = Vec::new();
    if pod.host_network {
        set.push("hostNetwork=true");
    }
    if pod.host_pid {
        set.push("hostPID=true");
    }
    if pod.host_ipc {
        set.push("hostIPC=true");
    }
    if set.is_empty() {
        return None;
    }
    forbid("host namespaces", set.join(", "))
}

// ---------------------------------------------------------------------------
// check_hostPathVolumes.go

fn host_path_volumes_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let names: Vec<String> = pod
        .volumes
        .iter()
        .filter(|v| v.has("hostPath"))
        .map(|v| v.name.clone())
        .collect();
    if names.is_empty() {
        return None;
    }
    forbid(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    )
}

// ---------------------------------------------------------------------------
// check_hostPorts.go

fn host_ports_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut bad = Vec::new();
    // A set of the ports' decimal strings, listed in string order (`sets.String.List`).
    let mut ports = BTreeSet::new();
    for c in &pod.containers {
        let mut valid = true;
        for p in &c.host_ports {
            if *p != 0 {
                valid = false;
                ports.insert(p.to_string());
            }
        }
        if !valid {
            bad.push(c.name.clone());
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports = sorted(ports);
    forbid(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

// ---------------------------------------------------------------------------
// check_privileged.go

fn privileged_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let bad: Vec<String> = pod
        .containers
        .iter()
        .filter(|c| sc(c).and_then(|s| s.privileged) == Some(true))
        .map(|c| c.name.clone())
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

// ---------------------------------------------------------------------------
// check_procMount.go

fn proc_mount_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in &pod.containers {
        if let Some(m) = sc(c).and_then(|s| s.proc_mount.as_ref()) {
            if m != "Default" {
                bad.push(c.name.clone());
                types.insert(m.clone());
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    forbid(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&sorted(types))
        ),
    )
}

// ---------------------------------------------------------------------------
// check_restrictedVolumes.go

/// Sources the restricted level allows.
const ALLOWED_VOLUME_SOURCES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Sources named in the detail, in the order upstream tests them; anything else is `unknown`.
const NAMED_RESTRICTED_SOURCES: [&str; 21] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in &pod.volumes {
        if ALLOWED_VOLUME_SOURCES.iter().any(|s| v.has(s)) {
            continue;
        }
        bad.push(v.name.clone());
        let t = NAMED_RESTRICTED_SOURCES
            .iter()
            .find(|s| v.has(s))
            .copied()
            .unwrap_or("unknown");
        types.insert(t.to_string());
    }
    if bad.is_empty() {
        return None;
    }
    let types = sorted(types);
    forbid(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

// ---------------------------------------------------------------------------
// check_runAsNonRoot.go

fn run_as_non_root_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut pod_non_root = false;
    match pod
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root)
    {
        Some(false) => setters.push("pod".to_string()),
        Some(true) => pod_non_root = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in &pod.containers {
        match sc(c).and_then(|s| s.run_as_non_root) {
            Some(false) => explicit.push(c.name.clone()),
            Some(true) => {}
            None if !pod_non_root => implicit.push(c.name.clone()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return forbid(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

// ---------------------------------------------------------------------------
// check_runAsUser.go

fn run_as_user_1_23(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut setters = Vec::new();
    if pod.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = pod
        .containers
        .iter()
        .filter(|c| sc(c).and_then(|s| s.run_as_user) == Some(0))
        .map(|c| c.name.clone())
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    forbid(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

// ---------------------------------------------------------------------------
// check_seLinuxOptions.go

const SELINUX_TYPES_1_0: [&str; 4] = ["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options_1_0(pod: &PodSpecView, v: EmulatedVersion) -> Option<Forbidden> {
    se_linux_options(pod, v, &SELINUX_TYPES_1_0)
}

fn se_linux_options_1_31(pod: &PodSpecView, v: EmulatedVersion) -> Option<Forbidden> {
    se_linux_options(pod, v, &SELINUX_TYPES_1_31)
}

fn se_linux_options(
    pod: &PodSpecView,
    version: EmulatedVersion,
    allowed: &[&str],
) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |opts: &super::view::SeLinux| {
        let mut ok = true;
        if !allowed.contains(&opts.type_.as_str()) {
            ok = false;
            bad_types.insert(opts.type_.clone());
        }
        if !opts.user.is_empty() {
            ok = false;
            set_user = true;
        }
        if !opts.role.is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    if let Some(opts) = pod
        .security_context
        .as_ref()
        .and_then(|s| s.se_linux.as_ref())
    {
        if !valid(opts) {
            setters.push("pod".to_string());
        }
    }
    let mut bad = Vec::new();
    for c in &pod.containers {
        if let Some(opts) = sc(c).and_then(|s| s.se_linux.as_ref()) {
            if !valid(opts) {
                bad.push(c.name.clone());
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    let user_role = |data: &mut Vec<String>| {
        if set_user {
            data.push("user may not be set".to_string());
        }
        if set_role {
            data.push("role may not be set".to_string());
        }
    };
    if !bad_types.is_empty() {
        let types = sorted(bad_types);
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
        if !version.has(Switch::PodSecuritySELinuxUserRoleAlone) {
            user_role(&mut data);
        }
    }
    if version.has(Switch::PodSecuritySELinuxUserRoleAlone) {
        user_role(&mut data);
    }
    forbid(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

// ---------------------------------------------------------------------------
// check_seccompProfile_baseline.go

fn seccomp_annotation_allowed(value: &str) -> bool {
    value == "runtime/default" || value == "docker/default" || value.starts_with("localhost/")
}

fn seccomp_type_allowed(t: &str) -> bool {
    matches!(t, "Localhost" | "RuntimeDefault")
}

/// Policy versions before 1.19 check the alpha annotations.
fn seccomp_baseline_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut forbidden = BTreeSet::new();
    let pod_key = crate::pod::SECCOMP_POD_ANNOTATION;
    if let Some(v) = pod.annotations.get(pod_key) {
        if !seccomp_annotation_allowed(v) {
            forbidden.insert(format!("{pod_key}={}", go_quote(v)));
        }
    }
    for c in &pod.containers {
        let key = format!(
            "{}{}",
            crate::pod::SECCOMP_CONTAINER_ANNOTATION_PREFIX,
            c.name
        );
        if let Some(v) = pod.annotations.get(&key) {
            if !seccomp_annotation_allowed(v) {
                forbidden.insert(format!("{key}={}", go_quote(v)));
            }
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    let list = sorted(forbidden);
    forbid(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", list.len()),
            list.join(", ")
        ),
    )
}

fn seccomp_baseline_1_19(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    if let Some(t) = pod
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_type.as_ref())
    {
        if !seccomp_type_allowed(t) {
            setters.push("pod".to_string());
            values.insert(t.clone());
        }
    }
    let mut bad = Vec::new();
    for c in &pod.containers {
        if let Some(t) = sc(c).and_then(|s| s.seccomp_type.as_ref()) {
            if !seccomp_type_allowed(t) {
                bad.push(c.name.clone());
                values.insert(t.clone());
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    forbid(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&sorted(values))
        ),
    )
}

// ---------------------------------------------------------------------------
// check_seccompProfile_restricted.go

fn seccomp_restricted_1_19(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(t) = pod
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_type.as_ref())
    {
        if seccomp_type_allowed(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(t.clone());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in &pod.containers {
        match sc(c).and_then(|s| s.seccomp_type.as_ref()) {
            Some(t) if !seccomp_type_allowed(t) => {
                explicit.push(c.name.clone());
                values.insert(t.clone());
            }
            Some(_) => {}
            None if !pod_set => implicit.push(c.name.clone()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return forbid(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&sorted(values))
            ),
        );
    }
    if !implicit.is_empty() {
        return forbid(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

fn seccomp_restricted_1_25(pod: &PodSpecView, v: EmulatedVersion) -> Option<Forbidden> {
    if pod.windows {
        return None;
    }
    seccomp_restricted_1_19(pod, v)
}

// ---------------------------------------------------------------------------
// check_sysctls.go

const SYSCTLS_1_0: [&str; 5] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: [&str; 1] = ["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29: [&str; 4] = [
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: [&str; 2] = ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

fn sysctls(pod: &PodSpecView, allowed: &[&[&str]]) -> Option<Forbidden> {
    let names = pod
        .security_context
        .as_ref()
        .map(|s| s.sysctls.as_slice())
        .unwrap_or(&[]);
    let bad: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !allowed.iter().any(|set| set.contains(n)))
        .collect();
    if bad.is_empty() {
        return None;
    }
    forbid("forbidden sysctls", bad.join(", "))
}

fn sysctls_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    sysctls(pod, &[&SYSCTLS_1_0])
}

fn sysctls_1_27(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    sysctls(pod, &[&SYSCTLS_1_0, &SYSCTLS_1_27])
}

fn sysctls_1_29(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    sysctls(pod, &[&SYSCTLS_1_0, &SYSCTLS_1_27, &SYSCTLS_1_29])
}

fn sysctls_1_32(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    sysctls(
        pod,
        &[&SYSCTLS_1_0, &SYSCTLS_1_27, &SYSCTLS_1_29, &SYSCTLS_1_32],
    )
}

// ---------------------------------------------------------------------------
// check_windowsHostProcess.go

fn windows_host_process_1_0(pod: &PodSpecView, _: EmulatedVersion) -> Option<Forbidden> {
    let bad: Vec<String> = pod
        .containers
        .iter()
        .filter(|c| sc(c).and_then(|s| s.host_process) == Some(true))
        .map(|c| c.name.clone())
        .collect();
    let mut setters = Vec::new();
    if pod.security_context.as_ref().and_then(|s| s.host_process) == Some(true) {
        setters.push("pod".to_string());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    forbid(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}
