//! The node agent end to end: the real kubectl against `armorlet up` (API server + one node
//! agent in one process), real crun/runc, the real kernel's seccomp. The seccomp tutorial's pods
//! (testdata/tutorial/profiles) with busybox `sleep 3600`, from an image built offline by
//! `images/build`.
//!
//! Needs root, crun and runc, the hugetlb v1 hierarchy for crun on hybrid cgroups (the runtime
//! mounts it), and kubectl: every missing piece fails the test loudly.

mod common;

use common::*;
use std::time::Duration;

/// A seccomp tutorial pod: pod-level profile, `allowPrivilegeEscalation: false`
/// (or `privileged: true`), busybox `sleep 3600` (the audit pod runs the tutorial's
/// http-echo, whose syscalls the test then reads in the audit trail).
fn tutorial_pod(name: &str, profile: &str, privileged: bool) -> String {
    let workload = if name == "audit-pod" {
        "image: hashicorp/http-echo:0.2.3\n    args: [\"-text=just made some syscalls!\"]"
    } else {
        "image: busybox:1.28\n    command: [\"sleep\", \"3600\"]"
    };
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
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  nodeName: {node}\n  securityContext:\n    seccompProfile:\n      {profile}\n  containers:\n  - name: test-container\n    {workload}\n    securityContext:\n      {sc}\n",
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
    // The audit profile logs every syscall. As in the tutorial, a request to http-echo makes
    // it accept the connection (accept4, syscall 288; the tutorial's Go binary also shows
    // getsockname, 51), and the node's audit trail names
    // the syscall and the pod. (The long-lived server process is attributed to its container
    // by its cgroup; see node/src/audit.rs for short-lived processes.)
    let audit_ip = c.pod("audit-pod")["status"]["podIP"]
        .as_str()
        .expect("audit-pod has a pod IP")
        .to_owned();
    let audit = c.wait_for("audit lines of audit-pod", || {
        let _ = http_get(&format!("{audit_ip}:5678"));
        let out = armorlet()
            .args(["audit", "--pod", "audit-pod", "--data-dir"])
            .arg(c.data())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("syscall_name=accept4").then_some(text)
    });
    let line = audit
        .lines()
        .find(|l| l.contains("syscall_name=accept4"))
        .unwrap();
    assert!(
        line.contains("audit: type=1326 audit(")
            && line.contains("comm=\"http-echo\" exe=\"/http-echo\"")
            && line.contains(" syscall=288 ")
            && line.ends_with("pod=default/audit-pod container=test-container"),
        "{line}"
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

    // The image's unpacked root is the running container's lower layer: removing the
    // image's last name is refused; removing one of two names is not.
    let rm = |r: &str| {
        armorlet()
            .args(["image", "rm", r, "--data-dir"])
            .arg(c.data())
            .output()
            .unwrap()
    };
    let out = rm("busybox:latest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = rm("busybox:1.28");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by container") && err.contains("(pod default/default-pod)"),
        "{err}"
    );
}

/// Probes (startup exec, readiness httpGet, liveness tcpSocket and a failing liveness exec)
/// and `kubectl logs`.
#[test]
fn probes_and_logs() {
    let c = Cluster::new("crun");
    // The kubelet lists the node's images in its status (nodestatus/setters.go `Images`):
    // the harness loaded busybox and the http-echo stand-in, the larger first.
    let node = hostname();
    let images = c.kubectl_ok(&[
        "get",
        "node",
        &node,
        "-o=jsonpath={range .status.images[*]}{.names}{\"\\n\"}{end}",
    ]);
    let lines: Vec<&str> = images.lines().collect();
    assert_eq!(lines.len(), 2, "{images}");
    assert!(
        images.contains("\"docker.io/library/busybox:1.28\""),
        "{images}"
    );
    assert!(
        images.contains("\"docker.io/hashicorp/http-echo:0.2.3\""),
        "{images}"
    );
    let sizes = c.kubectl_ok(&[
        "get",
        "node",
        &node,
        "-o=jsonpath={.status.images[*].sizeBytes}",
    ]);
    let sizes: Vec<u64> = sizes
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        sizes.len() == 2 && sizes[0] >= sizes[1] && sizes[1] > 0,
        "{sizes:?}"
    );
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
