//! The Security Profiles Operator's node daemon, for `SeccompProfile`s and
//! `AppArmorProfile`s: every second each seccomp profile of the cluster is written to
//! `<kubelet-root>/seccomp/operator/<namespace>/<name>.json` (through the node's
//! view), checked first with armorlet-seccomp's validation (an invalid profile
//! is not written: pods referring to it fail as for a missing file), and the
//! node reports it in a `SecurityProfileNodeStatus` `<name>-<node>` in the
//! profile's namespace (`Installed` or `Error`, as SPO's daemon does). Files
//! of profiles that are gone are removed, with their node statuses. The API
//! server's `profiles` pass turns the node statuses into the profile's status.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use armorlet_landlock::AppArmorNode;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use serde_json::{json, Value};

use crate::profiles_dir::ProfilesDir;
use crate::NodeConfig;

pub use armorlet_confinement::profiles::SPO_NAMESPACE;
use armorlet_confinement::profiles::{PROFILE_RECORDING_ANNOTATION, RECORD_APPARMOR_ANNOTATION};

/// AppArmor profiles: where their files go and the backend that loads them.
#[derive(Debug)]
pub struct AppArmorInstall {
    node: Arc<AppArmorNode>,
    dir: PathBuf,
    loaded: ProfilesDir,
}

impl AppArmorInstall {
    /// Profiles written to `dir`, loaded by `node`.
    pub fn new(node: Arc<AppArmorNode>, dir: PathBuf) -> Self {
        let loaded = ProfilesDir::new(&dir);
        AppArmorInstall { node, dir, loaded }
    }
}

/// The node daemon: seccomp profiles into the kubelet's directory, AppArmor profiles into
/// the node's backend (when there is one).
#[derive(Debug)]
pub struct Operator {
    /// Where and as which node.
    pub target: OperatorTarget,
    /// AppArmor profiles, or `None` when the node cannot load any.
    pub apparmor: Option<AppArmorInstall>,
    /// The node's container recordings, exported as profiles for `ProfileRecording`s
    /// (`None`: this daemon runs beside a kubelet that records nothing).
    pub recordings: Option<Recordings>,
}

/// Where the agent writes its recordings, and its pods (to tell which have finished).
#[derive(Debug)]
pub struct Recordings {
    pub dir: PathBuf,
    pub pods: crate::watch::PodCache,
}

impl Operator {
    /// One pass over both kinds; errors are logged and the next pass retries.
    pub async fn sync(&mut self, client: &kube::Client) {
        sync(client, &self.target).await;
        if let Some(aa) = &mut self.apparmor {
            if let Err(e) = sync_apparmor(client, &self.target, aa).await {
                tracing::debug!(error = %e, "AppArmor profile sync");
            }
        }
        if let Some(r) = &self.recordings {
            if let Err(e) = export_recordings(client, r, &self.target.node).await {
                tracing::warn!(error = %e, "ProfileRecording export");
            }
        }
    }
}

/// In a pod's recording directory: which ProfileRecording it belongs to (written while the
/// pod exists, read once it is gone).
const RECORDING_META: &str = "profile-recording.json";
/// In a pod's recording directory: its profiles were created.
const EXPORTED: &str = ".exported";

/// ProfileRecordings, the node's half (SPO's recorder): while a recorded pod exists its
/// recording directory is marked with the ProfileRecording; once the pod is deleted or
/// has finished, each container's recording becomes a profile `<recording>-<container>`
/// in the pod's namespace (a SeccompProfile, merged with an existing one of that name, as
/// SPO's `mergeStrategy: containers`) or an AppArmorProfile (its `spec.policy`).
async fn export_recordings(
    client: &kube::Client,
    recordings: &Recordings,
    node: &str,
) -> Result<(), kube::Error> {
    let dir = recordings.dir.as_path();
    // The agent's pod cache: no list of the node's pods every second.
    let on_node = match recordings.pods.snapshot() {
        Some(pods) => pods,
        None => {
            let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::all(client.clone());
            pods.list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
                .await?
                .items
        }
    };
    let mut running = BTreeSet::new();
    for p in &on_node {
        let (ns, name) = (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        );
        let finished = p
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed");
        let annotations = p.metadata.annotations.clone().unwrap_or_default();
        let Some(recording) = annotations.get(PROFILE_RECORDING_ANNOTATION) else {
            continue;
        };
        if unsafe_name(&ns) || unsafe_name(&name) {
            continue;
        }
        if !finished {
            running.insert((ns.clone(), name.clone()));
        }
        let kind = if annotations.contains_key(RECORD_APPARMOR_ANNOTATION) {
            APPARMOR
        } else {
            SECCOMP
        };
        let pod_dir = dir.join(&ns).join(&name);
        if !finished {
            // A pod of that name recorded again (re-created): its runs merge, and the
            // merged recording is exported again when it ends.
            let _ = std::fs::remove_file(pod_dir.join(EXPORTED));
        }
        let meta = pod_dir.join(RECORDING_META);
        if !meta.exists() {
            let body = json!({"recording": recording, "kind": kind}).to_string();
            if std::fs::create_dir_all(&pod_dir)
                .and_then(|()| std::fs::write(&meta, body))
                .is_err()
            {
                tracing::warn!(dir = %pod_dir.display(), "cannot mark a recorded pod");
            }
        }
    }
    for ns_dir in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for pod_dir in std::fs::read_dir(ns_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let pod_dir = pod_dir.path();
            let ns = ns_dir.file_name().to_string_lossy().into_owned();
            let pod = pod_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if running.contains(&(ns.clone(), pod)) || pod_dir.join(EXPORTED).exists() {
                continue;
            }
            let Ok(meta) = std::fs::read(pod_dir.join(RECORDING_META)) else {
                continue;
            };
            let meta: Value = serde_json::from_slice(&meta).unwrap_or_default();
            export_pod(client, &ns, &pod_dir, &meta).await?;
            let _ = std::fs::write(pod_dir.join(EXPORTED), b"");
        }
    }
    Ok(())
}

/// Creates (or merges into) the profiles of one recorded pod's containers.
async fn export_pod(
    client: &kube::Client,
    ns: &str,
    pod_dir: &Path,
    meta: &Value,
) -> Result<(), kube::Error> {
    let recording = meta["recording"].as_str().unwrap_or("");
    if unsafe_name(recording) {
        return Ok(());
    }
    for f in std::fs::read_dir(pod_dir).into_iter().flatten().flatten() {
        let path = f.path();
        let Some(container) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|n| *n != "profile-recording")
        else {
            continue;
        };
        let rec = match armorlet_runtime::record::read_recording(&path) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unreadable recording");
                continue;
            }
        };
        let name = format!("{recording}-{container}");
        if meta["kind"] == APPARMOR {
            let api: Api<DynamicObject> = Api::all_with(
                client.clone(),
                &resource("v1alpha1", APPARMOR, "apparmorprofiles"),
            );
            let obj = json!({
                "apiVersion": format!("{GROUP}/v1alpha1"), "kind": APPARMOR,
                "metadata": {"name": name, "labels": {"spo.x-k8s.io/recording-id": recording}},
                "spec": {"policy": rec.apparmor.profile(&name)},
            });
            upsert(&api, &name, obj).await?;
        } else {
            let api: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                ns,
                &resource("v1beta1", SECCOMP, "seccompprofiles"),
            );
            let mut all = rec.seccomp.clone();
            if let Some(cur) = api.get_opt(&name).await? {
                let mut spec = cur.data["spec"].clone();
                if let Some(m) = spec.as_object_mut() {
                    m.remove("disabled");
                }
                let earlier = serde_json::to_string(&spec)
                    .ok()
                    .and_then(|t| armorlet_seccomp::Profile::from_json(&t).ok());
                if let Some(p) = earlier {
                    if let Ok(r) = armorlet_seccomp::record::Recording::from_profile(&p, &name) {
                        all.merge(&r);
                    }
                }
            }
            let profile = all.profile(armorlet_seccomp::record::GenerateOptions::default());
            let spec = serde_json::to_value(&profile).map_err(kube::Error::SerdeError)?;
            let obj = json!({
                "apiVersion": format!("{GROUP}/v1beta1"), "kind": SECCOMP,
                "metadata": {"name": name, "namespace": ns, "labels": {"spo.x-k8s.io/recording-id": recording}},
                "spec": spec,
            });
            upsert(&api, &name, obj).await?;
        }
        tracing::info!(namespace = %ns, profile = %name, "recorded profile created");
    }
    Ok(())
}

/// Creates `obj`, or replaces the existing object's spec.
async fn upsert(api: &Api<DynamicObject>, name: &str, obj: Value) -> Result<(), kube::Error> {
    let mut obj: DynamicObject = serde_json::from_value(obj).map_err(kube::Error::SerdeError)?;
    match api.get_opt(name).await? {
        Some(cur) => {
            obj.metadata.resource_version = cur.metadata.resource_version.clone();
            api.replace(name, &PostParams::default(), &obj).await?;
        }
        None => {
            api.create(&PostParams::default(), &obj).await?;
        }
    }
    Ok(())
}

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
    mut operator: Operator,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => operator.sync(&client).await,
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
        report(client, cfg, SECCOMP, &ns, &name, state, message).await?;
    }
    remove_others(&root, &keep);
    // This node's statuses of profiles that are gone.
    let statuses: Api<DynamicObject> = Api::all_with(client.clone(), &node_status_resource());
    let mine = ListParams::default().labels(&format!(
        "spo.x-k8s.io/node-name={},spo.x-k8s.io/profile-kind=SeccompProfile",
        cfg.node
    ));
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

const SECCOMP: &str = "SeccompProfile";
const APPARMOR: &str = "AppArmorProfile";

/// A profile name is a file name: a server that does not validate names (the agent talks
/// to any) must not make it write elsewhere.
fn unsafe_name(s: &str) -> bool {
    s.is_empty() || s.contains('/') || s.starts_with('.')
}

/// One pass over the AppArmorProfiles: write, load, report, unload what is gone.
async fn sync_apparmor(
    client: &kube::Client,
    cfg: &OperatorTarget,
    aa: &mut AppArmorInstall,
) -> Result<(), kube::Error> {
    let profiles: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("v1alpha1", APPARMOR, "apparmorprofiles"),
    );
    let list = profiles.list(&ListParams::default()).await?;
    let mut keep = BTreeSet::new();
    let mut written = Vec::new();
    let mut failed = Vec::new();
    for p in &list.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        if p.data["spec"]["disabled"] == true || unsafe_name(&name) {
            continue;
        }
        let file = aa.dir.join(&name);
        match apparmor_text(&name, &p.data["spec"]) {
            Ok(text) => match write_if_changed(&file, text.as_bytes()) {
                Ok(()) => {
                    keep.insert(file.clone());
                    written.push((name, file));
                }
                Err(e) => failed.push((name, format!("{}: {e}", file.display()))),
            },
            Err(e) => failed.push((name, e)),
        }
    }
    for f in std::fs::read_dir(&aa.dir).into_iter().flatten().flatten() {
        if !keep.contains(&f.path()) {
            let _ = std::fs::remove_file(f.path());
        }
    }
    // Loads what changed and unloads the profiles of removed files.
    aa.loaded.sync(&aa.node);
    for (name, file) in written {
        let (state, message) = match aa.loaded.outcome(&file) {
            Some(Ok(names)) if names.contains(&name) => ("Installed", None),
            Some(Ok(_)) => (
                "Error",
                Some(format!("the policy does not define profile {name}")),
            ),
            Some(Err(e)) => ("Error", Some(e.to_owned())),
            None => ("InProgress", None),
        };
        report(client, cfg, APPARMOR, SPO_NAMESPACE, &name, state, message).await?;
    }
    for (name, message) in failed {
        report(
            client,
            cfg,
            APPARMOR,
            SPO_NAMESPACE,
            &name,
            "Error",
            Some(message),
        )
        .await?;
    }
    let statuses: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), SPO_NAMESPACE, &node_status_resource());
    let mine = ListParams::default().labels(&format!(
        "spo.x-k8s.io/node-name={},spo.x-k8s.io/profile-kind={APPARMOR}",
        cfg.node
    ));
    for s in statuses.list(&mine).await?.items {
        let name = s.metadata.name.clone().unwrap_or_default();
        let exists = list.items.iter().any(|p| {
            p.data["spec"]["disabled"] != true
                && format!("{}-{}", p.metadata.name.as_deref().unwrap_or(""), cfg.node) == name
        });
        if !exists {
            statuses.delete(&name, &Default::default()).await?;
        }
    }
    Ok(())
}

/// The profile text of an AppArmorProfile's spec: `policy`, or `abstract` compiled to
/// rules; `complainMode` sets the flag.
pub fn apparmor_text(name: &str, spec: &Value) -> Result<String, String> {
    let complain = spec["complainMode"] == true;
    let text = match spec["policy"].as_str() {
        Some(policy) => policy.to_owned(),
        None => abstract_profile(name, &spec["abstract"])?,
    };
    let text = if complain {
        let opts = armorlet_apparmor::ParseOptions {
            include_dirs: vec![PathBuf::from("/etc/apparmor.d")],
        };
        armorlet_apparmor::suggest::set_mode(&text, Some(name), true, &opts)
            .map_err(|e| format!("spec.complainMode: {e}"))?
    } else {
        text
    };
    // The backend's load checks the text (with its include path) and that it defines
    // `name`: see `sync_apparmor`.
    Ok(text)
}

/// SPO's `abstract` allow lists as a profile.
fn abstract_profile(name: &str, a: &Value) -> Result<String, String> {
    use std::fmt::Write;
    let list = |ptr: &str| -> Vec<String> {
        a.pointer(ptr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let quote = |p: &str| {
        if p.contains([' ', '\t', '"', ',']) {
            format!("{p:?}")
        } else {
            p.to_owned()
        }
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# AppArmorProfile {name}: spec.abstract compiled by armorlet."
    );
    let _ = writeln!(
        o,
        "profile {name} flags=(attach_disconnected,mediate_deleted) {{"
    );
    for c in list("/capability/allowedCapabilities") {
        let c = c.to_lowercase();
        let c = c.strip_prefix("cap_").unwrap_or(&c);
        let _ = writeln!(o, "  capability {c},");
    }
    let net = &a["network"];
    if net["allowRaw"] == true {
        let _ = writeln!(o, "  network raw,");
    }
    for (flag, ty) in [("allowTcp", "stream"), ("allowUdp", "dgram")] {
        if net["allowedProtocols"][flag] == true {
            let _ = writeln!(o, "  network inet {ty},\n  network inet6 {ty},");
        }
    }
    for (ptr, mode) in [
        ("/executable/allowedExecutables", "ix"),
        ("/executable/allowedLibraries", "mr"),
        ("/filesystem/readOnlyPaths", "r"),
        ("/filesystem/writeOnlyPaths", "w"),
        ("/filesystem/readWritePaths", "rw"),
    ] {
        for p in list(ptr) {
            if !p.starts_with('/') && !p.starts_with('@') {
                return Err(format!("spec.abstract: {p:?} is not an absolute path"));
            }
            let _ = writeln!(o, "  {} {mode},", quote(&p));
        }
    }
    o.push_str("}\n");
    Ok(o)
}

fn write_if_changed(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(file).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_file_name(format!(
        ".{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("profile")
    ));
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
    kind: &str,
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
                "spo.x-k8s.io/profile-id": format!("{kind}-{profile}"),
                "spo.x-k8s.io/profile-kind": kind,
                "spo.x-k8s.io/profile-state": state,
            },
        },
        "nodeName": cfg.node,
        "profileKind": kind,
        "status": state,
    });
    if let Some(m) = message {
        want["message"] = json!(m);
    }
    match api.get_opt(&name).await? {
        Some(cur) => {
            let same = cur.data["status"] == want["status"]
                && cur.data["message"] == want["message"]
                && cur
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("spo.x-k8s.io/profile-state"))
                    == Some(&state.to_owned());
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
