//! armorlet-net: pod networking and Service rules for one armorlet node.
//!
//! - [`cni`] attaches pod network namespaces to the node bridge by running
//!   the standard CNI plugins (`bridge`, `host-local`, `portmap`) exactly as
//!   the CNI 1.0 specification describes, caching results for DEL.
//! - [`alloc`] holds the API server's pure allocators (ClusterIP, NodePort).
//! - [`endpoints`] is the endpoints controller as a pure function.
//! - [`rules`] computes kube-proxy-style rules from Services and Endpoints and
//!   applies them as one nftables table replaced atomically on each sync.

pub mod alloc;
pub mod cni;
pub mod endpoints;
pub mod nodens;
pub mod rules;
mod sysctl;

pub use alloc::{allocate_cluster_ip, allocate_node_port, AllocError, NODE_PORT_RANGE};
pub use cni::{Cni, CniConfig, CniError, PodNetwork, PortMapping};
pub use endpoints::endpoints_for;
pub use nodens::{NetnsError, NodeNetns};
pub use rules::{compute_rules, Endpoint, NftApplier, Protocol, RuleSet, RulesError, ServiceRule};
