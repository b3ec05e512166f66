//! Errors and warnings.

use std::fmt;

use crate::arch::Arch;

/// Where in the profile JSON something is, e.g. `syscalls[3].action`.
pub type JsonPath = String;

/// Anything that stops a profile from being parsed, checked or compiled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is larger than [`crate::MAX_PROFILE_BYTES`].
    #[error("profile is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Bad JSON, or a value of the wrong type or spelling; `path` is `.` for
    /// syntax errors at the top level.
    #[error("{}{message}", path_prefix(path))]
    Parse {
        /// Where.
        path: JsonPath,
        /// What serde said (with line and column).
        message: String,
    },
    /// The JSON is well-formed but the profile is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// Where.
        path: JsonPath,
        /// What is wrong.
        message: String,
    },
    /// The filter would cover an architecture we have no syscall table for.
    #[error("no syscall table for architecture {0} (supported: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_AARCH64, SCMP_ARCH_ARM)")]
    UnsupportedArch(Arch),
    /// The program exceeds the kernel's `BPF_MAXINSNS`.
    #[error("the BPF program has {len} instructions, more than the kernel's limit of {limit}")]
    ProgramTooLong {
        /// Instructions generated.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Something suspicious that runtimes accept (they warn and go on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub path: JsonPath,
    /// What.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
