//! Seccomp recording in the container monitor.
//!
//! A container created with [`ContainerSpec::record_seccomp`] runs under a
//! profile whose allowed syscalls notify (`SCMP_ACT_NOTIFY`, built by the node
//! from the container's own profile). Its listener fd reaches the monitor on
//! the socket [`socket_path`]: the OCI runtime sends it there (`listenerPath`,
//! an SCM_RIGHTS message with the container state), or, for a container
//! started through the Landlock confine helper, the helper announces the fd
//! number and the monitor takes the fd with `pidfd_getfd(2)` from the peer's
//! pid. `crun exec`/`runc exec` processes get their own listener on the same
//! socket. Every listener is drained by its own thread; the path arguments of
//! file syscalls are read from the caller's memory for the AppArmor side of
//! the recording ([`apparmor_observer`]); each syscall or access new to the
//! recording rewrites the recording file (merged with what earlier runs of the
//! container left there).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use armorlet_apparmor::generate::{self, Observed, Task};
use armorlet_seccomp::notify::{self, Listener};
use armorlet_seccomp::record::{NotifyRuntime, Recording};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::types::RuntimeKind;

/// Where the recorder sockets live: short absolute paths (a unix socket path
/// has at most 107 bytes; container directories can be longer).
const SOCKET_DIR: &str = "/run/armorlet/seccomp";

/// The recorder socket of container `id`.
pub fn socket_path(id: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{id}.sock"))
}

/// What a recorded container did: its syscalls (for a seccomp profile) and the
/// accesses AppArmor mediates (for an AppArmor profile).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecording {
    /// The syscalls.
    #[serde(flatten)]
    pub seccomp: Recording,
    /// Files, network and (inferred) capabilities.
    #[serde(default, skip_serializing_if = "Observed::is_empty")]
    pub apparmor: Observed,
}

impl ContainerRecording {
    /// Adds everything `other` saw.
    pub fn merge(&mut self, other: &ContainerRecording) {
        self.seccomp.merge(&other.seccomp);
        self.apparmor.merge(&other.apparmor);
    }
}

/// Reads a recording file (an empty recording when there is none yet).
pub fn read_recording(path: &Path) -> Result<ContainerRecording, RuntimeError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| RuntimeError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ContainerRecording::default()),
        Err(e) => Err(RuntimeError::io(path, e)),
    }
}

/// The caller of a notified syscall, read through `/proc/<pid>` (paths come
/// out as the caller sees them: the kernel resolves `cwd` and `fd` links
/// against the caller's own root).
#[derive(Debug, Clone, Copy)]
pub struct ProcTask(pub u32);

impl ProcTask {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::File::open(format!("/proc/{}/mem", self.0)).ok()?;
        let mut buf = vec![0u8; len];
        let n = mem.read_at(&mut buf, addr).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

impl Task for ProcTask {
    fn string(&self, addr: u64) -> Option<String> {
        if addr == 0 {
            return None;
        }
        // PATH_MAX, read in one go (a short read at the end of a mapping is fine).
        let bytes = self.read(addr, 4096)?;
        let end = bytes.iter().position(|b| *b == 0)?;
        String::from_utf8(bytes[..end].to_vec()).ok()
    }

    fn bytes(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self.read(addr, len).filter(|b| b.len() == len)
    }

    fn fd_path(&self, fd: i32) -> Option<String> {
        let link = std::fs::read_link(format!("/proc/{}/fd/{fd}", self.0)).ok()?;
        Some(link.to_string_lossy().into_owned())
    }

    fn cwd(&self) -> Option<String> {
        let link = std::fs::read_link(format!("/proc/{}/cwd", self.0)).ok()?;
        Some(link.to_string_lossy().into_owned())
    }

    fn is_dir(&self, path: &str) -> bool {
        std::fs::metadata(format!("/proc/{}/root{path}", self.0)).is_ok_and(|m| m.is_dir())
    }

    fn exists(&self, path: &str) -> bool {
        std::fs::symlink_metadata(format!("/proc/{}/root{path}", self.0)).is_ok()
    }

    /// Walks `path` component by component under `/proc/<pid>/root`, reading
    /// each symlink there (absolute targets restart at the caller's root, which
    /// the kernel's own walk from the host would not do). `/proc/self` is the
    /// caller, and its magic links (`exe`, `cwd`, `root`, `fd/N`) are read from
    /// the host's `/proc/<pid>`, which shows their targets as the caller sees them.
    fn real_path(&self, path: &str, follow_last: bool) -> String {
        let pid = self.0;
        let own = ["/proc/self/", "/proc/thread-self/"]
            .iter()
            .find_map(|p| path.strip_prefix(p));
        if let Some(rest) = own {
            let magic = matches!(rest, "exe" | "cwd" | "root")
                || rest
                    .strip_prefix("fd/")
                    .is_some_and(|n| n.parse::<u32>().is_ok());
            if magic && follow_last {
                if let Ok(t) = std::fs::read_link(format!("/proc/{pid}/{rest}")) {
                    let t = t.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        return t;
                    }
                }
            }
            return path.to_owned();
        }
        if path.starts_with("/proc/") || path.starts_with("/dev/") {
            // Kernel filesystems: mediated by the path as named.
            return path.to_owned();
        }
        let root = format!("/proc/{pid}/root");
        let mut done: Vec<String> = Vec::new();
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let last = todo.is_empty();
            let candidate = format!(
                "/{}",
                [done.join("/"), c.clone()]
                    .join("/")
                    .trim_start_matches('/')
            );
            let link = if last && !follow_last {
                None
            } else {
                std::fs::read_link(format!("{root}{candidate}")).ok()
            };
            match link {
                Some(target) if hops < 40 => {
                    hops += 1;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(
                        target
                            .split('/')
                            .filter(|c| !c.is_empty())
                            .rev()
                            .map(str::to_owned),
                    );
                }
                _ => done.push(c),
            }
        }
        format!("/{}", done.join("/"))
    }
}

/// An observer adding the AppArmor-relevant accesses of each x86_64 syscall
/// to `into`, each read checked against the notification still being pending.
pub fn apparmor_observer(into: Arc<Mutex<Observed>>) -> notify::Observer {
    Box::new(move |listener, n| {
        let Some((arch, name)) = armorlet_seccomp::record::identify(n.data.arch, n.data.nr) else {
            return false;
        };
        if arch != armorlet_seccomp::Arch::X86_64 {
            return false;
        }
        let accesses = generate::decode(name, &n.data.args, &ProcTask(n.pid));
        if accesses.is_empty() || !listener.id_valid(n.id) {
            return false;
        }
        let mut o = into.lock().unwrap_or_else(|e| e.into_inner());
        // Every access is added (no short-circuit).
        let mut new = false;
        for a in accesses {
            new |= o.add(a);
        }
        new
    })
}

/// Binds the container's recorder socket and serves it for the life of the
/// monitor (detached threads). `dir` is the container's directory (its
/// `init.pid` tells which processes are the container's).
pub(crate) fn start(
    id: &str,
    dir: &Path,
    file: &Path,
    kind: RuntimeKind,
) -> Result<(), RuntimeError> {
    let socket = socket_path(id);
    std::fs::create_dir_all(SOCKET_DIR).map_err(|e| RuntimeError::io(SOCKET_DIR, e))?;
    // Only root on the host reaches the sockets; a container reaches its own
    // through a bind mount.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(SOCKET_DIR, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| RuntimeError::io(SOCKET_DIR, e))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| RuntimeError::io(&socket, e))?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io(dir, e))?;
    }
    let mut recording = read_recording(file)?;
    // What the recording profile had to leave allowed (runc's `write`) is
    // never reported but needed: it goes in from the start.
    let notify_runtime = match kind {
        RuntimeKind::Runc => NotifyRuntime::Runc,
        RuntimeKind::Crun => NotifyRuntime::Crun,
    };
    let arch = armorlet_seccomp::Arch::native();
    for name in notify_runtime.unobserved() {
        recording
            .seccomp
            .syscalls
            .entry(arch)
            .or_default()
            .insert((*name).to_owned());
    }
    save(&recording, file)?;
    let recording = Arc::new(Mutex::new(recording));
    let file = file.to_owned();
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (recording, file, dir) = (recording.clone(), file.clone(), dir.clone());
            std::thread::spawn(move || {
                if let Err(e) = serve(conn, &recording, &file, &dir) {
                    crate::util::note!("monitor: seccomp recorder: {e}");
                }
            });
        }
    });
    Ok(())
}

/// One connection: take its listener, record until no task uses the filter.
///
/// Only the container's own listeners are taken, or a recording could be fed
/// syscalls the container never made: a sent fd must come from root (the OCI
/// runtime), an announced one from a process in the container's pid namespace.
fn serve(
    conn: UnixStream,
    recording: &Arc<Mutex<ContainerRecording>>,
    file: &Path,
    dir: &Path,
) -> Result<(), RuntimeError> {
    let cred = rustix::net::sockopt::socket_peercred(&conn)
        .map_err(|e| RuntimeError::io("SO_PEERCRED", e.into()))?;
    let pid = cred.pid.as_raw_nonzero().get() as u32;
    let listener = match receive_fd(&conn)? {
        Received::Fd(fd) => {
            if cred.uid.as_raw() != 0 {
                return Err(RuntimeError::Invalid(format!(
                    "refusing a listener sent by uid {} (not the OCI runtime)",
                    cred.uid.as_raw()
                )));
            }
            Listener::new(fd)
        }
        Received::Announced(fd) => {
            if !in_container(dir, pid) {
                return Err(RuntimeError::Invalid(format!(
                    "refusing a listener announced by process {pid}, which is not in the container"
                )));
            }
            match notify::take_listener(pid, fd) {
                Ok(l) => l,
                Err(e) => {
                    // The helper waits in its first syscall for an answer that never comes.
                    let _ = rustix::process::kill_process(
                        rustix::process::Pid::from_raw(pid as i32)
                            .ok_or_else(|| RuntimeError::Invalid("peer pid 0".into()))?,
                        rustix::process::Signal::KILL,
                    );
                    return Err(RuntimeError::io("pidfd_getfd", e));
                }
            }
        }
    };
    let observed = Arc::new(Mutex::new(Observed::default()));
    let mut local = Recording::default();
    notify::record(
        &listener,
        &mut local,
        apparmor_observer(observed.clone()),
        |r| {
            let mut all = recording.lock().unwrap_or_else(|e| e.into_inner());
            all.seccomp.merge(r);
            all.apparmor
                .merge(&observed.lock().unwrap_or_else(|e| e.into_inner()));
            if let Err(e) = save(&all, file) {
                crate::util::note!("monitor: recorder: {e}");
            }
        },
        || false,
    )
    .map_err(|e| RuntimeError::io("seccomp listener", e))
}

fn save(r: &ContainerRecording, file: &Path) -> Result<(), RuntimeError> {
    let bytes = serde_json::to_vec_pretty(r)
        .map_err(|e| RuntimeError::Invalid(format!("recording: {e}")))?;
    crate::util::write_durable(file, &bytes)
}

enum Received {
    /// The runtime sent the listener (SCM_RIGHTS).
    Fd(OwnedFd),
    /// The confine helper announced the listener's fd number in its process.
    Announced(u32),
}

/// Reads the first message: an SCM_RIGHTS fd with the OCI state, or 4 bytes.
fn receive_fd(conn: &UnixStream) -> Result<Received, RuntimeError> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = rustix::net::recvmsg(conn, &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| RuntimeError::io("recvmsg", e.into()))?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(r) = m {
            fds.extend(r);
        }
    }
    if let Some(fd) = fds.into_iter().next() {
        return Ok(Received::Fd(fd));
    }
    let mut head = buf[..msg.bytes].to_vec();
    if head.len() < 4 {
        let mut rest = vec![0u8; 4 - head.len()];
        (&*conn)
            .read_exact(&mut rest)
            .map_err(|e| RuntimeError::io("recorder socket", e))?;
        head.extend(rest);
    }
    Ok(Received::Announced(u32::from_le_bytes([
        head[0], head[1], head[2], head[3],
    ])))
}

/// Whether `pid` shares the pid namespace of the container's init (`init.pid`).
fn in_container(dir: &Path, pid: u32) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let init = std::fs::read_to_string(dir.join("init.pid")).unwrap_or_default();
    let init = init.trim();
    !init.is_empty() && ns(init).is_some() && ns(init) == ns(&pid.to_string())
}
