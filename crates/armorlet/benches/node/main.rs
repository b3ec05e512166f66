//! Node benchmarks, each against its baseline measured in the same run, interleaved:
//!
//! - **Density** (first, on the fresh process): 110 running pods (the kubelet's default
//!   maximum): memory of the armorlet process (API server, store and node agent in one) and of
//!   the per-container monitors, CPU use while idle, and `kubectl get pods` against
//!   `kubectl get ns default`.
//! - **Pod start**: `kubectl apply -f pod.yaml` until the pod is Ready (seen by a watch that
//!   was open before, as a controller sees it), for a busybox pod unconfined, under
//!   RuntimeDefault, under a Localhost seccomp profile and under a Localhost AppArmor profile
//!   (the Landlock backend); the same unconfined pod created through the API (kube-rs, no
//!   kubectl process); against the floor, bare `crun run --detach` of an equivalent bundle, and
//!   `podman kube play` of the same YAML (to its return, when the pod is running). The
//!   unconfined start is also split where the watch first sees the pod: before it is kubectl's
//!   (process start-up, OpenAPI, requests), after it the node's. Each iteration also times
//!   `kubectl get ns default`, the cost of one kubectl process.
//! - **Burst**: 50 pods in one `kubectl apply` until all are Ready, and `kubectl delete` of all
//!   until all are gone, against 50 bare crun runs and `podman kube play`/`down` of the same.
//! - **API**: create, get, list, merge patch, watch delivery and delete with 1,000 pods stored,
//!   through kube-rs, against `GET /version` on the same connection; then four clients at once
//!   (requests/s).
//! - **NodePort**: an HTTP request (new connection, GET, whole response) to http-echo through a
//!   NodePort on the node's address against the same request to the pod IP directly.
//!
//! Prints Markdown tables (median, p99, ratio of medians), writes the PNG chart of the pod start
//! distributions to `$ARMORLET_BENCH_CHART` (default `target/bench/pod-start.png`), and never
//! asserts on times. `cargo bench -p armorlet --bench node` (root, crun, kubectl; as the e2e
//! tests); `-- --quick` runs a few iterations only, to prove the benchmark still works;
//! `-- --only density|pod-start|burst|api|nodeport` (repeatable) runs only those sections.

mod chart;
#[path = "../../tests/common/mod.rs"]
mod common;
mod watch;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use watch::Watcher;

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
        "| {} | {} | {} | {} | {} | {} | {} | {:.2}x |",
        s.name,
        s.samples.len(),
        ms(s.quantile(0.5)),
        ms(s.quantile(0.99)),
        base.name,
        ms(base.quantile(0.5)),
        ms(base.quantile(0.99)),
        ratio
    )
}

const HEADER: &str = "| benchmark | n | median | p99 | baseline | baseline median | baseline p99 | ratio (medians) |\n|---|---|---|---|---|---|---|---|";

/// The AppArmor profile of the pod start benchmark: exact for the Landlock backend (reads and
/// executes everywhere, writes only to /tmp), so it is enforced, not approximated.
const APPARMOR_PROFILE: &str = "profile armorlet-bench {\n  /** rix,\n  /tmp/** rw,\n}\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].as_str())
        .collect();
    const SECTIONS: [&str; 5] = ["density", "pod-start", "burst", "api", "nodeport"];
    if let Some(bad) = only.iter().find(|s| !SECTIONS.contains(s)) {
        panic!("--only {bad}: not one of {SECTIONS:?}");
    }
    let want = |section: &str| only.is_empty() || only.contains(&section);
    let c = Cluster::landlock(&[]);
    let profile = c.dir.path().join("armorlet-bench");
    std::fs::write(&profile, APPARMOR_PROFILE).unwrap();
    let out = armorlet()
        .args(["apparmor", "load", "--data-dir"])
        .arg(c.data())
        .arg(&profile)
        .output()
        .unwrap();
    assert!(out.status.success(), "apparmor load: {out:?}");
    let watcher = Watcher::start(&c.kubeconfig(), "default");
    // First, while the process has served nothing else: its memory then is the agent's and
    // the server's own, not what earlier benchmarks left in the allocator.
    if want("density") {
        println!("### Density: 110 running pods\n");
        println!("{}\n", density(&c, &watcher, quick).join("\n"));
    }

    let podman = Podman::new(&c);
    let floor = Bundle::new(c.dir.path());

    if want("pod-start") {
        pod_start_section(&c, &watcher, &floor, &podman, quick);
    }
    if want("burst") {
        let rows = burst(&c, &watcher, &floor, &podman, if quick { 1 } else { 5 });
        println!(
            "### Burst: 50 pods in one apply\n\n{HEADER}\n{}\n",
            rows.join("\n")
        );
    }
    if want("api") {
        let stored = if quick { 50 } else { 1000 };
        let (rows, throughput) = api(&c, stored, if quick { 20 } else { 300 });
        println!(
            "### API with {stored} pods stored (kube-rs, one connection)\n\n{HEADER}\n{}\n\n{throughput}\n",
            rows.join("\n")
        );
    }
    if want("nodeport") {
        let rows = nodeport(&c, if quick { 20 } else { 2000 });
        println!("### NodePort\n\n{HEADER}\n{}", rows.join("\n"));
    }
}

/// Pod start latencies, printed with their chart.
fn pod_start_section(c: &Cluster, watcher: &Watcher, floor: &Bundle, podman: &Podman, quick: bool) {
    let (rows, chart) = pod_start(c, watcher, floor, podman, if quick { 2 } else { 30 });
    println!("### Pod start\n\n{HEADER}\n{}\n", rows.join("\n"));
    let chart_path = std::env::var_os("ARMORLET_BENCH_CHART")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/bench/pod-start.png"));
    let named: Vec<(&str, &[Duration])> = chart
        .iter()
        .map(|s| (s.name.as_str(), s.samples.as_slice()))
        .collect();
    match chart::cdf(&chart_path, "Pod start latency (CDF)", &named) {
        Ok(()) => println!("Chart of these distributions: `{}`\n", chart_path.display()),
        Err(e) => panic!("the chart: {e}"),
    }
}

/// How a benchmark pod is confined.
#[derive(Clone, Copy)]
enum Confinement {
    Unconfined,
    RuntimeDefault,
    /// A Localhost seccomp profile (a file under the kubelet's seccomp root `profiles/`).
    Seccomp(&'static str),
    /// A Localhost AppArmor profile loaded into the node.
    AppArmor(&'static str),
}

/// A busybox pod with the given pod-level confinement and labels.
fn busybox_pod(name: &str, confinement: Confinement, labels: &str) -> String {
    let sc = match confinement {
        Confinement::Unconfined => String::new(),
        Confinement::RuntimeDefault => {
            "  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n".to_owned()
        }
        Confinement::Seccomp(file) => format!(
            "  securityContext:\n    seccompProfile:\n      type: Localhost\n      localhostProfile: profiles/{file}\n"
        ),
        Confinement::AppArmor(profile) => format!(
            "  securityContext:\n    appArmorProfile:\n      type: Localhost\n      localhostProfile: {profile}\n"
        ),
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  terminationGracePeriodSeconds: 1\n{sc}  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sleep\", \"3600\"]\n"
    )
}

/// `kubectl apply -f FILE`, timed from its start until the watcher saw every pod Ready.
fn apply_until_ready(c: &Cluster, w: &Watcher, file: &Path, names: &[String]) -> Duration {
    apply_split(c, w, file, names).0
}

/// [`apply_until_ready`], and the part of it before the watcher saw the first pod created
/// (kubectl's own: its process start-up, its OpenAPI and its requests).
fn apply_split(c: &Cluster, w: &Watcher, file: &Path, names: &[String]) -> (Duration, Duration) {
    let t = Instant::now();
    c.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let ready = w.wait_ready(names);
    (
        ready.duration_since(t),
        w.created(&names[0]).duration_since(t),
    )
}

fn pod_start(
    c: &Cluster,
    w: &Watcher,
    floor_bundle: &Bundle,
    podman: &Podman,
    n: usize,
) -> (Vec<String>, Vec<Series>) {
    let kinds = [
        ("pod start, unconfined", Confinement::Unconfined),
        ("pod start, RuntimeDefault", Confinement::RuntimeDefault),
        (
            "pod start, Localhost seccomp (audit.json)",
            Confinement::Seccomp("audit.json"),
        ),
        (
            "pod start, Localhost AppArmor (Landlock)",
            Confinement::AppArmor("armorlet-bench"),
        ),
    ];
    let mut floor = Series::new("bare `crun run --detach`");
    let mut kubectl = Series::new("`kubectl get ns default`");
    let mut play = Series::new("`podman kube play` (unconfined)");
    let mut until_created = Series::new("pod start, unconfined: `kubectl apply` → pod created");
    let mut after_created = Series::new("pod start, unconfined: pod created → Ready");
    let mut series: Vec<Series> = kinds.iter().map(|(name, _)| Series::new(name)).collect();
    let manifest = c.dir.path().join("bench-pod.yaml");
    // One warm-up round (image unpack, first bundle), not measured.
    for i in 0..=n {
        let t = Instant::now();
        c.kubectl_ok(&["get", "ns", "default"]);
        let k = t.elapsed();
        let f = floor_bundle.run_detached(&format!("floor-{i}"));
        let mut starts = Vec::new();
        let mut split = Duration::ZERO;
        for (kind, (_, confinement)) in kinds.iter().enumerate() {
            let name = format!("bench-{kind}-{i}");
            std::fs::write(&manifest, busybox_pod(&name, *confinement, "")).unwrap();
            let (total, created) = apply_split(c, w, &manifest, std::slice::from_ref(&name));
            if kind == 0 {
                split = created;
            }
            starts.push(total);
            c.kubectl_ok(&["delete", "pod", &name, "--grace-period=1"]);
        }
        let p = podman.play(&busybox_pod(
            &format!("podman-{i}"),
            Confinement::Unconfined,
            "",
        ));
        if i > 0 {
            kubectl.samples.push(k);
            floor.samples.push(f);
            play.samples.extend(p);
            until_created.samples.push(split);
            after_created.samples.push(starts[0] - split);
            for (s, d) in series.iter_mut().zip(starts) {
                s.samples.push(d);
            }
        }
    }
    let api = api_pod_start(c, n);
    let mut rows: Vec<String> = series.iter().map(|s| row(s, &floor)).collect();
    rows.push(row(&until_created, &floor));
    rows.push(row(&after_created, &floor));
    rows.push(row(&api, &floor));
    rows.push(row(&kubectl, &floor));
    match podman.why_not() {
        None => {
            rows.push(row(&play, &floor));
            rows.push(row(&series[0], &play));
            rows.push(row(&api, &play));
        }
        Some(why) => rows.push(format!(
            "| `podman kube play` | not run: {why} | | | | | | |"
        )),
    }
    let mut chart = series;
    chart.push(api);
    if podman.why_not().is_none() {
        chart.push(play);
    }
    chart.push(floor);
    (rows, chart)
}

/// Pod start without kubectl's process start-up: the time from an API create to the watch
/// event that shows the pod Ready, through kube-rs (as a controller would see it), unconfined.
fn api_pod_start(c: &Cluster, n: usize) -> Series {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
    let mut s = Series::new("pod start, API create → Ready (no kubectl)");
    let rt = runtime();
    rt.block_on(async {
        let client = armorlet_node::client_from_kubeconfig(&c.kubeconfig())
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client, "default");
        for i in 0..=n {
            let name = format!("bench-api-{i}");
            let pod: Pod =
                serde_yaml::from_str(&busybox_pod(&name, Confinement::Unconfined, "")).unwrap();
            let wp = WatchParams::default().fields(&format!("metadata.name={name}"));
            let mut events = pods.watch(&wp, "0").await.unwrap().boxed();
            let t = Instant::now();
            pods.create(&PostParams::default(), &pod).await.unwrap();
            while let Some(ev) = events.next().await {
                match ev.unwrap() {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) if watch::ready(&p) => break,
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
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    s
}

/// One `GET /version`.
async fn version_time(client: &kube::Client) -> Duration {
    let t = Instant::now();
    client.apiserver_version().await.unwrap();
    t.elapsed()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// 50 pods in one `kubectl apply` until all are Ready, then `kubectl delete` until all are
/// gone; against 50 bare crun runs one after the other and podman with the same YAML.
fn burst(
    c: &Cluster,
    w: &Watcher,
    floor_bundle: &Bundle,
    podman: &Podman,
    rounds: usize,
) -> Vec<String> {
    const PODS: usize = 50;
    let mut up = Series::new("50 pods: `kubectl apply` → all Ready");
    let mut down = Series::new("50 pods: `kubectl delete` → all gone");
    let mut floor = Series::new("50 bare `crun run --detach`, one after the other");
    let mut play = Series::new("50 pods: `podman kube play`");
    let mut play_down = Series::new("50 pods: `podman kube down`");
    let manifest = c.dir.path().join("bench-burst.yaml");
    for r in 0..rounds {
        let names: Vec<String> = (0..PODS).map(|i| format!("burst-{r}-{i}")).collect();
        let yaml: Vec<String> = names
            .iter()
            .map(|n| busybox_pod(n, Confinement::Unconfined, "bench: burst"))
            .collect();
        std::fs::write(&manifest, yaml.join("---\n")).unwrap();
        up.samples.push(apply_until_ready(c, w, &manifest, &names));
        let t = Instant::now();
        c.kubectl_ok(&[
            "delete",
            "pods",
            "-l",
            "bench=burst",
            "--grace-period=1",
            "--wait=false",
        ]);
        down.samples.push(w.wait_gone(&names).duration_since(t));
        floor.samples.push(
            (0..PODS)
                .map(|i| floor_bundle.run_detached(&format!("burst-floor-{r}-{i}")))
                .sum(),
        );
        let podman_yaml: Vec<String> = (0..PODS)
            .map(|i| busybox_pod(&format!("podman-burst-{i}"), Confinement::Unconfined, ""))
            .collect();
        if let Some((a, b)) = podman.play_and_down(&podman_yaml.join("---\n")) {
            play.samples.push(a);
            play_down.samples.push(b);
        }
    }
    let mut rows = vec![row(&up, &floor), row(&down, &floor)];
    if podman.why_not().is_none() {
        rows.push(row(&up, &play));
        rows.push(row(&down, &play_down));
    }
    rows
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn density(c: &Cluster, w: &Watcher, quick: bool) -> Vec<String> {
    const PODS: usize = 110;
    let up = c.pid().expect("armorlet up runs");
    let idle_window = Duration::from_secs(if quick { 2 } else { 20 });
    let clk_tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let idle_cpu = |pids: &[u32]| {
        let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
        std::thread::sleep(idle_window);
        let after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
        (after - before) as f64 / clk_tck / idle_window.as_secs_f64() * 100.0
    };
    let (rss0, pss0) = memory(up);
    let cpu0 = idle_cpu(&[up]);

    let names: Vec<String> = (0..PODS).map(|i| format!("density-{i}")).collect();
    let manifest = c.dir.path().join("bench-density.yaml");
    let yaml: Vec<String> = names
        .iter()
        .map(|n| busybox_pod(n, Confinement::Unconfined, "bench: density"))
        .collect();
    std::fs::write(&manifest, yaml.join("---\n")).unwrap();
    let started = apply_until_ready(c, w, &manifest, &names);
    // Let the start-up work settle before measuring the idle state.
    std::thread::sleep(Duration::from_secs(if quick { 1 } else { 10 }));
    let mons = monitors(c);
    let (rss1, pss1) = memory(up);
    let (mon_rss, mon_pss) = mons
        .iter()
        .map(|p| memory(*p))
        .fold((0, 0), |(a, b), (r, p)| (a + r, b + p));
    let mut all = mons.clone();
    all.push(up);
    let cpu1 = idle_cpu(&all);

    let mut get = Series::new("`kubectl get pods` (110 pods)");
    let mut kubectl = Series::new("`kubectl get ns default`");
    for i in 0..if quick { 3 } else { 30 } {
        let t = Instant::now();
        let out = c.kubectl_ok(&["get", "pods"]);
        let d = t.elapsed();
        let k = {
            let t = Instant::now();
            c.kubectl_ok(&["get", "ns", "default"]);
            t.elapsed()
        };
        assert_eq!(out.lines().count(), PODS + 1, "{out}");
        if i > 0 || quick {
            get.samples.push(d);
            kubectl.samples.push(k);
        }
    }
    let t = Instant::now();
    c.kubectl_ok(&[
        "delete",
        "pods",
        "-l",
        "bench=density",
        "--grace-period=1",
        "--wait=false",
    ]);
    let deleted = w.wait_gone(&names).duration_since(t);

    let per_pod = (pss1.saturating_sub(pss0) + mon_pss) / PODS as u64;
    vec![
        "| measure | value | note |".into(),
        "|---|---|---|".into(),
        format!("| 110 pods: `kubectl apply` → all Ready | {} | one apply of 110 documents |", ms(started)),
        format!("| 110 pods: `kubectl delete` → all gone | {} | |", ms(deleted)),
        format!("| armorlet process RSS, no pods | {} | API server, store and node agent in one process (PSS {}) |", mib(rss0), mib(pss0)),
        format!("| armorlet process RSS, 110 pods | {} | target < 60 MiB for the agent (PSS {}) |", mib(rss1), mib(pss1)),
        format!("| monitors, 110 pods | {} processes, RSS {} in all, PSS {} in all | one `armorlet monitor` per container |", mons.len(), mib(mon_rss), mib(mon_pss)),
        format!("| per-pod memory | {} | (armorlet PSS growth + monitors' PSS) / 110; target < 2 MiB |", mib(per_pod)),
        format!("| idle CPU, no pods | {cpu0:.2}% of one core | armorlet process, over {} s |", idle_window.as_secs()),
        format!("| idle CPU, 110 pods | {cpu1:.2}% of one core | armorlet process and monitors, over {} s |", idle_window.as_secs()),
        String::new(),
        HEADER.into(),
        row(&get, &kubectl),
    ]
}

/// API latency with `stored` pods: each verb through kube-rs on one connection, against
/// `GET /version`, interleaved.
fn api(c: &Cluster, stored: usize, n: usize) -> (Vec<String>, String) {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{
        Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
    };
    let rt = runtime();
    rt.block_on(async {
        let client = armorlet_node::client_from_kubeconfig(&c.kubeconfig())
            .await
            .unwrap();
        let ns: Api<Namespace> = Api::all(client.clone());
        let ns_obj: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "bench-api"}})).unwrap();
        ns.create(&PostParams::default(), &ns_obj).await.unwrap();
        let pods: Api<Pod> = Api::namespaced(client.clone(), "bench-api");
        // Bound to a node that does not exist: stored, never run.
        let pod = |i: usize| -> Pod {
            let mut p: serde_json::Value = serde_yaml::from_str(&busybox_pod(
                &format!("stored-{i}"),
                Confinement::Unconfined,
                "bench: api",
            ))
            .unwrap();
            p["spec"]["nodeName"] = "bench-no-such-node".into();
            serde_json::from_value(p).unwrap()
        };
        let mut version = Series::new("`GET /version`");
        let mut create = Series::new("create a pod");
        for i in 0..stored {
            let t = Instant::now();
            pods.create(&PostParams::default(), &pod(i)).await.unwrap();
            create.samples.push(t.elapsed());
            version.samples.push(version_time(&client).await);
        }
        let mut get = Series::new("get a pod");
        let mut patch = Series::new("merge patch a pod's label");
        let mut delivery = Series::new("watch: patch → event received");
        let mut after_write = Series::new("watch: event received after the patch returned");
        let mut list = Series::new(&format!("list all {stored} pods"));
        let mut list_page = Series::new("list, first page of 500 (as kubectl)");
        let rv = pods
            .list_metadata(&ListParams::default().limit(1))
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let mut events = pods
            .watch(&WatchParams::default().labels("bench=api"), &rv)
            .await
            .unwrap()
            .boxed();
        for i in 0..n {
            let name = format!("stored-{}", (i * 7919) % stored);
            let t = Instant::now();
            pods.get(&name).await.unwrap();
            get.samples.push(t.elapsed());

            let body = serde_json::json!({"metadata": {"labels": {"round": i.to_string()}}});
            let t = Instant::now();
            pods.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await
                .unwrap();
            patch.samples.push(t.elapsed());
            let returned = Instant::now();
            loop {
                match events.next().await.expect("the watch ended").unwrap() {
                    WatchEvent::Modified(p)
                        if p.metadata.labels.as_ref().and_then(|l| l.get("round"))
                            == Some(&i.to_string()) =>
                    {
                        break
                    }
                    WatchEvent::Error(e) => panic!("watch: {e:?}"),
                    _ => {}
                }
            }
            delivery.samples.push(t.elapsed());
            after_write
                .samples
                .push(Instant::now().saturating_duration_since(returned));

            if i % 10 == 0 {
                let t = Instant::now();
                let all = pods.list(&ListParams::default()).await.unwrap();
                list.samples.push(t.elapsed());
                assert_eq!(all.items.len(), stored);
                let t = Instant::now();
                pods.list(&ListParams::default().limit(500)).await.unwrap();
                list_page.samples.push(t.elapsed());
            }
            version.samples.push(version_time(&client).await);
        }
        drop(events);
        let (concurrent, throughput) = concurrent_clients(c, stored, n).await;
        let mut delete = Series::new("delete a pod (grace period 0)");
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        for i in 0..stored {
            let t = Instant::now();
            pods.delete(&format!("stored-{i}"), &dp).await.unwrap();
            delete.samples.push(t.elapsed());
        }
        ns.delete("bench-api", &DeleteParams::default())
            .await
            .unwrap();
        let rows = [
            create,
            get,
            patch,
            delivery,
            after_write,
            concurrent,
            list_page,
            list,
            delete,
        ]
        .iter()
        .map(|s| row(s, &version))
        .collect();
        (rows, throughput)
    })
}

/// Four clients at once, each on its own connection (its own kube-rs client), each getting and
/// merge-patching stored pods in turn, `rounds` of each; their latencies, and the requests/s of
/// all four together as a sentence.
async fn concurrent_clients(c: &Cluster, stored: usize, rounds: usize) -> (Series, String) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams};
    const CLIENTS: usize = 4;
    let mut apis = Vec::new();
    for _ in 0..CLIENTS {
        let client = armorlet_node::client_from_kubeconfig(&c.kubeconfig())
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client, "bench-api");
        // Opens the connection before the clock starts.
        pods.get("stored-0").await.unwrap();
        apis.push(pods);
    }
    let start = Instant::now();
    let each =
        futures_util::future::join_all(apis.into_iter().enumerate().map(|(k, pods)| async move {
            let mut samples = Vec::new();
            for j in 0..rounds {
                let name = format!("stored-{}", (k * 251 + j * 7919) % stored);
                let t = Instant::now();
                pods.get(&name).await.unwrap();
                samples.push(t.elapsed());
                let body =
                    serde_json::json!({"metadata": {"labels": {"client": format!("{k}-{j}")}}});
                let t = Instant::now();
                pods.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .unwrap();
                samples.push(t.elapsed());
            }
            samples
        }))
        .await;
    let elapsed = start.elapsed();
    let mut series = Series::new(&format!(
        "{CLIENTS} clients at once: a get or a merge patch"
    ));
    series.samples = each.into_iter().flatten().collect();
    let total = series.samples.len();
    let sentence = format!(
        "{CLIENTS} concurrent clients (one connection each, a get then a merge patch in turn): {total} requests in {:.2} s, **{:.0} requests/s**.",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    (series, sentence)
}

/// `podman kube play` of the same YAML, where podman runs here.
struct Podman {
    /// Why it does not run (`None`: it does).
    why_not: Option<String>,
    /// A containers.conf for this machine: podman's default rlimits (`nofile` 1048576) are above
    /// the hard limits here and nothing may raise them (no CAP_SYS_RESOURCE), so every container
    /// would fail with EPERM; logs go to files (no journald here).
    conf: PathBuf,
    dir: PathBuf,
}

impl Podman {
    fn new(c: &Cluster) -> Podman {
        let dir = c.dir.path().join("podman");
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\nlog_driver = \"k8s-file\"\n[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        let mut p = Podman {
            why_not: None,
            conf,
            dir,
        };
        // The same busybox image the cluster runs, from the same archive.
        let archive = c.dir.path().join("images-out/busybox.tar");
        match p.run(&["pull", &format!("oci-archive:{}:1.28", archive.display())]) {
            Ok(_) => {}
            Err(e) => p.why_not = Some(e),
        }
        if p.why_not.is_none() {
            // One play and down to warm up (and to find out whether pods run at all).
            let yaml = busybox_pod("podman-warm-up", Confinement::Unconfined, "");
            if p.play_and_down(&yaml).is_none() && p.why_not.is_none() {
                p.why_not = Some("podman kube play failed".into());
            }
        }
        if let Some(why) = &p.why_not {
            eprintln!("podman: not measured: {why}");
        }
        p
    }

    fn why_not(&self) -> Option<&str> {
        self.why_not.as_deref()
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("podman")
            .args(args)
            .env("CONTAINERS_CONF", &self.conf)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("podman: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "podman {}: {}",
                args.join(" "),
                err.lines()
                    .filter(|l| !l.contains("syslog"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        }
    }

    /// Times `podman kube play` of `yaml` to its return (every container started), then runs
    /// `podman kube down`, timed too. `None` (and the reason kept) when podman fails.
    fn play_and_down(&self, yaml: &str) -> Option<(Duration, Duration)> {
        if self.why_not.is_some() {
            return None;
        }
        let file = self.dir.join("pod.yaml");
        std::fs::write(&file, yaml).unwrap();
        let f = file.to_str().unwrap();
        let t = Instant::now();
        let played = self.run(&["kube", "play", f]);
        let up = t.elapsed();
        let t = Instant::now();
        let down = self.run(&["kube", "down", f]);
        let down_time = t.elapsed();
        match (played, down) {
            (Ok(_), Ok(_)) => Some((up, down_time)),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("podman: {e}");
                None
            }
        }
    }

    fn play(&self, yaml: &str) -> Option<Duration> {
        self.play_and_down(yaml).map(|(up, _)| up)
    }
}

/// A busybox bundle for bare crun runs, with crun's default spec.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
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
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
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
    c.kubectl_ok(&["delete", "svc", "bench-echo"]);
    vec![
        row(&p, &d),
        format!(
            "| requests/s through the NodePort (one connection at a time) | {} | {:.0}/s | | requests/s to the pod IP | {:.0}/s | | {:.2}x |",
            p.samples.len(),
            rate(&p),
            rate(&d),
            rate(&p) / rate(&d)
        ),
    ]
}
