//! Classic BPF: instructions, an interpreter over `seccomp_data` with the
//! kernel's rules, a disassembler and the raw `sock_filter` byte format.

use std::fmt::Write as _;

use crate::policy::{describe_ret, SeccompData};

/// One `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset when true.
    pub jt: u8,
    /// Jump offset when false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// Opcode parts (`linux/bpf_common.h`).
#[allow(missing_docs)]
pub mod op {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;
    pub const W: u16 = 0x00;
    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const MEM: u16 = 0x60;
    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;
    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    pub const A: u16 = 0x10;
    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;
}

/// The kernel's limit on program length (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

impl SockFilter {
    /// `ld [k]` (32-bit load from `seccomp_data`).
    pub const fn load(k: u32) -> Self {
        SockFilter {
            code: op::LD | op::W | op::ABS,
            jt: 0,
            jf: 0,
            k,
        }
    }
    /// A conditional jump `code` against `k`.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        SockFilter {
            code: op::JMP | code | op::K,
            jt,
            jf,
            k,
        }
    }
    /// `ja +k`.
    pub const fn ja(k: u32) -> Self {
        SockFilter {
            code: op::JMP | op::JA,
            jt: 0,
            jf: 0,
            k,
        }
    }
    /// `and #k`.
    pub const fn and(k: u32) -> Self {
        SockFilter {
            code: op::ALU | op::AND | op::K,
            jt: 0,
            jf: 0,
            k,
        }
    }
    /// `ret #k`.
    pub const fn ret(k: u32) -> Self {
        SockFilter {
            code: op::RET | op::K,
            jt: 0,
            jf: 0,
            k,
        }
    }
}

/// Why a program could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BpfError {
    /// Execution ran past the last instruction.
    #[error("instruction {0}: ran off the end of the program")]
    FellOff(usize),
    /// A jump leaves the program.
    #[error("instruction {0}: jump out of the program")]
    BadJump(usize),
    /// A load outside `seccomp_data` or not 4-byte aligned.
    #[error("instruction {pc}: load at offset {k} outside seccomp_data")]
    BadLoad {
        /// Where.
        pc: usize,
        /// The offset.
        k: u32,
    },
    /// Scratch memory index out of range.
    #[error("instruction {0}: scratch memory index out of range")]
    BadMem(usize),
    /// An opcode seccomp does not accept.
    #[error("instruction {pc}: unsupported opcode 0x{code:04x}")]
    BadOpcode {
        /// Where.
        pc: usize,
        /// The opcode.
        code: u16,
    },
    /// Division by a zero constant.
    #[error("instruction {0}: division by zero")]
    DivZero(usize),
    /// An empty or oversized program.
    #[error("program length {0} is not within 1..=4096")]
    BadLength(usize),
    /// Raw bytes that are not a whole number of instructions.
    #[error("{0} bytes is not a multiple of 8")]
    BadBytes(usize),
}

/// Result of running a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The return value.
    pub ret: u32,
    /// Instructions executed.
    pub steps: usize,
}

/// Runs `prog` over `data` as the kernel's seccomp BPF would.
pub fn interpret(prog: &[SockFilter], data: &SeccompData) -> Result<Run, BpfError> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(BpfError::BadLength(prog.len()));
    }
    let bytes = data.to_bytes();
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        let Some(ins) = prog.get(pc) else {
            return Err(BpfError::FellOff(pc));
        };
        steps += 1;
        let k = ins.k;
        let class = ins.code & 0x07;
        let next = |off: usize| -> Result<usize, BpfError> {
            let t = pc + 1 + off;
            if t >= prog.len() {
                Err(BpfError::BadJump(pc))
            } else {
                Ok(t)
            }
        };
        match class {
            op::LD | op::LDX => {
                let value = match ins.code & 0xe0 {
                    op::ABS if ins.code & 0x18 == op::W => {
                        let o = k as usize;
                        if !o.is_multiple_of(4) || o + 4 > bytes.len() {
                            return Err(BpfError::BadLoad { pc, k });
                        }
                        u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
                    }
                    op::IMM => k,
                    op::MEM => *mem.get(k as usize).ok_or(BpfError::BadMem(pc))?,
                    0x80 if ins.code & 0x18 == op::W => 64, // BPF_LEN
                    _ => return Err(BpfError::BadOpcode { pc, code: ins.code }),
                };
                if class == op::LD {
                    a = value;
                } else {
                    x = value;
                }
                pc += 1;
            }
            op::ST | op::STX => {
                let slot = mem.get_mut(k as usize).ok_or(BpfError::BadMem(pc))?;
                *slot = if class == op::ST { a } else { x };
                pc += 1;
            }
            op::ALU => {
                let src = if ins.code & op::X != 0 { x } else { k };
                a = match ins.code & 0xf0 {
                    op::ADD => a.wrapping_add(src),
                    op::SUB => a.wrapping_sub(src),
                    op::MUL => a.wrapping_mul(src),
                    op::DIV => a.checked_div(src).ok_or(BpfError::DivZero(pc))?,
                    op::MOD => a.checked_rem(src).ok_or(BpfError::DivZero(pc))?,
                    op::OR => a | src,
                    op::AND => a & src,
                    op::XOR => a ^ src,
                    op::LSH => a.checked_shl(src).unwrap_or(0),
                    op::RSH => a.checked_shr(src).unwrap_or(0),
                    op::NEG => a.wrapping_neg(),
                    _ => return Err(BpfError::BadOpcode { pc, code: ins.code }),
                };
                pc += 1;
            }
            op::JMP => {
                let src = if ins.code & op::X != 0 { x } else { k };
                let taken = match ins.code & 0xf0 {
                    op::JA => {
                        pc = next(k as usize)?;
                        continue;
                    }
                    op::JEQ => a == src,
                    op::JGT => a > src,
                    op::JGE => a >= src,
                    op::JSET => a & src != 0,
                    _ => return Err(BpfError::BadOpcode { pc, code: ins.code }),
                };
                pc = next(usize::from(if taken { ins.jt } else { ins.jf }))?;
            }
            op::RET => {
                let ret = match ins.code & 0x18 {
                    op::K => k,
                    op::A => a,
                    _ => return Err(BpfError::BadOpcode { pc, code: ins.code }),
                };
                return Ok(Run { ret, steps });
            }
            _ => {
                match ins.code {
                    c if c == op::MISC | op::TAX => x = a,
                    c if c == op::MISC | op::TXA => a = x,
                    _ => return Err(BpfError::BadOpcode { pc, code: ins.code }),
                }
                pc += 1;
            }
        }
    }
}

/// The raw `sock_filter` array (little-endian), as `seccomp_export_bpf` writes it.
pub fn to_bytes(prog: &[SockFilter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    out
}

/// Parses a raw `sock_filter` array.
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<SockFilter>, BpfError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(BpfError::BadBytes(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

fn field(k: u32) -> String {
    match k {
        0 => "nr".into(),
        4 => "arch".into(),
        8 => "ip_lo".into(),
        12 => "ip_hi".into(),
        16..=63 => {
            let i = (k - 16) / 8;
            let half = if (k - 16).is_multiple_of(8) {
                "lo"
            } else {
                "hi"
            };
            format!("args[{i}].{half}")
        }
        _ => format!("{k}"),
    }
}

/// A readable listing, one instruction per line with absolute jump targets.
pub fn disassemble(prog: &[SockFilter]) -> String {
    let mut out = String::new();
    for (pc, i) in prog.iter().enumerate() {
        let t = |off: u8| pc + 1 + usize::from(off);
        let text = match i.code {
            c if c == op::LD | op::W | op::ABS => format!("ld  [{}]", field(i.k)),
            c if c == op::ALU | op::AND | op::K => format!("and #0x{:x}", i.k),
            c if c == op::JMP | op::JA => format!("ja  {}", pc + 1 + i.k as usize),
            c if c == op::RET | op::K => format!("ret {}", describe_ret(i.k)),
            c if c & 0x07 == op::JMP && c & op::X == 0 => {
                let name = match c & 0xf0 {
                    op::JEQ => "jeq",
                    op::JGT => "jgt",
                    op::JGE => "jge",
                    op::JSET => "jset",
                    _ => "j??",
                };
                format!("{name} #0x{:x}, {}, {}", i.k, t(i.jt), t(i.jf))
            }
            c => format!("raw code=0x{c:04x} jt={} jf={} k=0x{:x}", i.jt, i.jf, i.k),
        };
        let _ = writeln!(out, "{pc:4}: {text}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(nr: u32, arch: u32) -> SeccompData {
        SeccompData {
            nr,
            arch,
            ..Default::default()
        }
    }

    #[test]
    fn runs_loads_jumps_and_returns() {
        let prog = [
            SockFilter::load(4),
            SockFilter::jump(op::JEQ, 7, 0, 3),
            SockFilter::load(0),
            SockFilter::jump(op::JGE, 10, 0, 1),
            SockFilter::ret(1),
            SockFilter::ret(2),
        ];
        assert_eq!(
            interpret(&prog, &data(3, 7)).unwrap(),
            Run { ret: 2, steps: 5 }
        );
        assert_eq!(interpret(&prog, &data(11, 7)).unwrap().ret, 1);
        assert_eq!(interpret(&prog, &data(11, 8)).unwrap().ret, 2);
    }

    #[test]
    fn rejects_bad_programs_without_panicking() {
        assert_eq!(interpret(&[], &data(0, 0)), Err(BpfError::BadLength(0)));
        assert_eq!(
            interpret(&[SockFilter::load(0)], &data(0, 0)),
            Err(BpfError::FellOff(1))
        );
        assert_eq!(
            interpret(&[SockFilter::load(64), SockFilter::ret(0)], &data(0, 0)),
            Err(BpfError::BadLoad { pc: 0, k: 64 })
        );
        assert_eq!(
            interpret(&[SockFilter::jump(op::JEQ, 0, 5, 5)], &data(0, 0)),
            Err(BpfError::BadJump(0))
        );
        assert_eq!(from_bytes(&[0; 9]), Err(BpfError::BadBytes(9)));
    }

    #[test]
    fn bytes_round_trip_and_args_are_little_endian() {
        let prog = vec![
            SockFilter::load(20),
            SockFilter::jump(op::JEQ, 0xdead, 0, 1),
            SockFilter::ret(5),
            SockFilter::ret(6),
        ];
        assert_eq!(from_bytes(&to_bytes(&prog)).unwrap(), prog);
        let mut d = data(0, 0);
        d.args[0] = 0xdead_0000_0000;
        assert_eq!(interpret(&prog, &d).unwrap().ret, 5);
        assert!(disassemble(&prog).contains("ld  [args[0].hi]"));
    }
}
