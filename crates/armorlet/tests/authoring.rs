//! Profile authoring (issue 10). Seccomp recording: `armorlet record seccomp
//! -- CMD` with the real kernel's user notification, and pods annotated
//! `recording.armorlet.io/seccomp` on a real `armorlet up` (crun and runc,
//! through the runtime's `listenerPath`, and through the Landlock confine
//! helper). The recorded profiles then confine the same workloads as Localhost
//! profiles: they run and serve, and a syscall they never made fails; complain
//! mode lets it through and logs it, and `profile suggest` adds it. bane's TOML
//! compiled by `armorlet apparmor from-toml` passes the real `apparmor_parser`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const ECHO_TEXT: &str = "just made some syscalls!";

/// The allowed names of a generated profile.
fn names(profile: &Path) -> BTreeSet<String> {
    let p: Value = serde_json::from_slice(&std::fs::read(profile).unwrap()).unwrap();
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO", "{p}");
    p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|r| assert_eq!(r["action"], "SCMP_ACT_ALLOW", "{r}"))
        .flat_map(|r| r["names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

fn busybox() -> &'static str {
    "/bin/busybox"
}

#[test]
fn record_a_command_merge_runs_and_keep_its_exit_status() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.json");
    let file = dir.path().join("f");
    let run = armorlet()
        .args(["record", "seccomp", "-o"])
        .arg(&out)
        .args(["--", busybox(), "sh", "-c"])
        .arg(format!("echo hi > {0}; cat {0}; exit 3", file.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hi\n");
    assert!(stderr.contains("armorlet: recorded "), "{stderr}");
    let first = names(&out);
    for n in ["execve", "openat", "write", "sendfile", "exit_group"] {
        assert!(first.contains(n), "{n} missing from {first:?}");
    }
    assert!(!first.contains("mkdir"), "{first:?}");

    // A second run merged into the same file adds what it did.
    let run = armorlet()
        .args(["record", "seccomp", "-o"])
        .arg(&out)
        .arg("--merge")
        .arg(&out)
        .args(["--", busybox(), "mkdir"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let merged = names(&out);
    assert!(
        merged.is_superset(&first) && merged.contains("mkdir"),
        "{merged:?}"
    );

    // --socket-families: socket is allowed for the families used only.
    let fam = dir.path().join("s.json");
    let run = armorlet()
        .args(["record", "seccomp", "--socket-families", "-o"])
        .arg(&fam)
        .args(["--", busybox(), "nc", "-w", "1", "127.0.0.1", "1"])
        .output()
        .unwrap();
    assert!(run.status.code().is_some(), "{run:?}");
    let p: Value = serde_json::from_slice(&std::fs::read(&fam).unwrap()).unwrap();
    let socket_rules: Vec<&Value> = p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["names"] == serde_json::json!(["socket"]))
        .collect();
    assert_eq!(socket_rules.len(), 1, "{p}");
    assert_eq!(
        socket_rules[0]["args"],
        serde_json::json!([{"index": 0, "value": 2, "valueTwo": 0, "op": "SCMP_CMP_EQ"}])
    );

    // Nothing to record is a usage error.
    let run = armorlet().args(["record", "seccomp"]).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("nothing to record"));
}

fn pod(name: &str, workload: &str, annotations: &str, profile: Option<&str>) -> String {
    let profile = profile
        .map(|p| {
            format!("  securityContext:\n    seccompProfile:\n      type: Localhost\n      localhostProfile: profiles/{p}\n")
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  terminationGracePeriodSeconds: 1\n{profile}  containers:\n  - name: c\n    {workload}\n    securityContext:\n      allowPrivilegeEscalation: false\n"
    )
}

/// `armorlet record seccomp --pod NAME` into the node's Localhost profiles.
fn record_pod(c: &Cluster, pod: &str, file: &str, extra: &[&str]) -> String {
    let out = armorlet()
        .args(["record", "seccomp", "--pod", pod, "--data-dir"])
        .arg(c.data())
        .arg("-o")
        .arg(c.dir.path().join("kroot/seccomp/profiles").join(file))
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "record --pod {pod}: {stderr}");
    stderr
}

fn serve(c: &Cluster, name: &str) {
    let ip = c.wait_running(name)["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_owned();
    c.wait_for(&format!("{name} to serve"), || {
        (http_get(&format!("{ip}:5678"))? == ECHO_TEXT).then_some(())
    });
}

/// The tutorial's http-echo stand-in, recorded while it serves, then confined
/// by the recorded profile (runtime's listenerPath; no AppArmor backend).
#[test]
fn recorded_http_echo_serves_under_its_profile() {
    recorded_http_echo("crun");
}

/// The same with runc, which refuses SCMP_ACT_NOTIFY as the default action and
/// for `write`: the recording profile lists the syscalls instead, and the
/// syscalls runc itself makes after installing the filter (fstatfs, getdents64
/// when closing fds) are recorded, so the profile also starts under runc.
#[test]
fn recorded_http_echo_serves_under_its_profile_with_runc() {
    recorded_http_echo("runc");
}

fn recorded_http_echo(runtime: &'static str) {
    let c = Cluster::with_args(runtime, &["--apparmor", "off"]);
    let echo = format!("image: hashicorp/http-echo:0.2.3\n    args: [\"-text={ECHO_TEXT}\"]");
    let annotation = "recording.armorlet.io/seccomp: \"*\"";
    c.apply(&pod("echo-rec", &echo, annotation, None));
    serve(&c, "echo-rec");
    // While the pod runs: a snapshot, compared with the tutorial's hand-made profile.
    let stderr = record_pod(
        &c,
        "echo-rec",
        "recorded.json",
        &[
            "--compare",
            repo()
                .join("testdata/tutorial/profiles/fine-grained.json")
                .to_str()
                .unwrap(),
        ],
    );
    eprintln!("{stderr}");
    assert!(stderr.contains("only in the recording ("), "{stderr}");
    let recorded = names(&c.dir.path().join("kroot/seccomp/profiles/recorded.json"));
    for n in ["accept4", "execve", "write"] {
        assert!(recorded.contains(n), "{n} missing from {recorded:?}");
    }
    for n in ["mkdir", "ptrace", "mount", "unshare"] {
        assert!(!recorded.contains(n), "{n} in {recorded:?}");
    }
    // The pod keeps running after the recording is read.
    assert_eq!(c.pod("echo-rec")["status"]["phase"], "Running");

    c.apply(&pod("echo-enforced", &echo, "", Some("recorded.json")));
    serve(&c, "echo-enforced");
    assert_eq!(c.seccomp_mode(&c.pod("echo-enforced")), "2");
}

/// Through the Landlock confine helper (every unconfined-by-AppArmor container
/// on this machine's nodes runs under runtime/default through it): a busybox
/// workload and an exec into it are recorded; the recorded profile runs them
/// and refuses a syscall they never made.
#[test]
fn landlock_recorded_busybox_refuses_what_it_never_did() {
    let c = Cluster::landlock(&[]);
    let workload =
        "image: busybox:1.28\n    command: [\"sh\", \"-c\", \"cat /etc/hostname; sleep 3600\"]";
    c.apply(&pod(
        "bb-rec",
        workload,
        "recording.armorlet.io/seccomp: c",
        None,
    ));
    c.wait_running("bb-rec");
    c.kubectl_ok(&["exec", "bb-rec", "--", "ls", "/"]);
    // Runs merge: the container was recorded once, read twice.
    record_pod(&c, "bb-rec", "bb.json", &[]);
    let stderr = record_pod(&c, "bb-rec", "bb.json", &["-c", "c"]);
    assert!(stderr.contains("armorlet: recorded "), "{stderr}");
    let recorded = names(&c.dir.path().join("kroot/seccomp/profiles/bb.json"));
    assert!(recorded.contains("getdents64"), "{recorded:?}");
    assert!(
        recorded.contains("nanosleep") || recorded.contains("clock_nanosleep"),
        "{recorded:?}"
    );
    assert!(!recorded.contains("mkdir"), "{recorded:?}");

    c.apply(&pod("bb-enforced", workload, "", Some("bb.json")));
    c.wait_running("bb-enforced");
    let logs = c.wait_for("bb-enforced logs", || {
        let l = c.kubectl_ok(&["logs", "bb-enforced"]);
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(logs.trim(), "bb-enforced");
    c.kubectl_ok(&["exec", "bb-enforced", "--", "ls", "/"]);
    let mkdir = c.kubectl(&["exec", "bb-enforced", "--", "mkdir", "/tmp/never"]);
    assert!(!mkdir.status.success());
    let err = String::from_utf8_lossy(&mkdir.stderr);
    assert!(err.contains("Operation not permitted"), "{err}");

    // Complain → enforce: the complain mode lets mkdir through and logs it, suggest adds it.
    let profiles = c.dir.path().join("kroot/seccomp/profiles");
    let run = armorlet()
        .args(["profile", "complain"])
        .arg(profiles.join("bb.json"))
        .arg("-o")
        .arg(profiles.join("bb-complain.json"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    // mkdir again every second: a record of a process that exited before the node read
    // it cannot be attributed to the pod (busybox may fork for mkdir).
    let makes = "image: busybox:1.28\n    command: [\"sh\", \"-c\", \"mkdir /tmp/made && echo made; while true; do mkdir /tmp/made 2>/dev/null; sleep 1; done\"]";
    c.apply(&pod("bb-complain", makes, "", Some("bb-complain.json")));
    c.wait_running("bb-complain");
    c.wait_for("bb-complain to make its directory", || {
        (c.kubectl_ok(&["logs", "bb-complain"]).trim() == "made").then_some(())
    });
    let stderr = c.wait_for("the complain mode's log of mkdir", || {
        let run = armorlet()
            .args(["profile", "suggest"])
            .arg(profiles.join("bb.json"))
            .args(["--pod", "bb-complain", "--data-dir"])
            .arg(c.data())
            .arg("-o")
            .arg(profiles.join("bb-next.json"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        (run.status.code() == Some(1) && stderr.contains(" mkdir")).then_some(stderr)
    });
    eprintln!("{stderr}");
    assert!(names(&profiles.join("bb-next.json")).contains("mkdir"));
    c.apply(&pod("bb-next", makes, "", Some("bb-next.json")));
    c.wait_running("bb-next");
    c.wait_for("bb-next to make its directory", || {
        (c.kubectl_ok(&["logs", "bb-next"]).trim() == "made").then_some(())
    });

    // No recording for a pod that was not annotated.
    let out = armorlet()
        .args(["record", "seccomp", "--pod", "bb-enforced", "--data-dir"])
        .arg(c.data())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no recording of pod default/bb-enforced"),
        "{out:?}"
    );
}

/// bane's sample, compiled, is accepted by our parser and by the real
/// `apparmor_parser -QK`; a bad description is refused naming the key.
#[test]
fn from_toml_profiles_pass_apparmor_parser() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("nginx.toml");
    std::fs::write(
        &toml,
        "Name = \"nginx\"\n[Filesystem]\nReadOnlyPaths = [\"/etc/**\", \"/usr/**\"]\nLogOnWritePaths = [\"/**\"]\nWritablePaths = [\"/var/run/nginx.pid\"]\nAllowExec = [\"/usr/sbin/nginx\"]\nDenyExec = [\"/bin/sh\"]\n[Capabilities]\nAllow = [\"chown\", \"setuid\"]\n[Network]\nProtocols = [\"tcp\"]\n",
    )
    .unwrap();
    let out = dir.path().join("nginx");
    let run = armorlet()
        .args(["apparmor", "from-toml"])
        .arg(&toml)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("profile nginx flags=(attach_disconnected,mediate_deleted) {"));
    let check = armorlet()
        .args(["apparmor", "check"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert_apparmor_parser_accepts(&out);

    std::fs::write(
        &toml,
        "Name = \"nginx\"\n[Filesystem]\nWritablePaths = [\"run/x\"]\n",
    )
    .unwrap();
    let run = armorlet()
        .args(["apparmor", "from-toml"])
        .arg(&toml)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!(
            "{}: Filesystem.WritablePaths[0]: \"run/x\" is not an absolute path\n",
            toml.display()
        )
    );
}

/// A busybox pod recorded for AppArmor on the Landlock backend: the generated
/// profile passes the real `apparmor_parser -QK`, confines the same workload
/// (it runs, reads and writes what it did) and denies a write it never made.
#[test]
fn recorded_apparmor_profile_confines_busybox_under_landlock() {
    let c = Cluster::landlock(&[]);
    let workload = "image: busybox:1.28\n    command: [\"sh\", \"-c\", \"echo hi > /tmp/out; cat /etc/hostname; sleep 3600\"]";
    c.apply(&pod(
        "aa-rec",
        workload,
        "recording.armorlet.io/apparmor: \"*\"",
        None,
    ));
    c.wait_running("aa-rec");
    let profile = c.dir.path().join("bb-recorded");
    let text = c.wait_for("the recording of /tmp/out", || {
        let out = armorlet()
            .args([
                "record",
                "apparmor",
                "--pod",
                "aa-rec",
                "--name",
                "bb-recorded",
                "--data-dir",
            ])
            .arg(c.data())
            .arg("-o")
            .arg(&profile)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(&profile).unwrap();
        text.contains("  # created by the workload: /tmp/out")
            .then_some(text)
    });
    eprintln!("{text}");
    assert!(text.contains("  /etc/hostname r,"), "{text}");
    assert!(text.contains("  /bin/busybox rix,"), "{text}");
    assert_apparmor_parser_accepts(&profile);

    let load = armorlet()
        .args(["apparmor", "load", "--data-dir"])
        .arg(c.data())
        .arg(&profile)
        .output()
        .unwrap();
    assert!(load.status.success(), "apparmor load: {load:?}");
    c.apply(&pod(
        "aa-enforced",
        workload,
        "container.apparmor.security.beta.kubernetes.io/c: localhost/bb-recorded",
        None,
    ));
    c.wait_running("aa-enforced");
    c.wait_for("aa-enforced logs", || {
        (c.kubectl_ok(&["logs", "aa-enforced"]).trim() == "aa-enforced").then_some(())
    });
    assert!(text.contains("  /tmp/** w,"), "{text}");
    let cat = c.kubectl_ok(&["exec", "aa-enforced", "--", "cat", "/etc/hostname"]);
    assert_eq!(cat.trim(), "aa-enforced");
    // It wrote /tmp/out but never read it, and wrote nowhere else.
    let read = c.kubectl(&["exec", "aa-enforced", "--", "cat", "/tmp/out"]);
    assert!(!read.status.success(), "{read:?}");
    let touch = c.kubectl(&["exec", "aa-enforced", "--", "touch", "/var/never"]);
    assert!(!touch.status.success());
    let err = String::from_utf8_lossy(&touch.stderr);
    assert!(err.contains("Permission denied"), "{err}");
    let other = c.kubectl(&[
        "exec",
        "aa-enforced",
        "--",
        "sh",
        "-c",
        "echo x > /etc/hostname",
    ]);
    assert!(!other.status.success(), "{other:?}");

    // Recording a pod confined by that profile: the confine helper hands its listener over
    // under the Landlock ruleset, which allows none of the files it might otherwise open.
    c.apply(&pod(
        "aa-enforced-rec",
        workload,
        "container.apparmor.security.beta.kubernetes.io/c: localhost/bb-recorded, recording.armorlet.io/seccomp: \"*\"",
        None,
    ));
    c.wait_running("aa-enforced-rec");
    c.wait_for("aa-enforced-rec logs", || {
        (c.kubectl_ok(&["logs", "aa-enforced-rec"]).trim() == "aa-enforced-rec").then_some(())
    });
    let stderr = record_pod(&c, "aa-enforced-rec", "confined.json", &[]);
    assert!(stderr.contains("armorlet: recorded "), "{stderr}");
}

/// `armorlet record apparmor -- CMD` on the host: reads, writes, creations
/// and execs of a busybox script, in a profile the real `apparmor_parser`
/// accepts.
#[test]
fn record_apparmor_of_a_command() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("in"), "x").unwrap();
    let out = dir.path().join("p");
    let run = armorlet()
        .args(["record", "apparmor", "--name", "script", "-o"])
        .arg(&out)
        .args(["--", busybox(), "sh", "-c"])
        .arg(format!(
            "cd {0} && cat in > /dev/null && echo hi >> in && echo new > made && ls . > /dev/null",
            work.display()
        ))
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let w = work.display();
    for line in [
        "profile script flags=(attach_disconnected,mediate_deleted) {".to_owned(),
        format!("  # created by the workload: {w}/made"),
        format!("  {w}/ r,"),
        format!("  {w}/in rw,"),
        format!("  {w}/** w,"),
        "  /dev/null w,".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    assert!(text.contains(" rix,"), "{text}");
    assert_apparmor_parser_accepts(&out);
}

/// The Security Profiles Operator's `SeccompProfile`, applied unchanged, reaches
/// every node (a `SecurityProfileNodeStatus` per node, the profile `Installed`),
/// confines a pod that refers to `operator/<ns>/<name>.json`, and deleting it
/// while the pod runs leaves it `Terminating` until the pod is gone.
#[test]
fn spo_seccomp_profiles_reach_every_node_and_stay_while_used() {
    let names = [hostname(), format!("{}-2", hostname())];
    let c = Cluster::with_node_names("crun", &["--apparmor", "off", "--nodes", "2"], &names);
    let applied = std::time::Instant::now();
    c.apply(
        "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: no-mkdir\nspec:\n  defaultAction: SCMP_ACT_ALLOW\n  syscalls:\n  - action: SCMP_ACT_ERRNO\n    names:\n    - mkdir\n    - mkdirat\n",
    );
    c.wait_for("no-mkdir Installed", || {
        let p = c.kubectl_json(&["get", "seccompprofile", "no-mkdir"])?;
        (p["status"]["status"] == "Installed").then_some(())
    });
    eprintln!(
        "no-mkdir installed on every node after {:?}",
        applied.elapsed()
    );
    for n in &names {
        let s = c
            .kubectl_json(&["get", "spns", &format!("no-mkdir-{n}")])
            .expect("node status");
        assert_eq!(s["status"], "Installed", "{s}");
        assert_eq!(s["nodeName"], n.as_str());
    }
    // `armorlet daemon`: the same agent alone, as on a real cluster's node.
    let extra = c.dir.path().join("extra-kubelet");
    let mut daemon = armorlet()
        .args(["daemon", "--node-name", "extra-node", "--kubeconfig"])
        .arg(c.kubeconfig())
        .arg("--kubelet-root-dir")
        .arg(&extra)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let extra_file = extra.join("seccomp/operator/default/no-mkdir.json");
    c.wait_for("armorlet daemon's install", || {
        let s = c.kubectl_json(&["get", "spns", "no-mkdir-extra-node"])?;
        (s["status"] == "Installed" && extra_file.exists()).then_some(())
    });
    let table = c.kubectl_ok(&["get", "sp"]);
    assert!(
        table.starts_with("NAME       STATUS      AGE\nno-mkdir   Installed   "),
        "{table}"
    );
    let file = c
        .dir
        .path()
        .join("kroot/seccomp/operator/default/no-mkdir.json");
    assert!(file.exists());
    let p = c.kubectl_json(&["get", "sp", "no-mkdir"]).unwrap();
    assert_eq!(
        p["status"]["localhostProfile"],
        "operator/default/no-mkdir.json"
    );

    c.apply(&pod(
        "uses-sp",
        "image: busybox:1.28\n    command: [\"sleep\", \"3600\"]",
        "",
        None,
    ).replace(
        "  containers:",
        "  securityContext:\n    seccompProfile:\n      type: Localhost\n      localhostProfile: operator/default/no-mkdir.json\n  containers:",
    ));
    c.wait_running("uses-sp");
    let mkdir = c.kubectl(&["exec", "uses-sp", "--", "mkdir", "/tmp/x"]);
    assert!(!mkdir.status.success());
    assert!(String::from_utf8_lossy(&mkdir.stderr).contains("Operation not permitted"));
    c.wait_for("the in-use finalizer", || {
        let p = c.kubectl_json(&["get", "sp", "no-mkdir"])?;
        (p["metadata"]["finalizers"] == serde_json::json!(["in-use-by-active-pods"])
            && p["status"]["activeWorkloads"] == serde_json::json!(["uses-sp"]))
        .then_some(())
    });

    c.kubectl_ok(&["delete", "sp", "no-mkdir", "--wait=false"]);
    let p = c
        .kubectl_json(&["get", "sp", "no-mkdir"])
        .expect("still there while used");
    assert!(p["metadata"]["deletionTimestamp"].is_string(), "{p}");
    c.wait_for("Terminating", || {
        let p = c.kubectl_json(&["get", "sp", "no-mkdir"])?;
        (p["status"]["status"] == "Terminating").then_some(())
    });
    assert!(file.exists(), "removed while a pod uses it");
    c.kubectl_ok(&["delete", "pod", "uses-sp"]);
    c.wait_for("no-mkdir gone", || {
        c.kubectl(&["get", "sp", "no-mkdir"])
            .status
            .code()
            .filter(|c| *c != 0)
    });
    c.wait_for("the profile file removed", || {
        (!file.exists()).then_some(())
    });
    c.wait_for("armorlet daemon's file removed", || {
        (!extra_file.exists()).then_some(())
    });
    c.wait_for("the node statuses removed", || {
        let l = c.kubectl_json(&["get", "spns"])?;
        l["items"].as_array()?.is_empty().then_some(())
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    assert!(daemon.wait().unwrap().success());
}

const COMPLAIN_POLICY: &str = "profile aa-complain flags=(attach_disconnected) {\n  /** rix,\n  /proc/** rw,\n  /dev/** rw,\n}\n";

/// The Security Profiles Operator's other resources on a Landlock node: AppArmorProfiles
/// (compiled from `abstract`, or `policy` text in complain mode) installed and enforced,
/// ProfileBindings giving pods of an image a profile, a ProfileRecording turning a deleted
/// pod's recording into a SeccompProfile, complain mode's recording listed by `profile
/// suggest --apparmor`, and `armorlet manifests` applied unchanged.
#[test]
fn spo_apparmor_profiles_bindings_and_recordings() {
    let c = Cluster::landlock(&[]);
    c.apply(concat!(
        "apiVersion: security-profiles-operator.x-k8s.io/v1alpha1\nkind: AppArmorProfile\nmetadata:\n  name: aa-ro\nspec:\n  abstract:\n",
        "    executable:\n      allowedExecutables: [\"/bin/**\"]\n",
        "    filesystem:\n      readOnlyPaths: [\"/**\"]\n      readWritePaths: [\"/proc/**\", \"/dev/**\"]\n",
    ));
    c.wait_for("aa-ro Installed", || {
        let p = c.kubectl_json(&["get", "apparmorprofile", "aa-ro"])?;
        (p["status"]["status"] == "Installed").then_some(())
    });
    let spns = c
        .kubectl_json(&[
            "get",
            "spns",
            "-n",
            "security-profiles-operator",
            &format!("aa-ro-{}", hostname()),
        ])
        .expect("the node's status");
    assert_eq!(spns["status"], "Installed", "{spns}");

    // A binding gives every busybox:1.28 container of the namespace the profile.
    c.kubectl_ok(&["label", "ns", "default", "spo.x-k8s.io/enable-binding=true"]);
    c.apply("apiVersion: security-profiles-operator.x-k8s.io/v1alpha1\nkind: ProfileBinding\nmetadata:\n  name: bb-ro\nspec:\n  image: busybox:1.28\n  profileRef:\n    kind: AppArmorProfile\n    name: aa-ro\n");
    c.kubectl_ok(&[
        "run",
        "bound",
        "--image=busybox:1.28",
        "--",
        "sh",
        "-c",
        "echo x > /tmp/x && echo wrote || echo denied; sleep 3600",
    ]);
    let bound = c.wait_running("bound");
    assert_eq!(
        bound["spec"]["containers"][0]["securityContext"]["appArmorProfile"],
        serde_json::json!({"type": "Localhost", "localhostProfile": "aa-ro"})
    );
    c.wait_for("bound's denied write", || {
        let logs = c.kubectl_ok(&["logs", "bound"]);
        logs.contains("Permission denied").then_some(())
    });
    c.wait_for("aa-ro's active workload", || {
        let p = c.kubectl_json(&["get", "apparmorprofile", "aa-ro"])?;
        (p["status"]["activeWorkloads"] == serde_json::json!(["default/bound"])).then_some(())
    });

    // A recording of pods labelled app=rec (another image: the binding leaves them alone).
    c.apply("apiVersion: security-profiles-operator.x-k8s.io/v1alpha1\nkind: ProfileRecording\nmetadata:\n  name: rec\nspec:\n  kind: SeccompProfile\n  recorder: logs\n  podSelector:\n    matchLabels:\n      app: rec\n");
    c.kubectl_ok(&[
        "run",
        "recorded",
        "--image=busybox",
        "-l",
        "app=rec",
        "--",
        "sh",
        "-c",
        "cat /etc/hostname; sleep 3600",
    ]);
    let recorded = c.wait_running("recorded");
    assert_eq!(
        recorded["metadata"]["annotations"]["recording.armorlet.io/seccomp"],
        "*"
    );
    c.wait_for("recorded's output", || {
        (c.kubectl_ok(&["logs", "recorded"]).trim() == "recorded").then_some(())
    });
    c.kubectl_ok(&["delete", "pod", "recorded"]);
    let sp = c.wait_for("the recorded SeccompProfile", || {
        let p = c.kubectl_json(&["get", "seccompprofile", "rec-recorded"])?;
        (p["status"]["status"] == "Installed").then_some(p)
    });
    let allowed: Vec<&str> = sp["spec"]["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(sp["spec"]["defaultAction"], "SCMP_ACT_ERRNO");
    for s in ["execve", "read", "write", "openat"] {
        assert!(allowed.contains(&s), "{s} missing from {allowed:?}");
    }

    // Complain mode: the profile lets everything through and the pod is recorded, so
    // `profile suggest` can list what enforcing would have denied.
    c.apply(&format!(
        "apiVersion: security-profiles-operator.x-k8s.io/v1alpha1\nkind: AppArmorProfile\nmetadata:\n  name: aa-complain\nspec:\n  complainMode: true\n  policy: |\n{}",
        COMPLAIN_POLICY
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    ));
    c.wait_for("aa-complain Installed", || {
        let p = c.kubectl_json(&["get", "apparmorprofile", "aa-complain"])?;
        (p["status"]["status"] == "Installed").then_some(())
    });
    c.apply(&pod(
        "complainer",
        "image: busybox\n    command: [\"sh\", \"-c\", \"echo x > /tmp/complained && echo wrote; sleep 3600\"]",
        "container.apparmor.security.beta.kubernetes.io/c: localhost/aa-complain",
        None,
    ));
    c.wait_running("complainer");
    c.wait_for("complainer's write", || {
        c.kubectl_ok(&["logs", "complainer"])
            .contains("wrote")
            .then_some(())
    });
    let policy = c.dir.path().join("aa-complain");
    std::fs::write(&policy, COMPLAIN_POLICY).unwrap();
    let next = c.dir.path().join("aa-next");
    let out = c.wait_for("the complain mode's recording of /tmp/complained", || {
        let out = armorlet()
            .args(["profile", "suggest", "--apparmor"])
            .arg(&policy)
            .args(["--pod", "complainer", "--data-dir"])
            .arg(c.data())
            .arg("-o")
            .arg(&next)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr)
            .contains("/tmp/complained")
            .then_some(out)
    });
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = std::fs::read_to_string(&next).unwrap();
    assert!(text.contains("/tmp/** w,"), "{text}");
    assert_apparmor_parser_accepts(&next);

    // The manifests for a real cluster apply to this one unchanged.
    let manifests = armorlet().arg("manifests").output().unwrap();
    assert!(manifests.status.success());
    let file = c.dir.path().join("manifests.yaml");
    std::fs::write(&file, &manifests.stdout).unwrap();
    let applied = c.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.contains("daemonset.apps/armorlet-daemon created"),
        "{applied}"
    );
    c.kubectl_ok(&[
        "delete",
        "daemonset",
        "-n",
        "security-profiles-operator",
        "armorlet-daemon",
    ]);
}
