//! The kubelet's choice of each container's effective seccomp and AppArmor
//! profile.
//!
//! Sources read (kubernetes/kubernetes):
//! - `pkg/kubelet/kuberuntime/helpers.go` (`getSeccompProfile`,
//!   `fieldSeccompProfile`; before v1.25 also the annotation fallback) and
//!   `pkg/kubelet/kuberuntime/security_context.go`
//!   (`determineEffectiveSecurityContext`): container field > pod field >
//!   `RuntimeDefault` when `seccompDefault` is on, else `Unconfined`;
//!   `Localhost` becomes `filepath.Join(<root-dir>/seccomp, localhostProfile)`.
//! - `pkg/security/apparmor/helpers.go` (`GetProfile`,
//!   `getProfileFromPodAnnotations`): container field > container annotation >
//!   pod field.
//!
//! Privileged containers: containerd (and CRI-O) apply no seccomp filter and
//! no `runtime/default` AppArmor profile to privileged containers; the
//! recorded 1.32 node shows a privileged pod with a Localhost seccomp profile
//! running with `Seccomp: 0` (`/work/shared/docs/k8s-v1.32-golden.md`). The
//! resolution here reports that effective result.
//!
//! Deliberately stricter than the kubelet (fail closed): a seccomp
//! `localhostProfile` that is absolute or has a `..` segment is refused here
//! (the apiserver rejects it too, but a pod may come from elsewhere), and an
//! unknown profile type is an error rather than `Unconfined`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::pod::{
    ContainerKind, ContainerView, PodView, Profile, ShapeError,
    APPARMOR_CONTAINER_ANNOTATION_PREFIX, SECCOMP_CONTAINER_ANNOTATION_PREFIX,
    SECCOMP_POD_ANNOTATION,
};
use crate::version::{EmulatedVersion, Switch};

/// The kubelet's default `--root-dir`.
pub const DEFAULT_KUBELET_ROOT: &str = "/var/lib/kubelet";

/// The effective seccomp confinement of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedSeccomp {
    /// No filter.
    Unconfined,
    /// The runtime's default filter.
    RuntimeDefault,
    /// A profile file under the kubelet's seccomp root.
    Localhost {
        /// `<root-dir>/seccomp/<localhostProfile>`, cleaned.
        path: PathBuf,
    },
}

/// The effective AppArmor confinement of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedAppArmor {
    /// Nothing specified: the runtime decides (containerd applies its
    /// default profile to unprivileged containers when AppArmor is enabled).
    Unset,
    /// `runtime/default`.
    RuntimeDefault,
    /// `unconfined` (also what privileged containers get instead of the
    /// runtime default).
    Unconfined,
    /// `localhost/<name>`: a profile loaded on the node.
    Localhost {
        /// The profile name, as given.
        name: String,
    },
}

/// Why a seccomp `localhostProfile` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// It is empty.
    Empty,
    /// It starts with `/`.
    Absolute,
    /// It has a `..` segment.
    ParentSegment,
    /// It contains a NUL byte.
    Nul,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathProblem::Empty => "it is empty",
            PathProblem::Absolute => "it is an absolute path",
            PathProblem::ParentSegment => "it contains a '..' segment",
            PathProblem::Nul => "it contains a NUL byte",
        })
    }
}

/// Why a container's confinement cannot be resolved (the container must not
/// start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The pod JSON is malformed.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// `Localhost` seccomp without a profile name (kubelet text).
    #[error("container {container:?}: localhostProfile must be set if seccompProfile type is Localhost.")]
    SeccompLocalhostMissing {
        /// Container name.
        container: String,
    },
    /// The seccomp profile would be read from outside the seccomp root.
    #[error("container {container:?}: refusing seccomp localhost profile {profile:?}: {problem}; it must be a relative path below the kubelet's seccomp directory")]
    SeccompProfilePath {
        /// Container name.
        container: String,
        /// The `localhostProfile` as given.
        profile: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A seccomp `type` that is none of the three.
    #[error("container {container:?}: unknown seccomp profile type {type_:?}")]
    UnknownSeccompType {
        /// Container name.
        container: String,
        /// The type as given.
        type_: String,
    },
    /// A seccomp annotation value the kubelet cannot use (before 1.25).
    #[error("container {container:?}: invalid seccomp annotation value {value:?}")]
    InvalidSeccompAnnotation {
        /// Container name.
        container: String,
        /// The annotation value.
        value: String,
    },
    /// `Localhost` AppArmor without a (non-empty) profile name.
    #[error("container {container:?}: missing localhost apparmor profile name")]
    AppArmorLocalhostMissing {
        /// Container name.
        container: String,
    },
    /// An AppArmor `type` that is none of the three (kubelet text).
    #[error("container {container:?}: unknown apparmor profile type: {type_:?}")]
    UnknownAppArmorType {
        /// Container name.
        container: String,
        /// The type as given.
        type_: String,
    },
}

/// Node-side inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    /// The emulated release of the kubelet.
    pub version: EmulatedVersion,
    /// The kubelet's `--root-dir`; seccomp profiles live in `<root>/seccomp`.
    pub kubelet_root_dir: PathBuf,
    /// KubeletConfiguration `seccompDefault`.
    pub seccomp_default: bool,
    /// `--feature-gates=SeccompDefault=...`; `None` uses the version's
    /// default.
    pub seccomp_default_gate: Option<bool>,
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self {
            version: EmulatedVersion::DEFAULT,
            kubelet_root_dir: PathBuf::from(DEFAULT_KUBELET_ROOT),
            seccomp_default: false,
            seccomp_default_gate: None,
        }
    }
}

impl NodeSettings {
    /// Whether an unset seccomp profile means `RuntimeDefault`.
    pub fn seccomp_default_effective(&self) -> bool {
        let gate = self
            .seccomp_default_gate
            .unwrap_or_else(|| self.version.has(Switch::SeccompDefaultGateOnByDefault));
        self.seccomp_default && gate
    }

    /// `<root-dir>/seccomp`.
    pub fn seccomp_root(&self) -> PathBuf {
        self.kubelet_root_dir.join("seccomp")
    }
}

/// The resolved confinement of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfinement {
    /// Which list the container is in.
    pub kind: ContainerKind,
    /// Index in that list.
    pub index: usize,
    /// Container name.
    pub name: String,
    /// `securityContext.privileged`.
    pub privileged: bool,
    /// Effective seccomp.
    pub seccomp: ResolvedSeccomp,
    /// Effective AppArmor.
    pub apparmor: ResolvedAppArmor,
}

/// Resolves every container of the pod (init, regular, ephemeral).
pub fn resolve_pod(
    pod: &Value,
    node: &NodeSettings,
) -> Result<Vec<ContainerConfinement>, ResolveError> {
    let view = PodView::parse(pod)?;
    view.containers
        .iter()
        .map(|c| resolve_container(&view, c, node))
        .collect()
}

/// Resolves one container of an already parsed pod.
pub fn resolve_container(
    view: &PodView,
    c: &ContainerView,
    node: &NodeSettings,
) -> Result<ContainerConfinement, ResolveError> {
    let seccomp = resolve_seccomp(view, c, node)?;
    let apparmor = resolve_apparmor(view, c)?;
    let privileged = c.privileged();
    let (seccomp, apparmor) = if privileged {
        let apparmor = match apparmor {
            ResolvedAppArmor::Unset | ResolvedAppArmor::RuntimeDefault => {
                ResolvedAppArmor::Unconfined
            }
            other => other,
        };
        (ResolvedSeccomp::Unconfined, apparmor)
    } else {
        (seccomp, apparmor)
    };
    Ok(ContainerConfinement {
        kind: c.kind,
        index: c.index,
        name: c.name.clone(),
        privileged,
        seccomp,
        apparmor,
    })
}

fn resolve_seccomp(
    view: &PodView,
    c: &ContainerView,
    node: &NodeSettings,
) -> Result<ResolvedSeccomp, ResolveError> {
    let annotations = node.version.has(Switch::KubeletSeccompAnnotations);
    if let Some(p) = c.seccomp() {
        return seccomp_from_field(p, &c.name, node);
    }
    if annotations {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
        if let Some(a) = view.annotations.get(&key) {
            return seccomp_from_annotation(a, &c.name, node);
        }
    }
    if let Some(p) = view.pod_seccomp() {
        return seccomp_from_field(p, &c.name, node);
    }
    if annotations {
        if let Some(a) = view.annotations.get(SECCOMP_POD_ANNOTATION) {
            return seccomp_from_annotation(a, &c.name, node);
        }
    }
    Ok(if node.seccomp_default_effective() {
        ResolvedSeccomp::RuntimeDefault
    } else {
        ResolvedSeccomp::Unconfined
    })
}

fn seccomp_from_field(
    p: &Profile,
    container: &str,
    node: &NodeSettings,
) -> Result<ResolvedSeccomp, ResolveError> {
    match p.type_.as_str() {
        "RuntimeDefault" => Ok(ResolvedSeccomp::RuntimeDefault),
        "Unconfined" => Ok(ResolvedSeccomp::Unconfined),
        "Localhost" => match p.localhost_profile.as_deref() {
            None | Some("") => Err(ResolveError::SeccompLocalhostMissing {
                container: container.into(),
            }),
            Some(name) => localhost_path(name, container, node),
        },
        other => Err(ResolveError::UnknownSeccompType {
            container: container.into(),
            type_: other.into(),
        }),
    }
}

fn seccomp_from_annotation(
    a: &str,
    container: &str,
    node: &NodeSettings,
) -> Result<ResolvedSeccomp, ResolveError> {
    match a {
        "runtime/default" | "docker/default" => Ok(ResolvedSeccomp::RuntimeDefault),
        "unconfined" => Ok(ResolvedSeccomp::Unconfined),
        _ => match a.strip_prefix("localhost/") {
            Some(name) => localhost_path(name, container, node),
            None => Err(ResolveError::InvalidSeccompAnnotation {
                container: container.into(),
                value: a.into(),
            }),
        },
    }
}

/// `filepath.Join(<root>/seccomp, name)` for a name that must stay below the
/// root.
fn localhost_path(
    name: &str,
    container: &str,
    node: &NodeSettings,
) -> Result<ResolvedSeccomp, ResolveError> {
    let refuse = |problem| ResolveError::SeccompProfilePath {
        container: container.into(),
        profile: name.into(),
        problem,
    };
    if name.contains('\0') {
        return Err(refuse(PathProblem::Nul));
    }
    if name.starts_with('/') {
        return Err(refuse(PathProblem::Absolute));
    }
    if name.split('/').any(|s| s == "..") {
        return Err(refuse(PathProblem::ParentSegment));
    }
    let segments: Vec<&str> = name
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segments.is_empty() {
        return Err(refuse(PathProblem::Empty));
    }
    let mut path = node.seccomp_root();
    for s in segments {
        path.push(Path::new(s));
    }
    Ok(ResolvedSeccomp::Localhost { path })
}

fn resolve_apparmor(view: &PodView, c: &ContainerView) -> Result<ResolvedAppArmor, ResolveError> {
    if let Some(p) = c.apparmor() {
        return apparmor_from_field(p, &c.name);
    }
    let key = format!("{APPARMOR_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
    if let Some(a) = view.annotations.get(&key) {
        match a.as_str() {
            "runtime/default" => return Ok(ResolvedAppArmor::RuntimeDefault),
            "unconfined" => return Ok(ResolvedAppArmor::Unconfined),
            _ => {
                if let Some(name) = a.strip_prefix("localhost/") {
                    return localhost_apparmor(name, &c.name);
                }
                // Upstream: an unrecognised annotation is ignored here (and
                // rejected by API validation).
            }
        }
    }
    if let Some(p) = view.pod_apparmor() {
        return apparmor_from_field(p, &c.name);
    }
    Ok(ResolvedAppArmor::Unset)
}

fn apparmor_from_field(p: &Profile, container: &str) -> Result<ResolvedAppArmor, ResolveError> {
    match p.type_.as_str() {
        "RuntimeDefault" => Ok(ResolvedAppArmor::RuntimeDefault),
        "Unconfined" => Ok(ResolvedAppArmor::Unconfined),
        "Localhost" => match p.localhost_profile.as_deref() {
            None => Err(ResolveError::AppArmorLocalhostMissing {
                container: container.into(),
            }),
            Some(name) => localhost_apparmor(name, container),
        },
        other => Err(ResolveError::UnknownAppArmorType {
            container: container.into(),
            type_: other.into(),
        }),
    }
}

fn localhost_apparmor(name: &str, container: &str) -> Result<ResolvedAppArmor, ResolveError> {
    if name.is_empty() {
        // PR #108143: `localhost/` alone must not degrade to unconfined.
        return Err(ResolveError::AppArmorLocalhostMissing {
            container: container.into(),
        });
    }
    Ok(ResolvedAppArmor::Localhost { name: name.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(minor: u32) -> NodeSettings {
        NodeSettings {
            version: EmulatedVersion::new(minor).expect("in range"),
            ..NodeSettings::default()
        }
    }

    fn one(pod: Value, n: &NodeSettings) -> Result<ContainerConfinement, ResolveError> {
        let mut all = resolve_pod(&pod, n)?;
        assert_eq!(all.len(), 1);
        Ok(all.remove(0))
    }

    fn ctr(sc: Value) -> Value {
        json!({"name": "c", "securityContext": sc})
    }

    #[test]
    fn seccomp_precedence_and_types() {
        let n = node(32);
        let lh = |p: &str| ResolvedSeccomp::Localhost {
            path: PathBuf::from("/var/lib/kubelet/seccomp").join(p),
        };
        let cases: Vec<(Value, ResolvedSeccomp)> = vec![
            (
                json!({"spec": {"containers": [{"name": "c"}]}}),
                ResolvedSeccomp::Unconfined,
            ),
            (
                json!({"spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "c"}]}}),
                ResolvedSeccomp::RuntimeDefault,
            ),
            (
                json!({"spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [ctr(json!({"seccompProfile": {"type": "Unconfined"}}))]}}),
                ResolvedSeccomp::Unconfined,
            ),
            (
                json!({"spec": {"containers": [ctr(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}}))]}}),
                lh("profiles/audit.json"),
            ),
            (
                json!({"spec": {"containers": [ctr(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "./profiles//a.json"}}))]}}),
                lh("profiles/a.json"),
            ),
            // 1.32 kubelet ignores annotations.
            (
                json!({"metadata": {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}},
                    "spec": {"containers": [{"name": "c"}]}}),
                ResolvedSeccomp::Unconfined,
            ),
        ];
        for (pod, want) in cases {
            assert_eq!(one(pod.clone(), &n).expect("ok").seccomp, want, "{pod}");
        }
    }

    #[test]
    fn seccomp_annotations_honoured_only_up_to_1_24() {
        let pod = json!({"metadata": {"annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "localhost/pod.json",
                "container.seccomp.security.alpha.kubernetes.io/c": "docker/default"}},
            "spec": {"containers": [{"name": "c"}, {"name": "d"}]}});
        let at24 = resolve_pod(&pod, &node(24)).expect("ok");
        assert_eq!(at24[0].seccomp, ResolvedSeccomp::RuntimeDefault);
        assert_eq!(
            at24[1].seccomp,
            ResolvedSeccomp::Localhost {
                path: PathBuf::from("/var/lib/kubelet/seccomp/pod.json")
            }
        );
        let at25 = resolve_pod(&pod, &node(25)).expect("ok");
        assert_eq!(at25[0].seccomp, ResolvedSeccomp::Unconfined);
        assert_eq!(at25[1].seccomp, ResolvedSeccomp::Unconfined);
        // Container annotation beats the pod field before 1.25.
        let mixed = json!({"metadata": {"annotations": {
                "container.seccomp.security.alpha.kubernetes.io/c": "unconfined"}},
            "spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "c"}]}});
        assert_eq!(
            one(mixed.clone(), &node(22)).expect("ok").seccomp,
            ResolvedSeccomp::Unconfined
        );
        assert_eq!(
            one(mixed, &node(25)).expect("ok").seccomp,
            ResolvedSeccomp::RuntimeDefault
        );
        let bad = json!({"metadata": {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "bogus"}},
            "spec": {"containers": [{"name": "c"}]}});
        assert!(matches!(
            one(bad, &node(22)),
            Err(ResolveError::InvalidSeccompAnnotation { .. })
        ));
    }

    #[test]
    fn seccomp_default_gate_by_version() {
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        let mut n = node(24);
        n.seccomp_default = true;
        assert_eq!(
            one(pod.clone(), &n).expect("ok").seccomp,
            ResolvedSeccomp::Unconfined
        );
        n.seccomp_default_gate = Some(true);
        assert_eq!(
            one(pod.clone(), &n).expect("ok").seccomp,
            ResolvedSeccomp::RuntimeDefault
        );
        let mut n = node(25);
        n.seccomp_default = true;
        assert_eq!(
            one(pod.clone(), &n).expect("ok").seccomp,
            ResolvedSeccomp::RuntimeDefault
        );
        n.seccomp_default = false;
        assert_eq!(
            one(pod, &n).expect("ok").seccomp,
            ResolvedSeccomp::Unconfined
        );
    }

    #[test]
    fn seccomp_localhost_fails_closed() {
        let n = node(32);
        let cases = [
            ("../../etc/passwd", Some(PathProblem::ParentSegment)),
            ("profiles/../../x", Some(PathProblem::ParentSegment)),
            ("/etc/passwd", Some(PathProblem::Absolute)),
            ("a\0b", Some(PathProblem::Nul)),
            ("./", Some(PathProblem::Empty)),
            ("..foo/bar..", None),
        ];
        for (name, want) in cases {
            let pod = json!({"spec": {"containers": [ctr(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": name}}))]}});
            match (one(pod, &n), want) {
                (Err(ResolveError::SeccompProfilePath { problem, .. }), Some(w)) => {
                    assert_eq!(problem, w, "{name:?}")
                }
                (Ok(c), None) => assert!(matches!(c.seccomp, ResolvedSeccomp::Localhost { .. })),
                (other, _) => panic!("{name:?}: {other:?}"),
            }
        }
        for lp in [json!(null), json!("")] {
            let pod = json!({"spec": {"containers": [ctr(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": lp}}))]}});
            let err = one(pod, &n).expect_err("must fail");
            assert_eq!(
                err.to_string(),
                "container \"c\": localhostProfile must be set if seccompProfile type is Localhost."
            );
        }
        let pod =
            json!({"spec": {"containers": [ctr(json!({"seccompProfile": {"type": "Bogus"}}))]}});
        assert!(matches!(
            one(pod, &n),
            Err(ResolveError::UnknownSeccompType { .. })
        ));
        // Traversal is refused even for privileged containers.
        let pod = json!({"spec": {"containers": [ctr(json!({"privileged": true, "seccompProfile": {"type": "Localhost", "localhostProfile": "/x"}}))]}});
        assert!(one(pod, &n).is_err());
    }

    #[test]
    fn apparmor_precedence() {
        let n = node(32);
        let lh = |s: &str| ResolvedAppArmor::Localhost { name: s.into() };
        let ann = |v: &str| json!({"container.apparmor.security.beta.kubernetes.io/c": v});
        let cases: Vec<(Value, ResolvedAppArmor)> = vec![
            (
                json!({"spec": {"containers": [{"name": "c"}]}}),
                ResolvedAppArmor::Unset,
            ),
            // container field beats annotation and pod field
            (
                json!({"metadata": {"annotations": ann("localhost/a")},
                    "spec": {"securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}},
                        "containers": [ctr(json!({"appArmorProfile": {"type": "Unconfined"}}))]}}),
                ResolvedAppArmor::Unconfined,
            ),
            // annotation beats pod field
            (
                json!({"metadata": {"annotations": ann("localhost/a")},
                    "spec": {"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "c"}]}}),
                lh("a"),
            ),
            (
                json!({"metadata": {"annotations": ann("runtime/default")}, "spec": {"containers": [{"name": "c"}]}}),
                ResolvedAppArmor::RuntimeDefault,
            ),
            // unrecognised annotation falls through to the pod field
            (
                json!({"metadata": {"annotations": ann("nonsense/value")},
                    "spec": {"securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}, "containers": [{"name": "c"}]}}),
                lh("p"),
            ),
            // padded names are kept as given (the node then finds no such profile)
            (
                json!({"metadata": {"annotations": ann("localhost/  x  ")}, "spec": {"containers": [{"name": "c"}]}}),
                lh("  x  "),
            ),
        ];
        for (pod, want) in cases {
            assert_eq!(one(pod.clone(), &n).expect("ok").apparmor, want, "{pod}");
        }
        let empty = json!({"metadata": {"annotations": ann("localhost/")}, "spec": {"containers": [{"name": "c"}]}});
        assert!(matches!(
            one(empty, &n),
            Err(ResolveError::AppArmorLocalhostMissing { .. })
        ));
        let no_name = json!({"spec": {"containers": [ctr(json!({"appArmorProfile": {"type": "Localhost"}}))]}});
        assert!(matches!(
            one(no_name, &n),
            Err(ResolveError::AppArmorLocalhostMissing { .. })
        ));
        let bogus =
            json!({"spec": {"containers": [ctr(json!({"appArmorProfile": {"type": "X"}}))]}});
        assert_eq!(
            one(bogus, &n).expect_err("fails").to_string(),
            "container \"c\": unknown apparmor profile type: \"X\""
        );
    }

    #[test]
    fn privileged_containers() {
        let n = node(32);
        let pod = |aa: Value| {
            json!({"spec": {"containers": [ctr(json!({"privileged": true, "appArmorProfile": aa,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/violation.json"}}))]}})
        };
        let c = one(pod(json!({"type": "RuntimeDefault"})), &n).expect("ok");
        assert!(c.privileged);
        assert_eq!(c.seccomp, ResolvedSeccomp::Unconfined);
        assert_eq!(c.apparmor, ResolvedAppArmor::Unconfined);
        let c = one(pod(json!(null)), &n).expect("ok");
        assert_eq!(c.apparmor, ResolvedAppArmor::Unconfined);
        let c = one(
            pod(json!({"type": "Localhost", "localhostProfile": "deny"})),
            &n,
        )
        .expect("ok");
        assert_eq!(
            c.apparmor,
            ResolvedAppArmor::Localhost {
                name: "deny".into()
            }
        );
    }

    #[test]
    fn custom_root_and_all_container_kinds() {
        let n = NodeSettings {
            kubelet_root_dir: PathBuf::from("/tmp/k"),
            ..node(32)
        };
        let pod = json!({"spec": {
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}},
            "initContainers": [{"name": "i"}], "containers": [{"name": "c"}], "ephemeralContainers": [{"name": "e"}]}});
        let all = resolve_pod(&pod, &n).expect("ok");
        let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["i", "c", "e"]);
        for c in all {
            assert_eq!(
                c.seccomp,
                ResolvedSeccomp::Localhost {
                    path: PathBuf::from("/tmp/k/seccomp/x.json")
                }
            );
        }
        assert!(matches!(
            resolve_pod(&json!("x"), &n),
            Err(ResolveError::Shape(_))
        ));
    }
}
