//! The confine plan (what the static helper applies before `execve`) and
//! the code that applies it to the calling process.
//!
//! Order (fail closed, each step named in the error): `no_new_privs`,
//! Landlock `restrict_self`, capabilities (bounding, ambient, then
//! effective/permitted/inheritable), the socket-family filter, and the
//! container's seccomp filter LAST (it may forbid the syscalls used before).
//!
//! Landlock is driven through the three raw syscalls rather than the
//! `landlock` crate: the plan already holds the exact kernel access bits,
//! and its best-effort compatibility layer is exactly what a fail-closed
//! helper must not have (any unsupported bit must be an error).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use armorlet_seccomp::SockFilter;
use serde::{Deserialize, Serialize};

use crate::LandlockError;

/// `LANDLOCK_ACCESS_FS_*` bits (`linux/landlock.h`).
pub mod fs {
    /// Execute a file.
    pub const EXECUTE: u64 = 1 << 0;
    /// Open a file for writing.
    pub const WRITE_FILE: u64 = 1 << 1;
    /// Open a file for reading.
    pub const READ_FILE: u64 = 1 << 2;
    /// List a directory.
    pub const READ_DIR: u64 = 1 << 3;
    /// Remove a directory.
    pub const REMOVE_DIR: u64 = 1 << 4;
    /// Remove a file.
    pub const REMOVE_FILE: u64 = 1 << 5;
    /// Create a character device.
    pub const MAKE_CHAR: u64 = 1 << 6;
    /// Create a directory.
    pub const MAKE_DIR: u64 = 1 << 7;
    /// Create a regular file.
    pub const MAKE_REG: u64 = 1 << 8;
    /// Create a socket.
    pub const MAKE_SOCK: u64 = 1 << 9;
    /// Create a FIFO.
    pub const MAKE_FIFO: u64 = 1 << 10;
    /// Create a block device.
    pub const MAKE_BLOCK: u64 = 1 << 11;
    /// Create a symlink.
    pub const MAKE_SYM: u64 = 1 << 12;
    /// Link or rename across directories (ABI 2).
    pub const REFER: u64 = 1 << 13;
    /// Truncate (ABI 3).
    pub const TRUNCATE: u64 = 1 << 14;
    /// ioctl on devices (ABI 5).
    pub const IOCTL_DEV: u64 = 1 << 15;
    /// Every right of ABI 5 (the newest filesystem rights).
    pub const ALL: u64 = (1 << 16) - 1;
    /// The rights that apply to files (not only directories).
    pub const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
}

/// `LANDLOCK_SCOPE_*` bits (ABI 6).
pub mod scope {
    /// Abstract UNIX sockets outside the domain.
    pub const ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
    /// Signals to processes outside the domain.
    pub const SIGNAL: u64 = 1 << 1;
}

/// One path-beneath rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRule {
    /// Absolute path (inside the container); a missing path is skipped
    /// (a rule only grants, so skipping it only tightens).
    pub path: String,
    /// `LANDLOCK_ACCESS_FS_*` bits granted beneath `path`.
    pub access: u64,
    /// Absolute paths beneath `path` that get nothing from this rule. The
    /// helper then grants `access` to the entries of each directory on the
    /// way to an exception instead of to `path` as a whole (Landlock rules
    /// cannot subtract), so the directories on that way lose their own
    /// directory rights (listing, creating entries): a tightening.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// The Landlock part of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockRules {
    /// Handled filesystem rights (everything handled and not granted is denied).
    pub handled_fs: u64,
    /// Path-beneath rules.
    pub fs: Vec<FsRule>,
    /// `LANDLOCK_SCOPE_*` bits.
    pub scoped: u64,
}

/// A socket the profile allows: address family and optional type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketAllow {
    /// `AF_*` number.
    pub family: u32,
    /// `SOCK_*` type number (`None`: any type).
    pub sock_type: Option<u32>,
}

/// Where a recorded container's helper finds the monitor's recorder socket
/// (when the seccomp flags ask for a listener).
pub const SECCOMP_LISTENER: &str = "/.armorlet/seccomp.sock";

/// Everything the confine helper applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The AppArmor profile this plan enforces (for messages).
    pub profile: String,
    /// Landlock ruleset (`None`: no Landlock).
    pub landlock: Option<LandlockRules>,
    /// Capabilities to keep (`CAP_*` names); `None`: leave them as they are.
    pub capabilities: Option<Vec<String>>,
    /// Sockets allowed (`None`: every family); others fail with `EACCES`.
    pub sockets: Option<Vec<SocketAllow>>,
    /// The container's seccomp program, raw `sock_filter` bytes in hex.
    pub seccomp_hex: Option<String>,
    /// The `seccomp(2)` flags to install it with (the profile's, e.g. LOG or SPEC_ALLOW).
    #[serde(default)]
    pub seccomp_flags: u32,
    /// Report Landlock denials to the audit subsystem, also after `execve`
    /// (`LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON`, ABI 7), as AppArmor logs
    /// the profile's denials.
    #[serde(default)]
    pub log_denials: bool,
    /// Set `no_new_privs` (always set when Landlock is used).
    pub no_new_privs: bool,
}

impl Plan {
    /// Reads a plan file.
    pub fn read(path: &Path) -> Result<Plan, LandlockError> {
        let text = std::fs::read(path).map_err(|e| LandlockError::io(path, e))?;
        serde_json::from_slice(&text)
            .map_err(|e| LandlockError::Plan(format!("{}: {e}", path.display())))
    }

    /// Writes a plan file.
    pub fn write(&self, path: &Path) -> Result<(), LandlockError> {
        let text =
            serde_json::to_vec_pretty(self).map_err(|e| LandlockError::Plan(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| LandlockError::io(path, e))
    }

    /// Sets the seccomp program and the flags it is installed with.
    pub fn set_seccomp(&mut self, prog: &[SockFilter], flags: u32) {
        let bytes = armorlet_seccomp::bpf::to_bytes(prog);
        self.seccomp_hex = Some(bytes.iter().map(|b| format!("{b:02x}")).collect());
        self.seccomp_flags = flags;
    }

    /// The seccomp program, decoded.
    pub fn seccomp(&self) -> Result<Option<Vec<SockFilter>>, LandlockError> {
        let Some(hex) = &self.seccomp_hex else {
            return Ok(None);
        };
        let bad = || LandlockError::Plan("seccomp_hex is not hex".into());
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>, _>>()?;
        armorlet_seccomp::bpf::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| LandlockError::Plan(format!("seccomp: {e}")))
    }
}

fn step_err(step: &'static str) -> impl Fn(std::io::Error) -> LandlockError {
    move |e| LandlockError::Apply {
        step,
        message: e.to_string(),
    }
}

/// Applies the plan to the calling process (single-threaded caller: the
/// helper, or a forked child in tests). On error the process is partly
/// confined and must not exec.
pub fn apply(plan: &Plan) -> Result<(), LandlockError> {
    let seccomp = plan.seccomp()?;
    // A recorded container: its filter's listener goes to the monitor through
    // SECCOMP_LISTENER, connected before the socket filter could refuse it.
    let recorder =
        if plan.seccomp_flags & armorlet_seccomp::load::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
            Some(
                std::os::unix::net::UnixStream::connect(SECCOMP_LISTENER)
                    .map_err(step_err("seccomp listener"))?,
            )
        } else {
            None
        };
    if plan.no_new_privs || plan.landlock.is_some() {
        // SAFETY: plain prctl.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if r != 0 {
            return Err(step_err("no_new_privs")(std::io::Error::last_os_error()));
        }
    }
    if let Some(rules) = &plan.landlock {
        apply_landlock(rules, plan.log_denials)?;
    }
    if let Some(keep) = &plan.capabilities {
        crate::caps::restrict(keep, plan.no_new_privs || plan.landlock.is_some())?;
    }
    if let Some(allowed) = &plan.sockets {
        let prog = socket_filter(allowed);
        armorlet_seccomp::load::install(&prog, 0, false).map_err(step_err("socket filter"))?;
    }
    if let Some(prog) = seccomp {
        if let Some(recorder) = &recorder {
            announce_listener(recorder)?;
        }
        armorlet_seccomp::load::install(&prog, plan.seccomp_flags, false)
            .map_err(step_err("seccomp"))?;
    }
    Ok(())
}

/// Tells the recorder which fd the listener is about to get (the lowest free
/// one): once the filter is installed this process cannot send it (each of its
/// syscalls waits for the recorder), so the recorder takes it with
/// `pidfd_getfd(2)`, learning the pid from the socket's peer credentials.
fn announce_listener(recorder: &std::os::unix::net::UnixStream) -> Result<(), LandlockError> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let err = step_err("seccomp listener");
    // The lowest free fd, found by duplicating one we hold: opening a file could
    // be denied by the Landlock ruleset already in place.
    // SAFETY: fcntl on an fd we own; the duplicate is closed at once.
    let fd = unsafe { libc::fcntl(recorder.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: closing the duplicate made above.
    unsafe { libc::close(fd) };
    (&*recorder)
        .write_all(&(fd as u32).to_le_bytes())
        .map_err(err)
}

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

const LANDLOCK_RULE_PATH_BENEATH: libc::c_long = 1;

/// `LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON` (ABI 7).
const LOG_NEW_EXEC_ON: u32 = 1 << 1;

fn apply_landlock(rules: &LandlockRules, log_denials: bool) -> Result<(), LandlockError> {
    let err = step_err("landlock");
    let attr = RulesetAttr {
        handled_access_fs: rules.handled_fs,
        handled_access_net: 0,
        scoped: rules.scoped,
    };
    // SAFETY: attr is a valid landlock_ruleset_attr of the given size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for rule in &rules.fs {
        add_rule_except(&ruleset, &rule.path, rule.access, &rule.except)?;
    }
    let flags = if log_denials { LOG_NEW_EXEC_ON } else { 0 };
    // SAFETY: restricting ourselves with a valid ruleset fd.
    let mut r =
        unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), flags) };
    if r != 0 && flags != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
    {
        // Before ABI 7 there is no audit logging: enforce without it (logging
        // never weakens confinement).
        // SAFETY: as above.
        r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) };
    }
    if r != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Grants `access` beneath `path` except beneath the `except` paths: one rule
/// when no exception lies beneath `path`, nothing when `path` is one, else
/// one rule per entry of `path` (recursively). Symlinks are skipped: a rule
/// on one would grant its target. Unreadable directories grant nothing.
fn add_rule_except(
    ruleset: &OwnedFd,
    path: &str,
    access: u64,
    except: &[String],
) -> Result<(), LandlockError> {
    let base = path.trim_end_matches('/');
    if except.iter().any(|e| e.trim_end_matches('/') == base) {
        return Ok(());
    }
    let prefix = format!("{base}/");
    if !except.iter().any(|e| e.starts_with(&prefix)) {
        return add_path_rule(ruleset, path, access);
    }
    let Ok(entries) = std::fs::read_dir(if base.is_empty() { "/" } else { base }) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            continue;
        }
        let child = format!("{prefix}{}", entry.file_name().to_string_lossy());
        add_rule_except(ruleset, &child, access, except)?;
    }
    Ok(())
}

fn add_path_rule(
    ruleset: &OwnedFd,
    rule_path: &str,
    rule_access: u64,
) -> Result<(), LandlockError> {
    let path = CString::new(rule_path.as_bytes())
        .map_err(|_| LandlockError::Plan("NUL in path".into()))?;
    // SAFETY: valid C string; O_PATH open.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if matches!(
            e.raw_os_error(),
            Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::EACCES)
        ) {
            return Ok(()); // a rule only grants: skipping it tightens
        }
        return Err(LandlockError::Apply {
            step: "landlock",
            message: format!("{}: {e}", rule_path),
        });
    }
    // SAFETY: fd is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut access = rule_access;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on our fd.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0
        && st.st_mode & libc::S_IFMT != libc::S_IFDIR
    {
        access &= fs::FILE_RIGHTS; // directory-only rights are invalid on files
    }
    if access == 0 {
        return Ok(());
    }
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: fd.as_raw_fd(),
    };
    // SAFETY: attr is a valid landlock_path_beneath_attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    if r != 0 {
        return Err(LandlockError::Apply {
            step: "landlock",
            message: format!(
                "add rule {}: {}",
                rule_path,
                std::io::Error::last_os_error()
            ),
        });
    }
    Ok(())
}

/// A classic-BPF filter allowing `socket`/`socketpair` only for the listed
/// (family, type) pairs; others return `EACCES` (as an AppArmor denial).
/// Foreign architectures are refused with `EACCES` too (deny-biased).
pub fn socket_filter(allowed: &[SocketAllow]) -> Vec<SockFilter> {
    const LD_ABS: u16 = 0x20;
    const JEQ: u16 = 0x15;
    const RET: u16 = 0x06;
    const AND: u16 = 0x54;
    const ALLOW: u32 = 0x7fff_0000;
    const EACCES: u32 = 0x0005_0000 | libc::EACCES as u32;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ins = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    let mut checks: Vec<SockFilter> = Vec::new();
    for a in allowed {
        let mut block = vec![ins(LD_ABS, 0, 0, 16)];
        let body: Vec<SockFilter> = match a.sock_type {
            None => vec![ins(RET, 0, 0, ALLOW)],
            Some(t) => vec![
                ins(LD_ABS, 0, 0, 24),
                ins(AND, 0, 0, 0xf),
                ins(JEQ, 0, 1, t),
                ins(RET, 0, 0, ALLOW),
            ],
        };
        block.push(ins(JEQ, 0, body.len() as u8, a.family));
        block.extend(body);
        checks.extend(block);
    }
    checks.push(ins(RET, 0, 0, EACCES));
    let mut prog = vec![
        ins(LD_ABS, 0, 0, 4),
        ins(JEQ, 1, 0, AUDIT_ARCH_X86_64),
        ins(RET, 0, 0, EACCES),
        ins(LD_ABS, 0, 0, 0),
        ins(JEQ, 2, 0, libc::SYS_socket as u32),
        ins(JEQ, 1, 0, libc::SYS_socketpair as u32),
        ins(RET, 0, 0, ALLOW),
    ];
    prog.extend(checks);
    prog
}
