//! Pod workers: one explicit state machine per pod bound to the node
//! (pkg/kubelet/pod_workers.go, pkg/kubelet/kuberuntime/kuberuntime_manager.go
//! `SyncPod`/`computePodActions`). Each sync: admission → sandbox → volumes →
//! init containers in order → containers (create/start/restart with back-off)
//! → status. A pod with a deletionTimestamp is terminated on its own task.

use crate::backoff::Backoff;
use crate::events::{Recorder, NORMAL, WARNING};
use crate::health::ApiHealth;
use crate::network::Network;
use crate::probes::{Kind, ProbeState, Target};
use crate::spec::{self, labels, SpecError, SpecInput};
use crate::status::{self, ContainerView, PodFacts, Transitions};
use crate::watch::PodCache;
use crate::NodeConfig;
use armorlet_confinement::{AppArmorAdmission, ContainerConfinement};
use armorlet_images::ImageStore;
use armorlet_landlock::AppArmorNode;
use armorlet_runtime::{ContainerState, Runtime, SandboxSpec};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::Api;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The runtime name used in `containerID` (`crun://<id>`).
fn runtime_prefix(rt: &Runtime) -> String {
    rt.runtime_version()
        .split("://")
        .next()
        .unwrap_or("crun")
        .to_owned()
}

/// One container's state in its pod worker.
#[derive(Debug, Default)]
struct Slot {
    current: Option<String>,
    previous: Option<String>,
    restart_count: u32,
    waiting: Option<(String, String)>,
    last_terminated: Option<Value>,
    recorded_exit_of: Option<String>,
    backoff: Backoff,
    started: Option<Instant>,
    image_id: String,
    /// The image pull back-off (the kubelet's `imageBackOff`, keyed by pod and image).
    pull_backoff: Backoff,
    /// A pull under way and when it started.
    pull: Option<(
        tokio::task::JoinHandle<Result<armorlet_images::Pulled, armorlet_images::ImageError>>,
        Instant,
    )>,
    /// The image step is not looked at again before this (after an image error).
    image_retry_at: Option<Instant>,
    probes: HashMap<Kind, ProbeState>,
}

impl Slot {
    /// The probe's verdict; `default` when the container has no such probe.
    fn verdict(&self, kind: Kind, has: bool, default: bool) -> bool {
        if !has {
            return default;
        }
        self.probes.get(&kind).and_then(|p| p.result) == Some(true)
    }
}

/// One pod's worker.
#[derive(Default)]
struct Worker {
    slots: HashMap<String, Slot>,
    sandbox_ready: bool,
    volumes: Option<BTreeMap<String, PathBuf>>,
    start_time: String,
    transitions: Transitions,
    last_written: Option<Value>,
    /// A status patch the API server has not taken yet (it was unavailable): written by a
    /// later sync, also once the pod is terminal.
    unwritten: Option<Value>,
    terminal: bool,
    terminating: bool,
    /// The last AppArmor Block event: its message and when it was recorded.
    block_event: Option<(String, Instant)>,
    /// The pod's IP on the node's pod network.
    pod_ip: Option<String>,
    /// The CNI ADD of the pod's sandbox while it runs: started once the sandbox's namespaces
    /// exist, it overlaps the volumes and the runtime's `create` of the first container, and
    /// is joined before anything of the pod starts ([`Agent::network_ready`]).
    network_pending: Option<tokio::task::JoinHandle<Result<Ipv4Addr, String>>>,
    /// The last CNI ADD failed: the next attempt is waited for before any container is made,
    /// so a pod whose network keeps failing gets no containers at all, as on the kubelet.
    network_failed: bool,
}

/// How often a still-blocked pod's AppArmor event is repeated: the kubelet
/// re-checks a blocked pod on its periodic resync (`--sync-frequency`, 1 min),
/// not on every pass of our 1 s loop.
const BLOCK_EVENT_EVERY: Duration = Duration::from_secs(60);

/// How long after an image error the image step runs again: the kubelet's pod worker
/// requeues a pod whose sync failed after a back-off period (pkg/kubelet/pod_workers.go);
/// ours is shorter than its 10 s so that `ErrImagePull` turns into `ImagePullBackOff` quickly
/// and a BackOff event is not recorded on every 1 s pass.
const IMAGE_RESYNC: Duration = Duration::from_secs(3);

/// All pod workers of the node.
pub struct Agent {
    client: kube::Client,
    cfg: Arc<NodeConfig>,
    runtime: Arc<Runtime>,
    images: Arc<ImageStore>,
    recorder: Recorder,
    workers: HashMap<String, Worker>,
    host_ip: String,
    ca_pem: Vec<u8>,
    prefix: String,
    done: Arc<std::sync::Mutex<HashSet<String>>>,
    apparmor: Arc<AppArmorNode>,
    network: Arc<Network>,
    /// The node's pods as the pod watch keeps them.
    pods: PodCache,
    /// The API server's availability: status writes wait for it.
    health: ApiHealth,
}

type SyncResult = Result<(), kube::Error>;

impl Agent {
    /// An agent with no workers yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        cfg: Arc<NodeConfig>,
        runtime: Arc<Runtime>,
        images: Arc<ImageStore>,
        apparmor: Arc<AppArmorNode>,
        network: Arc<Network>,
        pods: PodCache,
        health: ApiHealth,
    ) -> Self {
        Agent {
            pods,
            apparmor,
            network,
            recorder: Recorder::new(client.clone(), &cfg.name, health.clone()),
            health,
            host_ip: crate::node::node_ip(&cfg).to_string(),
            ca_pem: kubeconfig_ca(&cfg.kubeconfig),
            prefix: runtime_prefix(&runtime),
            client,
            cfg,
            runtime,
            images,
            workers: HashMap::new(),
            done: Arc::default(),
        }
    }

    fn pods_api(&self) -> Api<Pod> {
        Api::all(self.client.clone())
    }

    async fn list_pods(&self) -> Result<Vec<Pod>, kube::Error> {
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.cfg.name));
        Ok(self.pods_api().list(&lp).await?.items)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Runtime) -> T + Send + 'static,
    ) -> T {
        let rt = self.runtime.clone();
        tokio::task::spawn_blocking(move || f(&rt))
            .await
            .expect("runtime task panicked")
    }

    /// Adopts the containers of pods still bound here and removes the orphans
    /// (pkg/kubelet/kuberuntime/kuberuntime_gc.go for the orphan side).
    pub async fn adopt(&mut self) -> Result<(), crate::NodeError> {
        let pods = self.list_pods().await?;
        let live: HashMap<String, &Pod> = pods
            .iter()
            .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
            .collect();
        let records = self
            .blocking(|rt| rt.list_containers())
            .await
            .map_err(|e| crate::NodeError::Runtime(e.to_string()))?;
        let mut sorted = records;
        sorted.sort_by_key(|r| restart_label(&r.labels));
        for r in sorted {
            let Some(pod) = live.get(&r.pod_uid) else {
                let id = r.id.clone();
                tracing::info!(container = %id, "removing orphaned container");
                let _ = self
                    .blocking(move |rt| {
                        rt.stop_container(&id, Duration::from_secs(2))
                            .and_then(|_| rt.remove_container(&id))
                    })
                    .await;
                continue;
            };
            // Created but never started: the agent died between create and start. Nothing
            // of it ran, so it is removed and the worker creates it again (same restart
            // count), instead of waiting forever for a start that will not come.
            let id = r.id.clone();
            let never_started = self
                .blocking(move |rt| rt.container_status(&id))
                .await
                .is_ok_and(|st| st.state == armorlet_runtime::ContainerState::Created);
            if never_started {
                let id = r.id.clone();
                tracing::info!(container = %id, "removing a container created but never started");
                let _ = self.blocking(move |rt| rt.remove_container(&id)).await;
                continue;
            }
            let pod_ip = self
                .network
                .attached_ip(&r.pod_uid)
                .map(|ip| ip.to_string());
            let w = self.workers.entry(r.pod_uid.clone()).or_default();
            w.sandbox_ready = true;
            w.pod_ip = pod_ip;
            w.start_time = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| {
                    serde_json::to_value(t)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            let name = r.labels.get(labels::CONTAINER).cloned().unwrap_or_default();
            let slot = w.slots.entry(name).or_default();
            slot.previous = slot.current.take();
            slot.current = Some(r.id.clone());
            slot.restart_count = restart_label(&r.labels);
            slot.started = Some(Instant::now());
            tracing::info!(container = %r.id, pod = %r.pod_uid, "adopted container");
        }
        let network = self.network.clone();
        let live_uids: HashSet<String> = live.keys().cloned().collect();
        let _ = tokio::task::spawn_blocking(move || {
            network.detach_orphans(&|uid| live_uids.contains(uid))
        })
        .await;
        let sandboxes = self
            .blocking(|rt| rt.list_sandboxes())
            .await
            .unwrap_or_default();
        for s in sandboxes
            .into_iter()
            .filter(|s| !live.contains_key(&s.pod_uid))
        {
            let uid = s.pod_uid.clone();
            let _ = self.blocking(move |rt| rt.remove_sandbox(&uid)).await;
        }
        // Pods that ended while the agent was away (pkg/kubelet/kubelet_pods.go
        // `cleanupOrphanedPodDirs`, kuberuntime_gc.go `evictPodLogsDirectories`).
        let cfg = self.cfg.clone();
        let orphans: Vec<String> =
            std::fs::read_dir(cfg.data_dir.join("nodes").join(&cfg.name).join("pods"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|uid| !live.contains_key(uid))
                .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for uid in orphans {
                remove_pod_files(&cfg, &uid);
            }
        })
        .await;
        Ok(())
    }

    /// One pass over every pod bound to the node (the periodic resync).
    pub async fn sync_all(&mut self) {
        // The watch's cache; a list only until its first list arrived.
        let pods = match self.pods.snapshot() {
            Some(p) => p,
            None => match self.list_pods().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list pods");
                    return;
                }
            },
        };
        let finished: Vec<String> = self
            .done
            .lock()
            .map(|mut d| d.drain().collect())
            .unwrap_or_default();
        for uid in finished {
            self.workers.remove(&uid);
            self.recorder.forget(&uid).await;
        }
        let live: HashSet<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
        for pod in &pods {
            if let Err(e) = self.sync_pod(pod).await {
                tracing::warn!(pod = ?pod.metadata.name, error = %e, "pod sync failed");
            }
        }
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|u| !live.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(w) = self.workers.remove(&uid) {
                if !w.terminating {
                    self.spawn_teardown(uid, w, Duration::from_secs(2), None);
                }
            }
        }
    }

    async fn sync_pod(&mut self, pod: &Pod) -> SyncResult {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let is_new = !self.workers.contains_key(&uid);
        let w = self.workers.entry(uid.clone()).or_default();
        if w.terminating {
            return Ok(());
        }
        if pod.metadata.deletion_timestamp.is_some() {
            let w = std::mem::take(w);
            self.workers.insert(
                uid.clone(),
                Worker {
                    terminating: true,
                    ..Default::default()
                },
            );
            self.terminate(pod, uid, w).await;
            return Ok(());
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if w.terminal || (is_new && (phase == "Succeeded" || phase == "Failed")) {
            w.terminal = true;
            return self.write_unwritten(pod, &uid).await;
        }
        if w.start_time.is_empty() {
            w.start_time = crate::time::now();
        }
        let pod_json = serde_json::to_value(pod).map_err(kube::Error::SerdeError)?;
        if let Some(blocked) = self.admit(pod, &pod_json, &uid).await? {
            return self.write_blocked(pod, &uid, &blocked).await;
        }
        let confinement = match armorlet_confinement::resolve_pod(&pod_json, &self.cfg.settings) {
            Ok(c) => c,
            Err(e) => {
                let err = SpecError {
                    reason: "CreateContainerConfigError",
                    message: e.to_string(),
                };
                self.set_all_waiting(pod, &uid, &err);
                return self.write_status(pod, &uid, false).await;
            }
        };
        self.ensure_sandbox(pod, &uid).await?;
        let init_failed = self.run_containers(pod, &uid, &confinement).await?;
        self.write_status(pod, &uid, init_failed).await
    }

    /// AppArmor admission (pkg/kubelet/lifecycle/handlers.go). Returns the
    /// Block message when the pod must wait; a Reject fails the pod for good.
    async fn admit(
        &mut self,
        pod: &Pod,
        pod_json: &Value,
        uid: &str,
    ) -> Result<Option<String>, kube::Error> {
        let started = self
            .workers
            .get(uid)
            .is_some_and(|w| w.slots.values().any(|s| s.current.is_some()));
        if started {
            return Ok(None);
        }
        // Re-read on every sync: a profile loaded since the last one unblocks the pod.
        let host = self.apparmor.host();
        match armorlet_confinement::admit_apparmor(pod_json, &host, self.cfg.settings.version) {
            AppArmorAdmission::Admit => Ok(None),
            AppArmorAdmission::Block { message } => {
                let w = self.workers.entry(uid.to_owned()).or_default();
                let due = w
                    .block_event
                    .as_ref()
                    .is_none_or(|(m, at)| *m != message || at.elapsed() >= BLOCK_EVENT_EVERY);
                if due {
                    w.block_event = Some((message.clone(), Instant::now()));
                    self.recorder
                        .record(pod, None, WARNING, "AppArmor", &message)
                        .await;
                }
                Ok(Some(message))
            }
            AppArmorAdmission::Reject { message } => {
                self.recorder
                    .record(pod, None, WARNING, "AppArmor", &message)
                    .await;
                let patch = json!({"status": {"phase": "Failed", "reason": "AppArmor",
                    "message": format!("Pod was rejected: {message}"), "startTime": crate::time::now()}});
                // Terminal once the API server has it; until then re-checked each sync.
                if self.patch_status(pod, &patch).await? {
                    if let Some(w) = self.workers.get_mut(uid) {
                        w.terminal = true;
                    }
                }
                Ok(Some(String::new()))
            }
        }
    }

    /// Soft-blocked pod: Pending, reason AppArmor, containers Waiting `Blocked`.
    async fn write_blocked(&mut self, pod: &Pod, uid: &str, message: &str) -> SyncResult {
        if self.workers.get(uid).is_some_and(|w| w.terminal) {
            return Ok(());
        }
        let err = SpecError {
            reason: "Blocked",
            message: message.to_owned(),
        };
        self.set_all_waiting(pod, uid, &err);
        self.write_status(pod, uid, false).await?;
        let patch = json!({"status": {"phase": "Pending", "reason": "AppArmor", "message": format!("Pod {message}")}});
        self.patch_status(pod, &patch).await.map(drop)
    }

    fn set_all_waiting(&mut self, pod: &Pod, uid: &str, err: &SpecError) {
        let w = self.workers.entry(uid.to_owned()).or_default();
        for c in all_containers(pod) {
            let slot = w.slots.entry(c.name.clone()).or_default();
            slot.waiting = Some((err.reason.to_owned(), err.message.clone()));
        }
    }

    async fn ensure_sandbox(&mut self, pod: &Pod, uid: &str) -> SyncResult {
        let w = self.workers.get_mut(uid).expect("worker exists");
        if (w.sandbox_ready || w.network_pending.is_some()) && w.volumes.is_some() {
            return Ok(());
        }
        if !w.sandbox_ready && w.network_pending.is_none() {
            let spec = SandboxSpec {
                pod_uid: uid.to_owned(),
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                hostname: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.hostname.clone())
                    .or(pod.metadata.name.clone())
                    .unwrap_or_default(),
            };
            if let Err(e) = self.blocking(move |rt| rt.create_sandbox(&spec)).await {
                self.sandbox_failed(pod, &e.to_string()).await;
                return Ok(());
            }
            // The network is set up while the volumes are prepared and the first container
            // is created; nothing of the pod starts before it is done.
            let netns = self.runtime.config().sandboxes_dir.join(uid).join("net");
            let (network, pod2, uid2) = (self.network.clone(), pod.clone(), uid.to_owned());
            let attach = tokio::task::spawn_blocking(move || network.attach(&pod2, &uid2, &netns));
            let w = self.workers.get_mut(uid).expect("worker");
            w.network_pending = Some(attach);
            if w.network_failed && !self.network_ready(pod, uid, true).await {
                return Ok(());
            }
        }
        // The pod's directory exists for every pod that got a sandbox, volumes or not (the
        // kubelet's `makePodDataDirs`): the orphan cleanup after a restart finds the pod by it.
        let pod_dir = pod_dir(&self.cfg, uid);
        if let Err(e) = std::fs::create_dir_all(&pod_dir) {
            let msg = format!("cannot create pod directory {}: {e}", pod_dir.display());
            self.recorder
                .record(pod, None, WARNING, "FailedMount", &msg)
                .await;
            return Ok(());
        }
        match crate::volumes::prepare(&self.client, pod, &pod_dir, &self.ca_pem, &self.cfg.view)
            .await
        {
            Ok(v) => self.workers.get_mut(uid).expect("worker").volumes = Some(v),
            Err(msg) => {
                self.recorder
                    .record(pod, None, WARNING, "FailedMount", &msg)
                    .await;
            }
        }
        Ok(())
    }

    /// Whether the pod's network is set up, waiting for its CNI ADD when `wait` (else only
    /// collecting one that finished). A failed ADD is the kubelet's FailedCreatePodSandBox,
    /// and the next sync sets the sandbox up again.
    async fn network_ready(&mut self, pod: &Pod, uid: &str, wait: bool) -> bool {
        let Some(w) = self.workers.get_mut(uid) else {
            return false;
        };
        if w.sandbox_ready {
            return true;
        }
        let Some(pending) = w.network_pending.take_if(|p| wait || p.is_finished()) else {
            return false;
        };
        let attached = pending.await.unwrap_or_else(|e| Err(e.to_string()));
        match attached {
            Ok(ip) => {
                let w = self.workers.get_mut(uid).expect("worker");
                w.sandbox_ready = true;
                w.network_failed = false;
                w.pod_ip = Some(ip.to_string());
                true
            }
            Err(e) => {
                if let Some(w) = self.workers.get_mut(uid) {
                    w.network_failed = true;
                }
                // containerd's text (pkg/cri/server/sandbox_run.go).
                let msg = format!("failed to setup network for sandbox \"{uid}\": {e}");
                self.sandbox_failed(pod, &msg).await;
                false
            }
        }
    }

    async fn sandbox_failed(&mut self, pod: &Pod, error: &str) {
        let msg = format!("Failed to create pod sandbox: {error}");
        self.recorder
            .record(pod, None, WARNING, "FailedCreatePodSandBox", &msg)
            .await;
    }

    /// Init containers in order, then the containers. Returns whether an init
    /// container failed for good.
    async fn run_containers(
        &mut self,
        pod: &Pod,
        uid: &str,
        conf: &[ContainerConfinement],
    ) -> Result<bool, kube::Error> {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        // Containers are made once the volumes are ready and the sandbox's network is, or
        // while it is being set up (see `network_pending`).
        let not_yet =
            |w: &Worker| w.volumes.is_none() || (!w.sandbox_ready && w.network_pending.is_none());
        if self.workers.get(uid).is_none_or(not_yet) {
            return Ok(false);
        }
        for c in spec.init_containers.iter().flatten() {
            let init_policy = if policy == "Always" {
                "OnFailure"
            } else {
                policy.as_str()
            };
            let outcome = self.step(pod, uid, c, conf, init_policy).await?;
            match outcome {
                Outcome::Succeeded => continue,
                Outcome::FailedForGood => return Ok(true),
                Outcome::Busy => return Ok(false),
            }
        }
        for c in &spec.containers {
            self.step(pod, uid, c, conf, &policy).await?;
        }
        Ok(false)
    }

    /// Advances one container by one step.
    async fn step(
        &mut self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        conf: &[ContainerConfinement],
        policy: &str,
    ) -> Result<Outcome, kube::Error> {
        let current = self.slot(uid, &c.name).current.clone();
        let Some(id) = current else {
            if self
                .slot(uid, &c.name)
                .backoff
                .waiting(Instant::now())
                .is_none()
            {
                self.start(pod, uid, c, conf, false).await;
            }
            return Ok(Outcome::Busy);
        };
        let id2 = id.clone();
        let mut st = match self.blocking(move |rt| rt.container_status(&id2)).await {
            Ok(st) => st,
            Err(_) => {
                self.slot(uid, &c.name).current = None;
                return Ok(Outcome::Busy);
            }
        };
        if st.state == ContainerState::Unknown {
            // Its monitor died before recording its exit (or the runtime cannot tell): as
            // containerd after a dead shim, the container is deleted and exit 137 recorded,
            // then it is handled as any exited container. Until then nothing is started in
            // its place: it may still run.
            let id2 = id.clone();
            let recovered = self
                .blocking(move |rt| {
                    rt.recover_lost_monitor(&id2)?;
                    rt.container_status(&id2)
                })
                .await;
            match recovered {
                Ok(now) if now.state == ContainerState::Exited => st = now,
                Ok(_) => return Ok(Outcome::Busy),
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot clean up a container whose monitor died");
                    return Ok(Outcome::Busy);
                }
            }
        }
        // A container whose `start` failed never started: the runtime deleted it and its
        // monitor records that exit; what counts is the StartError recorded by `start`.
        let start_failed = self.slot(uid, &c.name).recorded_exit_of.as_deref() == Some(id.as_str())
            && st.started_at.is_none()
            && matches!(st.state, ContainerState::Created | ContainerState::Exited);
        if st.state == ContainerState::Running {
            self.probe(pod, uid, c, &id).await;
            return Ok(Outcome::Busy);
        }
        if st.state == ContainerState::Created && !start_failed {
            return Ok(Outcome::Busy);
        }
        let exit = if start_failed {
            128
        } else {
            st.exit_code.unwrap_or(-1)
        };
        let slot = self.slot(uid, &c.name);
        if slot.recorded_exit_of.as_deref() != Some(id.as_str()) {
            slot.recorded_exit_of = Some(id.clone());
            let reason = st.reason.clone().unwrap_or_else(|| {
                if exit == 0 {
                    "Completed".into()
                } else {
                    "Error".into()
                }
            });
            let mut t = json!({"exitCode": exit, "reason": reason, "containerID": format!("{}://{id}", self.prefix),
                "startedAt": st.started_at.map(crate::time::rfc3339), "finishedAt": st.finished_at.map(crate::time::rfc3339)});
            if let Some(m) = &st.message {
                t["message"] = m.clone().into();
            }
            let slot = self.slot(uid, &c.name);
            slot.last_terminated = Some(t);
            slot.waiting = None;
        }
        let restart = match policy {
            "Always" => true,
            "OnFailure" => exit != 0,
            _ => false,
        };
        if !restart {
            return Ok(if exit == 0 {
                Outcome::Succeeded
            } else {
                Outcome::FailedForGood
            });
        }
        self.restart(pod, uid, c, conf).await;
        Ok(Outcome::Busy)
    }

    /// Restart after back-off (pkg/kubelet/kuberuntime/kuberuntime_manager.go `doBackOff`).
    async fn restart(
        &mut self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        conf: &[ContainerConfinement],
    ) {
        let pod_ref = pod_ref(pod);
        let slot = self.slot(uid, &c.name);
        if let Some(period) = slot.backoff.waiting(Instant::now()) {
            let msg = format!(
                "back-off {}s restarting failed container={} pod={pod_ref}",
                period.as_secs(),
                c.name
            );
            slot.waiting = Some(("CrashLoopBackOff".into(), msg));
            let ev = format!(
                "Back-off restarting failed container {} in pod {pod_ref}",
                c.name
            );
            self.recorder
                .record(pod, Some(&c.name), WARNING, "BackOff", &ev)
                .await;
            return;
        }
        let ran_for = slot.started.map(|s| s.elapsed());
        slot.backoff.next(Instant::now(), ran_for);
        self.start(pod, uid, c, conf, true).await;
    }

    fn slot(&mut self, uid: &str, name: &str) -> &mut Slot {
        self.workers
            .entry(uid.to_owned())
            .or_default()
            .slots
            .entry(name.to_owned())
            .or_default()
    }

    /// Image, spec, create, start; every failure lands in the slot's waiting state.
    async fn start(
        &mut self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        conf: &[ContainerConfinement],
        is_restart: bool,
    ) {
        let Some(image) = self.ensure_image(pod, uid, c).await else {
            return;
        };
        let Some(confinement) = conf.iter().find(|x| x.name == c.name) else {
            return;
        };
        let img = image.clone();
        let image_root = match self.images_root(img).await {
            Ok(r) => r,
            Err(msg) => {
                return self
                    .fail(pod, uid, c, "CreateContainerError", msg, false)
                    .await
            }
        };
        let restart_count = {
            let slot = self.slot(uid, &c.name);
            if is_restart || slot.last_terminated.is_some() {
                slot.restart_count + 1
            } else {
                slot.restart_count
            }
        };
        let volumes = self
            .workers
            .get(uid)
            .and_then(|w| w.volumes.clone())
            .unwrap_or_default();
        let input = SpecInput {
            pod,
            container: c,
            confinement,
            image: &image,
            image_root,
            restart_count,
            volumes: &volumes,
            pod_log_dir: &self.cfg.pod_log_dir,
            node_name: &self.cfg.name,
            host_ip: &self.host_ip,
            apparmor: &self.apparmor,
            containers_dir: &self.runtime.config().containers_dir,
            view: &self.cfg.view,
            recordings_dir: &crate::recordings_dir(&self.cfg.data_dir, &self.cfg.name),
            notify_runtime: match self.cfg.runtime {
                armorlet_runtime::RuntimeKind::Runc => {
                    armorlet_seccomp::record::NotifyRuntime::Runc
                }
                _ => armorlet_seccomp::record::NotifyRuntime::Crun,
            },
        };
        let spec::Built {
            mut spec,
            approximations,
            log_denials,
            sub_paths,
        } = match spec::build(&input) {
            Ok(b) => b,
            Err(e) => return self.fail(pod, uid, c, e.reason, e.message, false).await,
        };
        // Held until the runtime's `create` copied the mounts into the container.
        let mut staged = crate::subpath::Staged::default();
        for m in &sub_paths {
            let staging = self
                .cfg
                .data_dir
                .join("nodes")
                .join(&self.cfg.name)
                .join("pods")
                .join(uid)
                .join("volume-subpaths")
                .join(&m.volume_name)
                .join(&c.name)
                .join(m.index.to_string());
            if let Err(e) = staged.stage(&m.volume, &m.sub_path, &staging) {
                // The kubelet's text; like it, the detail goes to the log only, since it can
                // tell the user about the host's filesystem (pkg/kubelet/kubelet_pods.go
                // `makeMounts`).
                tracing::warn!(pod = ?pod.metadata.name, container = %c.name, error = %e, "subPath refused");
                let msg = format!(
                    "failed to prepare subPath for volumeMount {:?} of container {:?}",
                    m.volume_name, c.name
                );
                return self
                    .fail(pod, uid, c, "CreateContainerConfigError", msg, false)
                    .await;
            }
            spec.mounts[m.index].source = staging;
        }
        if log_denials {
            crate::audit::enable_kernel_audit();
        }
        if !approximations.is_empty() {
            let msg = approximation_message(&confinement.apparmor, &approximations);
            self.recorder
                .record(pod, Some(&c.name), WARNING, "AppArmor", &msg)
                .await;
        }
        let id = spec.id.clone();
        if let Some(dir) = spec.log_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let created = self.blocking(move |rt| rt.create_container(&spec)).await;
        drop(staged);
        if let Err(e) = created {
            return self
                .fail(pod, uid, c, "CreateContainerError", e.to_string(), false)
                .await;
        }
        if !self.network_ready(pod, uid, true).await {
            // Nothing of the pod may start without its network: the container, created while
            // the network was set up, is removed, and made again once the sandbox is.
            let id2 = id.clone();
            if let Err(e) = self.blocking(move |rt| rt.remove_container(&id2)).await {
                tracing::warn!(container = %id, error = %e, "cannot remove a container whose pod has no network");
            }
            return;
        }
        self.retire_previous(uid, &c.name, &id, restart_count).await;
        let created = created_message(self.cfg.settings.version.minor(), &c.name);
        self.recorder
            .record(pod, Some(&c.name), NORMAL, "Created", &created)
            .await;
        let id2 = id.clone();
        if let Err(e) = self.blocking(move |rt| rt.start_container(&id2)).await {
            let msg = e.to_string();
            let t = json!({"exitCode": 128, "reason": "StartError", "message": msg,
                "containerID": format!("{}://{id}", self.prefix),
                "startedAt": crate::time::rfc3339(SystemTime::UNIX_EPOCH), "finishedAt": crate::time::now()});
            let slot = self.slot(uid, &c.name);
            slot.last_terminated = Some(t);
            slot.recorded_exit_of = Some(id);
            return self.fail(pod, uid, c, "RunContainerError", msg, true).await;
        }
        let slot = self.slot(uid, &c.name);
        slot.waiting = None;
        slot.started = Some(Instant::now());
        slot.probes.clear();
        self.recorder
            .record(
                pod,
                Some(&c.name),
                NORMAL,
                "Started",
                &format!("Started container {}", c.name),
            )
            .await;
    }

    /// Runs the container's due probes (pkg/kubelet/prober/worker.go). A failed
    /// startup or liveness probe kills the container; the next sync restarts it.
    async fn probe(&mut self, pod: &Pod, uid: &str, c: &Container, id: &str) {
        let target = Target {
            runtime: self.runtime.clone(),
            id: id.to_owned(),
            netns: self.runtime.config().sandboxes_dir.join(uid).join("net"),
        };
        let started_ok =
            self.slot(uid, &c.name)
                .verdict(Kind::Startup, c.startup_probe.is_some(), true);
        let probes = [
            (
                Kind::Startup,
                c.startup_probe.as_ref().filter(|_| !started_ok),
            ),
            (
                Kind::Liveness,
                c.liveness_probe.as_ref().filter(|_| started_ok),
            ),
            (
                Kind::Readiness,
                c.readiness_probe.as_ref().filter(|_| started_ok),
            ),
        ];
        for (kind, probe) in probes {
            let Some(probe) = probe else { continue };
            let slot = self.slot(uid, &c.name);
            let since = slot.started.unwrap_or_else(Instant::now);
            let mut state = slot.probes.remove(&kind).unwrap_or_default();
            let tick = state.tick(probe, since, target.clone()).await;
            self.slot(uid, &c.name).probes.insert(kind, state);
            let Some(tick) = tick else { continue };
            if let Some(out) = &tick.failure {
                let msg = format!("{} probe failed: {}", kind.name(), out.trim_end());
                self.recorder
                    .record(pod, Some(&c.name), WARNING, "Unhealthy", &msg)
                    .await;
            }
            if tick.verdict == Some(false) && kind != Kind::Readiness {
                let msg = format!(
                    "Container {} failed {} probe, will be restarted",
                    c.name,
                    kind.name().to_lowercase()
                );
                self.recorder
                    .record(pod, Some(&c.name), NORMAL, "Killing", &msg)
                    .await;
                let grace = Duration::from_secs(pod_grace(pod));
                // Stopping may take the whole grace period: not on the sync loop.
                let (rt, id) = (self.runtime.clone(), id.to_owned());
                tokio::task::spawn_blocking(move || rt.stop_container(&id, grace));
                return;
            }
        }
    }

    /// Makes `id` the current instance; the one before becomes `previous` (kept
    /// for `kubectl logs --previous`), older ones are removed.
    async fn retire_previous(&mut self, uid: &str, name: &str, id: &str, restart_count: u32) {
        let slot = self.slot(uid, name);
        let old_previous = slot.previous.take();
        slot.previous = slot.current.replace(id.to_owned());
        slot.restart_count = restart_count;
        if let Some(old) = old_previous {
            let _ = self.blocking(move |rt| rt.remove_container(&old)).await;
        }
    }

    /// The image's unpacked root. Unpacking verifies the image's blobs; a failure is the
    /// container's `CreateContainerError`, as containerd's CRI plugin unpacks a missing
    /// snapshot when it creates the container and reports "error unpacking image: ..."
    /// (internal/cri/opts/container.go `WithNewSnapshot`).
    async fn images_root(&self, img: armorlet_images::ImageRecord) -> Result<PathBuf, String> {
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || images.image_root(&img))
            .await
            .expect("image task panicked")
            .map_err(|e| format!("failed to create container: error unpacking image: {e}"))
    }

    /// Records a failure: waiting reason/message and the `Failed` event
    /// (`Error: <message>`, pkg/kubelet/kuberuntime/kuberuntime_container.go `startContainer`).
    async fn fail(
        &mut self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        reason: &str,
        message: String,
        started: bool,
    ) {
        self.recorder
            .record(
                pod,
                Some(&c.name),
                WARNING,
                "Failed",
                &format!("Error: {message}"),
            )
            .await;
        let slot = self.slot(uid, &c.name);
        if !started {
            slot.backoff.next(Instant::now(), None);
        }
        slot.waiting = Some((reason.to_owned(), message));
    }

    /// pkg/kubelet/images/image_manager.go `EnsureImageExists` (1.32): the pull policy against
    /// the local store, pulls from registries with the pod's `imagePullSecrets`, the image
    /// back-off (10 s doubling to 300 s per container image, as `imageBackOff`), and the
    /// kubelet's events and waiting reasons. A pull runs on its own task; the container
    /// stays `ContainerCreating` until a later pass collects it, so one slow registry does not
    /// hold up the node's other pods.
    async fn ensure_image(
        &mut self,
        pod: &Pod,
        uid: &str,
        c: &Container,
    ) -> Option<armorlet_images::ImageRecord> {
        let reference = c.image.clone().unwrap_or_default();
        let now = Instant::now();
        if self
            .slot(uid, &c.name)
            .image_retry_at
            .is_some_and(|t| now < t)
        {
            return None;
        }
        if let Some(done) = self.collect_pull(pod, uid, c).await {
            return done;
        }
        let images = self.images.clone();
        let r2 = reference.clone();
        let found = tokio::task::spawn_blocking(move || images.resolve(&r2))
            .await
            .expect("image task panicked");
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                // pkg/kubelet/images/image_manager.go applyDefaultImageTag: InspectFailed,
                // then the container's Failed event with the error's name.
                let msg = format!("Failed to apply default image tag \"{reference}\": {e}");
                self.recorder
                    .record(pod, Some(&c.name), WARNING, "InspectFailed", &msg)
                    .await;
                self.image_failed(pod, uid, c, "InvalidImageName", msg, None)
                    .await;
                return None;
            }
        };
        let policy = crate::images::pull_policy(c);
        if !crate::images::should_pull(&policy, found.is_some()) {
            if let Some(img) = found {
                let msg = format!("Container image \"{reference}\" already present on machine");
                self.recorder
                    .record(pod, Some(&c.name), NORMAL, "Pulled", &msg)
                    .await;
                self.use_image(uid, c, &img);
                return Some(img);
            }
            let msg =
                format!("Container image \"{reference}\" is not present with pull policy of Never");
            self.recorder
                .record(pod, Some(&c.name), WARNING, "ErrImageNeverPull", &msg)
                .await;
            self.image_failed(pod, uid, c, "ErrImageNeverPull", msg, Some(IMAGE_RESYNC))
                .await;
            return None;
        }
        if self.slot(uid, &c.name).pull_backoff.waiting(now).is_some() {
            let msg = format!("Back-off pulling image \"{reference}\"");
            self.recorder
                .record(pod, Some(&c.name), NORMAL, "BackOff", &msg)
                .await;
            self.image_failed(pod, uid, c, "ImagePullBackOff", msg, Some(IMAGE_RESYNC))
                .await;
            return None;
        }
        self.recorder
            .record(
                pod,
                Some(&c.name),
                NORMAL,
                "Pulling",
                &format!("Pulling image \"{reference}\""),
            )
            .await;
        let (creds, missing) = crate::images::pull_credentials(&self.client, pod, &reference).await;
        if !missing.is_empty() {
            // pkg/kubelet/kubelet_pods.go getPullSecretsForPod.
            let msg = format!(
                "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                missing.join(", ")
            );
            self.recorder
                .record(pod, None, WARNING, "FailedToRetrieveImagePullSecret", &msg)
                .await;
        }
        let images = self.images.clone();
        let options = self.cfg.registries.clone();
        let r2 = reference.clone();
        let handle =
            tokio::spawn(
                async move { armorlet_images::pull(&images, &r2, &options, &creds).await },
            );
        self.slot(uid, &c.name).pull = Some((handle, now));
        None
    }

    /// The result of the container's finished pull, if one finished: `Some(Some(image))`
    /// pulled, `Some(None)` failed (recorded), `None` no pull or still running.
    async fn collect_pull(
        &mut self,
        pod: &Pod,
        uid: &str,
        c: &Container,
    ) -> Option<Option<armorlet_images::ImageRecord>> {
        let slot = self.slot(uid, &c.name);
        if !slot.pull.as_ref()?.0.is_finished() {
            return Some(None);
        }
        let (handle, started) = slot.pull.take()?;
        let reference = c.image.clone().unwrap_or_default();
        let result = match handle.await {
            Ok(r) => r,
            Err(e) => Err(armorlet_images::ImageError::Pull {
                reference: reference.clone(),
                reason: format!("pull task failed: {e}"),
                not_found: false,
            }),
        };
        match result {
            Ok(pulled) => {
                let took = crate::images::go_duration(started.elapsed());
                let msg = format!(
                    "Successfully pulled image \"{reference}\" in {took} ({took} including waiting). Image size: {} bytes.",
                    pulled.record.size
                );
                self.recorder
                    .record(pod, Some(&c.name), NORMAL, "Pulled", &msg)
                    .await;
                self.use_image(uid, c, &pulled.record);
                Some(Some(pulled.record))
            }
            Err(e) => {
                let detail = crate::images::pull_error(&e);
                self.recorder
                    .record(
                        pod,
                        Some(&c.name),
                        WARNING,
                        "Failed",
                        &format!("Failed to pull image \"{reference}\": {detail}"),
                    )
                    .await;
                self.slot(uid, &c.name)
                    .pull_backoff
                    .next(Instant::now(), None);
                self.image_failed(pod, uid, c, "ErrImagePull", detail, Some(IMAGE_RESYNC))
                    .await;
                Some(None)
            }
        }
    }

    /// The container uses `img`: its `imageID` (the repo digest of the container's repository,
    /// as containerd's CRI `getRepoDigestAndTag` picks it, else the first, else the id), and
    /// the image back-off is over.
    fn use_image(&mut self, uid: &str, c: &Container, img: &armorlet_images::ImageRecord) {
        let repo = armorlet_images::normalize_reference(c.image.as_deref().unwrap_or_default())
            .ok()
            .map(|n| armorlet_images::repository(&n).to_string());
        let slot = self.slot(uid, &c.name);
        slot.pull_backoff = Backoff::default();
        slot.image_retry_at = None;
        slot.image_id = img
            .repo_digests
            .iter()
            .find(|d| {
                repo.as_deref()
                    .is_some_and(|r| armorlet_images::repository(d) == r)
            })
            .or(img.repo_digests.first())
            .cloned()
            .unwrap_or_else(|| img.id.clone());
    }

    /// An image error: the container's waiting reason and message, and its `Failed` event
    /// `Error: <reason>` (kuberuntime_container.go `startContainer`); the image step is looked
    /// at again after `retry` (the pod worker's requeue after a failed sync).
    async fn image_failed(
        &mut self,
        pod: &Pod,
        uid: &str,
        c: &Container,
        reason: &str,
        message: String,
        retry: Option<Duration>,
    ) {
        self.recorder
            .record(
                pod,
                Some(&c.name),
                WARNING,
                "Failed",
                &format!("Error: {reason}"),
            )
            .await;
        let slot = self.slot(uid, &c.name);
        slot.waiting = Some((reason.to_owned(), message));
        slot.image_retry_at = retry.map(|r| Instant::now() + r);
    }

    /// Writes (merge-patches) the pod's status; `Ok(false)` when it was not written because
    /// the API server is unavailable: the write is then retried on a later sync, after the
    /// agent's back-off ([`ApiHealth`]), and the pods keep running meanwhile.
    async fn patch_status(&self, pod: &Pod, patch: &Value) -> Result<bool, kube::Error> {
        if !self.health.due() {
            return Ok(false);
        }
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        // The kubelet's field manager (its User-Agent's product upstream).
        let r = crate::health::bounded(api.patch_status(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams {
                field_manager: Some("kubelet".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(patch),
        ))
        .await;
        self.health.record("write pod status", &r);
        match r {
            Ok(_) => Ok(true),
            Err(e) if crate::health::is_unavailable(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Builds and writes the pod status when it changed.
    async fn write_status(&mut self, pod: &Pod, uid: &str, init_failed: bool) -> SyncResult {
        // A pod whose containers cannot start yet (an image pull failing) still shows its IP.
        self.network_ready(pod, uid, false).await;
        let views = self.views(pod, uid).await;
        let spec = pod.spec.clone().unwrap_or_default();
        let n_init = spec.init_containers.as_ref().map_or(0, Vec::len);
        let (init, containers) = views.split_at(n_init.min(views.len()));
        let w = self.workers.get_mut(uid).expect("worker");
        let facts = PodFacts {
            pod,
            sandbox_ready: w.sandbox_ready,
            init,
            containers,
            host_ip: &self.host_ip,
            pod_ip: w.pod_ip.as_deref(),
            start_time: &w.start_time,
            init_failed,
        };
        let status = status::pod_status(&facts, &mut w.transitions);
        if status["phase"] == "Succeeded" || status["phase"] == "Failed" {
            w.terminal = true;
        }
        if w.last_written.as_ref() == Some(&status) {
            return Ok(());
        }
        // Remembered once the API server has it: a status that could not be written while
        // the server was unavailable is written when it returns, even if nothing changed
        // since (pkg/kubelet/status/status_manager.go keeps syncing a pod whose status
        // differs from the API server's).
        let patch = json!({"status": status});
        let result = self.patch_status(pod, &patch).await;
        // A refusal (4xx) is not retried until the status changes again, as before.
        let written = *result.as_ref().unwrap_or(&true);
        if let Some(w) = self.workers.get_mut(uid) {
            if written {
                w.last_written = patch.get("status").cloned();
                w.unwritten = None;
            } else {
                w.unwritten = Some(patch);
            }
        }
        result.map(drop)
    }

    /// A terminal pod's last status, when the API server did not take it yet.
    async fn write_unwritten(&mut self, pod: &Pod, uid: &str) -> SyncResult {
        let Some(patch) = self.workers.get(uid).and_then(|w| w.unwritten.clone()) else {
            return Ok(());
        };
        if self.patch_status(pod, &patch).await? {
            if let Some(w) = self.workers.get_mut(uid) {
                w.last_written = patch.get("status").cloned();
                w.unwritten = None;
            }
        }
        Ok(())
    }

    async fn views(&mut self, pod: &Pod, uid: &str) -> Vec<ContainerView> {
        let mut out = Vec::new();
        for c in all_containers(pod) {
            let (current, waiting, last, restarts, image_id, started_ok, ready_ok) = {
                let s = self.slot(uid, &c.name);
                let started_ok = s.verdict(Kind::Startup, c.startup_probe.is_some(), true);
                let ready_ok =
                    started_ok && s.verdict(Kind::Readiness, c.readiness_probe.is_some(), true);
                (
                    s.current.clone(),
                    s.waiting.clone(),
                    s.last_terminated.clone(),
                    s.restart_count,
                    s.image_id.clone(),
                    started_ok,
                    ready_ok,
                )
            };
            let st = match current.clone() {
                Some(id) => self.blocking(move |rt| rt.container_status(&id)).await.ok(),
                None => None,
            };
            let running = st
                .as_ref()
                .is_some_and(|s| s.state == ContainerState::Running);
            let exited = st.as_ref().filter(|s| s.state == ContainerState::Exited);
            let state = if let Some((reason, message)) = waiting.filter(|_| !running) {
                json!({"waiting": {"reason": reason, "message": message}})
            } else if running {
                json!({"running": {"startedAt": st.as_ref().and_then(|s| s.started_at).map(crate::time::rfc3339)}})
            } else if let (Some(_), Some(t)) = (exited, last.clone()) {
                json!({"terminated": t})
            } else {
                json!({"waiting": {"reason": "ContainerCreating"}})
            };
            let terminated_now = state.get("terminated").is_some();
            let last_state = match (&last, terminated_now) {
                (Some(t), false) => json!({"terminated": t}),
                _ => json!({}),
            };
            let succeeded = terminated_now && state["terminated"]["exitCode"] == 0;
            out.push(ContainerView {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                image_id,
                state,
                last_state,
                restart_count: restarts,
                container_id: current.map(|id| format!("{}://{id}", self.prefix)),
                running,
                ready: running && ready_ok,
                started: running && started_ok,
                succeeded,
                finished: terminated_now,
            });
        }
        out
    }

    /// Graceful deletion (pkg/kubelet/kuberuntime/kuberuntime_container.go `killContainer`):
    /// event Killing, SIGTERM, grace, SIGKILL, remove, then delete the pod object
    /// with grace 0 and a UID precondition (pkg/kubelet/status/status_manager.go).
    async fn terminate(&mut self, pod: &Pod, uid: String, w: Worker) {
        for (name, slot) in &w.slots {
            if slot.current.is_some() {
                let msg = format!("Stopping container {name}");
                self.recorder
                    .record(pod, Some(name), NORMAL, "Killing", &msg)
                    .await;
            }
        }
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or(pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0) as u64;
        self.spawn_teardown(uid, w, Duration::from_secs(grace), Some(pod.clone()));
    }

    /// Stops and removes the pod's containers, then its network and sandbox, and deletes the
    /// pod object (graceful deletion). A container the runtime fails to stop or remove is
    /// retried every [`KILL_RETRY`] with a `FailedKillPod` event each time, as the kubelet's
    /// pod worker retries `SyncTerminatingPod` (pkg/kubelet/kubelet.go, pod_workers.go
    /// `backOffPeriod`): the pod object stays (Terminating) until nothing of it runs, so no
    /// container is ever left running unaccounted.
    fn spawn_teardown(&self, uid: String, mut w: Worker, grace: Duration, pod: Option<Pod>) {
        let rt = self.runtime.clone();
        let client = self.client.clone();
        let done = self.done.clone();
        let network = self.network.clone();
        let recorder = self.recorder.clone();
        let health = self.health.clone();
        let cfg = self.cfg.clone();
        tokio::spawn(async move {
            // A CNI ADD still running finishes before the DEL below undoes it.
            if let Some(pending) = w.network_pending.take() {
                let _ = pending.await;
            }
            let mut left: Vec<(String, String)> = w
                .slots
                .iter()
                .flat_map(|(name, s)| {
                    s.current
                        .iter()
                        .chain(s.previous.iter())
                        .map(move |id| (id.clone(), name.clone()))
                })
                .collect();
            loop {
                let rt2 = rt.clone();
                let batch = left.clone();
                let failed = tokio::task::spawn_blocking(move || {
                    std::thread::scope(|s| {
                        let handles: Vec<_> = batch
                            .iter()
                            .map(|(id, name)| {
                                let rt = &rt2;
                                s.spawn(move || {
                                    rt.stop_container(id, grace)
                                        .and_then(|_| rt.remove_container(id))
                                        .err()
                                        .map(|e| (id.clone(), name.clone(), e.to_string()))
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .filter_map(|h| h.join().ok().flatten())
                            .collect::<Vec<_>>()
                    })
                })
                .await
                .unwrap_or_default();
                if failed.is_empty() {
                    break;
                }
                let message = kill_pod_error(&failed);
                tracing::warn!(pod = %uid, error = %message, "cannot kill the pod's containers; retrying");
                if let Some(pod) = &pod {
                    recorder
                        .record(pod, None, WARNING, "FailedKillPod", &message)
                        .await;
                }
                left = failed.into_iter().map(|(id, name, _)| (id, name)).collect();
                tokio::time::sleep(KILL_RETRY).await;
            }
            let uid2 = uid.clone();
            let rt2 = rt.clone();
            let res = tokio::task::spawn_blocking(move || {
                let netns = rt2.config().sandboxes_dir.join(&uid2).join("net");
                if let Err(e) = network.detach(&uid2, &netns) {
                    tracing::warn!(pod = %uid2, error = %e, "cannot detach the pod network");
                }
                let removed = rt2.remove_sandbox(&uid2);
                // Its containers are gone: the pod's volumes and logs go too.
                remove_pod_files(&cfg, &uid2);
                removed
            })
            .await;
            if let Ok(Err(e)) = res {
                tracing::warn!(pod = %uid, error = %e, "cannot remove sandbox");
            }
            if let Some(pod) = pod {
                delete_pod(&client, &pod, &uid, &health).await;
            }
            if let Ok(mut d) = done.lock() {
                d.insert(uid);
            }
        });
    }
}

/// How often the termination of a pod whose containers the runtime failed to stop is retried:
/// the kubelet pod worker's back-off after a failed sync (`backOffPeriod`, pkg/kubelet/kubelet.go).
const KILL_RETRY: Duration = Duration::from_secs(10);

/// The `FailedKillPod` event text: `error killing pod: ` and the kill results' aggregate
/// (pkg/kubelet/kubelet.go `SyncTerminatingPod`; pkg/kubelet/container/sync_result.go
/// `PodSyncResult.Error`: `failed to "KillContainer" for "NAME" with KillContainerError: "MSG"`,
/// several joined as `[a, b]` by apimachinery's aggregate error).
fn kill_pod_error(failed: &[(String, String, String)]) -> String {
    let errs: Vec<String> = failed
        .iter()
        .map(|(_, name, msg)| {
            format!("failed to \"KillContainer\" for \"{name}\" with KillContainerError: {msg:?}")
        })
        .collect();
    if errs.len() == 1 {
        format!("error killing pod: {}", errs[0])
    } else {
        format!("error killing pod: [{}]", errs.join(", "))
    }
}

/// `D/nodes/<node>/pods/<uid>`: the pod's volumes (the kubelet's `/var/lib/kubelet/pods/<uid>`).
fn pod_dir(cfg: &NodeConfig, uid: &str) -> PathBuf {
    cfg.data_dir
        .join("nodes")
        .join(&cfg.name)
        .join("pods")
        .join(uid)
}

/// Removes what the node kept of a pod that is gone, once its containers are removed: its
/// directory (volumes, emptyDirs) and its log directory `<pod-log-dir>/<ns>_<name>_<uid>`, as
/// the kubelet does for deleted pods (pkg/kubelet/kubelet_pods.go `cleanupOrphanedPodDirs`,
/// pkg/kubelet/kuberuntime/kuberuntime_gc.go `evictPodLogsDirectories`). The log directory is
/// found by the UID alone (the pod object may be gone); callers pass only UIDs of this node's
/// pods, since the nodes of one `armorlet up` share the log directory. `remove_dir_all` does
/// not follow symbolic links a container left in an emptyDir.
fn remove_pod_files(cfg: &NodeConfig, uid: &str) {
    if uid.is_empty() || uid.contains('/') || uid.starts_with('.') {
        return;
    }
    let dir = pod_dir(cfg, uid);
    // A subPath staging mount left by an agent that died while creating a container would
    // lead the removal into the volume it shows (a hostPath): unmount first.
    crate::subpath::unmount_beneath(&dir);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(pod = %uid, error = %e, dir = %dir.display(), "cannot remove the pod directory");
        }
    }
    let suffix = format!("_{uid}");
    for entry in std::fs::read_dir(&cfg.pod_log_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().ends_with(&suffix) {
            let path = entry.path();
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(pod = %uid, error = %e, dir = %path.display(), "cannot remove the pod's logs");
            }
        }
    }
}

/// Deletes the terminated pod's object. While the API server is unavailable the delete is
/// retried, with back-off up to 10 s, until it is done or refused (the pod's worker stays
/// terminating meanwhile).
async fn delete_pod(client: &kube::Client, pod: &Pod, uid: &str, health: &ApiHealth) {
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let mut retry = crate::health::Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
    loop {
        let r = crate::health::bounded(
            api.delete(pod.metadata.name.as_deref().unwrap_or_default(), &dp),
        )
        .await;
        health.record("delete pod", &r);
        match r {
            Ok(_) => return,
            Err(e) if crate::health::is_unavailable(&e) => {
                tokio::time::sleep(retry.next_delay()).await
            }
            Err(e) => {
                tracing::warn!(pod = %uid, error = %e, "cannot delete terminated pod");
                return;
            }
        }
    }
}

enum Outcome {
    Succeeded,
    FailedForGood,
    Busy,
}

/// deletionGracePeriodSeconds, else terminationGracePeriodSeconds, else 30.
fn pod_grace(pod: &Pod) -> u64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .max(0) as u64
}

fn all_containers(pod: &Pod) -> Vec<Container> {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.init_containers
        .unwrap_or_default()
        .into_iter()
        .chain(spec.containers)
        .collect()
}

fn restart_label(l: &BTreeMap<String, String>) -> u32 {
    l.get(labels::RESTART)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `NAME_NS(UID)` (pkg/kubelet/util/format/pod.go `Pod`).
/// The Warning event text when Landlock enforces a tightened profile.
fn approximation_message(
    profile: &armorlet_confinement::ResolvedAppArmor,
    tightened: &[String],
) -> String {
    let name = match profile {
        armorlet_confinement::ResolvedAppArmor::Localhost { name } => name.as_str(),
        _ => "runtime/default",
    };
    format!(
        "AppArmor profile {name:?} is enforced by Landlock with {} rule(s) tightened: {}",
        tightened.len(),
        tightened.join("; ")
    )
}

fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// The `Created` event text (pkg/kubelet/kuberuntime/kuberuntime_container.go `startContainer`):
/// `Created container: NAME` on 1.32 (golden doc), `Created container NAME` in older releases.
/// The exact release of the change is not verified yet; it belongs in `version::SWITCHES`.
fn created_message(minor: u32, name: &str) -> String {
    if minor >= 32 {
        format!("Created container: {name}")
    } else {
        format!("Created container {name}")
    }
}

/// The cluster CA from the kubeconfig (for the `kube-root-ca.crt` fallback).
pub fn kubeconfig_ca(path: &std::path::Path) -> Vec<u8> {
    let Ok(kc) = kube::config::Kubeconfig::read_from(path) else {
        return Vec::new();
    };
    kc.clusters
        .iter()
        .filter_map(|c| c.cluster.as_ref())
        .find_map(|c| {
            if let Some(d) = &c.certificate_authority_data {
                use base64::Engine;
                return base64::engine::general_purpose::STANDARD.decode(d).ok();
            }
            c.certificate_authority
                .as_ref()
                .and_then(|f| std::fs::read(f).ok())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_kill_pod_messages_aggregate_as_the_kubelets() {
        let one = [(
            "id1".to_owned(),
            "c".to_owned(),
            "kill failed: boom".to_owned(),
        )];
        assert_eq!(
            kill_pod_error(&one),
            r#"error killing pod: failed to "KillContainer" for "c" with KillContainerError: "kill failed: boom""#
        );
        let two = [
            one[0].clone(),
            ("id2".to_owned(), "d".to_owned(), "say \"x\"".to_owned()),
        ];
        assert_eq!(
            kill_pod_error(&two),
            r#"error killing pod: [failed to "KillContainer" for "c" with KillContainerError: "kill failed: boom", failed to "KillContainer" for "d" with KillContainerError: "say \"x\""]"#
        );
    }
}
