//! `armorlet manifests`: what `kubectl apply -f -` needs to run the profile-distribution
//! agent (`armorlet daemon`) on a real cluster: the Security Profiles Operator's
//! CustomResourceDefinitions (the ones `armorlet up` installs), a namespace, the agent's
//! ServiceAccount and RBAC (read profiles, write node statuses and recorded profiles, read
//! pods), and a DaemonSet that runs it on every node with the kubelet's seccomp directory
//! and the host's AppArmor filesystem mounted.
//!
//! Exit codes: 0, 2 on usage errors.

use std::process::ExitCode;

use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image with the armorlet binary the DaemonSet runs.
    #[arg(long, default_value = concat!("armorlet:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The namespace of the agent (and of AppArmorProfile node statuses).
    #[arg(long, default_value = armorlet_node::operator::SPO_NAMESPACE)]
    namespace: String,
    /// The kubelet's root directory on the nodes.
    #[arg(long, default_value = "/var/lib/kubelet")]
    kubelet_root_dir: String,
}

const GROUP: &str = "security-profiles-operator.x-k8s.io";
const NAME: &str = "armorlet-daemon";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    print!("{}", render(&args)?);
    Ok(ExitCode::SUCCESS)
}

fn render(args: &Args) -> anyhow::Result<String> {
    let mut out = String::from(
        "# armorlet manifests: the Security Profiles Operator's CRDs and the armorlet daemon.\n",
    );
    out.push_str(armorlet_apiserver::crd::BUNDLED.trim_end());
    out.push('\n');
    for obj in objects(args) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&obj)?);
    }
    Ok(out)
}

fn objects(args: &Args) -> Vec<Value> {
    let ns = &args.namespace;
    let labels = json!({"app.kubernetes.io/name": NAME});
    let seccomp_dir = format!("{}/seccomp", args.kubelet_root_dir.trim_end_matches('/'));
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": NAME, "namespace": ns}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": NAME},
        "rules": [
            {"apiGroups": [GROUP],
             "resources": ["seccompprofiles", "apparmorprofiles", "profilerecordings", "profilebindings"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [GROUP],
             "resources": ["securityprofilenodestatuses"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": [GROUP],
             "resources": ["seccompprofiles", "apparmorprofiles"],
             "verbs": ["create", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": NAME},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
               "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}]}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": ns, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": NAME,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{
                        "name": "daemon",
                        "image": args.image,
                        "args": ["daemon", "--kubelet-root-dir", args.kubelet_root_dir],
                        "env": [{"name": "NODE_NAME",
                                 "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        // apparmor_parser loads profiles into the kernel (CAP_MAC_ADMIN
                        // through securityfs); seccomp profiles are plain files.
                        "securityContext": {"privileged": true},
                        "volumeMounts": [
                            {"name": "seccomp", "mountPath": seccomp_dir},
                            {"name": "apparmor-profiles", "mountPath": "/var/lib/armorlet/operator/apparmor"},
                            {"name": "securityfs", "mountPath": "/sys/kernel/security"},
                        ],
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                                      "limits": {"memory": "128Mi"}},
                    }],
                    "volumes": [
                        {"name": "seccomp", "hostPath": {"path": seccomp_dir, "type": "DirectoryOrCreate"}},
                        {"name": "apparmor-profiles", "hostPath": {"path": "/var/lib/armorlet/operator/apparmor", "type": "DirectoryOrCreate"}},
                        {"name": "securityfs", "hostPath": {"path": "/sys/kernel/security", "type": "Directory"}},
                    ],
                },
            },
        }}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn every_document_is_a_kubernetes_object() {
        let args = Args {
            image: "registry.example/armorlet:1".into(),
            namespace: "spo".into(),
            kubelet_root_dir: "/var/lib/kubelet/".into(),
        };
        let text = render(&args).unwrap();
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "CustomResourceDefinition")
                .count(),
            5
        );
        assert_eq!(
            &kinds[5..],
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "DaemonSet"
            ]
        );
        let ds = &docs[9];
        assert_eq!(ds["metadata"]["namespace"], "spo");
        let c = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "registry.example/armorlet:1");
        assert_eq!(
            c["volumeMounts"][0]["mountPath"],
            "/var/lib/kubelet/seccomp"
        );
    }
}
