//! Architectures: libseccomp's `SCMP_ARCH_*` names, Go's `GOARCH` names (used by
//! `includes.arches` in the moby and containers profiles) and audit tokens.

use std::fmt;
use std::str::FromStr;

/// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `AUDIT_ARCH_I386` (`EM_386 | __AUDIT_ARCH_LE`).
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

macro_rules! arches {
    ($( $variant:ident => $scmp:literal, [$($alias:literal),*] ;)*) => {
        /// Every architecture libseccomp knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Arch { $( $variant, )* }

        impl Arch {
            /// All architectures, in declaration order.
            pub const ALL: &'static [Arch] = &[$(Arch::$variant,)*];

            /// The `SCMP_ARCH_*` spelling used in OCI profiles.
            pub fn scmp_name(self) -> &'static str {
                match self { $( Arch::$variant => $scmp, )* }
            }

            /// Other spellings: libseccomp's lowercase names and Go's `GOARCH`.
            pub fn aliases(self) -> &'static [&'static str] {
                match self { $( Arch::$variant => &[$($alias),*], )* }
            }
        }
    };
}

arches! {
    X86 => "SCMP_ARCH_X86", ["x86", "i386", "i686", "386"];
    X86_64 => "SCMP_ARCH_X86_64", ["x86_64", "amd64"];
    X32 => "SCMP_ARCH_X32", ["x32"];
    Arm => "SCMP_ARCH_ARM", ["arm"];
    Aarch64 => "SCMP_ARCH_AARCH64", ["aarch64", "arm64"];
    Mips => "SCMP_ARCH_MIPS", ["mips"];
    Mips64 => "SCMP_ARCH_MIPS64", ["mips64"];
    Mips64N32 => "SCMP_ARCH_MIPS64N32", ["mips64n32"];
    Mipsel => "SCMP_ARCH_MIPSEL", ["mipsel", "mipsle"];
    Mipsel64 => "SCMP_ARCH_MIPSEL64", ["mipsel64", "mips64le"];
    Mipsel64N32 => "SCMP_ARCH_MIPSEL64N32", ["mipsel64n32"];
    Ppc => "SCMP_ARCH_PPC", ["ppc"];
    Ppc64 => "SCMP_ARCH_PPC64", ["ppc64"];
    Ppc64Le => "SCMP_ARCH_PPC64LE", ["ppc64le"];
    S390 => "SCMP_ARCH_S390", ["s390"];
    S390X => "SCMP_ARCH_S390X", ["s390x"];
    Parisc => "SCMP_ARCH_PARISC", ["parisc"];
    Parisc64 => "SCMP_ARCH_PARISC64", ["parisc64"];
    Riscv64 => "SCMP_ARCH_RISCV64", ["riscv64"];
    Loongarch64 => "SCMP_ARCH_LOONGARCH64", ["loongarch64", "loong64"];
    M68k => "SCMP_ARCH_M68K", ["m68k"];
    Sh => "SCMP_ARCH_SH", ["sh"];
    Sheb => "SCMP_ARCH_SHEB", ["sheb"];
}

/// An architecture name that is neither an `SCMP_ARCH_*` name nor a known alias.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {0:?}")]
pub struct UnknownArch(pub String);

impl Arch {
    /// Parses only the `SCMP_ARCH_*` spelling (the `architectures`/`archMap` fields).
    pub fn from_scmp(s: &str) -> Result<Arch, UnknownArch> {
        Arch::ALL
            .iter()
            .copied()
            .find(|a| a.scmp_name() == s)
            .ok_or_else(|| UnknownArch(s.to_string()))
    }

    /// True when `name` (any spelling) denotes this architecture.
    pub fn matches(self, name: &str) -> bool {
        self.scmp_name() == name || self.aliases().contains(&name)
    }

    /// The architecture of this build (x86_64 on the project's machines).
    pub fn native() -> Arch {
        if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else if cfg!(target_arch = "x86") {
            Arch::X86
        } else if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(target_arch = "s390x") {
            Arch::S390X
        } else if cfg!(target_arch = "riscv64") {
            Arch::Riscv64
        } else {
            Arch::Ppc64Le
        }
    }

    /// The `seccomp_data.arch` value the kernel reports (`AUDIT_ARCH_*`), for
    /// the x86 family and arm. x32 shares x86_64's token (the kernel tells them
    /// apart by the x32 bit in the syscall number).
    pub fn audit_arch(self) -> Option<u32> {
        match self {
            Arch::X86_64 | Arch::X32 => Some(AUDIT_ARCH_X86_64),
            Arch::X86 => Some(AUDIT_ARCH_I386),
            Arch::Aarch64 => Some(0xC000_00B7),
            Arch::Arm => Some(0x4000_0028),
            _ => None,
        }
    }

    /// Whether syscall arguments are 64 bits wide (libseccomp's `ARCH_SIZE_64`).
    /// x32 is a 32-bit ABI for libseccomp even though it runs on x86_64.
    pub fn is_64bit(self) -> bool {
        matches!(
            self,
            Arch::X86_64
                | Arch::Aarch64
                | Arch::Mips64
                | Arch::Mipsel64
                | Arch::Ppc64
                | Arch::Ppc64Le
                | Arch::S390X
                | Arch::Parisc64
                | Arch::Riscv64
                | Arch::Loongarch64
        )
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scmp_name())
    }
}

impl FromStr for Arch {
    type Err = UnknownArch;

    /// Accepts the `SCMP_ARCH_*` spelling and every alias, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let bare = lower.strip_prefix("scmp_arch_").unwrap_or(&lower);
        Arch::ALL
            .iter()
            .copied()
            .find(|a| a.scmp_name()[10..].eq_ignore_ascii_case(bare) || a.aliases().contains(&bare))
            .ok_or_else(|| UnknownArch(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("SCMP_ARCH_X86_64".parse(), Ok(Arch::X86_64));
        assert_eq!("amd64".parse(), Ok(Arch::X86_64));
        assert_eq!("i386".parse(), Ok(Arch::X86));
        assert_eq!("arm64".parse(), Ok(Arch::Aarch64));
        assert_eq!(Arch::from_scmp("SCMP_ARCH_X32"), Ok(Arch::X32));
        assert!(Arch::from_scmp("x32").is_err());
        assert_eq!(
            "SCMP_ARCH_PDP11".parse::<Arch>(),
            Err(UnknownArch("SCMP_ARCH_PDP11".into()))
        );
    }
}
