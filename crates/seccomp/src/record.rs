//! Recording: what a workload's syscalls were, and the least-privilege profile
//! that allows exactly them.
//!
//! A [`Recording`] collects `(architecture, syscall)` pairs as the kernel
//! reports them (`seccomp_data.arch` and `nr`, from user notifications or audit
//! records) plus the address families passed to `socket`. [`Recording::profile`]
//! turns it into a profile in the shape of the tutorial's `fine-grained.json`:
//! `defaultAction: SCMP_ACT_ERRNO`, the recorded architectures, and one sorted
//! `SCMP_ACT_ALLOW` rule (plus one `socket` rule per family with
//! [`GenerateOptions::socket_families`]). A generated profile reads back into
//! a recording ([`Recording::from_profile`]), so runs merge.
//!
//! [`notify_profile`] is the other direction: the profile a workload runs
//! under while it is recorded. It is the workload's own profile with every
//! allowed syscall turned into `SCMP_ACT_NOTIFY`, so the recorded workload is
//! confined exactly as it asked and every syscall it is allowed reaches the
//! recorder. Pure: the kernel side is [`crate::notify`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::model::{Action, ArgCmp, Operator, Profile, SyscallRule};
use crate::syscalls::{self, X32_SYSCALL_BIT};

/// The syscall whose first argument is an address family.
const SOCKET: &str = "socket";

/// What a workload did, by architecture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// Syscall names seen, per architecture.
    pub syscalls: BTreeMap<Arch, BTreeSet<String>>,
    /// `socket(2)` address families seen, per architecture (where `socket` is
    /// a syscall of its own, not multiplexed through `socketcall`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub socket_families: BTreeMap<Arch, BTreeSet<u64>>,
    /// `(audit arch token, number)` pairs no syscall table names: a profile cannot
    /// allow them by name, so they are reported.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unnamed: BTreeSet<(u32, u32)>,
}

/// The architecture and syscall name of a `(seccomp_data.arch, nr)` pair: x32
/// syscalls carry bit 30 on x86_64's token.
pub fn identify(audit_arch: u32, nr: u32) -> Option<(Arch, &'static str)> {
    let arch = Arch::ALL
        .iter()
        .copied()
        .find(|a| *a != Arch::X32 && a.audit_arch() == Some(audit_arch))?;
    let arch = if arch == Arch::X86_64 && nr & X32_SYSCALL_BIT != 0 {
        Arch::X32
    } else {
        arch
    };
    Some((arch, syscalls::name_of(arch, nr)?))
}

/// How [`Recording::profile`] writes the profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenerateOptions {
    /// Allow `socket` only for the address families seen (one
    /// `SCMP_CMP_EQ` rule on argument 0 per family).
    pub socket_families: bool,
}

/// A profile that [`Recording::from_profile`] cannot read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Only profiles in the generated shape merge.
    #[error("{0}: not a recorded profile (expected defaultAction SCMP_ACT_ERRNO and only SCMP_ACT_ALLOW rules)")]
    NotRecorded(String),
}

impl Recording {
    /// Notes one syscall; true when it is new to the recording.
    pub fn observe(&mut self, audit_arch: u32, nr: u32, args: &[u64; 6]) -> bool {
        let Some((arch, name)) = identify(audit_arch, nr) else {
            return self.unnamed.insert((audit_arch, nr));
        };
        let mut new = self
            .syscalls
            .entry(arch)
            .or_default()
            .insert(name.to_owned());
        if name == SOCKET {
            new |= self
                .socket_families
                .entry(arch)
                .or_default()
                .insert(args[0]);
        }
        new
    }

    /// Adds everything `other` saw.
    pub fn merge(&mut self, other: &Recording) {
        for (arch, names) in &other.syscalls {
            self.syscalls
                .entry(*arch)
                .or_default()
                .extend(names.iter().cloned());
        }
        for (arch, fams) in &other.socket_families {
            self.socket_families
                .entry(*arch)
                .or_default()
                .extend(fams.iter().copied());
        }
        self.unnamed.extend(other.unnamed.iter().copied());
    }

    /// Number of distinct syscall names over all architectures.
    pub fn len(&self) -> usize {
        self.names().len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.syscalls.values().all(BTreeSet::is_empty)
    }

    /// Every recorded name, sorted, over all architectures.
    pub fn names(&self) -> BTreeSet<&str> {
        self.syscalls
            .values()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// The least-privilege profile: what was recorded is allowed, everything
    /// else fails with EPERM (the runtime's errno when a profile gives none).
    pub fn profile(&self, opts: GenerateOptions) -> Profile {
        let mut names = self.names();
        let families: BTreeSet<u64> = self.socket_families.values().flatten().copied().collect();
        // Constrain `socket` only when every architecture that called it passed
        // a family we saw (x86's socketcall hides the argument).
        let constrain = opts.socket_families
            && names.contains(SOCKET)
            && self
                .syscalls
                .iter()
                .filter(|(_, n)| n.contains(SOCKET))
                .all(|(a, _)| self.socket_families.contains_key(a));
        if constrain {
            names.remove(SOCKET);
        }
        let mut syscalls = Vec::new();
        if !names.is_empty() {
            syscalls.push(allow(names.into_iter().map(str::to_owned).collect(), None));
        }
        if constrain {
            for family in families {
                syscalls.push(allow(
                    vec![SOCKET.to_owned()],
                    Some(ArgCmp {
                        index: 0,
                        value: family,
                        value_two: 0,
                        op: Operator::Equal,
                    }),
                ));
            }
        }
        Profile {
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures: self.syscalls.keys().copied().collect(),
            arch_map: Vec::new(),
            syscalls,
            flags: Vec::new(),
            listener_path: None,
            listener_metadata: None,
        }
    }

    /// Reads a profile of the generated shape back (to merge runs): its
    /// architectures (the native one when none is listed) each get every allowed
    /// name, and `socket` rules on argument 0 give the families.
    pub fn from_profile(p: &Profile, what: &str) -> Result<Recording, MergeError> {
        let bad = || MergeError::NotRecorded(what.to_owned());
        if p.default_action != Action::Errno && p.default_action != Action::KillProcess {
            return Err(bad());
        }
        let arches = if p.architectures.is_empty() {
            vec![Arch::native()]
        } else {
            p.architectures.clone()
        };
        let mut r = Recording::default();
        for rule in &p.syscalls {
            if rule.action != Action::Allow {
                return Err(bad());
            }
            for name in rule.all_names() {
                for a in &arches {
                    r.syscalls.entry(*a).or_default().insert(name.to_owned());
                }
                if name != SOCKET {
                    if !rule.args.is_empty() {
                        return Err(bad());
                    }
                    continue;
                }
                for cmp in &rule.args {
                    if cmp.index != 0 || cmp.op != Operator::Equal {
                        return Err(bad());
                    }
                    for a in &arches {
                        r.socket_families.entry(*a).or_default().insert(cmp.value);
                    }
                }
            }
        }
        Ok(r)
    }

    /// Names in `reference` that were not recorded, and recorded names that
    /// `reference` does not allow (for comparing with a hand-written profile).
    pub fn compare(&self, reference: &Profile) -> (Vec<String>, Vec<String>) {
        let allowed: BTreeSet<&str> = reference
            .syscalls
            .iter()
            .filter(|r| matches!(r.action, Action::Allow | Action::Log))
            .flat_map(SyscallRule::all_names)
            .collect();
        let ours = self.names();
        (
            allowed.difference(&ours).map(|s| s.to_string()).collect(),
            ours.difference(&allowed).map(|s| s.to_string()).collect(),
        )
    }
}

fn allow(names: Vec<String>, arg: Option<ArgCmp>) -> SyscallRule {
    SyscallRule {
        names,
        name: None,
        action: Action::Allow,
        errno_ret: None,
        args: arg.into_iter().collect(),
        comment: None,
        includes: Default::default(),
        excludes: Default::default(),
    }
}

/// The OCI runtime the recorded container starts under: runc refuses
/// `SCMP_ACT_NOTIFY` as the default action and for `write`, which it needs
/// itself after the filter is installed (libcontainer/seccomp); crun takes both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyRuntime {
    /// crun.
    Crun,
    /// runc.
    Runc,
}

impl NotifyRuntime {
    /// Syscalls [`notify_profile`] leaves allowed, so never reported: a
    /// recording under this runtime must add them.
    pub fn unobserved(self) -> &'static [&'static str] {
        match self {
            NotifyRuntime::Crun => &[],
            NotifyRuntime::Runc => &["write"],
        }
    }
}

/// The profile a recorded workload runs under: `base` (the container's own
/// profile; `None` when it is unconfined) with every allowing action turned
/// into `SCMP_ACT_NOTIFY`, so confinement is unchanged and each allowed syscall
/// is reported. For runc, an allowing default action becomes explicit notify
/// rules for every syscall of `arch` but `write`, which stays allowed (and is
/// then always in the recording: runc needs it).
pub fn notify_profile(base: Option<&Profile>, runtime: NotifyRuntime, arch: Arch) -> Profile {
    let mut p = base.cloned().unwrap_or(Profile {
        default_action: Action::Allow,
        default_errno_ret: None,
        architectures: Vec::new(),
        arch_map: Vec::new(),
        syscalls: Vec::new(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
    });
    let allows = |a: Action| matches!(a, Action::Allow | Action::Log);
    let runc = runtime == NotifyRuntime::Runc;
    let mut rules = Vec::new();
    for mut rule in std::mem::take(&mut p.syscalls) {
        if !allows(rule.action) {
            rules.push(rule);
            continue;
        }
        if runc && rule.all_names().any(|n| n == "write") {
            let mut write = rule.clone();
            write.names = vec!["write".into()];
            write.name = None;
            rules.push(write);
            rule.names.retain(|n| n != "write");
            if rule.name.as_deref() == Some("write") {
                rule.name = None;
            }
            if rule.names.is_empty() && rule.name.is_none() {
                continue;
            }
        }
        rule.action = Action::Notify;
        rule.errno_ret = None;
        rules.push(rule);
    }
    if allows(p.default_action) {
        if runc {
            let others: Vec<String> = syscalls::all(arch)
                .iter()
                .map(|(n, _)| (*n).to_owned())
                .filter(|n| n != "write")
                .collect();
            // Appended: explicit rules keep their own actions.
            let explicit: BTreeSet<String> = rules
                .iter()
                .flat_map(|r| r.all_names().map(str::to_owned).collect::<Vec<_>>())
                .collect();
            let others = others
                .into_iter()
                .filter(|n| !explicit.contains(n))
                .collect();
            rules.push(SyscallRule {
                action: Action::Notify,
                ..allow(others, None)
            });
        } else {
            p.default_action = Action::Notify;
            p.default_errno_ret = None;
        }
    }
    p.syscalls = rules;
    p
}

/// Whether an action stops the syscall (what complain mode turns into `SCMP_ACT_LOG`).
fn denies(a: Action) -> bool {
    !matches!(a, Action::Allow | Action::Log | Action::Notify)
}

/// Complain mode: `p` with every denying action (the default and the rules':
/// errno, kill, trap, trace) turned into `SCMP_ACT_LOG`, so the workload runs
/// as if allowed and the kernel logs each syscall the profile would have
/// denied (audit type 1326, `code=0x7ffc0000`).
pub fn complain(p: &Profile) -> Profile {
    let mut p = p.clone();
    if denies(p.default_action) {
        p.default_action = Action::Log;
        p.default_errno_ret = None;
    }
    for rule in &mut p.syscalls {
        if denies(rule.action) {
            rule.action = Action::Log;
            rule.errno_ret = None;
        }
    }
    p
}

/// `p` extended to allow `names` (the syscalls its complain mode logged): the
/// names leave the denying rules that name them (a rule left without names is
/// dropped), then join the first unconditional allow rule, or a new one.
pub fn allow_more(p: &Profile, names: &BTreeSet<String>) -> Profile {
    let mut p = p.clone();
    if names.is_empty() {
        return p;
    }
    p.syscalls.retain_mut(|rule| {
        if !denies(rule.action) {
            return true;
        }
        rule.names.retain(|n| !names.contains(n));
        if rule.name.as_ref().is_some_and(|n| names.contains(n)) {
            rule.name = None;
        }
        !rule.names.is_empty() || rule.name.is_some()
    });
    let target = p.syscalls.iter_mut().find(|r| {
        r.action == Action::Allow
            && r.args.is_empty()
            && r.includes.is_empty()
            && r.excludes.is_empty()
    });
    match target {
        Some(rule) => {
            let mut all: BTreeSet<String> = rule.names.drain(..).collect();
            all.extend(names.iter().cloned());
            rule.names = all.into_iter().collect();
        }
        None => p
            .syscalls
            .push(allow(names.iter().cloned().collect(), None)),
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: u32 = 0xC000_003E;
    const I386: u32 = 0x4000_0003;

    fn nr(arch: Arch, name: &str) -> u32 {
        syscalls::resolve(arch, name).unwrap()
    }

    #[test]
    fn observes_names_per_architecture() {
        let mut r = Recording::default();
        assert!(r.observe(X86_64, nr(Arch::X86_64, "read"), &[0; 6]));
        assert!(!r.observe(X86_64, nr(Arch::X86_64, "read"), &[0; 6]));
        assert!(r.observe(X86_64, nr(Arch::X32, "write"), &[0; 6]));
        assert!(r.observe(I386, nr(Arch::X86, "execve"), &[0; 6]));
        assert!(r.observe(X86_64, 9999, &[0; 6]));
        assert_eq!(r.syscalls[&Arch::X86_64], BTreeSet::from(["read".into()]));
        assert_eq!(r.syscalls[&Arch::X32], BTreeSet::from(["write".into()]));
        assert_eq!(r.syscalls[&Arch::X86], BTreeSet::from(["execve".into()]));
        assert_eq!(r.unnamed, BTreeSet::from([(X86_64, 9999)]));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn generates_a_sorted_allow_list_and_reads_it_back() {
        let mut r = Recording::default();
        for name in ["write", "read", "socket", "execve"] {
            r.observe(X86_64, nr(Arch::X86_64, name), &[2, 1, 0, 0, 0, 0]);
        }
        r.observe(X86_64, nr(Arch::X86_64, "socket"), &[10, 1, 0, 0, 0, 0]);
        let p = r.profile(GenerateOptions::default());
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["execve", "read", "socket", "write"], "action": "SCMP_ACT_ALLOW"}]
            })
        );
        let constrained = r.profile(GenerateOptions {
            socket_families: true,
        });
        assert_eq!(constrained.syscalls.len(), 3);
        assert_eq!(constrained.syscalls[0].names, ["execve", "read", "write"]);
        assert_eq!(constrained.syscalls[1].args[0].value, 2);
        assert_eq!(constrained.syscalls[2].args[0].value, 10);
        assert_eq!(
            Recording::from_profile(&constrained, "p").unwrap(),
            Recording {
                unnamed: BTreeSet::new(),
                ..r.clone()
            }
        );
        // Without families the read-back knows the names only.
        let back = Recording::from_profile(&p, "p").unwrap();
        assert_eq!(back.syscalls, r.syscalls);
        assert!(back.socket_families.is_empty());
    }

    #[test]
    fn merging_unions_runs() {
        let mut a = Recording::default();
        a.observe(X86_64, nr(Arch::X86_64, "read"), &[0; 6]);
        let mut b = Recording::default();
        b.observe(X86_64, nr(Arch::X86_64, "openat"), &[0; 6]);
        a.merge(&b);
        assert_eq!(a.names(), BTreeSet::from(["openat", "read"]));
    }

    #[test]
    fn other_profiles_do_not_merge() {
        let p = crate::runtime_default();
        assert!(matches!(
            Recording::from_profile(&p, "default.json"),
            Err(MergeError::NotRecorded(_))
        ));
    }

    #[test]
    fn the_generated_profile_allows_what_was_recorded_and_nothing_else() {
        let mut r = Recording::default();
        for name in ["read", "exit_group"] {
            r.observe(X86_64, nr(Arch::X86_64, name), &[0; 6]);
        }
        let ctx = crate::ResolveContext::new(
            Arch::X86_64,
            Vec::<String>::new(),
            "6.1.0".parse().unwrap(),
        );
        let compiled = r.profile(GenerateOptions::default()).compile(&ctx).unwrap();
        let decide = |name| {
            compiled
                .policy
                .decide(&crate::SeccompData {
                    nr: nr(Arch::X86_64, name),
                    arch: X86_64,
                    ..Default::default()
                })
                .ret
        };
        assert_eq!(decide("read"), 0x7fff_0000);
        assert_eq!(decide("write"), 0x0005_0001);
    }

    #[test]
    fn complain_logs_what_would_be_denied_and_allow_more_enforces_it() {
        let base = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["mkdir","rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                {"names":["ptrace"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        )
        .unwrap();
        let c = complain(&base);
        assert_eq!(c.default_action, Action::Log);
        assert_eq!(c.syscalls[0].action, Action::Allow);
        assert_eq!(c.syscalls[1].action, Action::Log);
        assert_eq!(c.syscalls[1].errno_ret, None);
        assert_eq!(c.syscalls[2].action, Action::Log);

        let more = allow_more(
            &base,
            &BTreeSet::from(["mkdir".into(), "ptrace".into(), "openat".into()]),
        );
        assert_eq!(more.default_action, Action::Errno);
        assert_eq!(more.syscalls.len(), 2);
        assert_eq!(
            more.syscalls[0].names,
            ["mkdir", "openat", "ptrace", "read", "write"]
        );
        assert_eq!(more.syscalls[1].names, ["rmdir"]);
        assert_eq!(more.syscalls[1].errno_ret, Some(13));
        assert_eq!(allow_more(&base, &BTreeSet::new()), base);
    }

    #[test]
    fn notify_profile_keeps_the_confinement() {
        let base = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        )
        .unwrap();
        let crun = notify_profile(Some(&base), NotifyRuntime::Crun, Arch::X86_64);
        assert_eq!(crun.default_action, Action::Errno);
        assert_eq!(crun.syscalls[0].action, Action::Notify);
        assert_eq!(crun.syscalls[1].errno_ret, Some(13));
        let runc = notify_profile(Some(&base), NotifyRuntime::Runc, Arch::X86_64);
        assert_eq!(runc.syscalls[0].names, ["write"]);
        assert_eq!(runc.syscalls[0].action, Action::Allow);
        assert_eq!(runc.syscalls[1].names, ["read"]);
        assert_eq!(runc.syscalls[1].action, Action::Notify);

        let unconfined = notify_profile(None, NotifyRuntime::Crun, Arch::X86_64);
        assert_eq!(unconfined.default_action, Action::Notify);
        assert!(unconfined.syscalls.is_empty());
        let runc = notify_profile(None, NotifyRuntime::Runc, Arch::X86_64);
        assert_eq!(runc.default_action, Action::Allow);
        let names: Vec<&str> = runc.syscalls[0].all_names().collect();
        assert!(names.contains(&"read") && !names.contains(&"write"));
    }
}
