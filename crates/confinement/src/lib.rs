//! Kubernetes AppArmor and seccomp confinement semantics, per emulated
//! Kubernetes version, on pods held as generic JSON.
//!
//! - [`version`]: [`EmulatedVersion`] and the one table of behaviour switches.
//! - [`validate`]: kube-apiserver pod-create behaviour: annotation/field
//!   synchronisation, validation causes with upstream field paths and
//!   messages, and deprecation warnings.
//! - [`resolve`]: the kubelet's choice of the effective seccomp and AppArmor
//!   profile of every container.
//! - [`pod_security`]: Pod Security Admission (the `pod-security.kubernetes.io/*` namespace
//!   labels, the baseline and restricted checks, kube-apiserver's admission decisions).

pub mod apparmor_admit;
pub mod pod;
pub mod pod_security;
pub mod profiles;
pub mod psp;
pub mod resolve;
mod shape;
pub mod validate;
pub mod version;

pub use apparmor_admit::{admit_apparmor, AppArmorAdmission, AppArmorHost};
pub use pod::ShapeError;
pub use resolve::{
    resolve_pod, ContainerConfinement, NodeSettings, ResolveError, ResolvedAppArmor,
    ResolvedSeccomp,
};
pub use validate::{
    admit_create, invalid_message, prepare_for_create, validate_create, warnings_on_create, Cause,
    CreateError, CreateOutcome, Reason, ValidateOptions,
};
pub use version::{EmulatedVersion, Switch, SwitchRow, VersionError, SWITCHES};
