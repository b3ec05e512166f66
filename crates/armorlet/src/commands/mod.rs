//! One module per top-level subcommand.

pub mod apparmor;
pub mod audit;
pub mod daemon;
pub mod image;
pub mod kind;
pub mod monitor;
pub mod node;
pub mod profile;
pub mod record;
pub mod seccomp;
pub mod up;
