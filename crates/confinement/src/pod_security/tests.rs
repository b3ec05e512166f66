//! Unit tests of Pod Security Admission. Expected texts are those of the upstream tests
//! (kubernetes/pod-security-admission v0.32.0 `policy/check_*_test.go`,
//! `admission/admission_test.go`, `api/helpers_test.go`) unless said otherwise; the conformance
//! test runs the module's own fixtures (`test/testdata`, see `scripts/psa-fixtures`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::view::PodSpecView;
use super::*;

fn v(minor: u32) -> EmulatedVersion {
    EmulatedVersion::new(minor).expect("in range")
}

fn lv(level: Level, version: PolicyVersion) -> LevelVersion {
    LevelVersion { level, version }
}

fn baseline() -> LevelVersion {
    lv(Level::Baseline, PolicyVersion::Latest)
}

fn restricted() -> LevelVersion {
    lv(Level::Restricted, PolicyVersion::Latest)
}

fn view_of(pod: &Value) -> PodSpecView {
    PodSpecView::parse(&pod["metadata"], &pod["spec"], "", true).expect("valid pod")
}

/// The one refusal of check `id` (reason, detail), or None when it allows the pod.
fn check(id: &str, pod: &Value, version: EmulatedVersion) -> Option<(String, String)> {
    check_view(id, &view_of(pod), version)
}

fn check_view(id: &str, view: &PodSpecView, version: EmulatedVersion) -> Option<(String, String)> {
    // The check runs at baseline when it is a baseline check, else at restricted.
    let level = if checks::check_ids(baseline(), version).contains(&id) {
        baseline()
    } else {
        restricted()
    };
    assert!(checks::check_ids(level, version).contains(&id), "{id}");
    checks::evaluate_one(id, level, view, version).map(|f| (f.reason, f.detail))
}

fn forbidden(reason: &str, detail: &str) -> Option<(String, String)> {
    Some((reason.to_string(), detail.to_string()))
}

// ---------------------------------------------------------------------------
// Conformance with the upstream fixtures.

#[test]
fn upstream_fixtures_pass_and_fail_at_every_policy_version() {
    let text = include_str!("../../testdata/pod-security/fixtures.json");
    let data: Value = serde_json::from_str(text).expect("fixtures.json");
    let cases = data["cases"].as_array().expect("cases");
    assert!(cases.len() > 300, "{} cases", cases.len());
    let mut checked = 0;
    for c in cases {
        let level = Level::parse(c[0].as_str().unwrap()).unwrap();
        let expect_pass = c[1] == "pass";
        let name = c[2].as_str().unwrap();
        let pod = &data["pods"][c[3].as_str().unwrap()];
        let (from, to) = (c[4].as_u64().unwrap(), c[5].as_u64().unwrap());
        let view = view_of(pod);
        for minor in from..=to {
            let lvv = lv(level, PolicyVersion::Minor(minor));
            let verdict = evaluate(lvv, &view, v(32));
            assert_eq!(
                verdict.allowed(),
                expect_pass,
                "{level}/v1.{minor} {name}: {}",
                verdict.detail()
            );
            checked += 1;
        }
    }
    // Every YAML file of the module's test/testdata at v0.32.0.
    assert_eq!(checked, 3821);
}

// ---------------------------------------------------------------------------
// Each check's messages.

#[test]
fn apparmor_fields_and_annotations() {
    let pod = json!({"spec": {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}});
    assert_eq!(
        check("appArmorProfile", &pod, v(32)),
        forbidden(
            "forbidden AppArmor profile",
            r#"pod must not set AppArmor profile type to "Unconfined""#
        )
    );
    let pod = json!({"spec": {"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "foo", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}});
    assert_eq!(
        check("appArmorProfile", &pod, v(32)),
        forbidden(
            "forbidden AppArmor profile",
            r#"container "foo" must not set AppArmor profile type to "Unconfined""#
        )
    );
    let pod = json!({"spec": {"containers": [{"name": "foo"}],
        "initContainers": [{"name": "bar", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}});
    assert_eq!(
        check("appArmorProfile", &pod, v(32)),
        forbidden(
            "forbidden AppArmor profile",
            r#"container "bar" must not set AppArmor profile type to "Unconfined""#
        )
    );
    let annotated = json!({"metadata": {"annotations": {
        "container.apparmor.security.beta.kubernetes.io/": "bogus",
        "container.apparmor.security.beta.kubernetes.io/a": "",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
        "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/f": "unknown"}}});
    assert_eq!(
        check("appArmorProfile", &annotated, v(32)),
        forbidden(
            "forbidden AppArmor profiles",
            r#"annotations must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/="bogus"", "container.apparmor.security.beta.kubernetes.io/e="unconfined"", "container.apparmor.security.beta.kubernetes.io/f="unknown"""#
        )
    );
    // Before 1.30 (v0.29.0 check_appArmorProfile_test.go): annotations only, listed bare.
    assert_eq!(
        check("appArmorProfile", &annotated, v(29)),
        forbidden(
            "forbidden AppArmor profiles",
            r#"container.apparmor.security.beta.kubernetes.io/="bogus", container.apparmor.security.beta.kubernetes.io/e="unconfined", container.apparmor.security.beta.kubernetes.io/f="unknown""#
        )
    );
    assert_eq!(check("appArmorProfile", &pod, v(29)), None);
    // A pod synced by the 1.30+ create path has the field and the annotation: both named.
    let synced = json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {"containers": [{"name": "c", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}});
    assert_eq!(
        check("appArmorProfile", &synced, v(32)),
        forbidden(
            "forbidden AppArmor profiles",
            r#"container "c" and annotation must not set AppArmor profile type to "Unconfined", "container.apparmor.security.beta.kubernetes.io/c="unconfined"""#
        )
    );
    for allowed in ["runtime/default", "localhost/x", ""] {
        let pod = json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": allowed}}});
        assert_eq!(check("appArmorProfile", &pod, v(32)), None, "{allowed}");
    }
    let pod = json!({"spec": {"containers": [{"name": "c", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}]}});
    assert_eq!(check("appArmorProfile", &pod, v(32)), None);
}

#[test]
fn capabilities() {
    let pod = json!({"spec": {"containers": [
        {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
        {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"]}}}]}});
    assert_eq!(
        check("capabilities_baseline", &pod, v(32)),
        forbidden(
            "non-default capabilities",
            r#"containers "a", "b" must not include "BAR", "BAZ", "FOO" in securityContext.capabilities.add"#
        )
    );
    let pod = json!({"spec": {"containers": [
        {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
        {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"]}}},
        {"name": "c", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}}}]}});
    let want = forbidden(
        "unrestricted capabilities",
        r#"containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add"#,
    );
    assert_eq!(check("capabilities_restricted", &pod, v(32)), want);
    let windows = json!({"spec": {"os": {"name": "windows"}, "containers": [{"name": "a"}]}});
    assert_eq!(check("capabilities_restricted", &windows, v(32)), None);
    let linux = json!({"spec": {"os": {"name": "linux"}, "containers": [{"name": "a"}]}});
    assert_eq!(
        check("capabilities_restricted", &linux, v(32)),
        forbidden(
            "unrestricted capabilities",
            r#"container "a" must set securityContext.capabilities.drop=["ALL"]"#
        )
    );
    // The Windows exemption is the v1.25 policy: v1.24 still checks Windows pods.
    let r124 = lv(Level::Restricted, PolicyVersion::Minor(24));
    assert!(!evaluate(r124, &view_of(&windows), v(32)).allowed());
}

#[test]
fn host_namespaces_paths_and_ports() {
    let pod = json!({"spec": {"hostNetwork": true, "hostPID": true, "hostIPC": true}});
    assert_eq!(
        check("hostNamespaces", &pod, v(32)),
        forbidden(
            "host namespaces",
            "hostNetwork=true, hostPID=true, hostIPC=true"
        )
    );
    let pod = json!({"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/"}}, {"name": "c", "hostPath": {"path": "/x"}}]}});
    assert_eq!(
        check("hostPathVolumes", &pod, v(32)),
        forbidden("hostPath volumes", r#"volumes "b", "c""#)
    );
    let pod = json!({"spec": {"containers": [
        {"name": "a", "ports": [{"hostPort": 0}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 20}]}]}});
    assert_eq!(
        check("hostPorts", &pod, v(32)),
        forbidden("hostPort", r#"container "b" uses hostPort 20"#)
    );
    let pod = json!({"spec": {"containers": [
        {"name": "a", "ports": [{"hostPort": 0}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
        {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]}]}});
    assert_eq!(
        check("hostPorts", &pod, v(32)),
        forbidden(
            "hostPort",
            r#"containers "b", "c" use hostPorts 10, 20, 30"#
        )
    );
    // Defaulting: a host-network pod's container ports are its host ports.
    let pod = json!({"spec": {"hostNetwork": true, "containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}});
    assert_eq!(
        evaluate(baseline(), &view_of(&pod), v(32)).detail(),
        r#"host namespaces (hostNetwork=true), hostPort (container "c" uses hostPort 8080)"#
    );
}

#[test]
fn privileged_proc_mount_and_host_process() {
    let pod = json!({"spec": {"containers": [
        {"name": "a"}, {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"privileged": false}},
        {"name": "d", "securityContext": {"privileged": true}},
        {"name": "e", "securityContext": {"privileged": true}}]}});
    assert_eq!(
        check("privileged", &pod, v(32)),
        forbidden(
            "privileged",
            r#"containers "d", "e" must not set securityContext.privileged=true"#
        )
    );
    let pod = json!({"spec": {"containers": [
        {"name": "a"}, {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"procMount": "Default"}},
        {"name": "d", "securityContext": {"procMount": "Unmasked"}},
        {"name": "e", "securityContext": {"procMount": "other"}}]}});
    assert_eq!(
        check("procMount", &pod, v(32)),
        forbidden(
            "procMount",
            r#"containers "d", "e" must not set securityContext.procMount to "Unmasked", "other""#
        )
    );
    let pod = json!({"spec": {"securityContext": {"windowsOptions": {"hostProcess": true}}, "containers": [
        {"name": "a"}, {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"windowsOptions": {}}},
        {"name": "d", "securityContext": {"windowsOptions": {"hostProcess": false}}},
        {"name": "e", "securityContext": {"windowsOptions": {"hostProcess": true}}},
        {"name": "f", "securityContext": {"windowsOptions": {"hostProcess": true}}}]}});
    assert_eq!(
        check("windowsHostProcess", &pod, v(32)),
        forbidden(
            "hostProcess",
            r#"pod and containers "e", "f" must not set securityContext.windowsOptions.hostProcess=true"#
        )
    );
}

#[test]
fn restricted_volume_types() {
    let mut volumes = vec![];
    for (i, s) in [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
    ]
    .iter()
    .enumerate()
    {
        volumes.push(json!({"name": format!("a{}", i + 1), *s: {}}));
    }
    for (i, s) in checks_named_sources().iter().enumerate() {
        volumes.push(json!({"name": format!("b{}", i + 1), *s: {}}));
    }
    volumes.push(json!({"name": "c1"}));
    let pod = json!({"spec": {"volumes": volumes}});
    let mut view = view_of(&pod);
    // Upstream's test calls the check on an undefaulted pod: c1 has no source at all.
    view.volumes.last_mut().unwrap().sources.clear();
    assert_eq!(
        check_view("restrictedVolumes", &view, v(32)),
        forbidden(
            "restricted volume types",
            concat!(
                r#"volumes "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", "b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1""#,
                r#" use restricted volume types "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "#,
                r#""hostPath", "iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume""#
            )
        )
    );
    // Defaulted, a source-less volume is an emptyDir.
    let pod = json!({"spec": {"volumes": [{"name": "c1"}]}});
    assert_eq!(check("restrictedVolumes", &pod, v(32)), None);
    let pod = json!({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}});
    assert_eq!(
        check("restrictedVolumes", &pod, v(32)),
        forbidden(
            "restricted volume types",
            r#"volume "h" uses restricted volume type "hostPath""#
        )
    );
}

fn checks_named_sources() -> [&'static str; 21] {
    [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ]
}

#[test]
fn run_as_non_root_and_run_as_user() {
    let cases = [
        (
            json!({"spec": {"containers": [{"name": "a"}]}}),
            r#"pod or container "a" must set securityContext.runAsNonRoot=true"#,
        ),
        (
            json!({"spec": {"securityContext": {"runAsNonRoot": false}, "containers": [{"name": "a"}]}}),
            r#"pod must not set securityContext.runAsNonRoot=false"#,
        ),
        (
            json!({"spec": {"securityContext": {"runAsNonRoot": true}, "containers": [
                {"name": "a"}, {"name": "b", "securityContext": {}},
                {"name": "c", "securityContext": {"runAsNonRoot": false}},
                {"name": "d", "securityContext": {"runAsNonRoot": false}},
                {"name": "e", "securityContext": {"runAsNonRoot": true}}]}}),
            r#"containers "c", "d" must not set securityContext.runAsNonRoot=false"#,
        ),
        (
            json!({"spec": {"containers": [
                {"name": "a"}, {"name": "b", "securityContext": {}},
                {"name": "d", "securityContext": {"runAsNonRoot": true}}]}}),
            r#"pod or containers "a", "b" must set securityContext.runAsNonRoot=true"#,
        ),
    ];
    for (pod, detail) in cases {
        assert_eq!(
            check("runAsNonRoot", &pod, v(32)),
            forbidden("runAsNonRoot != true", detail)
        );
    }
    let pod = json!({"spec": {"securityContext": {"runAsUser": 0}, "containers": [{"name": "a"}]}});
    assert_eq!(
        check("runAsUser", &pod, v(32)),
        forbidden("runAsUser=0", "pod must not set runAsUser=0")
    );
    let pod = json!({"spec": {"containers": [
        {"name": "a"}, {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"runAsUser": 0}},
        {"name": "d", "securityContext": {"runAsUser": 0}},
        {"name": "e", "securityContext": {"runAsUser": 1}}]}});
    assert_eq!(
        check("runAsUser", &pod, v(32)),
        forbidden(
            "runAsUser=0",
            r#"containers "c", "d" must not set runAsUser=0"#
        )
    );
    // Not emulated: the user-namespace relaxation (alpha gate off), so hostUsers changes nothing.
    let pod = json!({"spec": {"hostUsers": false, "securityContext": {"runAsUser": 0}, "containers": [{"name": "a"}]}});
    assert!(check("runAsUser", &pod, v(32)).is_some());
    // runAsUser is a v1.23 check: policy v1.22 does not have it.
    let r122 = lv(Level::Restricted, PolicyVersion::Minor(22));
    assert!(!checks::check_ids(r122, v(32)).contains(&"runAsUser"));
}

#[test]
fn selinux_options() {
    let pod = json!({"spec": {"securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
        "containers": [
            {"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_t"}}},
            {"name": "b", "securityContext": {"seLinuxOptions": {"type": "container_init_t"}}},
            {"name": "c", "securityContext": {"seLinuxOptions": {"type": "container_kvm_t"}}},
            {"name": "d", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
            {"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}},
            {"name": "f", "securityContext": {"seLinuxOptions": {"user": "bar"}}},
            {"name": "g", "securityContext": {"seLinuxOptions": {"role": "baz"}}}]}});
    assert_eq!(
        check("seLinuxOptions", &pod, v(32)),
        forbidden(
            "seLinuxOptions",
            r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#
        )
    );
    // container_engine_t is allowed from policy v1.31 only.
    let b130 = lv(Level::Baseline, PolicyVersion::Minor(30));
    assert!(evaluate(b130, &view_of(&pod), v(32))
        .detail()
        .contains(r#"containers "d", "e", "f", "g""#));
    let user_only = json!({"spec": {"securityContext": {"seLinuxOptions": {"user": "bar"}}}});
    assert_eq!(
        check("seLinuxOptions", &user_only, v(32)),
        forbidden(
            "seLinuxOptions",
            "pod set forbidden securityContext.seLinuxOptions: user may not be set"
        )
    );
    // Before 1.26 (PR #113111) the user and role were only named next to a bad type.
    assert_eq!(
        check("seLinuxOptions", &user_only, v(25)),
        forbidden(
            "seLinuxOptions",
            "pod set forbidden securityContext.seLinuxOptions: "
        )
    );
    let bad_type = json!({"spec": {"securityContext": {"seLinuxOptions": {"type": "bad"}}}});
    assert_eq!(
        check("seLinuxOptions", &bad_type, v(25)),
        forbidden(
            "seLinuxOptions",
            r#"pod set forbidden securityContext.seLinuxOptions: type "bad""#
        )
    );
}

#[test]
fn seccomp_baseline_and_restricted() {
    let old = |pod: &Value| {
        let b118 = lv(Level::Baseline, PolicyVersion::Minor(18));
        evaluate(b118, &view_of(pod), v(32)).detail()
    };
    let pod = json!({"metadata": {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}});
    assert_eq!(
        old(&pod),
        r#"seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")"#
    );
    let pod = json!({"metadata": {"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/b": "unknown",
        "container.seccomp.security.alpha.kubernetes.io/c": "runtime/default"}},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
    assert_eq!(
        old(&pod),
        r#"seccompProfile (forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", container.seccomp.security.alpha.kubernetes.io/b="unknown", seccomp.security.alpha.kubernetes.io/pod="unconfined")"#
    );
    let pod = json!({"spec": {"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [
        {"name": "a"}, {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
        {"name": "d", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
        {"name": "e", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}]}});
    let want = forbidden(
        "seccompProfile",
        r#"pod and containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined""#,
    );
    assert_eq!(check("seccompProfile_baseline", &pod, v(32)), want);
    assert_eq!(check("seccompProfile_restricted", &pod, v(32)), want);
    let pod = json!({"spec": {"containers": [{"name": "c"}]}});
    assert_eq!(
        check("seccompProfile_restricted", &pod, v(32)),
        forbidden(
            "seccompProfile",
            r#"pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#
        )
    );
    let pod = json!({"spec": {"containers": [
        {"name": "a"}, {"name": "b", "securityContext": {}},
        {"name": "d", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
        {"name": "e", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}}]}});
    assert_eq!(
        check("seccompProfile_restricted", &pod, v(32)),
        forbidden(
            "seccompProfile",
            r#"pod or containers "a", "b" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#
        )
    );
    let pod = json!({"spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "a"}]}});
    assert_eq!(check("seccompProfile_restricted", &pod, v(32)), None);
    // Baseline allows no profile at all.
    let pod = json!({"spec": {"containers": [{"name": "a"}]}});
    assert_eq!(check("seccompProfile_baseline", &pod, v(32)), None);
}

#[test]
fn sysctls_per_policy_version() {
    let pod = json!({"spec": {"securityContext": {"sysctls": [{"name": "a"}, {"name": "b"}]}}});
    assert_eq!(
        check("sysctls", &pod, v(32)),
        forbidden("forbidden sysctls", "a, b")
    );
    let b = |minor| lv(Level::Baseline, PolicyVersion::Minor(minor));
    for (name, first) in [
        ("kernel.shm_rmid_forced", 0),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_fin_timeout", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_wmem", 32),
    ] {
        let pod = json!({"spec": {"securityContext": {"sysctls": [{"name": name, "value": "1"}]}}});
        let view = view_of(&pod);
        if first > 0 {
            assert_eq!(
                evaluate(b(first - 1), &view, v(32)).detail(),
                format!("forbidden sysctls ({name})")
            );
        }
        assert!(evaluate(b(first), &view, v(32)).allowed(), "{name}");
        // A 1.31 server does not know the v1.32 list, even when asked for v1.32 or latest.
        if first == 32 {
            assert!(!evaluate(b(32), &view, v(31)).allowed());
            assert!(!evaluate(baseline(), &view, v(31)).allowed());
        }
    }
}

#[test]
fn allow_privilege_escalation() {
    let pod = json!({"spec": {"containers": [
        {"name": "a"}, {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": {"allowPrivilegeEscalation": true}},
        {"name": "d", "securityContext": {"allowPrivilegeEscalation": false}}]}});
    assert_eq!(
        check("allowPrivilegeEscalation", &pod, v(32)),
        forbidden(
            "allowPrivilegeEscalation != false",
            r#"containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false"#
        )
    );
    let windows = json!({"spec": {"os": {"name": "windows"}, "containers": [{"name": "a"}]}});
    assert_eq!(check("allowPrivilegeEscalation", &windows, v(32)), None);
    // The exemption ships in 1.25: a 1.24 server checks Windows pods at latest.
    assert!(!checks::evaluate(restricted(), &view_of(&windows), v(24))
        .iter()
        .all(|f| f.reason != "allowPrivilegeEscalation != false"));
}

// ---------------------------------------------------------------------------
// Levels, versions and composition.

#[test]
fn check_order_and_overrides() {
    assert_eq!(
        checks::check_ids(baseline(), v(32)),
        [
            "appArmorProfile",
            "capabilities_baseline",
            "hostNamespaces",
            "hostPathVolumes",
            "hostPorts",
            "privileged",
            "procMount",
            "seLinuxOptions",
            "seccompProfile_baseline",
            "sysctls",
            "windowsHostProcess"
        ]
    );
    assert_eq!(
        checks::check_ids(restricted(), v(32)),
        [
            "appArmorProfile",
            "hostNamespaces",
            "hostPorts",
            "privileged",
            "procMount",
            "seLinuxOptions",
            "sysctls",
            "windowsHostProcess",
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "restrictedVolumes",
            "runAsNonRoot",
            "runAsUser",
            "seccompProfile_restricted"
        ]
    );
    // Policy v1.18: no restricted seccomp check yet, so the baseline one is not overridden.
    let r118 = lv(Level::Restricted, PolicyVersion::Minor(18));
    let ids = checks::check_ids(r118, v(32));
    assert!(ids.contains(&"seccompProfile_baseline") && ids.contains(&"capabilities_baseline"));
    assert!(!ids.contains(&"hostPathVolumes"));
    // kube-apiserver 1.23 ran every baseline check at restricted too (PR #107698 is 1.24).
    let ids = checks::check_ids(restricted(), v(23));
    assert_eq!(ids.len(), 17);
    assert_eq!(checks::check_ids(restricted(), v(24)).len(), 14);
    let pod = json!({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}], "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
    assert_eq!(
        evaluate(restricted(), &view_of(&pod), v(23)).detail(),
        r#"hostPath volumes (volume "h"), restricted volume types (volume "h" uses restricted volume type "hostPath")"#
    );
    assert_eq!(
        evaluate(restricted(), &view_of(&pod), v(24)).detail(),
        r#"restricted volume types (volume "h" uses restricted volume type "hostPath")"#
    );
    assert!(evaluate(LevelVersion::PRIVILEGED, &view_of(&pod), v(32)).allowed());
}

#[test]
fn the_task_examples_read_as_kube_apiserver_prints_them() {
    // A 1.29 server (annotations only) and the restricted seccomp detail.
    let pod = json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {"containers": [{"name": "c"}]}});
    let e = admit_pod(
        &labels(&[(ENFORCE_LEVEL_LABEL, "baseline")]),
        &pod,
        None,
        v(29),
    )
    .unwrap();
    assert_eq!(
        e.forbidden.as_deref(),
        Some(
            r#"violates PodSecurity "baseline:latest": forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c="unconfined")"#
        )
    );
    let pod = json!({"spec": {"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true}}]}});
    let e = admit_pod(
        &labels(&[(WARN_LEVEL_LABEL, "restricted")]),
        &pod,
        None,
        v(32),
    )
    .unwrap();
    assert_eq!(
        e.warnings,
        [
            r#"would violate PodSecurity "restricted:latest": seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        ]
    );
    assert_eq!(e.forbidden, None);
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn labels_to_policy_with_upstream_fall_backs() {
    let (p, e) = policy_from_labels(&BTreeMap::new(), v(32));
    assert_eq!(p, Policy::default());
    assert!(e.is_empty() && p.fully_privileged());
    let (p, e) = policy_from_labels(
        &labels(&[
            (ENFORCE_LEVEL_LABEL, "baseline"),
            (ENFORCE_VERSION_LABEL, "v1.24"),
            (AUDIT_LEVEL_LABEL, "restricted"),
            (WARN_LEVEL_LABEL, "restricted"),
            (WARN_VERSION_LABEL, "latest"),
        ]),
        v(32),
    );
    assert!(e.is_empty());
    assert_eq!(p.enforce.to_string(), "baseline:v1.24");
    assert_eq!(p.audit.to_string(), "restricted:latest");
    assert_eq!(p.warn.to_string(), "restricted:latest");
    // Invalid values: enforce fails closed, audit and warn fail open, versions are latest.
    let (p, e) = policy_from_labels(
        &labels(&[
            (WARN_LEVEL_LABEL, "loud"),
            (ENFORCE_LEVEL_LABEL, "strict"),
            (ENFORCE_VERSION_LABEL, "1.24"),
            (AUDIT_LEVEL_LABEL, "x"),
            (AUDIT_VERSION_LABEL, "v1.024"),
        ]),
        v(32),
    );
    assert_eq!(p.enforce.to_string(), "restricted:latest");
    assert_eq!(p.audit.to_string(), "privileged:latest");
    assert_eq!(p.warn.to_string(), "privileged:latest");
    let texts: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        texts,
        [
            r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#,
            r#"metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "1.24": must be "latest" or "v1.x""#,
            r#"metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "x": must be one of privileged, baseline, restricted"#,
            r#"metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: "v1.024": must be "latest" or "v1.x""#,
            r#"metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "loud": must be one of privileged, baseline, restricted"#,
        ]
    );
    for ok in ["latest", "v1.0", "v1.9", "v1.25", "v1.999"] {
        assert!(PolicyVersion::parse(ok).is_some(), "{ok}");
    }
    for bad in [
        "",
        "v1",
        "v1.",
        "v2.0",
        "1.25",
        "v1.01",
        "v1.x",
        "v1.-1",
        "v1.99999999999999999999",
        "Latest",
    ] {
        assert!(PolicyVersion::parse(bad).is_none(), "{bad}");
    }
    // Warn defaults to a stricter enforce level from 1.26 (PR #113491), with its version.
    let l = labels(&[
        (ENFORCE_LEVEL_LABEL, "restricted"),
        (ENFORCE_VERSION_LABEL, "v1.20"),
    ]);
    assert_eq!(
        policy_from_labels(&l, v(26)).0.warn.to_string(),
        "restricted:v1.20"
    );
    assert_eq!(
        policy_from_labels(&l, v(25)).0.warn.to_string(),
        "privileged:latest"
    );
    let l = labels(&[
        (ENFORCE_LEVEL_LABEL, "restricted"),
        (WARN_VERSION_LABEL, "v1.22"),
    ]);
    assert_eq!(
        policy_from_labels(&l, v(32)).0.warn.to_string(),
        "restricted:v1.22"
    );
    let l = labels(&[
        (ENFORCE_LEVEL_LABEL, "restricted"),
        (WARN_LEVEL_LABEL, "baseline"),
    ]);
    assert_eq!(
        policy_from_labels(&l, v(32)).0.warn.to_string(),
        "baseline:latest"
    );
    // An invalid enforce level does not set the warn level.
    let l = labels(&[(ENFORCE_LEVEL_LABEL, "bad")]);
    assert_eq!(
        policy_from_labels(&l, v(32)).0.warn.to_string(),
        "privileged:latest"
    );
}

#[test]
fn namespace_create_and_update() {
    let nv = |new: &[(&str, &str)], old: Option<&[(&str, &str)]>| {
        let old = old.map(labels);
        validate_namespace(&labels(new), old.as_ref(), v(32))
    };
    let r = (ENFORCE_LEVEL_LABEL, "restricted");
    let b = (ENFORCE_LEVEL_LABEL, "baseline");
    let v10 = (ENFORCE_VERSION_LABEL, "v1.0");
    assert_eq!(
        nv(&[(ENFORCE_LEVEL_LABEL, "privileged"), v10], None),
        NamespaceVerdict::Allowed
    );
    assert_eq!(nv(&[r], None), NamespaceVerdict::Allowed);
    match nv(&[(ENFORCE_LEVEL_LABEL, "unknown")], None) {
        NamespaceVerdict::Invalid(e) => assert_eq!(e[0].detail, LEVEL_DETAIL),
        other => panic!("{other:?}"),
    }
    match nv(
        &[
            (ENFORCE_LEVEL_LABEL, "privileged"),
            (ENFORCE_VERSION_LABEL, "unknown"),
        ],
        None,
    ) {
        NamespaceVerdict::Invalid(e) => assert_eq!(
            e[0].message(),
            r#"Invalid value: "unknown": must be "latest" or "v1.x""#
        ),
        other => panic!("{other:?}"),
    }
    // Updates that do not tighten the enforce level.
    assert_eq!(nv(&[r, v10], Some(&[r, v10])), NamespaceVerdict::Allowed);
    let bad = [(ENFORCE_LEVEL_LABEL, "unknown")];
    assert_eq!(nv(&bad, Some(&bad)), NamespaceVerdict::Allowed);
    assert_eq!(nv(&[b, v10], Some(&[r, v10])), NamespaceVerdict::Allowed);
    assert_eq!(nv(&[b], Some(&[r])), NamespaceVerdict::Allowed);
    assert_eq!(
        nv(&[(ENFORCE_LEVEL_LABEL, "privileged")], Some(&[r, v10])),
        NamespaceVerdict::Allowed
    );
    assert_eq!(nv(&[], Some(&[r, v10])), NamespaceVerdict::Allowed);
    // New label errors are refused.
    assert!(matches!(
        nv(&bad, Some(&[r, v10])),
        NamespaceVerdict::Invalid(_)
    ));
    // Tightening checks the pods.
    assert_eq!(
        nv(&[r], Some(&[b])),
        NamespaceVerdict::CheckPods(restricted())
    );
    assert_eq!(nv(&[b], Some(&[])), NamespaceVerdict::CheckPods(baseline()));
    assert_eq!(
        nv(&[b], Some(&[b, v10])),
        NamespaceVerdict::CheckPods(baseline()),
        "a version change with the same level is checked"
    );
}

fn named(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

fn owned(name: &str, uid: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "ownerReferences": [{"uid": uid, "controller": true}]}, "spec": spec})
}

#[test]
fn existing_pods_are_summarised_like_upstream() {
    let host = json!({"hostNetwork": true, "containers": [{"name": "c"}]});
    let privileged =
        json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]});
    let fine = json!({"containers": [{"name": "c"}]});
    let pods = vec![
        named("zz", host.clone()),
        named("aa", host.clone()),
        named("mm", host.clone()),
        named("p", privileged.clone()),
        named("ok", fine.clone()),
    ];
    let w = existing_pods_warnings(
        "test",
        baseline(),
        &pods,
        v(32),
        MAX_PODS_TO_CHECK,
        &mut || false,
    );
    assert_eq!(
        w,
        [
            r#"existing pods in namespace "test" violate the new PodSecurity enforce level "baseline:latest""#,
            "aa (and 2 other pods): host namespaces",
            "p: privileged",
        ]
    );
    let w = existing_pods_warnings(
        "test",
        baseline(),
        &pods[..2],
        v(32),
        MAX_PODS_TO_CHECK,
        &mut || false,
    );
    assert_eq!(w[1], "aa (and 1 other pod): host namespaces");
    // Bound on the number of pods.
    let w = existing_pods_warnings("test", baseline(), &pods, v(32), 4, &mut || false);
    assert_eq!(
        w[0],
        "new PodSecurity enforce level only checked against the first 4 of 5 existing pods"
    );
    // The time limit: checked pods count up to the one during which time ran out.
    let mut calls = 0;
    let w = existing_pods_warnings(
        "test",
        baseline(),
        &pods,
        v(32),
        MAX_PODS_TO_CHECK,
        &mut || {
            calls += 1;
            calls >= 2
        },
    );
    assert_eq!(
        w,
        [
            "new PodSecurity enforce level only checked against the first 2 of 5 existing pods",
            r#"existing pods in namespace "test" violate the new PodSecurity enforce level "baseline:latest""#,
            "aa (and 1 other pod): host namespaces",
        ]
    );
    // Pods of one controller after one of each.
    let pods = vec![
        owned("rs1a", "1", host.clone()),
        owned("rs1b", "1", host.clone()),
        owned("rs1c", "1", host.clone()),
        owned("rs2a", "2", privileged.clone()),
        owned("rs2b", "2", privileged.clone()),
        named(
            "u1",
            json!({"hostPID": true, "containers": [{"name": "c"}]}),
        ),
    ];
    let w = existing_pods_warnings("test", baseline(), &pods, v(32), 3, &mut || false);
    // rs1a, rs2a and u1 are checked; rs1a and u1 share "host namespaces" (one line, under the
    // lexically first pod).
    assert_eq!(
        w,
        [
            "new PodSecurity enforce level only checked against the first 3 of 6 existing pods",
            r#"existing pods in namespace "test" violate the new PodSecurity enforce level "baseline:latest""#,
            "rs1a (and 1 other pod): host namespaces",
            "rs2a: privileged",
        ]
    );
    assert!(existing_pods_warnings(
        "test",
        baseline(),
        &[named("ok", fine)],
        v(32),
        10,
        &mut || false
    )
    .is_empty());
}

#[test]
fn pod_updates_are_checked_when_significant() {
    let pod = json!({"metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {
            "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
            "container.seccomp.security.alpha.kubernetes.io/c": "runtime/default"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.28"}]},
        "status": {"phase": "Pending"}});
    let changed = |f: &dyn Fn(&mut Value)| {
        let mut p = pod.clone();
        f(&mut p);
        p
    };
    let status = changed(&|p| p["status"]["phase"] = json!("Running"));
    let label = changed(&|p| p["metadata"]["labels"]["x"] = json!("y"));
    let image = changed(&|p| p["spec"]["containers"][0]["image"] = json!("busybox:1.29"));
    let added = changed(&|p| {
        p["spec"]["initContainers"] = json!([{"name": "i"}]);
    });
    let ephemeral = changed(&|p| {
        p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox:1.28"}]);
    });
    let privileged =
        changed(&|p| p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true}));
    let apparmor = changed(&|p| {
        p["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/c"] =
            json!("unconfined")
    });
    let pod_seccomp = changed(&|p| {
        p["metadata"]["annotations"]["seccomp.security.alpha.kubernetes.io/pod"] =
            json!("unconfined")
    });
    for version in [v(23), v(32)] {
        assert!(!significant_pod_update(&status, &pod, version));
        assert!(!significant_pod_update(&label, &pod, version));
        for p in [
            &image,
            &added,
            &ephemeral,
            &privileged,
            &apparmor,
            &pod_seccomp,
        ] {
            assert!(significant_pod_update(p, &pod, version), "{p}");
        }
    }
    // The upstream annotation rows on their own: an update that changes only a seccomp
    // annotation of a container not in the pod is not significant anywhere.
    let stray = changed(&|p| {
        p["metadata"]["annotations"]["container.seccomp.security.alpha.kubernetes.io/gone"] =
            json!("unconfined")
    });
    assert!(significant_pod_update(&stray, &pod, v(32)));
    let e = admit_pod(
        &labels(&[(ENFORCE_LEVEL_LABEL, "baseline")]),
        &privileged,
        Some(&pod),
        v(32),
    )
    .unwrap();
    assert!(e.forbidden.unwrap().contains("privileged"));
    let e = admit_pod(
        &labels(&[(ENFORCE_LEVEL_LABEL, "baseline")]),
        &label,
        Some(&pod),
        v(32),
    )
    .unwrap();
    assert_eq!(e, Evaluation::default());
}

#[test]
fn pod_admission_modes_and_audit_annotations() {
    let pod = json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true, "containers": [{"name": "c"}]}});
    // Fully privileged: allowed, the enforce policy recorded.
    let e = admit_pod(&BTreeMap::new(), &pod, None, v(32)).unwrap();
    assert_eq!(e.forbidden, None);
    assert!(e.warnings.is_empty());
    assert_eq!(
        e.audit_annotations,
        BTreeMap::from([(
            ENFORCE_POLICY_ANNOTATION.to_string(),
            "privileged:latest".to_string()
        )])
    );
    let all = labels(&[
        (ENFORCE_LEVEL_LABEL, "baseline"),
        (AUDIT_LEVEL_LABEL, "baseline"),
        (WARN_LEVEL_LABEL, "baseline"),
    ]);
    let e = admit_pod(&all, &pod, None, v(32)).unwrap();
    assert_eq!(
        e.forbidden.as_deref(),
        Some(r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#)
    );
    assert!(e.warnings.is_empty(), "no warnings on a refused request");
    assert_eq!(
        e.audit_annotations[AUDIT_VIOLATIONS_ANNOTATION],
        r#"would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#
    );
    assert_eq!(
        e.audit_annotations[ENFORCE_POLICY_ANNOTATION],
        "baseline:latest"
    );
    let warn_audit = labels(&[
        (AUDIT_LEVEL_LABEL, "restricted"),
        (AUDIT_VERSION_LABEL, "v1.24"),
        (WARN_LEVEL_LABEL, "baseline"),
    ]);
    let e = admit_pod(&warn_audit, &pod, None, v(32)).unwrap();
    assert_eq!(e.forbidden, None);
    assert_eq!(
        e.warnings,
        [r#"would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#]
    );
    assert!(e.audit_annotations[AUDIT_VIOLATIONS_ANNOTATION]
        .starts_with(r#"would violate PodSecurity "restricted:v1.24": host namespaces (hostNetwork=true), allowPrivilegeEscalation != false"#));
    assert_eq!(
        e.audit_annotations[ENFORCE_POLICY_ANNOTATION],
        "privileged:latest"
    );
    // Unparseable labels: the policy still applies (enforce fails closed), the error is recorded.
    let e = admit_pod(
        &labels(&[(ENFORCE_LEVEL_LABEL, "bogus")]),
        &pod,
        None,
        v(32),
    )
    .unwrap();
    assert!(e
        .forbidden
        .unwrap()
        .starts_with(r#"violates PodSecurity "restricted:latest": host namespaces"#));
    assert_eq!(
        e.audit_annotations[ERROR_ANNOTATION],
        r#"Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "bogus": must be one of privileged, baseline, restricted"#
    );
    // A wrong JSON type in a field a check reads is refused as undecodable.
    let bad = json!({"spec": {"hostNetwork": "yes"}});
    assert!(admit_pod(&all, &bad, None, v(32)).is_err());
}

#[test]
fn workloads_warn_and_audit_but_never_enforce() {
    let ds = json!({"metadata": {"name": "d"}, "spec": {"template": {
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {"hostNetwork": true, "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}}});
    let enforce = labels(&[(ENFORCE_LEVEL_LABEL, "baseline")]);
    let e = admit_workload(&enforce, "apps", "daemonsets", &ds, v(32)).unwrap();
    assert_eq!(e.forbidden, None);
    assert_eq!(
        e.warnings,
        [
            r#"would violate PodSecurity "baseline:latest": forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/c="unconfined""), host namespaces (hostNetwork=true)"#
        ]
    );
    assert!(!e.audit_annotations.contains_key(ENFORCE_POLICY_ANNOTATION));
    // Templates got hostPorts defaulted up to 1.27 (PR #117696); 1.25 has no warn default.
    let warn = labels(&[(WARN_LEVEL_LABEL, "baseline")]);
    let e = admit_workload(&warn, "apps", "deployments", &ds, v(27)).unwrap();
    assert!(
        e.warnings[0].ends_with(
            r#"host namespaces (hostNetwork=true), hostPort (container "c" uses hostPort 80)"#
        ),
        "{:?}",
        e.warnings
    );
    let e = admit_workload(&enforce, "apps", "deployments", &ds, v(25)).unwrap();
    assert_eq!(e, Evaluation::default());
    // Audit only.
    let audit = labels(&[(AUDIT_LEVEL_LABEL, "baseline")]);
    let e = admit_workload(&audit, "apps", "replicasets", &ds, v(32)).unwrap();
    assert!(e.warnings.is_empty());
    assert!(e.audit_annotations[AUDIT_VIOLATIONS_ANNOTATION].contains("host namespaces"));
    // Other resources have no template.
    assert_eq!(
        admit_workload(&warn, "", "services", &ds, v(32)).unwrap(),
        Evaluation::default()
    );
    assert_eq!(
        template_path("batch", "cronjobs"),
        Some(&["spec", "jobTemplate", "spec", "template"][..])
    );
    let rc = json!({"spec": {}});
    assert_eq!(
        admit_workload(&warn, "", "replicationcontrollers", &rc, v(32)).unwrap(),
        Evaluation::default()
    );
    let bad = json!({"spec": {"template": {"spec": {"containers": {}}}}});
    match admit_workload(&warn, "apps", "daemonsets", &bad, v(32)) {
        Err(ShapeError::WrongType { path, .. }) => {
            assert_eq!(path, "spec.template.spec.containers")
        }
        other => panic!("{other:?}"),
    }
}

/// Every value of every upstream fixture replaced in turn by values of other JSON types: the
/// admission either decides or reports the wrong shape, and never panics.
#[test]
fn odd_values_anywhere_are_decided_or_refused_never_a_panic() {
    fn paths(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    paths(x, p, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    out.push(p.clone());
                    paths(x, p, out);
                }
            }
            _ => {}
        }
    }
    let text = include_str!("../../testdata/pod-security/fixtures.json");
    let data: Value = serde_json::from_str(text).expect("fixtures.json");
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!("x"),
        json!([]),
        json!([null, 0, {}]),
        json!({}),
    ];
    let ns = labels(&[
        (ENFORCE_LEVEL_LABEL, "restricted"),
        (AUDIT_LEVEL_LABEL, "baseline"),
        (AUDIT_VERSION_LABEL, "v1.0"),
        (WARN_LEVEL_LABEL, "baseline"),
        (WARN_VERSION_LABEL, "v1.18"),
    ]);
    let (mut decided, mut refused) = (0, 0);
    for pod in data["pods"].as_object().unwrap().values() {
        let mut ps = Vec::new();
        paths(pod, String::new(), &mut ps);
        for p in &ps {
            for o in &odd {
                let mut m = pod.clone();
                *m.pointer_mut(p).unwrap() = o.clone();
                match admit_pod(&ns, &m, Some(pod), v(32)) {
                    Ok(_) => decided += 1,
                    Err(_) => refused += 1,
                }
                let ds = json!({"spec": {"template": m}});
                let _ = admit_workload(&ns, "apps", "daemonsets", &ds, v(23));
            }
        }
    }
    assert!(
        decided > 1000 && refused > 1000,
        "{decided} decided, {refused} refused"
    );
}
