//! Applying `includes` / `excludes` and `archMap` for one container, as moby
//! and containers/common do when they turn their profile file into the OCI
//! `linux.seccomp` object.
//!
//! Semantics (moby `profiles/seccomp/seccomp_linux.go`, same in containers/common):
//! - `includes.caps`: every listed capability must be in the bounding set;
//!   `excludes.caps`: any listed capability drops the rule.
//! - `includes.arches` / `excludes.arches`: matched against the *native*
//!   architecture (Go's `GOARCH`), not per filter architecture.
//! - `includes.minKernel`: the running kernel must be at least that version;
//!   `excludes.minKernel`: a kernel at least that version drops the rule.
//! - `archMap`: the entry whose `architecture` is the native one adds itself
//!   and its `subArchitectures` to `architectures`.

use std::collections::BTreeSet;

use crate::arch::Arch;
use crate::model::{Action, Conditions, Flag, KernelVersion, Profile, SyscallRule};

/// The capabilities a container gets by default from Docker, containerd and
/// CRI-O (the bounding set of an unprivileged pod container).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability of Linux 6.1 (for privileged-like contexts in tests and tools), in bit-number
/// order (`linux/capability.h`): index `i` is capability number `i`. The runtime and the Landlock
/// backend rely on that order to read capability masks.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The facts about the container and host that `includes`/`excludes` test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveContext {
    /// The native architecture the container runs on.
    pub arch: Arch,
    /// The container's bounding capability set (`CAP_*` names).
    pub caps: BTreeSet<String>,
    /// The running kernel.
    pub kernel_version: KernelVersion,
}

impl ResolveContext {
    /// A context with the given facts.
    pub fn new<I, S>(arch: Arch, caps: I, kernel_version: KernelVersion) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ResolveContext {
            arch,
            caps: caps.into_iter().map(Into::into).collect(),
            kernel_version,
        }
    }

    /// The default container on this host: native arch, [`DEFAULT_CAPS`] and the
    /// running kernel (read from `/proc/sys/kernel/osrelease`; 0.0 if unreadable,
    /// which makes every `minKernel` include fail closed).
    pub fn host_default() -> Self {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(KernelVersion {
                major: 0,
                minor: 0,
                patch: 0,
            });
        ResolveContext::new(Arch::native(), DEFAULT_CAPS.iter().copied(), kernel)
    }

    fn included(&self, c: &Conditions) -> bool {
        c.caps.iter().all(|cap| self.caps.contains(cap))
            && (c.arches.is_empty() || c.arches.iter().any(|a| a.arch == self.arch))
            && c.min_kernel.is_none_or(|k| self.kernel_version >= k)
    }

    fn excluded(&self, c: &Conditions) -> bool {
        c.caps.iter().any(|cap| self.caps.contains(cap))
            || c.arches.iter().any(|a| a.arch == self.arch)
            || c.min_kernel.is_some_and(|k| self.kernel_version >= k)
    }
}

/// A rule that applies to this container, with its place in the source profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRule {
    /// Its index in the source profile's `syscalls`.
    pub index: usize,
    /// The rule, with `includes`/`excludes` cleared.
    pub rule: SyscallRule,
}

/// A profile with the conditional parts decided: what the runtime receives.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProfile {
    /// The default action.
    pub default_action: Action,
    /// Its errno.
    pub default_errno_ret: Option<u32>,
    /// The native architecture (always covered by the filter).
    pub native: Arch,
    /// Every architecture the filter covers, native first, without duplicates.
    pub architectures: Vec<Arch>,
    /// The rules that apply, in order.
    pub rules: Vec<ResolvedRule>,
    /// Filter flags.
    pub flags: Vec<Flag>,
    /// The notify listener's socket.
    pub listener_path: Option<String>,
    /// The notify listener's metadata.
    pub listener_metadata: Option<String>,
}

impl Profile {
    /// Decides `includes`/`excludes` and `archMap` for `ctx`.
    pub fn resolve(&self, ctx: &ResolveContext) -> ResolvedProfile {
        let mut architectures = vec![ctx.arch];
        let mut push = |a: Arch| {
            if !architectures.contains(&a) {
                architectures.push(a);
            }
        };
        self.architectures.iter().copied().for_each(&mut push);
        for entry in self.arch_map.iter().filter(|e| e.architecture == ctx.arch) {
            push(entry.architecture);
            entry.sub_architectures.iter().copied().for_each(&mut push);
        }
        let rules = self
            .syscalls
            .iter()
            .enumerate()
            .filter(|(_, r)| ctx.included(&r.includes) && !ctx.excluded(&r.excludes))
            .map(|(index, r)| ResolvedRule {
                index,
                rule: SyscallRule {
                    includes: Conditions::default(),
                    excludes: Conditions::default(),
                    ..r.clone()
                },
            })
            .collect();
        ResolvedProfile {
            default_action: self.default_action,
            default_errno_ret: self.default_errno_ret,
            native: ctx.arch,
            architectures,
            rules,
            flags: self.flags.clone(),
            listener_path: self.listener_path.clone(),
            listener_metadata: self.listener_metadata.clone(),
        }
    }
}

impl ResolvedProfile {
    /// The OCI `linux.seccomp` object a runtime would receive.
    pub fn to_profile(&self) -> Profile {
        Profile {
            default_action: self.default_action,
            default_errno_ret: self.default_errno_ret,
            architectures: self.architectures.clone(),
            arch_map: Vec::new(),
            syscalls: self.rules.iter().map(|r| r.rule.clone()).collect(),
            flags: self.flags.clone(),
            listener_path: self.listener_path.clone(),
            listener_metadata: self.listener_metadata.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &str) -> KernelVersion {
        s.parse().unwrap()
    }

    const PROFILE: &str = r#"{"defaultAction":"SCMP_ACT_ERRNO",
      "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
                 {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
      "syscalls":[
        {"names":["read"],"action":"SCMP_ACT_ALLOW"},
        {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
        {"names":["bpf"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN","CAP_BPF"]}},
        {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"excludes":{"caps":["CAP_SYS_ADMIN"]}},
        {"names":["sync_file_range2"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm","arm64"]}},
        {"names":["clone"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["s390","s390x"]}},
        {"names":["old"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"5.0"}}
      ]}"#;

    fn names(r: &ResolvedProfile) -> Vec<&str> {
        r.rules.iter().map(|r| r.rule.names[0].as_str()).collect()
    }

    #[test]
    fn includes_and_excludes_follow_moby() {
        let p = Profile::from_json(PROFILE).unwrap();
        let r = p.resolve(&ResolveContext::new(
            Arch::X86_64,
            ["CAP_SYS_ADMIN"],
            kv("4.9"),
        ));
        assert_eq!(names(&r), ["read", "ptrace", "clone", "old"]);
        assert_eq!(r.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
        assert_eq!(r.rules[2].index, 5);

        let r = p.resolve(&ResolveContext::new(
            Arch::Aarch64,
            ["CAP_SYS_ADMIN", "CAP_BPF"],
            kv("4.4.0-generic"),
        ));
        assert_eq!(
            names(&r),
            ["read", "bpf", "sync_file_range2", "clone", "old"]
        );
        assert_eq!(r.architectures, [Arch::Aarch64, Arch::Arm]);

        let r = p.resolve(&ResolveContext::new(
            Arch::S390X,
            Vec::<String>::new(),
            kv("6.1"),
        ));
        assert_eq!(names(&r), ["read", "ptrace", "clone3"]);
        assert_eq!(r.architectures, [Arch::S390X]);
    }
}

#[cfg(test)]
mod cap_order_tests {
    use super::ALL_CAPS;

    /// Callers index `ALL_CAPS` by capability number; spot-check the numbers of linux/capability.h.
    #[test]
    fn all_caps_is_in_bit_number_order() {
        let number = |name: &str| ALL_CAPS.iter().position(|c| *c == name);
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_AUDIT_READ"), Some(37));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(ALL_CAPS.len(), 41);
    }
}
