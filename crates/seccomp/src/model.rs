//! The OCI / Docker seccomp profile JSON model.
//!
//! One type serves both the OCI runtime spec's `linux.seccomp` object and the
//! Docker/moby profile file: the moby-only fields (`archMap`, `includes`,
//! `excludes`, `comment`, the old single `name`) are optional.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arch::Arch;

/// A seccomp action, spelled `SCMP_ACT_*` in profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `SCMP_ACT_KILL`: libseccomp's alias of `SCMP_ACT_KILL_THREAD`.
    Kill,
    /// `SCMP_ACT_KILL_PROCESS`.
    KillProcess,
    /// `SCMP_ACT_KILL_THREAD`.
    KillThread,
    /// `SCMP_ACT_TRAP`: deliver SIGSYS.
    Trap,
    /// `SCMP_ACT_ERRNO`: fail with `errnoRet` (EPERM when absent).
    Errno,
    /// `SCMP_ACT_TRACE`: notify a ptrace tracer with `errnoRet` as message.
    Trace,
    /// `SCMP_ACT_ALLOW`.
    Allow,
    /// `SCMP_ACT_LOG`: allow and log.
    Log,
    /// `SCMP_ACT_NOTIFY`: ask the user-space listener.
    Notify,
}

impl Action {
    /// Every action with its profile spelling.
    pub const ALL: &'static [(Action, &'static str)] = &[
        (Action::Kill, "SCMP_ACT_KILL"),
        (Action::KillProcess, "SCMP_ACT_KILL_PROCESS"),
        (Action::KillThread, "SCMP_ACT_KILL_THREAD"),
        (Action::Trap, "SCMP_ACT_TRAP"),
        (Action::Errno, "SCMP_ACT_ERRNO"),
        (Action::Trace, "SCMP_ACT_TRACE"),
        (Action::Allow, "SCMP_ACT_ALLOW"),
        (Action::Log, "SCMP_ACT_LOG"),
        (Action::Notify, "SCMP_ACT_NOTIFY"),
    ];

    /// The `SCMP_ACT_*` spelling.
    pub fn name(self) -> &'static str {
        Action::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, n)| *n)
            .unwrap_or("SCMP_ACT_?")
    }

    /// Whether `errnoRet` means something for this action (crun rejects it elsewhere).
    pub fn takes_errno(self) -> bool {
        matches!(self, Action::Errno | Action::Trace)
    }
}

/// A word that is not one of the known spellings of a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    /// The kind of word: "action", "operator", "flag".
    pub what: &'static str,
    /// The word as written.
    pub value: String,
}

impl FromStr for Action {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(a, _)| *a)
            .ok_or_else(|| UnknownName {
                what: "action",
                value: s.to_string(),
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An argument comparison operator, spelled `SCMP_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `SCMP_CMP_NE`.
    NotEqual,
    /// `SCMP_CMP_LT`.
    LessThan,
    /// `SCMP_CMP_LE`.
    LessOrEqual,
    /// `SCMP_CMP_EQ`.
    Equal,
    /// `SCMP_CMP_GE`.
    GreaterOrEqual,
    /// `SCMP_CMP_GT`.
    GreaterThan,
    /// `SCMP_CMP_MASKED_EQ`: `(arg & value) == valueTwo`.
    MaskedEqual,
}

impl Operator {
    /// Every operator with its profile spelling.
    pub const ALL: &'static [(Operator, &'static str)] = &[
        (Operator::NotEqual, "SCMP_CMP_NE"),
        (Operator::LessThan, "SCMP_CMP_LT"),
        (Operator::LessOrEqual, "SCMP_CMP_LE"),
        (Operator::Equal, "SCMP_CMP_EQ"),
        (Operator::GreaterOrEqual, "SCMP_CMP_GE"),
        (Operator::GreaterThan, "SCMP_CMP_GT"),
        (Operator::MaskedEqual, "SCMP_CMP_MASKED_EQ"),
    ];

    /// The `SCMP_CMP_*` spelling.
    pub fn name(self) -> &'static str {
        Operator::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, n)| *n)
            .unwrap_or("SCMP_CMP_?")
    }
}

impl FromStr for Operator {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operator::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(a, _)| *a)
            .ok_or_else(|| UnknownName {
                what: "operator",
                value: s.to_string(),
            })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `flags` entry: a `SECCOMP_FILTER_FLAG_*` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `SECCOMP_FILTER_FLAG_TSYNC`.
    Tsync,
    /// `SECCOMP_FILTER_FLAG_LOG`.
    Log,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
    SpecAllow,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
    WaitKillableRecv,
}

impl Flag {
    /// Every flag with its spelling and kernel bit.
    pub const ALL: &'static [(Flag, &'static str, u32)] = &[
        (Flag::Tsync, "SECCOMP_FILTER_FLAG_TSYNC", 1),
        (Flag::Log, "SECCOMP_FILTER_FLAG_LOG", 2),
        (Flag::SpecAllow, "SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
        (
            Flag::WaitKillableRecv,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            32,
        ),
    ];

    /// The spelling.
    pub fn name(self) -> &'static str {
        Flag::ALL
            .iter()
            .find(|(f, _, _)| *f == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("SECCOMP_FILTER_FLAG_?")
    }

    /// The kernel's bit for `seccomp(2)`.
    pub fn bit(self) -> u32 {
        Flag::ALL
            .iter()
            .find(|(f, _, _)| *f == self)
            .map(|(_, _, b)| *b)
            .unwrap_or(0)
    }
}

impl FromStr for Flag {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flag::ALL
            .iter()
            .find(|(_, n, _)| *n == s)
            .map(|(f, _, _)| *f)
            .ok_or_else(|| UnknownName {
                what: "flag",
                value: s.to_string(),
            })
    }
}

macro_rules! serde_via_str {
    ($t:ty, $name:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($name(*self))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_str!(Action, Action::name);
serde_via_str!(Operator, Operator::name);
serde_via_str!(Flag, Flag::name);
serde_via_str!(Arch, Arch::scmp_name);

/// A kernel version as `includes.minKernel` writes it: `"4.8"` or `"5.10.3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// The kernel number (the `4` of 4.8).
    pub major: u32,
    /// The major revision (the `8` of 4.8).
    pub minor: u32,
    /// The minor revision; profiles rarely give it.
    pub patch: u32,
}

/// A kernel version string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid kernel version {0:?} (expected MAJOR.MINOR)")]
pub struct BadKernelVersion(pub String);

impl FromStr for KernelVersion {
    type Err = BadKernelVersion;
    /// Parses `MAJOR.MINOR[.PATCH][-anything]`, as `uname -r` prints it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadKernelVersion(s.to_string());
        let core = s
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap_or("");
        let mut parts = core.split('.');
        let mut num = |required: bool| -> Result<u32, BadKernelVersion> {
            match parts.next() {
                Some(p) if !p.is_empty() => p.parse().map_err(|_| bad()),
                _ if required => Err(bad()),
                _ => Ok(0),
            }
        };
        let v = KernelVersion {
            major: num(true)?,
            minor: num(true)?,
            patch: num(false)?,
        };
        Ok(v)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(f, "{}.{}", self.major, self.minor)
        } else {
            write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An architecture name in `includes.arches` / `excludes.arches`: Go's `GOARCH`
/// or a libseccomp name. Kept as written; it must name a known architecture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArchName {
    /// As written in the profile.
    pub name: String,
    /// What it denotes.
    pub arch: Arch,
}

impl Serialize for ArchName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for ArchName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let arch = name.parse().map_err(serde::de::Error::custom)?;
        Ok(ArchName { name, arch })
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The whole profile: the OCI `linux.seccomp` object or a Docker profile file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The action for syscalls no rule matches.
    pub default_action: Action,
    /// The errno for an `SCMP_ACT_ERRNO` (or TRACE message) default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Architectures the filter covers besides the native one.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<Arch>,
    /// Docker's per-native-architecture list of sub-architectures.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMapEntry>,
    /// The rules, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub syscalls: Vec<SyscallRule>,
    /// `seccomp(2)` filter flags.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<Flag>,
    /// The unix socket a `SCMP_ACT_NOTIFY` listener fd is sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    /// Opaque data sent with the listener fd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    /// The native architecture this entry applies to.
    pub architecture: Arch,
    /// The architectures added when running on it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<Arch>,
}

/// One entry of `syscalls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// The syscall names the rule applies to.
    #[serde(default, deserialize_with = "null_as_default")]
    pub names: Vec<String>,
    /// The old Docker format's single name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What to do when the rule matches.
    pub action: Action,
    /// The errno for `SCMP_ACT_ERRNO` (or message for `SCMP_ACT_TRACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument comparisons, all of which must hold.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<ArgCmp>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Conditions for the rule to be part of the filter (moby).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Conditions::is_empty"
    )]
    pub includes: Conditions,
    /// Conditions that drop the rule (moby).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Conditions::is_empty"
    )]
    pub excludes: Conditions,
}

impl SyscallRule {
    /// `names` plus the old format's `name`.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .chain(self.name.as_deref())
    }
}

/// One argument comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgCmp {
    /// The argument number, 0 to 5.
    pub index: u32,
    /// The operand (the mask for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The second operand (the value for `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value_two: u64,
    /// The operator.
    pub op: Operator,
}

/// `includes` / `excludes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    /// Capabilities (`CAP_*`): includes needs all of them, excludes any.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    /// Native architectures (Go or libseccomp names).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<ArchName>,
    /// Minimum kernel version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<KernelVersion>,
}

impl Conditions {
    /// True when no condition is set.
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}
