//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in AppArmor node handling.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A policy file does not parse (our parser's diagnostics).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The diagnostics, one per line.
        message: String,
    },
    /// The requested backend cannot work on this host.
    #[error("AppArmor backend {backend}: {reason}")]
    Backend {
        /// `kernel` or `landlock`.
        backend: &'static str,
        /// Why not.
        reason: String,
    },
    /// A profile cannot be enforced exactly by Landlock (and `approximate` is off).
    #[error("profile {profile:?} cannot be enforced by Landlock: {}", .problems.join("; "))]
    Refused {
        /// Profile name.
        profile: String,
        /// One entry per rule: location, rule text and why.
        problems: Vec<String>,
    },
    /// The profile a container asks for is not in the registry.
    #[error("profile {0:?} is not loaded")]
    NotLoaded(String),
    /// `apparmor_parser` failed.
    #[error("apparmor_parser {args}: {message}")]
    Parser {
        /// Arguments given.
        args: String,
        /// Its stderr.
        message: String,
    },
    /// A plan file is malformed.
    #[error("confine plan: {0}")]
    Plan(String),
    /// Applying confinement failed (names the step).
    #[error("{step}: {message}")]
    Apply {
        /// The step: landlock, no_new_privs, capabilities, seccomp.
        step: &'static str,
        /// The OS error text.
        message: String,
    },
}

impl LandlockError {
    /// An IO error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LandlockError::Io {
            path: path.into(),
            source,
        }
    }
}
