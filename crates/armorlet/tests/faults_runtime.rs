//! Runtime faults (issue 12): the OCI runtime crashing or hanging, a container's monitor dying.
//! armorlet's own failures must never weaken a pod's confinement, lose state or leave anything
//! running unaccounted: each fault gets the kubelet's error state and events, is retried with
//! back-off, leaves no half-created container (runtime state, cgroup, process) behind, and
//! other pods keep working.
//!
//! The faulty runtime is a shell script named `crun` first on `armorlet up`'s `PATH` (the node
//! finds its runtime on `PATH`): it runs the real crun, except for containers whose
//! `config.json` carries the environment entry `FAULT=<tag>` named in a control file
//! `<action>-<op>`: `crash` dies of SIGSEGV before running crun, `crash-after` runs crun and
//! then dies of SIGSEGV, `hang` sleeps forever.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The fault-injecting `crun` and its control directory.
struct FaultyRuntime {
    dir: tempfile::TempDir,
}

impl FaultyRuntime {
    fn new() -> FaultyRuntime {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let ctl = dir.path().join("ctl");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&ctl).unwrap();
        let real = ["/usr/bin/crun", "/usr/local/bin/crun", "/usr/sbin/crun"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("crun is installed");
        let script = format!(
            r#"#!/bin/sh
# armorlet test: crun with injected faults (see faults_runtime.rs).
ulimit -c 0
CTL='{ctl}'
REAL='{real}'
op=''; id=''; root=''; bundle=''; prev=''
for a in "$@"; do
  case "$prev" in
    --root) root=$a ;;
    --bundle) bundle=$a ;;
  esac
  case "$a" in
    create|start|kill|delete|state) [ -z "$op" ] && op=$a ;;
  esac
  if [ ${{#a}} -eq 64 ] && [ -z "$(printf %s "$a" | tr -d 0-9a-f)" ]; then id=$a; fi
  prev=$a
done
config=''
if [ -n "$bundle" ]; then
  config="$bundle/config.json"
elif [ -n "$id" ] && [ -n "$root" ]; then
  config="$(dirname "$root")/containers/$id/bundle/config.json"
fi
for action in crash crash-after hang; do
  f="$CTL/$action-$op"
  [ -n "$op" ] && [ -f "$f" ] || continue
  tag=$(cat "$f")
  [ -n "$config" ] && grep -q "\"FAULT=$tag\"" "$config" 2>/dev/null || continue
  echo "$action $op $tag $id $$" >> "$CTL/log"
  case $action in
    crash) kill -s SEGV $$ ;;
    crash-after) "$REAL" "$@"; kill -s SEGV $$ ;;
    hang) exec sleep 100000 ;;
  esac
done
exec "$REAL" "$@"
"#,
            ctl = ctl.display(),
        );
        let path = bin.join("crun");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        FaultyRuntime { dir }
    }

    /// `PATH` with the faulty `crun` first.
    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        )
    }

    /// From now on `op` of the containers tagged `tag` does `action`.
    fn set(&self, action: &str, op: &str, tag: &str) {
        std::fs::write(self.ctl(&format!("{action}-{op}")), tag).unwrap();
    }

    fn clear(&self, action: &str, op: &str) {
        std::fs::remove_file(self.ctl(&format!("{action}-{op}"))).unwrap();
    }

    fn ctl(&self, name: &str) -> PathBuf {
        self.dir.path().join("ctl").join(name)
    }

    /// The injected faults so far: `[action, op, tag, id, pid]` each.
    fn log(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.ctl("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    }

    /// How many times `action` hit `op` of containers tagged `tag`.
    fn count(&self, action: &str, op: &str, tag: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l[0] == action && l[1] == op && l[2] == tag)
            .count()
    }
}

fn node_dir(c: &Cluster) -> PathBuf {
    c.data().join("nodes").join(hostname())
}

/// A pod of one container `c` running `command`, with `FAULT=<tag>` in its environment.
fn pod(name: &str, tag: &str, restart: &str, command: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sh\", \"-c\", {command:?}]\n    env:\n    - {{name: FAULT, value: {tag:?}}}\n"
    )
}

/// Whether `pid` is a live (non-zombie) process.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Live processes whose command line is exactly `args`.
fn processes(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| alive(*pid))
        .collect()
}

/// The pod's UID.
fn uid(c: &Cluster, name: &str) -> String {
    c.pod(name)["metadata"]["uid"].as_str().unwrap().to_owned()
}

/// The container IDs of the pod's containers on disk (`D/nodes/<node>/containers`).
fn container_dirs(c: &Cluster, pod_uid: &str) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(node_dir(c).join("containers")) else {
        return Vec::new();
    };
    dirs.flatten()
        .filter_map(|d| {
            let spec: Value =
                serde_json::from_slice(&std::fs::read(d.path().join("spec.json")).ok()?).ok()?;
            (spec["pod_uid"] == pod_uid).then(|| spec["id"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The containers the OCI runtime holds state for.
fn runtime_ids(c: &Cluster) -> Vec<String> {
    std::fs::read_dir(node_dir(c).join("runtime"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The real crun's `state` of container `id`: its status, `None` when it does not know it.
fn crun_state(c: &Cluster, id: &str) -> Option<String> {
    let out = Command::new("crun")
        .arg("--root")
        .arg(node_dir(c).join("runtime"))
        .args(["state", id])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["status"].as_str().map(str::to_owned)
}

/// The processes in the pod's cgroups, in every hierarchy.
fn pod_cgroup_procs(pod_uid: &str) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for root in info
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4))
    {
        let dir = Path::new(root)
            .join("armorlet")
            .join(hostname())
            .join(format!("pod{pod_uid}"));
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                }
            }
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            if !procs.trim().is_empty() {
                out.push(format!("{}: {}", d.display(), procs.trim()));
            }
        }
    }
    out
}

fn container_status(c: &Cluster, name: &str) -> Value {
    c.pod(name)["status"]["containerStatuses"][0].clone()
}

fn waiting_with(c: &Cluster, name: &str, reasons: &[&str]) -> Value {
    c.wait_for(&format!("{name} waiting with {reasons:?}"), || {
        let w = container_status(c, name)["state"]["waiting"].clone();
        w["reason"]
            .as_str()
            .is_some_and(|r| reasons.contains(&r))
            .then_some(w)
    })
}

/// The messages of the pod's events with `reason`.
fn event_messages(c: &Cluster, name: &str, reason: &str) -> Vec<String> {
    let selector = format!("involvedObject.name={name},reason={reason}");
    c.kubectl_json(&["get", "events", "--field-selector", &selector])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

fn wait_event(c: &Cluster, name: &str, reason: &str, matches: impl Fn(&str) -> bool) -> String {
    c.wait_for(&format!("a {reason} event of {name}"), || {
        event_messages(c, name, reason)
            .into_iter()
            .find(|m| matches(m))
    })
}

/// Nothing of a failing pod is left between attempts: no container directory (when
/// `no_dirs`), no runtime state but that of running containers of the `keep` pods, no process
/// running its command, no process in its cgroups.
fn assert_clean_between_attempts(
    c: &Cluster,
    victim: &str,
    command: &[&str],
    no_dirs: bool,
    keep: &[&str],
) {
    let victim_uid = uid(c, victim);
    let kept: Vec<String> = keep
        .iter()
        .flat_map(|p| container_dirs(c, &uid(c, p)))
        .collect();
    let mut last = String::new();
    let clean = (0..40).any(|_| {
        let dirs = if no_dirs { container_dirs(c, &victim_uid) } else { Vec::new() };
        let stray_state: Vec<String> = runtime_ids(c)
            .into_iter()
            .filter(|id| !(kept.contains(id) && crun_state(c, id).as_deref() == Some("running")))
            .collect();
        let procs = processes(command);
        let cgroups = pod_cgroup_procs(&victim_uid);
        last = format!("container dirs {dirs:?}, runtime state {stray_state:?}, processes {procs:?}, cgroups {cgroups:?}");
        let ok = dirs.is_empty() && stray_state.is_empty() && procs.is_empty() && cgroups.is_empty();
        if !ok {
            std::thread::sleep(Duration::from_millis(250));
        }
        ok
    });
    assert!(clean, "{victim} left something behind: {last}");
}

/// The OCI runtime crashes (SIGSEGV) on `create` (after crun created the container) and on
/// `start`: the containers get `CreateContainerError` / `RunContainerError` (`StartError`,
/// exit 128) with the runtime's failure and a `Failed` event, are retried with back-off, leave
/// no runtime state, process or cgroup behind, and run once the fault is gone; a pod beside
/// them runs throughout. Then it crashes on `kill` and `delete` during a pod's deletion: the
/// pod stays Terminating with `FailedKillPod` events while its container is still there, and
/// is deleted, leaving nothing, once the runtime works again.
#[test]
fn oci_runtime_crashes_fail_containers_cleanly_and_are_retried() {
    let faults = FaultyRuntime::new();
    let path = faults.path();
    let c = Cluster::with_env("crun", &[], &[("PATH", &path)]);
    faults.set("crash-after", "create", "vc");
    faults.set("crash", "start", "vs");
    c.apply(&format!(
        "{}---\n{}---\n{}",
        pod("victim-create", "vc", "Always", "exec sleep 3601"),
        pod("victim-start", "vs", "Always", "exec sleep 3602"),
        pod("bystander", "none", "Always", "exec sleep 3600"),
    ));
    c.wait_running("bystander");

    // The kubelet's reasons, with the runtime's failure as the message and the Failed event.
    let w = waiting_with(&c, "victim-create", &["CreateContainerError"]);
    let msg = w["message"].as_str().unwrap().to_owned();
    assert!(
        msg.ends_with("/bin/crun create exited with signal: 11 (SIGSEGV)"),
        "{msg}"
    );
    wait_event(&c, "victim-create", "Failed", |m| {
        m == format!("Error: {msg}")
    });
    // RunContainerError until the next sync, then CrashLoopBackOff while it backs off.
    waiting_with(
        &c,
        "victim-start",
        &["RunContainerError", "CrashLoopBackOff"],
    );
    let last = c.wait_for("victim-start's StartError", || {
        let t = container_status(&c, "victim-start")["lastState"]["terminated"].clone();
        t.is_object().then_some(t)
    });
    assert_eq!(last["reason"], "StartError", "{last}");
    assert_eq!(last["exitCode"], 128, "{last}");
    let msg = last["message"].as_str().unwrap().to_owned();
    assert!(
        msg.ends_with("/bin/crun start exited with signal: 11 (SIGSEGV)"),
        "{msg}"
    );
    wait_event(&c, "victim-start", "Failed", |m| {
        m == format!("Error: {msg}")
    });
    // Retried (with back-off), and nothing left behind by any attempt.
    c.wait_for("two crashed attempts of each", || {
        (faults.count("crash-after", "create", "vc") >= 2
            && faults.count("crash", "start", "vs") >= 2)
            .then_some(())
    });
    assert_clean_between_attempts(
        &c,
        "victim-create",
        &["sleep", "3601"],
        true,
        &["bystander"],
    );
    assert_clean_between_attempts(
        &c,
        "victim-start",
        &["sleep", "3602"],
        false,
        &["bystander"],
    );
    let reason = container_status(&c, "victim-start")["state"]["waiting"]["reason"].clone();
    assert!(
        reason == "CrashLoopBackOff" || reason == "RunContainerError",
        "{reason}"
    );
    assert!(container_status(&c, "victim-start")["restartCount"].as_u64() >= Some(1));
    let by = container_status(&c, "bystander");
    assert_eq!(by["restartCount"], 0, "{by}");
    assert!(by["state"]["running"].is_object(), "{by}");

    // The runtime works again: both start.
    faults.clear("crash-after", "create");
    faults.clear("crash", "start");
    c.wait_running("victim-create");
    c.wait_running("victim-start");
    assert_eq!(processes(&["sleep", "3601"]).len(), 1);
    assert_eq!(processes(&["sleep", "3602"]).len(), 1);
    let crashes = faults.log().len();

    // Crashes on kill and delete while the pod is deleted.
    let vc_uid = uid(&c, "victim-create");
    let vc_id = container_status(&c, "victim-create")["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("crun://")
        .to_owned();
    faults.set("crash", "kill", "vc");
    faults.set("crash", "delete", "vc");
    c.kubectl_ok(&["delete", "pod", "victim-create", "--wait=false"]);
    let kill_prefix =
        "error killing pod: failed to \"KillContainer\" for \"c\" with KillContainerError: ";
    let m = wait_event(&c, "victim-create", "FailedKillPod", |m| {
        m.starts_with(kill_prefix)
    });
    assert!(
        m.contains("crun kill exited with signal: 11 (SIGSEGV)"),
        "{m}"
    );
    // Still accounted for: the pod object exists (Terminating) and its container still runs.
    let p = c.pod("victim-create");
    assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p}");
    assert_eq!(crun_state(&c, &vc_id).as_deref(), Some("running"));
    assert_eq!(processes(&["sleep", "3601"]).len(), 1);
    // kill works again, delete does not: stopped, but the pod is kept until it is removed.
    faults.clear("crash", "kill");
    let m = wait_event(&c, "victim-create", "FailedKillPod", |m| {
        m.starts_with(kill_prefix) && m.contains("crun delete exited with signal: 11 (SIGSEGV)")
    });
    assert!(m.contains("delete failed: "), "{m}");
    assert!(c.pod("victim-create")["metadata"]["deletionTimestamp"].is_string());
    assert!(processes(&["sleep", "3601"]).is_empty());
    faults.clear("crash", "delete");
    c.wait_for("victim-create to be gone", || {
        (!c.kubectl(&["get", "pod", "victim-create"]).status.success()).then_some(())
    });
    assert!(container_dirs(&c, &vc_uid).is_empty());
    assert!(!runtime_ids(&c).contains(&vc_id), "{:?}", runtime_ids(&c));
    assert!(pod_cgroup_procs(&vc_uid).is_empty());
    assert!(processes(&["sleep", "3601"]).is_empty());
    // The other pods never noticed.
    for name in ["bystander", "victim-start"] {
        let s = container_status(&c, name);
        assert!(s["state"]["running"].is_object(), "{name}: {s}");
    }
    assert_eq!(container_status(&c, "bystander")["restartCount"], 0);
    println!(
        "crashes injected: {crashes} on create/start, {} on kill/delete",
        faults.log().len() - crashes
    );
}

/// The OCI runtime hangs on `create` and on `start`: with `--runtime-request-timeout 3s` each
/// call is cut after 3 s, its processes killed, and the container gets the kubelet's
/// `context deadline exceeded`; the node keeps working (a pod created after the hang runs),
/// no hung runtime process remains, and the pods start once the runtime answers again.
#[test]
fn oci_runtime_hangs_are_cut_by_the_runtime_request_timeout() {
    let faults = FaultyRuntime::new();
    let path = faults.path();
    let c = Cluster::with_env(
        "crun",
        &["--runtime-request-timeout", "3s"],
        &[("PATH", &path)],
    );
    faults.set("hang", "create", "hc");
    faults.set("hang", "start", "hs");
    c.apply(&format!(
        "{}---\n{}",
        pod("hang-create", "hc", "Always", "exec sleep 3611"),
        pod("hang-start", "hs", "Always", "exec sleep 3612"),
    ));
    c.wait_for("a hung create", || {
        (faults.count("hang", "create", "hc") >= 1).then_some(())
    });
    // Created after the hang began: it runs.
    c.apply(&pod("after-hang", "none", "Always", "exec sleep 3613"));
    c.wait_running("after-hang");

    let deadline = "context deadline exceeded";
    let w = waiting_with(&c, "hang-create", &["CreateContainerError"]);
    assert_eq!(w["message"], deadline, "{w}");
    wait_event(&c, "hang-create", "Failed", |m| {
        m == format!("Error: {deadline}")
    });
    waiting_with(&c, "hang-start", &["RunContainerError", "CrashLoopBackOff"]);
    let last = c.wait_for("hang-start's StartError", || {
        let t = container_status(&c, "hang-start")["lastState"]["terminated"].clone();
        t.is_object().then_some(t)
    });
    assert_eq!(last["reason"], "StartError", "{last}");
    assert_eq!(last["exitCode"], 128, "{last}");
    assert_eq!(last["message"], deadline, "{last}");
    wait_event(&c, "hang-start", "Failed", |m| {
        m == format!("Error: {deadline}")
    });

    // Every hung call was killed; nothing of the two pods is left between attempts.
    c.wait_for("two timed-out attempts of each", || {
        (faults.count("hang", "create", "hc") >= 2 && faults.count("hang", "start", "hs") >= 2)
            .then_some(())
    });
    let hung: Vec<u32> = faults.log().iter().map(|l| l[4].parse().unwrap()).collect();
    c.wait_for("the hung runtime processes to be gone", || {
        hung.iter().all(|p| !alive(*p)).then_some(())
    });
    assert_clean_between_attempts(&c, "hang-create", &["sleep", "3611"], true, &["after-hang"]);
    assert_clean_between_attempts(&c, "hang-start", &["sleep", "3612"], false, &["after-hang"]);

    faults.clear("hang", "create");
    faults.clear("hang", "start");
    c.wait_running("hang-create");
    c.wait_running("hang-start");
    let hung: Vec<u32> = faults.log().iter().map(|l| l[4].parse().unwrap()).collect();
    assert!(
        hung.iter().all(|p| !alive(*p)),
        "a hung runtime call survived: {hung:?}"
    );
    assert_eq!(processes(&["sleep", "100000"]).len(), 0);
    assert_eq!(container_status(&c, "after-hang")["restartCount"], 0);
    println!("{} hung runtime calls cut after 3 s", hung.len());
}

/// The monitor of a running container is killed with SIGKILL. As containerd after a task's
/// shim died (the task is deleted and its exit published, 128+SIGKILL), the container is
/// killed, not left running unmonitored: lastState terminated exit 137 (reason Error), the
/// restart count rises, and a new container runs with a live monitor and working logs. The
/// monitor of a container that exited (restartPolicy Never) and recorded its exit code, killed
/// while it still drains the output, does not take that exit code with it.
#[test]
fn a_dead_monitor_is_handled_as_containerd_handles_a_dead_shim() {
    let c = Cluster::new("crun");
    c.apply(&format!(
        "{}---\n{}",
        pod(
            "watched",
            "none",
            "Always",
            "echo run $(cat /proc/sys/kernel/random/uuid); exec sleep 3621"
        ),
        pod(
            "finished",
            "none",
            "Never",
            "echo bye; while [ ! -e /tmp/go ]; do sleep 0.2; done; exit 3"
        ),
    ));
    let p = c.wait_running("watched");
    let cs = &p["status"]["containerStatuses"][0];
    let old_id = cs["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("crun://")
        .to_owned();
    let old_dir = node_dir(&c).join("containers").join(&old_id);
    let monitor: u32 = std::fs::read_to_string(old_dir.join("monitor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status: Value =
        serde_json::from_slice(&std::fs::read(old_dir.join("status.json")).unwrap()).unwrap();
    let init = status["pid"].as_u64().unwrap() as u32;
    assert!(alive(monitor) && alive(init));
    let first_log = c.wait_for("the first container's log", || {
        let out = c.kubectl_ok(&["logs", "watched"]);
        out.starts_with("run ").then_some(out)
    });

    let killed = Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let s = c.wait_for("watched restarted", || {
        let s = container_status(&c, "watched");
        (s["restartCount"] == 1
            && s["state"]["running"].is_object()
            && s["containerID"] != format!("crun://{old_id}"))
        .then_some(s)
    });
    let t = &s["lastState"]["terminated"];
    assert_eq!(t["exitCode"], 137, "{s}");
    assert_eq!(t["reason"], "Error", "{s}");
    assert_eq!(
        t["message"], "the container's monitor died; the container was killed",
        "{s}"
    );
    assert_eq!(t["containerID"], format!("crun://{old_id}"), "{s}");
    // The old container is gone, not running unmonitored.
    c.wait_for("the old container's process to be gone", || {
        (!alive(init)).then_some(())
    });
    assert_eq!(
        crun_state(&c, &old_id),
        None,
        "the runtime still holds the old container"
    );
    assert_eq!(processes(&["sleep", "3621"]).len(), 1);
    // The new one has a live monitor, and its logs (and the old one's) work.
    let new_id = s["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("crun://")
        .to_owned();
    let new_dir = node_dir(&c).join("containers").join(&new_id);
    let new_monitor: u32 = std::fs::read_to_string(new_dir.join("monitor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(new_monitor));
    let cmdline = std::fs::read(format!("/proc/{new_monitor}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains(&new_id));
    let new_log = c.wait_for("the new container's log", || {
        let out = c.kubectl_ok(&["logs", "watched"]);
        out.starts_with("run ").then_some(out)
    });
    assert_ne!(new_log, first_log, "the log is the old container's");
    assert_eq!(c.kubectl_ok(&["logs", "watched", "--previous"]), first_log);
    assert_eq!(
        c.kubectl_ok(&["exec", "watched", "--", "echo", "ok"]),
        "ok\n"
    );

    // restartPolicy Never: the exit is recorded, then the monitor dies while draining (this
    // test holds the container's stdout pipe open, so the monitor cannot finish).
    let p = c.wait_running("finished");
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("crun://")
        .to_owned();
    let dir = node_dir(&c).join("containers").join(&id);
    let status: Value =
        serde_json::from_slice(&std::fs::read(dir.join("status.json")).unwrap()).unwrap();
    let init = status["pid"].as_u64().unwrap();
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{init}/fd/1"))
        .expect("open the container's stdout pipe");
    let monitor: u32 = std::fs::read_to_string(dir.join("monitor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.kubectl_ok(&["exec", "finished", "--", "touch", "/tmp/go"]);
    c.wait_for("the exit code recorded while the monitor drains", || {
        let st: Value =
            serde_json::from_slice(&std::fs::read(dir.join("status.json")).ok()?).ok()?;
        (st["exit_code"] == 3 && st["finished_at"].is_null()).then_some(())
    });
    assert!(
        alive(monitor),
        "the monitor finished although the pipe is held"
    );
    let killed = Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(held);
    let s = c.wait_for("finished terminated", || {
        let p = c.pod("finished");
        (p["status"]["phase"] == "Failed").then(|| p["status"]["containerStatuses"][0].clone())
    });
    let t = &s["state"]["terminated"];
    assert_eq!(t["exitCode"], 3, "{s}");
    assert_eq!(t["reason"], "Error", "{s}");
    assert_eq!(s["restartCount"], 0, "{s}");
    assert_eq!(c.kubectl_ok(&["logs", "finished"]), "bye\n");
    // A few syncs later it still says so, and nothing was started in its place.
    std::thread::sleep(Duration::from_secs(3));
    let again = container_status(&c, "finished");
    assert_eq!(again["state"]["terminated"]["exitCode"], 3, "{again}");
    assert_eq!(again["restartCount"], 0, "{again}");
    assert_eq!(container_dirs(&c, &uid(&c, "finished")), vec![id]);
}

/// The pod network cannot be set up (host-local has no address left in the node's pod CIDR):
/// the pod gets the kubelet's `FailedCreatePodSandBox` event with containerd's text, stays
/// Pending with its container `ContainerCreating`, and nothing of it runs or stays behind
/// (the agent creates a pod's first container while the network is set up, and must remove
/// it). Once an address is free again, the pod runs with it.
#[test]
fn pod_network_failure_starts_nothing_and_is_retried() {
    let c = Cluster::new("crun");
    // Every address host-local hands out (.2 to .254 of the node's /24; .1 is the bridge) is
    // taken, as reservation files of another container.
    let ipam = node_dir(&c).join("cni/ipam/armorlet");
    std::fs::create_dir_all(&ipam).unwrap();
    let subnet = format!("10.244.{}", c.node_index);
    for host in 2..=254 {
        std::fs::write(ipam.join(format!("{subnet}.{host}")), "someone-else\neth0").unwrap();
    }
    c.apply(&pod("netless", "none", "Always", "exec sleep 3579"));
    let uid = uid(&c, "netless");
    let msg = wait_event(&c, "netless", "FailedCreatePodSandBox", |m| {
        m.contains("no IP addresses available")
    });
    assert!(
        msg.starts_with(&format!(
            "Failed to create pod sandbox: failed to setup network for sandbox \"{uid}\": "
        )),
        "{msg}"
    );
    // A second attempt failed too (the agent retries each pass), and still nothing started.
    c.wait_for("a second failed attempt", || {
        let e = c.kubectl_json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=netless,reason=FailedCreatePodSandBox",
        ])?;
        (e["items"][0]["count"].as_u64()? >= 2).then_some(())
    });
    let pod = c.pod("netless");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(pod["status"]["podIP"].is_null(), "{}", pod["status"]);
    assert_eq!(
        container_status(&c, "netless")["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    assert!(event_messages(&c, "netless", "Started").is_empty());
    assert!(event_messages(&c, "netless", "Created").is_empty());
    assert_clean_between_attempts(&c, "netless", &["sleep", "3579"], true, &[]);

    std::fs::remove_file(ipam.join(format!("{subnet}.77"))).unwrap();
    let pod = c.wait_running("netless");
    assert_eq!(pod["status"]["podIP"], format!("{subnet}.77"));
    assert_eq!(container_status(&c, "netless")["restartCount"], 0);
    assert_eq!(event_messages(&c, "netless", "Started").len(), 1);
    c.kubectl_ok(&["delete", "pod", "netless", "--wait=true"]);
    c.wait_for("the pod's containers removed", || {
        container_dirs(&c, &uid).is_empty().then_some(())
    });
}
