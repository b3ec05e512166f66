//! The decision model: what the filter does for each architecture and syscall,
//! built from a [`ResolvedProfile`] the way crun feeds libseccomp and the way
//! libseccomp merges the rules. The BPF compiler, `explain` and `diff` all
//! work from this model.
//!
//! crun (`src/libcrun/seccomp.c`, our default runtime):
//! - `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` without `errnoRet` use EPERM, also for the default action;
//! - a rule whose action (with its errno) equals the default action is skipped;
//! - a name libseccomp cannot resolve on any architecture is skipped with a warning;
//! - a rule with several comparisons on the same argument is split into one
//!   rule per comparison (they are ORed);
//! - the filter covers the native architecture plus `architectures`;
//! - the bad-architecture action is libseccomp's default, `SCMP_ACT_KILL_THREAD`.
//!   (runc's ENOSYS stub for syscalls newer than the profile is not emulated.)
//!
//! libseccomp (`src/db.c`, `src/syscalls.c`, `src/gen_bpf.c`):
//! - names resolve per architecture; a name missing on one is skipped there;
//! - on x86, socket and SysV IPC calls also get a rule on `socketcall`/`ipc`
//!   whose first argument equals the call number (replacing any condition on
//!   argument 0), next to the direct syscall when it exists;
//! - per syscall: a rule without conditions that comes first wins over every
//!   later rule; one that comes after conditional rules replaces them; the
//!   conditional rules are alternatives tried in order;
//! - comparisons on 64-bit architectures use both 32-bit halves; on x86 and x32
//!   only the low half (values are truncated); `MASKED_EQ` compares
//!   `arg & mask == value & mask`, and a zero mask is no condition at all;
//! - x86_64 without x32: numbers with the x32 bit get the bad-arch action
//!   (except -1); x32 without x86_64: numbers without it do; both: one filter.

use std::collections::BTreeMap;

use crate::arch::Arch;
use crate::error::{Error, Result, Warning};
use crate::model::{Action, ArgCmp, Flag, Operator};
use crate::resolve::ResolvedProfile;
use crate::syscalls::{self, X32_SYSCALL_BIT};

/// EPERM, the errno runtimes use when a profile gives none.
pub const EPERM: u32 = 1;

/// `SECCOMP_RET_*` values.
pub mod ret {
    /// `SECCOMP_RET_KILL_PROCESS`.
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    /// `SECCOMP_RET_KILL_THREAD`.
    pub const KILL_THREAD: u32 = 0x0000_0000;
    /// `SECCOMP_RET_TRAP`.
    pub const TRAP: u32 = 0x0003_0000;
    /// `SECCOMP_RET_ERRNO`.
    pub const ERRNO: u32 = 0x0005_0000;
    /// `SECCOMP_RET_USER_NOTIF`.
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    /// `SECCOMP_RET_TRACE`.
    pub const TRACE: u32 = 0x7ff0_0000;
    /// `SECCOMP_RET_LOG`.
    pub const LOG: u32 = 0x7ffc_0000;
    /// `SECCOMP_RET_ALLOW`.
    pub const ALLOW: u32 = 0x7fff_0000;
    /// `SECCOMP_RET_ACTION_FULL`.
    pub const ACTION_FULL: u32 = 0xffff_0000;
    /// `SECCOMP_RET_DATA`.
    pub const DATA: u32 = 0x0000_ffff;
}

/// The filter return value of `action` with `errno` (used by ERRNO and TRACE).
pub fn ret_value(action: Action, errno: u32) -> u32 {
    match action {
        Action::Kill | Action::KillThread => ret::KILL_THREAD,
        Action::KillProcess => ret::KILL_PROCESS,
        Action::Trap => ret::TRAP,
        Action::Errno => ret::ERRNO | (errno & ret::DATA),
        Action::Trace => ret::TRACE | (errno & ret::DATA),
        Action::Allow => ret::ALLOW,
        Action::Log => ret::LOG,
        Action::Notify => ret::USER_NOTIF,
    }
}

/// A filter return value in profile terms, e.g. `SCMP_ACT_ERRNO(1)`.
pub fn describe_ret(value: u32) -> String {
    let data = value & ret::DATA;
    match value & ret::ACTION_FULL {
        ret::KILL_PROCESS => "SCMP_ACT_KILL_PROCESS".into(),
        ret::KILL_THREAD => "SCMP_ACT_KILL_THREAD".into(),
        ret::TRAP => "SCMP_ACT_TRAP".into(),
        ret::ERRNO => format!("SCMP_ACT_ERRNO({data})"),
        ret::TRACE => format!("SCMP_ACT_TRACE({data})"),
        ret::USER_NOTIF => "SCMP_ACT_NOTIFY".into(),
        ret::LOG => "SCMP_ACT_LOG".into(),
        ret::ALLOW => "SCMP_ACT_ALLOW".into(),
        other => format!("0x{other:08x}"),
    }
}

/// The rule a decision comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Index in the source profile's `syscalls`.
    pub index: usize,
    /// The syscall name as written in the rule.
    pub name: String,
    /// The rule's comment, if any.
    pub comment: Option<String>,
}

/// One argument comparison, normalised for the architecture's word size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cond {
    /// Argument 0..=5.
    pub index: u8,
    /// The operator.
    pub op: Operator,
    /// The mask (all ones except for `MASKED_EQ`); truncated to 32 bits on 32-bit arches.
    pub mask: u64,
    /// The operand (masked for `MASKED_EQ`); truncated to 32 bits on 32-bit arches.
    pub datum: u64,
}

impl Cond {
    /// Whether the comparison holds for `arg` (already truncated to the arch's width).
    pub fn holds(&self, arg: u64) -> bool {
        match self.op {
            Operator::Equal => arg == self.datum,
            Operator::NotEqual => arg != self.datum,
            Operator::LessThan => arg < self.datum,
            Operator::LessOrEqual => arg <= self.datum,
            Operator::GreaterThan => arg > self.datum,
            Operator::GreaterOrEqual => arg >= self.datum,
            Operator::MaskedEqual => arg & self.mask == self.datum,
        }
    }
}

/// Conditions that must all hold, and what happens then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The comparisons (ANDed).
    pub conds: Vec<Cond>,
    /// The filter return value.
    pub ret: u32,
    /// Where it comes from.
    pub origin: Origin,
}

/// What the filter does for one syscall number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallPolicy {
    /// Always the same return value.
    Always {
        /// The filter return value.
        ret: u32,
        /// Where it comes from.
        origin: Origin,
    },
    /// The first chain whose conditions hold decides; if none, the default.
    Conditional(Vec<Chain>),
}

/// The rules for one `seccomp_data.arch` value (x86_64 and x32 share one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The audit architecture token.
    pub audit_arch: u32,
    /// The profile architectures this section serves.
    pub arches: Vec<Arch>,
    /// Per syscall number: the policy and whether arguments are 64-bit.
    pub syscalls: BTreeMap<u32, (SyscallPolicy, bool)>,
    /// Syscall numbers that get the bad-arch action (the other x86-64 ABI).
    pub bad_ranges: Vec<(u32, u32)>,
}

/// The whole filter's decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Return value when no rule matches.
    pub default_ret: u32,
    /// Return value for an architecture the filter does not cover.
    pub bad_arch_ret: u32,
    /// One section per architecture token, native first.
    pub sections: Vec<Section>,
    /// `seccomp(2)` flags the profile asks for.
    pub flags: Vec<Flag>,
    /// Things skipped, as runtimes do, worth telling the user.
    pub warnings: Vec<Warning>,
}

/// The input of a seccomp filter (`struct seccomp_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeccompData {
    /// The syscall number.
    pub nr: u32,
    /// The audit architecture token.
    pub arch: u32,
    /// The instruction pointer.
    pub instruction_pointer: u64,
    /// The six arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 64-byte kernel layout (little-endian).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        b
    }
}

/// Why the filter decided what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `seccomp_data.arch` is not covered.
    BadArch,
    /// The number belongs to the other x86-64 ABI (x32 bit).
    BadAbi,
    /// No rule for this syscall.
    Default,
    /// Rules exist but none of their conditions held.
    NoChainMatched,
    /// This rule decided.
    Rule(Origin),
}

/// A decision with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The filter return value.
    pub ret: u32,
    /// Why.
    pub reason: Reason,
}

fn normalise(arg: &ArgCmp, wide: bool) -> Option<Cond> {
    let (mut mask, mut datum) = match arg.op {
        Operator::MaskedEqual => (arg.value, arg.value_two),
        _ => (u64::MAX, arg.value),
    };
    if !wide {
        mask &= 0xffff_ffff;
        datum &= 0xffff_ffff;
    }
    if arg.op == Operator::MaskedEqual {
        if mask == 0 {
            return None;
        }
        datum &= mask;
    }
    Some(Cond {
        index: arg.index as u8,
        op: arg.op,
        mask,
        datum,
    })
}

fn insert(section: &mut Section, nr: u32, wide: bool, conds: Vec<Cond>, ret: u32, origin: Origin) {
    use std::collections::btree_map::Entry;
    let new = if conds.is_empty() {
        SyscallPolicy::Always { ret, origin }
    } else {
        SyscallPolicy::Conditional(vec![Chain { conds, ret, origin }])
    };
    match section.syscalls.entry(nr) {
        Entry::Vacant(v) => {
            v.insert((new, wide));
        }
        Entry::Occupied(mut o) => {
            let (existing, _) = o.get_mut();
            match (existing, new) {
                (SyscallPolicy::Always { .. }, _) => {}
                (e @ SyscallPolicy::Conditional(_), n @ SyscallPolicy::Always { .. }) => *e = n,
                (SyscallPolicy::Conditional(chains), SyscallPolicy::Conditional(mut new)) => {
                    if !chains.iter().any(|c| c.conds == new[0].conds) {
                        chains.append(&mut new);
                    }
                }
            }
        }
    }
}

impl ResolvedProfile {
    /// Builds the decision model. Fails for architectures without a syscall table, and for
    /// an argument index out of range (which [`crate::Profile::validate`] refuses; a profile
    /// that skipped validation must not become a program that reads outside `seccomp_data`).
    pub fn policy(&self) -> Result<Policy> {
        let default_ret = ret_value(self.default_action, self.default_errno_ret.unwrap_or(EPERM));
        let mut sections: Vec<Section> = Vec::new();
        for &arch in &self.architectures {
            if !syscalls::supported(arch) {
                return Err(Error::UnsupportedArch(arch));
            }
            let token = arch.audit_arch().ok_or(Error::UnsupportedArch(arch))?;
            match sections.iter_mut().find(|s| s.audit_arch == token) {
                Some(s) => s.arches.push(arch),
                None => sections.push(Section {
                    audit_arch: token,
                    arches: vec![arch],
                    syscalls: BTreeMap::new(),
                    bad_ranges: Vec::new(),
                }),
            }
        }
        for s in &mut sections {
            let has = |a| s.arches.contains(&a);
            if has(Arch::X86_64) && !has(Arch::X32) {
                s.bad_ranges.push((X32_SYSCALL_BIT, u32::MAX - 1));
            } else if has(Arch::X32) && !has(Arch::X86_64) {
                s.bad_ranges.push((0, X32_SYSCALL_BIT - 1));
            }
        }

        let mut warnings = Vec::new();
        for r in &self.rules {
            let rule = &r.rule;
            if let Some((j, a)) = rule
                .args
                .iter()
                .enumerate()
                .find(|(_, a)| a.index >= crate::MAX_ARGS)
            {
                return Err(Error::Invalid {
                    path: format!("syscalls[{}].args[{j}].index", r.index),
                    message: format!("argument index {} is out of range 0..=5", a.index),
                });
            }
            let ret = ret_value(rule.action, rule.errno_ret.unwrap_or(EPERM));
            if ret == default_ret {
                continue;
            }
            // Several comparisons on one argument: one rule per comparison.
            let mut seen = [false; 6];
            let repeated = rule.args.iter().any(|a| {
                let i = (a.index as usize).min(5);
                std::mem::replace(&mut seen[i], true)
            });
            let groups: Vec<Vec<ArgCmp>> = if repeated {
                rule.args.iter().map(|a| vec![*a]).collect()
            } else {
                vec![rule.args.clone()]
            };
            for (j, name) in rule.all_names().enumerate() {
                if !syscalls::known_anywhere(name) {
                    warnings.push(Warning {
                        path: format!("syscalls[{}].names[{j}]", r.index),
                        message: format!("unknown syscall {name:?} skipped"),
                    });
                    continue;
                }
                let origin = Origin {
                    index: r.index,
                    name: name.to_string(),
                    comment: rule.comment.clone(),
                };
                for s in &mut sections {
                    for arch in s.arches.clone() {
                        let wide = arch.is_64bit();
                        for args in &groups {
                            let conds: Vec<Cond> =
                                args.iter().filter_map(|a| normalise(a, wide)).collect();
                            if let Some(m) = syscalls::multiplexed(arch, name) {
                                let mut mux: Vec<Cond> =
                                    conds.iter().filter(|c| c.index != 0).copied().collect();
                                mux.insert(
                                    0,
                                    Cond {
                                        index: 0,
                                        op: Operator::Equal,
                                        mask: 0xffff_ffff,
                                        datum: u64::from(m.call),
                                    },
                                );
                                insert(s, m.syscall, wide, mux, ret, origin.clone());
                            }
                            if let Some(nr) = syscalls::resolve(arch, name) {
                                insert(s, nr, wide, conds, ret, origin.clone());
                            }
                        }
                    }
                }
            }
        }
        for s in &sections {
            for (nr, (p, _)) in &s.syscalls {
                if let SyscallPolicy::Conditional(chains) = p {
                    let inverted = chains.len() > 1
                        && chains.iter().flat_map(|c| &c.conds).any(|c| {
                            matches!(
                                c.op,
                                Operator::NotEqual | Operator::LessThan | Operator::LessOrEqual
                            )
                        });
                    if inverted || chains.iter().any(|c| c.ret != chains[0].ret) {
                        let name = s
                            .arches
                            .iter()
                            .find_map(|a| syscalls::name_of(*a, *nr))
                            .unwrap_or("?");
                        warnings.push(Warning {
                            path: format!("syscalls[{}]", chains[0].origin.index),
                            message: format!(
                                "{name} ({nr}) has several argument rules with different \
                                 actions or NE/LT/LE comparisons: the first matching rule \
                                 decides here; libseccomp's result depends on its rule tree \
                                 and may differ"
                            ),
                        });
                    }
                }
            }
        }
        Ok(Policy {
            default_ret,
            bad_arch_ret: ret::KILL_THREAD,
            sections,
            flags: self.flags.clone(),
            warnings,
        })
    }
}

impl Policy {
    /// What the filter decides for `data`, and why.
    pub fn decide(&self, data: &SeccompData) -> Decision {
        let Some(section) = self.sections.iter().find(|s| s.audit_arch == data.arch) else {
            return Decision {
                ret: self.bad_arch_ret,
                reason: Reason::BadArch,
            };
        };
        if section
            .bad_ranges
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&data.nr))
        {
            return Decision {
                ret: self.bad_arch_ret,
                reason: Reason::BadAbi,
            };
        }
        match section.syscalls.get(&data.nr) {
            None => Decision {
                ret: self.default_ret,
                reason: Reason::Default,
            },
            Some((SyscallPolicy::Always { ret, origin }, _)) => Decision {
                ret: *ret,
                reason: Reason::Rule(origin.clone()),
            },
            Some((SyscallPolicy::Conditional(chains), wide)) => {
                let arg = |i: u8| {
                    let v = data.args[usize::from(i)];
                    if *wide {
                        v
                    } else {
                        v & 0xffff_ffff
                    }
                };
                chains
                    .iter()
                    .find(|c| c.conds.iter().all(|k| k.holds(arg(k.index))))
                    .map(|c| Decision {
                        ret: c.ret,
                        reason: Reason::Rule(c.origin.clone()),
                    })
                    .unwrap_or(Decision {
                        ret: self.default_ret,
                        reason: Reason::NoChainMatched,
                    })
            }
        }
    }

    /// The `seccomp(2)` flags for loading: the profile's, or SPEC_ALLOW when it
    /// names none (crun's default); NEW_LISTENER when a rule notifies.
    pub fn load_flags(&self) -> u32 {
        let mut flags = if self.flags.is_empty() {
            Flag::SpecAllow.bit()
        } else {
            self.flags.iter().fold(0, |f, x| f | x.bit())
        };
        let notifies = self.default_ret == ret::USER_NOTIF
            || self.sections.iter().any(|s| {
                s.syscalls.values().any(|(p, _)| match p {
                    SyscallPolicy::Always { ret, .. } => *ret == ret::USER_NOTIF,
                    SyscallPolicy::Conditional(c) => c.iter().any(|c| c.ret == ret::USER_NOTIF),
                })
            });
        if notifies {
            flags |= crate::load::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        }
        flags
    }
}

/// Everything the node needs to load a profile for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The decision model (for explain and logs).
    pub policy: Policy,
    /// The BPF program.
    pub program: Vec<crate::bpf::SockFilter>,
    /// The `seccomp(2)` flags to load it with.
    pub flags: u32,
}

impl crate::model::Profile {
    /// Resolve for `ctx`, build the model and compile: the node's one call.
    pub fn compile(&self, ctx: &crate::resolve::ResolveContext) -> Result<Compiled> {
        let policy = self.resolve(ctx).policy()?;
        let program = policy.compile()?;
        let flags = policy.load_flags();
        Ok(Compiled {
            policy,
            program,
            flags,
        })
    }
}
