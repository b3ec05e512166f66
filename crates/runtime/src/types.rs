//! The public data types of the runtime contract (docs/node-design.md).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

/// Which OCI runtime runs the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// crun.
    Crun,
    /// runc.
    Runc,
}

impl RuntimeKind {
    /// The binary's name ("crun" / "runc").
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Crun => "crun",
            RuntimeKind::Runc => "runc",
        }
    }
}

/// Where the runtime keeps its state and which binary it drives.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// crun or runc.
    pub kind: RuntimeKind,
    /// The binary; `None` looks up `crun`/`runc` on `PATH`.
    pub binary: Option<PathBuf>,
    /// The OCI runtime's `--root`.
    pub state_root: PathBuf,
    /// One directory per container.
    pub containers_dir: PathBuf,
    /// One directory per pod sandbox.
    pub sandboxes_dir: PathBuf,
    /// The armorlet binary; the monitor runs as `<exe> monitor <container-dir>`.
    pub monitor_exe: PathBuf,
    /// Parent of the pods' cgroups (cgroupfs paths), e.g. `/armorlet/N`.
    pub cgroup_parent: String,
    /// Bound of each OCI runtime call but `exec` (the kubelet's `--runtime-request-timeout`,
    /// [`crate::DEFAULT_REQUEST_TIMEOUT`] by default): a call that outlives it is killed with
    /// its process group and fails with [`crate::RuntimeError::DeadlineExceeded`].
    pub request_timeout: std::time::Duration,
}

/// What a pod sandbox is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// The pod's UID (the sandbox's key).
    pub pod_uid: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The hostname set in the UTS namespace.
    pub hostname: String,
}

/// A pod sandbox: the namespaces its containers join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The pod's UID.
    pub pod_uid: String,
    /// Network namespace bind mount (stable path, for CNI).
    pub netns: PathBuf,
    /// IPC namespace bind mount.
    pub ipcns: PathBuf,
    /// UTS namespace bind mount.
    pub utsns: PathBuf,
    /// The hostname set in the UTS namespace.
    pub hostname: String,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// 64 lowercase hex characters.
    pub id: String,
    /// The pod (sandbox) it runs in.
    pub pod_uid: String,
    /// Persisted labels (pod namespace/name/uid, container name, restart count...).
    pub labels: BTreeMap<String, String>,
    /// The unpacked image: read-only lower layer of the rootfs.
    pub image_root: PathBuf,
    /// The container's process.
    pub process: ProcessSpec,
    /// Mount the rootfs read-only.
    pub readonly_rootfs: bool,
    /// Privileged: all capabilities, no masked paths, /sys rw, host devices.
    pub privileged: bool,
    /// Extra mounts (volumes).
    pub mounts: Vec<MountSpec>,
    /// OCI `linux.seccomp`; `None` is unconfined.
    pub seccomp: Option<serde_json::Value>,
    /// OCI `process.apparmorProfile` (kernel AppArmor backend only).
    pub apparmor_profile: Option<String>,
    /// Start through the Landlock confine helper.
    pub landlock: Option<LandlockLaunch>,
    /// cgroup resources.
    pub resources: Resources,
    /// The CRI log file the monitor writes.
    pub log_path: PathBuf,
    /// Record the container's syscalls into this file (merged with what it
    /// holds): `seccomp` (or the Landlock plan's filter) must notify for the
    /// syscalls to record; the monitor is their listener (see `record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_seccomp: Option<PathBuf>,
}

/// The container's process settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// argv (non-empty).
    pub args: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Working directory (absolute; empty means `/`).
    pub cwd: String,
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Keep stdin open (a FIFO in the container directory).
    pub stdin: bool,
    /// Close the container's stdin after the first attach session that wrote to it
    /// disconnects (`stdinOnce`; without a terminal, as containerd does).
    #[serde(default)]
    pub stdin_once: bool,
    /// Capability names ("CAP_CHOWN"): bounding = effective = permitted.
    pub capabilities: Vec<String>,
    /// Set `noNewPrivileges`.
    pub no_new_privileges: bool,
}

/// One extra mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path in the container.
    pub destination: String,
    /// Host path (ignored for `Tmpfs`/`Proc`).
    pub source: PathBuf,
    /// What kind of mount.
    pub kind: MountKind,
}

/// The kind of an extra mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A recursive bind mount of `source`.
    Bind {
        /// Mount read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs,
    /// A proc filesystem.
    Proc,
}

/// cgroup resources (cgroup v1 semantics, as the kubelet computes them).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// `cpu.shares`.
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
}

/// Start the container through the Landlock confine helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockLaunch {
    /// The static helper on the host, bind-mounted read-only at `/.armorlet/confine`.
    pub helper: PathBuf,
    /// The plan file the helper reads, bind-mounted read-only at `/.armorlet/plan`.
    pub plan: PathBuf,
}

/// The lifecycle state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Its process runs.
    Running,
    /// Its process exited.
    Exited,
    /// The state cannot be determined.
    Unknown,
}

/// What is known about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// The container ID.
    pub id: String,
    /// Its state.
    pub state: ContainerState,
    /// The init process' PID (host namespace) while it runs.
    pub pid: Option<u32>,
    /// When `create` finished.
    pub created_at: Option<SystemTime>,
    /// When `start` finished.
    pub started_at: Option<SystemTime>,
    /// When the process exited.
    pub finished_at: Option<SystemTime>,
    /// Exit code; 128+signal when killed by a signal.
    pub exit_code: Option<i32>,
    /// `OOMKilled` when the cgroup's OOM counter rose.
    pub reason: Option<String>,
    /// A message (e.g. why the state is unknown).
    pub message: Option<String>,
    /// The labels given at creation.
    pub labels: BTreeMap<String, String>,
}

/// A container found on disk (for adoption after a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    /// The container ID.
    pub id: String,
    /// Its pod.
    pub pod_uid: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its CRI log file.
    pub log_path: PathBuf,
}

/// A command to run in a running container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// argv (non-empty).
    pub args: Vec<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Give the process a stdin.
    pub stdin: bool,
    /// Extra `NAME=value` entries (added to the container's).
    pub env: Vec<String>,
}

/// A running exec'd process: it has the container's seccomp/AppArmor/Landlock confinement.
#[derive(Debug)]
pub struct ExecProcess {
    /// stdin; `None` when not requested; with a tty a dup of the pty master.
    pub stdin: Option<std::fs::File>,
    /// stdout; with a tty the pty master.
    pub stdout: Option<std::fs::File>,
    /// stderr; `None` with a tty.
    pub stderr: Option<std::fs::File>,
    /// The pty master, for [`resize_pty`].
    pub pty: Option<std::os::fd::OwnedFd>,
    /// The runtime's `exec` process: `wait()` gives the exec'd command's exit code.
    pub child: std::process::Child,
}

/// An attach session to a container's main process (see [`crate::Runtime::attach`]).
#[derive(Debug)]
pub struct Attached {
    /// Writes to the container's stdin; `None` when not asked for, when the container has no
    /// stdin, or when its `stdinOnce` stdin was already closed.
    pub stdin: Option<std::fs::File>,
    /// The container's standard output (everything, with a terminal), live from its monitor.
    pub stdout: std::fs::File,
    /// The container's standard error (`None` with a terminal).
    pub stderr: Option<std::fs::File>,
    /// Whether the container has a terminal.
    pub tty: bool,
    /// Whether the container's stdin is closed when this session's stdin closes (`stdinOnce`
    /// without a terminal); otherwise closing stdin ends the session.
    pub stdin_once: bool,
    /// The connection to the monitor.
    pub(crate) conn: std::os::unix::net::UnixStream,
    /// The thread splitting the monitor's frames; it ends when the container's output does.
    pub(crate) demux: Option<std::thread::JoinHandle<()>>,
}
