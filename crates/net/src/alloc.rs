//! The API server's Service allocators: ClusterIPs from the service CIDR and
//! NodePorts from the node-port range, with Kubernetes' error texts
//! (pkg/registry/core/service/portallocator and ipallocator in
//! kubernetes/kubernetes). Allocation is deterministic: the lowest free value.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;

/// Kubernetes' default `--service-node-port-range`.
pub const NODE_PORT_RANGE: RangeInclusive<u16> = 30000..=32767;

/// Why an allocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The requested NodePort is outside the range.
    #[error("Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {first}-{last}")]
    NodePortOutOfRange {
        /// The requested port.
        port: u16,
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// The requested NodePort is in use.
    #[error("Invalid value: {port}: provided port is already allocated")]
    NodePortAllocated {
        /// The requested port.
        port: u16,
    },
    /// Every NodePort is in use.
    #[error("failed to allocate a nodePort: range is full")]
    NodePortsFull,
    /// The service CIDR is not an IPv4 CIDR.
    #[error("invalid service CIDR {0:?}")]
    BadCidr(String),
    /// Every ClusterIP is in use.
    #[error("failed to allocate a serviceIP: range is full")]
    ClusterIpsFull,
}

impl AllocError {
    /// The message as the API server words a field error of
    /// `spec.ports[index].nodePort`, e.g. `spec.ports[0].nodePort: Invalid
    /// value: 80: provided port is not in the valid range. The range of valid
    /// ports is 30000-32767`. Errors without a field are returned as is.
    pub fn field_message(&self, port_index: usize) -> String {
        match self {
            AllocError::NodePortOutOfRange { .. } | AllocError::NodePortAllocated { .. } => {
                format!("spec.ports[{port_index}].nodePort: {self}")
            }
            _ => self.to_string(),
        }
    }

    /// True for errors Kubernetes reports as `422 Invalid` (the user's
    /// request is wrong), false for internal errors (`500`, range full).
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            AllocError::NodePortOutOfRange { .. } | AllocError::NodePortAllocated { .. }
        )
    }
}

/// Allocates a NodePort: `requested` if free and in `range`, else the lowest
/// free port of `range`.
pub fn allocate_node_port(
    range: RangeInclusive<u16>,
    used: &[u16],
    requested: Option<u16>,
) -> Result<u16, AllocError> {
    match requested {
        Some(port) if !range.contains(&port) => Err(AllocError::NodePortOutOfRange {
            port,
            first: *range.start(),
            last: *range.end(),
        }),
        Some(port) if used.contains(&port) => Err(AllocError::NodePortAllocated { port }),
        Some(port) => Ok(port),
        None => range
            .into_iter()
            .find(|p| !used.contains(p))
            .ok_or(AllocError::NodePortsFull),
    }
}

/// Allocates the lowest free ClusterIP of `service_cidr`, skipping the
/// network and broadcast addresses (as Kubernetes' ipallocator does).
pub fn allocate_cluster_ip(service_cidr: &str, used: &[Ipv4Addr]) -> Result<Ipv4Addr, AllocError> {
    let net: Ipv4Net = service_cidr
        .parse()
        .map_err(|_| AllocError::BadCidr(service_cidr.to_string()))?;
    net.hosts()
        .filter(|ip| *ip != net.network() && *ip != net.broadcast())
        .find(|ip| !used.contains(ip))
        .ok_or(AllocError::ClusterIpsFull)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_port_errors_match_kubernetes() {
        let e = allocate_node_port(NODE_PORT_RANGE, &[], Some(80)).unwrap_err();
        assert_eq!(
            e.field_message(0),
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        assert!(e.is_invalid());
        let e = allocate_node_port(NODE_PORT_RANGE, &[30080], Some(30080)).unwrap_err();
        assert_eq!(
            e.field_message(1),
            "spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"
        );
    }

    #[test]
    fn node_port_allocation() {
        assert_eq!(
            allocate_node_port(NODE_PORT_RANGE, &[30000, 30001], None),
            Ok(30002)
        );
        assert_eq!(
            allocate_node_port(NODE_PORT_RANGE, &[], Some(31000)),
            Ok(31000)
        );
        assert_eq!(
            allocate_node_port(30000..=30001, &[30000, 30001], None),
            Err(AllocError::NodePortsFull)
        );
    }

    #[test]
    fn cluster_ip_allocation() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            allocate_cluster_ip("10.96.0.0/12", &[]),
            Ok(ip("10.96.0.1"))
        );
        assert_eq!(
            allocate_cluster_ip("10.96.0.0/12", &[ip("10.96.0.1")]),
            Ok(ip("10.96.0.2"))
        );
        assert_eq!(
            allocate_cluster_ip("10.96.0.0/30", &[ip("10.96.0.1"), ip("10.96.0.2")]),
            Err(AllocError::ClusterIpsFull)
        );
        assert_eq!(
            allocate_cluster_ip("nope", &[]),
            Err(AllocError::BadCidr("nope".into()))
        );
    }
}
