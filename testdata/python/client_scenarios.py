"""The API server scenarios of crates/armorlet/tests/kubectl_api.rs, through the Python
`kubernetes` client (its generated CoreV1Api, watch and error types), against a running
`armorlet up`. Usage: python client_scenarios.py KUBECONFIG. Prints `ok <scenario>` per
scenario; any failed check raises, so the exit status is non-zero."""

import json
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()
    version = client.VersionApi().get_code()
    check(version.major == "1" and version.minor == "32", f"version {version}")
    print("ok version")

    ns = v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    check(ns.status.phase == "Active", f"namespace phase {ns.status.phase}")
    print("ok create namespace")

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1PodSpec(
            scheduler_name="manual",
            security_context=client.V1PodSecurityContext(
                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")
            ),
            containers=[client.V1Container(name="c", image="busybox:1.28")],
        ),
    )
    created = v1.create_namespaced_pod("py", pod)
    check(created.metadata.uid and created.metadata.resource_version, "uid and resourceVersion")
    # Defaults as kube-apiserver sets them.
    check(created.spec.restart_policy == "Always", created.spec.restart_policy)
    check(created.spec.containers[0].image_pull_policy == "IfNotPresent", "imagePullPolicy")
    check(created.status.phase == "Pending", created.status.phase)
    print("ok create pod")

    got = v1.read_namespaced_pod("web", "py")
    check(got.spec.security_context.seccomp_profile.type == "RuntimeDefault", "seccompProfile")
    listed = v1.list_namespaced_pod("py", label_selector="app=web")
    check([p.metadata.name for p in listed.items] == ["web"], "label selector")
    check(v1.list_namespaced_pod("py", label_selector="app=db").items == [], "no match")
    check(
        [p.metadata.name for p in v1.list_pod_for_all_namespaces(field_selector="metadata.name=web").items] == ["web"],
        "field selector",
    )
    print("ok get and list")

    patched = v1.patch_namespaced_pod("web", "py", {"metadata": {"labels": {"tier": "front"}}})
    check(patched.metadata.labels == {"app": "web", "tier": "front"}, patched.metadata.labels)
    check(int(patched.metadata.resource_version) > int(created.metadata.resource_version), "rv moved")
    print("ok strategic merge patch")

    try:
        v1.read_namespaced_pod("nope", "py")
        raise AssertionError("read of a missing pod succeeded")
    except ApiException as e:
        body = json.loads(e.body)
        check(e.status == 404, e.status)
        check(body["reason"] == "NotFound" and body["message"] == 'pods "nope" not found', body)
    print("ok not found")

    bad = client.V1Pod(
        metadata=client.V1ObjectMeta(name="bad"),
        spec=client.V1PodSpec(
            security_context=client.V1PodSecurityContext(
                seccomp_profile=client.V1SeccompProfile(type="Localhost")
            ),
            containers=[client.V1Container(name="c", image="busybox:1.28")],
        ),
    )
    try:
        v1.create_namespaced_pod("py", bad)
        raise AssertionError("an invalid pod was created")
    except ApiException as e:
        body = json.loads(e.body)
        check(e.status == 422 and body["reason"] == "Invalid", body)
        fields = [c["field"] for c in body["details"]["causes"]]
        check("spec.securityContext.seccompProfile.localhostProfile" in fields, fields)
    print("ok invalid")

    try:
        v1.create_namespaced_pod("py", pod)
        raise AssertionError("a second pod of the same name was created")
    except ApiException as e:
        body = json.loads(e.body)
        check(e.status == 409 and body["reason"] == "AlreadyExists", body)
        check(body["message"] == 'pods "web" already exists', body["message"])
    print("ok already exists")

    # A watch from the list's resourceVersion sees the change and the deletion in order.
    rv = v1.list_namespaced_pod("py").metadata.resource_version
    v1.patch_namespaced_pod("web", "py", {"metadata": {"annotations": {"a": "b"}}})
    v1.delete_namespaced_pod("web", "py", grace_period_seconds=0)
    seen = []
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, "py", resource_version=rv, timeout_seconds=10):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            w.stop()
    check(seen == [("MODIFIED", "web"), ("DELETED", "web")], seen)
    print("ok watch")

    cm = v1.create_namespaced_config_map(
        "py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"})
    )
    cm.data["b"] = "2"
    replaced = v1.replace_namespaced_config_map("cfg", "py", cm)
    check(replaced.data == {"a": "1", "b": "2"}, replaced.data)
    cm.data["c"] = "3"
    try:
        v1.replace_namespaced_config_map("cfg", "py", cm)  # the old resourceVersion
        raise AssertionError("a stale update succeeded")
    except ApiException as e:
        body = json.loads(e.body)
        check(e.status == 409 and body["reason"] == "Conflict", body)
        check(
            body["message"]
            == 'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; please apply your changes to the latest version and try again',
            body["message"],
        )
    print("ok optimistic concurrency")

    page = v1.list_namespace(limit=1)
    check(len(page.items) == 1 and page.metadata._continue, "first page")
    rest = v1.list_namespace(limit=10, _continue=page.metadata._continue)
    names = [page.items[0].metadata.name] + [n.metadata.name for n in rest.items]
    check(sorted(names) == names and "py" in names and "default" in names, names)
    print("ok pagination")


if __name__ == "__main__":
    main(sys.argv[1])
