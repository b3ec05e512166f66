//! Pod Security Admission as kube-apiserver's `PodSecurity` plugin does it, with the default
//! configuration (every mode `privileged:latest`, no exemptions).
//!
//! Followed (not copied) from kubernetes/pod-security-admission v0.32.0 (kube-apiserver 1.32,
//! `staging/src/k8s.io/pod-security-admission/`):
//! - `api/constants.go`, `api/helpers.go`: the namespace labels, levels, versions
//!   (`ParseLevel`, `ParseVersion`), `PolicyToEvaluate` with its fall-backs (an invalid
//!   `enforce` level is `restricted`, invalid `audit`/`warn` levels are `privileged`, an
//!   invalid version is `latest`) and the label errors.
//! - `admission/admission.go`: `ValidateNamespace` (invalid labels refused on create, and on
//!   update when their errors changed; existing pods checked when the enforce level tightens),
//!   `ValidatePod` (subresources ignored, fully privileged namespaces short-circuit, updates
//!   checked only when significant), `ValidatePodController` (warn and audit only),
//!   `EvaluatePod` (the forbidden message, warnings only for allowed requests, audit
//!   annotations), `EvaluatePodsInNamespace` (at most 3000 pods within 1 s, pods of one
//!   controller after one of each, identical warnings merged under the first pod name),
//!   `isSignificantPodUpdate`, `DefaultPodSpecExtractor`.
//! - `admission/api/v1/defaults.go`: the default policy, `privileged:latest` for all modes.
//! - `plugin/pkg/admission/security/podsecurity/admission.go` (kubernetes/kubernetes): create
//!   and update only, pods, namespaces and the workload resources, audit annotations under
//!   `pod-security.kubernetes.io/`.
//!
//! The pure parts live here; the API server reads namespaces and pods and turns the results
//! into responses.

pub mod checks;
pub mod view;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde_json::Value;

use crate::pod::ShapeError;
use crate::validate::go_quote;
use crate::version::{EmulatedVersion, Switch};
use view::PodSpecView;

/// Prefix of the namespace labels and of the audit annotations.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
/// `pod-security.kubernetes.io/enforce`
pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// `pod-security.kubernetes.io/enforce-version`
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
/// `pod-security.kubernetes.io/audit`
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
/// `pod-security.kubernetes.io/audit-version`
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
/// `pod-security.kubernetes.io/warn`
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
/// `pod-security.kubernetes.io/warn-version`
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// Audit annotation (after [`LABEL_PREFIX`]): the enforce policy a pod was checked against.
pub const ENFORCE_POLICY_ANNOTATION: &str = "pod-security.kubernetes.io/enforce-policy";
/// Audit annotation: the audit level's violations.
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";
/// Audit annotation: why the namespace's labels could not be parsed.
pub const ERROR_ANNOTATION: &str = "pod-security.kubernetes.io/error";

/// At most this many existing pods are checked when a namespace's enforce level tightens
/// (`defaultNamespaceMaxPodsToCheck`).
pub const MAX_PODS_TO_CHECK: usize = 3000;
/// ... and for at most this long (`defaultNamespacePodCheckTimeout`).
pub const POD_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A Pod Security Standards level. Ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `privileged`: no checks.
    Privileged,
    /// `baseline`
    Baseline,
    /// `restricted`
    Restricted,
}

impl Level {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// `ParseLevel`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy version: `latest` or `v1.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyVersion {
    /// `latest`: the newest policy the server knows.
    Latest,
    /// `v1.N`
    Minor(u64),
}

impl PolicyVersion {
    /// `ParseVersion`: `latest` or `v1.N` (`N` without leading zeros).
    pub fn parse(s: &str) -> Option<PolicyVersion> {
        if s == "latest" {
            return Some(PolicyVersion::Latest);
        }
        let n = s.strip_prefix("v1.")?;
        let digits_ok = !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'));
        if !digits_ok {
            return None;
        }
        // Go's strconv.Atoi: beyond int64 is an error.
        n.parse::<i64>()
            .ok()
            .map(|m| PolicyVersion::Minor(m as u64))
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyVersion::Latest => f.write_str("latest"),
            PolicyVersion::Minor(m) => write!(f, "v1.{m}"),
        }
    }
}

/// A level at a version, e.g. `restricted:latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version.
    pub version: PolicyVersion,
}

impl LevelVersion {
    /// `privileged:latest`, the default of every mode.
    pub const PRIVILEGED: LevelVersion = LevelVersion {
        level: Level::Privileged,
        version: PolicyVersion::Latest,
    };
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// The three modes of a namespace's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Violations are refused.
    pub enforce: LevelVersion,
    /// Violations are recorded in the audit log.
    pub audit: LevelVersion,
    /// Violations are returned as warnings.
    pub warn: LevelVersion,
}

impl Default for Policy {
    /// kube-apiserver's default `PodSecurityConfiguration`: everything `privileged:latest`.
    fn default() -> Self {
        Policy {
            enforce: LevelVersion::PRIVILEGED,
            audit: LevelVersion::PRIVILEGED,
            warn: LevelVersion::PRIVILEGED,
        }
    }
}

impl Policy {
    /// `FullyPrivileged`.
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
    }
}

/// A namespace label with an invalid value (`field.Invalid` at `metadata.labels[<label>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError {
    /// The label key.
    pub label: &'static str,
    /// Its value.
    pub value: String,
    /// What it must be.
    pub detail: &'static str,
}

impl LabelError {
    /// `metadata.labels[pod-security.kubernetes.io/enforce]`
    pub fn field(&self) -> String {
        format!("metadata.labels[{}]", self.label)
    }

    /// `Invalid value: "x": must be one of privileged, baseline, restricted`
    pub fn message(&self) -> String {
        format!("Invalid value: {}: {}", go_quote(&self.value), self.detail)
    }
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.message())
    }
}

const LEVEL_DETAIL: &str = "must be one of privileged, baseline, restricted";
const VERSION_DETAIL: &str = "must be \"latest\" or \"v1.x\"";

/// The `metadata.labels` of an object (string values only).
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `PolicyToEvaluate` with kube-apiserver's defaults: the namespace's policy and its label
/// errors (the policy is usable either way).
pub fn policy_from_labels(
    labels: &BTreeMap<String, String>,
    version: EmulatedVersion,
) -> (Policy, Vec<LabelError>) {
    let mut p = Policy::default();
    let mut errors = Vec::new();
    let mut level = |label: &'static str, fallback: Level, slot: &mut Level| -> Option<bool> {
        let value = labels.get(label)?;
        match Level::parse(value) {
            Some(l) => {
                *slot = l;
                Some(true)
            }
            None => {
                *slot = fallback;
                errors.push(LabelError {
                    label,
                    value: value.clone(),
                    detail: LEVEL_DETAIL,
                });
                Some(false)
            }
        }
    };
    // An invalid enforce level fails closed (restricted), audit and warn fail open.
    let enforce_ok = level(ENFORCE_LEVEL_LABEL, Level::Restricted, &mut p.enforce.level);
    let _ = level(AUDIT_LEVEL_LABEL, Level::Privileged, &mut p.audit.level);
    let has_warn_level = level(WARN_LEVEL_LABEL, Level::Privileged, &mut p.warn.level).is_some();
    let mut version_of = |label: &'static str, slot: &mut PolicyVersion| -> bool {
        let Some(value) = labels.get(label) else {
            return false;
        };
        *slot = PolicyVersion::parse(value).unwrap_or_else(|| {
            errors.push(LabelError {
                label,
                value: value.clone(),
                detail: VERSION_DETAIL,
            });
            PolicyVersion::Latest
        });
        true
    };
    version_of(ENFORCE_VERSION_LABEL, &mut p.enforce.version);
    version_of(AUDIT_VERSION_LABEL, &mut p.audit.version);
    let has_warn_version = version_of(WARN_VERSION_LABEL, &mut p.warn.version);
    // Upstream reports the errors label by label: level then version, enforce, audit, warn.
    let order = |e: &LabelError| {
        [
            ENFORCE_LEVEL_LABEL,
            ENFORCE_VERSION_LABEL,
            AUDIT_LEVEL_LABEL,
            AUDIT_VERSION_LABEL,
            WARN_LEVEL_LABEL,
            WARN_VERSION_LABEL,
        ]
        .iter()
        .position(|l| *l == e.label)
    };
    errors.sort_by_key(order);
    if version.has(Switch::PodSecurityWarnDefaultsToEnforce)
        && !has_warn_level
        && enforce_ok == Some(true)
        && p.enforce.level > p.warn.level
    {
        p.warn.level = p.enforce.level;
        if !has_warn_version {
            p.warn.version = p.enforce.version;
        }
    }
    (p, errors)
}

/// `errors.NewAggregate(...).Error()`: one error bare, several as `[a, b]` (duplicates once).
fn aggregate(errors: &[LabelError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let s = e.to_string();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    if seen.len() == 1 {
        seen.remove(0)
    } else {
        format!("[{}]", seen.join(", "))
    }
}

/// The checks' verdict on one pod at one level:version (`AggregateCheckResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Each refusing check, in upstream order; empty when allowed.
    pub forbidden: Vec<checks::Forbidden>,
}

impl Verdict {
    /// Whether every check allowed the pod.
    pub fn allowed(&self) -> bool {
        self.forbidden.is_empty()
    }

    /// `ForbiddenReason`: the reasons, comma separated.
    pub fn reason(&self) -> String {
        self.forbidden
            .iter()
            .map(|f| f.reason.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `ForbiddenDetail`: each reason with its detail in parentheses.
    pub fn detail(&self) -> String {
        self.forbidden
            .iter()
            .map(|f| {
                if f.detail.is_empty() {
                    f.reason.clone()
                } else {
                    format!("{} ({})", f.reason, f.detail)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `lv`'s checks on a pod view.
pub fn evaluate(lv: LevelVersion, pod: &PodSpecView, version: EmulatedVersion) -> Verdict {
    Verdict {
        forbidden: checks::evaluate(lv, pod, version),
    }
}

/// What admission decided for a pod or a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The refusal, `violates PodSecurity "baseline:latest": ...` (a 403 on the resource).
    pub forbidden: Option<String>,
    /// Warning texts.
    pub warnings: Vec<String>,
    /// Audit annotations, with their full keys (`pod-security.kubernetes.io/...`).
    pub audit_annotations: BTreeMap<String, String>,
}

/// `EvaluatePod`: enforce (when `enforce`), audit and warn levels of `policy` on a pod view.
fn evaluate_modes(
    policy: &Policy,
    errors: &[LabelError],
    pod: &PodSpecView,
    enforce: bool,
    version: EmulatedVersion,
) -> Evaluation {
    let mut out = Evaluation::default();
    if !errors.is_empty() {
        out.audit_annotations.insert(
            ERROR_ANNOTATION.into(),
            format!("Failed to parse policy: {}", aggregate(errors)),
        );
    }
    let mut cache: Vec<(LevelVersion, Verdict)> = Vec::new();
    let mut verdict = |lv: LevelVersion| -> Verdict {
        if let Some((_, v)) = cache.iter().find(|(k, _)| *k == lv) {
            return v.clone();
        }
        let v = evaluate(lv, pod, version);
        cache.push((lv, v.clone()));
        v
    };
    if enforce {
        out.audit_annotations
            .insert(ENFORCE_POLICY_ANNOTATION.into(), policy.enforce.to_string());
        let v = verdict(policy.enforce);
        if !v.allowed() {
            out.forbidden = Some(format!(
                "violates PodSecurity {}: {}",
                go_quote(&policy.enforce.to_string()),
                v.detail()
            ));
        }
    }
    let v = verdict(policy.audit);
    if !v.allowed() {
        out.audit_annotations.insert(
            AUDIT_VIOLATIONS_ANNOTATION.into(),
            format!(
                "would violate PodSecurity {}: {}",
                go_quote(&policy.audit.to_string()),
                v.detail()
            ),
        );
    }
    // No warnings on a request that is refused anyway.
    if out.forbidden.is_none() {
        let v = verdict(policy.warn);
        if !v.allowed() {
            out.warnings.push(format!(
                "would violate PodSecurity {}: {}",
                go_quote(&policy.warn.to_string()),
                v.detail()
            ));
        }
    }
    out
}

/// `ValidatePod` for a create (`old == None`) or an update of the main resource (status and
/// other subresources are not checked). `ns_labels` are the pod's namespace's labels.
pub fn admit_pod(
    ns_labels: &BTreeMap<String, String>,
    pod: &Value,
    old: Option<&Value>,
    version: EmulatedVersion,
) -> Result<Evaluation, ShapeError> {
    let (policy, errors) = policy_from_labels(ns_labels, version);
    if errors.is_empty() && policy.fully_privileged() {
        let mut out = Evaluation::default();
        out.audit_annotations.insert(
            ENFORCE_POLICY_ANNOTATION.into(),
            LevelVersion::PRIVILEGED.to_string(),
        );
        return Ok(out);
    }
    if let Some(old) = old {
        if !significant_pod_update(pod, old, version) {
            return Ok(Evaluation::default());
        }
    }
    let view = PodSpecView::parse(&pod["metadata"], &pod["spec"], "", true)?;
    Ok(evaluate_modes(&policy, &errors, &view, true, version))
}

/// Where a workload resource keeps its pod template (`DefaultPodSpecExtractor`), by group and
/// resource; `None` for resources without one.
pub fn template_path(group: &str, resource: &str) -> Option<&'static [&'static str]> {
    match (group, resource) {
        ("", "replicationcontrollers") => Some(&["spec", "template"]),
        ("", "podtemplates") => Some(&["template"]),
        ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => Some(&["spec", "template"]),
        ("batch", "cronjobs") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// `ValidatePodController`: the warn and audit levels on a workload's pod template (never
/// enforced; the pods the workload's controller creates are).
pub fn admit_workload(
    ns_labels: &BTreeMap<String, String>,
    group: &str,
    resource: &str,
    obj: &Value,
    version: EmulatedVersion,
) -> Result<Evaluation, ShapeError> {
    let Some(path) = template_path(group, resource) else {
        return Ok(Evaluation::default());
    };
    let (policy, errors) = policy_from_labels(ns_labels, version);
    if errors.is_empty()
        && policy.warn.level == Level::Privileged
        && policy.audit.level == Level::Privileged
    {
        return Ok(Evaluation::default());
    }
    let mut template = obj;
    for key in path {
        template = &template[*key];
    }
    // A ReplicationController's template is a pointer; without one there is nothing to check.
    if template.is_null() && resource == "replicationcontrollers" {
        return Ok(Evaluation::default());
    }
    let view = PodSpecView::parse(
        &template["metadata"],
        &template["spec"],
        &path.join("."),
        version.has(Switch::HostNetworkHostPortsInTemplates),
    )?;
    Ok(evaluate_modes(&policy, &errors, &view, false, version))
}

/// What a namespace create or update needs (`ValidateNamespace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceVerdict {
    /// Nothing to add.
    Allowed,
    /// The labels are invalid: a 422 `Namespace "x" is invalid` with these causes.
    Invalid(Vec<LabelError>),
    /// Allowed; the existing pods are to be checked against this new enforce level and the
    /// result returned as warnings ([`existing_pods_warnings`]).
    CheckPods(LevelVersion),
}

/// `ValidateNamespace` for a create (`old == None`) or an update.
pub fn validate_namespace(
    new: &BTreeMap<String, String>,
    old: Option<&BTreeMap<String, String>>,
    version: EmulatedVersion,
) -> NamespaceVerdict {
    let (new_policy, new_errors) = policy_from_labels(new, version);
    let Some(old) = old else {
        return if new_errors.is_empty() {
            NamespaceVerdict::Allowed
        } else {
            NamespaceVerdict::Invalid(new_errors)
        };
    };
    let (old_policy, old_errors) = policy_from_labels(old, version);
    if !new_errors.is_empty() && (old_errors.is_empty() || new_errors != old_errors) {
        return NamespaceVerdict::Invalid(new_errors);
    }
    let (n, o) = (new_policy.enforce, old_policy.enforce);
    if n == o || n.level == Level::Privileged || (n.version == o.version && n.level <= o.level) {
        return NamespaceVerdict::Allowed;
    }
    NamespaceVerdict::CheckPods(n)
}

/// `EvaluatePodsInNamespace`: warnings for the pods of `namespace` that violate the new
/// `enforce` level. At most `max_pods` pods are checked, and none after `expired()` says the
/// time is up (kube-apiserver: [`MAX_PODS_TO_CHECK`], [`POD_CHECK_TIMEOUT`]).
pub fn existing_pods_warnings(
    namespace: &str,
    enforce: LevelVersion,
    pods: &[Value],
    version: EmulatedVersion,
    max_pods: usize,
    expired: &mut dyn FnMut() -> bool,
) -> Vec<String> {
    let prioritized = prioritize(pods);
    let total = prioritized.len();
    let mut checked = total.min(max_pods);
    // Warnings in first-seen order, each with its lexically first pod and pod count.
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    for (i, pod) in prioritized.iter().take(max_pods).enumerate() {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        // A stored pod kube-apiserver could not have decoded is left out.
        if let Ok(view) = PodSpecView::parse(&pod["metadata"], &pod["spec"], "", true) {
            let v = evaluate(enforce, &view, version);
            if !v.allowed() {
                let reason = v.reason();
                match seen.iter_mut().find(|(w, _, _)| *w == reason) {
                    Some((_, first, count)) => {
                        if name < *first {
                            *first = name;
                        }
                        *count += 1;
                    }
                    None => seen.push((reason, name, 1)),
                }
            }
        }
        if expired() {
            checked = i + 1;
            break;
        }
    }
    let mut warnings = Vec::new();
    if checked < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
        ));
    }
    if !seen.is_empty() {
        warnings.push(format!(
            "existing pods in namespace {} violate the new PodSecurity enforce level {}",
            go_quote(namespace),
            go_quote(&enforce.to_string())
        ));
    }
    let mut pod_warnings: Vec<String> = seen
        .into_iter()
        .map(|(warning, first, count)| match count {
            1 => format!("{first}: {warning}"),
            2 => format!("{first} (and 1 other pod): {warning}"),
            n => format!("{first} (and {} other pods): {warning}", n - 1),
        })
        .collect();
    pod_warnings.sort();
    warnings.extend(pod_warnings);
    warnings
}

/// `prioritizePods`: pods without a controller and the first pod of each controller, then the
/// other pods of controllers already seen.
fn prioritize(pods: &[Value]) -> Vec<&Value> {
    let mut first = Vec::new();
    let mut duplicates = Vec::new();
    let mut controllers = HashSet::new();
    for pod in pods {
        let controller = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| refs.iter().find(|r| r["controller"] == Value::Bool(true)))
            .map(|r| r["uid"].as_str().unwrap_or("").to_string());
        match controller {
            None => first.push(pod),
            Some(uid) if controllers.contains(&uid) => duplicates.push(pod),
            Some(uid) => {
                controllers.insert(uid);
                first.push(pod);
            }
        }
    }
    first.extend(duplicates);
    first
}

/// Whether a pod update is to be checked (`isSignificantPodUpdate`): containers added or
/// removed, an image changed, an ephemeral container added or changed, and before 1.25/1.27
/// the seccomp annotations changed.
///
/// kube-apiserver's pod validation keeps every other field the checks read immutable, so it
/// only needs those. armorlet does not validate pod updates yet, so any change of a field or
/// annotation the checks read makes the update significant as well: a pod is never left
/// weaker than its namespace's enforce level by an update kube-apiserver would have refused.
pub fn significant_pod_update(new: &Value, old: &Value, version: EmulatedVersion) -> bool {
    let containers = |pod: &Value, list: &str| -> Vec<Value> {
        pod["spec"][list].as_array().cloned().unwrap_or_default()
    };
    for list in ["containers", "initContainers"] {
        let (n, o) = (containers(new, list), containers(old, list));
        if n.len() != o.len() {
            return true;
        }
        if n.iter().zip(&o).any(|(a, b)| a["image"] != b["image"]) {
            return true;
        }
    }
    let old_ephemeral = containers(old, "ephemeralContainers");
    for c in containers(new, "ephemeralContainers") {
        match old_ephemeral.iter().find(|o| o["name"] == c["name"]) {
            None => return true,
            Some(o) if o["image"] != c["image"] => return true,
            Some(_) => {}
        }
    }
    let annotation = |pod: &Value, key: &str| pod["metadata"]["annotations"][key].clone();
    if version.has(Switch::PodSecurityPodSeccompAnnotationUpdate)
        && annotation(new, crate::pod::SECCOMP_POD_ANNOTATION)
            != annotation(old, crate::pod::SECCOMP_POD_ANNOTATION)
    {
        return true;
    }
    if version.has(Switch::PodSecurityContainerSeccompAnnotationUpdate) {
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in containers(new, list) {
                let key = format!(
                    "{}{}",
                    crate::pod::SECCOMP_CONTAINER_ANNOTATION_PREFIX,
                    c["name"].as_str().unwrap_or("")
                );
                if annotation(new, &key) != annotation(old, &key) {
                    return true;
                }
            }
        }
    }
    // armorlet: anything the checks read.
    let relevant = |pod: &Value| {
        PodSpecView::parse(&pod["metadata"], &pod["spec"], "", true).map(|mut v| {
            v.annotations.retain(|k, _| {
                k.starts_with(crate::pod::APPARMOR_CONTAINER_ANNOTATION_PREFIX)
                    || k.starts_with(crate::pod::SECCOMP_CONTAINER_ANNOTATION_PREFIX)
                    || k == crate::pod::SECCOMP_POD_ANNOTATION
            });
            v
        })
    };
    match (relevant(new), relevant(old)) {
        (Ok(n), Ok(o)) => n != o,
        _ => true,
    }
}

#[cfg(test)]
mod tests;
