//! Crash safety (issue 12): `armorlet up` (API server, store and agent in one process) is
//! killed with SIGKILL at arbitrary points while pods are created and deleted; after each
//! restart the store passes its integrity check, every pod the API acknowledged exists, the
//! deletions complete, every running pod has exactly one running container (none started
//! twice), and every running container still has its monitor.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sleep\", \"3600\"]\n"
    )
}

/// A pseudo-random delay in `0..max_ms` (no need for a seeded generator: any point will do).
fn jitter(max_ms: u64) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(nanos % max_ms)
}

/// Running containers per pod name, from the runtime's own state.
fn running_containers(c: &Cluster) -> BTreeMap<String, Vec<String>> {
    let node_dir = c.data().join("nodes").join(hostname());
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(node_dir.join("containers")) else {
        return out;
    };
    for d in dirs.flatten() {
        let Ok(spec) = std::fs::read(d.path().join("spec.json")) else {
            continue;
        };
        let spec: serde_json::Value = serde_json::from_slice(&spec).unwrap();
        let id = spec["id"].as_str().unwrap().to_owned();
        let state = Command::new("crun")
            .arg("--root")
            .arg(node_dir.join("runtime"))
            .args(["state", &id])
            .output()
            .unwrap();
        let running = serde_json::from_slice::<serde_json::Value>(&state.stdout)
            .is_ok_and(|s| s["status"] == "running");
        if running {
            let pod = spec["labels"]["io.kubernetes.pod.name"]
                .as_str()
                .unwrap()
                .to_owned();
            out.entry(pod).or_default().push(id);
        }
    }
    out
}

/// Ids of the containers that have a live `armorlet monitor` process.
fn monitored() -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-af", "armorlet monitor"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.rsplit('/').next().map(str::to_owned))
        .collect()
}

#[test]
fn sigkill_during_churn_loses_nothing_and_starts_nothing_twice() {
    let mut c = Cluster::new("crun");
    let mut live: Vec<String> = Vec::new();
    let mut deleted: Vec<String> = Vec::new();
    for round in 0..4 {
        for i in 0..3 {
            let name = format!("churn-{round}-{i}");
            let path = c.dir.path().join(format!("{name}.yaml"));
            std::fs::write(&path, pod(&name)).unwrap();
            // Only what the API acknowledged must survive.
            if c.kubectl(&["apply", "-f", path.to_str().unwrap()])
                .status
                .success()
            {
                live.push(name);
            }
        }
        if round > 0 {
            let victim = live.remove(0);
            if c.kubectl(&["delete", "pod", &victim, "--wait=false"])
                .status
                .success()
            {
                deleted.push(victim);
            } else {
                live.insert(0, victim);
            }
        }
        std::thread::sleep(jitter(1500));
        c.kill();
        let store = armorlet_store::Store::open(&c.data()).expect("store opens after SIGKILL");
        let problems = store.integrity_check().expect("integrity check runs");
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        drop(store);
        c.start();
    }
    for name in &live {
        c.wait_running(name);
    }
    c.wait_for("the deleted pods to be gone", || {
        deleted
            .iter()
            .all(|n| !c.kubectl(&["get", "pod", n]).status.success())
            .then_some(())
    });
    // Let the agent settle, then count.
    std::thread::sleep(Duration::from_secs(3));
    let running = running_containers(&c);
    for name in &live {
        let ids = running.get(name).cloned().unwrap_or_default();
        assert_eq!(ids.len(), 1, "{name}: running containers {ids:?}");
        let status_id = c.pod(name)["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap()
            .trim_start_matches("crun://")
            .to_owned();
        assert_eq!(ids[0], status_id, "{name}: status names another container");
    }
    for name in &deleted {
        assert!(
            !running.contains_key(name),
            "{name} still runs after its deletion"
        );
    }
    let monitors = monitored();
    for ids in running.values() {
        for id in ids {
            assert!(monitors.contains(id), "container {id} lost its monitor");
        }
    }
    println!(
        "4 SIGKILLs survived: {} pods running, {} deleted",
        live.len(),
        deleted.len()
    );
}

/// A node agent that cannot start (here its node API port is taken) stops `armorlet up` with
/// the agent's error and a failure exit status, rather than leaving a cluster that silently
/// lacks the node.
#[test]
fn a_node_that_cannot_start_fails_armorlet_up() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = armorlet()
        .args(["up", "--listen", "127.0.0.1:0", "--node-api-port", &port])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--kubelet-root-dir")
        .arg(dir.path().join("kroot"))
        .args(["--node-index", &next_node_index(1).to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "armorlet up succeeded:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "armorlet: node {}: pod network: node API on 0.0.0.0:{port}: Address already in use",
            hostname()
        )),
        "{stderr}"
    );
    drop(taken);
}

/// The agent is killed after it set up a pod's network but before any container of the pod
/// started (its image cannot be pulled). After the restart the pod's network is set up again:
/// the CNI plugins refuse a second ADD for one pod (`eth0` exists in its namespace), so the
/// attachment left from before is deleted first. Once its image is fixed, the pod runs.
#[test]
fn restart_between_network_set_up_and_first_start_sets_the_network_up_again() {
    let mut c = Cluster::new("crun");
    let yaml = pod("early").replace("busybox:1.28", "busybox:absent");
    c.apply(&yaml);
    c.wait_for("the pod IP while the image pull fails", || {
        let p = c.pod("early");
        let waiting = p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].clone();
        (p["status"]["podIP"].is_string()
            && (waiting == "ErrImagePull" || waiting == "ImagePullBackOff"))
            .then_some(())
    });
    c.kill();
    c.start();
    c.kubectl_ok(&["set", "image", "pod/early", "c=busybox:1.28"]);
    let p = c.wait_running("early");
    let ip = p["status"]["podIP"].as_str().unwrap_or_default();
    assert!(
        ip.starts_with(&format!("10.244.{}.", c.node_index)),
        "{}",
        p["status"]
    );
    let failed = c
        .kubectl_json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=early,reason=FailedCreatePodSandBox",
        ])
        .unwrap();
    assert_eq!(failed["items"], serde_json::json!([]), "{failed}");
    c.kubectl_ok(&["delete", "pod", "early", "--wait=true"]);
}
