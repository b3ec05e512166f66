//! One module per top-level subcommand.

pub mod apparmor;
pub mod audit;
pub mod image;
pub mod kind;
pub mod monitor;
pub mod node;
pub mod seccomp;
pub mod up;
