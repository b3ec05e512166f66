//! `armorlet-runtime`: the node's container runtime layer.
//!
//! It owns pod sandboxes (network, IPC and UTS namespaces held by bind
//! mounts, no pause process), OCI bundles built like containerd's CRI plugin
//! builds them, the OCI runtime (crun or runc) invocations, the per-container
//! monitor process that owns the container's output and records its exit,
//! exec, and CRI-format log files.
//!
//! The API is synchronous; async callers use `spawn_blocking`.
//!
//! Layout of one container directory (`containers_dir/<id>/`): `spec.json`
//! (the [`ContainerSpec`]), `bundle/config.json`, `rootfs/` (overlay mount),
//! `upper/`, `work/`, `monitor.pid`, `status.json` (written by the monitor).

mod attach;
mod bundle;
pub mod crilog;
mod error;
mod exec;
mod host;
mod invoke;
mod monitor;
pub mod record;
mod rootfs;
mod runtime;
mod sandbox;
mod status;
mod types;
mod util;

pub use attach::AttachHandle;
pub use bundle::CONFINE_LISTENER;
pub use error::RuntimeError;
pub use exec::resize_pty;
pub use invoke::{DEADLINE_EXCEEDED, DEFAULT_REQUEST_TIMEOUT};
pub use monitor::monitor_main;
pub use runtime::Runtime;
pub use types::*;
pub use util::mount_points;
