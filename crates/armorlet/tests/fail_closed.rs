//! Fail closed (issue 12): for each way confinement can be unavailable, the container is not
//! started with less than it asked for; it gets the kubelet's error state instead, and nothing
//! of the workload runs (each workload would write a marker file on the host if it ran).

mod common;

use common::*;
use serde_json::Value;

/// A pod whose container would touch `/host/ran` (a hostPath onto the test dir) if it ran.
fn pod(name: &str, security: &str, annotations: &str, marker_dir: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sh\", \"-c\", \"touch /host/{name} && sleep 3600\"]\n    securityContext: {security}\n    volumeMounts:\n    - {{name: host, mountPath: /host}}\n  volumes:\n  - name: host\n    hostPath: {{path: {marker_dir}}}\n"
    )
}

fn waiting(c: &Cluster, name: &str) -> Value {
    c.wait_for(&format!("{name} waiting with an error"), || {
        let p = c.pod(name);
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        w["reason"]
            .as_str()
            .is_some_and(|r| r.ends_with("Error"))
            .then_some(w)
    })
}

#[test]
fn unavailable_confinement_never_runs_the_workload() {
    let helper_dir = tempfile::tempdir().unwrap();
    let helper = helper_dir.path().join("armorlet-confine-static");
    std::fs::copy(confine_helper(), &helper).unwrap();
    let c = Cluster::with_args(
        "crun",
        &[
            "--apparmor",
            "landlock",
            "--confine-helper",
            helper.to_str().unwrap(),
        ],
    );
    let profiles = c.dir.path().join("kroot/seccomp/profiles");
    std::fs::write(profiles.join("empty.json"), "").unwrap();
    std::fs::write(
        profiles.join("bad-action.json"),
        r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#,
    )
    .unwrap();
    std::fs::create_dir_all(profiles.join("a-directory.json")).unwrap();
    let exact = c.dir.path().join("exact");
    std::fs::write(&exact, "profile exact-one {\n  /** r,\n  /bin/** rix,\n}\n").unwrap();
    let out = armorlet()
        .args(["apparmor", "load", "--data-dir"])
        .arg(c.data())
        .arg(&exact)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The helper disappears after the node started: Landlock cannot be applied any more.
    std::fs::remove_file(&helper).unwrap();

    let markers = c.dir.path().join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let m = markers.to_str().unwrap();
    let localhost = |file: &str| {
        format!("{{seccompProfile: {{type: Localhost, localhostProfile: profiles/{file}}}}}")
    };
    let cases = [
        (
            "seccomp-empty",
            localhost("empty.json"),
            "",
            "unexpected end of JSON input",
        ),
        (
            "seccomp-invalid",
            localhost("bad-action.json"),
            "",
            "decoding seccomp profile failed",
        ),
        (
            "seccomp-directory",
            localhost("a-directory.json"),
            "",
            "cannot load seccomp profile",
        ),
        (
            "seccomp-missing",
            localhost("missing.json"),
            "",
            "no such file or directory",
        ),
        (
            "apparmor-not-loaded",
            "{}".to_string(),
            "container.apparmor.security.beta.kubernetes.io/c: localhost/never-loaded",
            "\"never-loaded\" is not loaded",
        ),
        (
            "apparmor-helper-gone",
            "{}".to_string(),
            "container.apparmor.security.beta.kubernetes.io/c: localhost/exact-one",
            "armorlet-confine-static",
        ),
    ];
    c.apply(
        &cases
            .iter()
            .map(|(name, sc, ann, _)| pod(name, sc, ann, m))
            .collect::<Vec<_>>()
            .join("---\n"),
    );
    // A control pod shows the marker mechanism works.
    c.apply(&pod("control", "{}", "", m));
    c.wait_running("control");
    c.wait_for("the control's marker", || {
        markers.join("control").exists().then_some(())
    });

    for (name, _, _, message) in &cases {
        let w = waiting(&c, name);
        let text = w["message"].as_str().unwrap_or_default();
        println!("{name}: {} {text}", w["reason"]);
        assert!(text.contains(message), "{name}: {w}");
        let p = c.pod(name);
        assert_eq!(p["status"]["phase"], "Pending", "{name}");
        assert!(!markers.join(name).exists(), "{name}: the workload ran");
    }
    c.kubectl_ok(&["delete", "pods", "--all", "--grace-period=1"]);
}

/// A kernel without Landlock, for real: `armorlet up` (and with it crun and every container)
/// runs under a seccomp filter that fails the three Landlock syscalls with `ENOSYS`, as a
/// kernel built without Landlock does, so the ABI probe reads 0, older than the 6 the
/// backend needs. The filter is installed by the confine helper itself (a plan with only a
/// seccomp program), so nothing but the kernel's answer changes.
fn without_landlock(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names":
        ["landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
        "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#;
    let compiled = armorlet_seccomp::Profile::from_json(profile)
        .unwrap()
        .compile(&armorlet_seccomp::ResolveContext::host_default())
        .unwrap();
    let mut plan = armorlet_landlock::plan::Plan {
        profile: "no-landlock".into(),
        ..Default::default()
    };
    plan.set_seccomp(&compiled.program, compiled.flags);
    let path = dir.join("no-landlock.plan");
    plan.write(&path).unwrap();
    vec![
        confine_helper().into_os_string(),
        path.into_os_string(),
        "--".into(),
    ]
}

#[test]
fn landlock_unavailable_fails_closed() {
    let helper = confine_helper();
    let helper = helper.to_str().unwrap();
    let plan_dir = tempfile::tempdir().unwrap();
    let wrapper = without_landlock(plan_dir.path());
    let wrapper: Vec<&std::ffi::OsStr> = wrapper.iter().map(|w| w.as_os_str()).collect();

    // An explicit `--apparmor landlock` refuses to start the node at all.
    let mut refused = Cluster::prepared(
        "crun",
        &["--apparmor", "landlock", "--confine-helper", helper],
        None,
        vec![hostname()],
    );
    refused.wrapper = wrapper.iter().map(|w| w.to_os_string()).collect();
    let out = refused
        .up_command()
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "armorlet up started: {stderr}");
    assert!(
        stderr.contains("the kernel's Landlock ABI is 0 (6 or newer needed)"),
        "{stderr}"
    );

    // `auto` runs the node without AppArmor: pods asking for a profile are rejected, the
    // workload never runs; a pod without one runs.
    let c = Cluster::wrapped(
        "crun",
        &["--apparmor", "auto", "--confine-helper", helper],
        &wrapper,
    );
    let markers = c.dir.path().join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let m = markers.to_str().unwrap();
    c.apply(&pod(
        "wants-apparmor",
        "{}",
        "container.apparmor.security.beta.kubernetes.io/c: runtime/default",
        m,
    ));
    c.apply(&pod(
        "control",
        "{seccompProfile: {type: RuntimeDefault}}",
        "",
        m,
    ));
    c.wait_running("control");
    c.wait_for("the control's marker", || {
        markers.join("control").exists().then_some(())
    });
    let p = c.wait_for("wants-apparmor rejected", || {
        let p = c.pod("wants-apparmor");
        (p["status"]["phase"] == "Failed").then_some(p)
    });
    assert_eq!(p["status"]["reason"], "AppArmor", "{p}");
    assert_eq!(
        p["status"]["message"],
        "Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host"
    );
    assert!(!markers.join("wants-apparmor").exists(), "the workload ran");
    c.kubectl_ok(&["delete", "pods", "--all", "--grace-period=1"]);
}
