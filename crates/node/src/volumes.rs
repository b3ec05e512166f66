//! Pod volumes on the host (pkg/volume/*): emptyDir, hostPath, configMap,
//! secret, downwardAPI and projected (the `kube-api-access-*` volume: a token
//! file, `ca.crt`, `namespace`). Directories live in `D/nodes/N/pods/<uid>/volumes/<name>`.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Volume};
use kube::Api;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Sets up every volume of the pod; returns name → host path. The error is the
/// kubelet's `CreateContainerConfigError`-style message.
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    pod_dir: &Path,
    ca_pem: &[u8],
    view: &crate::NodeView,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    for v in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        let dir = pod_dir.join("volumes").join(&v.name);
        let path = if let Some(hp) = &v.host_path {
            // A hostPath is a path on the node: through the node's view.
            let p = view.host_path(Path::new(&hp.path));
            if hp.type_.as_deref() == Some("DirectoryOrCreate") {
                std::fs::create_dir_all(&p).map_err(|e| format!("hostPath {}: {e}", hp.path))?;
            }
            p
        } else {
            mkdir(&dir)?;
            fill(client, &ns, pod, v, &dir, ca_pem).await?;
            dir
        };
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create volume directory {}: {e}", dir.display()))
}

fn write(dir: &Path, rel: &str, data: &[u8]) -> Result<(), String> {
    if rel.split('/').any(|s| s == ".." || s.is_empty()) {
        return Err(format!("invalid volume item path {rel:?}"));
    }
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        mkdir(parent)?;
    }
    std::fs::write(&p, data).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

async fn fill(
    client: &kube::Client,
    ns: &str,
    pod: &Pod,
    v: &Volume,
    dir: &Path,
    ca_pem: &[u8],
) -> Result<(), String> {
    if let Some(cm) = &v.config_map {
        let items = config_map(client, ns, &cm.name, cm.optional == Some(true), ca_pem).await?;
        return write_items(dir, items, cm.items.as_deref());
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let items = secret(client, ns, &name, s.optional == Some(true)).await?;
        return write_items(dir, items, s.items.as_deref());
    }
    if let Some(d) = &v.downward_api {
        for item in d.items.iter().flatten() {
            if let Some(f) = &item.field_ref {
                write(dir, &item.path, field(pod, &f.field_path).as_bytes())?;
            }
        }
        return Ok(());
    }
    if let Some(p) = &v.projected {
        for src in p.sources.iter().flatten() {
            if let Some(t) = &src.service_account_token {
                // No TokenRequest issuer yet: a placeholder token, documented as such.
                write(dir, &t.path, b"armorlet-placeholder-token")?;
            }
            if let Some(cm) = &src.config_map {
                let items =
                    config_map(client, ns, &cm.name, cm.optional == Some(true), ca_pem).await?;
                write_items(dir, items, cm.items.as_deref())?;
            }
            if let Some(d) = &src.downward_api {
                for item in d.items.iter().flatten() {
                    if let Some(f) = &item.field_ref {
                        write(dir, &item.path, field(pod, &f.field_path).as_bytes())?;
                    }
                }
            }
            if let Some(s) = &src.secret {
                let items = secret(client, ns, &s.name, s.optional == Some(true)).await?;
                write_items(dir, items, s.items.as_deref())?;
            }
        }
    }
    Ok(())
}

fn write_items(
    dir: &Path,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
) -> Result<(), String> {
    match items {
        None => data.iter().try_for_each(|(k, v)| write(dir, k, v)),
        Some(items) => items.iter().try_for_each(|i| match data.get(&i.key) {
            Some(v) => write(dir, &i.path, v),
            None => Err(format!(
                "configmap/secret references non-existent key {}",
                i.key
            )),
        }),
    }
}

async fn config_map(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: bool,
    ca_pem: &[u8],
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await.map_err(|e| e.to_string())? {
        Some(cm) => Ok(cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .chain(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            )
            .collect()),
        // The root-CA publisher is not running: serve the cluster CA ourselves.
        None if name == "kube-root-ca.crt" => {
            Ok(BTreeMap::from([("ca.crt".to_owned(), ca_pem.to_vec())]))
        }
        None if optional => Ok(BTreeMap::new()),
        None => Err(format!("configmap \"{name}\" not found")),
    }
}

async fn secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await.map_err(|e| e.to_string())? {
        Some(s) => Ok(s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()),
        None if optional => Ok(BTreeMap::new()),
        None => Err(format!("secret \"{name}\" not found")),
    }
}

fn field(pod: &Pod, path: &str) -> String {
    let m = &pod.metadata;
    match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        _ => String::new(),
    }
}
