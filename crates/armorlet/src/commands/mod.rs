//! One module per top-level subcommand.

pub mod apparmor;
pub mod seccomp;
pub mod up;
