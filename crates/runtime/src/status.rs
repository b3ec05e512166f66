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
    /// When the init process exited.
    pub finished_at: Option<u64>,
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
pub(crate) fn start_container(rt: &Runtime, id: &str) -> Result<(), RuntimeError> {
    let dir = rt.container_dir(id)?;
    read_spec(&dir)?;
    util::run(rt.command().args(["start", id]))
        .map_err(|message| RuntimeError::Start { message })?;
    update(&dir, |st| {
        let now = now_ns();
        st.started_at = Some(st.finished_at.map_or(now, |f| f.min(now)));
    })
}

/// The runtime's view: `created`, `running`, `stopped`, `paused`, or None if unknown to it.
fn runtime_state(rt: &Runtime, id: &str) -> Option<String> {
    let out = util::run(rt.command().args(["state", id])).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    v["status"].as_str().map(str::to_string)
}

/// Status from `status.json` and the runtime's `state`.
pub(crate) fn container_status(rt: &Runtime, id: &str) -> Result<ContainerStatus, RuntimeError> {
    let dir = rt.container_dir(id)?;
    let spec = read_spec(&dir)?;
    let st = read(&dir);
    let (state, message) = if st.finished_at.is_some() {
        (ContainerState::Exited, st.message.clone())
    } else {
        live_state(rt, id, &dir, &st)
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

/// The state of a container whose exit is not recorded yet.
fn live_state(
    rt: &Runtime,
    id: &str,
    dir: &Path,
    st: &StatusFile,
) -> (ContainerState, Option<String>) {
    // A started container whose monitor lives is running: the monitor records the exit (after
    // draining the output), so `status.json` says when that changes. Asking the runtime
    // (`<runtime> state`: a process per container and per sync) is left to the other cases.
    let monitor_alive = crate::monitor::monitor_alive(dir);
    if monitor_alive && st.started_at.is_some() {
        return (ContainerState::Running, None);
    }
    match runtime_state(rt, id).as_deref() {
        Some("created") => (ContainerState::Created, None),
        Some("running" | "paused") => (ContainerState::Running, None),
        // Exited, but the monitor is still draining the output: not done yet.
        Some("stopped") if monitor_alive => (ContainerState::Running, None),
        _ if monitor_alive && st.created_at.is_none() => (ContainerState::Created, None),
        _ => (
            ContainerState::Unknown,
            Some("the container's monitor exited without recording its exit".into()),
        ),
    }
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

/// SIGTERM, wait up to `grace`, SIGKILL, wait for the monitor's record.
pub(crate) fn stop_container(rt: &Runtime, id: &str, grace: Duration) -> Result<(), RuntimeError> {
    let dir = rt.container_dir(id)?;
    if !dir.join("spec.json").exists() || read(&dir).finished_at.is_some() {
        return Ok(());
    }
    let _ = util::run(rt.command().args(["kill", id, "TERM"]));
    if wait_finished(&dir, grace) {
        return Ok(());
    }
    let _ = util::run(rt.command().args(["kill", id, "KILL"]));
    if wait_finished(&dir, Duration::from_secs(30)) {
        Ok(())
    } else {
        Err(RuntimeError::Command {
            command: "kill".into(),
            message: format!("container {id} did not exit after SIGKILL"),
        })
    }
}

/// `delete --force`, waits for the monitor, unmounts, removes the directory.
pub(crate) fn remove_container(rt: &Runtime, id: &str) -> Result<(), RuntimeError> {
    let dir = rt.container_dir(id)?;
    if !dir.exists() {
        return Ok(());
    }
    let spec = read_spec(&dir).ok();
    if let Err(message) = util::run(rt.command().args(["delete", "--force", id])) {
        if runtime_state(rt, id).is_some() {
            return Err(RuntimeError::Command {
                command: "delete".into(),
                message,
            });
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
