//! Node registration, node status heartbeats and the node Lease, as the kubelet
//! does them (pkg/kubelet/kubelet_node_status.go, pkg/kubelet/nodestatus/setters.go,
//! pkg/kubelet/nodelease).

use crate::health::{bounded, is_unavailable, ApiHealth, Backoff};
use crate::NodeConfig;
use armorlet_landlock::AppArmorNode;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How often node status and the Lease are renewed (`nodeStatusReportFrequency` /
/// `nodeLeaseDurationSeconds`/4 rounded, as the kubelet's defaults).
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// The kubelet's default `nodeLeaseDurationSeconds`.
const LEASE_DURATION_SECONDS: i32 = 40;
/// The node-lease namespace.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Publishes the node object and its heartbeats.
#[derive(Clone)]
pub struct NodeReporter {
    client: kube::Client,
    cfg: Arc<NodeConfig>,
    runtime_version: String,
    since: String,
    apparmor: Arc<AppArmorNode>,
    /// `spec.podCIDR`.
    pod_cidr: String,
    /// The profile labels and annotations last published (`None`: not yet).
    published: Arc<std::sync::Mutex<Option<Published>>>,
    /// The API server's availability, shared with the rest of the agent.
    health: ApiHealth,
    /// The node's image store, listed in `status.images`.
    images: Arc<armorlet_images::ImageStore>,
}

/// What was last published: the profile labels and the profiles annotation.
type Published = (BTreeMap<String, String>, String);

/// Prefix of the node labels naming the AppArmor profiles loaded on the node
/// (value: the mode, `enforce` or `complain`), so pods can select nodes with
/// `nodeSelector` as the AppArmor tutorial suggests.
pub const PROFILE_LABEL_PREFIX: &str = "apparmor.armorlet.io/";

/// Node annotation holding the exact loaded profiles as JSON (`{"name": "mode"}`; labels
/// must shorten or drop some names), read by `armorlet apparmor status --node`.
pub const PROFILES_ANNOTATION: &str = "apparmor.armorlet.io/profiles";
/// Node annotation naming the AppArmor backend: `kernel`, `landlock` or `none`.
pub const BACKEND_ANNOTATION: &str = "apparmor.armorlet.io/backend";

impl NodeReporter {
    /// A reporter for the configured node; `runtime_version` is e.g. `crun://1.8.1`.
    pub fn new(
        client: kube::Client,
        cfg: Arc<NodeConfig>,
        runtime_version: &str,
        apparmor: Arc<AppArmorNode>,
        pod_cidr: String,
        health: ApiHealth,
        images: Arc<armorlet_images::ImageStore>,
    ) -> Self {
        NodeReporter {
            client,
            cfg,
            runtime_version: runtime_version.to_owned(),
            since: crate::time::now(),
            apparmor,
            pod_cidr,
            published: Arc::default(),
            health,
            images,
        }
    }

    /// Publishes the profile labels when the loaded profiles changed since the
    /// last call (cheap otherwise: one read of the profiles list). Waits while the
    /// API server is unavailable.
    pub async fn sync_profile_labels(&self) {
        let profiles = self.apparmor.loaded_profiles();
        let want = (
            profile_labels(&profiles),
            serde_json::to_string(&profiles).unwrap_or_default(),
        );
        if self.published.lock().expect("labels lock").as_ref() == Some(&want) {
            return;
        }
        if !self.health.due() {
            return;
        }
        let patched = bounded(self.patch_profile_labels(&want.0, &want.1)).await;
        self.health.record("node profile labels", &patched);
        match patched {
            Ok(()) => *self.published.lock().expect("labels lock") = Some(want),
            Err(e) if is_unavailable(&e) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot update the node's AppArmor profile labels")
            }
        }
    }

    /// Sets `want` and removes the other profile labels (of unloaded profiles).
    async fn patch_profile_labels(
        &self,
        want: &BTreeMap<String, String>,
        profiles_json: &str,
    ) -> Result<(), kube::Error> {
        let node = self.nodes().get(&self.cfg.name).await?;
        let mut labels = serde_json::Map::new();
        for key in node.metadata.labels.unwrap_or_default().into_keys() {
            if key.starts_with(PROFILE_LABEL_PREFIX) && !want.contains_key(&key) {
                labels.insert(key, Value::Null);
            }
        }
        for (k, v) in want {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
        let backend = match self.apparmor.backend() {
            armorlet_landlock::BackendKind::Kernel => "kernel",
            armorlet_landlock::BackendKind::Landlock => "landlock",
            armorlet_landlock::BackendKind::None => "none",
        };
        let patch = json!({"metadata": {"labels": labels, "annotations": {
            PROFILES_ANNOTATION: profiles_json, BACKEND_ANNOTATION: backend}}});
        self.nodes()
            .patch(
                &self.cfg.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Creates the Node (or takes over an existing one) and posts its first status.
    pub async fn register(&self) -> Result<(), kube::Error> {
        let mut spec = json!({"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]});
        if !self.cfg.register_with_taints.is_empty() {
            spec["taints"] = json!(self.cfg.register_with_taints);
        }
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": self.cfg.name, "labels": self.labels()},
            "spec": spec,
        }))
        .map_err(kube::Error::SerdeError)?;
        match self.nodes().create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let patch = json!({"metadata": {"labels": self.labels()},
                    "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}});
                self.nodes()
                    .patch(
                        &self.cfg.name,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
            }
            Err(e) => return Err(e),
        }
        self.post_status(true).await?;
        self.renew_lease().await
    }

    /// Posts node status and renews the Lease every [`HEARTBEAT`], forever. While the
    /// API server is unavailable the heartbeat is retried sooner, 200 ms doubling up to
    /// 7 s, as the kubelet's lease controller retries
    /// (component-helpers/apimachinery/lease/controller.go `backoffEnsureLease`), so the
    /// node is Ready again within seconds of the server's return.
    pub async fn heartbeat_loop(self) {
        let mut retry = Backoff::new(Duration::from_millis(200), Duration::from_secs(7));
        loop {
            let beat = bounded(async {
                self.post_status(true).await?;
                self.renew_lease().await
            })
            .await;
            self.health.record("node heartbeat", &beat);
            let wait = match beat {
                Ok(()) => {
                    retry.reset();
                    // Re-published every heartbeat too, in case someone edited the labels.
                    *self.published.lock().expect("labels lock") = None;
                    self.sync_profile_labels().await;
                    HEARTBEAT
                }
                Err(e) => {
                    if !is_unavailable(&e) {
                        tracing::warn!(error = %e, "cannot post node status or renew its lease");
                    }
                    retry.next_delay().min(HEARTBEAT)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// On clean shutdown: Ready becomes False (`KubeletNotReady`), so the
    /// control plane stops counting on the node until it comes back.
    pub async fn mark_not_ready(&self) {
        if let Err(e) = self.post_status(false).await {
            tracing::warn!(error = %e, "cannot mark the node NotReady");
        }
    }

    async fn post_status(&self, ready: bool) -> Result<(), kube::Error> {
        let patch = json!({"status": self.status(ready)});
        self.nodes()
            .patch_status(
                &self.cfg.name,
                &PatchParams {
                    field_manager: Some("kubelet".into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// The well-known labels the kubelet sets (pkg/kubelet/kubelet_node_status.go `initialNode`).
    fn labels(&self) -> Value {
        let mut labels = json!({
            "kubernetes.io/hostname": self.cfg.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": go_arch(),
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": go_arch(),
        });
        for (k, v) in &self.cfg.labels {
            labels[k] = Value::String(v.clone());
        }
        labels
    }

    fn status(&self, ready: bool) -> Value {
        let now = crate::time::now();
        let (capacity, allocatable) = capacity(&self.cfg);
        let mut status = json!({
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": self.conditions(&now, ready),
            "addresses": [
                {"type": "InternalIP", "address": node_ip(&self.cfg).to_string()},
                {"type": "Hostname", "address": self.cfg.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.cfg.api_listen.port()}},
            "nodeInfo": self.node_info(),
        });
        // On a failed listing the kubelet reports no images and logs the error
        // (nodestatus/setters.go `Images`); leaving the field out keeps the last list.
        match self.images.list() {
            Ok(list) => status["images"] = status_images(list),
            Err(e) => tracing::warn!(error = %e, "error getting image list"),
        }
        status
    }

    /// The four conditions (pkg/kubelet/nodestatus/setters.go `MemoryPressureCondition`,
    /// `DiskPressureCondition`, `PIDPressureCondition`, `ReadyCondition`).
    fn conditions(&self, now: &str, ready: bool) -> Value {
        let cond = |type_: &str, status: &str, reason: &str, message: &str| {
            json!({"type": type_, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": now, "lastTransitionTime": self.since})
        };
        let readiness = if ready {
            let message = format!(
                "kubelet is posting ready status{}",
                self.apparmor.ready_suffix().unwrap_or_default()
            );
            cond("Ready", "True", "KubeletReady", &message)
        } else {
            let mut c = cond("Ready", "False", "KubeletNotReady", "kubelet is stopped");
            c["lastTransitionTime"] = now.into();
            c
        };
        json!([
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available"
            ),
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure"
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available"
            ),
            readiness,
        ])
    }

    fn node_info(&self) -> Value {
        json!({
            "machineID": read_trimmed("/etc/machine-id"),
            "systemUUID": read_trimmed("/sys/class/dmi/id/product_uuid"),
            "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease"),
            "osImage": os_image(),
            "containerRuntimeVersion": self.runtime_version,
            "kubeletVersion": format!("v1.{}.0", self.cfg.settings.version.minor()),
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": go_arch(),
        })
    }

    /// Creates or renews `kube-node-lease/<node>` (pkg/kubelet/nodelease via
    /// k8s.io/component-helpers/apimachinery/lease/controller.go).
    async fn renew_lease(&self) -> Result<(), kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let renew = crate::time::micro_now();
        let patch = json!({"spec": {"renewTime": renew, "holderIdentity": self.cfg.name,
                                    "leaseDurationSeconds": LEASE_DURATION_SECONDS}});
        match api
            .patch(
                &self.cfg.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                let node_uid = self.nodes().get(&self.cfg.name).await?.metadata.uid;
                let lease: Lease = serde_json::from_value(json!({
                    "metadata": {"name": self.cfg.name, "namespace": LEASE_NAMESPACE,
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                            "name": self.cfg.name, "uid": node_uid}]},
                    "spec": patch["spec"],
                }))
                .map_err(kube::Error::SerdeError)?;
                api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}

/// GOARCH of this machine.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// `PRETTY_NAME` from /etc/os-release (the kubelet reads it through cadvisor).
fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".to_owned())
}

/// The InternalIP: configured, else the source address of the default route.
pub fn node_ip(cfg: &NodeConfig) -> std::net::IpAddr {
    cfg.node_ip.unwrap_or_else(|| {
        std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
            .and_then(|s| s.local_addr())
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))
    })
}

/// Capacity and allocatable: allocatable subtracts the kubelet's default hard
/// eviction thresholds (`memory.available<100Mi`, `nodefs.available<10%`,
/// pkg/kubelet/eviction/defaults_linux.go) as pkg/kubelet/cm/node_container_manager_linux.go does.
fn capacity(cfg: &NodeConfig) -> (Value, Value) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_ki = meminfo_total_ki();
    let disk = disk_bytes(&cfg.view.host_path(&cfg.kubelet_root_dir))
        .or_else(|| disk_bytes(&cfg.data_dir))
        .unwrap_or(0);
    let capacity = json!({
        "cpu": cpus.to_string(), "memory": format!("{mem_ki}Ki"),
        "ephemeral-storage": format!("{}Ki", disk / 1024),
        "hugepages-1Gi": "0", "hugepages-2Mi": "0", "pods": "110",
    });
    let allocatable = json!({
        "cpu": cpus.to_string(), "memory": format!("{}Ki", mem_ki.saturating_sub(100 * 1024)),
        "ephemeral-storage": (disk - disk / 10).to_string(),
        "hugepages-1Gi": "0", "hugepages-2Mi": "0", "pods": "110",
    });
    (capacity, allocatable)
}

fn meminfo_total_ki() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn disk_bytes(path: &std::path::Path) -> Option<u64> {
    let mut p = path.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let st = rustix::fs::statvfs(&p).ok()?;
    Some(st.f_blocks * st.f_frsize)
}

/// The node labels for the loaded profiles: `apparmor.armorlet.io/<name>: <mode>`.
/// A label name is at most 63 characters of `[A-Za-z0-9._-]` starting and ending
/// alphanumeric (apimachinery validation `IsQualifiedName`); other characters
/// (e.g. the `/` of path-named profiles) become `_`, and a name that does not
/// fit gets no label.
pub fn profile_labels(profiles: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    profiles
        .iter()
        .filter_map(|(name, mode)| {
            let mut l: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            l = l
                .trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_owned();
            let value = if mode.chars().all(|c| c.is_ascii_alphanumeric()) && mode.len() <= 63 {
                mode.clone()
            } else {
                String::new()
            };
            (!l.is_empty() && l.len() <= 63).then(|| (format!("{PROFILE_LABEL_PREFIX}{l}"), value))
        })
        .collect()
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn profile_label_names() {
        let profiles = BTreeMap::from([
            (
                "k8s-apparmor-example-deny-write".to_string(),
                "enforce".to_string(),
            ),
            ("/usr/bin/foo".to_string(), "complain".to_string()),
            ("x".repeat(64), "enforce".to_string()),
            ("///".to_string(), "enforce".to_string()),
        ]);
        let labels = profile_labels(&profiles);
        assert_eq!(
            labels,
            BTreeMap::from([
                (
                    "apparmor.armorlet.io/k8s-apparmor-example-deny-write".to_string(),
                    "enforce".to_string()
                ),
                (
                    "apparmor.armorlet.io/usr_bin_foo".to_string(),
                    "complain".to_string()
                ),
            ])
        );
    }
}

/// The kubelet's `--node-status-max-images` default.
const NODE_STATUS_MAX_IMAGES: usize = 50;
/// pkg/kubelet/nodestatus/setters.go `MaxNamesPerImageInNodeStatus`.
const MAX_NAMES_PER_IMAGE: usize = 5;

/// `status.images` as the kubelet's `Images` setter builds it (pkg/kubelet/nodestatus/setters.go):
/// the largest images first (the image manager's list is sorted by size,
/// pkg/kubelet/images/image_gc_manager.go), at most 50, each named by its repo digests
/// then its tags, at most 5 names.
fn status_images(mut images: Vec<armorlet_images::ImageRecord>) -> Value {
    images.sort_by_key(|image| std::cmp::Reverse(image.size));
    images
        .into_iter()
        .take(NODE_STATUS_MAX_IMAGES)
        .map(|image| {
            let names: Vec<String> = image
                .repo_digests
                .into_iter()
                .chain(image.names)
                .take(MAX_NAMES_PER_IMAGE)
                .collect();
            json!({"names": names, "sizeBytes": image.size})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use armorlet_images::ImageRecord;

    fn image(id: &str, size: u64, names: &[&str], digests: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            size,
            config: Default::default(),
        }
    }

    #[test]
    fn status_images_are_largest_first_digests_then_tags_at_most_five_names() {
        let tags: Vec<String> = (0..6).map(|i| format!("docker.io/x/many:{i}")).collect();
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let list = status_images(vec![
            image(
                "sha256:a",
                10,
                &["docker.io/library/busybox:latest"],
                &["docker.io/library/busybox@sha256:aa"],
            ),
            image(
                "sha256:b",
                30,
                &["docker.io/hashicorp/http-echo:0.2.3"],
                &[],
            ),
            image("sha256:c", 20, &tag_refs, &["docker.io/x/many@sha256:cc"]),
        ]);
        assert_eq!(
            list,
            json!([
                {"names": ["docker.io/hashicorp/http-echo:0.2.3"], "sizeBytes": 30},
                {"names": ["docker.io/x/many@sha256:cc", "docker.io/x/many:0",
                           "docker.io/x/many:1", "docker.io/x/many:2", "docker.io/x/many:3"],
                 "sizeBytes": 20},
                {"names": ["docker.io/library/busybox@sha256:aa",
                           "docker.io/library/busybox:latest"], "sizeBytes": 10},
            ])
        );
    }

    #[test]
    fn status_images_lists_at_most_fifty() {
        let many = (0..60)
            .map(|i| image(&format!("sha256:{i}"), i, &[], &[]))
            .collect();
        let list = status_images(many);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 50);
        assert_eq!(list[0]["sizeBytes"], 59);
        assert_eq!(list[49]["sizeBytes"], 10);
    }
}
