//! `explain`: the decision for one syscall and the rule that made it, and
//! `diff`: the syscalls whose decision differs between two profiles.

use std::fmt::Write as _;

use crate::arch::Arch;
use crate::bpf::{self, BpfError, SockFilter};
use crate::model::Operator;
use crate::policy::{describe_ret, Cond, Policy, Reason, SeccompData, SyscallPolicy};
use crate::syscalls;

/// Why `explain` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The syscall is neither a number nor a name known on the architecture.
    #[error("unknown syscall {name:?} on {arch}")]
    UnknownSyscall {
        /// As given.
        name: String,
        /// The architecture asked about.
        arch: Arch,
    },
    /// The program could not be run (a compiler bug if it happens).
    #[error("running the BPF program: {0}")]
    Bpf(#[from] BpfError),
    /// The interpreter and the model disagree (a compiler bug if it happens).
    #[error("internal error: the BPF program returns {bpf} but the model says {model}")]
    Mismatch {
        /// What the program returned.
        bpf: String,
        /// What the model says.
        model: String,
    },
}

/// The answer of `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The architecture.
    pub arch: Arch,
    /// The syscall name, if known.
    pub name: Option<String>,
    /// The syscall number.
    pub nr: u32,
    /// The filter's return value (from running the program).
    pub ret: u32,
    /// Why.
    pub reason: Reason,
    /// BPF instructions executed.
    pub steps: usize,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name.as_deref().unwrap_or("?");
        writeln!(
            f,
            "{} {name} (nr {}): {}",
            self.arch,
            self.nr,
            describe_ret(self.ret)
        )?;
        match &self.reason {
            Reason::BadArch => write!(
                f,
                "  architecture not covered by the filter (bad-arch action)"
            ),
            Reason::BadAbi => write!(
                f,
                "  syscall number of the other x86-64 ABI (bad-arch action)"
            ),
            Reason::Default => write!(f, "  no rule for this syscall: default action"),
            Reason::NoChainMatched => write!(
                f,
                "  rules exist but no argument condition held: default action"
            ),
            Reason::Rule(o) => {
                write!(f, "  decided by syscalls[{}] (name {:?})", o.index, o.name)?;
                if let Some(c) = &o.comment {
                    write!(f, ", comment: {c:?}")?;
                }
                Ok(())
            }
        }?;
        write!(f, "\n  ({} BPF instructions executed)", self.steps)
    }
}

/// Resolves a syscall given by name or number on `arch`.
pub fn syscall_number(arch: Arch, syscall: &str) -> Option<u32> {
    if let Some(nr) = syscalls::resolve(arch, syscall) {
        return Some(nr);
    }
    let s = syscall.trim();
    if let Some(hex) = s.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    s.parse::<u32>().ok()
}

/// Explains the decision for `syscall` (name or number) with `args` on `arch`,
/// running the compiled program and cross-checking it with the model.
pub fn explain(
    policy: &Policy,
    program: &[SockFilter],
    arch: Arch,
    syscall: &str,
    args: &[u64],
) -> Result<Explanation, ExplainError> {
    let nr = syscall_number(arch, syscall).ok_or_else(|| ExplainError::UnknownSyscall {
        name: syscall.to_string(),
        arch,
    })?;
    let mut data = SeccompData {
        nr,
        arch: arch.audit_arch().unwrap_or(0),
        ..Default::default()
    };
    for (slot, a) in data.args.iter_mut().zip(args) {
        *slot = *a;
    }
    let run = bpf::interpret(program, &data)?;
    let model = policy.decide(&data);
    if model.ret != run.ret {
        return Err(ExplainError::Mismatch {
            bpf: describe_ret(run.ret),
            model: describe_ret(model.ret),
        });
    }
    Ok(Explanation {
        arch,
        name: syscalls::name_of(arch, nr).map(str::to_string),
        nr,
        ret: run.ret,
        reason: model.reason,
        steps: run.steps,
    })
}

fn cond_text(c: &Cond) -> String {
    let a = format!("arg{}", c.index);
    match c.op {
        Operator::Equal => format!("{a} == {:#x}", c.datum),
        Operator::NotEqual => format!("{a} != {:#x}", c.datum),
        Operator::LessThan => format!("{a} < {:#x}", c.datum),
        Operator::LessOrEqual => format!("{a} <= {:#x}", c.datum),
        Operator::GreaterThan => format!("{a} > {:#x}", c.datum),
        Operator::GreaterOrEqual => format!("{a} >= {:#x}", c.datum),
        Operator::MaskedEqual => format!("({a} & {:#x}) == {:#x}", c.mask, c.datum),
    }
}

/// A one-line summary of what `policy` does with syscall `nr` of `arch`.
pub fn summary(policy: &Policy, arch: Arch, nr: u32) -> String {
    let token = arch.audit_arch().unwrap_or(0);
    let Some(section) = policy.sections.iter().find(|s| s.arches.contains(&arch)) else {
        return format!(
            "{} (architecture not covered)",
            describe_ret(policy.bad_arch_ret)
        );
    };
    let data = SeccompData {
        nr,
        arch: token,
        ..Default::default()
    };
    match section.syscalls.get(&nr) {
        Some((SyscallPolicy::Conditional(chains), _)) => {
            let mut s = String::new();
            for c in chains {
                let conds: Vec<String> = c.conds.iter().map(cond_text).collect();
                let _ = write!(
                    s,
                    "if {} then {}; ",
                    conds.join(" && "),
                    describe_ret(c.ret)
                );
            }
            let _ = write!(s, "else {}", describe_ret(policy.default_ret));
            s
        }
        _ => describe_ret(policy.decide(&data).ret),
    }
}

/// One syscall whose decision differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The architecture.
    pub arch: Arch,
    /// The syscall name.
    pub name: &'static str,
    /// Its number.
    pub nr: u32,
    /// The first profile's decision.
    pub left: String,
    /// The second profile's decision.
    pub right: String,
}

/// Every syscall (of every architecture either filter covers) whose decision differs.
pub fn diff(a: &Policy, b: &Policy) -> Vec<Difference> {
    let mut arches: Vec<Arch> = Vec::new();
    for s in a.sections.iter().chain(&b.sections) {
        for arch in &s.arches {
            if !arches.contains(arch) {
                arches.push(*arch);
            }
        }
    }
    let mut out = Vec::new();
    for arch in arches {
        for (name, nr) in syscalls::all(arch) {
            let (left, right) = (summary(a, arch, *nr), summary(b, arch, *nr));
            if left != right {
                out.push(Difference {
                    arch,
                    name,
                    nr: *nr,
                    left,
                    right,
                });
            }
        }
    }
    out
}
