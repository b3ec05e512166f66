//! Real Service tests (root): NodePort and ClusterIP rules applied with nft
//! reach a busybox httpd in a pod network namespace.

mod common;

use std::net::Ipv4Addr;

use armorlet_net::{compute_rules, Cni, CniConfig, NftApplier};
use common::*;
use serde_json::json;

#[test]
fn nodeport_and_cluster_ip_reach_the_pod_and_flush_removes_rules() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = CniConfig::for_node(tmp.path(), 0);
    config.bridge = "armt-svc".into();
    config.pod_cidr = "10.251.4.0/24".into();
    let cni = Cni::new(config).unwrap();
    let (server, client) = (Netns::new("armt-srv"), Netns::new("armt-cli"));
    let ns = cni.add("pod-srv", &server.path(), &[]).unwrap();
    cni.add("pod-cli", &client.path(), &[]).unwrap();
    let _srv = server.serve(5678, "service ok", tmp.path());

    let svc = json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "clusterIP": "10.97.0.10",
            "ports": [{"port": 80, "targetPort": 5678, "nodePort": 30678, "protocol": "TCP"}]}});
    let empty = json!({"metadata": {"name": "empty", "namespace": "default"},
        "spec": {"clusterIP": "10.97.0.11", "ports": [{"port": 80, "protocol": "TCP"}]}});
    let eps = json!({"metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": ns.ip.to_string()}], "ports": [{"port": 5678, "protocol": "TCP"}]}]});
    let node = node_ip();
    let rules = compute_rules(&[svc, empty], &[eps], &[node]);
    let nft = NftApplier::new("armorlet-test").unwrap();
    nft.apply(&rules).unwrap();
    nft.apply(&rules)
        .expect("re-applying replaces the table atomically");

    let lo = Ipv4Addr::LOCALHOST;
    assert_eq!(
        eventually(|| http_get(lo, 30678)).as_deref(),
        Some("service ok"),
        "127.0.0.1:NodePort"
    );
    assert_eq!(
        http_get(node, 30678).as_deref(),
        Some("service ok"),
        "NODEIP:NodePort"
    );
    let vip: Ipv4Addr = "10.97.0.10".parse().unwrap();
    assert_eq!(
        client.wget(vip, 80).as_deref(),
        Some("service ok"),
        "ClusterIP from another pod"
    );
    assert_eq!(
        server.wget(vip, 80).as_deref(),
        Some("service ok"),
        "hairpin: ClusterIP from the endpoint itself"
    );
    assert_eq!(
        http_get(vip, 80).as_deref(),
        Some("service ok"),
        "ClusterIP from the node"
    );
    assert_eq!(
        client.wget("10.97.0.11".parse().unwrap(), 80),
        None,
        "no endpoints: rejected"
    );

    nft.flush().unwrap();
    nft.flush().expect("flush is idempotent");
    assert!(!run_ok(std::process::Command::new("nft").args([
        "list",
        "table",
        "ip",
        "armorlet-test"
    ])));
    assert_eq!(http_get(lo, 30678), None, "no NodePort after flush");
    cni.teardown_all().unwrap();
}
