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
//! socket. Every listener is drained by its own thread; each syscall new to
//! the recording rewrites the recording file (merged with what earlier runs
//! of the container left there).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use armorlet_seccomp::notify::{self, Listener};
use armorlet_seccomp::record::{NotifyRuntime, Recording};

use crate::error::RuntimeError;
use crate::types::RuntimeKind;

/// Where the recorder sockets live: short absolute paths (a unix socket path
/// has at most 107 bytes; container directories can be longer).
const SOCKET_DIR: &str = "/run/armorlet/seccomp";

/// The recorder socket of container `id`.
pub fn socket_path(id: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{id}.sock"))
}

/// Reads a recording file (an empty recording when there is none yet).
pub fn read_recording(path: &Path) -> Result<Recording, RuntimeError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| RuntimeError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Recording::default()),
        Err(e) => Err(RuntimeError::io(path, e)),
    }
}

/// Binds the container's recorder socket and serves it for the life of the
/// monitor (detached threads).
pub(crate) fn start(id: &str, file: &Path, kind: RuntimeKind) -> Result<(), RuntimeError> {
    let socket = socket_path(id);
    std::fs::create_dir_all(SOCKET_DIR).map_err(|e| RuntimeError::io(SOCKET_DIR, e))?;
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
            .syscalls
            .entry(arch)
            .or_default()
            .insert((*name).to_owned());
    }
    save(&recording, file)?;
    let recording = Arc::new(Mutex::new(recording));
    let file = file.to_owned();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (recording, file) = (recording.clone(), file.clone());
            std::thread::spawn(move || {
                if let Err(e) = serve(conn, &recording, &file) {
                    eprintln!("monitor: seccomp recorder: {e}");
                }
            });
        }
    });
    Ok(())
}

/// One connection: take its listener, record until no task uses the filter.
fn serve(conn: UnixStream, recording: &Mutex<Recording>, file: &Path) -> Result<(), RuntimeError> {
    let listener = match receive_fd(&conn)? {
        Received::Fd(fd) => Listener::new(fd),
        Received::Announced(fd) => {
            let pid = peer_pid(&conn)?;
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
    let mut local = Recording::default();
    notify::record(
        &listener,
        &mut local,
        |r| {
            let mut all = recording.lock().unwrap_or_else(|e| e.into_inner());
            all.merge(r);
            if let Err(e) = save(&all, file) {
                eprintln!("monitor: seccomp recorder: {e}");
            }
        },
        || false,
    )
    .map_err(|e| RuntimeError::io("seccomp listener", e))
}

fn save(r: &Recording, file: &Path) -> Result<(), RuntimeError> {
    let bytes = serde_json::to_vec_pretty(r)
        .map_err(|e| RuntimeError::Invalid(format!("recording: {e}")))?;
    crate::util::write_atomic(file, &bytes)
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

fn peer_pid(conn: &UnixStream) -> Result<u32, RuntimeError> {
    let cred = rustix::net::sockopt::socket_peercred(conn)
        .map_err(|e| RuntimeError::io("SO_PEERCRED", e.into()))?;
    Ok(cred.pid.as_raw_nonzero().get() as u32)
}
