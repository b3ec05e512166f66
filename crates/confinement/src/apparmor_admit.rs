//! The kubelet's AppArmor pod admission, per emulated version.
//!
//! Sources read (kubernetes/kubernetes):
//! - `pkg/kubelet/lifecycle/handlers.go` (`appArmorAdmitHandler.Admit`): a
//!   pending pod whose validation fails is not admitted with reason
//!   `AppArmor` and message `Cannot enforce AppArmor: <err>`.
//! - `pkg/security/apparmor/validate.go` (`Validate`, `validateHost`,
//!   `validateProfile`, `isRequired`): a pod needs AppArmor when some
//!   container has a profile other than `unconfined`; then the host must pass
//!   (`AppArmor disabled by feature-gate`, `AppArmor is not enabled on the
//!   host`) and, up to 1.23, every `localhost/` profile must be loaded
//!   (`profile "<name>" is not loaded`).
//! - `pkg/kubelet/kubelet.go`: the handler sat in `softAdmitHandlers`
//!   (pod held Pending, containers Waiting `Blocked`) until PR #125776
//!   (v1.31) removed soft admission: since then it is a hard rejection
//!   (phase `Failed`, message `Pod was rejected: Cannot enforce AppArmor: ...`).
//!
//! The version boundaries are rows of [`crate::version::SWITCHES`].

use std::collections::BTreeSet;

use serde_json::Value;

use crate::pod::{PodView, Profile, APPARMOR_CONTAINER_ANNOTATION_PREFIX};
use crate::version::{EmulatedVersion, Switch};

/// What the kubelet's AppArmor validator sees of the node.
///
/// With armorlet's Landlock backend the node reports `enabled = true` and
/// `loaded` = the profiles of its registry, although the kernel has no
/// AppArmor LSM: the pod then runs confined by Landlock. That deliberately
/// differs from a real kubelet on such a kernel (which rejects the pod with
/// `AppArmor is not enabled on the host`); enforcing AppArmor profiles
/// without the LSM is the point of armorlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppArmorHost {
    /// The LSM (or armorlet's substitute) can enforce profiles.
    pub enabled: bool,
    /// Names of the loaded profiles (`<apparmor-fs>/profiles`).
    pub loaded: BTreeSet<String>,
    /// The kubelet's `AppArmor` feature gate (`--feature-gates=AppArmor=false`
    /// turns it off; locked on from 1.31).
    pub feature_gate: bool,
}

impl Default for AppArmorHost {
    fn default() -> Self {
        AppArmorHost {
            enabled: false,
            loaded: BTreeSet::new(),
            feature_gate: true,
        }
    }
}

/// The kubelet's admission decision for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArmorAdmission {
    /// The pod may run.
    Admit,
    /// Soft admission (up to 1.30): the pod stays Pending, status reason
    /// `AppArmor`, message `Pod <message>`, containers Waiting with reason
    /// `Blocked`, Warning event `AppArmor` with `message`.
    Block {
        /// `Cannot enforce AppArmor: ...`
        message: String,
    },
    /// Hard rejection (1.31+): phase Failed, reason `AppArmor`, status
    /// message `Pod was rejected: <message>`, Warning event `AppArmor` with
    /// `message`.
    Reject {
        /// `Cannot enforce AppArmor: ...`
        message: String,
    },
}

impl AppArmorAdmission {
    /// The message, if the pod is not admitted.
    pub fn message(&self) -> Option<&str> {
        match self {
            AppArmorAdmission::Admit => None,
            AppArmorAdmission::Block { message } | AppArmorAdmission::Reject { message } => {
                Some(message)
            }
        }
    }
}

/// The kubelet's `AppArmorBetaProfileRuntimeDefault` value.
const RUNTIME_DEFAULT: &str = "runtime/default";
/// The kubelet's `AppArmorBetaProfileNameUnconfined` value.
const UNCONFINED: &str = "unconfined";
/// The kubelet's `AppArmorBetaProfileNamePrefix` value.
const LOCALHOST_PREFIX: &str = "localhost/";

/// Decides admission of a pending pod as the kubelet of `version` does.
///
/// A pod whose JSON is not shaped like a pod is admitted here: the
/// resolution step (`resolve_pod`) reports the shape error and fails the
/// container closed.
pub fn admit_apparmor(
    pod: &Value,
    host: &AppArmorHost,
    version: EmulatedVersion,
) -> AppArmorAdmission {
    let Ok(view) = PodView::parse(pod) else {
        return AppArmorAdmission::Admit;
    };
    let profiles = container_profiles(&view, version);
    if !profiles.iter().any(|p| p != UNCONFINED && !p.is_empty()) {
        return AppArmorAdmission::Admit;
    }
    match validate(&profiles, host, version) {
        Ok(()) => AppArmorAdmission::Admit,
        Err(err) => {
            let message = format!("Cannot enforce AppArmor: {err}");
            if version.has(Switch::KubeletAppArmorHardReject) {
                AppArmorAdmission::Reject { message }
            } else {
                AppArmorAdmission::Block { message }
            }
        }
    }
}

/// `validateHost` then `validateProfile` per container (first error wins).
fn validate(
    profiles: &[String],
    host: &AppArmorHost,
    version: EmulatedVersion,
) -> Result<(), String> {
    if !host.feature_gate && version.has(Switch::AppArmorFeatureGateConfigurable) {
        return Err("AppArmor disabled by feature-gate".into());
    }
    if !host.enabled {
        return Err("AppArmor is not enabled on the host".into());
    }
    if !version.has(Switch::KubeletAppArmorLoadedCheck) {
        return Ok(());
    }
    for p in profiles {
        if p.is_empty() || p == RUNTIME_DEFAULT || p == UNCONFINED {
            continue;
        }
        let Some(name) = p.strip_prefix(LOCALHOST_PREFIX) else {
            return Err(format!("invalid AppArmor profile name: {p:?}"));
        };
        if !host.loaded.contains(name) {
            return Err(format!("profile {name:?} is not loaded"));
        }
    }
    Ok(())
}

/// Each container's profile in annotation form (`""` when unset), read as the
/// kubelet of `version` reads it: container field > container annotation >
/// pod field (fields from 1.30, `pkg/security/apparmor/helpers.go`
/// `GetProfile`); before 1.30 only the annotations exist.
fn container_profiles(view: &PodView, version: EmulatedVersion) -> Vec<String> {
    let fields = version.has(Switch::AppArmorFields);
    view.containers
        .iter()
        .map(|c| {
            if fields {
                if let Some(p) = c.apparmor() {
                    return field_text(p);
                }
            }
            let key = format!("{APPARMOR_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
            if let Some(a) = view.annotations.get(&key) {
                return a.clone();
            }
            match view.pod_apparmor() {
                Some(p) if fields => field_text(p),
                _ => String::new(),
            }
        })
        .collect()
}

/// A profile field in annotation form.
fn field_text(p: &Profile) -> String {
    match p.type_.as_str() {
        "RuntimeDefault" => RUNTIME_DEFAULT.into(),
        "Unconfined" => UNCONFINED.into(),
        "Localhost" => format!(
            "{LOCALHOST_PREFIX}{}",
            p.localhost_profile.as_deref().unwrap_or_default()
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(minor: u32) -> EmulatedVersion {
        EmulatedVersion::new(minor).expect("in range")
    }

    fn annotated(value: &str) -> Value {
        json!({
            "metadata": {"name": "hello-apparmor", "annotations": {
                "container.apparmor.security.beta.kubernetes.io/hello": value}},
            "spec": {"containers": [{"name": "hello", "image": "busybox"}]}
        })
    }

    fn field_pod(type_: &str, name: Option<&str>) -> Value {
        let mut p = json!({"type": type_});
        if let Some(n) = name {
            p["localhostProfile"] = json!(n);
        }
        json!({"metadata": {"name": "p"}, "spec": {"securityContext": {"appArmorProfile": p},
            "containers": [{"name": "hello"}]}})
    }

    fn host(enabled: bool, loaded: &[&str]) -> AppArmorHost {
        AppArmorHost {
            enabled,
            loaded: loaded.iter().map(|s| s.to_string()).collect(),
            feature_gate: true,
        }
    }

    fn block(m: &str) -> AppArmorAdmission {
        AppArmorAdmission::Block {
            message: format!("Cannot enforce AppArmor: {m}"),
        }
    }

    #[test]
    fn tutorial_era_checks_loaded_profiles_softly() {
        let pod = annotated("localhost/k8s-apparmor-example-allow-write");
        assert_eq!(
            admit_apparmor(
                &pod,
                &host(true, &["k8s-apparmor-example-deny-write"]),
                v(22)
            ),
            block("profile \"k8s-apparmor-example-allow-write\" is not loaded")
        );
        let ok = annotated("localhost/k8s-apparmor-example-deny-write");
        assert_eq!(
            admit_apparmor(
                &ok,
                &host(true, &["k8s-apparmor-example-deny-write"]),
                v(22)
            ),
            AppArmorAdmission::Admit
        );
        assert_eq!(
            admit_apparmor(&annotated("localhost/"), &host(true, &[]), v(23)),
            block("profile \"\" is not loaded")
        );
        assert_eq!(
            admit_apparmor(&annotated("nonsense"), &host(true, &[]), v(22)),
            block("invalid AppArmor profile name: \"nonsense\"")
        );
    }

    #[test]
    fn host_errors_and_feature_gate() {
        let pod = annotated("runtime/default");
        assert_eq!(
            admit_apparmor(&pod, &host(false, &[]), v(22)),
            block("AppArmor is not enabled on the host")
        );
        let mut gated = host(true, &[]);
        gated.feature_gate = false;
        assert_eq!(
            admit_apparmor(&pod, &gated, v(30)),
            block("AppArmor disabled by feature-gate")
        );
        // Locked on from 1.31: the gate value is irrelevant.
        assert_eq!(
            admit_apparmor(&pod, &gated, v(31)),
            AppArmorAdmission::Admit
        );
    }

    #[test]
    fn later_kubelets_do_not_check_loaded_profiles() {
        let pod = annotated("localhost/not-loaded");
        assert_eq!(
            admit_apparmor(&pod, &host(true, &[]), v(24)),
            AppArmorAdmission::Admit
        );
        assert_eq!(
            admit_apparmor(&pod, &host(true, &[]), v(32)),
            AppArmorAdmission::Admit
        );
    }

    #[test]
    fn hard_reject_from_1_31_matches_golden() {
        let pod = field_pod("Localhost", Some("k8s-apparmor-example-deny-write"));
        let want = "Cannot enforce AppArmor: AppArmor is not enabled on the host".to_string();
        assert_eq!(
            admit_apparmor(&pod, &host(false, &[]), v(32)),
            AppArmorAdmission::Reject {
                message: want.clone()
            }
        );
        assert_eq!(
            admit_apparmor(&field_pod("RuntimeDefault", None), &host(false, &[]), v(31)),
            AppArmorAdmission::Reject {
                message: want.clone()
            }
        );
        assert_eq!(
            admit_apparmor(&annotated("localhost/x"), &host(false, &[]), v(30)),
            AppArmorAdmission::Block { message: want }
        );
    }

    #[test]
    fn unconfined_or_unset_needs_nothing() {
        assert_eq!(
            admit_apparmor(&annotated("unconfined"), &host(false, &[]), v(22)),
            AppArmorAdmission::Admit
        );
        assert_eq!(
            admit_apparmor(&field_pod("Unconfined", None), &host(false, &[]), v(32)),
            AppArmorAdmission::Admit
        );
        let plain = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            admit_apparmor(&plain, &host(false, &[]), v(32)),
            AppArmorAdmission::Admit
        );
        // Fields do not exist before 1.30: a field-only pod is not confined there.
        let f = field_pod("Localhost", Some("x"));
        assert_eq!(
            admit_apparmor(&f, &host(false, &[]), v(29)),
            AppArmorAdmission::Admit
        );
    }
}
