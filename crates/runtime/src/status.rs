//! `status.json` (written by the monitor and `start`), and the container
//! operations that read it: start, status, stop, remove, list.

use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::types::*;
use crate::util;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The persisted record of one container's lifecycle. Times are Unix nanoseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StatusFile {
    /// The init process' PID.
    pub pid: Option<u32>,
    /// When `create` finished.
    pub created_at: Option<u64>,
    /// When `start` finished.
    pub started_at: Option<u64>,
    /// When the init process exited and its output was drained (the exit is final).
    pub finished_at: Option<u64>,
    /// When the monitor reaped the init process (its exit code is recorded then, before the
    /// output is drained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<u64>,
    /// Exit code (128+signal when killed).
    pub exit_code: Option<i32>,
    /// `OOMKilled`.
    pub reason: Option<String>,
    /// Free text (e.g. why the exit code is unknown).
    pub message: Option<String>,
}

/// Now as Unix nanoseconds.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn to_time(ns: Option<u64>) -> Option<SystemTime> {
    ns.map(|n| UNIX_EPOCH + Duration::from_nanos(n))
}

/// Reads `status.json` (default when absent).
pub(crate) fn read(dir: &Path) -> StatusFile {
    util::read_json(&dir.join("status.json")).unwrap_or_default()
}

/// Read-modify-write of `status.json` under an exclusive `flock` on
/// `status.lock`, since the monitor and `start` both update it.
pub(crate) fn update(dir: &Path, f: impl FnOnce(&mut StatusFile)) -> Result<(), RuntimeError> {
    let lock_path = dir.join("status.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| RuntimeError::io(&lock_path, e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| RuntimeError::io(&lock_path, e.into()))?;
    let mut st = read(dir);
    f(&mut st);
    util::write_json(&dir.join("status.json"), &st)
}

/// Reads the container's spec (NotFound when the container is unknown).
pub(crate) fn read_spec(dir: &Path) -> Result<ContainerSpec, RuntimeError> {
    util::read_json(&dir.join("spec.json"))
}

/// `<runtime> start <id>`; records the start time.
///
/// When `start` fails (or times out) the container is deleted from the runtime at once, as
/// containerd's CRI `StartContainer` deletes the task it could not start
/// (pkg/cri/server/container_start.go): nothing of it is left created or running, and its
/// directory stays for its status and logs. The monitor then records the exit of its init.
pub(crate) fn start_container(rt: &Runtime, id: &str) -> Result<(), RuntimeError> {
    let dir = rt.container_dir(id)?;
    read_spec(&dir)?;
    if let Err(e) = rt.call(&["start", id]) {
        let err = match e {
            crate::invoke::CallError::Failed(message) => RuntimeError::Start { message },
            timeout => rt.call_error("start", timeout),
        };
        if let Err(cleanup) = rt.call(&["delete", "--force", id]) {
            tracing::warn!(container = %id, error = %rt.call_error("delete", cleanup), "cannot delete a container whose start failed");
        } else {
            wait_finished(&dir, Duration::from_secs(10));
        }
        return Err(err);
    }
    update(&dir, |st| {
        let now = now_ns();
        st.started_at = Some(st.finished_at.map_or(now, |f| f.min(now)));
    })
}

/// The runtime's view: `created`, `running`, `stopped`, `paused`; `None` when the runtime has
/// no such container; an error when it cannot tell (the call failed or timed out).
fn runtime_state(rt: &Runtime, id: &str) -> Result<Option<String>, RuntimeError> {
    match rt.call(&["state", id]) {
        Ok(out) => {
            let v: serde_json::Value =
                serde_json::from_str(&out).map_err(|e| RuntimeError::Command {
                    command: "state".into(),
                    message: format!("unexpected output: {e}"),
                })?;
            Ok(v["status"].as_str().map(str::to_string))
        }
        Err(_) if !rt.runtime_knows(id) => Ok(None),
        Err(e) => Err(rt.call_error("state", e)),
    }
}

/// The status message of a container whose monitor died before recording its exit.
pub(crate) const MONITOR_LOST: &str = "the container's monitor exited without recording its exit";

/// Status from `status.json` and the runtime's `state`.
pub(crate) fn container_status(rt: &Runtime, id: &str) -> Result<ContainerStatus, RuntimeError> {
    let dir = rt.container_dir(id)?;
    let spec = read_spec(&dir)?;
    // The monitor first, then its record: a monitor that recorded the exit and then exited
    // is seen with its record, never as a monitor lost before recording.
    let monitor_alive = crate::monitor::monitor_alive(&dir);
    let st = read(&dir);
    let (state, message) = if st.finished_at.is_some() {
        (ContainerState::Exited, st.message.clone())
    } else if monitor_alive {
        live_state(rt, id, &st)
    } else {
        (ContainerState::Unknown, Some(MONITOR_LOST.into()))
    };
    Ok(ContainerStatus {
        id: id.to_string(),
        state,
        pid: if state == ContainerState::Exited {
            None
        } else {
            st.pid
        },
        created_at: to_time(st.created_at),
        started_at: to_time(st.started_at),
        finished_at: to_time(st.finished_at),
        exit_code: st.exit_code,
        reason: st.reason.clone(),
        message,
        labels: spec.labels,
    })
}

/// The state of a container whose monitor lives and has not recorded an exit yet.
fn live_state(rt: &Runtime, id: &str, st: &StatusFile) -> (ContainerState, Option<String>) {
    // A started container whose monitor lives is running: the monitor records the exit (after
    // draining the output), so `status.json` says when that changes. Asking the runtime
    // (`<runtime> state`: a process per container and per sync) is left to the other cases.
    if st.started_at.is_some() {
        return (ContainerState::Running, None);
    }
    match runtime_state(rt, id) {
        Ok(Some(s)) if s == "created" => (ContainerState::Created, None),
        Ok(Some(s)) if s == "running" || s == "paused" => (ContainerState::Running, None),
        // Exited, but the monitor is still draining the output: not done yet.
        Ok(Some(s)) if s == "stopped" => (ContainerState::Running, None),
        // Still being created.
        _ if st.created_at.is_none() => (ContainerState::Created, None),
        Ok(_) => (
            ContainerState::Unknown,
            Some("the OCI runtime does not know the container".into()),
        ),
        Err(e) => (ContainerState::Unknown, Some(e.to_string())),
    }
}

/// What the agent does about a container whose monitor died before recording its exit:
/// what containerd does when a task's shim dies (core/runtime/v2/shim.go
/// `cleanupAfterDeadShim`). It runs the shim's `delete`, which for runc is `runc delete
/// --force` (the container's processes are SIGKILLed and its state removed) and reports exit
/// status 128+SIGKILL (cmd/containerd-shim-runc-v2/manager/manager_linux.go `Stop`), then
/// publishes that exit; the kubelet sees the container exited and restarts it per the pod's
/// restartPolicy. Here: `<runtime> delete --force`, then exit code 137 with a message saying
/// the monitor died. Returns whether it recorded an exit (false: the monitor lives, or the exit
/// was recorded already and is kept). An error (the runtime cannot delete the container)
/// records nothing: the container may still run, and is not replaced while it might.
pub(crate) fn recover_lost_monitor(rt: &Runtime, id: &str) -> Result<bool, RuntimeError> {
    let dir = rt.container_dir(id)?;
    read_spec(&dir)?;
    if crate::monitor::monitor_alive(&dir) || read(&dir).finished_at.is_some() {
        return Ok(false);
    }
    let st = read(&dir);
    if let Some(exited_at) = st.exited_at {
        // The monitor recorded the exit, then died while draining the output: the process is
        // gone and its exit code is kept; only the runtime's state is left to remove.
        let _ = rt.call(&["delete", "--force", id]);
        let mut recorded = false;
        update(&dir, |st| {
            if st.finished_at.is_none() {
                recorded = true;
                st.finished_at = Some(exited_at);
                st.message = Some(
                    "the container's monitor died after recording its exit; its last output may be missing from the log"
                        .into(),
                );
            }
        })?;
        return Ok(recorded);
    }
    let was_running = matches!(
        runtime_state(rt, id),
        Ok(Some(s)) if s == "running" || s == "paused" || s == "created"
    );
    if let Err(e) = rt.call(&["delete", "--force", id]) {
        if rt.runtime_knows(id) {
            return Err(rt.call_error("delete", e));
        }
    }
    let mut recorded = false;
    update(&dir, |st| {
        if st.finished_at.is_some() || st.exited_at.is_some() {
            return;
        }
        recorded = true;
        st.finished_at = Some(now_ns());
        st.exit_code = Some(128 + libc::SIGKILL);
        st.message = Some(if was_running {
            "the container's monitor died; the container was killed".into()
        } else {
            "the container's monitor died; the exit status of the container's process was lost"
                .into()
        });
    })?;
    if recorded {
        tracing::warn!(container = %id, was_running, "container monitor died: container deleted, exit 137 recorded");
    }
    Ok(recorded)
}

/// Waits until the monitor recorded the exit, or `timeout` passed.
fn wait_finished(dir: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if read(dir).finished_at.is_some() || !crate::monitor::monitor_alive(dir) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the container is known to have exited: its exit is recorded, or the runtime says
/// it stopped or has no such container.
fn exited(rt: &Runtime, id: &str, dir: &Path) -> bool {
    read(dir).finished_at.is_some()
        || match runtime_state(rt, id) {
            Ok(None) => true,
            Ok(Some(s)) => s == "stopped",
            Err(_) => false,
        }
}

/// SIGTERM, wait up to `grace`, SIGKILL, wait for the monitor's record. A signal the runtime
/// fails to deliver to a container that may still run is an error at once (the kubelet's
/// `KillContainerError`); the caller retries.
pub(crate) fn stop_container(rt: &Runtime, id: &str, grace: Duration) -> Result<(), RuntimeError> {
    let dir = rt.container_dir(id)?;
    if !dir.join("spec.json").exists() || read(&dir).finished_at.is_some() {
        return Ok(());
    }
    if !crate::monitor::monitor_alive(&dir) {
        // Nobody would record the exit: delete it as a container whose monitor died.
        return recover_lost_monitor(rt, id).map(|_| ());
    }
    let signal = |sig: &str| -> Result<(), RuntimeError> {
        match rt.call(&["kill", id, sig]) {
            Err(e) if !exited(rt, id, &dir) => Err(rt.call_error("kill", e)),
            _ => Ok(()),
        }
    };
    signal("TERM")?;
    if wait_finished(&dir, grace) {
        return Ok(());
    }
    signal("KILL")?;
    if wait_finished(&dir, Duration::from_secs(30)) {
        Ok(())
    } else {
        Err(RuntimeError::Command {
            command: "kill".into(),
            message: format!("container {id} did not exit after SIGKILL"),
        })
    }
}

/// `delete --force`, waits for the monitor, unmounts, removes the directory. A container the
/// runtime fails to delete while it still holds its state is an error (it may still run), and
/// its directory is kept.
pub(crate) fn remove_container(rt: &Runtime, id: &str) -> Result<(), RuntimeError> {
    let dir = rt.container_dir(id)?;
    if !dir.exists() {
        return Ok(());
    }
    let spec = read_spec(&dir).ok();
    if let Err(e) = rt.call(&["delete", "--force", id]) {
        if rt.runtime_knows(id) {
            return Err(rt.call_error("delete", e));
        }
    }
    if !wait_finished(&dir, Duration::from_secs(10)) {
        crate::monitor::kill_monitor(&dir);
    }
    crate::rootfs::release(&dir)?;
    std::fs::remove_dir_all(&dir).map_err(|e| RuntimeError::io(&dir, e))?;
    if let Some(spec) = spec {
        remove_pod_cgroups(&rt.cfg.cgroup_parent, &spec.pod_uid);
    }
    Ok(())
}

/// Removes `<parent>/pod<uid>` in every cgroup hierarchy once it is empty
/// (the runtime removes the container's own cgroup on delete).
pub(crate) fn remove_pod_cgroups(parent: &str, pod_uid: &str) {
    let rel = format!("{}/pod{pod_uid}", parent.trim_matches('/'));
    for root in cgroup_roots() {
        let p = root.join(&rel);
        if p.is_dir() {
            let _ = std::fs::remove_dir(&p);
        }
    }
}

/// The mount points of the cgroup hierarchies (v1 controllers and cgroup2).
pub(crate) fn cgroup_roots() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut roots: Vec<PathBuf> = info
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// The containers on disk.
pub(crate) fn list_containers(rt: &Runtime) -> Result<Vec<ContainerRecord>, RuntimeError> {
    let dir = &rt.cfg.containers_dir;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(dir, e)),
    };
    let mut out: Vec<ContainerRecord> = entries
        .flatten()
        .filter_map(|e| read_spec(&e.path()).ok())
        .map(|s| ContainerRecord {
            id: s.id,
            pod_uid: s.pod_uid,
            labels: s.labels,
            log_path: s.log_path,
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
