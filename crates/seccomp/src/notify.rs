//! The kernel side of recording: a seccomp user-notification listener.
//!
//! A filter returning `SECCOMP_RET_USER_NOTIF` suspends each matching syscall
//! until the holder of the listener fd answers; [`Listener::recv`] reads one
//! notification (`struct seccomp_notif`) and [`Listener::allow`] lets the
//! syscall run as if the filter had allowed it
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Recording needs nothing else, so
//! this is two `ioctl`s on the UAPI structs (`linux/seccomp.h`) rather than a
//! binding to libseccomp's notify API (which would bring the C library into a
//! crate that is otherwise pure Rust).
//!
//! Besides [`crate::load`], the only module of the crate that touches the kernel.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::bpf::SockFilter;
use crate::policy::SeccompData;
use crate::record::Recording;

/// `struct seccomp_notif` (80 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct RawNotif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif_resp` (24 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct RawResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `_IOWR(type, nr, size)`.
const fn iowr(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | ((b'!' as u64) << 8) | nr
}

/// `SECCOMP_IOCTL_NOTIF_RECV`.
const NOTIF_RECV: u64 = iowr(0, std::mem::size_of::<RawNotif>());
/// `SECCOMP_IOCTL_NOTIF_SEND`.
const NOTIF_SEND: u64 = iowr(1, std::mem::size_of::<RawResp>());
/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: `_IOW('!', 2, __u64)`.
const NOTIF_ID_VALID: u64 = (1 << 30) | (8 << 16) | ((b'!' as u64) << 8) | 2;
/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`.
const FLAG_CONTINUE: u32 = 1;

/// One suspended syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The kernel's cookie for the answer.
    pub id: u64,
    /// The calling thread (in the listener's pid namespace; 0 when not visible).
    pub pid: u32,
    /// The syscall.
    pub data: SeccompData,
}

/// What [`Listener::recv`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A syscall waits for an answer.
    Notification(Notification),
    /// Nothing within the timeout.
    Timeout,
    /// No task uses the filter any more: the recording is over.
    Closed,
}

/// The listener fd of a filter installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Takes ownership of a listener fd (received from a runtime or taken with `pidfd_getfd`).
    pub fn new(fd: OwnedFd) -> Listener {
        Listener { fd }
    }

    /// Waits up to `timeout` for a notification.
    pub fn recv(&self, timeout: Duration) -> io::Result<Received> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        loop {
            // SAFETY: one valid pollfd for the duration of the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if rc == 0 {
                return Ok(Received::Timeout);
            }
            break;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: every task of the filter has exited.
            return Ok(Received::Closed);
        }
        // The kernel wants a zeroed buffer.
        let mut raw = RawNotif::default();
        // SAFETY: `raw` has the layout and size encoded in NOTIF_RECV.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), NOTIF_RECV as _, &mut raw) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // The task was killed between poll and recv.
            if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EINTR)) {
                return Ok(Received::Timeout);
            }
            return Err(e);
        }
        Ok(Received::Notification(Notification {
            id: raw.id,
            pid: raw.pid,
            data: SeccompData {
                nr: raw.nr as u32,
                arch: raw.arch,
                instruction_pointer: raw.instruction_pointer,
                args: raw.args,
            },
        }))
    }

    /// Whether the notification `id` is still pending: a caller's memory read
    /// after receiving it is trustworthy only if it is (the caller has not died
    /// and been replaced by another process with its pid).
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: `id` is the u64 SECCOMP_IOCTL_NOTIF_ID_VALID reads.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), NOTIF_ID_VALID as _, &mut id) };
        rc == 0
    }

    /// Lets the syscall run as if allowed.
    pub fn allow(&self, id: u64) -> io::Result<()> {
        let mut resp = RawResp {
            id,
            flags: FLAG_CONTINUE,
            ..RawResp::default()
        };
        // SAFETY: `resp` has the layout and size encoded in NOTIF_SEND.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), NOTIF_SEND as _, &mut resp) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // ENOENT: the task died meanwhile; nothing waits for the answer.
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Looks at a notification before it is answered (e.g. reads its path
/// arguments); true when it saw something new.
pub type Observer = Box<dyn FnMut(&Listener, &Notification) -> bool + Send>;

/// An observer that sees nothing.
pub fn no_observer() -> Observer {
    Box::new(|_, _| false)
}

/// Answers every notification with "allow" and adds it to `recording` (after
/// `observe` has looked at it), calling `changed` after each new syscall or
/// observation, until no task uses the filter or `stop` returns true
/// (checked at least every 200 ms).
pub fn record(
    listener: &Listener,
    recording: &mut Recording,
    mut observe: Observer,
    mut changed: impl FnMut(&Recording),
    stop: impl Fn() -> bool,
) -> io::Result<()> {
    loop {
        if stop() {
            return Ok(());
        }
        match listener.recv(Duration::from_millis(200))? {
            Received::Notification(n) => {
                let seen = observe(listener, &n);
                let new = recording.observe(n.data.arch, n.data.nr, &n.data.args) || seen;
                listener.allow(n.id)?;
                if new {
                    changed(recording);
                }
            }
            Received::Timeout => {}
            Received::Closed => return Ok(()),
        }
    }
}

/// A command started under a recording filter, and the thread recording it.
#[derive(Debug)]
pub struct Recorder {
    thread: std::thread::JoinHandle<io::Result<Recording>>,
}

impl Recorder {
    /// Waits until no task uses the filter (the command and every process it
    /// started have exited) and returns what they did.
    pub fn finish(self) -> io::Result<Recording> {
        self.thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

/// Spawns `cmd` with `program` (which must return `SECCOMP_RET_USER_NOTIF` for
/// what is to be recorded) installed right before `execve`, and records it.
///
/// The child cannot hand its listener fd over once the filter is in place
/// (every syscall it makes then waits for the listener), so it tells the
/// recorder its pid and the fd number the listener will get (the lowest free
/// one, probed just before by duplicating an fd) and the recorder takes the fd with
/// `pidfd_getfd(2)`. The recorder thread answers from then on, including the
/// `execve` that `Command::spawn` waits for, so it starts before the spawn.
pub fn spawn_recorded(
    cmd: &mut std::process::Command,
    program: Vec<SockFilter>,
    flags: u32,
    observe: Observer,
) -> io::Result<(std::process::Child, Recorder)> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let (mut from_child, to_recorder) = std::os::unix::net::UnixStream::pair()?;
    let to_recorder_fd = to_recorder.as_raw_fd();
    // Root has CAP_SYS_ADMIN and needs no no_new_privs (which would change how
    // setuid programs of the workload behave).
    // SAFETY: geteuid has no preconditions.
    let no_new_privs = unsafe { libc::geteuid() } != 0;
    // SAFETY: the closure makes raw syscalls only (fcntl, close, getpid, write,
    // prctl, seccomp), which are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let probe = libc::fcntl(to_recorder_fd, libc::F_DUPFD_CLOEXEC, 0);
            if probe < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::close(probe);
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&(libc::getpid() as u32).to_le_bytes());
            msg[4..].copy_from_slice(&(probe as u32).to_le_bytes());
            if libc::write(to_recorder_fd, msg.as_ptr().cast(), msg.len()) != 8 {
                return Err(io::Error::last_os_error());
            }
            crate::load::install(
                &program,
                flags | crate::load::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                no_new_privs,
            )?;
            Ok(())
        });
    }
    let thread = std::thread::spawn(move || -> io::Result<Recording> {
        let mut msg = [0u8; 8];
        from_child.read_exact(&mut msg)?;
        let pid = u32::from_le_bytes(msg[..4].try_into().unwrap_or_default());
        let fd = u32::from_le_bytes(msg[4..].try_into().unwrap_or_default());
        let listener = match take_listener(pid, fd) {
            Ok(l) => l,
            Err(e) => {
                // The child waits in its first syscall for an answer that never comes.
                // SAFETY: kill with a pid we were just sent by our own child.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                return Err(e);
            }
        };
        let mut recording = Recording::default();
        record(&listener, &mut recording, observe, |_| {}, || false)?;
        Ok(recording)
    });
    let child = cmd.spawn();
    drop(to_recorder);
    match child {
        Ok(child) => Ok((child, Recorder { thread })),
        Err(e) => {
            let _ = thread.join();
            Err(e)
        }
    }
}

/// `pidfd_getfd(pidfd_open(pid), fd)` (pid in this process's pid namespace),
/// retried until the process has installed its filter (at most 5 s) and checked to be a listener.
pub fn take_listener(pid: u32, fd: u32) -> io::Result<Listener> {
    // SAFETY: pidfd_open takes integers and returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        // SAFETY: pidfd_getfd takes integers and returns a new fd or -1.
        let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd as i32, 0) };
        if got >= 0 {
            // SAFETY: a fresh fd we own.
            let got = unsafe { OwnedFd::from_raw_fd(got as i32) };
            if is_listener(&got) {
                return Ok(Listener::new(got));
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "process {pid} did not install its recording filter (fd {fd})"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `fd` (in this process) is a seccomp listener.
pub fn is_listener(fd: &OwnedFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|l| l.as_os_str() == "anon_inode:seccomp notify")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_the_kernels() {
        // linux/seccomp.h on x86_64: SECCOMP_IOCTL_NOTIF_RECV 0xc0502100,
        // SECCOMP_IOCTL_NOTIF_SEND 0xc0182101.
        assert_eq!(NOTIF_RECV, 0xc050_2100);
        assert_eq!(NOTIF_SEND, 0xc018_2101);
        assert_eq!(NOTIF_ID_VALID, 0x4008_2102);
    }
}
