//! Syscall tables per architecture, generated from the kernel UAPI headers and
//! libseccomp's tables (see `gen.rs` and the header of `generated.rs`).
//!
//! Name resolution follows libseccomp: a name is resolved separately for each
//! architecture of a filter, and a name that does not exist on an architecture is
//! skipped there. On x86 the socket and SysV IPC calls are also reachable through
//! the multiplexers `socketcall(2)` and `ipc(2)` (see [`multiplexed`]).

#[doc(hidden)]
pub mod gen;
mod generated;

use crate::arch::Arch;

/// The x32 ABI marker bit in syscall numbers (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The x86 socketcall(2) syscall number.
const X86_SOCKETCALL: &str = "socketcall";
/// The x86 ipc(2) syscall number.
const X86_IPC: &str = "ipc";

fn table(arch: Arch) -> Option<&'static [(&'static str, u32)]> {
    match arch {
        Arch::X86_64 => Some(generated::X86_64),
        Arch::X86 => Some(generated::X86),
        Arch::X32 => Some(generated::X32),
        Arch::Aarch64 => Some(generated::AARCH64),
        Arch::Arm => Some(generated::ARM),
        _ => None,
    }
}

/// Whether a syscall table exists for `arch` (so filters can be compiled for it).
pub fn supported(arch: Arch) -> bool {
    table(arch).is_some()
}

/// The architectures with a syscall table.
pub fn supported_arches() -> &'static [Arch] {
    &[Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm]
}

/// The syscall number of `name` on `arch` (x32 numbers include the x32 bit).
pub fn resolve(arch: Arch, name: &str) -> Option<u32> {
    let t = table(arch)?;
    t.binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| t[i].1)
}

/// The name of syscall `nr` on `arch`.
pub fn name_of(arch: Arch, nr: u32) -> Option<&'static str> {
    table(arch)?
        .iter()
        .find(|(_, n)| *n == nr)
        .map(|(name, _)| *name)
}

/// All `(name, number)` pairs of `arch`, sorted by name.
pub fn all(arch: Arch) -> &'static [(&'static str, u32)] {
    table(arch).unwrap_or(&[])
}

/// Whether any architecture we know (or the x86 multiplexers) has `name`; a
/// name known nowhere is what runtimes warn about and skip.
pub fn known_anywhere(name: &str) -> bool {
    supported_arches()
        .iter()
        .any(|a| resolve(*a, name).is_some())
        || multiplexed_call(name).is_some()
}

/// Which multiplexer carries `name` on x86, and the call number it passes in
/// the first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multiplexed {
    /// The multiplexer syscall number on x86 (`socketcall` or `ipc`).
    pub syscall: u32,
    /// The value of the first argument that selects `name`.
    pub call: u32,
}

fn multiplexed_call(name: &str) -> Option<(&'static str, u32)> {
    let find = |t: &'static [(&'static str, u32)]| {
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    };
    if let Some(call) = find(generated::SOCKETCALL) {
        return Some((X86_SOCKETCALL, call));
    }
    find(generated::IPC).map(|call| (X86_IPC, call))
}

/// On x86 (the only architecture here with multiplexers), the multiplexed form
/// of a socket or IPC call, as libseccomp adds it next to the direct syscall.
pub fn multiplexed(arch: Arch, name: &str) -> Option<Multiplexed> {
    if arch != Arch::X86 {
        return None;
    }
    let (mux, call) = multiplexed_call(name)?;
    Some(Multiplexed {
        syscall: resolve(arch, mux)?,
        call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_per_arch() {
        assert_eq!(resolve(Arch::X86_64, "read"), Some(0));
        assert_eq!(resolve(Arch::X86_64, "getppid"), Some(110));
        assert_eq!(resolve(Arch::X86, "getppid"), Some(64));
        assert_eq!(resolve(Arch::X32, "read"), Some(X32_SYSCALL_BIT));
        assert_eq!(resolve(Arch::X86_64, "socketcall"), None);
        assert_eq!(resolve(Arch::X86, "socketcall"), Some(102));
        assert_eq!(name_of(Arch::X86, 102), Some("socketcall"));
        assert!(known_anywhere("socketcall"));
        assert!(known_anywhere("send"));
        assert!(!known_anywhere("no_such_syscall"));
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for arch in supported_arches() {
            let t = all(*arch);
            assert!(t.len() > 290, "{arch}: {} entries", t.len());
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{arch} not sorted");
        }
    }

    #[test]
    fn x86_socket_calls_are_multiplexed() {
        assert_eq!(
            multiplexed(Arch::X86, "connect"),
            Some(Multiplexed {
                syscall: 102,
                call: 3
            })
        );
        assert_eq!(
            multiplexed(Arch::X86, "shmget"),
            Some(Multiplexed {
                syscall: 117,
                call: 23
            })
        );
        assert_eq!(multiplexed(Arch::X86_64, "connect"), None);
    }
}
