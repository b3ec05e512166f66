//! Emulated Kubernetes versions and the one table of confinement behaviour
//! switches that differ between them.
//!
//! Every row of [`SWITCHES`] names the Kubernetes change it comes from and the
//! upstream file where the behaviour lives, so a reviewer can check the
//! boundary against the Kubernetes source history.

use std::fmt;
use std::str::FromStr;

/// Oldest minor release armorlet can emulate.
pub const MIN_MINOR: u32 = 22;
/// Newest minor release armorlet can emulate (and the default).
pub const MAX_MINOR: u32 = 32;

/// A Kubernetes release `1.<minor>` whose confinement semantics are emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmulatedVersion {
    minor: u32,
}

/// Why a version string or number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The text is not of the form `1.N` (optionally `v1.N`).
    #[error("invalid emulated version {text:?}: expected 1.N")]
    Malformed {
        /// The text as given.
        text: String,
    },
    /// The major version is not 1.
    #[error("unsupported emulated version {text:?}: only major version 1 exists")]
    Major {
        /// The text as given.
        text: String,
    },
    /// The minor version is outside the emulated range.
    #[error(
        "unsupported emulated version 1.{minor}: supported are 1.{MIN_MINOR} through 1.{MAX_MINOR}"
    )]
    OutOfRange {
        /// The minor version asked for.
        minor: u32,
    },
}

impl EmulatedVersion {
    /// The default: the newest supported release, 1.32.
    pub const DEFAULT: EmulatedVersion = EmulatedVersion { minor: MAX_MINOR };

    /// `1.<minor>`, if it is in the supported range.
    pub fn new(minor: u32) -> Result<Self, VersionError> {
        if (MIN_MINOR..=MAX_MINOR).contains(&minor) {
            Ok(Self { minor })
        } else {
            Err(VersionError::OutOfRange { minor })
        }
    }

    /// The minor version number.
    pub fn minor(self) -> u32 {
        self.minor
    }

    /// Whether the behaviour switch is on at this version.
    pub fn has(self, switch: Switch) -> bool {
        switch.row().applies(self.minor)
    }

    /// Every supported version, oldest first.
    pub fn all() -> impl Iterator<Item = EmulatedVersion> {
        (MIN_MINOR..=MAX_MINOR).map(|minor| EmulatedVersion { minor })
    }
}

impl Default for EmulatedVersion {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for EmulatedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl FromStr for EmulatedVersion {
    type Err = VersionError;

    /// Parses `1.N` or `v1.N` (a patch level `1.N.P` is accepted and ignored).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || VersionError::Malformed {
            text: text.to_string(),
        };
        let body = text.strip_prefix('v').unwrap_or(text);
        let mut parts = body.split('.');
        let major = parts.next().ok_or_else(malformed)?;
        let minor = parts.next().ok_or_else(malformed)?;
        if let Some(patch) = parts.next() {
            if patch.is_empty() || !patch.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
        }
        if parts.next().is_some() {
            return Err(malformed());
        }
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(major) || !all_digits(minor) {
            return Err(malformed());
        }
        if major != "1" {
            return Err(VersionError::Major {
                text: text.to_string(),
            });
        }
        let minor: u32 = minor.parse().map_err(|_| malformed())?;
        Self::new(minor)
    }
}

/// A behaviour that changed between Kubernetes releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Switch {
    /// kube-apiserver copies seccomp annotations to the fields when a pod is
    /// created (if the field is unset).
    SeccompAnnotationToFieldSync,
    /// kube-apiserver copies seccomp fields to the annotations when a pod is
    /// created (if the annotation is unset).
    SeccompFieldToAnnotationSync,
    /// The kubelet falls back to the seccomp annotations when the fields are
    /// unset.
    KubeletSeccompAnnotations,
    /// The seccomp annotation warning reads `non-functional in v1.27+`.
    SeccompWarningNonFunctional127,
    /// The seccomp annotation warning reads
    /// `deprecated since v1.19, non-functional in v1.25+`.
    SeccompWarningNonFunctional125,
    /// `securityContext.appArmorProfile` exists (pod and container level);
    /// annotation <-> field synchronisation on create, annotation/field match
    /// validation.
    AppArmorFields,
    /// Creating a pod with an AppArmor annotation warns
    /// `deprecated since v1.30; use the "appArmorProfile" field instead`.
    AppArmorAnnotationDeprecationWarning,
    /// The `policy/v1beta1` PodSecurityPolicy API and admission plugin exist.
    PodSecurityPolicy,
    /// The kubelet refuses (soft admission, pod stays Pending) a pod whose
    /// `localhost/` AppArmor profile is not loaded on the node.
    KubeletAppArmorLoadedCheck,
    /// The `SeccompDefault` feature gate is enabled by default (the kubelet's
    /// `seccompDefault` setting is honoured without `--feature-gates`).
    SeccompDefaultGateOnByDefault,
    /// The kubelet's AppArmor admission failure is a hard rejection (phase
    /// Failed) instead of soft admission (pod held Pending, `Blocked`).
    KubeletAppArmorHardReject,
    /// The kubelet's `AppArmor` feature gate can be turned off
    /// (`--feature-gates=AppArmor=false`); later it is locked on.
    AppArmorFeatureGateConfigurable,
    /// The node Ready condition message ends in `. AppArmor enabled` when the
    /// host supports AppArmor.
    NodeReadyAppArmorMessage,
    /// kubeadm taints control-plane nodes `node-role.kubernetes.io/master:NoSchedule`.
    KubeadmMasterTaint,
    /// kubeadm labels control-plane nodes `node-role.kubernetes.io/master` (besides
    /// `node-role.kubernetes.io/control-plane`), so kubectl's ROLES reads `control-plane,master`.
    KubeadmMasterLabel,
    /// kubeadm taints control-plane nodes `node-role.kubernetes.io/control-plane:NoSchedule`.
    KubeadmControlPlaneTaint,
    /// The Node authorizer lets a node read only its own Node object, and list or watch only
    /// the pods bound to it (the `AuthorizeNodeWithSelectors` feature, on by default).
    AuthorizeNodeWithSelectors,
    /// kube-apiserver runs the `PodSecurity` admission plugin (Pod Security Admission: the
    /// `pod-security.kubernetes.io/*` namespace labels).
    PodSecurityAdmission,
    /// Pod Security's restricted checks replace the baseline checks they supersede
    /// (restricted volume types for hostPath volumes, restricted capabilities for non-default
    /// ones, the restricted seccomp check for the baseline one) instead of both reporting.
    PodSecurityRestrictedOverrides,
    /// A pod update that changes the pod seccomp annotation is a significant update for Pod
    /// Security.
    PodSecurityPodSeccompAnnotationUpdate,
    /// A pod update that changes a container seccomp annotation is a significant update for
    /// Pod Security.
    PodSecurityContainerSeccompAnnotationUpdate,
    /// Without a `warn` label, Pod Security warns at the `enforce` level when that is more
    /// restrictive than the default warn level.
    PodSecurityWarnDefaultsToEnforce,
    /// Pod Security's seLinuxOptions check reports "user/role may not be set" also when the
    /// type is allowed.
    PodSecuritySELinuxUserRoleAlone,
    /// Pod Security's AppArmor check reads the `appArmorProfile` fields and words its detail
    /// `... must not set AppArmor profile type to ...`.
    PodSecurityAppArmorFieldCheck,
    /// Defaulting gives the ports of `hostNetwork` pod templates (Deployments, DaemonSets, ...)
    /// a `hostPort`, as it does for pods.
    HostNetworkHostPortsInTemplates,
}

/// One row of the behaviour table: the switch is on for minors
/// `since..=until` (open ends are `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchRow {
    /// The behaviour.
    pub switch: Switch,
    /// First minor release with the behaviour (`None`: before 1.22).
    pub since: Option<u32>,
    /// Last minor release with the behaviour (`None`: still in 1.32).
    pub until: Option<u32>,
    /// The upstream change and file the boundary comes from.
    pub citation: &'static str,
}

impl SwitchRow {
    fn applies(&self, minor: u32) -> bool {
        !matches!(self.since, Some(s) if minor < s) && !matches!(self.until, Some(u) if minor > u)
    }
}

/// KEP-135 (seccomp GA, v1.19, PR #91408 "Add seccomp GA version skew for
/// pods") added the create-time sync in `pkg/registry/core/pod/strategy.go`
/// (`applySeccompVersionSkew`, using `SeccompFieldForAnnotation` from
/// `pkg/api/pod/util.go`). The annotation -> field direction was removed in
/// v1.27 by PR #114947 "Make seccomp annotations non-functional".
pub const ROW_SECCOMP_ANNOTATION_TO_FIELD_SYNC: SwitchRow = SwitchRow {
    switch: Switch::SeccompAnnotationToFieldSync,
    since: None,
    until: Some(26),
    citation: "KEP-135, PR #91408 (v1.19) .. PR #114947 (v1.27): pkg/registry/core/pod/strategy.go applySeccompVersionSkew; pkg/api/pod/util.go SeccompFieldForAnnotation",
};

/// The field -> annotation direction of `applySeccompVersionSkew`
/// (`SeccompAnnotationForField`, `pkg/api/pod/util.go`) was removed in v1.25
/// by PR #109819 "Partly remove support for seccomp annotations" (release
/// note: "the seccomp annotations are no longer auto-populated when pods with
/// seccomp fields are created").
pub const ROW_SECCOMP_FIELD_TO_ANNOTATION_SYNC: SwitchRow = SwitchRow {
    switch: Switch::SeccompFieldToAnnotationSync,
    since: None,
    until: Some(24),
    citation: "PR #109819 (v1.25): pkg/registry/core/pod/strategy.go applySeccompVersionSkew; pkg/api/pod/util.go SeccompAnnotationForField",
};

/// The kubelet's annotation fallback in `getSeccompProfile`
/// (`pkg/kubelet/kuberuntime/helpers.go`: container field > container
/// annotation > pod field > pod annotation) was removed in v1.25 by PR
/// #109819 ("Kubelets no longer support the annotations"; PR #114846 notes the
/// annotations "could still influence 1.23 and 1.24 kubelets").
pub const ROW_KUBELET_SECCOMP_ANNOTATIONS: SwitchRow = SwitchRow {
    switch: Switch::KubeletSeccompAnnotations,
    since: None,
    until: Some(24),
    citation: "PR #109819 (v1.25): pkg/kubelet/kuberuntime/helpers.go getSeccompProfile",
};

/// `pkg/api/pod/warnings.go` (`GetWarningsForPodTemplate`): from v1.27 the
/// text is `non-functional in v1.27+; use the "seccompProfile" field
/// instead` (PR #114947, "Make seccomp annotations non-functional").
pub const ROW_SECCOMP_WARNING_127: SwitchRow = SwitchRow {
    switch: Switch::SeccompWarningNonFunctional127,
    since: Some(27),
    until: None,
    citation: "PR #114947 (v1.27): pkg/api/pod/warnings.go",
};

/// `pkg/api/pod/warnings.go` in v1.25/v1.26 (changed by PR #109819):
/// `deprecated since v1.19, non-functional in v1.25+` (upstream test
/// `pkg/api/pod/warnings_test.go` of that era); earlier releases say
/// `deprecated since v1.19, non-functional in a future release`.
pub const ROW_SECCOMP_WARNING_125: SwitchRow = SwitchRow {
    switch: Switch::SeccompWarningNonFunctional125,
    since: Some(25),
    until: Some(26),
    citation: "PR #109819 (v1.25) .. PR #114947 (v1.27): pkg/api/pod/warnings.go",
};

/// KEP-24 (AppArmor GA, v1.30), kubernetes/kubernetes PR #123435: the
/// `AppArmorProfile` type in `pkg/apis/core/types.go`,
/// `ValidateAppArmorProfileField` and
/// `validateAppArmorAnnotationsAndFieldsMatchOnCreate` in
/// `pkg/apis/core/validation/validation.go`, and
/// `applyAppArmorVersionSkew` in `pkg/registry/core/pod/strategy.go`.
pub const ROW_APPARMOR_FIELDS: SwitchRow = SwitchRow {
    switch: Switch::AppArmorFields,
    since: Some(30),
    until: None,
    citation: "KEP-24 GA, PR #123435 (v1.30): pkg/apis/core/validation/validation.go ValidateAppArmorProfileField; pkg/registry/core/pod/strategy.go applyAppArmorVersionSkew",
};

/// Emitted from `applyAppArmorVersionSkew` in
/// `pkg/registry/core/pod/strategy.go` (pods) and
/// `pkg/api/pod/warnings.go` (templates), same change as the fields.
pub const ROW_APPARMOR_ANNOTATION_WARNING: SwitchRow = SwitchRow {
    switch: Switch::AppArmorAnnotationDeprecationWarning,
    since: Some(30),
    until: None,
    citation:
        "KEP-24 GA, PR #123435 (v1.30): pkg/registry/core/pod/strategy.go applyAppArmorVersionSkew",
};

/// KEP-5 (PSP deprecation): the `policy/v1beta1` PodSecurityPolicy API and
/// `plugin/pkg/admission/security/podsecuritypolicy` were removed in v1.25
/// (kubernetes/kubernetes PR #109798).
pub const ROW_POD_SECURITY_POLICY: SwitchRow = SwitchRow {
    switch: Switch::PodSecurityPolicy,
    since: None,
    until: Some(24),
    citation: "KEP-5, PR #109798 (v1.25): plugin/pkg/admission/security/podsecuritypolicy/admission.go removed",
};

/// `pkg/security/apparmor/validate.go`: `validateProfile` returned
/// `profile %q is not loaded`; kubernetes/kubernetes PR #97966 "Remove
/// AppArmor loaded profile validation" removed the check; PR #108143
/// (Feb 2022, "Forbid empty AppArmor localhost profile") states #97966
/// "was only pushed out in an alpha release", i.e. v1.24.0-alpha, so 1.23
/// is the last release with the check.
pub const ROW_KUBELET_APPARMOR_LOADED_CHECK: SwitchRow = SwitchRow {
    switch: Switch::KubeletAppArmorLoadedCheck,
    since: None,
    until: Some(23),
    citation: "PR #97966 (first in v1.24, per PR #108143): pkg/security/apparmor/validate.go validateProfile",
};

/// KEP-2413 (`SeccompDefault`): alpha in v1.22 (gate off by default),
/// beta in v1.25 (gate on by default), GA in v1.27 (gate locked on);
/// `pkg/features/kube_features.go`.
pub const ROW_SECCOMP_DEFAULT_GATE: SwitchRow = SwitchRow {
    switch: Switch::SeccompDefaultGateOnByDefault,
    since: Some(25),
    until: None,
    citation: "KEP-2413 beta (v1.25): pkg/features/kube_features.go SeccompDefault",
};

/// kubernetes/kubernetes PR #125776 "Remove kubelet soft admission" (merged
/// 2024-06-28, milestone v1.31, issue #125393): the AppArmor admit handler
/// moved from `softAdmitHandlers` to `admitHandlers` in
/// `pkg/kubelet/kubelet.go` (release note: "kubelet now hard rejects pods with
/// AppArmor if the node does not have AppArmor enabled").
pub const ROW_KUBELET_APPARMOR_HARD_REJECT: SwitchRow = SwitchRow {
    switch: Switch::KubeletAppArmorHardReject,
    since: Some(31),
    until: None,
    citation: "PR #125776 (v1.31): pkg/kubelet/kubelet.go admitHandlers; pkg/kubelet/lifecycle/handlers.go appArmorAdmitHandler",
};

/// KEP-24: the `AppArmor` gate (beta since 1.4) went GA in v1.31 with
/// `LockToDefault: true` in `pkg/features/kube_features.go`; before that
/// `validateHost` in `pkg/security/apparmor/validate.go` returned
/// `AppArmor disabled by feature-gate` when it was off.
pub const ROW_APPARMOR_FEATURE_GATE: SwitchRow = SwitchRow {
    switch: Switch::AppArmorFeatureGateConfigurable,
    since: None,
    until: Some(30),
    citation: "KEP-24 GA (v1.31, gate locked): pkg/features/kube_features.go AppArmor; pkg/security/apparmor/validate.go validateHost",
};

/// PR #31659 (v1.4) appended `. AppArmor enabled` to the Ready condition
/// (`pkg/kubelet/nodestatus/setters.go` `ReadyCondition`); KEP-24's GA
/// design ("Node Status": "this message will simply be removed") dropped it
/// with the GA change, PR #123435 (v1.30).
pub const ROW_NODE_READY_APPARMOR_MESSAGE: SwitchRow = SwitchRow {
    switch: Switch::NodeReadyAppArmorMessage,
    since: None,
    until: Some(29),
    citation: "PR #31659 (v1.4) .. KEP-24 GA PR #123435 (v1.30): pkg/kubelet/nodestatus/setters.go ReadyCondition",
};

/// KEP-2067 (rename the kubeadm "master" label and taint): kubeadm applied both taints in
/// v1.24 and only the `control-plane` one from v1.25.
pub const ROW_KUBEADM_MASTER_TAINT: SwitchRow = SwitchRow {
    switch: Switch::KubeadmMasterTaint,
    since: None,
    until: Some(24),
    citation: "KEP-2067 (v1.24 both taints, v1.25 control-plane only): cmd/kubeadm/app/constants/constants.go OldControlPlaneTaint",
};

/// KEP-2067: the `node-role.kubernetes.io/master` label went away in v1.24.
pub const ROW_KUBEADM_MASTER_LABEL: SwitchRow = SwitchRow {
    switch: Switch::KubeadmMasterLabel,
    since: None,
    until: Some(23),
    citation: "KEP-2067 (v1.24 drops the master label): cmd/kubeadm/app/constants/constants.go LabelNodeRoleOldControlPlane",
};

/// See [`ROW_KUBEADM_MASTER_TAINT`].
pub const ROW_KUBEADM_CONTROL_PLANE_TAINT: SwitchRow = SwitchRow {
    switch: Switch::KubeadmControlPlaneTaint,
    since: Some(24),
    until: None,
    citation: "KEP-2067 (v1.24 both taints, v1.25 control-plane only): cmd/kubeadm/app/constants/constants.go ControlPlaneTaint",
};

/// KEP-4601 (authorize with field and label selectors): `AuthorizeNodeWithSelectors` is alpha
/// (off) in v1.31 and beta, on by default, from v1.32.
pub const ROW_AUTHORIZE_NODE_WITH_SELECTORS: SwitchRow = SwitchRow {
    switch: Switch::AuthorizeNodeWithSelectors,
    since: Some(32),
    until: None,
    citation: "KEP-4601 (beta, default on in v1.32): pkg/features/kube_features.go AuthorizeNodeWithSelectors, plugin/pkg/auth/authorizer/node/node_authorizer.go",
};

/// KEP-2579 (Pod Security Admission): alpha in v1.22 behind the `PodSecurity` feature gate
/// (off by default), beta in v1.23 with the gate on by default, GA in v1.25 (PR #110459);
/// `pkg/features/kube_features.go` PodSecurity, `plugin/pkg/admission/security/podsecurity/admission.go`.
pub const ROW_POD_SECURITY_ADMISSION: SwitchRow = SwitchRow {
    switch: Switch::PodSecurityAdmission,
    since: Some(23),
    until: None,
    citation: "KEP-2579 beta (v1.23, gate PodSecurity on by default): pkg/features/kube_features.go PodSecurity; plugin/pkg/admission/security/podsecurity/admission.go",
};

/// kubernetes/kubernetes PR #107698 (v1.24; commits "Allow restricted checks to override
/// (supercede) baseline checks", "Add overrides for hostpath, seccomp, and capabilities
/// checks"): `OverrideCheckIDs` in staging/src/k8s.io/pod-security-admission/policy/checks.go
/// and registry.go.
pub const ROW_POD_SECURITY_RESTRICTED_OVERRIDES: SwitchRow = SwitchRow {
    switch: Switch::PodSecurityRestrictedOverrides,
    since: Some(24),
    until: None,
    citation: "PR #107698 (v1.24): staging/src/k8s.io/pod-security-admission/policy/registry.go OverrideCheckIDs",
};

/// PR #109819 "Partly remove support for seccomp annotations" (v1.25) dropped the pod
/// annotation from `isSignificantPodUpdate` (staging/src/k8s.io/pod-security-admission/admission/admission.go).
pub const ROW_POD_SECURITY_POD_SECCOMP_ANNOTATION_UPDATE: SwitchRow = SwitchRow {
    switch: Switch::PodSecurityPodSeccompAnnotationUpdate,
    since: None,
    until: Some(24),
    citation: "PR #109819 (v1.25): staging/src/k8s.io/pod-security-admission/admission/admission.go isSignificantPodUpdate",
};

/// PR #114846 (v1.27) dropped the container annotations from `isSignificantContainerUpdate`
/// (staging/src/k8s.io/pod-security-admission/admission/admission.go).
pub const ROW_POD_SECURITY_CONTAINER_SECCOMP_ANNOTATION_UPDATE: SwitchRow = SwitchRow {
    switch: Switch::PodSecurityContainerSeccompAnnotationUpdate,
    since: None,
    until: Some(26),
    citation: "PR #114846 (v1.27): staging/src/k8s.io/pod-security-admission/admission/admission.go isSignificantContainerUpdate",
};

/// PR #113491 "[PSA] default warn to enforce level" (v1.26):
/// staging/src/k8s.io/pod-security-admission/api/helpers.go `PolicyToEvaluate`.
pub const ROW_POD_SECURITY_WARN_DEFAULTS_TO_ENFORCE: SwitchRow = SwitchRow {
    switch: Switch::PodSecurityWarnDefaultsToEnforce,
    since: Some(26),
    until: None,
    citation: "PR #113491 (v1.26): staging/src/k8s.io/pod-security-admission/api/helpers.go PolicyToEvaluate",
};

/// PR #113111 "Fix SELinux PodSecurity message when only user or role are set" (v1.26):
/// staging/src/k8s.io/pod-security-admission/policy/check_seLinuxOptions.go.
pub const ROW_POD_SECURITY_SELINUX_USER_ROLE_ALONE: SwitchRow = SwitchRow {
    switch: Switch::PodSecuritySELinuxUserRoleAlone,
    since: Some(26),
    until: None,
    citation: "PR #113111 (v1.26): staging/src/k8s.io/pod-security-admission/policy/check_seLinuxOptions.go",
};

/// KEP-24 AppArmor GA, PR #123435 (v1.30), commit "PodSecurity check for AppArmor fields":
/// staging/src/k8s.io/pod-security-admission/policy/check_appArmorProfile.go.
pub const ROW_POD_SECURITY_APPARMOR_FIELD_CHECK: SwitchRow = SwitchRow {
    switch: Switch::PodSecurityAppArmorFieldCheck,
    since: Some(30),
    until: None,
    citation: "KEP-24 GA, PR #123435 (v1.30): staging/src/k8s.io/pod-security-admission/policy/check_appArmorProfile.go",
};

/// PR #117696 "Do hostNet Pod-ports -> hostPorts in Pod defaults" (v1.28, feature gate
/// `DefaultHostNetworkHostPortsInPodTemplates` off by default): pkg/apis/core/v1/defaults.go
/// `SetDefaults_PodSpec` stopped defaulting `hostPort` in pod templates.
pub const ROW_HOST_NETWORK_HOST_PORTS_IN_TEMPLATES: SwitchRow = SwitchRow {
    switch: Switch::HostNetworkHostPortsInTemplates,
    since: None,
    until: Some(27),
    citation:
        "PR #117696 (v1.28): pkg/apis/core/v1/defaults.go SetDefaults_PodSpec, SetDefaults_Pod",
};

/// The behaviour table: one row per [`Switch`], each citing its upstream change.
pub const SWITCHES: &[SwitchRow] = &[
    ROW_SECCOMP_ANNOTATION_TO_FIELD_SYNC,
    ROW_SECCOMP_FIELD_TO_ANNOTATION_SYNC,
    ROW_KUBELET_SECCOMP_ANNOTATIONS,
    ROW_SECCOMP_WARNING_127,
    ROW_SECCOMP_WARNING_125,
    ROW_APPARMOR_FIELDS,
    ROW_APPARMOR_ANNOTATION_WARNING,
    ROW_POD_SECURITY_POLICY,
    ROW_KUBELET_APPARMOR_LOADED_CHECK,
    ROW_SECCOMP_DEFAULT_GATE,
    ROW_KUBELET_APPARMOR_HARD_REJECT,
    ROW_APPARMOR_FEATURE_GATE,
    ROW_NODE_READY_APPARMOR_MESSAGE,
    ROW_KUBEADM_MASTER_TAINT,
    ROW_KUBEADM_CONTROL_PLANE_TAINT,
    ROW_KUBEADM_MASTER_LABEL,
    ROW_AUTHORIZE_NODE_WITH_SELECTORS,
    ROW_POD_SECURITY_ADMISSION,
    ROW_POD_SECURITY_RESTRICTED_OVERRIDES,
    ROW_POD_SECURITY_POD_SECCOMP_ANNOTATION_UPDATE,
    ROW_POD_SECURITY_CONTAINER_SECCOMP_ANNOTATION_UPDATE,
    ROW_POD_SECURITY_WARN_DEFAULTS_TO_ENFORCE,
    ROW_POD_SECURITY_SELINUX_USER_ROLE_ALONE,
    ROW_POD_SECURITY_APPARMOR_FIELD_CHECK,
    ROW_HOST_NETWORK_HOST_PORTS_IN_TEMPLATES,
];

impl Switch {
    /// This switch's row of [`SWITCHES`].
    pub fn row(self) -> &'static SwitchRow {
        SWITCHES
            .iter()
            .find(|r| r.switch == self)
            .unwrap_or(&MISSING_ROW)
    }
}

/// Never used: every switch has a row (checked by a test); a switch without
/// one is off everywhere (fail closed to "feature absent").
const MISSING_ROW: SwitchRow = SwitchRow {
    switch: Switch::SeccompAnnotationToFieldSync,
    since: Some(u32::MAX),
    until: Some(0),
    citation: "",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32) -> EmulatedVersion {
        EmulatedVersion::new(minor).expect("in range")
    }

    #[test]
    fn parse_accepts_forms_and_rejects_junk() {
        assert_eq!("1.22".parse::<EmulatedVersion>(), Ok(v(22)));
        assert_eq!("v1.30".parse::<EmulatedVersion>(), Ok(v(30)));
        assert_eq!("1.27.3".parse::<EmulatedVersion>(), Ok(v(27)));
        assert!(matches!(
            "1.21".parse::<EmulatedVersion>(),
            Err(VersionError::OutOfRange { minor: 21 })
        ));
        assert!(matches!(
            "1.33".parse::<EmulatedVersion>(),
            Err(VersionError::OutOfRange { minor: 33 })
        ));
        assert!(matches!(
            "2.1".parse::<EmulatedVersion>(),
            Err(VersionError::Major { .. })
        ));
        for bad in ["", "1", "1.", "1.x", "x.1", "1.2.3.4", "1.22.", "1.-2"] {
            assert!(
                matches!(
                    bad.parse::<EmulatedVersion>(),
                    Err(VersionError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(EmulatedVersion::default().to_string(), "1.32");
    }

    #[test]
    fn every_switch_has_exactly_one_row_with_a_citation() {
        let all = [
            Switch::SeccompAnnotationToFieldSync,
            Switch::SeccompFieldToAnnotationSync,
            Switch::KubeletSeccompAnnotations,
            Switch::SeccompWarningNonFunctional127,
            Switch::SeccompWarningNonFunctional125,
            Switch::AppArmorFields,
            Switch::AppArmorAnnotationDeprecationWarning,
            Switch::PodSecurityPolicy,
            Switch::KubeletAppArmorLoadedCheck,
            Switch::SeccompDefaultGateOnByDefault,
            Switch::KubeletAppArmorHardReject,
            Switch::AppArmorFeatureGateConfigurable,
            Switch::NodeReadyAppArmorMessage,
            Switch::KubeadmMasterTaint,
            Switch::KubeadmControlPlaneTaint,
            Switch::KubeadmMasterLabel,
            Switch::AuthorizeNodeWithSelectors,
            Switch::PodSecurityAdmission,
            Switch::PodSecurityRestrictedOverrides,
            Switch::PodSecurityPodSeccompAnnotationUpdate,
            Switch::PodSecurityContainerSeccompAnnotationUpdate,
            Switch::PodSecurityWarnDefaultsToEnforce,
            Switch::PodSecuritySELinuxUserRoleAlone,
            Switch::PodSecurityAppArmorFieldCheck,
            Switch::HostNetworkHostPortsInTemplates,
        ];
        assert_eq!(SWITCHES.len(), all.len());
        for s in all {
            assert_eq!(SWITCHES.iter().filter(|r| r.switch == s).count(), 1);
            assert!(s.row().citation.contains(".go"), "{s:?}");
        }
    }

    /// (switch, last minor where off/on, first minor where it flips)
    #[test]
    fn boundaries_on_either_side() {
        let cases: &[(Switch, u32, bool, u32, bool)] = &[
            (Switch::SeccompAnnotationToFieldSync, 26, true, 27, false),
            (Switch::SeccompFieldToAnnotationSync, 24, true, 25, false),
            (Switch::KubeletSeccompAnnotations, 24, true, 25, false),
            (Switch::SeccompWarningNonFunctional127, 26, false, 27, true),
            (Switch::SeccompWarningNonFunctional125, 24, false, 25, true),
            (Switch::SeccompWarningNonFunctional125, 26, true, 27, false),
            (Switch::AppArmorFields, 29, false, 30, true),
            (
                Switch::AppArmorAnnotationDeprecationWarning,
                29,
                false,
                30,
                true,
            ),
            (Switch::PodSecurityPolicy, 24, true, 25, false),
            (Switch::KubeletAppArmorLoadedCheck, 23, true, 24, false),
            (Switch::SeccompDefaultGateOnByDefault, 24, false, 25, true),
            (Switch::KubeletAppArmorHardReject, 30, false, 31, true),
            (Switch::AppArmorFeatureGateConfigurable, 30, true, 31, false),
            (Switch::NodeReadyAppArmorMessage, 29, true, 30, false),
            (Switch::KubeadmMasterTaint, 24, true, 25, false),
            (Switch::KubeadmControlPlaneTaint, 23, false, 24, true),
            (Switch::KubeadmMasterLabel, 23, true, 24, false),
            (Switch::AuthorizeNodeWithSelectors, 31, false, 32, true),
            (Switch::PodSecurityAdmission, 22, false, 23, true),
            (Switch::PodSecurityRestrictedOverrides, 23, false, 24, true),
            (
                Switch::PodSecurityPodSeccompAnnotationUpdate,
                24,
                true,
                25,
                false,
            ),
            (
                Switch::PodSecurityContainerSeccompAnnotationUpdate,
                26,
                true,
                27,
                false,
            ),
            (
                Switch::PodSecurityWarnDefaultsToEnforce,
                25,
                false,
                26,
                true,
            ),
            (Switch::PodSecuritySELinuxUserRoleAlone, 25, false, 26, true),
            (Switch::PodSecurityAppArmorFieldCheck, 29, false, 30, true),
            (Switch::HostNetworkHostPortsInTemplates, 27, true, 28, false),
        ];
        for &(s, before, b, after, a) in cases {
            assert_eq!(v(before).has(s), b, "{s:?} at 1.{before}");
            assert_eq!(v(after).has(s), a, "{s:?} at 1.{after}");
        }
        assert!(v(22).has(Switch::SeccompAnnotationToFieldSync));
        assert!(v(32).has(Switch::AppArmorFields));
        assert_eq!(EmulatedVersion::all().count(), 11);
    }
}
