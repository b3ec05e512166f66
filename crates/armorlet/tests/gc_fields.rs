//! Garbage collection of owned objects (`kubectl delete --cascade=...`) and
//! `metadata.managedFields` with server-side apply, through the real kubectl against
//! `armorlet up --nodes 0` (issue 5).

mod common;

use common::*;
use serde_json::Value;

fn cluster() -> Cluster {
    Cluster::with_node_names("crun", &["--nodes", "0"], &[])
}

fn run(c: &Cluster, args: &[&str]) -> (i32, String, String) {
    let out = c.kubectl(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(c: &Cluster, name: &str, yaml: &str) -> String {
    let path = c.data().join(name);
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_owned()
}

fn uid(c: &Cluster, kind: &str, name: &str) -> String {
    c.kubectl_json(&["get", kind, name]).expect("object exists")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The object with its managedFields (kubectl hides them unless asked).
fn full(c: &Cluster, kind: &str, name: &str) -> Value {
    c.kubectl_json(&["get", kind, name, "--show-managed-fields"])
        .unwrap_or_else(|| panic!("{kind}/{name} exists"))
}

fn exists(c: &Cluster, kind: &str, name: &str) -> bool {
    c.kubectl_json(&["get", kind, name]).is_some()
}

/// A ConfigMap owned by the given (kind, name, uid, blockOwnerDeletion) owners.
fn dependent(c: &Cluster, name: &str, owners: &[(&str, &str, &str, &str, bool)], extra: &str) {
    let mut refs = String::new();
    for (api, kind, owner, uid, block) in owners {
        refs.push_str(&format!(
            "  - apiVersion: {api}\n    kind: {kind}\n    name: {owner}\n    uid: {uid}\n    blockOwnerDeletion: {block}\n"
        ));
    }
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}  ownerReferences:\n{refs}data:\n  k: v\n"
    );
    let file = write(c, &format!("{name}.yaml"), &yaml);
    c.kubectl_ok(&["create", "-f", &file]);
}

fn gone(c: &Cluster, kind: &str, name: &str) {
    c.wait_for(&format!("{kind}/{name} to be collected"), || {
        (!exists(c, kind, name)).then_some(())
    });
}

#[test]
fn deletes_cascade_in_the_background_the_foreground_or_orphan_dependents() {
    require_root();
    let c = cluster();

    // Background (kubectl's default): the owner goes at once, its dependents after it.
    c.kubectl_ok(&["create", "configmap", "bg-owner"]);
    let owner = uid(&c, "cm", "bg-owner");
    dependent(
        &c,
        "bg-a",
        &[("v1", "ConfigMap", "bg-owner", &owner, true)],
        "",
    );
    dependent(
        &c,
        "bg-b",
        &[("v1", "ConfigMap", "bg-owner", &owner, false)],
        "",
    );
    c.kubectl_ok(&["delete", "cm", "bg-owner"]);
    gone(&c, "cm", "bg-a");
    gone(&c, "cm", "bg-b");

    // Foreground: the owner stays, marked, with the foregroundDeletion finalizer, until its
    // blocking dependent is gone; that one is held by a finalizer of its own.
    c.kubectl_ok(&["create", "configmap", "fg-owner"]);
    let owner = uid(&c, "cm", "fg-owner");
    dependent(
        &c,
        "fg-held",
        &[("v1", "ConfigMap", "fg-owner", &owner, true)],
        "  finalizers:\n  - example.com/hold\n",
    );
    dependent(
        &c,
        "fg-free",
        &[("v1", "ConfigMap", "fg-owner", &owner, false)],
        "",
    );
    let (code, out, err) = run(
        &c,
        &[
            "delete",
            "cm",
            "fg-owner",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "configmap \"fg-owner\" deleted");
    let o = c
        .kubectl_json(&["get", "cm", "fg-owner"])
        .expect("owner stays");
    assert!(o["metadata"]["deletionTimestamp"].is_string(), "{o}");
    assert_eq!(
        o["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );
    // The collector deletes the dependents: the held one is marked, the free one goes.
    c.wait_for("fg-held marked for deletion", || {
        let d = c.kubectl_json(&["get", "cm", "fg-held"])?;
        d["metadata"]["deletionTimestamp"].is_string().then_some(())
    });
    gone(&c, "cm", "fg-free");
    // The owner waits for the blocking dependent, which still exists.
    let o = c
        .kubectl_json(&["get", "cm", "fg-owner"])
        .expect("owner still waits");
    assert_eq!(
        o["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );
    c.kubectl_ok(&[
        "patch",
        "cm",
        "fg-held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    gone(&c, "cm", "fg-held");
    gone(&c, "cm", "fg-owner");

    // Orphan: the dependents stay, without their reference to the owner; kubectl waits for
    // the owner to go.
    c.kubectl_ok(&["create", "configmap", "or-owner"]);
    c.kubectl_ok(&["create", "configmap", "or-other"]);
    let owner = uid(&c, "cm", "or-owner");
    let other = uid(&c, "cm", "or-other");
    dependent(
        &c,
        "or-dep",
        &[
            ("v1", "ConfigMap", "or-owner", &owner, true),
            ("v1", "ConfigMap", "or-other", &other, false),
        ],
        "",
    );
    c.kubectl_ok(&["delete", "cm", "or-owner", "--cascade=orphan"]);
    assert!(!exists(&c, "cm", "or-owner"));
    let d = c
        .kubectl_json(&["get", "cm", "or-dep"])
        .expect("orphan stays");
    let refs = d["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(refs.len(), 1, "{d}");
    assert_eq!(refs[0]["name"], "or-other");
    // A dependent with a solid owner left keeps living; the dead owner's reference goes.
    c.kubectl_ok(&["create", "configmap", "two-a"]);
    c.kubectl_ok(&["create", "configmap", "two-b"]);
    let (a, b) = (uid(&c, "cm", "two-a"), uid(&c, "cm", "two-b"));
    dependent(
        &c,
        "two-dep",
        &[
            ("v1", "ConfigMap", "two-a", &a, false),
            ("v1", "ConfigMap", "two-b", &b, false),
        ],
        "",
    );
    c.kubectl_ok(&["delete", "cm", "two-a"]);
    c.wait_for("two-dep to lose its dead owner", || {
        let d = c.kubectl_json(&["get", "cm", "two-dep"])?;
        (d["metadata"]["ownerReferences"].as_array()?.len() == 1).then_some(())
    });
    c.kubectl_ok(&["delete", "cm", "two-b"]);
    gone(&c, "cm", "two-dep");
}

#[test]
fn dependents_of_missing_owners_are_collected_by_uid_and_scope() {
    require_root();
    let c = cluster();
    // The owner's name exists, but with another uid: the reference dangles.
    c.kubectl_ok(&["create", "configmap", "reborn"]);
    dependent(
        &c,
        "of-old-reborn",
        &[(
            "v1",
            "ConfigMap",
            "reborn",
            "00000000-0000-0000-0000-000000000001",
            true,
        )],
        "",
    );
    gone(&c, "cm", "of-old-reborn");
    assert!(exists(&c, "cm", "reborn"));
    // A namespaced dependent of a cluster-scoped owner lives as long as the owner.
    // (From a file: kubectl's typed create would send protobuf, which armorlet decodes for
    // a few kinds only.)
    let role = write(
        &c,
        "role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: owner-role\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get]\n",
    );
    c.kubectl_ok(&["create", "-f", &role]);
    let role = uid(&c, "clusterrole", "owner-role");
    dependent(
        &c,
        "of-role",
        &[(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "owner-role",
            &role,
            false,
        )],
        "",
    );
    // A namespaced owner is looked up in the dependent's namespace only.
    c.kubectl_ok(&["create", "namespace", "elsewhere"]);
    c.kubectl_ok(&["create", "configmap", "far", "-n", "elsewhere"]);
    let far = c
        .kubectl_json(&["get", "cm", "far", "-n", "elsewhere"])
        .unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    dependent(&c, "of-far", &[("v1", "ConfigMap", "far", &far, true)], "");
    gone(&c, "cm", "of-far");
    assert!(
        exists(&c, "cm", "of-role"),
        "its cluster-scoped owner exists"
    );
    c.kubectl_ok(&["delete", "clusterrole", "owner-role"]);
    gone(&c, "cm", "of-role");

    // Deployments and ReplicaSets are stored (no controllers run them): a ReplicaSet owned by
    // a Deployment goes with it.
    let deployment = write(
        &c,
        "deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: c\n        image: busybox\n",
    );
    c.kubectl_ok(&["create", "-f", &deployment]);
    let dep = uid(&c, "deployment", "web");
    let rs = format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web-1\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: web\n    uid: {dep}\n    controller: true\n    blockOwnerDeletion: true\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: c\n        image: busybox\n"
    );
    let file = write(&c, "rs.yaml", &rs);
    c.kubectl_ok(&["create", "-f", &file]);
    c.kubectl_ok(&["delete", "deployment", "web", "--cascade=foreground"]);
    assert!(
        !exists(&c, "replicaset", "web-1"),
        "kubectl waited for the owner, which waited for it"
    );
}

fn managed(obj: &Value) -> Vec<(String, String, Option<String>)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_owned(),
                e["operation"].as_str().unwrap_or("").to_owned(),
                e["subresource"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        .unwrap_or_else(|| panic!("no managedFields entry of {manager}: {obj}"))
}

#[test]
fn writes_record_their_managers_in_managed_fields() {
    require_root();
    let c = cluster();
    c.kubectl_ok(&["create", "configmap", "m", "--from-literal=a=1"]);
    let cm = full(&c, "cm", "m");
    assert_eq!(
        managed(&cm),
        vec![("kubectl-create".into(), "Update".into(), None)]
    );
    let e = entry(&cm, "kubectl-create");
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].is_string());
    assert_eq!(
        e["fieldsV1"],
        serde_json::json!({"f:data": {".": {}, "f:a": {}}})
    );

    c.kubectl_ok(&["label", "cm", "m", "team=x"]);
    let cm = full(&c, "cm", "m");
    assert_eq!(
        entry(&cm, "kubectl-label")["fieldsV1"],
        serde_json::json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}})
    );
    // kubectl hides managedFields unless asked.
    let yaml = c.kubectl_ok(&["get", "cm", "m", "-o", "yaml"]);
    assert!(!yaml.contains("managedFields"), "{yaml}");
    let yaml = c.kubectl_ok(&["get", "cm", "m", "-o", "yaml", "--show-managed-fields"]);
    assert!(yaml.contains("managedFields:"), "{yaml}");
    assert!(yaml.contains("manager: kubectl-label"), "{yaml}");

    // A client-side apply records its own manager.
    let file = write(
        &c,
        "csa.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: csa\ndata:\n  key: one\n",
    );
    c.kubectl_ok(&["apply", "-f", &file]);
    let cm = full(&c, "cm", "csa");
    let e = entry(&cm, "kubectl-client-side-apply");
    assert_eq!(e["operation"], "Update");
    assert_eq!(
        e["fieldsV1"]["f:data"],
        serde_json::json!({".": {}, "f:key": {}})
    );
    assert!(e["fieldsV1"]["f:metadata"]["f:annotations"]
        ["f:kubectl.kubernetes.io/last-applied-configuration"]
        .is_object());
}

#[test]
fn server_side_apply_owns_fields_conflicts_and_forces() {
    require_root();
    let c = cluster();
    let v1 = write(
        &c,
        "v1.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n  labels:\n    app: web\ndata:\n  key: one\n  extra: x\n",
    );
    c.kubectl_ok(&["apply", "--server-side", "-f", &v1]);
    let cm = full(&c, "cm", "s");
    assert_eq!(managed(&cm), vec![("kubectl".into(), "Apply".into(), None)]);
    assert_eq!(
        entry(&cm, "kubectl")["fieldsV1"],
        serde_json::json!({"f:data": {"f:extra": {}, "f:key": {}},
                           "f:metadata": {"f:labels": {"f:app": {}}}})
    );
    // Another manager changes a field the first one owns: a conflict, kubectl exits 1.
    let v2 = write(
        &c,
        "v2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  key: two\n",
    );
    let (code, _, err) = run(
        &c,
        &["apply", "--server-side", "--field-manager=other", "-f", &v2],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.key"#),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "kubectl's hint: {err}");
    assert_eq!(full(&c, "cm", "s")["data"]["key"], "one");
    // The same value is no conflict: both own it.
    let same = write(
        &c,
        "same.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  extra: x\n",
    );
    c.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager=sharer",
        "-f",
        &same,
    ]);
    // --force-conflicts takes the field over.
    c.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &v2,
    ]);
    let cm = full(&c, "cm", "s");
    assert_eq!(cm["data"]["key"], "two");
    assert_eq!(
        entry(&cm, "kubectl")["fieldsV1"],
        serde_json::json!({"f:data": {"f:extra": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );
    assert_eq!(
        entry(&cm, "other")["fieldsV1"],
        serde_json::json!({"f:data": {"f:key": {}}})
    );
    // The first manager drops the label and `extra` from its config: the label goes (nobody
    // else owns it), `extra` stays (the sharer owns it too).
    let v3 = write(
        &c,
        "v3.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  more: three\n",
    );
    c.kubectl_ok(&["apply", "--server-side", "-f", &v3]);
    let cm = full(&c, "cm", "s");
    assert!(cm["metadata"]["labels"]["app"].is_null(), "{cm}");
    assert_eq!(
        cm["data"],
        serde_json::json!({"extra": "x", "key": "two", "more": "three"})
    );
    // An Update manager conflicts too, named with its API version. (Not a client-side
    // apply: kubectl moves kubectl-client-side-apply's fields to its own apply manager first.)
    c.kubectl_ok(&["create", "configmap", "t", "--from-literal=key=one"]);
    let t2 = write(
        &c,
        "t2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\ndata:\n  key: two\n",
    );
    let (code, _, err) = run(&c, &["apply", "--server-side", "-f", &t2]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.key"#
        ),
        "{err}"
    );
}

#[test]
fn a_deleted_daemonsets_pods_are_collected_and_the_kubelet_owns_their_status() {
    require_root();
    let c = Cluster::new("crun");
    let ds = write(
        &c,
        "ds.yaml",
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels:\n      app: agent\n  template:\n    metadata:\n      labels:\n        app: agent\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: a\n        image: busybox:1.28\n        command: [\"sleep\", \"3600\"]\n",
    );
    c.kubectl_ok(&["apply", "-f", &ds]);
    let pod = c.wait_for("the daemon pod running", || {
        let pods = c.kubectl_json(&["get", "pods", "-l", "app=agent", "--show-managed-fields"])?;
        let p = pods["items"].as_array()?.first()?.clone();
        p["status"]["containerStatuses"][0]["state"]["running"]
            .is_object()
            .then_some(p)
    });
    let managers = managed(&pod);
    assert!(
        managers.contains(&("kube-controller-manager".into(), "Update".into(), None)),
        "{managers:?}"
    );
    assert!(
        managers.contains(&("kubelet".into(), "Update".into(), Some("status".into()))),
        "{managers:?}"
    );
    let kubelet = entry(&pod, "kubelet");
    assert!(
        kubelet["fieldsV1"]["f:status"]["f:phase"].is_object(),
        "{kubelet}"
    );
    assert!(kubelet["fieldsV1"].get("f:spec").is_none(), "{kubelet}");
    let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    c.kubectl_ok(&["delete", "ds", "agent"]);
    gone(&c, "pod", &name);
}
