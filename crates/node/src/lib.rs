//! `armorlet-node`: the node agent (the kubelet's role).
//!
//! It registers the node with the API server exactly like the kubelet (labels,
//! `status.nodeInfo`, capacity, conditions, Lease heartbeats), runs one pod
//! worker per pod bound to the node through `armorlet-runtime` (sandbox, image,
//! init containers, containers, restart back-off, graceful deletion), writes pod
//! status through the `status` subresource and records events like the
//! kubelet's event recorder.
//!
//! Shutdown leaves the containers running (like a kubelet restart); on the next
//! start the agent adopts the containers of pods still bound to it and removes
//! the orphans.

mod audit;
mod backend;
mod backoff;
mod error;
mod events;
mod health;
mod images;
mod network;
mod node;
pub mod operator;
mod probes;
mod profiles_dir;
mod spec;
mod status;
mod subpath;
mod time;
pub mod view;
mod volumes;
mod watch;
mod worker;

pub use error::NodeError;
pub use spec::{recording_file, RECORD_APPARMOR_ANNOTATION, RECORD_SECCOMP_ANNOTATION};
pub use view::{NodeView, ViewMount};

use armorlet_runtime::{Runtime, RuntimeConfig, RuntimeKind};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// Everything the agent needs to run one node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node's name (`metadata.name` of the Node object).
    pub name: String,
    /// The kubeconfig to reach the API server with.
    pub kubeconfig: PathBuf,
    /// armorlet's data directory (`D`): images in `D/images`, node state in `D/nodes/<name>`.
    pub data_dir: PathBuf,
    /// crun or runc.
    pub runtime: RuntimeKind,
    /// Bound of every OCI runtime call but `exec` (the kubelet's `--runtime-request-timeout`).
    pub runtime_request_timeout: std::time::Duration,
    /// The kubelet's `--root-dir` (seccomp profiles in `<root>/seccomp`).
    pub kubelet_root_dir: PathBuf,
    /// Where CRI logs go (`/var/log/pods`).
    pub pod_log_dir: PathBuf,
    /// Emulated version, seccompDefault and feature gates.
    pub settings: armorlet_confinement::NodeSettings,
    /// The node's InternalIP; `None` picks the host's outbound address.
    pub node_ip: Option<IpAddr>,
    /// Where the node API listens; its port is published as `daemonEndpoints.kubeletEndpoint.Port`.
    pub api_listen: SocketAddr,
    /// Index of this node among the nodes on this machine (0 for the first): picks its pod
    /// CIDR and bridge.
    pub node_index: u8,
    /// Give the node its own network namespace and address (`172.31.0.<index + 2>`), as
    /// the nodes of a kind cluster have: its pod bridge, Service rules and node API live
    /// there (`armorlet up --nodes N`, N > 1).
    pub own_netns: bool,
    /// AppArmor backend and host paths.
    pub apparmor: armorlet_landlock::AppArmorConfig,
    /// Profiles loaded into the node's AppArmor backend when the agent starts.
    pub apparmor_profiles_dir: Option<PathBuf>,
    /// The node's view of the filesystem (a kind config's `extraMounts`); paths the kubelet
    /// uses (`kubelet_root_dir`, Localhost seccomp profiles, hostPath volumes) are node paths.
    pub view: NodeView,
    /// Labels the node registers with besides the kubelet's own (kind's node `labels`, the
    /// kubelet's `--node-labels`).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Taints the node registers with (the kubelet's `--register-with-taints`; kubeadm's
    /// control-plane taint on a kind cluster with workers). Applied when the Node is created
    /// only, as the kubelet does.
    pub register_with_taints: Vec<serde_json::Value>,
    /// How the node reaches image registries (`--insecure-registry`, `--registry-ca`).
    pub registries: armorlet_images::RegistryOptions,
}

/// The node path of every node's AppArmor profiles drop-in directory: files there are kept
/// loaded (new and changed ones loaded, removed ones' profiles unloaded), so a DaemonSet with
/// a hostPath volume here loads profiles onto each node it runs on. Behind it is
/// `D/nodes/<node>/apparmor.d` (through the node's view).
pub const NODE_PROFILES_DIR: &str = "/etc/armorlet/apparmor.d";

/// The network namespace the node in `node_dir` (`D/nodes/<name>`) runs in, when it has
/// its own (`armorlet node exec` enters it).
pub fn node_netns(node_dir: &std::path::Path) -> Option<PathBuf> {
    let path = std::fs::read_to_string(node_dir.join(network::NETNS_FILE)).ok()?;
    Some(PathBuf::from(path.trim())).filter(|p| p.exists())
}

/// Checks the node's view, creates its kubelet root directory and saves the view for
/// `armorlet node exec`.
fn prepare_view(cfg: &NodeConfig) -> Result<(), NodeError> {
    let node_dir = cfg.data_dir.join("nodes").join(&cfg.name);
    cfg.view
        .validate()
        .map_err(|e| NodeError::Config(format!("node {}: view: {e}", cfg.name)))?;
    let root = cfg.view.host_path(&cfg.kubelet_root_dir);
    for dir in [&node_dir, &root] {
        std::fs::create_dir_all(dir)
            .map_err(|e| NodeError::Config(format!("creating {}: {e}", dir.display())))?;
    }
    cfg.view
        .save(&node_dir)
        .map_err(|e| NodeError::Config(format!("saving the node's view: {e}")))
}

/// `D/nodes/<node>/recordings`: the seccomp recordings of the node's containers
/// (see [`RECORD_SECCOMP_ANNOTATION`]).
pub fn recordings_dir(data_dir: &std::path::Path, node: &str) -> std::path::PathBuf {
    data_dir.join("nodes").join(node).join("recordings")
}

/// Runs the agent until `shutdown` resolves. Containers keep running after it returns.
pub async fn run(mut cfg: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    // Every node keeps the profiles of its own drop-in directory loaded; on the node it is
    // /etc/armorlet/apparmor.d (a DaemonSet's hostPath lands there, per node).
    let drop_in = cfg
        .data_dir
        .join("nodes")
        .join(&cfg.name)
        .join("apparmor.d");
    if !cfg
        .view
        .mounts
        .iter()
        .any(|m| m.node_path == std::path::Path::new(NODE_PROFILES_DIR))
    {
        cfg.view.mounts.push(ViewMount {
            node_path: NODE_PROFILES_DIR.into(),
            host_path: drop_in.clone(),
            read_only: false,
        });
    }
    std::fs::create_dir_all(&drop_in)
        .map_err(|e| NodeError::Config(format!("creating {}: {e}", drop_in.display())))?;
    // A directory the user named must exist (a typo would otherwise load nothing, silently).
    if let Some(dir) = cfg.apparmor_profiles_dir.as_deref().filter(|d| !d.is_dir()) {
        return Err(NodeError::AppArmor(format!(
            "--apparmor-profiles-dir {}: not a directory",
            dir.display()
        )));
    }
    prepare_view(&cfg)?;
    let client = client_from_kubeconfig(&cfg.kubeconfig).await?;
    let runtime = Arc::new(open_runtime(&cfg)?);
    let images = Arc::new(
        armorlet_images::ImageStore::open(&cfg.data_dir.join("images"))
            .map_err(|e| NodeError::Images(e.to_string()))?,
    );
    let apparmor = Arc::new(start_apparmor(&cfg, &runtime)?);
    // `--apparmor-profiles-dir`: loaded before the node registers, then kept in step every
    // second.
    let apparmor_node = apparmor.clone();
    let mut profiles_dirs: Vec<profiles_dir::ProfilesDir> = [
        Some(cfg.view.host_path(std::path::Path::new(NODE_PROFILES_DIR))),
        cfg.apparmor_profiles_dir.clone(),
    ]
    .into_iter()
    .flatten()
    .map(|d| profiles_dir::ProfilesDir::new(&d))
    .collect();
    for d in &mut profiles_dirs {
        d.sync(&apparmor_node);
    }
    let network = Arc::new(network::Network::new(&cfg)?);
    if let Some(ns) = network.netns() {
        cfg.node_ip = Some(
            ns.ip()
                .map_err(|e| NodeError::Network(e.to_string()))?
                .into(),
        );
    }
    // The node API listens in the node's network.
    let api_listener = match network.netns() {
        Some(ns) => ns
            .run(|| std::net::TcpListener::bind(cfg.api_listen))
            .map_err(|e| NodeError::Network(e.to_string()))?,
        None => std::net::TcpListener::bind(cfg.api_listen),
    }
    .map_err(|e| NodeError::Network(format!("node API on {}: {e}", cfg.api_listen)))?;
    let cfg = Arc::new(cfg);
    let health = health::ApiHealth::default();
    let reporter = node::NodeReporter::new(
        client.clone(),
        cfg.clone(),
        runtime.runtime_version(),
        apparmor.clone(),
        network.pod_cidr().to_owned(),
        health.clone(),
        images.clone(),
    );
    reporter.register().await?;
    let heartbeat = tokio::spawn(reporter.clone().heartbeat_loop());
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(armorlet_nodeapi::serve_on(
        api_listener,
        armorlet_nodeapi::NodeApiConfig {
            listen: cfg.api_listen,
            cert_dir: cfg.data_dir.join("nodes").join(&cfg.name).join("pki"),
            client_ca_pem: worker::kubeconfig_ca(&cfg.kubeconfig),
        },
        Arc::new(backend::Backend::new(runtime.clone())),
        async move {
            let _ = api_stopped.await;
        },
    ));
    let wake = Arc::new(tokio::sync::Notify::new());
    let pods = watch::PodCache::default();
    let pod_watch = tokio::spawn(watch::watch_pods(
        client.clone(),
        cfg.name.clone(),
        wake.clone(),
        pods.clone(),
        health.clone(),
    ));
    let audit_trail = audit::AuditTrail::start(
        runtime.clone(),
        cfg.data_dir.join("nodes").join(&cfg.name).join("audit.log"),
        cfg.name.clone(),
    );
    let rules_table = network::rules_table(cfg.node_index);
    let service_rules = tokio::spawn(network::service_rules_loop(
        client.clone(),
        rules_table.clone(),
        node::node_ip(&cfg),
        network.netns().cloned(),
        health.clone(),
    ));
    let operator_client = client.clone();
    let mut operator = operator::Operator {
        target: operator::OperatorTarget::of(&cfg),
        apparmor: (apparmor.backend() != armorlet_landlock::BackendKind::None).then(|| {
            operator::AppArmorInstall::new(
                apparmor.clone(),
                cfg.data_dir
                    .join("nodes")
                    .join(&cfg.name)
                    .join("operator")
                    .join("apparmor"),
            )
        }),
        recordings: Some(operator::Recordings {
            dir: recordings_dir(&cfg.data_dir, &cfg.name),
            pods: pods.clone(),
        }),
    };
    let mut agent = worker::Agent::new(
        client,
        cfg.clone(),
        runtime,
        images,
        apparmor,
        network.clone(),
        pods,
        health.clone(),
    );
    agent.adopt().await?;
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = wake.notified() => agent.sync_all().await,
            _ = tick.tick() => {
                for d in &mut profiles_dirs {
                    d.sync(&apparmor_node);
                }
                reporter.sync_profile_labels().await;
                // The operator's pass lists its resources every second: it waits while the
                // API server is unavailable, bounded so a server that does not answer
                // cannot stall the pods' sync.
                if health.due() {
                    let pass = tokio::time::timeout(
                        health::CALL_TIMEOUT,
                        operator.sync(&operator_client),
                    );
                    if pass.await.is_err() {
                        health.failed("operator pass", &health::timed_out());
                    }
                }
                agent.sync_all().await
            }
        }
    }
    pod_watch.abort();
    heartbeat.abort();
    service_rules.abort();
    network::flush_service_rules(&rules_table, network.netns());
    network.teardown_if_idle();
    drop(audit_trail);
    let _ = stop_api.send(());
    match api.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "node API failed"),
        Err(e) => tracing::warn!(error = %e, "node API task failed"),
        Ok(Ok(())) => {}
    }
    reporter.mark_not_ready().await;
    tracing::info!(node = %cfg.name, "node agent stopped; containers keep running");
    Ok(())
}

/// Detects the AppArmor backend, prepares it and loads `--apparmor-profiles-dir`.
/// A profile that fails to load is logged and skipped: pods asking for it are
/// then blocked or fail as for any profile that is not loaded (fail closed).
/// The kernel backend is used only when the OCI runtime can apply AppArmor profiles.
fn start_apparmor(
    cfg: &NodeConfig,
    runtime: &Runtime,
) -> Result<armorlet_landlock::AppArmorNode, NodeError> {
    let mut apparmor = cfg.apparmor.clone();
    apparmor.runtime_apparmor = runtime.apparmor_support();
    let node = armorlet_landlock::AppArmorNode::new(apparmor)
        .map_err(|e| NodeError::AppArmor(e.to_string()))?;
    node.start()
        .map_err(|e| NodeError::AppArmor(e.to_string()))?;
    tracing::info!(node = %cfg.name, backend = ?node.backend(), "AppArmor backend");
    if node.backend() == armorlet_landlock::BackendKind::None
        && cfg.apparmor.mode != armorlet_landlock::BackendChoice::Off
    {
        tracing::warn!(
            helper = %cfg.apparmor.helper.display(),
            "neither the AppArmor LSM nor Landlock with the confine helper is available: pods asking for an AppArmor profile are refused on this node"
        );
    }
    Ok(node)
}

/// What a node publishes about AppArmor (`armorlet apparmor status --kubeconfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAppArmor {
    /// The node's name.
    pub name: String,
    /// `kernel`, `landlock` or `none`; `None` when the node does not say (not an armorlet
    /// node, or its agent has not published yet).
    pub backend: Option<String>,
    /// Loaded profiles and their modes.
    pub profiles: std::collections::BTreeMap<String, String>,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// `status.nodeInfo.containerRuntimeVersion`.
    pub container_runtime: String,
    /// Whether the Ready condition is True.
    pub ready: bool,
}

/// The AppArmor state the nodes (or node `only`) publish through the API server: the
/// backend and the exact loaded profiles, from the node annotations the agent keeps.
pub async fn apparmor_status(
    kubeconfig: &std::path::Path,
    only: Option<&str>,
) -> Result<Vec<NodeAppArmor>, NodeError> {
    use k8s_openapi::api::core::v1::Node;
    let client = client_from_kubeconfig(kubeconfig).await?;
    let nodes: kube::Api<Node> = kube::Api::all(client);
    let list = match only {
        Some(name) => vec![nodes.get(name).await?],
        None => nodes.list(&Default::default()).await?.items,
    };
    Ok(list
        .into_iter()
        .map(|n| {
            let ann = n.metadata.annotations.unwrap_or_default();
            let status = n.status.unwrap_or_default();
            let info = status.node_info.unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            NodeAppArmor {
                kubelet_version: info.kubelet_version,
                container_runtime: info.container_runtime_version,
                ready,
                name: n.metadata.name.unwrap_or_default(),
                backend: ann.get(node::BACKEND_ANNOTATION).cloned(),
                profiles: ann
                    .get(node::PROFILES_ANNOTATION)
                    .and_then(|j| serde_json::from_str(j).ok())
                    .unwrap_or_default(),
            }
        })
        .collect())
}

/// A kube-rs client from the in-cluster configuration (a pod's service account), or
/// `$KUBECONFIG`.
pub async fn default_client() -> Result<kube::Client, NodeError> {
    kube::Client::try_default()
        .await
        .map_err(|e| NodeError::Kubeconfig {
            path: "(in-cluster or $KUBECONFIG)".into(),
            message: e.to_string(),
        })
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &std::path::Path) -> Result<kube::Client, NodeError> {
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| NodeError::Kubeconfig {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| NodeError::Kubeconfig {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    kube::Client::try_from(config).map_err(|e| NodeError::Kubeconfig {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn open_runtime(cfg: &NodeConfig) -> Result<Runtime, NodeError> {
    let node_dir = cfg.data_dir.join("nodes").join(&cfg.name);
    let monitor_exe = std::env::current_exe().map_err(|e| NodeError::Runtime(e.to_string()))?;
    Runtime::new(RuntimeConfig {
        kind: cfg.runtime,
        binary: None,
        state_root: node_dir.join("runtime"),
        containers_dir: node_dir.join("containers"),
        sandboxes_dir: node_dir.join("sandboxes"),
        monitor_exe,
        cgroup_parent: format!("/armorlet/{}", cfg.name),
        request_timeout: cfg.runtime_request_timeout,
    })
    .map_err(|e| NodeError::Runtime(e.to_string()))
}
