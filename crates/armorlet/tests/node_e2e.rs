//! The node agent end to end: the real kubectl against `armorlet up` (API server + one node
//! agent in one process), real crun/runc, the real kernel's seccomp. The seccomp tutorial's pods
//! (testdata/tutorial/profiles) with busybox `sleep 3600`, from an image built offline by
//! `images/build`.
//!
//! Needs root, crun and runc, the hugetlb v1 hierarchy for crun on hybrid cgroups (the runtime
//! mounts it), and kubectl: every missing piece fails the test loudly.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KUBECTL: &str = "/usr/bin/kubectl";
/// Guard against hanging forever; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn require_root() {
    assert!(
        rustix_is_root(),
        "these tests need root (containers, mounts, cgroups)"
    );
    assert!(
        Path::new(KUBECTL).exists(),
        "kubectl is missing at {KUBECTL}"
    );
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

fn armorlet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_armorlet"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_lowercase()
}

/// A test cluster: data dir, kubelet root with the tutorial profiles, the busybox image.
struct Cluster {
    dir: tempfile::TempDir,
    runtime: &'static str,
    api_port: u16,
    up: Option<Child>,
}

impl Cluster {
    fn new(runtime: &'static str) -> Cluster {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("kroot/seccomp/profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        for p in ["audit", "violation", "fine-grained"] {
            let src = repo().join(format!("testdata/tutorial/profiles/{p}.json"));
            std::fs::copy(&src, profiles.join(format!("{p}.json")))
                .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
        let images = dir.path().join("images-out");
        let out = Command::new(repo().join("images/build"))
            .arg(&images)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "images/build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = armorlet()
            .args(["image", "load", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg(images.join("busybox.tar"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "image load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = Cluster {
            dir,
            runtime,
            api_port,
            up: None,
        };
        c.start();
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data().join("kubeconfig")
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("up.log")).unwrap();
        let mut child = armorlet()
            .args(["up", "--listen", "127.0.0.1:0", "--runtime", self.runtime])
            .arg("--data-dir")
            .arg(self.data())
            .arg("--kubelet-root-dir")
            .arg(self.dir.path().join("kroot"))
            .arg("--pod-log-dir")
            .arg(self.dir.path().join("pods"))
            .args(["--node-api-port", &self.api_port.to_string()])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut first = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("export KUBECONFIG="),
            "unexpected output {first:?}"
        );
        self.up = Some(child);
        self.wait_for("the node to be Ready", || {
            let node = self.kubectl_json(&["get", "node", &hostname()])?;
            let ready = node["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready.then_some(())
        });
    }

    /// Kills `armorlet up` outright (no clean shutdown), as a crashed kubelet.
    fn kill(&mut self) {
        if let Some(mut c) = self.up.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(KUBECTL)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn kubectl_json(&self, args: &[&str]) -> Option<Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    fn apply(&self, yaml: &str) {
        let path = self.dir.path().join("manifest.yaml");
        std::fs::write(&path, yaml).unwrap();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    }

    fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if start.elapsed() > PATIENCE {
                let log =
                    std::fs::read_to_string(self.dir.path().join("up.log")).unwrap_or_default();
                panic!("timed out waiting for {what}; armorlet up log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn pod(&self, name: &str) -> Value {
        self.kubectl_json(&["get", "pod", name])
            .unwrap_or(Value::Null)
    }

    fn wait_running(&self, name: &str) -> Value {
        self.wait_for(&format!("{name} Running"), || {
            let p = self.pod(name);
            (p["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(p)
        })
    }

    /// The `Seccomp:` mode of the container's init process, read on the host.
    fn seccomp_mode(&self, pod: &Value) -> String {
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap();
        let (rt, id) = id.split_once("://").unwrap();
        assert_eq!(rt, self.runtime);
        let root = self.data().join("nodes").join(hostname()).join("runtime");
        let out = Command::new(self.runtime)
            .arg("--root")
            .arg(root)
            .args(["state", id])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} state: {}",
            self.runtime,
            String::from_utf8_lossy(&out.stderr)
        );
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        let pid = state["pid"].as_u64().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.up.is_some() {
            // Delete what is left so no container outlives the test.
            let _ = self.kubectl(&[
                "delete",
                "pods",
                "--all",
                "--grace-period=1",
                "--timeout=60s",
            ]);
        }
        self.kill();
    }
}

/// A seccomp tutorial pod: pod-level profile, `allowPrivilegeEscalation: false`
/// (or `privileged: true`), busybox `sleep 3600`.
fn tutorial_pod(name: &str, profile: &str, privileged: bool) -> String {
    let profile = match profile {
        "RuntimeDefault" => "type: RuntimeDefault".to_owned(),
        file => format!("type: Localhost\n      localhostProfile: profiles/{file}"),
    };
    let sc = if privileged {
        "privileged: true"
    } else {
        "allowPrivilegeEscalation: false"
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  nodeName: {node}\n  securityContext:\n    seccompProfile:\n      {profile}\n  containers:\n  - name: test-container\n    image: busybox:1.28\n    command: [\"sleep\", \"3600\"]\n    securityContext:\n      {sc}\n",
        node = hostname()
    )
}

fn seccomp_tutorial(runtime: &'static str) {
    let c = Cluster::new(runtime);
    let pods = [
        tutorial_pod("audit-pod", "audit.json", false),
        tutorial_pod("default-pod", "RuntimeDefault", false),
        tutorial_pod("violation-pod", "violation.json", false),
        tutorial_pod("nope-pod", "nope.json", false),
        tutorial_pod("privileged-violation-pod", "violation.json", true),
    ];
    c.apply(&pods.join("---\n"));

    for (name, mode) in [
        ("audit-pod", "2"),
        ("default-pod", "2"),
        ("privileged-violation-pod", "0"),
    ] {
        let pod = c.wait_running(name);
        assert_eq!(c.seccomp_mode(&pod), mode, "{name}");
        assert_eq!(pod["status"]["phase"], "Running", "{name}");
        assert_eq!(
            pod["status"]["containerStatuses"][0]["ready"], true,
            "{name}"
        );
    }

    // kubectl exec runs with the container's seccomp filter (through the node API).
    let status = c.kubectl_ok(&[
        "exec",
        "default-pod",
        "--",
        "grep",
        "Seccomp:",
        "/proc/1/status",
    ]);
    assert_eq!(
        status.split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"]
    );
    let own = c.kubectl_ok(&[
        "exec",
        "default-pod",
        "--",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(
        own.split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"]
    );
    let own = c.kubectl_ok(&[
        "exec",
        "privileged-violation-pod",
        "--",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(
        own.split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "0"]
    );
    let unshare = c.kubectl(&["exec", "default-pod", "--", "unshare", "-U", "true"]);
    assert!(
        !unshare.status.success(),
        "unshare -U succeeded under RuntimeDefault"
    );

    let nope = c.wait_for("nope-pod CreateContainerError", || {
        let p = c.pod("nope-pod");
        (p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            == "CreateContainerError")
            .then_some(p)
    });
    let profile = c.dir.path().join("kroot/seccomp/profiles/nope.json");
    assert_eq!(
        nope["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        format!(
            "failed to create container: cannot load seccomp profile \"{p}\": open {p}: no such file or directory",
            p = profile.display()
        )
    );
    assert_eq!(nope["status"]["phase"], "Pending");

    // The violation pod never stays up: it is restarted with back-off.
    let violation = c.wait_for("violation-pod restarted", || {
        let p = c.pod("violation-pod");
        let cs = &p["status"]["containerStatuses"][0];
        (cs["restartCount"].as_u64() >= Some(1) && cs["state"]["waiting"].is_object()).then_some(p)
    });
    let cs = &violation["status"]["containerStatuses"][0];
    let reason = cs["state"]["waiting"]["reason"].as_str().unwrap();
    assert!(
        ["CrashLoopBackOff", "RunContainerError"].contains(&reason),
        "{reason}"
    );
    assert_ne!(cs["lastState"]["terminated"]["exitCode"], 0);
    assert_eq!(violation["status"]["phase"], "Running");
    // The first restart is immediate; back-off starts with the second.
    let events = c.wait_for("the BackOff event", || {
        let out = c.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=violation-pod",
        ]);
        out.contains("Back-off restarting failed container")
            .then_some(out)
    });
    assert!(
        events.contains("Created container: test-container"),
        "{events}"
    );
    assert!(
        events.contains(
            "Back-off restarting failed container test-container in pod violation-pod_default("
        ),
        "{events}"
    );
    assert!(
        events.contains("Container image \"busybox:1.28\" already present on machine"),
        "{events}"
    );

    // Deletion: containers stopped and removed, the pod object goes away.
    let id = c.pod("audit-pod")["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .to_owned();
    c.kubectl_ok(&[
        "delete",
        "pod",
        "audit-pod",
        "--grace-period=1",
        "--timeout=90s",
    ]);
    assert!(!c.kubectl(&["get", "pod", "audit-pod"]).status.success());
    let dir = c
        .data()
        .join("nodes")
        .join(hostname())
        .join("containers")
        .join(id.split_once("://").unwrap().1);
    assert!(
        !dir.exists(),
        "container directory {} left behind",
        dir.display()
    );
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=audit-pod",
    ]);
    assert!(
        events.contains("Stopping container test-container"),
        "{events}"
    );
}

#[test]
fn seccomp_tutorial_pods_crun() {
    seccomp_tutorial("crun");
}

#[test]
fn seccomp_tutorial_pods_runc() {
    seccomp_tutorial("runc");
}

/// Killing `armorlet up` leaves the containers running; the restarted agent adopts them.
#[test]
fn restart_adopts_running_containers() {
    let mut c = Cluster::new("crun");
    c.apply(&tutorial_pod("default-pod", "RuntimeDefault", false));
    let before = c.wait_running("default-pod");
    c.kill();
    c.start();
    // Give the agent several sync passes, then compare.
    let after = c.wait_for("a status written by the new agent", || {
        let p = c.pod("default-pod");
        let ready = p["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|x| x["type"] == "Ready" && x["status"] == "True");
        ready.then_some(p)
    });
    std::thread::sleep(Duration::from_secs(3));
    let after2 = c.pod("default-pod");
    for p in [&after, &after2] {
        let (b, a) = (
            &before["status"]["containerStatuses"][0],
            &p["status"]["containerStatuses"][0],
        );
        assert_eq!(a["containerID"], b["containerID"], "container was replaced");
        assert_eq!(
            a["restartCount"], b["restartCount"],
            "container was restarted"
        );
        assert_eq!(
            a["state"]["running"]["startedAt"],
            b["state"]["running"]["startedAt"]
        );
    }
    assert_eq!(c.seccomp_mode(&after2), "2");
}

/// Probes (startup exec, readiness httpGet, liveness tcpSocket and a failing liveness exec)
/// and `kubectl logs`.
#[test]
fn probes_and_logs() {
    let c = Cluster::new("crun");
    c.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: probe-pod
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox:1.28
    command: ["sh", "-c", "echo serving on 8080; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    startupProbe:
      exec: {{command: ["true"]}}
      periodSeconds: 1
    readinessProbe:
      httpGet: {{path: /index.html, port: 8080}}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 1
  - name: sick
    image: busybox:1.28
    command: ["sleep", "3600"]
    livenessProbe:
      exec: {{command: ["cat", "/nonexistent"]}}
      periodSeconds: 1
      failureThreshold: 2
"#,
        node = hostname()
    ));
    c.wait_for("web ready", || {
        let p = c.pod("probe-pod");
        (p["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    });
    c.wait_for("sick restarted by its liveness probe", || {
        let p = c.pod("probe-pod");
        (p["status"]["containerStatuses"][1]["restartCount"].as_u64() >= Some(1)).then_some(())
    });
    let p = c.pod("probe-pod");
    assert_eq!(
        p["status"]["containerStatuses"][0]["restartCount"], 0,
        "web must not restart"
    );
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=probe-pod",
    ]);
    assert!(
        events.contains(
            "Liveness probe failed: cat: can't open '/nonexistent': No such file or directory"
        ),
        "{events}"
    );
    assert!(
        events.contains("Container sick failed liveness probe, will be restarted"),
        "{events}"
    );
    let logs = c.kubectl_ok(&["logs", "probe-pod", "-c", "web"]);
    assert_eq!(logs, "serving on 8080\n");
}
