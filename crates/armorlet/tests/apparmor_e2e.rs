//! The AppArmor tutorial on the node, end to end, with the Landlock backend (this kernel has
//! no AppArmor LSM): real kubectl against `armorlet up`, real crun, the static confine helper
//! and the kernel's Landlock. At the tutorial's release (1.22, annotations, soft admission)
//! and at 1.32 (fields, CreateContainerError for a missing profile, hard rejection when the
//! node has no AppArmor).

mod common;

use common::*;
use serde_json::Value;

/// The tutorial's deny-write profile, verbatim.
const DENY_WRITE: &str = "#include <tunables/global>

profile k8s-apparmor-example-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>

  file,

  # Deny all file writes.
  deny /** w,
}
";

/// The deny-write profile with its denials audited (AppArmor logs `audit deny`).
const AUDIT_WRITE: &str = "#include <tunables/global>

profile k8s-apparmor-example-audit-write flags=(attach_disconnected) {
  #include <abstractions/base>

  file,

  audit deny /** w,
}
";

/// The tutorial's hello-apparmor pod, verbatim (annotation form).
const HELLO: &str = "apiVersion: v1
kind: Pod
metadata:
  name: hello-apparmor
  annotations:
    # Tell Kubernetes to apply the AppArmor profile \"k8s-apparmor-example-deny-write\".
    # Note that this is ignored if the Kubernetes node is not running version 1.4 or greater.
    container.apparmor.security.beta.kubernetes.io/hello: localhost/k8s-apparmor-example-deny-write
spec:
  containers:
  - name: hello
    image: busybox
    command: [ \"sh\", \"-c\", \"echo 'Hello AppArmor!' && sleep 1h\" ]
";

/// The tutorial's hello-apparmor-2 pod (a profile that is not loaded).
const HELLO_2: &str = "apiVersion: v1
kind: Pod
metadata:
  name: hello-apparmor-2
  annotations:
    container.apparmor.security.beta.kubernetes.io/hello: localhost/k8s-apparmor-example-allow-write
spec:
  containers:
  - name: hello
    image: busybox
    command: [ \"sh\", \"-c\", \"echo 'Hello AppArmor!' && sleep 1h\" ]
";

/// A pod using the container-level `appArmorProfile` field (1.30+).
fn field_pod(name: &str, profile: &str, privileged: bool) -> String {
    let profile = match profile {
        "RuntimeDefault" => "type: RuntimeDefault".to_owned(),
        p => format!("type: Localhost\n        localhostProfile: {p}"),
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: hello\n    image: busybox\n    command: [\"sh\", \"-c\", \"echo 'Hello AppArmor!' && sleep 1h\"]\n    securityContext:\n      privileged: {privileged}\n      appArmorProfile:\n        {profile}\n"
    )
}

fn landlock_cluster(version: &str) -> Cluster {
    Cluster::landlock(&["--emulated-version", version])
}

/// `armorlet apparmor load --approximate` of the tutorial's profile into the node.
fn load_deny_write(c: &Cluster) {
    load(c, "deny-write", DENY_WRITE);
}

/// `armorlet apparmor load --approximate` of a profile text into the node.
fn load(c: &Cluster, name: &str, text: &str) {
    let file = c.dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let out = armorlet()
        .args(["apparmor", "load", "--approximate", "--data-dir"])
        .arg(c.data())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apparmor load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl exec POD -- ARGS`: (exit code, stdout, stderr).
fn exec(c: &Cluster, pod: &str, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["exec", pod, "--"];
    a.extend(args);
    let out = c.kubectl(&a);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn events_of(c: &Cluster, name: &str) -> Vec<Value> {
    let selector = format!("involvedObject.name={name}");
    c.kubectl_json(&["get", "events", "--field-selector", &selector])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

/// The `describe` lines of a pod blocked on a missing profile, as the tutorial shows them.
fn assert_blocked_describe(c: &Cluster, pod: &str, profile: &str) {
    let message = format!("Cannot enforce AppArmor: profile \"{profile}\" is not loaded");
    let describe = c.wait_for(&format!("{pod} blocked"), || {
        let d = c.kubectl_ok(&["describe", "pod", pod]);
        (d.contains("Reason:       Blocked") && d.contains("Warning  AppArmor")).then_some(d)
    });
    let field = |name: &str| -> String {
        describe
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name}: line in\n{describe}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Status"), "Pending", "{describe}");
    assert_eq!(field("Reason"), "AppArmor", "{describe}");
    assert_eq!(field("Message"), format!("Pod {message}"), "{describe}");
    assert!(
        describe.contains("    State:          Waiting\n      Reason:       Blocked\n"),
        "{describe}"
    );
    assert!(
        describe.contains("Warning  AppArmor") && describe.contains(&message),
        "{describe}"
    );
    let p = c.pod(pod);
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["reason"], "AppArmor");
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "Blocked"
    );
}

#[test]
fn tutorial_at_1_22_with_landlock() {
    let c = landlock_cluster("1.22");
    // The tutorial's first check: the node says AppArmor is enabled.
    let ready = c.kubectl_ok(&[
        "get",
        "nodes",
        "-o=jsonpath={range .items[*]}{@.metadata.name}: {.status.conditions[?(@.reason==\"KubeletReady\")].message}\n{end}",
    ]);
    assert_eq!(
        ready,
        format!(
            "{}: kubelet is posting ready status. AppArmor enabled\n",
            hostname()
        )
    );

    // Applied before the profile is loaded: soft-blocked, as the tutorial's hello-apparmor-2.
    c.apply(HELLO);
    assert_blocked_describe(&c, "hello-apparmor", "k8s-apparmor-example-deny-write");
    let blocked: Vec<Value> = events_of(&c, "hello-apparmor")
        .into_iter()
        .filter(|e| e["reason"] == "AppArmor")
        .collect();
    assert_eq!(blocked.len(), 1, "one AppArmor event: {blocked:?}");
    assert_eq!(blocked[0]["type"], "Warning");
    assert_eq!(blocked[0]["source"]["component"], "kubelet");

    // Loading the profile unblocks it on the next sync (soft admission is re-checked).
    load_deny_write(&c);
    c.wait_running("hello-apparmor");
    let node = c.kubectl_json(&["get", "node", &hostname()]).expect("node");
    assert_eq!(
        node["metadata"]["labels"]["apparmor.armorlet.io/k8s-apparmor-example-deny-write"],
        "enforce"
    );
    // The same, exactly, from the API server (`armorlet apparmor status --kubeconfig`).
    let status = c.wait_for("the node's published AppArmor state", || {
        let out = armorlet()
            .args(["apparmor", "status", "--kubeconfig"])
            .arg(c.kubeconfig())
            .args(["--node", &hostname()])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("k8s-apparmor-example-deny-write")
            .then_some(text)
    });
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(
        lines[0],
        format!("node {}: AppArmor enforced by Landlock", hostname())
    );
    let enforce = lines
        .iter()
        .position(|l| l.ends_with("profiles are in enforce mode."))
        .unwrap();
    assert!(
        lines[enforce + 1..]
            .iter()
            .take_while(|l| l.starts_with("   "))
            .any(|l| l.trim() == "k8s-apparmor-example-deny-write"),
        "{status}"
    );
    // The tutorial's prerequisites as a table (`armorlet node check`).
    let out = armorlet()
        .args(["node", "check", "--kubeconfig"])
        .arg(c.kubeconfig())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        [
            "NODE",
            "READY",
            "KUBELET",
            "RUNTIME",
            "APPARMOR MODULE",
            "ENFORCED BY",
            "PROFILES"
        ]
    );
    assert_eq!(
        rows[1][..3],
        [hostname().as_str(), "True", "v1.22.0"],
        "{table}"
    );
    assert!(rows[1][3].starts_with("crun://"), "{table}");
    assert_eq!(rows[1][4..6], ["not loaded", "Landlock"], "{table}");
    assert!(
        rows[1][6].contains("k8s-apparmor-example-deny-write (enforce)"),
        "{table}"
    );
    let events = events_of(&c, "hello-apparmor");
    let tightened = events
        .iter()
        .find(|e| {
            e["reason"] == "AppArmor"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("enforced by Landlock"))
        })
        .expect("a Warning event listing the tightened rules");
    assert!(
        tightened["message"]
            .as_str()
            .unwrap()
            .contains("signal rule"),
        "{tightened}"
    );
    assert!(events.iter().any(|e| e["reason"] == "Started"));

    // The tutorial's violation: writes are denied, reads work, the workload is unchanged.
    let (code, out, err) = exec(&c, "hello-apparmor", &["touch", "/tmp/test"]);
    assert_ne!(code, 0, "touch must fail: {out}");
    assert!(
        err.contains("touch: /tmp/test: Permission denied"),
        "stderr: {err}"
    );
    assert!(
        err.contains("command terminated with exit code 1"),
        "stderr: {err}"
    );
    let (code, out, err) = exec(&c, "hello-apparmor", &["cat", "/etc/hostname"]);
    assert_eq!((code, out.trim()), (0, "hello-apparmor"), "{err}");
    let logs = c.kubectl_ok(&["logs", "hello-apparmor"]);
    assert_eq!(logs, "Hello AppArmor!\n");
    // Landlock confines pid 1 too (no_new_privs is part of a Landlock domain).
    let (_, status, _) = exec(
        &c,
        "hello-apparmor",
        &["grep", "NoNewPrivs", "/proc/1/status"],
    );
    assert_eq!(
        status.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );

    // A profile that is not loaded: Pending, Blocked, with the tutorial's describe fields.
    c.apply(HELLO_2);
    assert_blocked_describe(&c, "hello-apparmor-2", "k8s-apparmor-example-allow-write");
    c.kubectl_ok(&[
        "delete",
        "pod",
        "hello-apparmor",
        "hello-apparmor-2",
        "--grace-period=1",
    ]);
}

#[test]
fn fields_and_failures_at_1_32_with_landlock() {
    let c = landlock_cluster("1.32");
    let ready = c.kubectl_ok(&[
        "get",
        "nodes",
        "-o=jsonpath={.items[0].status.conditions[?(@.reason==\"KubeletReady\")].message}",
    ]);
    assert_eq!(
        ready, "kubelet is posting ready status",
        "no suffix at 1.32"
    );
    load_deny_write(&c);
    load(&c, "audit-write", AUDIT_WRITE);
    c.apply(
        &[
            field_pod("audit-field", "k8s-apparmor-example-audit-write", false),
            field_pod("deny-field", "k8s-apparmor-example-deny-write", false),
            field_pod("missing-field", "k8s-apparmor-example-allow-write", false),
            field_pod("default-field", "RuntimeDefault", false),
            field_pod("privileged-default", "RuntimeDefault", true),
        ]
        .join("---\n"),
    );

    c.wait_running("deny-field");
    let (code, _, err) = exec(&c, "deny-field", &["touch", "/tmp/test"]);
    assert_ne!(code, 0);
    assert!(err.contains("touch: /tmp/test: Permission denied"), "{err}");

    // `audit deny`: the denial is refused and logged (Landlock's audit records, attributed).
    c.wait_running("audit-field");
    // (The command outlives its record: the node attributes a denial through the
    // creator of its Landlock domain, which must still exist.)
    let (code, _, err) = exec(
        &c,
        "audit-field",
        &["sh", "-c", "touch /tmp/audited; s=$?; sleep 2; exit $s"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("touch: /tmp/audited: Permission denied"),
        "{err}"
    );
    let line = c.wait_for("a Landlock denial in the audit log", || {
        let out = armorlet()
            .args(["audit", "--pod", "audit-field", "--data-dir"])
            .arg(c.data())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("type=1423") && l.contains("blockers=fs.make_reg path=\"/tmp\""))
            .map(str::to_owned)
    });
    assert!(line.contains("blockers=fs."), "{line}");
    assert!(
        line.ends_with(
            "apparmor_profile=\"k8s-apparmor-example-audit-write\" pod=default/audit-field container=hello"
        ),
        "{line}"
    );

    // 1.32's kubelet no longer checks that the profile is loaded: the runtime fails the
    // container, and the message names the missing profile.
    let waiting = c.wait_for("missing-field CreateContainerError", || {
        let p = c.pod("missing-field");
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "CreateContainerError").then_some(w)
    });
    let msg = waiting["message"].as_str().unwrap();
    assert!(
        msg.contains("localhost/k8s-apparmor-example-allow-write")
            && msg.contains("\"k8s-apparmor-example-allow-write\" is not loaded"),
        "{msg}"
    );
    assert_eq!(c.pod("missing-field")["status"]["phase"], "Pending");

    // runtime/default is enforced by Landlock (the generated docker-default-like profile).
    c.wait_running("default-field");
    let (_, status, _) = exec(
        &c,
        "default-field",
        &["grep", "NoNewPrivs", "/proc/1/status"],
    );
    assert_eq!(
        status.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    // A privileged container gets no profile from runtime/default: no helper, no Landlock.
    c.wait_running("privileged-default");
    let (_, status, _) = exec(
        &c,
        "privileged-default",
        &["grep", "NoNewPrivs", "/proc/1/status"],
    );
    assert_eq!(
        status.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "0"]
    );
    c.kubectl_ok(&["delete", "pods", "--all", "--grace-period=1"]);
}

#[test]
fn no_apparmor_rejects_at_1_32_as_the_golden_node() {
    let c = Cluster::with_args("crun", &["--apparmor", "off"]);
    c.apply(HELLO);
    let pod = c.wait_for("hello-apparmor Failed", || {
        let p = c.pod("hello-apparmor");
        (p["status"]["phase"] == "Failed").then_some(p)
    });
    assert_eq!(pod["status"]["reason"], "AppArmor");
    assert_eq!(
        pod["status"]["message"],
        "Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host"
    );
    assert!(pod["status"]["containerStatuses"].is_null());
    let table = c.kubectl_ok(&["get", "pod", "hello-apparmor", "--no-headers"]);
    let cols: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(
        &cols[..4],
        ["hello-apparmor", "0/1", "AppArmor", "0"],
        "{table}"
    );
    let events = events_of(&c, "hello-apparmor");
    assert!(events.iter().any(|e| e["reason"] == "AppArmor"
        && e["message"] == "Cannot enforce AppArmor: AppArmor is not enabled on the host"));
    c.kubectl_ok(&["delete", "pod", "hello-apparmor"]);
}

#[test]
fn feature_gate_off_at_1_22() {
    let c = Cluster::with_args(
        "crun",
        &[
            "--emulated-version",
            "1.22",
            "--feature-gates",
            "AppArmor=false",
        ],
    );
    // The API server forbids AppArmor annotations when the gate is off.
    let path = c.dir.path().join("hello.yaml");
    std::fs::write(&path, HELLO).unwrap();
    let out = c.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Forbidden"), "{err}");
    // The gate cannot be turned off at 1.32, where AppArmor is GA and locked on.
    let out = armorlet()
        .args(["up", "--feature-gates", "AppArmor=false", "--data-dir"])
        .arg(c.dir.path().join("other"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "armorlet's exit code for a bad flag value"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("locked to true"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
