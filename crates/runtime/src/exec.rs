//! Exec in a running container, TTY plumbing (console sockets, SCM_RIGHTS)
//! and the supervisor of TTY execs.
//!
//! A non-TTY exec is `<runtime> exec --process <process.json> <id>` with
//! pipes; the runtime waits for the process and exits with its code. A TTY
//! exec needs `--console-socket`, which runc only accepts with `--detach`; so
//! it runs under a small supervisor (`<monitor_exe> monitor <exec-dir>`)
//! that is a child subreaper, runs `exec --detach --tty`, reaps the exec'd
//! process and exits with its exit code. The pty master comes to us on the
//! console socket.
//!
//! The process settings (user, capabilities, noNewPrivileges, AppArmor
//! profile, rlimits) are the container's `process` from `config.json`; the
//! runtime applies the container's seccomp filter (`linux.seccomp`) to the
//! exec'd process.

use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::status;
use crate::types::*;
use crate::util;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Marks an exec directory (for `monitor_main`).
pub(crate) const EXEC_FILE: &str = "exec.json";

/// What the TTY exec supervisor runs.
#[derive(Debug, Serialize, Deserialize)]
struct ExecConfig {
    binary: PathBuf,
    state_root: PathBuf,
    id: String,
    process: PathBuf,
    console_socket: PathBuf,
}

/// Sets the window size of a pty (`TIOCSWINSZ`).
pub fn resize_pty(pty: BorrowedFd<'_>, width: u16, height: u16) -> std::io::Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(pty, ws).map_err(Into::into)
}

/// Receives one file descriptor (SCM_RIGHTS) on a connected unix socket.
pub(crate) fn recv_fd(stream: &UnixStream) -> std::io::Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::other(
        "no file descriptor received on the console socket",
    ))
}

/// Runs `spec` in container `id`.
pub(crate) fn exec(rt: &Runtime, id: &str, spec: &ExecSpec) -> Result<ExecProcess, RuntimeError> {
    let dir = rt.container_dir(id)?;
    let cspec = status::read_spec(&dir)?;
    if spec.args.is_empty() {
        return Err(RuntimeError::Invalid("exec: command is empty".into()));
    }
    if status::container_status(rt, id)?.state != ContainerState::Running {
        return Err(RuntimeError::Invalid(format!(
            "container {id} is not running"
        )));
    }
    let exec_dir = new_exec_dir(&dir)?;
    let process_file = exec_dir.join("process.json");
    util::write_json(&process_file, &process_json(&dir, &cspec, spec)?)?;
    if spec.tty {
        exec_tty(rt, id, spec, &exec_dir, &process_file)
    } else {
        exec_pipes(rt, id, spec, &process_file)
    }
}

/// A fresh `exec/<n>` directory under the container directory (after
/// pruning old ones: the runtime reads `process.json` when the exec starts,
/// so directories older than a minute are no longer needed, except those of
/// TTY supervisors, which remove their own).
fn new_exec_dir(dir: &Path) -> Result<PathBuf, RuntimeError> {
    prune_exec_dirs(&dir.join("exec"), Duration::from_secs(60));
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let p = dir
        .join("exec")
        .join(format!("{}-{}-{n}", std::process::id(), status::now_ns()));
    std::fs::create_dir_all(&p).map_err(|e| RuntimeError::io(&p, e))?;
    Ok(p)
}

fn prune_exec_dirs(exec_root: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(exec_root) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|d| d > age);
        if old && !e.path().join(EXEC_FILE).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The container's `process` with the exec's args, env and terminal.
fn process_json(
    dir: &Path,
    cspec: &ContainerSpec,
    spec: &ExecSpec,
) -> Result<serde_json::Value, RuntimeError> {
    let config: serde_json::Value = util::read_json(&dir.join("bundle/config.json"))?;
    let mut process = config["process"].clone();
    let obj = process
        .as_object_mut()
        .ok_or_else(|| RuntimeError::Spec("config.json has no process".into()))?;
    obj.insert(
        "args".into(),
        serde_json::json!(crate::bundle::confined_args(cspec, &spec.args)),
    );
    let mut env: Vec<serde_json::Value> = obj
        .get("env")
        .and_then(|e| e.as_array().cloned())
        .unwrap_or_default();
    env.extend(spec.env.iter().map(|e| serde_json::json!(e)));
    obj.insert("env".into(), serde_json::Value::Array(env));
    obj.insert("terminal".into(), serde_json::json!(spec.tty));
    obj.remove("consoleSize");
    Ok(process)
}

fn exec_pipes(
    rt: &Runtime,
    id: &str,
    spec: &ExecSpec,
    process: &Path,
) -> Result<ExecProcess, RuntimeError> {
    let mut child = rt
        .command()
        .arg("exec")
        .arg("--process")
        .arg(process)
        .arg(id)
        .stdin(if spec.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RuntimeError::io(&rt.binary, e))?;
    Ok(ExecProcess {
        stdin: child.stdin.take().map(|s| File::from(OwnedFd::from(s))),
        stdout: child.stdout.take().map(|s| File::from(OwnedFd::from(s))),
        stderr: child.stderr.take().map(|s| File::from(OwnedFd::from(s))),
        pty: None,
        child,
    })
}

fn exec_tty(
    rt: &Runtime,
    id: &str,
    spec: &ExecSpec,
    exec_dir: &Path,
    process: &Path,
) -> Result<ExecProcess, RuntimeError> {
    // Unix socket paths are limited to 108 bytes: keep it short, in /tmp.
    let socket = std::env::temp_dir().join(format!(
        "armorlet-exec-{}-{}.sock",
        std::process::id(),
        status::now_ns()
    ));
    let listener = UnixListener::bind(&socket).map_err(|e| RuntimeError::io(&socket, e))?;
    util::write_json(
        &exec_dir.join(EXEC_FILE),
        &ExecConfig {
            binary: rt.binary.clone(),
            state_root: rt.cfg.state_root.clone(),
            id: id.to_string(),
            process: process.to_path_buf(),
            console_socket: socket.clone(),
        },
    )?;
    let log_path = exec_dir.join("supervisor.log");
    let log = File::create(&log_path).map_err(|e| RuntimeError::io(&log_path, e))?;
    let mut child = Command::new(&rt.cfg.monitor_exe)
        .arg("monitor")
        .arg(exec_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| RuntimeError::io(&rt.cfg.monitor_exe, e))?;
    let master = accept_master(&listener, &mut child);
    let _ = std::fs::remove_file(&socket);
    let Some(master) = master else {
        let _ = child.wait();
        let message = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(RuntimeError::Command {
            command: "exec".into(),
            message: message.trim().to_string(),
        });
    };
    let file = File::from(master);
    let dup = |f: &File| f.try_clone().map_err(|e| RuntimeError::io("pty", e));
    Ok(ExecProcess {
        stdin: if spec.stdin { Some(dup(&file)?) } else { None },
        stdout: Some(dup(&file)?),
        stderr: None,
        pty: Some(OwnedFd::from(file)),
        child,
    })
}

/// Accepts the runtime's console-socket connection unless `child` exits first.
fn accept_master(listener: &UnixListener, child: &mut std::process::Child) -> Option<OwnedFd> {
    listener.set_nonblocking(true).ok()?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                return recv_fd(&stream).ok();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

/// The TTY exec supervisor: `exec --detach --tty`, then reap the process and
/// exit with its code.
pub(crate) fn supervise(dir: &Path) -> i32 {
    let cfg: ExecConfig = match util::read_json(&dir.join(EXEC_FILE)) {
        Ok(c) => c,
        Err(e) => {
            crate::util::note!("{e}");
            return 126;
        }
    };
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        crate::util::note!("prctl(PR_SET_CHILD_SUBREAPER): {e}");
        return 126;
    }
    let pid_file = dir.join("pid");
    let run = util::run(
        Command::new(&cfg.binary)
            .arg("--root")
            .arg(&cfg.state_root)
            .args(["exec", "--detach", "--tty", "--console-socket"])
            .arg(&cfg.console_socket)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--process")
            .arg(&cfg.process)
            .arg(&cfg.id),
    );
    if let Err(message) = run {
        crate::util::note!("{message}");
        return 126;
    }
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let code = pid.and_then(crate::monitor::reap_until).unwrap_or(126);
    let _ = std::fs::remove_dir_all(dir);
    code
}
