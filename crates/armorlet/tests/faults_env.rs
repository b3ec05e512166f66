//! Faults of the environment (issue 12 item 3): a full disk under the data directory and
//! under the pod log directory, image blobs whose bytes do not match their digests, and a
//! node that loses its API server for a while. armorlet's own failures must never weaken a
//! pod's confinement, lose state or let anyone in: each test injects one fault into a real
//! cluster and checks what the API, the node and the pods do during it and after it.
//!
//! Full disks are small tmpfs mounts put under the cluster's `data/` or `pods/` (symlinks
//! into a mount of the test's own) and filled with a filler file until `ENOSPC`. The API
//! outage runs the API server (`armorlet up --nodes 0`) and the node agent (`armorlet node`)
//! as separate processes and kills the server: 30 s, 3 minutes with `ARMORLET_SOAK=1`, which
//! also freezes the server (SIGSTOP) for a minute.
//!
//! Needs root (mounts, containers) and the real kubectl, like every e2e test.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `ARMORLET_SOAK=1`: the long variants.
fn soak() -> bool {
    std::env::var("ARMORLET_SOAK").is_ok_and(|v| v == "1")
}

/// A tmpfs of its own, unmounted (lazily: containers may still hold files) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "mount tmpfs: {out:?}");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A file filling its filesystem; removed on drop (so a failing test frees the disk before
/// the cluster deletes its pods).
struct Filler(PathBuf);

impl Filler {
    /// Writes `dir/filler` until the filesystem refuses more with `ENOSPC`.
    fn fill(dir: &Path) -> Filler {
        let f = Filler(dir.join("filler"));
        f.top_up();
        f
    }

    /// Writes more until `ENOSPC` again (what others freed meanwhile).
    fn top_up(&self) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .unwrap();
        let chunk = vec![0u8; 1 << 20];
        for size in [1 << 20, 4096, 1] {
            loop {
                match file.write_all(&chunk[..size]) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filling {}: {e}", self.0.display()),
                }
            }
        }
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One container as the OCI runtime and its directory show it.
#[derive(Debug, Clone)]
struct Ctr {
    pod: String,
    id: String,
    running: bool,
    pid: Option<u64>,
}

/// The containers of node directory `node_dir` (`D/nodes/<node>`), from their spec files
/// and crun's state.
fn containers(node_dir: &Path) -> Vec<Ctr> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(node_dir.join("containers")) else {
        return out;
    };
    for d in dirs.flatten() {
        let Ok(spec) = std::fs::read(d.path().join("spec.json")) else {
            continue;
        };
        let spec: Value = serde_json::from_slice(&spec).unwrap();
        let id = spec["id"].as_str().unwrap().to_owned();
        let state = Command::new("crun")
            .arg("--root")
            .arg(node_dir.join("runtime"))
            .args(["state", &id])
            .output()
            .unwrap();
        let state: Value = serde_json::from_slice(&state.stdout).unwrap_or(Value::Null);
        out.push(Ctr {
            pod: spec["labels"]["io.kubernetes.pod.name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            id,
            running: state["status"] == "running",
            pid: state["pid"].as_u64().filter(|p| *p > 0),
        });
    }
    out
}

/// The running containers of pod `pod`.
fn running(node_dir: &Path, pod: &str) -> Vec<Ctr> {
    containers(node_dir)
        .into_iter()
        .filter(|c| c.pod == pod && c.running)
        .collect()
}

/// `crun://<id>` of a pod's first container, without the prefix.
fn container_id(pod: &Value) -> String {
    pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("crun://")
        .to_owned()
}

fn busybox_pod(name: &str, policy: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sh\", \"-c\", {script:?}]\n"
    )
}

/// The data of ConfigMap `name` as this test writes it (`size` bytes, derived from the name).
fn cm_data(name: &str, size: usize) -> String {
    name.chars().cycle().take(size).collect()
}

fn cm_yaml(name: &str, size: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: {}\n",
        cm_data(name, size)
    )
}

/// `kubectl create -f` of `yaml` (a file in the cluster's directory).
fn create(c: &Cluster, name: &str, yaml: &str) -> std::process::Output {
    let path = c.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    c.kubectl(&["create", "-f", path.to_str().unwrap()])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The bytes of the files under `root` that hold credentials, by relative path.
fn credential_files(root: &Path, node: &str) -> Vec<(String, Vec<u8>)> {
    [
        "admin-token".to_owned(),
        "kubeconfig".to_owned(),
        "pki/ca.crt".to_owned(),
        "pki/ca.key".to_owned(),
        "pki/apiserver.crt".to_owned(),
        "pki/apiserver.key".to_owned(),
        format!("pki/node-tokens/{node}"),
        format!("nodes/{node}/kubeconfig"),
    ]
    .into_iter()
    .map(|f| {
        let bytes = std::fs::read(root.join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!bytes.is_empty(), "{f} is empty");
        (f, bytes)
    })
    .collect()
}

/// The names of the files whose bytes differ between two [`credential_files`] readings.
fn changed(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)]) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.clone())
        .collect()
}

/// Temporary files (`*.tmp*`, `.<name>.<random>`) anywhere under `dir`, except in the
/// directories the runtime and images own.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                if !matches!(
                    name.as_str(),
                    "containers" | "runtime" | "sandboxes" | "images"
                ) {
                    stack.push(p);
                }
            } else if name.contains(".tmp") || (name.starts_with('.') && name.len() > 20) {
                out.push(p);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// 1. The data directory's disk is full.

/// The data directory (store, certificates, tokens, images, the node's state) on a 64 MiB
/// tmpfs, filled while objects exist. Writes fail with a `Status` (500 InternalError naming
/// the store's error, as kube-apiserver answers with etcd's own error when its database is
/// out of space: "etcdserver: mvcc: database space exceeded"); reads, lists and watches keep
/// working; the server does not crash; a container that exits meanwhile keeps its exit code
/// (its monitor retries the record); credential files are never left truncated; once the
/// filler is removed writes work again without a restart, the node's status writes catch
/// up, and after a restart the store passes its integrity check with every acknowledged
/// object intact.
#[test]
fn data_dir_full_fails_writes_cleanly_and_loses_nothing() {
    let mut mount = None;
    let mut c = Cluster::with_setup("crun", &[], |dir| {
        let t = Tmpfs::mount("64m");
        std::os::unix::fs::symlink(t.path(), dir.join("data")).unwrap();
        mount = Some(t);
    });
    // A reference: the mount itself (declared before the cluster) is dropped after it, so
    // the cluster deletes its pods while their files are still there.
    let mount = mount.as_ref().unwrap();
    let data = c.data();
    let host = hostname();
    let node_dir = data.join("nodes").join(&host);
    const SIZE: usize = 200 * 1024;

    // Objects before the fault: ConfigMaps, a pod that keeps running, and one whose
    // container exits (code 3) while the disk is full.
    let mut acknowledged: Vec<String> = Vec::new();
    for i in 0..3 {
        let name = format!("before-{i}");
        let out = create(&c, &name, &cm_yaml(&name, SIZE));
        assert!(out.status.success(), "{}", stderr(&out));
        acknowledged.push(name);
    }
    c.apply(&busybox_pod("steady", "Always", "sleep 3600"));
    c.apply(&busybox_pod("exits-later", "Never", "sleep 15; exit 3"));
    let steady = c.wait_running("steady");
    let steady_id = container_id(&steady);
    let exits = c.wait_running("exits-later");
    let exits_id = container_id(&exits);
    let exits_pid = containers(&node_dir)
        .into_iter()
        .find(|x| x.id == exits_id)
        .and_then(|x| x.pid)
        .expect("the pid of exits-later's container");
    let watch_out = c.dir.path().join("watch.out");
    let mut watch = Command::new(KUBECTL)
        .args([
            "get",
            "configmaps",
            "--watch",
            "--output-watch-events",
            "-o",
            "name",
        ])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path())
        .stdout(std::fs::File::create(&watch_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    c.wait_for("the watch to list the ConfigMaps", || {
        let w = std::fs::read_to_string(&watch_out).ok()?;
        w.contains("configmap/before-2").then_some(())
    });
    let creds = credential_files(&data, &host);

    // The fault.
    let filler = Filler::fill(mount.path());
    let mut failed = None;
    let mut written_while_full = 0;
    for i in 0..80 {
        let name = format!("full-{i}");
        let out = create(&c, &name, &cm_yaml(&name, SIZE));
        if out.status.success() {
            // The store's WAL had room left: acknowledged, so it must survive too.
            acknowledged.push(name);
            written_while_full += 1;
        } else {
            failed = Some((name, stderr(&out)));
            break;
        }
    }
    let (failed_name, message) = failed.expect("a write fails once the disk is full");
    assert!(
        message.starts_with("Error from server (InternalError): error when creating")
            && message.contains("Internal error occurred: storage error: database or disk is full"),
        "{message}"
    );
    // The refused object does not exist, half-written or otherwise.
    let out = c.kubectl(&["get", "configmap", &failed_name]);
    assert!(
        stderr(&out).contains(&format!("configmaps \"{failed_name}\" not found")),
        "{}",
        stderr(&out)
    );
    // Reads and lists keep working, and the server is alive.
    let names = c.kubectl_ok(&["get", "configmaps", "-o", "name"]);
    for n in &acknowledged {
        assert!(names.contains(&format!("configmap/{n}\n")), "{n}: {names}");
    }
    c.kubectl_ok(&["get", "pods", "steady", "exits-later"]);
    let pid = c.pid().expect("armorlet up runs");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "armorlet up died"
    );
    assert!(watch.try_wait().unwrap().is_none(), "the watch ended");

    // Credentials: rewriting a node's kubeconfig or issuing a new token fails, naming the
    // problem, and leaves every file whole and no temporary file behind.
    filler.top_up();
    for node in [host.as_str(), "late-node"] {
        let out = armorlet()
            .args(["node", "credential", node, "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "credential {node} issued on a full disk"
        );
        assert!(
            stderr(&out).contains("No space left on device"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        changed(&creds, &credential_files(&data, &host)),
        Vec::<String>::new()
    );
    assert!(!data.join("pki/node-tokens/late-node").exists());
    assert_eq!(temp_files(&data), Vec::<PathBuf>::new());

    // The container exits while the disk is full; the pod keeps its last state meanwhile.
    c.wait_for("exits-later's process to end", || {
        (!Path::new(&format!("/proc/{exits_pid}")).exists()).then_some(())
    });
    assert!(
        running(&node_dir, "steady")
            .iter()
            .any(|x| x.id == steady_id),
        "steady's container stopped"
    );

    // The fault ends: writes work again at once, without a restart.
    let freed_at = armorlet_store::time::now_unix();
    drop(filler);
    c.wait_for("a write after the disk was freed", || {
        let out = create(&c, "after-free", &cm_yaml("after-free", SIZE));
        out.status.success().then_some(())
    });
    acknowledged.push("after-free".to_owned());
    let out = create(&c, &failed_name, &cm_yaml(&failed_name, SIZE));
    assert!(out.status.success(), "{}", stderr(&out));
    acknowledged.push(failed_name.clone());
    c.wait_for("the watch to see the writes after the fault", || {
        let w = std::fs::read_to_string(&watch_out).ok()?;
        acknowledged
            .iter()
            .all(|n| w.contains(&format!("configmap/{n}\n")))
            .then_some(())
    });
    let _ = watch.kill();
    let _ = watch.wait();
    // The node's writes catch up: the exit recorded during the fault, the lease renewed.
    let exited = c.wait_for("exits-later to be Failed with exit code 3", || {
        let p = c.pod("exits-later");
        (p["status"]["phase"] == "Failed").then_some(p)
    });
    let t = &exited["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 3, "{exited}");
    assert_eq!(t["reason"], "Error", "{exited}");
    c.wait_for("the node lease renewed after the fault", || {
        let l = c.kubectl_json(&["get", "lease", "-n", "kube-node-lease", &host])?;
        let renewed = armorlet_store::time::parse_rfc3339(l["spec"]["renewTime"].as_str()?)?;
        (renewed >= freed_at).then_some(())
    });
    c.wait_for("the audit log to record a write after the fault", || {
        let log = std::fs::read_to_string(data.join("audit/api.log")).ok()?;
        log.contains("\"name\":\"after-free\"").then_some(())
    });
    let node = c.kubectl_json(&["get", "node", &host]).unwrap();
    assert!(
        node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["type"] == "Ready" && x["status"] == "True"),
        "{node}"
    );
    let log = std::fs::read_to_string(c.dir.path().join("up.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");

    // After a restart: the store is intact and holds every acknowledged object, whole.
    c.stop();
    {
        let store = armorlet_store::Store::open(&data).expect("the store opens");
        assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
        let cms = store
            .list(
                &armorlet_store::Gvr::new("", "v1", "configmaps"),
                Some("default"),
                &Default::default(),
            )
            .unwrap();
        for n in &acknowledged {
            let cm = cms
                .items
                .iter()
                .find(|x| x["metadata"]["name"] == n.as_str())
                .unwrap_or_else(|| panic!("{n} lost"));
            assert!(cm["data"]["k"] == cm_data(n, SIZE).as_str(), "{n} changed");
        }
    }
    c.start();
    // The kubeconfigs name the server's new port; the keys and tokens are the same.
    assert_eq!(
        changed(&creds, &credential_files(&data, &host)),
        ["kubeconfig".to_owned(), format!("nodes/{host}/kubeconfig")],
        "credentials changed across the fault and the restart"
    );
    let after = c.wait_running("steady");
    assert_eq!(container_id(&after), steady_id, "steady was restarted");
    let out = create(&c, "after-restart", &cm_yaml("after-restart", 16));
    assert!(out.status.success(), "{}", stderr(&out));
    println!(
        "data dir full: {written_while_full} write(s) of 200 KiB still fit, then \"{}\"",
        message.trim()
    );
}

// ---------------------------------------------------------------------------------------
// 2. The pod log directory's disk is full.

/// Whether `line` is a CRI log record: `<RFC 3339> <stdout|stderr> <F|P> <text>`.
fn is_cri_record(line: &str) -> bool {
    let mut it = line.splitn(4, ' ');
    let ts = it.next().unwrap_or("");
    armorlet_store::time::parse_rfc3339(ts).is_some()
        && matches!(it.next(), Some("stdout" | "stderr"))
        && matches!(it.next(), Some("F" | "P"))
}

/// The `tick N` numbers in a log text.
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| {
            l.rsplit_once("tick ")
                .and_then(|(_, n)| n.trim().parse().ok())
        })
        .collect()
}

/// `--pod-log-dir` on a 16 MiB tmpfs, filled while a container writes 200 KiB/s to
/// stdout. What we decided, as containerd's CRI log writer does (internal/cri/io/logger.go
/// `redirectLogs`: "Continue on write error to drain the container output"): the monitor
/// keeps reading the container's output and drops the records it cannot write, so the
/// container never blocks on a full pipe; records are whole (the log stays parseable); the
/// monitor survives and records the exit code of a container that exits meanwhile;
/// `kubectl logs` (also `--previous`) serves what was written and `kubectl exec` works;
/// logging resumes, with the next record, once there is space. The node keeps no files of
/// its own in the pod log directory.
#[test]
fn log_dir_full_drops_output_but_never_blocks_the_container() {
    let mut mount = None;
    let c = Cluster::with_setup("crun", &[], |dir| {
        let t = Tmpfs::mount("16m");
        std::os::unix::fs::symlink(t.path(), dir.join("pods")).unwrap();
        mount = Some(t);
    });
    // A reference: the mount itself (declared before the cluster) is dropped after it, so
    // the cluster deletes its pods while their files are still there.
    let mount = mount.as_ref().unwrap();
    let node_dir = c.data().join("nodes").join(hostname());
    // 4 KiB of output and a numbered tick every 20 ms; the tick also goes to /tmp/n.
    let script = "x=xxxxxxxx; for k in 1 2 3 4 5 6 7 8 9; do x=$x$x; done; \
                  i=0; while true; do i=$((i+1)); echo \"tick $i\"; echo $i > /tmp/n; \
                  if [ -f /tmp/stop ]; then echo bye; exit 7; fi; \
                  echo \"$x\"; usleep 20000; done";
    c.apply(&busybox_pod("chatty", "OnFailure", script));
    let pod = c.wait_running("chatty");
    let first_id = container_id(&pod);
    let counter = |c: &Cluster| -> Option<u64> {
        let out = c.kubectl(&["exec", "chatty", "--", "cat", "/tmp/n"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    c.wait_for("chatty's ticks in its log", || {
        let out = c.kubectl(&["logs", "chatty", "--tail=20"]);
        (!ticks(&String::from_utf8_lossy(&out.stdout)).is_empty()).then_some(())
    });
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let log0 = mount
        .path()
        .join(format!("default_chatty_{uid}"))
        .join("c/0.log");
    assert!(log0.is_file(), "{}", log0.display());

    // The fault.
    let filler = Filler::fill(mount.path());
    let n1 = c.wait_for("chatty's counter", || counter(&c));
    // The container keeps going (its output is drained), and exec works.
    let n2 = c.wait_for("chatty to keep running with its log full", || {
        counter(&c).filter(|n| *n >= n1 + 200)
    });
    let text = std::fs::read_to_string(&log0).unwrap();
    assert!(text.ends_with('\n'), "the log ends inside a record");
    for l in text.lines() {
        assert!(is_cri_record(l), "not a CRI record: {l:?}");
    }
    let logged_meanwhile = ticks(&text)
        .into_iter()
        .filter(|n| (n1..=n2).contains(n))
        .count() as u64;
    assert!(
        logged_meanwhile * 2 < n2 - n1,
        "{logged_meanwhile} of the {} ticks written while the disk was full are in the log",
        n2 - n1
    );
    let served = c.kubectl_ok(&["logs", "chatty", "--tail=5"]);
    assert!(!served.is_empty());
    let monitors = String::from_utf8_lossy(
        &Command::new("pgrep")
            .args(["-af", "armorlet monitor"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        monitors.contains(&first_id),
        "chatty's monitor died: {monitors}"
    );
    let monitor_log = node_dir
        .join("containers")
        .join(&first_id)
        .join("monitor.log");
    let mlog = std::fs::read_to_string(&monitor_log).unwrap();
    assert!(
        mlog.contains("cannot write the container log: No space left on device"),
        "{mlog}"
    );

    // The container exits (7) with its log still full: the exit code is recorded and the
    // container restarted (OnFailure), its new log created on the full disk.
    c.kubectl_ok(&["exec", "chatty", "--", "touch", "/tmp/stop"]);
    let restarted = c.wait_for("chatty to be restarted after exit 7", || {
        let p = c.pod("chatty");
        let s = &p["status"]["containerStatuses"][0];
        (s["restartCount"] == 1
            && s["lastState"]["terminated"]["exitCode"] == 7
            && s["state"]["running"].is_object())
        .then_some(p)
    });
    assert_ne!(container_id(&restarted), first_id);
    let previous = c.kubectl_ok(&["logs", "chatty", "--previous"]);
    assert!(!ticks(&previous).is_empty(), "{previous}");

    // The fault ends: the new container's records reach its log again.
    let n3 = c.wait_for("chatty's counter after the restart", || counter(&c));
    drop(filler);
    let resumed = c.wait_for("chatty's log to resume", || {
        let out = c.kubectl(&["logs", "chatty", "--tail=50"]);
        ticks(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .find(|n| *n > n3)
    });
    let log1 = log0.with_file_name("1.log");
    let text = std::fs::read_to_string(&log1).unwrap();
    for l in text.lines() {
        assert!(is_cri_record(l), "not a CRI record: {l:?}");
    }
    let mlog = std::fs::read_to_string(
        node_dir
            .join("containers")
            .join(container_id(&restarted))
            .join("monitor.log"),
    )
    .unwrap();
    assert!(
        mlog.contains("the container log is writable again"),
        "{mlog}"
    );
    // Nothing of the node's own lives in the pod log directory.
    let entries: Vec<String> = std::fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, [format!("default_chatty_{uid}")]);
    println!(
        "log dir full: {} ticks while full, {logged_meanwhile} of them logged; logging resumed at tick {resumed}",
        n2 - n1
    );
    c.kubectl_ok(&["delete", "pod", "chatty", "--grace-period=1"]);
}

// ---------------------------------------------------------------------------------------
// 3. Image blobs that do not match their digests.

/// The manifest of an OCI layout directory's first image.
fn oci_manifest(layout: &Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap())
        .unwrap()
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn image_cmd(c: &Cluster, args: &[&str]) -> std::process::Output {
    armorlet()
        .arg("image")
        .args(args)
        .arg("--data-dir")
        .arg(c.data())
        .output()
        .unwrap()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// (a) An archive whose layer bytes do not match the manifest's digest is refused, naming
/// the digest, and the store is unchanged (nothing listed, no blob added). (b) A layer blob
/// corrupted in the store after a good load: the pod using the image never runs the
/// corrupted content. Unpacking verifies the blobs, so the container gets
/// `CreateContainerError` "failed to create container: error unpacking image: digest
/// mismatch for layer sha256:…", as containerd's CRI plugin fails the container create when
/// unpacking a missing snapshot fails (internal/cri/opts/container.go `WithNewSnapshot`,
/// "error unpacking image: ..."; its unpacker checks diff ids, "wrong diff id calculated on
/// extraction"), and loading the good archive again repairs the blob: the pod then runs.
/// Layers with `..` paths, absolute symlinks and device nodes are covered by
/// crates/images/tests/fuzz.rs (`hostile_layers_are_refused_or_contained`) on the same
/// unpacking code.
#[test]
fn corrupted_image_layer_is_refused_and_repaired() {
    let c = Cluster::new("crun");
    let images = c.dir.path().join("images-out");
    let store = c.data().join("images");
    let ls_before = image_cmd(&c, &["ls"]).stdout;
    let blobs_before = dir_listing(&store.join("blobs/sha256"));

    // (a) A corrupted archive.
    let layout = c.dir.path().join("bad-layout");
    std::fs::create_dir(&layout).unwrap();
    let out = Command::new("tar")
        .arg("-xf")
        .arg(images.join("busybox.tar"))
        .arg("-C")
        .arg(&layout)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let manifest = oci_manifest(&layout);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let blob = layout.join("blobs/sha256").join(&layer[7..]);
    let len = std::fs::metadata(&blob).unwrap().len() as usize;
    flip_byte(&blob, len / 2);
    let bad = c.dir.path().join("bad.tar");
    let out = Command::new("tar")
        .arg("-cf")
        .arg(&bad)
        .arg("-C")
        .arg(&layout)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = image_cmd(&c, &["load", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "digest mismatch for blobs/sha256/{}: expected {layer}, got sha256:",
            &layer[7..]
        )),
        "{err}"
    );
    assert_eq!(
        image_cmd(&c, &["ls"]).stdout,
        ls_before,
        "image list changed"
    );
    assert_eq!(dir_listing(&store.join("blobs/sha256")), blobs_before);

    // (b) The stored layer blob corrupted before any pod unpacked the image.
    let index: Value =
        serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    let entry = index["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["record"]["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "docker.io/library/busybox:1.28")
        })
        .unwrap()
        .clone();
    let image_id = entry["record"]["id"].as_str().unwrap().to_owned();
    let stored_layer = entry["layers"][0].as_str().unwrap().to_owned();
    assert_eq!(stored_layer, layer);
    assert!(
        !store.join("roots").join(&image_id[7..]).exists(),
        "busybox is unpacked already"
    );
    let stored = store.join("blobs/sha256").join(&layer[7..]);
    let len = std::fs::metadata(&stored).unwrap().len() as usize;
    flip_byte(&stored, len / 2);
    c.apply(&busybox_pod("victim", "Always", "echo ran; sleep 3600"));
    let why = c.wait_for("victim to fail with CreateContainerError", || {
        let p = c.pod("victim");
        let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        (w["reason"] == "CreateContainerError").then(|| w["message"].as_str().unwrap().to_owned())
    });
    assert!(
        why.starts_with(&format!(
            "failed to create container: error unpacking image: digest mismatch for layer {layer} in the image store: expected {layer}, got sha256:"
        )),
        "{why}"
    );
    let node_dir = c.data().join("nodes").join(hostname());
    assert!(
        containers(&node_dir).iter().all(|x| x.pod != "victim"),
        "a container was created from the corrupted image"
    );
    assert!(
        !store.join("roots").join(&image_id[7..]).exists(),
        "a root was unpacked from the corrupted blob"
    );
    assert!(
        dir_listing(&store.join("roots")).is_empty(),
        "unpacking left {:?}",
        dir_listing(&store.join("roots"))
    );
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=victim,reason=Failed",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains(
            "Error: failed to create container: error unpacking image: digest mismatch for layer"
        ),
        "{events}"
    );

    // Loading the good archive again repairs the blob; the pod starts on its next try.
    let out = image_cmd(&c, &["load", images.join("busybox.tar").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    c.wait_running("victim");
    let out = c.kubectl_ok(&["exec", "victim", "--", "busybox", "echo", "intact"]);
    assert_eq!(out, "intact\n");
    c.wait_for("victim's log", || {
        (c.kubectl_ok(&["logs", "victim"]) == "ran\n").then_some(())
    });
    c.kubectl_ok(&["delete", "pod", "victim", "--grace-period=1"]);
}

// ---------------------------------------------------------------------------------------
// 4. The node loses its API server.

/// An API server (`armorlet up --nodes 0`) and a node agent (`armorlet node`) as separate
/// processes, sharing one data directory; the server listens on a fixed port so that it can
/// be stopped and started again while the node runs.
struct Split {
    dir: tempfile::TempDir,
    port: u16,
    node: String,
    node_index: u8,
    server: Option<Child>,
    agent: Option<Child>,
}

impl Split {
    fn new() -> Split {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images-out");
        let out = Command::new(repo().join("images/build"))
            .arg(&images)
            .output()
            .unwrap();
        assert!(out.status.success(), "images/build: {out:?}");
        let out = armorlet()
            .args(["image", "load", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg(images.join("busybox.tar"))
            .output()
            .unwrap();
        assert!(out.status.success(), "image load: {out:?}");
        std::fs::create_dir_all(dir.path().join("counter")).unwrap();
        let port = free_port();
        let node_index = next_node_index(1);
        let mut s = Split {
            dir,
            port,
            node: format!("outage-{node_index}"),
            node_index,
            server: None,
            agent: None,
        };
        s.start_server();
        let out = armorlet()
            .args(["node", "credential", &s.node, "--data-dir"])
            .arg(s.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let kubeconfig = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let api_port = free_port();
        let log = std::fs::File::create(s.node_log()).unwrap();
        s.agent = Some(
            armorlet()
                .args(["node", "--runtime", "crun", "--kubeconfig"])
                .arg(&kubeconfig)
                .args(["--name", &s.node, "--data-dir"])
                .arg(s.data())
                .arg("--kubelet-root-dir")
                .arg(s.dir.path().join("kroot"))
                .arg("--pod-log-dir")
                .arg(s.dir.path().join("pods"))
                .args(["--node-api-listen", &format!("0.0.0.0:{api_port}")])
                .args(["--node-index", &node_index.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let node = s.node.clone();
        s.wait_for("the node to be Ready", || s.node_ready(&node).then_some(()));
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn node_dir(&self) -> PathBuf {
        self.data().join("nodes").join(&self.node)
    }

    fn node_log(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    fn start_server(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let i = self.node_index;
        let mut child = armorlet()
            .args(["up", "--nodes", "0", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data())
            .args([
                "--service-cluster-ip-range",
                &format!("10.96.{i}.0/24"),
                "--service-node-port-range",
                &format!(
                    "{}-{}",
                    30000 + 100 * u32::from(i),
                    30099 + 100 * u32::from(i)
                ),
            ])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("export KUBECONFIG="),
            "armorlet up: {first:?}\n{}",
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
        self.server = Some(child);
    }

    /// SIGKILL: the server is gone at once, connections and all.
    fn kill_server(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(KUBECTL)
            .args(args)
            .env("KUBECONFIG", self.data().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    fn pod(&self, name: &str) -> Value {
        self.json(&["get", "pod", name]).unwrap_or(Value::Null)
    }

    fn apply(&self, yaml: &str) {
        let path = self.dir.path().join("manifest.yaml");
        std::fs::write(&path, yaml).unwrap();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    }

    fn node_ready(&self, name: &str) -> bool {
        self.json(&["get", "node", name]).is_some_and(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    }

    fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if start.elapsed() > PATIENCE {
                panic!(
                    "timed out waiting for {what}; node log:\n{}\nserver log:\n{}",
                    std::fs::read_to_string(self.node_log()).unwrap_or_default(),
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn wait_running(&self, name: &str) -> Value {
        self.wait_for(&format!("{name} Running"), || {
            let p = self.pod(name);
            p["status"]["containerStatuses"][0]["state"]["running"]
                .is_object()
                .then_some(p)
        })
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        if self.server.is_none() {
            self.start_server();
        }
        let _ = self.kubectl(&[
            "delete",
            "pods",
            "--all",
            "--grace-period=1",
            "--timeout=60s",
        ]);
        for child in [self.agent.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            terminate(child);
        }
        // Whatever a failed test left running.
        for x in containers(&self.node_dir()) {
            let _ = Command::new("crun")
                .arg("--root")
                .arg(self.node_dir().join("runtime"))
                .args(["delete", "--force", &x.id])
                .status();
        }
    }
}

/// The node loses its API server (SIGKILL) for 30 s (3 minutes with `ARMORLET_SOAK=1`)
/// while it runs a long-lived pod whose workload counts into a hostPath file, a pod whose
/// container exits (`sleep 10; exit 1`, restartPolicy Always) and a pod deleted after the
/// return. During the outage the pods keep running (same container and PID, the counter
/// grows), the exiting container is restarted by the node on its own, and the agent waits
/// with back-off (its log stays a few lines long). After the server returns (same data
/// directory and port) the node is Ready with a renewed lease, the pod statuses show what
/// happened (restart count, last state), no container runs twice, the pod watch resumes (a
/// pod created now starts), a deletion is carried out, and the events of the outage arrive.
#[test]
fn node_keeps_its_pods_while_the_api_server_is_gone() {
    let outage = Duration::from_secs(if soak() { 180 } else { 30 });
    let mut s = Split::new();
    let node = s.node.clone();
    let counter_dir = s.dir.path().join("counter");
    s.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: steady\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  volumes:\n  - name: data\n    hostPath:\n      path: {}\n      type: Directory\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sh\", \"-c\", \"i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 1; done\"]\n    volumeMounts:\n    - name: data\n      mountPath: /data\n",
        counter_dir.display()
    ));
    for (name, script) in [("doomed", "sleep 3600"), ("flaky", "sleep 10; exit 1")] {
        s.apply(
            &busybox_pod(name, "Always", script)
                .replace("spec:\n", &format!("spec:\n  nodeName: {node}\n")),
        );
    }
    let steady = s.wait_running("steady");
    s.wait_running("doomed");
    let flaky = s.wait_running("flaky");
    let steady_id = container_id(&steady);
    let flaky_id = container_id(&flaky);
    let node_dir = s.node_dir();
    let steady_pid = running(&node_dir, "steady")
        .first()
        .and_then(|x| x.pid)
        .expect("steady's pid");
    let count = || -> u64 {
        std::fs::read_to_string(counter_dir.join("count"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };

    // The outage.
    let log_lines_before = std::fs::read_to_string(s.node_log())
        .unwrap_or_default()
        .lines()
        .count();
    s.kill_server();
    let down_at = Instant::now();
    let count_at_start = count();
    // Lasts `outage`, and at least until the node restarted flaky's container on its own.
    let mut restarted = None;
    while restarted.is_none() || down_at.elapsed() < outage {
        if restarted.is_none() {
            restarted = running(&node_dir, "flaky")
                .into_iter()
                .find(|x| x.id != flaky_id);
            assert!(
                down_at.elapsed() < outage + PATIENCE,
                "flaky was not restarted during the outage: {:?}",
                containers(&node_dir)
            );
        }
        assert!(
            Path::new(&format!("/proc/{steady_pid}")).exists(),
            "steady's process died during the outage"
        );
        assert!(
            s.agent.as_mut().unwrap().try_wait().unwrap().is_none(),
            "the node agent exited"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let outage_secs = down_at.elapsed().as_secs();
    let restarted = restarted.unwrap();
    assert!(
        count() > count_at_start,
        "steady's counter stopped during the outage"
    );
    let running_steady = running(&node_dir, "steady");
    assert_eq!(running_steady.len(), 1, "{running_steady:?}");
    assert_eq!(running_steady[0].id, steady_id);
    let node_log = std::fs::read_to_string(s.node_log()).unwrap();
    let outage_lines: Vec<&str> = node_log.lines().skip(log_lines_before).collect();
    // A hot loop would log every attempt; the agent logs the outage once (and an event
    // given up after client-go's 12 tries, in the long variant).
    assert!(
        outage_lines.len() as u64 <= 10 + outage_secs / 20,
        "{} log lines in {outage_secs}s of outage:\n{}",
        outage_lines.len(),
        outage_lines.join("\n")
    );
    assert!(
        outage_lines
            .iter()
            .any(|l| l.contains("the API server is unavailable")),
        "{}",
        outage_lines.join("\n")
    );

    // The server returns.
    let back_at = armorlet_store::time::now_unix();
    s.start_server();
    s.wait_for("the node Ready with its lease renewed", || {
        let lease = s.json(&["get", "lease", "-n", "kube-node-lease", &node])?;
        let renewed = armorlet_store::time::parse_rfc3339(lease["spec"]["renewTime"].as_str()?)?;
        (renewed >= back_at && s.node_ready(&node)).then_some(())
    });
    let flaky_after = s.wait_for("flaky's status to show the restart", || {
        let p = s.pod("flaky");
        let st = &p["status"]["containerStatuses"][0];
        (st["restartCount"].as_u64() >= Some(1)
            && st["lastState"]["terminated"]["exitCode"] == 1
            && st["lastState"]["terminated"]["reason"] == "Error")
            .then_some(p)
    });
    let steady_after = s.pod("steady");
    let st = &steady_after["status"]["containerStatuses"][0];
    assert_eq!(st["restartCount"], 0, "{steady_after}");
    assert!(st["state"]["running"].is_object(), "{steady_after}");
    assert_eq!(container_id(&steady_after), steady_id);
    let running_steady = running(&node_dir, "steady");
    assert_eq!(running_steady.len(), 1, "{running_steady:?}");
    assert_eq!(running_steady[0].pid, Some(steady_pid));
    assert!(
        running(&node_dir, "flaky").len() <= 1,
        "{:?}",
        containers(&node_dir)
    );
    // The watch resumed: a new pod starts; a deletion is carried out.
    s.apply(&busybox_pod("late", "Always", "sleep 3600"));
    s.wait_running("late");
    s.kubectl_ok(&["delete", "pod", "doomed", "--timeout=90s"]);
    assert!(running(&node_dir, "doomed").is_empty(), "doomed still runs");
    // The events recorded during the outage arrive once the server is back: every start of
    // flaky's container, those of the outage included, is counted in its Started event.
    s.wait_for("flaky's Started events to count every start", || {
        let p = s.pod("flaky");
        let restarts = p["status"]["containerStatuses"][0]["restartCount"].as_u64()?;
        let events = s.json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=flaky,reason=Started",
        ])?;
        let started: u64 = events["items"]
            .as_array()?
            .iter()
            .filter_map(|e| e["count"].as_u64())
            .sum();
        (started == restarts + 1).then_some(())
    });
    s.wait_for("the node to log the return", || {
        std::fs::read_to_string(s.node_log())
            .ok()?
            .contains("the API server is available again")
            .then_some(())
    });
    println!(
        "API outage of {outage_secs}s: {} node log lines, flaky restarted by the node ({} -> {}), restartCount {} after the return",
        outage_lines.len(),
        &flaky_id[..12],
        &restarted.id[..12],
        flaky_after["status"]["containerStatuses"][0]["restartCount"]
    );
    if soak() {
        frozen_server(&s, Duration::from_secs(60));
    }
}

/// The long variant's second outage: the server frozen (SIGSTOP) rather than gone, so the
/// node's connections hang instead of failing. The agent's calls are bounded: a pod whose
/// container exits is still restarted by the node meanwhile, and its status catches up
/// after SIGCONT.
fn frozen_server(s: &Split, freeze: Duration) {
    let node = s.node.clone();
    let node_dir = s.node_dir();
    s.apply(
        &busybox_pod("flaky2", "Always", "sleep 5; exit 1")
            .replace("spec:\n", &format!("spec:\n  nodeName: {node}\n")),
    );
    let first = container_id(&s.wait_running("flaky2"));
    let pid = s.server.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let frozen_at = Instant::now();
    let mut ids = std::collections::BTreeSet::from([first.clone()]);
    while frozen_at.elapsed() < freeze {
        ids.extend(running(&node_dir, "flaky2").into_iter().map(|x| x.id));
        std::thread::sleep(Duration::from_millis(500));
    }
    signal("-CONT");
    assert!(
        ids.len() >= 3,
        "flaky2 ran {} container(s) while the server was frozen for {}s",
        ids.len(),
        freeze.as_secs()
    );
    s.wait_for("flaky2's status to catch up", || {
        let p = s.pod("flaky2");
        (p["status"]["containerStatuses"][0]["restartCount"].as_u64()? >= 2).then_some(())
    });
    println!(
        "API server frozen for {}s: flaky2 ran {} containers meanwhile",
        freeze.as_secs(),
        ids.len()
    );
}
