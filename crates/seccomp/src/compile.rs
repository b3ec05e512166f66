//! From the decision model to a classic BPF program.
//!
//! Layout:
//! ```text
//!   ld [arch]
//!   jeq <native token>      -> native section     (native first: shortest path)
//!   jeq <other token>       -> other section
//!   ret <bad-arch action>
//! section:
//!   ld [nr]
//!   balanced binary search (jge) over intervals of syscall numbers; each leaf
//!   is `ret <action>` or the argument checks of one syscall
//! ```
//! The syscall number space (all 2^32 values) is cut into intervals with one
//! outcome each; neighbouring numbers with the same unconditional outcome share
//! an interval, and the x32-bit ranges that get the bad-arch action are just
//! more intervals, so the hot path is `ld, jeq, ld, log2(intervals) x jge, ret`.
//! Every subtree is self-contained (jumps only forward inside it), and a `ja`
//! trampoline is inserted when a conditional jump would exceed 255.

use crate::bpf::{op, SockFilter, MAX_INSNS};
use crate::error::{Error, Result};
use crate::model::Operator;
use crate::policy::{Chain, Cond, Policy, Section, SyscallPolicy};

const NR: u32 = 0;
const ARCH: u32 = 4;

fn arg_lo(i: u8) -> u32 {
    16 + 8 * u32::from(i)
}

fn arg_hi(i: u8) -> u32 {
    arg_lo(i) + 4
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Ret(u32),
    Syscall(u32),
}

/// A jump target inside one chain: skip `n` instructions, or fail the chain.
#[derive(Clone, Copy)]
enum J {
    Skip(u8),
    Fail,
}

struct Ins {
    code: u16,
    k: u32,
    jt: J,
    jf: J,
}

fn ld(k: u32) -> Ins {
    Ins {
        code: op::LD | op::W | op::ABS,
        k,
        jt: J::Skip(0),
        jf: J::Skip(0),
    }
}

fn and(k: u32) -> Ins {
    Ins {
        code: op::ALU | op::AND | op::K,
        k,
        jt: J::Skip(0),
        jf: J::Skip(0),
    }
}

fn jmp(code: u16, k: u32, jt: J, jf: J) -> Ins {
    Ins {
        code: op::JMP | code | op::K,
        k,
        jt,
        jf,
    }
}

fn hi32(v: u64) -> u32 {
    (v >> 32) as u32
}

fn lo32(v: u64) -> u32 {
    v as u32
}

/// The instructions of one comparison; falling off the end means it holds.
fn cond_code(c: &Cond, wide: bool, out: &mut Vec<Ins>) {
    use J::{Fail, Skip};
    let (dh, dl) = (hi32(c.datum), lo32(c.datum));
    let (lo, hi) = (arg_lo(c.index), arg_hi(c.index));
    if !wide {
        out.push(ld(lo));
        match c.op {
            Operator::Equal => out.push(jmp(op::JEQ, dl, Skip(0), Fail)),
            Operator::NotEqual => out.push(jmp(op::JEQ, dl, Fail, Skip(0))),
            Operator::GreaterThan => out.push(jmp(op::JGT, dl, Skip(0), Fail)),
            Operator::GreaterOrEqual => out.push(jmp(op::JGE, dl, Skip(0), Fail)),
            Operator::LessThan => out.push(jmp(op::JGE, dl, Fail, Skip(0))),
            Operator::LessOrEqual => out.push(jmp(op::JGT, dl, Fail, Skip(0))),
            Operator::MaskedEqual => {
                out.push(and(lo32(c.mask)));
                out.push(jmp(op::JEQ, dl, Skip(0), Fail));
            }
        }
        return;
    }
    match c.op {
        Operator::Equal => out.extend([
            ld(hi),
            jmp(op::JEQ, dh, Skip(0), Fail),
            ld(lo),
            jmp(op::JEQ, dl, Skip(0), Fail),
        ]),
        Operator::NotEqual => out.extend([
            ld(hi),
            jmp(op::JEQ, dh, Skip(0), Skip(2)),
            ld(lo),
            jmp(op::JEQ, dl, Fail, Skip(0)),
        ]),
        Operator::GreaterThan | Operator::GreaterOrEqual => {
            let last = if c.op == Operator::GreaterThan {
                op::JGT
            } else {
                op::JGE
            };
            out.extend([
                ld(hi),
                jmp(op::JGT, dh, Skip(3), Skip(0)),
                jmp(op::JEQ, dh, Skip(0), Fail),
                ld(lo),
                jmp(last, dl, Skip(0), Fail),
            ]);
        }
        Operator::LessThan | Operator::LessOrEqual => {
            // The negation of GE / GT.
            let last = if c.op == Operator::LessThan {
                op::JGE
            } else {
                op::JGT
            };
            out.extend([
                ld(hi),
                jmp(op::JGT, dh, Fail, Skip(0)),
                jmp(op::JEQ, dh, Skip(0), Skip(2)),
                ld(lo),
                jmp(last, dl, Fail, Skip(0)),
            ]);
        }
        Operator::MaskedEqual => {
            let (mh, ml) = (hi32(c.mask), lo32(c.mask));
            if mh != 0 {
                out.extend([ld(hi), and(mh), jmp(op::JEQ, dh, Skip(0), Fail)]);
            }
            if ml != 0 {
                out.extend([ld(lo), and(ml), jmp(op::JEQ, dl, Skip(0), Fail)]);
            }
        }
    }
}

/// One chain: its comparisons then `ret`; a failing comparison jumps just past
/// the `ret`, where the next chain (or the default) starts.
fn chain_code(chain: &Chain, wide: bool) -> Result<Vec<SockFilter>> {
    let mut ins = Vec::new();
    for c in &chain.conds {
        cond_code(c, wide, &mut ins);
    }
    let len = ins.len() + 1;
    let mut out = Vec::with_capacity(len);
    for (pc, i) in ins.iter().enumerate() {
        let resolve = |j: J| -> Result<u8> {
            let off = match j {
                J::Skip(n) => usize::from(n),
                J::Fail => len - (pc + 1),
            };
            u8::try_from(off).map_err(|_| Error::ProgramTooLong {
                len: off,
                limit: 255,
            })
        };
        out.push(SockFilter {
            code: i.code,
            jt: resolve(i.jt)?,
            jf: resolve(i.jf)?,
            k: i.k,
        });
    }
    out.push(SockFilter::ret(chain.ret));
    Ok(out)
}

fn leaf(section: &Section, default_ret: u32, t: Target) -> Result<Vec<SockFilter>> {
    match t {
        Target::Ret(r) => Ok(vec![SockFilter::ret(r)]),
        Target::Syscall(nr) => {
            let mut out = Vec::new();
            match section.syscalls.get(&nr) {
                Some((SyscallPolicy::Conditional(chains), wide)) => {
                    for c in chains {
                        out.extend(chain_code(c, *wide)?);
                    }
                    out.push(SockFilter::ret(default_ret));
                }
                Some((SyscallPolicy::Always { ret, .. }, _)) => out.push(SockFilter::ret(*ret)),
                None => out.push(SockFilter::ret(default_ret)),
            }
            Ok(out)
        }
    }
}

/// `jump` to `then` when true, else fall into `otherwise`; both are
/// self-contained blocks laid out after the jump.
fn branch(code: u16, k: u32, then: Vec<SockFilter>, otherwise: Vec<SockFilter>) -> Vec<SockFilter> {
    let mut out = Vec::with_capacity(then.len() + otherwise.len() + 2);
    match u8::try_from(otherwise.len()) {
        Ok(skip) => out.push(SockFilter::jump(code, k, skip, 0)),
        Err(_) => {
            out.push(SockFilter::jump(code, k, 0, 1));
            out.push(SockFilter::ja(otherwise.len() as u32));
        }
    }
    out.extend(otherwise);
    out.extend(then);
    out
}

/// Like [`branch`] but with the true side laid out first, so it is reached
/// without a trampoline (used for the architecture check: the native section
/// comes right after its `jeq`).
fn branch_then_first(
    code: u16,
    k: u32,
    then: Vec<SockFilter>,
    otherwise: Vec<SockFilter>,
) -> Vec<SockFilter> {
    let mut out = Vec::with_capacity(then.len() + otherwise.len() + 2);
    match u8::try_from(then.len()) {
        Ok(skip) => out.push(SockFilter::jump(code, k, 0, skip)),
        Err(_) => {
            out.push(SockFilter::jump(code, k, 1, 0));
            out.push(SockFilter::ja(then.len() as u32));
        }
    }
    out.extend(then);
    out.extend(otherwise);
    out
}

/// A search subtree whose leaves are all returns: its `jge` nodes in pre-order,
/// then one `ret` per distinct value that the leaves jump to, so a subtree
/// with n intervals and d outcomes takes n-1+d instructions instead of 2n-1.
/// The executed path is the same as with inline returns.
fn pooled(segs: &[(u64, Target)]) -> Option<Vec<SockFilter>> {
    let mut pool: Vec<u32> = Vec::new();
    for (_, t) in segs {
        let Target::Ret(r) = t else { return None };
        if !pool.contains(r) {
            pool.push(*r);
        }
    }
    let nodes = segs.len() - 1;
    if nodes + pool.len() > 256 {
        return None;
    }
    // Where a subtree starts: an internal node's position, or a pool slot.
    fn target(segs: &[(u64, Target)], at: usize, nodes: usize, pool: &[u32]) -> usize {
        match segs {
            [(_, Target::Ret(r))] => nodes + pool.iter().position(|p| p == r).unwrap_or(0),
            _ => at,
        }
    }
    fn emit(
        segs: &[(u64, Target)],
        at: usize,
        nodes: usize,
        pool: &[u32],
        out: &mut Vec<SockFilter>,
    ) {
        if segs.len() < 2 {
            return;
        }
        let mid = segs.len() / 2;
        let (left, right) = (&segs[..mid], &segs[mid..]);
        let left_at = at + 1;
        let right_at = left_at + left.len() - 1;
        let jt = target(right, right_at, nodes, pool) - at - 1;
        let jf = target(left, left_at, nodes, pool) - at - 1;
        out.push(SockFilter::jump(
            op::JGE,
            right[0].0 as u32,
            jt as u8,
            jf as u8,
        ));
        emit(left, left_at, nodes, pool, out);
        emit(right, right_at, nodes, pool, out);
    }
    let mut out = Vec::with_capacity(nodes + pool.len());
    emit(segs, 0, nodes, &pool, &mut out);
    out.extend(pool.iter().map(|r| SockFilter::ret(*r)));
    Some(out)
}

fn search(section: &Section, default_ret: u32, segs: &[(u64, Target)]) -> Result<Vec<SockFilter>> {
    if segs.len() == 1 {
        return leaf(section, default_ret, segs[0].1);
    }
    if let Some(code) = pooled(segs) {
        return Ok(code);
    }
    let mid = segs.len() / 2;
    let left = search(section, default_ret, &segs[..mid])?;
    let right = search(section, default_ret, &segs[mid..])?;
    Ok(branch(op::JGE, segs[mid].0 as u32, right, left))
}

/// The intervals of the syscall number space, each with one outcome.
fn segments(section: &Section, default_ret: u32, bad_ret: u32) -> Vec<(u64, Target)> {
    let mut items: Vec<(u64, u64, Target)> = section
        .bad_ranges
        .iter()
        .map(|(lo, hi)| (u64::from(*lo), u64::from(*hi), Target::Ret(bad_ret)))
        .collect();
    let in_bad = |nr: u32| {
        section
            .bad_ranges
            .iter()
            .any(|(l, h)| (*l..=*h).contains(&nr))
    };
    for (nr, (p, _)) in &section.syscalls {
        if in_bad(*nr) {
            continue;
        }
        let t = match p {
            SyscallPolicy::Always { ret, .. } => Target::Ret(*ret),
            SyscallPolicy::Conditional(_) => Target::Syscall(*nr),
        };
        items.push((u64::from(*nr), u64::from(*nr), t));
    }
    items.sort_by_key(|i| i.0);
    let mut segs: Vec<(u64, Target)> = Vec::new();
    let mut push = |start: u64, t: Target| match segs.last() {
        Some((_, last)) if *last == t && matches!(t, Target::Ret(_)) => {}
        _ => segs.push((start, t)),
    };
    let mut pos = 0u64;
    for (lo, hi, t) in items {
        if lo > pos {
            push(pos, Target::Ret(default_ret));
        }
        push(lo, t);
        pos = hi + 1;
    }
    if pos <= u64::from(u32::MAX) {
        push(pos, Target::Ret(default_ret));
    }
    segs
}

fn section_code(policy: &Policy, section: &Section) -> Result<Vec<SockFilter>> {
    let segs = segments(section, policy.default_ret, policy.bad_arch_ret);
    let mut out = vec![SockFilter::load(NR)];
    out.extend(search(section, policy.default_ret, &segs)?);
    Ok(out)
}

impl Policy {
    /// Compiles to a BPF program the kernel accepts (at most 4096 instructions).
    pub fn compile(&self) -> Result<Vec<SockFilter>> {
        let mut tail = vec![SockFilter::ret(self.bad_arch_ret)];
        for section in self.sections.iter().rev() {
            let body = section_code(self, section)?;
            tail = branch_then_first(op::JEQ, section.audit_arch, body, tail);
        }
        let mut prog = vec![SockFilter::load(ARCH)];
        prog.extend(tail);
        if prog.len() > MAX_INSNS {
            return Err(Error::ProgramTooLong {
                len: prog.len(),
                limit: MAX_INSNS,
            });
        }
        Ok(prog)
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::{Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    use crate::bpf::{interpret, op};
    use crate::error::Error;
    use crate::model::Profile;
    use crate::policy::SeccompData;
    use crate::resolve::ResolveContext;
    use crate::syscalls;

    fn ctx() -> ResolveContext {
        ResolveContext::new(Arch::X86_64, ["CAP_SYS_ADMIN"], "6.1".parse().unwrap())
    }

    /// A rule with an argument condition on every syscall of every x86 arch:
    /// large subtrees, so `ja` trampolines are needed; the program must still
    /// agree with the model everywhere.
    #[test]
    fn big_programs_use_trampolines_and_agree_with_the_model() {
        let names: Vec<String> = syscalls::all(Arch::X86_64)
            .iter()
            .take(150)
            .map(|(n, _)| format!("{n:?}"))
            .collect();
        let text = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"syscalls":[
              {{"names":[{}],"action":"SCMP_ACT_ALLOW","args":[{{"index":1,"value":7,"op":"SCMP_CMP_GE"}}]}}]}}"#,
            names.join(",")
        );
        let policy = Profile::from_json(&text)
            .unwrap()
            .resolve(&ctx())
            .policy()
            .unwrap();
        let prog = policy.compile().unwrap();
        assert!(prog.len() > 1000, "{}", prog.len());
        assert!(
            prog.iter().any(|i| i.code == op::JMP | op::JA),
            "no trampoline"
        );
        for token in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0] {
            for nr in (0..1100).chain([0x4000_0000, u32::MAX]) {
                for a1 in [0, 6, 7, 8, 1 << 40] {
                    let d = SeccompData {
                        nr,
                        arch: token,
                        args: [0, a1, 0, 0, 0, 0],
                        ..Default::default()
                    };
                    assert_eq!(
                        interpret(&prog, &d).unwrap().ret,
                        policy.decide(&d).ret,
                        "{d:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn hot_path_is_logarithmic() {
        let p = crate::runtime_default::runtime_default();
        let policy = p.resolve(&ctx()).policy().unwrap();
        let prog = policy.compile().unwrap();
        let worst = (0..600)
            .map(|nr| {
                let d = SeccompData {
                    nr,
                    arch: AUDIT_ARCH_X86_64,
                    ..Default::default()
                };
                interpret(&prog, &d).unwrap().steps
            })
            .max()
            .unwrap();
        // ld arch, jeq, ld nr, ~log2(intervals) jge, ret (+ argument checks).
        assert!(worst <= 30, "worst path {worst}");
    }

    #[test]
    fn too_many_instructions_is_an_error_not_a_panic() {
        let rules: Vec<String> = syscalls::all(Arch::X86_64)
            .iter()
            .map(|(n, _)| {
                format!(
                    r#"{{"names":["{n}"],"action":"SCMP_ACT_ALLOW","args":[
                      {{"index":0,"value":1,"op":"SCMP_CMP_GT"}},{{"index":1,"value":2,"op":"SCMP_CMP_LT"}},
                      {{"index":2,"value":3,"op":"SCMP_CMP_NE"}},{{"index":3,"value":4,"op":"SCMP_CMP_GE"}}]}}"#
                )
            })
            .collect();
        let text = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{}]}}"#,
            rules.join(",")
        );
        let policy = Profile::from_json(&text)
            .unwrap()
            .resolve(&ctx())
            .policy()
            .unwrap();
        match policy.compile() {
            Err(Error::ProgramTooLong { len, limit: 4096 }) => assert!(len > 4096),
            other => panic!("{other:?}"),
        }
    }
}
