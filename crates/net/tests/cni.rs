//! Real CNI tests (root): two pod namespaces on a bridge, hostPorts, DEL
//! cleanup and a 50-cycle leak check, with Debian's reference plugins.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;

use armorlet_net::{Cni, CniConfig, PortMapping};
use common::*;

fn cni(dir: &Path, bridge: &str, cidr: &str) -> Cni {
    let mut config = CniConfig::for_node(dir, 0);
    config.bridge = bridge.to_string();
    config.pod_cidr = cidr.to_string();
    Cni::new(config).expect("CNI config is valid and plugins are installed")
}

/// Reserved IPs in the host-local data dir (files named like addresses).
fn reservations(cni: &Cni) -> Vec<String> {
    files_under(&cni.ipam_dir())
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .filter(|n| n.parse::<Ipv4Addr>().is_ok())
        .collect()
}

#[test]
fn two_pods_reach_each_other_and_the_node_and_del_cleans_up() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cni = cni(tmp.path(), "armt-pods", "10.251.1.0/24");
    assert!(cni.conflist_path().is_file());
    let (a, b) = (Netns::new("armt-a"), Netns::new("armt-b"));
    let na = cni.add("pod-a", &a.path(), &[]).unwrap();
    let nb = cni.add("pod-b", &b.path(), &[]).unwrap();
    let gw: Ipv4Addr = "10.251.1.1".parse().unwrap();
    assert_eq!(na.gateway, Some(gw));
    assert_ne!(na.ip, nb.ip);
    assert!(na.ip.octets()[..3] == [10, 251, 1] && nb.ip.octets()[..3] == [10, 251, 1]);
    assert_eq!(cni.attached().unwrap(), ["pod-a", "pod-b"]);

    assert!(a.ping(nb.ip), "pod a pings pod b");
    assert!(b.ping(na.ip), "pod b pings pod a");
    assert!(a.ping(gw), "pod a pings the node (bridge)");
    let _srv = b.serve(8080, "hello from b", tmp.path());
    assert_eq!(
        eventually(|| a.wget(nb.ip, 8080)).as_deref(),
        Some("hello from b"),
        "TCP pod→pod"
    );
    assert_eq!(
        eventually(|| http_get(nb.ip, 8080)).as_deref(),
        Some("hello from b"),
        "TCP node→pod"
    );
    assert_eq!(bridge_ports("armt-pods").len(), 2);
    cni.check("pod-a")
        .expect("CNI CHECK passes on a healthy attachment");

    cni.del("pod-a", &a.path()).unwrap();
    cni.del("pod-a", &a.path()).expect("DEL is idempotent");
    assert_eq!(bridge_ports("armt-pods").len(), 1);
    assert_eq!(reservations(&cni), [nb.ip.to_string()]);
    assert!(!a.ping(nb.ip), "a detached pod has no network");

    // DEL after the namespace is gone (agent restarted, sandbox removed) works from the cache.
    drop(b);
    cni.del("pod-b", Path::new("/run/netns/armt-b")).unwrap();
    assert!(reservations(&cni).is_empty());
    assert!(cni.attached().unwrap().is_empty());
    cni.teardown_all().unwrap();
    assert!(
        !Path::new("/sys/class/net/armt-pods").exists(),
        "teardown_all removes the bridge"
    );
}

#[test]
fn host_port_reaches_the_pod_on_localhost() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cni = cni(tmp.path(), "armt-hp", "10.251.2.0/24");
    let ns = Netns::new("armt-hp");
    let mapping = PortMapping {
        host_port: 18080,
        container_port: 8080,
        protocol: "tcp".into(),
        host_ip: String::new(),
    };
    cni.add("pod-hp", &ns.path(), &[mapping]).unwrap();
    let _srv = ns.serve(8080, "hostport ok", tmp.path());
    let localhost = Ipv4Addr::LOCALHOST;
    assert_eq!(
        eventually(|| http_get(localhost, 18080)).as_deref(),
        Some("hostport ok")
    );
    assert_eq!(
        eventually(|| http_get(node_ip(), 18080)).as_deref(),
        Some("hostport ok")
    );
    cni.teardown_all().unwrap();
    assert_eq!(
        http_get(localhost, 18080),
        None,
        "the hostPort is gone after DEL"
    );
    assert!(
        !iptables_nat().contains("pod-hp"),
        "no portmap/ipMasq rules remain"
    );
}

#[test]
fn fifty_add_del_cycles_leak_nothing() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cni = cni(tmp.path(), "armt-leak", "10.251.3.0/24");
    let ns = Netns::new("armt-leak");
    // The bridge exists after the first ADD: take the baseline after one cycle.
    let mapping = PortMapping {
        host_port: 18081,
        container_port: 80,
        protocol: "tcp".into(),
        host_ip: String::new(),
    };
    cni.add("pod-leak", &ns.path(), std::slice::from_ref(&mapping))
        .unwrap();
    cni.del("pod-leak", &ns.path()).unwrap();
    let (veths, nat) = (host_veths(), iptables_nat());
    let mut ips = std::collections::BTreeSet::new();
    for i in 0..50 {
        let uid = format!("pod-leak-{i}");
        let n = cni
            .add(&uid, &ns.path(), std::slice::from_ref(&mapping))
            .unwrap();
        ips.insert(n.ip);
        assert_eq!(bridge_ports("armt-leak").len(), 1);
        cni.del(&uid, &ns.path()).unwrap();
    }
    assert_eq!(host_veths(), veths, "no veth leaked");
    assert_eq!(iptables_nat(), nat, "no NAT rule leaked");
    assert!(bridge_ports("armt-leak").is_empty());
    assert!(reservations(&cni).is_empty(), "no IPAM reservation leaked");
    assert!(
        files_under(&cni.cache_dir()).is_empty(),
        "no cache file leaked"
    );
    assert!(ips.len() > 1, "host-local hands out addresses round-robin");
    cni.teardown_all().unwrap();
    assert!(!Path::new("/sys/class/net/armt-leak").exists());
}

/// A namespace outside the node's networks, linked to the host by a veth pair
/// (`10.252.9.1` host side, `10.252.9.2` inside) and with no route back to any
/// pod CIDR: it can answer a pod only when the node masquerades the pod.
struct Outside {
    ns: Netns,
    host_if: &'static str,
}

impl Outside {
    fn new() -> Outside {
        let ns = Netns::new("armt-out");
        let host_if = "armt-outh";
        let _ = run_ok(std::process::Command::new("ip").args(["link", "del", host_if]));
        for args in [
            vec![
                "link",
                "add",
                host_if,
                "type",
                "veth",
                "peer",
                "name",
                "armt-outn",
            ],
            vec!["link", "set", "armt-outn", "netns", "armt-out"],
            vec!["addr", "add", "10.252.9.1/30", "dev", host_if],
            vec!["link", "set", host_if, "up"],
            vec![
                "-n",
                "armt-out",
                "addr",
                "add",
                "10.252.9.2/30",
                "dev",
                "armt-outn",
            ],
            vec!["-n", "armt-out", "link", "set", "armt-outn", "up"],
        ] {
            assert!(
                run_ok(std::process::Command::new("ip").args(&args)),
                "ip {args:?}"
            );
        }
        Outside { ns, host_if }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = run_ok(std::process::Command::new("ip").args(["link", "del", self.host_if]));
    }
}

#[test]
fn pods_reach_outside_the_node_through_the_nodes_masquerade_table() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cni = cni(tmp.path(), "armt-masq", "10.251.4.0/24");
    let outside = Outside::new();
    let _srv = outside.ns.serve(8080, "hello outside", tmp.path());
    let pod = Netns::new("armt-mpod");
    cni.add("pod-masq", &pod.path(), &[]).unwrap();
    let out_ip: Ipv4Addr = "10.252.9.2".parse().unwrap();
    assert_eq!(
        eventually(|| pod.wget(out_ip, 8080)).as_deref(),
        Some("hello outside"),
        "the pod reaches a network that has no route back to the pod CIDR"
    );
    let table = cni.masquerade_table();
    assert!(
        !iptables_nat().contains("pod-masq"),
        "no per-pod ipMasq chain (the bridge plugin's)"
    );

    // The control: without the node's table the same request gets no answer.
    assert!(run_ok(
        std::process::Command::new("nft").args(["delete", "table", "ip", &table])
    ));
    assert_eq!(
        pod.wget(out_ip, 8080),
        None,
        "unmasqueraded, the reply has no route"
    );

    cni.del("pod-masq", &pod.path()).unwrap();
    cni.teardown_all().unwrap();
    assert!(
        !run_ok(std::process::Command::new("nft").args(["list", "table", "ip", &table])),
        "teardown_all deletes the masquerade table"
    );
}

#[test]
fn a_second_add_of_one_pod_replaces_the_first() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cni = cni(tmp.path(), "armt-again", "10.251.5.0/24");
    let ns = Netns::new("armt-again");
    let first = cni.add("pod-again", &ns.path(), &[]).unwrap();
    // What an agent stopped before the pod's first start leaves: the attachment and its
    // cache. The plugins alone refuse this ADD (`eth0` exists in the namespace).
    let second = cni
        .add("pod-again", &ns.path(), &[])
        .expect("the old attachment is deleted first");
    assert_eq!(bridge_ports("armt-again").len(), 1, "one veth");
    assert_eq!(reservations(&cni), [second.ip.to_string()], "one address");
    assert!(first.ip.octets()[..3] == [10, 251, 5]);
    assert!(ns.ping(second.gateway.unwrap()), "the pod reaches the node");
    // The cache holds the one entry, whole, and no temporary file of its writes.
    let cache: Vec<String> = std::fs::read_dir(cni.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cache, ["pod-again.json"]);
    assert_eq!(
        cni.cached("pod-again").unwrap().map(|n| n.ip),
        Some(second.ip)
    );
    cni.teardown_all().unwrap();
}
