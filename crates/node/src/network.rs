//! Pod networking and Service rules on the node, through `armorlet-net`:
//! each pod sandbox's network namespace is attached to the node bridge by the
//! standard CNI plugins (the pod IP comes from the node's pod CIDR), and a
//! task keeps the node's nftables rules for Services (ClusterIP and NodePort
//! DNAT to ready endpoints, as kube-proxy's nftables mode) in step with the
//! API server's Services and Endpoints.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use armorlet_net::{Cni, CniConfig, NftApplier, NodeNetns, PortMapping, RuleSet};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::ListParams;
use kube::Api;

use crate::{NodeConfig, NodeError};

/// `D/nodes/<node>/netns`: the path of the node's network namespace, while it has one.
pub const NETNS_FILE: &str = "netns";

/// The node's CNI runner, in the node's own network namespace when it has one.
#[derive(Debug, Clone)]
pub struct Network {
    cni: Cni,
    netns: Option<NodeNetns>,
    node_dir: std::path::PathBuf,
}

impl Network {
    /// Writes the node's CNI configuration (bridge `armorlet<index>`, pod CIDR
    /// `10.244.<index>.0/24`) and checks the plugins are installed; with
    /// `own_netns`, creates and wires the node's namespace first.
    pub fn new(cfg: &NodeConfig) -> Result<Network, NodeError> {
        let node_dir = cfg.data_dir.join("nodes").join(&cfg.name);
        let config = CniConfig::for_node(&node_dir, cfg.node_index);
        let marker = node_dir.join(NETNS_FILE);
        let netns = if cfg.own_netns {
            let ns = NodeNetns::ensure(cfg.node_index, &config.pod_cidr)
                .map_err(|e| NodeError::Network(e.to_string()))?;
            std::fs::create_dir_all(&node_dir)
                .and_then(|()| std::fs::write(&marker, ns.path().to_string_lossy().as_bytes()))
                .map_err(|e| NodeError::Network(format!("{}: {e}", marker.display())))?;
            Some(ns)
        } else {
            let _ = std::fs::remove_file(&marker);
            None
        };
        let cni = Cni::new(config).map_err(|e| NodeError::Network(e.to_string()))?;
        Ok(Network {
            cni,
            netns,
            node_dir,
        })
    }

    /// The node's own network namespace, if it has one.
    pub fn netns(&self) -> Option<&NodeNetns> {
        self.netns.as_ref()
    }

    /// Runs `f` in the node's network (its namespace, or the host's).
    fn scoped<T: Send>(&self, f: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
        in_node_net(self.netns.as_ref(), f)
    }

    /// The node's pod CIDR (`spec.podCIDR`).
    pub fn pod_cidr(&self) -> &str {
        &self.cni.config().pod_cidr
    }

    /// CNI ADD for the pod's network namespace, with its `hostPort`s; the pod IP.
    pub fn attach(&self, pod: &Pod, uid: &str, netns: &Path) -> Result<Ipv4Addr, String> {
        let mappings = port_mappings(pod);
        self.scoped(|| {
            self.cni
                .add(uid, netns, &mappings)
                .map(|n| n.ip)
                .map_err(|e| e.to_string())
        })
    }

    /// The pod IP of an attachment made before an agent restart.
    pub fn attached_ip(&self, uid: &str) -> Option<Ipv4Addr> {
        self.cni.cached(uid).ok().flatten().map(|n| n.ip)
    }

    /// CNI DEL (idempotent; works from the cache when the namespace is gone).
    pub fn detach(&self, uid: &str, netns: &Path) -> Result<(), String> {
        self.scoped(|| self.cni.del(uid, netns).map_err(|e| e.to_string()))
    }

    /// On shutdown: when no pod is attached any more, removes the bridge and the
    /// IPAM state too, and the node's namespace (pods that keep running keep
    /// their network).
    pub fn teardown_if_idle(&self) {
        if !self.cni.attached().is_ok_and(|a| a.is_empty()) {
            return;
        }
        if let Err(e) = self.scoped(|| self.cni.teardown_all().map_err(|e| e.to_string())) {
            tracing::warn!(error = %e, "cannot remove the node bridge");
        }
        if let Some(ns) = &self.netns {
            match ns.remove() {
                Ok(()) => {
                    let _ = std::fs::remove_file(self.node_dir.join(NETNS_FILE));
                }
                Err(e) => tracing::warn!(error = %e, "cannot remove the node's network namespace"),
            }
        }
    }

    /// Detaches pods that are not in `live` (left over from a crash).
    pub fn detach_orphans(&self, live: &dyn Fn(&str) -> bool) {
        for uid in self.cni.attached().unwrap_or_default() {
            if !live(&uid) {
                let del = || self.cni.del(&uid, Path::new("")).map_err(|e| e.to_string());
                if let Err(e) = self.scoped(del) {
                    tracing::warn!(pod = %uid, error = %e, "cannot detach an orphaned pod network");
                }
            }
        }
    }
}

/// The pod's `hostPort` mappings (the CNI `portMappings` capability).
fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let host_port = u16::try_from(p.host_port?).ok().filter(|h| *h > 0)?;
            Some(PortMapping {
                host_port,
                container_port: u16::try_from(p.container_port).ok()?,
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// Keeps the node's Service rules current until aborted: every second it
/// lists Services and Endpoints and replaces the nftables table when the
/// computed rules changed. The table is flushed by [`flush_service_rules`].
pub async fn service_rules_loop(
    client: kube::Client,
    table: String,
    node_ip: IpAddr,
    netns: Option<NodeNetns>,
    health: crate::health::ApiHealth,
) {
    let applier = match NftApplier::new(&table) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "Service rules disabled");
            return;
        }
    };
    let node_ips: Vec<Ipv4Addr> = match node_ip {
        IpAddr::V4(ip) => vec![ip],
        IpAddr::V6(_) => Vec::new(),
    };
    let services: Api<Service> = Api::all(client.clone());
    let endpoints: Api<Endpoints> = Api::all(client);
    let mut applied: Option<RuleSet> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        // While the API server is unavailable the rules applied stay as they are.
        if !health.due() {
            continue;
        }
        let listed = crate::health::bounded(async {
            Ok((
                services.list(&ListParams::default()).await?,
                endpoints.list(&ListParams::default()).await?,
            ))
        })
        .await;
        health.record("list Services and Endpoints", &listed);
        let Ok((s, e)) = listed else {
            continue;
        };
        let s: Vec<serde_json::Value> = s
            .items
            .iter()
            .filter_map(|x| serde_json::to_value(x).ok())
            .collect();
        let e: Vec<serde_json::Value> = e
            .items
            .iter()
            .filter_map(|x| serde_json::to_value(x).ok())
            .collect();
        let rules = armorlet_net::compute_rules(&s, &e, &node_ips);
        if applied.as_ref() == Some(&rules) {
            continue;
        }
        match in_node_net(netns.as_ref(), || {
            applier.apply(&rules).map_err(|e| e.to_string())
        }) {
            Ok(()) => applied = Some(rules),
            Err(e) => tracing::warn!(error = %e, "cannot apply Service rules"),
        }
    }
}

/// Removes the node's Service rules (on shutdown).
pub fn flush_service_rules(table: &str, netns: Option<&NodeNetns>) {
    if let Ok(a) = NftApplier::new(table) {
        if let Err(e) = in_node_net(netns, || a.flush().map_err(|e| e.to_string())) {
            tracing::warn!(error = %e, "cannot remove the Service rules");
        }
    }
}

/// Runs `f` in `netns`, or right here (the host's network) without one.
fn in_node_net<T: Send>(
    netns: Option<&NodeNetns>,
    f: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    match netns {
        Some(ns) => ns.run(f).map_err(|e| e.to_string())?,
        None => f(),
    }
}

/// The nftables table of node `index` (one table per node: nodes sharing a
/// network namespace then each carry the same rules).
pub fn rules_table(index: u8) -> String {
    if index == 0 {
        armorlet_net::rules::DEFAULT_TABLE.to_string()
    } else {
        format!("{}-{index}", armorlet_net::rules::DEFAULT_TABLE)
    }
}
