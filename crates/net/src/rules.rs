//! kube-proxy-style Service rules: a pure function from Services, Endpoints
//! and node IPs to a [`RuleSet`], its nftables rendering, and the applier.
//!
//! The applier owns the nftables table `ip <table>` (default `armorlet`)
//! entirely and replaces it atomically on each sync (`nft -f -` with one
//! transaction that creates, deletes and recreates the table). Semantics
//! follow kube-proxy (pkg/proxy/nftables in kubernetes/kubernetes):
//! ClusterIP:port and NodePort (on every node IP and 127.0.0.1) DNAT to a
//! random ready endpoint (`numgen random`), traffic sent to a Service is
//! masqueraded (so hairpin and same-bridge replies return through the node),
//! and a Service without ready endpoints is rejected instead of blackholed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Default table name (`table ip armorlet`).
pub const DEFAULT_TABLE: &str = "armorlet";
/// Packet mark of connections to masquerade (kube-proxy uses 0x4000 too).
const MASQ_MARK: &str = "0x00004000";

/// Errors applying rules.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// `nft` could not be run.
    #[error("cannot run nft: {0}")]
    Exec(#[from] std::io::Error),
    /// `nft` rejected the rules.
    #[error("nft failed: {0}")]
    Nft(String),
    /// The table name is unusable.
    #[error("invalid nftables table name {0:?}: letters, digits, '-' and '_' only")]
    TableName(String),
}

/// Transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

impl Protocol {
    /// From the Kubernetes spelling (`TCP`, `UDP`, `SCTP`; absent = TCP).
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One ready endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// Pod IP.
    pub ip: Ipv4Addr,
    /// Target port.
    pub port: u16,
}

/// The rules of one Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRule {
    /// `namespace/name:portname` (for comments and diagnostics).
    pub id: String,
    /// Protocol of the port.
    pub protocol: Protocol,
    /// The ClusterIP (absent for headless Services).
    pub cluster_ip: Option<Ipv4Addr>,
    /// The Service port.
    pub port: u16,
    /// The NodePort, for NodePort and LoadBalancer Services.
    pub node_port: Option<u16>,
    /// Ready endpoints, sorted.
    pub endpoints: Vec<Endpoint>,
}

/// The complete rule set of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleSet {
    /// Addresses NodePorts answer on (always includes 127.0.0.1), sorted.
    pub node_ips: Vec<Ipv4Addr>,
    /// One entry per Service port with a ClusterIP or a NodePort.
    pub services: Vec<ServiceRule>,
}

/// Computes the rule set from Service and Endpoints objects (JSON as the
/// API serves them) and the node's IPs. Malformed entries are skipped.
pub fn compute_rules(services: &[Value], endpoints: &[Value], node_ips: &[Ipv4Addr]) -> RuleSet {
    let mut ips: Vec<Ipv4Addr> = node_ips.to_vec();
    ips.push(Ipv4Addr::LOCALHOST);
    ips.sort();
    ips.dedup();
    let mut rules: Vec<ServiceRule> = services
        .iter()
        .flat_map(|svc| service_rules(svc, find_endpoints(svc, endpoints)))
        .collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    RuleSet {
        node_ips: ips,
        services: rules,
    }
}

fn key(obj: &Value) -> (&str, &str) {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or("default"),
        m["name"].as_str().unwrap_or(""),
    )
}

fn find_endpoints<'a>(svc: &Value, endpoints: &'a [Value]) -> Option<&'a Value> {
    endpoints.iter().find(|e| key(e) == key(svc))
}

fn service_rules(svc: &Value, eps: Option<&Value>) -> Vec<ServiceRule> {
    let spec = &svc["spec"];
    let cluster_ip = spec["clusterIP"].as_str().and_then(|s| s.parse().ok());
    let (ns, name) = key(svc);
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    ports
        .iter()
        .filter_map(|p| {
            let protocol = Protocol::parse(p["protocol"].as_str())?;
            let port_name = p["name"].as_str().unwrap_or("");
            let node_port = p["nodePort"].as_u64().and_then(|n| u16::try_from(n).ok());
            if cluster_ip.is_none() && node_port.is_none() {
                return None;
            }
            Some(ServiceRule {
                id: format!("{ns}/{name}:{port_name}"),
                protocol,
                cluster_ip,
                port: u16::try_from(p["port"].as_u64()?).ok()?,
                node_port,
                endpoints: ready_endpoints(eps, port_name, protocol),
            })
        })
        .collect()
}

/// Ready addresses × the Endpoints port with the same name and protocol.
fn ready_endpoints(eps: Option<&Value>, port_name: &str, protocol: Protocol) -> Vec<Endpoint> {
    let subsets = eps
        .and_then(|e| e["subsets"].as_array())
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Endpoint> = subsets
        .iter()
        .flat_map(|s| {
            let port = s["ports"].as_array().and_then(|ps| {
                ps.iter().find(|p| {
                    p["name"].as_str().unwrap_or("") == port_name
                        && Protocol::parse(p["protocol"].as_str()) == Some(protocol)
                })
            });
            let port = port
                .and_then(|p| p["port"].as_u64())
                .and_then(|p| u16::try_from(p).ok());
            let addrs = s["addresses"].as_array().cloned().unwrap_or_default();
            addrs
                .iter()
                .filter_map(|a| {
                    Some(Endpoint {
                        ip: a["ip"].as_str()?.parse().ok()?,
                        port: port?,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl RuleSet {
    /// Renders the nftables script that atomically replaces `table ip <table>`.
    pub fn render_nft(&self, table: &str) -> String {
        let mut s = String::new();
        // Numeric priorities: nft 1.0.6 accepts `dstnat` only on prerouting.
        // Declaring first makes the delete valid when the table is absent.
        let _ = writeln!(s, "{}table ip {table} {{", emptied(table));
        for (hook, prio) in [("prerouting", "-100"), ("output", "-100")] {
            let _ = writeln!(
                s,
                "  chain nat-{hook} {{\n    type nat hook {hook} priority {prio}; policy accept;\n    jump services\n  }}"
            );
        }
        let _ = writeln!(
            s,
            "  chain nat-postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    meta mark & {MASQ_MARK} == {MASQ_MARK} masquerade\n  }}"
        );
        for hook in ["input", "forward", "output"] {
            let _ = writeln!(
                s,
                "  chain filter-{hook} {{\n    type filter hook {hook} priority 0; policy accept;\n    jump no-endpoints\n  }}"
            );
        }
        let nodes = self
            .node_ips
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let (mut services, mut rejects, mut chains) = (String::new(), String::new(), String::new());
        for (i, rule) in self.services.iter().enumerate() {
            let proto = rule.protocol.nft();
            let mut matches = Vec::new();
            if let Some(ip) = rule.cluster_ip {
                matches.push(format!("ip daddr {ip} {proto} dport {}", rule.port));
            }
            if let Some(np) = rule.node_port {
                matches.push(format!("ip daddr {{ {nodes} }} {proto} dport {np}"));
            }
            let target = if rule.endpoints.is_empty() {
                &mut rejects
            } else {
                &mut services
            };
            let verdict = if rule.endpoints.is_empty() {
                "reject".to_string()
            } else {
                format!("goto svc-{i}")
            };
            for m in &matches {
                let _ = writeln!(
                    target,
                    "    {m} {verdict} comment \"{}\"",
                    comment(&rule.id)
                );
            }
            render_service_chain(&mut chains, i, rule);
        }
        let _ = writeln!(s, "  chain services {{\n{services}  }}");
        let _ = writeln!(s, "  chain no-endpoints {{\n{rejects}  }}");
        s.push_str(&chains);
        s.push_str("}\n");
        s
    }
}

/// `svc-<i>` marks for masquerading and picks an endpoint; `ep-<i>-<j>` DNATs.
fn render_service_chain(out: &mut String, i: usize, rule: &ServiceRule) {
    if rule.endpoints.is_empty() {
        return;
    }
    let picks = (0..rule.endpoints.len())
        .map(|j| format!("{j} : goto ep-{i}-{j}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "  chain svc-{i} {{\n    meta mark set meta mark or {MASQ_MARK}\n    numgen random mod {} vmap {{ {picks} }}\n  }}",
        rule.endpoints.len()
    );
    for (j, ep) in rule.endpoints.iter().enumerate() {
        let proto = rule.protocol.nft();
        let _ = writeln!(
            out,
            "  chain ep-{i}-{j} {{\n    meta l4proto {proto} dnat to {}:{}\n  }}",
            ep.ip, ep.port
        );
    }
}

/// Comment text without characters that would end the nft string.
fn comment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/:-._".contains(*c))
        .take(120)
        .collect()
}

/// Applies rule sets with `nft`, owning one table.
#[derive(Debug, Clone)]
pub struct NftApplier {
    table: String,
}

impl NftApplier {
    /// An applier for `table ip <table>`.
    pub fn new(table: &str) -> Result<NftApplier, RulesError> {
        let ok = !table.is_empty()
            && table.len() <= 64
            && table
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !ok {
            return Err(RulesError::TableName(table.to_string()));
        }
        Ok(NftApplier {
            table: table.to_string(),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Replaces the table with `rules` in one transaction; also enables
    /// forwarding and `route_localnet` (NodePorts on 127.0.0.1).
    pub fn apply(&self, rules: &RuleSet) -> Result<(), RulesError> {
        crate::sysctl::enable("ip_forward")?;
        crate::sysctl::enable("conf/all/route_localnet")?;
        nft(&rules.render_nft(&self.table))
    }

    /// Deletes the table (idempotent): no rules of ours remain.
    pub fn flush(&self) -> Result<(), RulesError> {
        delete_table(&self.table)
    }
}

/// The start of a script that replaces `table ip <table>`, or deletes it: declaring the
/// table first makes the delete valid when it is absent, so both are idempotent and, with
/// what follows, one transaction.
pub(crate) fn emptied(table: &str) -> String {
    format!("table ip {table}\ndelete table ip {table}\n")
}

/// Deletes `table ip <table>` (idempotent).
pub(crate) fn delete_table(table: &str) -> Result<(), RulesError> {
    nft(&emptied(table))
}

pub(crate) fn nft(script: &str) -> Result<(), RulesError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(RulesError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                "ports": [{"name": "h", "port": 80, "nodePort": 30080, "protocol": "TCP"}]}})
    }

    fn eps(ips: &[&str]) -> Value {
        let addrs: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
        json!({"metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": addrs, "notReadyAddresses": [{"ip": "10.244.0.9"}],
                "ports": [{"name": "h", "port": 5678, "protocol": "TCP"}]}]})
    }

    #[test]
    fn computes_ready_endpoints_and_node_ips() {
        let node = "192.168.1.5".parse().unwrap();
        let rs = compute_rules(&[svc()], &[eps(&["10.244.0.3", "10.244.0.2"])], &[node]);
        assert_eq!(
            rs.node_ips,
            vec!["127.0.0.1".parse::<Ipv4Addr>().unwrap(), node]
        );
        let r = &rs.services[0];
        assert_eq!(r.id, "default/web:h");
        assert_eq!(r.node_port, Some(30080));
        let ips: Vec<String> = r
            .endpoints
            .iter()
            .map(|e| format!("{}:{}", e.ip, e.port))
            .collect();
        assert_eq!(ips, ["10.244.0.2:5678", "10.244.0.3:5678"]);
    }

    #[test]
    fn renders_dnat_nodeport_and_masquerade() {
        let rs = compute_rules(&[svc()], &[eps(&["10.244.0.2", "10.244.0.3"])], &[]);
        let text = rs.render_nft("armorlet");
        assert!(text.starts_with("table ip armorlet\ndelete table ip armorlet\n"));
        assert!(text.contains("ip daddr 10.96.0.10 tcp dport 80 goto svc-0"));
        assert!(text.contains("ip daddr { 127.0.0.1 } tcp dport 30080 goto svc-0"));
        assert!(text.contains("numgen random mod 2 vmap { 0 : goto ep-0-0, 1 : goto ep-0-1 }"));
        assert!(text.contains("dnat to 10.244.0.3:5678"));
        assert!(text.contains("masquerade"));
        assert!(!text.contains("10.244.0.9"));
    }

    #[test]
    fn no_endpoints_rejects_and_headless_is_skipped() {
        let rs = compute_rules(&[svc()], &[], &[]);
        let text = rs.render_nft("t");
        assert!(text.contains("ip daddr 10.96.0.10 tcp dport 80 reject"));
        assert!(!text.contains("chain svc-0"));
        let mut headless = svc();
        headless["spec"]["clusterIP"] = json!("None");
        headless["spec"]["ports"][0]["nodePort"] = Value::Null;
        assert!(compute_rules(&[headless], &[], &[]).services.is_empty());
    }

    #[test]
    fn table_names_are_checked() {
        assert!(NftApplier::new("armorlet-n1").is_ok());
        assert!(NftApplier::new("bad name;").is_err());
    }
}
