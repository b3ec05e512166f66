//! The per-container monitor and `create_container`.
//!
//! `create_container` prepares the container directory (spec, rootfs,
//! bundle) and starts `<monitor_exe> monitor <container-dir>`. The monitor
//! forks once more and the intermediate process exits, so the monitor is
//! fully detached (own session, reparented away from the agent): the agent
//! can die and restart without killing it. The monitor becomes a child
//! subreaper, runs the OCI runtime's `create` with output pipes (or a
//! console socket for TTY containers) it owns, reports the outcome of
//! `create` to the agent over its stdout pipe, copies the container's output
//! into the CRI log, reaps the container's init (reparented to it), and
//! records the exit in `status.json` after draining the output.

use crate::bundle::{self, BundlePaths};
use crate::crilog::{self, Stream};
use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::status;
use crate::types::*;
use crate::util;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The console socket of TTY containers, relative to the container directory.
const CONSOLE_SOCKET: &str = "bundle/console.sock";

/// What the monitor needs to drive the OCI runtime (`runtime.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MonitorConfig {
    /// The OCI runtime binary.
    pub binary: PathBuf,
    /// Its `--root`.
    pub state_root: PathBuf,
    /// crun or runc (what a recording cannot observe differs).
    #[serde(default = "crun")]
    pub kind: RuntimeKind,
    /// The runtime request timeout bounding `create`, in milliseconds (absent: the default).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl MonitorConfig {
    /// The bound of the runtime's `create`.
    fn timeout(&self) -> Duration {
        self.timeout_ms.map_or(
            crate::invoke::DEFAULT_REQUEST_TIMEOUT,
            Duration::from_millis,
        )
    }
}

/// How much longer than the request timeout the agent waits for the monitor's report: the
/// monitor bounds `create` itself; this only catches a monitor that hangs elsewhere.
const REPORT_GRACE: Duration = Duration::from_secs(30);

fn crun() -> RuntimeKind {
    RuntimeKind::Crun
}

/// The monitor's one-line report to `create_container`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CreateReport {
    error: Option<String>,
    /// `create` outlived the runtime request timeout.
    #[serde(default)]
    timed_out: bool,
}

/// Prepares the directory and bundle, spawns the monitor and waits for the
/// runtime's `create`; on failure the container is removed again.
pub(crate) fn create_container(rt: &Runtime, spec: &ContainerSpec) -> Result<(), RuntimeError> {
    let dir = rt.container_dir(&spec.id)?;
    if spec.process.args.is_empty() {
        return Err(RuntimeError::Invalid("process.args is empty".into()));
    }
    let sandbox_dir = crate::sandbox::sandbox_dir(&rt.cfg.sandboxes_dir, &spec.pod_uid)?;
    if dir.join("spec.json").exists() {
        return Err(RuntimeError::Invalid(format!(
            "container {} already exists",
            spec.id
        )));
    }
    std::fs::create_dir_all(dir.join("bundle")).map_err(|e| RuntimeError::io(&dir, e))?;
    let result = prepare_and_spawn(rt, spec, &dir, &sandbox_dir);
    if result.is_err() {
        let _ = status::remove_container(rt, &spec.id);
    }
    result
}

fn prepare_and_spawn(
    rt: &Runtime,
    spec: &ContainerSpec,
    dir: &Path,
    sandbox_dir: &Path,
) -> Result<(), RuntimeError> {
    util::write_json(&dir.join("spec.json"), spec)?;
    util::write_json(
        &dir.join("runtime.json"),
        &MonitorConfig {
            binary: rt.binary.clone(),
            state_root: rt.cfg.state_root.clone(),
            kind: rt.cfg.kind,
            timeout_ms: Some(rt.cfg.request_timeout.as_millis().min(u64::MAX as u128) as u64),
        },
    )?;
    let rootfs = crate::rootfs::prepare(dir, &spec.image_root)?;
    let config = bundle::build(
        spec,
        &BundlePaths {
            rootfs: &rootfs,
            sandbox_dir,
            cgroup_parent: &rt.cfg.cgroup_parent,
        },
    )?;
    util::write_json(&dir.join("bundle/config.json"), &config)?;
    spawn_monitor(rt, dir)
}

/// Starts the monitor and reads its report.
fn spawn_monitor(rt: &Runtime, dir: &Path) -> Result<(), RuntimeError> {
    let log_path = dir.join("monitor.log");
    let log = File::create(&log_path).map_err(|e| RuntimeError::io(&log_path, e))?;
    let mut child = Command::new(&rt.cfg.monitor_exe)
        .arg("monitor")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| RuntimeError::io(&rt.cfg.monitor_exe, e))?;
    let mut line = String::new();
    let mut reported = true;
    if let Some(out) = child.stdout.take() {
        reported = readable_within(&out, rt.cfg.request_timeout + REPORT_GRACE);
        if reported {
            let _ = BufReader::new(out).read_line(&mut line);
        }
    }
    let _ = child.wait();
    if !reported {
        // The monitor itself hangs: it is killed; the caller removes the container.
        kill_monitor(dir);
        return Err(RuntimeError::DeadlineExceeded {
            command: "create".into(),
            timeout: rt.cfg.request_timeout,
        });
    }
    match serde_json::from_str::<CreateReport>(line.trim()) {
        Ok(CreateReport {
            timed_out: true, ..
        }) => Err(RuntimeError::DeadlineExceeded {
            command: "create".into(),
            timeout: rt.cfg.request_timeout,
        }),
        Ok(CreateReport { error: None, .. }) => Ok(()),
        Ok(CreateReport {
            error: Some(message),
            ..
        }) => Err(RuntimeError::Create { message }),
        Err(_) => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Err(RuntimeError::Create {
                message: format!("container monitor failed: {}", log.trim()),
            })
        }
    }
}

/// Whether `fd` becomes readable (or reaches end of file) within `timeout`.
fn readable_within(fd: &impl std::os::fd::AsFd, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return true,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return true,
        }
    }
}

/// Body of the hidden `armorlet monitor <container-dir>` subcommand: the
/// container monitor (or, for a directory holding `exec.json`, the
/// supervisor of one TTY exec). Returns the process exit code.
pub fn monitor_main(dir: &Path) -> i32 {
    if dir.join(crate::exec::EXEC_FILE).exists() {
        return crate::exec::supervise(dir);
    }
    // SAFETY: the `armorlet monitor` process is single-threaded here; the
    // parent returns at once and the child continues as the monitor.
    match unsafe { libc::fork() } {
        -1 => {
            report(&CreateReport {
                error: Some(format!("fork: {}", std::io::Error::last_os_error())),
                ..Default::default()
            });
            1
        }
        0 => {
            let _ = rustix::process::setsid();
            match run_monitor(dir) {
                Ok(()) => 0,
                Err(e) => {
                    crate::util::note!("monitor: {e}");
                    report(&CreateReport {
                        timed_out: matches!(e, RuntimeError::DeadlineExceeded { .. }),
                        error: Some(e.to_string()),
                    });
                    1
                }
            }
        }
        _ => 0,
    }
}

/// Writes the report on stdout (the agent's pipe) and points stdout at /dev/null.
fn report(r: &CreateReport) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
    let _ = out.flush();
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// The container's I/O as the monitor sees it.
enum Io {
    /// stdout/stderr pipes (read ends).
    Pipes(File, File),
    /// A terminal (the pty master arrives on the console socket).
    Tty(UnixListener),
}

fn run_monitor(dir: &Path) -> Result<(), RuntimeError> {
    let dir = std::fs::canonicalize(dir).map_err(|e| RuntimeError::io(dir, e))?;
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| RuntimeError::io("prctl(PR_SET_CHILD_SUBREAPER)", e.into()))?;
    std::env::set_current_dir(&dir).map_err(|e| RuntimeError::io(&dir, e))?;
    util::write_state(
        &dir.join("monitor.pid"),
        std::process::id().to_string().as_bytes(),
    )?;
    let spec = status::read_spec(&dir)?;
    let cfg: MonitorConfig = util::read_json(&dir.join("runtime.json"))?;
    let log =
        crilog::Writer::open(&spec.log_path).map_err(|e| RuntimeError::io(&spec.log_path, e))?;

    let mut cmd = Command::new(&cfg.binary);
    cmd.arg("--root")
        .arg(&cfg.state_root)
        .arg("--log")
        .arg(dir.join("runtime.log"))
        .arg("--log-format")
        .arg("json")
        .arg("create")
        .arg("--bundle")
        .arg(dir.join("bundle"))
        .arg("--pid-file")
        .arg(dir.join("init.pid"));
    // Attach clients get the output live from here on (`attach.rs`).
    let hub = Arc::new(crate::attach::Hub::default());
    let pty_slot: Arc<Mutex<Option<OwnedFd>>> = Arc::default();
    crate::attach::serve(hub.clone(), pty_slot.clone())?;
    cmd.stdin(stdin_for(&dir, &spec)?);
    let io = if spec.process.tty {
        // Both runtimes chdir into the bundle before connecting, and socket
        // paths are limited to 108 bytes: the socket lives in the bundle and
        // is named relative to it.
        let _ = std::fs::remove_file(CONSOLE_SOCKET);
        let listener =
            UnixListener::bind(CONSOLE_SOCKET).map_err(|e| RuntimeError::io(CONSOLE_SOCKET, e))?;
        cmd.arg("--console-socket").arg("console.sock");
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        Io::Tty(listener)
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        cmd.stdout(out_w).stderr(err_w);
        Io::Pipes(out_r, err_r)
    };
    cmd.arg(&spec.id);
    if let Some(file) = &spec.record_seccomp {
        crate::record::start(&spec.id, &dir, file, cfg.kind)?;
    }
    // `create` runs in its own process group under the request timeout: when it hangs, the
    // group (the runtime and a half-created container's init with it) is killed.
    let deadline = std::time::Instant::now() + cfg.timeout();
    let mut child = crate::invoke::spawn_in_own_group(&mut cmd)
        .map_err(|e| RuntimeError::io(&cfg.binary, e))?;
    drop(cmd);
    let copiers = match io {
        Io::Pipes(out, err) => vec![
            copier(&log, tee(out, &hub, false), Stream::Stdout),
            copier(&log, tee(err, &hub, true), Stream::Stderr),
        ],
        Io::Tty(listener) => match receive_console(&listener, &mut child, deadline) {
            Some(master) => {
                let master = File::from(master);
                if spec.process.stdin {
                    feed_stdin(&dir, &master)?;
                }
                if let Ok(fd) = master.try_clone() {
                    *pty_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd.into());
                }
                vec![copier(&log, tee(master, &hub, false), Stream::Stdout)]
            }
            None => Vec::new(),
        },
    };
    let waited = crate::invoke::wait_until(&mut child, deadline);
    let _ = std::fs::remove_file(CONSOLE_SOCKET);
    let failure = match waited {
        Ok(Some(exit)) if exit.success() => None,
        Ok(Some(exit)) => Some(RuntimeError::Create {
            message: runtime_error(&dir.join("runtime.log"))
                .unwrap_or_else(|| format!("{} create exited with {exit}", cfg.binary.display())),
        }),
        Ok(None) => {
            crate::invoke::kill_group(&mut child);
            Some(RuntimeError::DeadlineExceeded {
                command: "create".into(),
                timeout: cfg.timeout(),
            })
        }
        Err(e) => {
            crate::invoke::kill_group(&mut child);
            Some(RuntimeError::io(&cfg.binary, e))
        }
    };
    if let Some(e) = failure {
        // What the runtime wrote to the container's output is logged, but the copiers are
        // waited for briefly only: a container the runtime half created (its init waiting for
        // `start`) holds the output pipes open until the agent deletes it.
        let until = std::time::Instant::now() + Duration::from_secs(2);
        while copiers.iter().any(|c| !c.is_finished()) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(copiers);
        hub.close_all();
        if spec.record_seccomp.is_some() {
            let _ = std::fs::remove_file(crate::record::socket_path(&spec.id));
        }
        return Err(e);
    }
    let pid = read_pid(&dir.join("init.pid"))?;
    let cgroup = cgroup_rel(&dir);
    let oom_before = oom_kills(&cgroup);
    status::update(&dir, |st| {
        st.pid = Some(pid);
        st.created_at = Some(status::now_ns());
    })?;
    report(&CreateReport::default());
    let code = reap_until(pid);
    let oom = oom_kills(&cgroup) > oom_before;
    // The exit status is recorded at once, before the output is drained (a process outside
    // the container may hold the output pipes open): a monitor that dies while draining does
    // not take the exit code with it. The exit counts as done once drained (`finished_at`).
    let exited_at = status::now_ns();
    record_exit(&dir, |st| {
        st.exited_at = Some(exited_at);
        st.exit_code = code;
        if oom {
            st.reason = Some("OOMKilled".into());
        }
    });
    copiers.into_iter().for_each(|c| drop(c.join()));
    // The output ended: attached clients see the end of their streams.
    hub.close_all();
    let finished_at = status::now_ns();
    record_exit(&dir, |st| {
        st.finished_at = Some(finished_at);
        if code.is_none() {
            st.message = Some("the exit status of the container's process was lost".into());
        }
    });
    reap_all();
    if spec.record_seccomp.is_some() {
        let _ = std::fs::remove_file(crate::record::socket_path(&spec.id));
    }
    let _ = std::fs::remove_file(dir.join("monitor.pid"));
    Ok(())
}

/// Records (part of) the exit in `status.json` with `write`. Until it is written the exit
/// exists only in this process, so a failure (the data directory's filesystem full) is
/// retried, with back-off up to 5 s, until it succeeds: the container stays Running for the
/// agent meanwhile, and its exit is reported, with the times it happened, once it can be
/// recorded.
fn record_exit(dir: &Path, write: impl Fn(&mut status::StatusFile)) {
    let mut delay = Duration::from_millis(100);
    let mut failures = 0u32;
    loop {
        let written = status::update(dir, &write);
        match written {
            Ok(()) => {
                if failures > 0 {
                    crate::util::note!("monitor: exit recorded after {failures} failed attempt(s)");
                }
                return;
            }
            // The container was removed meanwhile: nobody will ask.
            Err(_) if !dir.join("spec.json").exists() => return,
            Err(e) => {
                if failures == 0 {
                    crate::util::note!("monitor: cannot record the exit yet: {e}; retrying");
                }
                failures += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// /dev/null; with a terminal the container's stdin FIFO (opened read-write so opening never
/// blocks; `feed_stdin` copies it to the terminal); without one a pipe fed from the FIFO
/// (`attach::stdin_pipe`, which closes it for `stdinOnce`).
fn stdin_for(dir: &Path, spec: &ContainerSpec) -> Result<Stdio, RuntimeError> {
    if !spec.process.stdin {
        return Ok(Stdio::null());
    }
    let fifo = dir.join("stdin");
    if !fifo.exists() {
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .map_err(|e| RuntimeError::io(&fifo, e.into()))?;
    }
    if !spec.process.tty {
        return Ok(Stdio::from(crate::attach::stdin_pipe(
            &fifo,
            spec.process.stdin_once,
        )?));
    }
    let f = File::options()
        .read(true)
        .write(true)
        .open(&fifo)
        .map_err(|e| RuntimeError::io(&fifo, e))?;
    Ok(Stdio::from(f))
}

/// TTY with stdin: copies the stdin FIFO into the pty master (detached
/// thread; it ends with the monitor).
fn feed_stdin(dir: &Path, master: &File) -> Result<(), RuntimeError> {
    let fifo_path = dir.join("stdin");
    let mut fifo = File::options()
        .read(true)
        .write(true)
        .open(&fifo_path)
        .map_err(|e| RuntimeError::io(&fifo_path, e))?;
    let mut to = master.try_clone().map_err(|e| RuntimeError::io("pty", e))?;
    std::thread::spawn(move || std::io::copy(&mut fifo, &mut to));
    Ok(())
}

/// A pipe as (read end, write end), both close-on-exec.
pub(crate) fn pipe() -> Result<(File, File), RuntimeError> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| RuntimeError::io("pipe", e.into()))?;
    Ok((File::from(r), File::from(w)))
}

/// `from`, copied to the attached clients as it is read.
fn tee(from: File, hub: &Arc<crate::attach::Hub>, stderr: bool) -> crate::attach::Tee<File> {
    crate::attach::Tee {
        inner: from,
        hub: hub.clone(),
        stderr,
    }
}

fn copier(
    log: &crilog::Writer,
    from: impl Read + Send + 'static,
    stream: Stream,
) -> std::thread::JoinHandle<()> {
    let log = log.clone();
    std::thread::spawn(move || {
        if let Err(e) = log.copy_from(from, stream) {
            crate::util::note!("monitor: copying {}: {e}", stream.as_str());
        }
    })
}

/// Waits for the runtime to connect to the console socket and send the pty
/// master; gives up when the runtime exits first or `deadline` passes.
fn receive_console(
    listener: &UnixListener,
    child: &mut std::process::Child,
    deadline: std::time::Instant,
) -> Option<OwnedFd> {
    listener.set_nonblocking(true).ok()?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                return crate::exec::recv_fd(&stream).ok();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if matches!(child.try_wait(), Ok(Some(_))) || std::time::Instant::now() >= deadline
                {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

/// The error messages in the runtime's JSON log (`--log-format json`).
fn runtime_error(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let msgs: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("\n"))
}

fn read_pid(path: &Path) -> Result<u32, RuntimeError> {
    let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::io(path, e))?;
    text.trim()
        .parse()
        .map_err(|_| RuntimeError::Invalid(format!("{}: bad pid {text:?}", path.display())))
}

/// Reaps children until `pid` exits; its exit code (128+signal if killed),
/// or None when it is not our child and vanished without a status.
pub(crate) fn reap_until(pid: u32) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid pointer to an int.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == pid as i32 {
            return Some(decode_wait(status));
        }
        if r < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // Not our child (cannot happen for a subreaper): poll until gone.
            while Path::new(&format!("/proc/{pid}")).exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
            return None;
        }
    }
}

/// Reaps whatever is left without blocking.
fn reap_all() {
    let mut status = 0;
    // SAFETY: waitpid with a valid pointer to an int.
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

/// Exit code of a wait status: the code, or 128+signal.
pub(crate) fn decode_wait(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// The container's cgroup path relative to the hierarchy roots.
fn cgroup_rel(dir: &Path) -> String {
    util::read_json::<serde_json::Value>(&dir.join("bundle/config.json"))
        .ok()
        .and_then(|v| {
            v["linux"]["cgroupsPath"]
                .as_str()
                .map(|s| s.trim_start_matches('/').to_string())
        })
        .unwrap_or_default()
}

/// The `oom_kill` counter of the container's memory cgroup (v1 or v2).
fn oom_kills(rel: &str) -> u64 {
    let candidates = [
        Path::new("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.oom_control"),
        Path::new("/sys/fs/cgroup").join(rel).join("memory.events"),
    ];
    candidates
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|v| v.trim().parse().ok())
                })
                .collect::<Vec<u64>>()
        })
        .max()
        .unwrap_or(0)
}

/// The monitor's PID, if it is alive and really the monitor of `dir`.
fn monitor_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("monitor.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let mut cmdline = Vec::new();
    File::open(format!("/proc/{pid}/cmdline"))
        .ok()?
        .read_to_end(&mut cmdline)
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let zombie = stat
        .rsplit(')')
        .next()
        .is_some_and(|s| s.trim_start().starts_with('Z'));
    let dir_name = dir.file_name()?.to_string_lossy().into_owned();
    (!zombie && String::from_utf8_lossy(&cmdline).contains(&dir_name)).then_some(pid)
}

/// Whether the container's monitor is alive.
pub(crate) fn monitor_alive(dir: &Path) -> bool {
    monitor_pid(dir).is_some()
}

/// SIGKILLs the container's monitor (last resort of `remove_container`).
pub(crate) fn kill_monitor(dir: &Path) {
    if let Some(pid) = monitor_pid(dir) {
        // SAFETY: kill(2) on a PID we verified is our monitor.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
