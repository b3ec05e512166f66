//! Node benchmarks, each against its baseline measured in the same run, interleaved:
//!
//! - **Pod start**: `kubectl apply -f pod.yaml` then `kubectl wait --for=condition=Ready`, for a
//!   busybox pod unconfined, under RuntimeDefault and under a Localhost seccomp profile, against
//!   the floor: bare `crun run --detach` of an equivalent bundle (busybox `sleep`, the default
//!   namespaces). Each iteration also times `kubectl get ns default`, the cost of starting
//!   kubectl and one request, which the pod start includes twice.
//! - **NodePort**: an HTTP request (new connection, GET, whole response) to http-echo through a
//!   NodePort on the node's address against the same request to the pod IP directly.
//!
//! Prints a Markdown table (median, p99, ratio of medians) and never asserts on times.
//! `cargo bench -p armorlet --bench node` (root, crun, kubectl; as the e2e tests);
//! `-- --quick` runs a few iterations only, to prove the benchmark still works.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One measured series.
struct Series {
    name: String,
    samples: Vec<Duration>,
}

impl Series {
    fn new(name: &str) -> Series {
        Series {
            name: name.to_owned(),
            samples: Vec::new(),
        }
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        let i = ((s.len() as f64 - 1.0) * q).round() as usize;
        s[i]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A Markdown row: the series, its baseline, and the ratio of medians.
fn row(s: &Series, base: &Series) -> String {
    let ratio = s.quantile(0.5).as_secs_f64() / base.quantile(0.5).as_secs_f64();
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.2}x |",
        s.name,
        ms(s.quantile(0.5)),
        ms(s.quantile(0.99)),
        base.name,
        ms(base.quantile(0.5)),
        ms(base.quantile(0.99)),
        ratio
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let c = Cluster::new("crun");
    let mut rows = vec![
        "| benchmark | median | p99 | baseline | baseline median | baseline p99 | ratio (medians) |"
            .to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    rows.extend(pod_start(&c, if quick { 2 } else { 30 }));
    rows.extend(nodeport(&c, if quick { 20 } else { 2000 }));
    println!("\n{}", rows.join("\n"));
}

/// A busybox pod with the given pod-level seccomp profile (`None`: no profile, Unconfined).
fn busybox_pod(name: &str, seccomp: Option<&str>) -> String {
    let sc = match seccomp {
        None => String::new(),
        Some("RuntimeDefault") => "  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n".to_owned(),
        Some(file) => format!("  securityContext:\n    seccompProfile:\n      type: Localhost\n      localhostProfile: profiles/{file}\n"),
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n{sc}  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sleep\", \"3600\"]\n"
    )
}

fn pod_start(c: &Cluster, n: usize) -> Vec<String> {
    let bundle = Bundle::new(c.dir.path());
    let kinds = [
        ("pod start, unconfined", None),
        ("pod start, RuntimeDefault", Some("RuntimeDefault")),
        ("pod start, Localhost (audit.json)", Some("audit.json")),
    ];
    let mut floor = Series::new("bare `crun run --detach`");
    let mut kubectl = Series::new("`kubectl get ns default`");
    let mut series: Vec<Series> = kinds.iter().map(|(name, _)| Series::new(name)).collect();
    let manifest = c.dir.path().join("bench-pod.yaml");
    // One warm-up round (image unpack, first bundle), not measured.
    for i in 0..=n {
        let t = Instant::now();
        c.kubectl_ok(&["get", "ns", "default"]);
        let k = t.elapsed();
        let f = bundle.run_detached(&format!("floor-{i}"));
        let mut starts = Vec::new();
        for (kind, (_, seccomp)) in kinds.iter().enumerate() {
            let name = format!("bench-{kind}-{i}");
            std::fs::write(&manifest, busybox_pod(&name, *seccomp)).unwrap();
            let t = Instant::now();
            c.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
            c.kubectl_ok(&[
                "wait",
                "--for=condition=Ready",
                &format!("pod/{name}"),
                "--timeout=120s",
            ]);
            starts.push(t.elapsed());
            c.kubectl_ok(&["delete", "pod", &name, "--grace-period=1"]);
        }
        if i > 0 {
            kubectl.samples.push(k);
            floor.samples.push(f);
            for (s, d) in series.iter_mut().zip(starts) {
                s.samples.push(d);
            }
        }
    }
    let mut rows: Vec<String> = series.iter().map(|s| row(s, &floor)).collect();
    rows.push(row(&kubectl, &floor));
    rows.push(row(&api_pod_start(c, n), &floor));
    rows
}

/// Pod start without kubectl's process start-up (53 ms per kubectl run here, twice in the
/// rows above): the time from an API create to the watch event that shows the pod Ready,
/// through kube-rs (as a controller would see it), unconfined.
fn api_pod_start(c: &Cluster, n: usize) -> Series {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
    let mut s = Series::new("pod start, API create → Ready (no kubectl)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = armorlet_node::client_from_kubeconfig(&c.kubeconfig())
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client, "default");
        for i in 0..=n {
            let name = format!("bench-api-{i}");
            let pod: Pod = serde_yaml::from_str(&busybox_pod(&name, None)).unwrap();
            let wp = WatchParams::default().fields(&format!("metadata.name={name}"));
            let mut events = pods.watch(&wp, "0").await.unwrap().boxed();
            let t = Instant::now();
            pods.create(&PostParams::default(), &pod).await.unwrap();
            while let Some(ev) = events.next().await {
                let ready = |p: &Pod| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                };
                match ev.unwrap() {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) if ready(&p) => break,
                    _ => {}
                }
            }
            let d = t.elapsed();
            if i > 0 {
                s.samples.push(d);
            }
            let dp = DeleteParams {
                grace_period_seconds: Some(1),
                ..DeleteParams::default()
            };
            pods.delete(&name, &dp).await.unwrap();
            // As `kubectl delete` in the rows above: the next pod starts once this one is gone,
            // not while its teardown competes for the CPU.
            while pods.get_opt(&name).await.unwrap().is_some() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    });
    s
}

/// A busybox bundle for bare crun runs, with crun's default spec.
struct Bundle {
    dir: std::path::PathBuf,
    root: std::path::PathBuf,
}

impl Bundle {
    fn new(base: &Path) -> Bundle {
        let dir = base.join("floor-bundle");
        let bin = dir.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static");
        std::os::unix::fs::symlink("busybox", bin.join("sleep")).unwrap();
        let out = Command::new("crun")
            .arg("spec")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "crun spec: {out:?}");
        let path = dir.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(["sleep", "3600"]);
        std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
        Bundle {
            root: base.join("floor-root"),
            dir,
        }
    }

    /// Times `crun run --detach` to its return (the container process started), then removes it.
    fn run_detached(&self, id: &str) -> Duration {
        let crun = |args: &[&str]| {
            Command::new("crun")
                .arg("--root")
                .arg(&self.root)
                .args(args)
                // A detached container keeps what it inherits: no pipes to wait on.
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
        };
        let t = Instant::now();
        let out = crun(&[
            "run",
            "--detach",
            "--bundle",
            self.dir.to_str().unwrap(),
            id,
        ]);
        let d = t.elapsed();
        assert!(out.success(), "crun run --detach {id}: {out}");
        crun(&["kill", id, "KILL"]);
        for _ in 0..100 {
            if crun(&["delete", id]).success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

/// One HTTP/1.0 GET on a new connection; the time to the whole response.
fn request(addr: &std::net::SocketAddr) -> Duration {
    use std::io::{Read, Write};
    let t = Instant::now();
    let mut conn = std::net::TcpStream::connect_timeout(addr, Duration::from_secs(5)).unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).unwrap();
    let d = t.elapsed();
    assert!(
        String::from_utf8_lossy(&out).contains("just made some syscalls!"),
        "{addr}: {}",
        String::from_utf8_lossy(&out)
    );
    d
}

fn nodeport(c: &Cluster, n: usize) -> Vec<String> {
    let manifest = c.dir.path().join("bench-echo.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bench-echo\n  labels:\n    app: bench-echo\nspec:\n  containers:\n  - name: c\n    image: hashicorp/http-echo:0.2.3\n    args: [\"-text=just made some syscalls!\"]\n",
    )
    .unwrap();
    c.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
    let pod = c.wait_running("bench-echo");
    c.kubectl_ok(&[
        "expose",
        "pod/bench-echo",
        "--type",
        "NodePort",
        "--port",
        "5678",
    ]);
    let svc = c.kubectl_json(&["get", "svc", "bench-echo"]).unwrap();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let node = c.kubectl_json(&["get", "node", &hostname()]).unwrap();
    let node_ip = internal_ip(&node);
    let direct: std::net::SocketAddr = format!("{}:5678", pod["status"]["podIP"].as_str().unwrap())
        .parse()
        .unwrap();
    let via: std::net::SocketAddr = format!("{node_ip}:{node_port}").parse().unwrap();
    c.wait_for("the NodePort", || {
        std::net::TcpStream::connect_timeout(&via, Duration::from_secs(1))
            .ok()
            .map(|_| ())
    });
    let mut d = Series::new("HTTP request to the pod IP");
    let mut p = Series::new("HTTP request through the NodePort");
    for i in 0..n + 50 {
        let (a, b) = (request(&direct), request(&via));
        if i >= 50 {
            d.samples.push(a);
            p.samples.push(b);
        }
    }
    let rate = |s: &Series| {
        s.samples.len() as f64 / s.samples.iter().map(Duration::as_secs_f64).sum::<f64>()
    };
    eprintln!(
        "requests/s (one connection at a time): direct {:.0}, NodePort {:.0}",
        rate(&d),
        rate(&p)
    );
    c.kubectl_ok(&["delete", "svc", "bench-echo"]);
    vec![
        row(&p, &d),
        format!(
            "| requests/s through the NodePort | {:.0}/s | | requests/s to the pod IP | {:.0}/s | | {:.2}x |",
            rate(&p),
            rate(&d),
            rate(&p) / rate(&d)
        ),
    ]
}
