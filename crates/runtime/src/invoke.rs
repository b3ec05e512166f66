//! Calls of the OCI runtime binary under the runtime request timeout.
//!
//! The kubelet bounds every CRI call except the long-running ones by `--runtime-request-timeout`
//! ("Timeout of all runtime requests except long running request - pull, logs, exec and attach.
//! When timeout exceeded, kubelet will cancel the request, throw out an error and retry later.",
//! cmd/kubelet/app/options/options.go; default 2m0s, pkg/kubelet/apis/config/v1beta1/defaults.go).
//! Here the bound applies to each `create`, `start`, `kill`, `delete`, `state` and `--version`
//! of the OCI runtime; `exec` is a long-running call and is not bounded (probes bound their own).
//!
//! Each call runs in its own process group. A call that outlives its deadline has the whole
//! group SIGKILLed and reaped, so neither the hung runtime nor anything it started in its group
//! (the init of a half-created container) is left behind, and it fails with the text a CRI call
//! that timed out shows in the pod's status and events, [`DEADLINE_EXCEEDED`].

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The kubelet's default `--runtime-request-timeout` (2m0s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The message of a CRI call cancelled by its deadline: the kubelet records the gRPC status
/// message (`s.Message()` in pkg/kubelet/kuberuntime/kuberuntime_container.go
/// `startContainer`), which for an expired context is Go's `context.DeadlineExceeded` text.
pub const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// Why a runtime call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The runtime ran and failed (its message), or could not be started.
    Failed(String),
    /// The call outlived the request timeout; its process group was killed.
    DeadlineExceeded,
}

/// Spawns `cmd` in a new process group (so a timeout can kill all of it).
pub(crate) fn spawn_in_own_group(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.process_group(0).spawn()
}

/// Waits for `child` until `deadline`: its exit status, or `None` when the deadline passed
/// first (the child still runs). Sleeps on a pidfd, so the wait ends as soon as the child does.
pub(crate) fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<ExitStatus>> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_child(child),
        rustix::process::PidfdFlags::empty(),
    )
    .ok();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match &pidfd {
            Some(fd) => {
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let timeout = rustix::event::Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                };
                match rustix::event::poll(&mut fds, Some(&timeout)) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // No pidfd (an old kernel): poll the child.
            None => std::thread::sleep(left.min(Duration::from_millis(10))),
        }
    }
}

/// SIGKILLs the process group `child` leads and reaps `child`.
pub(crate) fn kill_group(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` (stdin from /dev/null) with `timeout`: its stdout, or the runtime's message
/// (stderr without logrus decoration) when it fails. `what` names the call in messages
/// (`start`, `--version`...).
pub(crate) fn call(cmd: &mut Command, what: &str, timeout: Duration) -> Result<String, CallError> {
    let program = std::path::PathBuf::from(cmd.get_program());
    let mut child = spawn_in_own_group(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .map_err(|e| CallError::Failed(format!("{}: {e}", program.display())))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = match wait_until(&mut child, Instant::now() + timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill_group(&mut child);
            tracing::warn!(
                program = %program.display(),
                call = what,
                timeout = ?timeout,
                "OCI runtime call timed out; its process group was killed"
            );
            // The readers end when the pipes close; a process that left the group could keep
            // them open, so they are not waited for.
            return Err(CallError::DeadlineExceeded);
        }
        Err(e) => {
            kill_group(&mut child);
            return Err(CallError::Failed(format!(
                "waiting for {} {what}: {e}",
                program.display()
            )));
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(String::from_utf8_lossy(&out).into_owned())
    } else {
        let mut msg = crate::util::clean_message(&String::from_utf8_lossy(&err));
        if msg.is_empty() {
            msg = format!("{} {what} exited with {status}", program.display());
        }
        Err(CallError::Failed(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_outlives_its_timeout_is_killed_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The shell and a background child both record their pids, then hang.
        let script = format!(
            "sleep 600 & echo $! >> {p}; echo $$ >> {p}; wait",
            p = pids.display()
        );
        let r = call(
            Command::new("sh").args(["-c", &script]),
            "hang",
            Duration::from_secs(2),
        );
        assert_eq!(r, Err(CallError::DeadlineExceeded));
        let text = std::fs::read_to_string(&pids).unwrap();
        // SIGKILL is delivered at once but a process takes a moment to die (the orphaned
        // `sleep` is reaped by whoever inherits it): each must be gone or a zombie within 5 s.
        for pid in text.split_whitespace() {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                if stat.is_empty() || state.starts_with('Z') {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "process {pid} of the timed-out call still runs: {stat}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    #[test]
    fn results_and_failures_are_reported() {
        assert_eq!(
            call(
                Command::new("sh").args(["-c", "echo out"]),
                "echo",
                Duration::from_secs(60)
            ),
            Ok("out\n".into())
        );
        assert_eq!(
            call(
                Command::new("sh").args(["-c", "echo 'it broke' >&2; exit 3"]),
                "fail",
                Duration::from_secs(60)
            ),
            Err(CallError::Failed("it broke".into()))
        );
        let Err(CallError::Failed(m)) = call(
            Command::new("sh").args(["-c", "ulimit -c 0; kill -s SEGV $$"]),
            "crash",
            Duration::from_secs(60),
        ) else {
            panic!("a crash is a failure");
        };
        assert!(
            m.starts_with("sh crash exited with signal: 11 (SIGSEGV)"),
            "{m}"
        );
    }
}
