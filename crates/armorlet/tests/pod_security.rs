//! Pod Security Admission with the real kubectl against `armorlet up` (issue 5, item 4): the
//! `pod-security.kubernetes.io/{enforce,warn,audit}` namespace labels, kubectl's output for a
//! forbidden pod and for a warning, the audit log's annotations, the warnings about existing
//! pods when a namespace's enforce level tightens (also `kubectl label --dry-run=server`),
//! invalid labels, pod updates, DaemonSets (warned about, their pods enforced), and the
//! emulated releases on either side of the changes (1.22 without the plugin, 1.23 without the
//! restricted overrides, 1.29 with the annotation-only AppArmor check).
//!
//! Expected texts are kube-apiserver 1.32's (staging/src/k8s.io/pod-security-admission) as
//! kubectl 1.32 prints them. Needs root and crun (the 1.32 cluster runs the pods that are
//! admitted); the other releases run a control plane only.

mod common;

use common::*;
use serde_json::Value;

/// `kubectl ARGS` with `yaml` in a file named `name` (`-f` points at it): exit code, stdout,
/// stderr.
fn with_file(c: &Cluster, name: &str, yaml: &str, args: &[&str]) -> (i32, String, String) {
    let path = c.dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    let path = path.to_str().unwrap().to_owned();
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-f", &path]);
    run(c, &a)
}

fn run(c: &Cluster, args: &[&str]) -> (i32, String, String) {
    let out = c.kubectl(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pod(name: &str, annotations: &str, pod_sc: &str, container_sc: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  securityContext: {{{pod_sc}}}\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [sleep, \"3600\"]\n    securityContext: {{{container_sc}}}\n"
    )
}

const UNCONFINED_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/c: unconfined";

/// The deprecation warning the 1.30+ create path gives an AppArmor annotation.
const APPARMOR_DEPRECATED: &str = "Warning: metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]: deprecated since v1.30; use the \"appArmorProfile\" field instead\n";

/// The restricted level's complaints about a pod with no security settings.
fn restricted_detail(c: &str) -> String {
    format!(
        "allowPrivilegeEscalation != false (container \"{c}\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"{c}\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"{c}\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"{c}\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    )
}

fn labels(c: &Cluster, ns: &str) -> Value {
    c.kubectl_json(&["get", "ns", ns]).unwrap()["metadata"]["labels"].clone()
}

/// The audit events of `verb` on pod `ns/name`, once the writer has flushed them.
fn audit_events(c: &Cluster, ns: &str, name: &str) -> Vec<Value> {
    c.wait_for(&format!("the audit event of pod {ns}/{name}"), || {
        let text = std::fs::read_to_string(c.data().join("audit/api.log")).ok()?;
        let events: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["objectRef"]["resource"] == "pods"
                    && e["objectRef"]["namespace"] == ns
                    && e["objectRef"]["name"] == name
                    && e["verb"] == "create"
            })
            .collect();
        (!events.is_empty()).then_some(events)
    })
}

#[test]
fn enforce_warn_audit_and_relabel() {
    let c = Cluster::new("crun");
    // Without labels a namespace is privileged: anything goes, and the audit event says so.
    c.kubectl_ok(&["create", "ns", "open"]);
    let (code, _, err) = with_file(
        &c,
        "open.yaml",
        &pod(
            "free",
            UNCONFINED_ANNOTATION,
            "",
            "capabilities: {add: [NET_ADMIN]}",
        ),
        &["apply", "-n", "open"],
    );
    assert_eq!((code, err.as_str()), (0, APPARMOR_DEPRECATED));
    let e = &audit_events(&c, "open", "free")[0];
    assert_eq!(
        e["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
    assert!(e["annotations"]
        .get("pod-security.kubernetes.io/audit-violations")
        .is_none());

    // enforce=baseline: the AppArmor annotation (synced to the field by the 1.30+ create path,
    // so both are named), an Unconfined seccomp field and a pod-level Unconfined AppArmor field
    // are refused with kube-apiserver's messages.
    c.kubectl_ok(&["create", "ns", "base"]);
    let out = c.kubectl_ok(&[
        "label",
        "ns",
        "base",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    assert_eq!(out, "namespace/base labeled\n");
    let (code, out, err) = with_file(
        &c,
        "p.yaml",
        &pod("p", UNCONFINED_ANNOTATION, "", ""),
        &["create", "-n", "base"],
    );
    assert_eq!(code, 1, "{out}");
    let path = c.dir.path().join("p.yaml");
    assert_eq!(
        err,
        format!(
            "{APPARMOR_DEPRECATED}Error from server (Forbidden): error when creating \"{}\": pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": forbidden AppArmor profiles (container \"c\" and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"\")\n",
            path.display()
        )
    );
    let (code, _, err) = run(&c, &["get", "pod", "p", "-n", "base", "-o", "name"]);
    assert_eq!(code, 1, "the refused pod is not stored: {err}");
    let (code, _, err) = with_file(
        &c,
        "s.yaml",
        &pod("s", "", "", "seccompProfile: {type: Unconfined}"),
        &["create", "-n", "base"],
    );
    assert_eq!(code, 1);
    assert!(
        err.ends_with("pods \"s\" is forbidden: violates PodSecurity \"baseline:latest\": seccompProfile (container \"c\" must not set securityContext.seccompProfile.type to \"Unconfined\")\n"),
        "{err}"
    );
    let (code, _, err) = with_file(
        &c,
        "a.yaml",
        &pod("a", "", "appArmorProfile: {type: Unconfined}", ""),
        &["create", "-n", "base"],
    );
    assert_eq!(code, 1);
    assert!(
        err.ends_with("pods \"a\" is forbidden: violates PodSecurity \"baseline:latest\": forbidden AppArmor profiles (pod and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"\")\n"),
        "{err}"
    );
    // RuntimeDefault is fine at baseline; the pod runs.
    let (code, _, err) = with_file(
        &c,
        "ok.yaml",
        &pod(
            "ok",
            "",
            "seccompProfile: {type: RuntimeDefault}",
            "appArmorProfile: {type: RuntimeDefault}",
        ),
        &["create", "-n", "base"],
    );
    assert_eq!((code, err.as_str()), (0, ""));

    // warn=restricted: created, with kube-apiserver's warning, and it runs.
    c.kubectl_ok(&["create", "ns", "warned"]);
    c.kubectl_ok(&[
        "label",
        "ns",
        "warned",
        "pod-security.kubernetes.io/warn=restricted",
    ]);
    let (code, out, err) = run(
        &c,
        &[
            "run",
            "q",
            "-n",
            "warned",
            "--image=busybox:1.28",
            "--",
            "sleep",
            "3600",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "pod/q created\n");
    assert_eq!(
        err,
        format!(
            "Warning: would violate PodSecurity \"restricted:latest\": {}\n",
            restricted_detail("q")
        )
    );
    c.wait_for("q to run", || {
        let p = c.kubectl_json(&["get", "pod", "q", "-n", "warned"])?;
        (p["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(())
    });

    // A restricted pod is admitted under enforce=restricted and runs.
    c.kubectl_ok(&["create", "ns", "strict"]);
    c.kubectl_ok(&[
        "label",
        "ns",
        "strict",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let (code, _, err) = with_file(
        &c,
        "r.yaml",
        &pod(
            "r",
            "",
            "runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}",
            "allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}",
        ),
        &["create", "-n", "strict"],
    );
    assert_eq!((code, err.as_str()), (0, ""));
    c.wait_for("r to run", || {
        let p = c.kubectl_json(&["get", "pod", "r", "-n", "strict"])?;
        (p["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(())
    });
    // The restricted hostPath check supersedes the baseline one (1.24+): one complaint.
    let host_path = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: h\nspec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers:\n  - name: c\n    image: busybox:1.28\n    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n  volumes:\n  - name: v\n    hostPath: {path: /tmp}\n";
    let (code, _, err) = with_file(&c, "h.yaml", host_path, &["create", "-n", "strict"]);
    assert_eq!(code, 1);
    assert!(
        err.ends_with("pods \"h\" is forbidden: violates PodSecurity \"restricted:latest\": restricted volume types (volume \"v\" uses restricted volume type \"hostPath\")\n"),
        "{err}"
    );

    // audit=restricted: admitted without a word, the violations in the audit log.
    c.kubectl_ok(&["create", "ns", "audited"]);
    c.kubectl_ok(&[
        "label",
        "ns",
        "audited",
        "pod-security.kubernetes.io/audit=restricted",
        "pod-security.kubernetes.io/audit-version=v1.32",
    ]);
    let (code, _, err) = run(
        &c,
        &[
            "run",
            "x",
            "-n",
            "audited",
            "--image=busybox:1.28",
            "--",
            "sleep",
            "3600",
        ],
    );
    assert_eq!((code, err.as_str()), (0, ""));
    let e = &audit_events(&c, "audited", "x")[0];
    assert_eq!(e["responseStatus"]["code"], 201);
    assert_eq!(
        e["annotations"]["pod-security.kubernetes.io/audit-violations"],
        format!(
            "would violate PodSecurity \"restricted:v1.32\": {}",
            restricted_detail("x")
        )
    );
    assert_eq!(
        e["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
    // The refused pod's event has the enforce policy too.
    let e = &audit_events(&c, "base", "p")[0];
    assert_eq!(e["responseStatus"]["code"], 403);
    assert_eq!(
        e["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "baseline:latest"
    );

    // Tightening a namespace warns about its pods, grouped by their violations; a server-side
    // dry run warns the same and changes nothing.
    run(
        &c,
        &[
            "run",
            "q2",
            "-n",
            "warned",
            "--image=busybox:1.28",
            "--",
            "sleep",
            "3600",
        ],
    );
    let (code, out, err) = run(
        &c,
        &[
            "label",
            "ns",
            "warned",
            "pod-security.kubernetes.io/enforce=restricted",
            "--dry-run=server",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "namespace/warned labeled (server dry run)\n");
    let relabel_warnings = "Warning: existing pods in namespace \"warned\" violate the new PodSecurity enforce level \"restricted:latest\"\nWarning: q (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile\n";
    assert_eq!(err, relabel_warnings);
    assert!(labels(&c, "warned")
        .get("pod-security.kubernetes.io/enforce")
        .is_none());
    let (code, out, err) = run(
        &c,
        &[
            "label",
            "ns",
            "warned",
            "pod-security.kubernetes.io/enforce=restricted",
        ],
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "namespace/warned labeled\n", relabel_warnings)
    );
    assert_eq!(
        labels(&c, "warned")["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // Relaxing it again checks nothing.
    let (_, _, err) = run(
        &c,
        &[
            "label",
            "ns",
            "warned",
            "pod-security.kubernetes.io/enforce=baseline",
            "--overwrite",
        ],
    );
    assert_eq!(err, "");

    // Invalid labels are refused on update and on create.
    let (code, _, err) = run(
        &c,
        &[
            "label",
            "ns",
            "warned",
            "pod-security.kubernetes.io/enforce-version=v2",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "The Namespace \"warned\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: \"v2\": must be \"latest\" or \"v1.x\"\n"
    );
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: typo\n  labels:\n    pod-security.kubernetes.io/enforce: restrictd\n    pod-security.kubernetes.io/warn: loud\n";
    let (code, _, err) = with_file(&c, "ns.yaml", ns, &["create"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "The Namespace \"typo\" is invalid: \n* metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"restrictd\": must be one of privileged, baseline, restricted\n* metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"loud\": must be one of privileged, baseline, restricted\n"
    );

    // Pod updates: only significant ones are checked. `free` broke baseline before its
    // namespace was labelled; a label change passes, an image change is refused.
    c.kubectl_ok(&[
        "label",
        "ns",
        "open",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    let (code, _, err) = run(&c, &["label", "pod", "free", "-n", "open", "tier=web"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, _, err) = run(
        &c,
        &["set", "image", "pod/free", "-n", "open", "c=busybox:latest"],
    );
    assert_eq!(code, 1);
    // kubectl's own wording around the server's message (kubectl/pkg/cmd/set/set_image.go).
    assert_eq!(
        err,
        "error: failed to patch image update to pod template: pods \"free\" is forbidden: violates PodSecurity \"baseline:latest\": forbidden AppArmor profiles (container \"c\" and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"\"), non-default capabilities (container \"c\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)\n"
    );

    // A DaemonSet is warned about, never refused; its controller's pods are enforced.
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: d\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      hostPID: true\n      containers:\n      - name: c\n        image: busybox:1.28\n        command: [sleep, \"3600\"]\n";
    let (code, out, err) = with_file(&c, "ds.yaml", ds, &["apply", "-n", "base"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "daemonset.apps/d created\n");
    assert_eq!(
        err,
        "Warning: would violate PodSecurity \"baseline:latest\": host namespaces (hostPID=true)\n"
    );
    let status = c.wait_for("the DaemonSet's status", || {
        let d = c.kubectl_json(&["get", "ds", "d", "-n", "base"])?;
        (d["status"]["desiredNumberScheduled"] == 1).then(|| d["status"].clone())
    });
    assert_eq!(status["currentNumberScheduled"], 0);
    let pods = c
        .kubectl_json(&["get", "pods", "-n", "base", "-l", "app=d"])
        .unwrap();
    assert_eq!(pods["items"].as_array().unwrap().len(), 0);
}

#[test]
fn emulated_releases_on_either_side() {
    // Threads: three control planes side by side.
    let releases = ["1.22", "1.23", "1.29"];
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = releases
            .iter()
            .map(|r| s.spawn(move || release_case(r)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for (r, res) in releases.iter().zip(results) {
        if let Err(e) = res {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("--emulated-version {r}: {why}");
        }
    }
}

fn release_case(release: &str) {
    let c = Cluster::with_node_names(
        "crun",
        &["--nodes", "0", "--emulated-version", release],
        &[],
    );
    c.kubectl_ok(&["create", "ns", "n"]);
    match release {
        // No PodSecurity plugin before 1.23 (alpha, gate off): labels are just labels.
        "1.22" => {
            let (code, _, err) = run(
                &c,
                &[
                    "label",
                    "ns",
                    "n",
                    "pod-security.kubernetes.io/enforce=restrictd",
                ],
            );
            assert_eq!((code, err.as_str()), (0, ""));
            c.kubectl_ok(&[
                "label",
                "ns",
                "n",
                "pod-security.kubernetes.io/enforce=restricted",
                "--overwrite",
            ]);
            let (code, _, err) = with_file(
                &c,
                "p.yaml",
                &pod("p", UNCONFINED_ANNOTATION, "", "privileged: true"),
                &["create", "-n", "n"],
            );
            assert_eq!((code, err.as_str()), (0, ""));
        }
        // 1.23: restricted runs the baseline checks too (no overrides before 1.24), and warn
        // does not default to enforce (before 1.26).
        "1.23" => {
            c.kubectl_ok(&[
                "label",
                "ns",
                "n",
                "pod-security.kubernetes.io/enforce=restricted",
            ]);
            let host_path = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: h\nspec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers:\n  - name: c\n    image: busybox:1.28\n    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n  volumes:\n  - name: v\n    hostPath: {path: /tmp}\n";
            let (code, _, err) = with_file(&c, "h.yaml", host_path, &["create", "-n", "n"]);
            assert_eq!(code, 1);
            assert!(
                err.ends_with("pods \"h\" is forbidden: violates PodSecurity \"restricted:latest\": hostPath volumes (volume \"v\"), restricted volume types (volume \"v\" uses restricted volume type \"hostPath\")\n"),
                "{err}"
            );
            let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: d\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      hostPID: true\n      containers:\n      - name: c\n        image: busybox:1.28\n";
            let (code, _, err) = with_file(&c, "ds.yaml", ds, &["create", "-n", "n"]);
            assert_eq!((code, err.as_str()), (0, ""));
        }
        // 1.29: the AppArmor check reads the annotations only and lists them bare (the field
        // check and its wording came with 1.30); warn defaults to enforce (1.26+).
        "1.29" => {
            c.kubectl_ok(&[
                "label",
                "ns",
                "n",
                "pod-security.kubernetes.io/enforce=baseline",
            ]);
            let (code, _, err) = with_file(
                &c,
                "p.yaml",
                &pod("p", UNCONFINED_ANNOTATION, "", ""),
                &["create", "-n", "n"],
            );
            assert_eq!(code, 1);
            assert_eq!(
                err,
                format!(
                    "Error from server (Forbidden): error when creating \"{}\": pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c=\"unconfined\")\n",
                    c.dir.path().join("p.yaml").display()
                )
            );
            let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: d\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      hostPID: true\n      containers:\n      - name: c\n        image: busybox:1.28\n";
            let (code, _, err) = with_file(&c, "ds.yaml", ds, &["create", "-n", "n"]);
            assert_eq!(code, 0);
            assert_eq!(
                err,
                "Warning: would violate PodSecurity \"baseline:latest\": host namespaces (hostPID=true)\n"
            );
        }
        other => unreachable!("{other}"),
    }
}
