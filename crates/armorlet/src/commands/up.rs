//! `armorlet up`: runs the control plane (the API server and its store) and `--nodes N` node
//! agents in one process until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Flags of `armorlet up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the store, certificates, admin token and kubeconfig.
    #[arg(long, env = "ARMORLET_DATA_DIR", default_value = "/var/lib/armorlet")]
    pub data_dir: PathBuf,
    /// Address the API server listens on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Kubernetes release (1.X) whose pod AppArmor/seccomp semantics the API server and the
    /// node agents emulate.
    #[arg(long, default_value = "1.32", value_name = "1.X")]
    pub emulated_version: armorlet_apiserver::EmulatedVersion,
    /// Number of node agents to run in this process (0: control plane only). The first is
    /// named after the machine's hostname, the others `<hostname>-2`, `<hostname>-3`...
    /// [default: 1]
    #[arg(long, conflicts_with = "config")]
    pub nodes: Option<u32>,
    /// A kind cluster config (`kind: Cluster`, `apiVersion: kind.x-k8s.io/v1alpha4`), in place
    /// of `kind create cluster --config FILE`: its nodes (named as kind names them), their
    /// `extraMounts` (each node sees them; its kubelet root is its own), labels, feature gates
    /// and the kubelet settings of `kubeadmConfigPatches`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Port of the first node's API (the kubelet's 10250); further nodes use the next ports.
    #[arg(long, default_value_t = 10250)]
    pub node_api_port: u16,
    /// Index of the first node among the nodes sharing this machine (node i gets bridge
    /// `armorlet<index+i>` and pod CIDR `10.244.<index+i>.0/24`); lets several `armorlet up`
    /// run side by side.
    #[arg(long, default_value_t = 0)]
    pub node_index: u8,
    /// Where the nodes' networks live: `netns` gives each node its own network namespace and
    /// address (172.31.0.2, .3, ...; like the nodes of a kind cluster), `host` puts every node
    /// in the machine's network (all share its address; their node APIs use consecutive ports).
    /// Default: `host` for one node, `netns` for more.
    #[arg(long, value_enum, value_name = "MODE")]
    pub node_network: Option<NodeNetwork>,
    /// CIDR of Service ClusterIPs (kube-apiserver's `--service-cluster-ip-range`).
    #[arg(long, default_value = "10.96.0.0/12", value_name = "CIDR")]
    pub service_cluster_ip_range: armorlet_apiserver::ipnet_v4::Cidr,
    /// Range of Service NodePorts (kube-apiserver's `--service-node-port-range`).
    #[arg(long, default_value = "30000-32767", value_name = "FIRST-LAST",
          value_parser = armorlet_apiserver::ServiceRanges::parse_node_ports)]
    pub service_node_port_range: std::ops::RangeInclusive<i64>,
    /// Admission plugins to enable besides the ones always on (kube-apiserver's
    /// `--enable-admission-plugins`): `PodSecurityPolicy` (up to `--emulated-version 1.24`)
    /// makes every pod pass a PodSecurityPolicy (policy/v1beta1), as the AppArmor tutorial's
    /// "Restricting profiles with the PodSecurityPolicy" describes.
    #[arg(long, value_name = "PLUGIN,...")]
    pub enable_admission_plugins: Option<String>,
    /// Non-mutating requests (get, list) served at once; one more is refused with 429
    /// TooManyRequests and `Retry-After: 1` (kube-apiserver's `--max-requests-inflight`).
    /// Watches, exec, attach and logs are not counted, the admin is never refused; 0: no
    /// limit.
    #[arg(long, default_value_t = armorlet_apiserver::inflight::DEFAULT_MAX_REQUESTS_INFLIGHT)]
    pub max_requests_inflight: usize,
    /// Mutating requests (create, update, patch, delete) served at once (kube-apiserver's
    /// `--max-mutating-requests-inflight`); 0: no limit.
    #[arg(long, default_value_t = armorlet_apiserver::inflight::DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT)]
    pub max_mutating_requests_inflight: usize,
    /// Amount of time to retain events (kube-apiserver's `--event-ttl`, a Go duration): an
    /// Event is deleted this long after its last write, in whole seconds; under 1s keeps them.
    #[arg(long, default_value = "1h0m0s", value_name = "DURATION", value_parser = super::node::parse_go_duration)]
    pub event_ttl: std::time::Duration,
    /// Agent flags.
    #[command(flatten)]
    pub agent: super::node::AgentFlags,
}

/// `--node-network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeNetwork {
    /// Every node in the machine's network namespace.
    Host,
    /// One network namespace per node.
    Netns,
}

/// Logs to stderr (colours on a terminal), at INFO. kube-rs's own line for every failed
/// request ("failed with status 500 ...", at ERROR) is left out: the node agent reports an
/// unavailable API server itself, once per outage, and its other failures with what it
/// was doing, so a long outage does not fill the log with one line per retry.
pub fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let filter = Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("kube_client::client::builder", LevelFilter::OFF);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
}

/// Starts the server and the node agents and blocks until a termination signal.
/// Containers keep running after shutdown (see `armorlet node`).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_tracing();
    super::memory::trim_when_quiet();
    let rt = super::async_runtime()?;
    rt.block_on(async move {
        let kind = match &args.config {
            Some(path) => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                let k = super::kind::KindCluster::load(path, &cwd)?;
                for w in &k.warnings {
                    tracing::warn!("{}: {w}", path.display());
                }
                Some(k)
            }
            None => None,
        };
        let mut listen = args.listen;
        let mut service_cidr = args.service_cluster_ip_range;
        let mut agent_flags = args.agent.clone();
        if let Some(k) = &kind {
            if let Some(a) = k.api_server_address {
                listen.set_ip(a);
            }
            if let Some(p) = k.api_server_port {
                listen.set_port(p);
            }
            if let Some(s) = &k.service_subnet {
                service_cidr = s
                    .parse()
                    .map_err(|e| anyhow::anyhow!("networking.serviceSubnet: {e}"))?;
            }
            agent_flags.feature_gates = merge_gates(
                agent_flags.feature_gates.as_deref(),
                &super::kind::gates_flag(&k.feature_gates),
            );
        }
        let mut config = armorlet_apiserver::Config::new(&args.data_dir, listen);
        config.emulated_version = args.emulated_version;
        config.service_ranges = armorlet_apiserver::ServiceRanges {
            cidr: service_cidr,
            node_ports: args.service_node_port_range.clone(),
        };
        config.apparmor_feature_gate = agent_flags.apparmor_gate(args.emulated_version)?;
        config.pod_security_policy = armorlet_apiserver::admission_plugins(
            args.enable_admission_plugins.as_deref().unwrap_or(""),
            args.emulated_version,
        )
        .map_err(anyhow::Error::msg)?;
        config.max_requests_inflight = args.max_requests_inflight;
        config.max_mutating_requests_inflight = args.max_mutating_requests_inflight;
        config.event_ttl = args.event_ttl;
        let server = armorlet_apiserver::Server::bind(config)
            .await
            .with_context(|| format!("starting the API server on {listen}"))?;
        let kubeconfig = server.kubeconfig_path().to_owned();
        println!("export KUBECONFIG={}", kubeconfig.display());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let wait = move || {
            let mut rx = stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut agents = tokio::task::JoinSet::new();
        let names = match &kind {
            Some(k) => k.nodes.iter().map(|n| n.name.clone()).collect(),
            None => node_names(args.nodes.unwrap_or(1)),
        };
        let own_netns = args.node_network.unwrap_or(if names.len() > 1 {
            NodeNetwork::Netns
        } else {
            NodeNetwork::Host
        }) == NodeNetwork::Netns;
        for (i, name) in names.into_iter().enumerate() {
            // Nodes with their own address all use the kubelet's port.
            let port = if own_netns {
                args.node_api_port
            } else {
                args.node_api_port + i as u16
            };
            let kind_node = kind.as_ref().map(|k| &k.nodes[i]);
            let mut flags = agent_flags.clone();
            if let Some(n) = kind_node {
                if let Some(d) = n.seccomp_default {
                    flags.seccomp_default = d;
                }
                flags.feature_gates = merge_gates(
                    flags.feature_gates.as_deref(),
                    &super::kind::gates_flag(&n.feature_gates),
                );
            }
            // Each agent talks to the server as its node (`system:node:<name>`), with its own
            // token and kubeconfig (`D/nodes/<name>/kubeconfig`), not as the admin.
            let node_kubeconfig = server
                .issue_node_credential(&name)
                .with_context(|| format!("issuing node {name}'s credential"))?;
            let mut cfg = flags.config(
                name.clone(),
                node_kubeconfig,
                args.data_dir.clone(),
                args.emulated_version,
                SocketAddr::from(([0, 0, 0, 0], port)),
                u8::try_from(i)
                    .ok()
                    .and_then(|i| args.node_index.checked_add(i))
                    .context("--node-index plus --nodes: at most 255")?,
            )?;
            cfg.own_netns = own_netns;
            if let Some(n) = kind_node {
                // A kind node's kubelet root is its own (inside its container); the
                // extraMounts go over it.
                let mut mounts = vec![armorlet_node::ViewMount {
                    node_path: cfg.kubelet_root_dir.clone(),
                    host_path: args.data_dir.join("nodes").join(&name).join("kubelet"),
                    read_only: false,
                }];
                mounts.extend(n.mounts.iter().cloned());
                cfg.view = armorlet_node::NodeView { mounts };
                cfg.labels = n.labels.clone();
                if n.role == super::kind::Role::ControlPlane
                    && args
                        .emulated_version
                        .has(armorlet_confinement::Switch::KubeadmMasterLabel)
                {
                    cfg.labels
                        .insert("node-role.kubernetes.io/master".into(), String::new());
                }
                cfg.register_with_taints =
                    control_plane_taints(kind.as_ref(), n, args.emulated_version);
            }
            let shutdown = wait();
            agents.spawn(async move { (name, armorlet_node::run(cfg, shutdown).await) });
        }
        // The server outlives the agents so they can mark their nodes NotReady.
        let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(async move {
            let _ = server_stopped.await;
        }));
        // A node agent that ends before the signal has failed (it cannot start, or lost its
        // runtime): `armorlet up` stops the others and fails with its error, as kind fails a
        // cluster whose node does not come up, rather than serve a cluster with a missing node.
        let failure = tokio::select! {
            () = shutdown_signal() => None,
            Some(done) = agents.join_next() => Some(agent_failure(done)),
        };
        if let Some(e) = &failure {
            tracing::error!(error = format!("{e:#}"), "stopping the cluster");
        }
        let _ = stop.send(true);
        while let Some(done) = agents.join_next().await {
            if let Ok((_, Ok(()))) = done {
                continue;
            }
            tracing::error!(
                error = format!("{:#}", agent_failure(done)),
                "node agent failed"
            );
        }
        let _ = stop_server.send(());
        serving
            .await
            .context("API server task")?
            .context("serving the API")?;
        match failure {
            Some(e) => Err(e),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}

/// The error of a node agent's task that ended.
fn agent_failure(
    done: Result<(String, Result<(), armorlet_node::NodeError>), tokio::task::JoinError>,
) -> anyhow::Error {
    match done {
        Ok((name, Err(e))) => anyhow::Error::new(e).context(format!("node {name}")),
        Ok((name, Ok(()))) => anyhow::anyhow!("node {name}: the agent stopped"),
        Err(e) => anyhow::Error::new(e).context("node agent task"),
    }
}

/// kubeadm's control-plane taints of the emulated release (see the `Kubeadm*Taint` switches);
/// kind removes them when the cluster has no worker (pkg/cluster/internal/create/actions/
/// kubeadminit).
fn control_plane_taints(
    kind: Option<&super::kind::KindCluster>,
    node: &super::kind::KindNode,
    version: armorlet_apiserver::EmulatedVersion,
) -> Vec<serde_json::Value> {
    let has_workers =
        kind.is_some_and(|k| k.nodes.iter().any(|n| n.role == super::kind::Role::Worker));
    if node.role != super::kind::Role::ControlPlane || !has_workers {
        return Vec::new();
    }
    use armorlet_confinement::Switch;
    [
        (Switch::KubeadmMasterTaint, "node-role.kubernetes.io/master"),
        (
            Switch::KubeadmControlPlaneTaint,
            "node-role.kubernetes.io/control-plane",
        ),
    ]
    .into_iter()
    .filter(|(s, _)| version.has(*s))
    .map(|(_, k)| serde_json::json!({"key": k, "effect": "NoSchedule"}))
    .collect()
}

/// `--feature-gates` followed by more gates (later entries win).
fn merge_gates(flag: Option<&str>, more: &str) -> Option<String> {
    let joined: Vec<&str> = flag
        .into_iter()
        .chain(Some(more))
        .filter(|s| !s.is_empty())
        .collect();
    (!joined.is_empty()).then(|| joined.join(","))
}

/// The machine's hostname, then `<hostname>-2`, `<hostname>-3`...
fn node_names(n: u32) -> Vec<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    (1..=n)
        .map(|i| {
            if i == 1 {
                host.clone()
            } else {
                format!("{host}-{i}")
            }
        })
        .collect()
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("termination signal received");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::kind::KindCluster;

    #[test]
    fn control_plane_taints_follow_kubeadm_and_kind() {
        let dir = std::env::temp_dir();
        let two = KindCluster::parse(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n",
            &dir,
        )
        .unwrap();
        let one = KindCluster::parse("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n", &dir)
            .unwrap();
        let keys = |k: &KindCluster, i: usize, v: &str| -> Vec<String> {
            control_plane_taints(Some(k), &k.nodes[i], v.parse().unwrap())
                .iter()
                .map(|t| t["key"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(keys(&two, 0, "1.22"), ["node-role.kubernetes.io/master"]);
        assert_eq!(
            keys(&two, 0, "1.24"),
            [
                "node-role.kubernetes.io/master",
                "node-role.kubernetes.io/control-plane"
            ]
        );
        assert_eq!(
            keys(&two, 0, "1.32"),
            ["node-role.kubernetes.io/control-plane"]
        );
        assert!(keys(&two, 1, "1.22").is_empty(), "workers are not tainted");
        assert!(
            keys(&one, 0, "1.22").is_empty(),
            "kind untaints a lone control plane"
        );
    }
}
