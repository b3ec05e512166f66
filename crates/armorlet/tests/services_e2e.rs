//! Pod networking and Services end to end: a pod gets an IP from the node's pod CIDR on the
//! node bridge (real CNI bridge/host-local plugins), `kubectl expose --type NodePort` makes it
//! reachable on its ClusterIP, on the node's address and on 127.0.0.1 (nftables DNAT, as
//! kube-proxy's nftables mode), the endpoints controller fills `kubectl get endpoints`, and
//! nothing is left behind: no veth, IPAM reservation or rule after the pod and Service are
//! deleted, no bridge or table after the node stops.
//!
//! Needs root, crun, the CNI plugins and nft: every missing piece fails the test loudly.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const BODY: &str = "just made some syscalls!";

fn echo_pod() -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: echo\n  labels:\n    app: echo\nspec:\n  nodeName: {node}\n  containers:\n  - name: test-container\n    image: hashicorp/http-echo:0.2.3\n    args: [\"-text={BODY}\"]\n    securityContext:\n      allowPrivilegeEscalation: false\n",
        node = hostname()
    )
}

/// A plain HTTP/1.0 GET of `/` at `addr`: the response body.
fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    conn.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.trim().to_owned())
}

fn nft_table(table: &str) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .expect("nft is required");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Host-side veths attached to `bridge`.
fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pod_ip_service_nodeport_and_cleanup() {
    let mut c = Cluster::new("crun");
    let index = c.node_index;
    let bridge = format!("armorlet{index}");
    let table = format!("armorlet-{index}");

    // The node carries its pod CIDR; the pod gets an address from it.
    let node = c.kubectl_json(&["get", "node", &hostname()]).expect("node");
    let cidr = format!("10.244.{index}.0/24");
    assert_eq!(node["spec"]["podCIDR"], cidr.as_str());
    assert_eq!(node["spec"]["podCIDRs"][0], cidr.as_str());
    let node_ip = node["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .expect("an InternalIP address")["address"]
        .as_str()
        .unwrap()
        .to_owned();

    c.apply(&echo_pod());
    let pod = c.wait_running("echo");
    let pod_ip = pod["status"]["podIP"].as_str().expect("podIP").to_owned();
    assert!(
        pod_ip.starts_with(&format!("10.244.{index}.")),
        "{pod_ip} not in {cidr}"
    );
    assert_eq!(pod["status"]["podIPs"][0]["ip"], pod_ip.as_str());
    let wide = c.kubectl_ok(&["get", "pod", "echo", "-o", "wide"]);
    assert!(wide.contains(&pod_ip), "{wide}");
    assert_eq!(bridge_ports(&bridge).len(), 1, "one veth on {bridge}");
    assert_eq!(
        http_get(&format!("{pod_ip}:5678")).as_deref(),
        Some(BODY),
        "the pod answers on its IP"
    );

    // kubectl expose: a NodePort Service, its endpoints, and the three ways in.
    let out = c.kubectl_ok(&["expose", "pod/echo", "--type", "NodePort", "--port", "5678"]);
    assert_eq!(out.trim(), "service/echo exposed");
    let svc = c.kubectl_json(&["get", "svc", "echo"]).expect("svc");
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    let table_text = c.kubectl_ok(&["get", "svc", "echo"]);
    assert!(
        table_text.contains(&format!("5678:{node_port}/TCP")),
        "{table_text}"
    );
    let eps = c.wait_for("endpoints of echo", || {
        let out = c.kubectl_ok(&["get", "endpoints", "echo"]);
        out.contains(&format!("{pod_ip}:5678")).then_some(out)
    });
    assert!(eps.starts_with("NAME"), "{eps}");
    for addr in [
        format!("{cluster_ip}:5678"),
        format!("{node_ip}:{node_port}"),
        format!("127.0.0.1:{node_port}"),
    ] {
        // The rules follow the Service within a second or so; until then a request may fail.
        let mut seen = Vec::new();
        let body = c.wait_for(&format!("{addr} to answer"), || {
            let body = http_get(&addr);
            seen.push(body.clone());
            body.filter(|b| b == BODY)
        });
        assert_eq!(body, BODY, "{addr}");
        eprintln!("{addr}: answered after {:?}", &seen[..seen.len() - 1]);
    }
    let rules = nft_table(&table).expect("the node's Service table");
    assert!(rules.contains(&node_port.to_string()), "{rules}");

    // Deleting the Service removes its rules; deleting the pod frees its address and veth.
    c.kubectl_ok(&["delete", "svc", "echo"]);
    c.wait_for("the NodePort rule to go", || {
        let rules = nft_table(&table).unwrap_or_default();
        (!rules.contains(&node_port.to_string())).then_some(())
    });
    assert_eq!(http_get(&format!("127.0.0.1:{node_port}")), None);
    c.kubectl_ok(&["delete", "pod", "echo", "--grace-period=1"]);
    let ipam = c
        .data()
        .join("nodes")
        .join(hostname())
        .join("cni/ipam/armorlet");
    c.wait_for("the pod's network to be released", || {
        let reserved = std::fs::read_dir(&ipam)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy() == pod_ip)
            })
            .unwrap_or(false);
        (!reserved && bridge_ports(&bridge).is_empty()).then_some(())
    });

    // A clean stop removes the node's table and bridge.
    c.stop();
    assert_eq!(nft_table(&table), None, "table {table} left behind");
    assert!(!link_exists(&bridge), "bridge {bridge} left behind");
}
