//! The API server's scheduler with the real kubectl: pods are bound to a Ready node, the
//! `Scheduled` event appears, and a pod no node fits gets the upstream `FailedScheduling` text
//! until a node changes so that it fits. The control plane runs alone (`--nodes 0`); the Node
//! object is created by the test, as a node agent would.

mod common;

use common::UpProcess;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KUBECTL: &str = "/usr/bin/kubectl";
/// Guard against hanging forever; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(60);

struct Cluster {
    kubeconfig: PathBuf,
    /// `None` when the test runs the server in-process. Dropped before `dir`: the server stops
    /// before its data directory goes.
    _server: Option<UpProcess>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        assert!(Path::new(KUBECTL).exists(), "{KUBECTL} is required");
        let dir = tempfile::tempdir().unwrap();
        let server = UpProcess::control_plane(&dir.path().join("data"));
        Cluster {
            kubeconfig: server.kubeconfig.clone(),
            _server: Some(server),
            dir,
        }
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(KUBECTL)
            .args(args)
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run kubectl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "kubectl {args:?} failed: {err}");
        out
    }

    fn apply(&self, name: &str, manifest: &str) {
        let p = self.dir.path().join(name);
        std::fs::write(&p, manifest).unwrap();
        self.ok(&["create", "-f", &p.display().to_string()]);
    }

    /// Polls `kubectl args` until `done(output)`; panics after PATIENCE with the last output.
    fn wait_for(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = self.ok(args);
            if done(&out) {
                return out;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "kubectl {args:?} never satisfied the condition; last: {out}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn ready_node(&self, name: &str) {
        self.apply(
            &format!("{name}.yaml"),
            &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n"),
        );
        let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}],"allocatable":{"pods":"110"},"capacity":{"pods":"110"}}}"#;
        self.ok(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ]);
    }
}

fn pod(name: &str, extra: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{extra}  containers:\n  - name: c\n    image: busybox\n")
}

#[test]
fn pods_are_bound_to_a_ready_node_with_a_scheduled_event() {
    let c = Cluster::start();
    c.ready_node("vm");
    c.apply("web.yaml", &pod("web", ""));
    c.wait_for(
        &["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"],
        |o| o == "vm",
    );
    let cond = c.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}",
    ]);
    assert_eq!(cond, "True");
    let events = c.wait_for(
        &[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.reason}|{.source.component}|{.message}{\"\\n\"}{end}",
        ],
        |o| o.contains("Scheduled"),
    );
    assert!(
        events.contains("Scheduled|default-scheduler|Successfully assigned default/web to vm\n"),
        "{events}"
    );
    let describe = c.ok(&["describe", "pod", "web"]);
    assert!(
        describe.contains("default-scheduler  Successfully assigned default/web to vm"),
        "{describe}"
    );
    // ServiceAccount and DefaultTolerationSeconds admission.
    assert!(
        describe.contains("Service Account:  default\n"),
        "{describe}"
    );
    assert!(
        describe.contains("/var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-"),
        "{describe}"
    );
    assert!(
        describe.contains("node.kubernetes.io/unreachable:NoExecute op=Exists for 300s"),
        "{describe}"
    );
}

#[test]
fn node_selector_mismatch_is_failed_scheduling_until_the_node_matches() {
    let c = Cluster::start();
    c.ready_node("vm");
    c.apply(
        "picky.yaml",
        &pod("picky", "  nodeSelector:\n    disk: ssd\n"),
    );
    let want = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    let events = c.wait_for(
        &[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.type}|{.reason}|{.message}{\"\\n\"}{end}",
        ],
        |o| o.contains("FailedScheduling"),
    );
    assert!(
        events.contains(&format!("Warning|FailedScheduling|{want}\n")),
        "{events}"
    );
    let reason = c.ok(&[
        "get",
        "pod",
        "picky",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}",
    ]);
    assert_eq!(reason, "Unschedulable");
    assert_eq!(
        c.ok(&["get", "pod", "picky", "-o", "jsonpath={.spec.nodeName}"]),
        ""
    );

    c.ok(&["label", "node", "vm", "disk=ssd"]);
    c.wait_for(
        &["get", "pod", "picky", "-o", "jsonpath={.spec.nodeName}"],
        |o| o == "vm",
    );
}

#[test]
fn binding_subresource_is_served_and_refuses_rebinding() {
    let c = Cluster::start();
    // No Ready node: the scheduler leaves the pod alone, a client binds it.
    c.apply("manual.yaml", &pod("manual", ""));
    let body = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"manual"},"target":{"apiVersion":"v1","kind":"Node","name":"elsewhere"}}"#;
    let p = c.dir.path().join("binding.json");
    std::fs::write(&p, body).unwrap();
    c.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/manual/binding",
        "-f",
        &p.display().to_string(),
    ]);
    assert_eq!(
        c.ok(&["get", "pod", "manual", "-o", "jsonpath={.spec.nodeName}"]),
        "elsewhere"
    );
    let (code, _, err) = c.run(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/manual/binding",
        "-f",
        &p.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("pod manual is already assigned to node \"elsewhere\""),
        "{err}"
    );
}

/// The node lifecycle controller, with a 3 s grace period: the server runs in-process so the
/// test can set `Config::node_monitor_grace_period`.
#[test]
fn silent_node_becomes_unknown_and_unreachable_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cfg =
        armorlet_apiserver::Config::new(dir.path().join("data"), ([127, 0, 0, 1], 0).into());
    cfg.node_monitor_grace_period = Duration::from_secs(3);
    cfg.publish_namespace_defaults = true;
    let server = rt
        .block_on(armorlet_apiserver::Server::bind(cfg))
        .expect("bind");
    let kubeconfig = server.kubeconfig_path().to_owned();
    rt.spawn(server.serve(std::future::pending()));
    let c = Cluster {
        kubeconfig,
        _server: None,
        dir,
    };
    // The controller-manager objects every namespace gets.
    c.wait_for(&["get", "serviceaccount,configmap", "-o", "name"], |o| {
        o.contains("serviceaccount/default\n") && o.contains("configmap/kube-root-ca.crt\n")
    });
    c.ready_node("vm");
    let posted = format!(
        r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":"{}"}}]}}}}"#,
        armorlet_store_time()
    );
    c.ok(&[
        "patch",
        "node",
        "vm",
        "--subresource=status",
        "--type=merge",
        "-p",
        &posted,
    ]);
    let jp = "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}|{.status.conditions[?(@.type==\"Ready\")].reason}|{.status.conditions[?(@.type==\"Ready\")].message}|{.spec.taints[*].key}";
    let out = c.wait_for(&["get", "node", "vm", "-o", jp], |o| {
        o.starts_with("Unknown|")
    });
    assert_eq!(
        out,
        "Unknown|NodeStatusUnknown|Kubelet stopped posting node status.|node.kubernetes.io/unreachable node.kubernetes.io/unreachable"
    );
    // The node comes back: it renews its Lease and posts Ready.
    let lease = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: vm\n  namespace: kube-node-lease\nspec:\n  holderIdentity: vm\n  leaseDurationSeconds: 40\n  renewTime: \"{}\"\n",
        armorlet_store_time()
    );
    c.apply("lease.yaml", &lease);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (kc, home, stop2) = (c.kubeconfig.clone(), c.dir.path().to_owned(), stop.clone());
    let renewer = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            let patch = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, armorlet_store_time());
            let _ = Command::new(KUBECTL)
                .args([
                    "patch",
                    "lease",
                    "vm",
                    "-n",
                    "kube-node-lease",
                    "--type=merge",
                    "-p",
                    &patch,
                ])
                .env("HOME", &home)
                .env("KUBECONFIG", &kc)
                .output();
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let ready = format!(
        r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":"{}"}}]}}}}"#,
        armorlet_store_time()
    );
    c.ok(&[
        "patch",
        "node",
        "vm",
        "--subresource=status",
        "--type=merge",
        "-p",
        &ready,
    ]);
    let out = c.wait_for(&["get", "node", "vm", "-o", jp], |o| o.ends_with('|'));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    renewer.join().unwrap();
    assert_eq!(out, "True|KubeletReady|kubelet is posting ready status|");
}

/// Now in RFC 3339 (UTC, seconds), via `date` to keep the test free of a time crate.
fn armorlet_store_time() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.000000Z"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
