//! The Security Profiles Operator's node daemon, for `SeccompProfile`s: every
//! second each profile of the cluster is written to
//! `<kubelet-root>/seccomp/operator/<namespace>/<name>.json` (through the node's
//! view), checked first with armorlet-seccomp's validation (an invalid profile
//! is not written: pods referring to it fail as for a missing file), and the
//! node reports it in a `SecurityProfileNodeStatus` `<name>-<node>` in the
//! profile's namespace (`Installed` or `Error`, as SPO's daemon does). Files
//! of profiles that are gone are removed, with their node statuses. The API
//! server's `profiles` pass turns the node statuses into the profile's status.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use serde_json::{json, Value};

use crate::NodeConfig;

/// Where, and as which node, the profiles are installed.
#[derive(Debug, Clone)]
pub struct OperatorTarget {
    /// The node name (in the node statuses).
    pub node: String,
    /// The host directory of `<kubelet-root>/seccomp/operator`.
    pub dir: PathBuf,
}

impl OperatorTarget {
    /// The agent's node: its name, and its kubelet root through its view.
    pub fn of(cfg: &NodeConfig) -> OperatorTarget {
        OperatorTarget {
            node: cfg.name.clone(),
            dir: cfg
                .view
                .host_path(&cfg.kubelet_root_dir.join("seccomp").join("operator")),
        }
    }
}

/// `armorlet daemon`: the sync every second until `shutdown`, against any API server
/// that serves the Security Profiles Operator's resources.
pub async fn run(
    client: kube::Client,
    target: OperatorTarget,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => sync(&client, &target).await,
        }
    }
}

const GROUP: &str = "security-profiles-operator.x-k8s.io";

fn resource(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: version.into(),
        api_version: format!("{GROUP}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn node_status_resource() -> ApiResource {
    resource(
        "v1alpha1",
        "SecurityProfileNodeStatus",
        "securityprofilenodestatuses",
    )
}

/// The seccomp profile JSON of a SeccompProfile's spec (the OCI fields; SPO's
/// own `baseProfileName` is not supported and is an error, not ignored).
pub fn profile_json(spec: &Value) -> Result<Vec<u8>, String> {
    let mut spec = spec.clone();
    let Some(obj) = spec.as_object_mut() else {
        return Err("spec is not an object".into());
    };
    obj.remove("disabled");
    if obj.remove("baseProfileName").is_some() {
        return Err("baseProfileName is not supported by armorlet".into());
    }
    let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
    armorlet_seccomp::check(&bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// One pass: install, report, clean up. Errors are logged; the next pass retries.
pub async fn sync(client: &kube::Client, target: &OperatorTarget) {
    if let Err(e) = sync_inner(client, target).await {
        tracing::debug!(error = %e, "seccomp profile sync");
    }
}

async fn sync_inner(client: &kube::Client, cfg: &OperatorTarget) -> Result<(), kube::Error> {
    let profiles: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("v1beta1", "SeccompProfile", "seccompprofiles"),
    );
    let list = profiles.list(&ListParams::default()).await?;
    let root = cfg.dir.clone();
    let mut keep: BTreeSet<PathBuf> = BTreeSet::new();
    for p in &list.items {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        // Names become path components: a server that does not validate them (the
        // agent talks to any) must not make it write elsewhere.
        let unsafe_name = |s: &str| s.is_empty() || s.contains('/') || s.starts_with('.');
        if p.data["spec"]["disabled"] == true || unsafe_name(&ns) || unsafe_name(&name) {
            continue;
        }
        let file = root.join(&ns).join(format!("{name}.json"));
        keep.insert(file.clone());
        let (state, message) = match profile_json(&p.data["spec"]) {
            Ok(bytes) => match write_if_changed(&file, &bytes) {
                Ok(()) => ("Installed", None),
                Err(e) => ("Error", Some(format!("{}: {e}", file.display()))),
            },
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                ("Error", Some(e))
            }
        };
        report(client, cfg, &ns, &name, state, message).await?;
    }
    remove_others(&root, &keep);
    // This node's statuses of profiles that are gone.
    let statuses: Api<DynamicObject> = Api::all_with(client.clone(), &node_status_resource());
    let mine = ListParams::default().labels(&format!("spo.x-k8s.io/node-name={}", cfg.node));
    for s in statuses.list(&mine).await?.items {
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        let name = s.metadata.name.clone().unwrap_or_default();
        let exists = list.items.iter().any(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && format!("{}-{}", p.metadata.name.as_deref().unwrap_or(""), cfg.node) == name
        });
        if !exists {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns, &node_status_resource());
            api.delete(&name, &Default::default()).await?;
        }
    }
    Ok(())
}

fn write_if_changed(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(file).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

/// Removes installed profiles whose SeccompProfile is gone.
fn remove_others(root: &Path, keep: &BTreeSet<PathBuf>) {
    let Ok(namespaces) = std::fs::read_dir(root) else {
        return;
    };
    for ns in namespaces.flatten() {
        for f in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "json") && !keep.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Creates or updates this node's `SecurityProfileNodeStatus` of a profile.
async fn report(
    client: &kube::Client,
    cfg: &OperatorTarget,
    ns: &str,
    profile: &str,
    state: &str,
    message: Option<String>,
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &node_status_resource());
    let name = format!("{profile}-{}", cfg.node);
    let mut want = json!({
        "apiVersion": format!("{GROUP}/v1alpha1"),
        "kind": "SecurityProfileNodeStatus",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "spo.x-k8s.io/node-name": cfg.node,
                "spo.x-k8s.io/profile-id": format!("SeccompProfile-{profile}"),
                "spo.x-k8s.io/profile-kind": "SeccompProfile",
                "spo.x-k8s.io/profile-state": state,
            },
        },
        "nodeName": cfg.node,
        "profileKind": "SeccompProfile",
        "status": state,
    });
    if let Some(m) = message {
        want["message"] = json!(m);
    }
    match api.get_opt(&name).await? {
        Some(cur) => {
            let same =
                cur.data["status"] == want["status"] && cur.data["message"] == want["message"];
            if !same {
                let mut obj: DynamicObject =
                    serde_json::from_value(want).map_err(kube::Error::SerdeError)?;
                obj.metadata.resource_version = cur.metadata.resource_version.clone();
                api.replace(&name, &PostParams::default(), &obj).await?;
            }
        }
        None => {
            let obj: DynamicObject =
                serde_json::from_value(want).map_err(kube::Error::SerdeError)?;
            api.create(&PostParams::default(), &obj).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_the_profile() {
        let spec = json!({"defaultAction": "SCMP_ACT_LOG", "disabled": false});
        let bytes = profile_json(&spec).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v, json!({"defaultAction": "SCMP_ACT_LOG"}));
        assert!(profile_json(
            &json!({"defaultAction": "SCMP_ACT_LOG", "baseProfileName": "runc-v1.0.0"})
        )
        .unwrap_err()
        .contains("baseProfileName"));
        assert!(profile_json(&json!({"defaultAction": "SCMP_ACT_NOPE"})).is_err());
    }
}
