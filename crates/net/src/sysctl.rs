//! The few IPv4 sysctls pod networking needs.

use std::path::Path;

/// Writes `1` into `/proc/sys/net/ipv4/<key>` unless it already reads `1`.
pub(crate) fn enable(key: &str) -> std::io::Result<()> {
    let path = Path::new("/proc/sys/net/ipv4").join(key);
    if std::fs::read_to_string(&path)?.trim() == "1" {
        return Ok(());
    }
    std::fs::write(&path, "1")
}

/// Enables forwarding and `route_localnet` on `all` and on `bridge`, so DNAT
/// of 127.0.0.1 (portmap hostPorts, NodePorts) can route to the pods.
pub(crate) fn enable_pod_routing(bridge: &str) -> std::io::Result<()> {
    enable("ip_forward")?;
    enable("conf/all/route_localnet")?;
    enable(&format!("conf/{bridge}/route_localnet"))
}
