//! The end-to-end harness shared by the test binaries: `armorlet up` with a temp data dir,
//! a kubelet root holding the seccomp tutorial's profiles, the offline images loaded, and
//! the real kubectl. Every missing piece (root, kubectl, crun/runc) fails loudly.

#![allow(dead_code)] // each test binary uses a different part

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const KUBECTL: &str = "/usr/bin/kubectl";
/// Guard against hanging forever; never an assertion about speed.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A loopback port for a server the test starts later. Picked below the kernel's ephemeral
/// range (32768 and up), from a counter this process owns, so a `bind(:0)` elsewhere cannot
/// take it between this check and the server's own bind, and two tests running at once in
/// this process never get the same port (a registry then answered for another test's one).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20000;
    const LAST: u16 = 32767;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        FIRST + (std::process::id() % 600) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port <= LAST, "no free loopback port left below {LAST}");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn require_root() {
    assert!(
        rustix_is_root(),
        "these tests need root (containers, mounts, cgroups)"
    );
    assert!(
        Path::new(KUBECTL).exists(),
        "kubectl is missing at {KUBECTL}"
    );
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

pub fn armorlet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_armorlet"))
}

/// A running `armorlet up` on a data directory, its first line (`export KUBECONFIG=...`) read
/// and the rest of its stdout drained on a thread; killed on drop.
pub struct UpProcess {
    pub child: Child,
    pub kubeconfig: PathBuf,
}

impl UpProcess {
    /// The control plane alone (`--nodes 0`), on `data` (new or from an earlier run).
    pub fn control_plane(data: &Path) -> UpProcess {
        UpProcess::start_with(data, &["--nodes", "0"])
    }

    /// `armorlet up --listen 127.0.0.1:0 --data-dir DATA EXTRA...`.
    pub fn start_with(data: &Path, extra: &[&str]) -> UpProcess {
        let mut child = armorlet()
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn armorlet up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("armorlet up printed nothing")
        });
        let kubeconfig = PathBuf::from(
            line.strip_prefix("export KUBECONFIG=")
                .unwrap_or_else(|| panic!("unexpected first line {line:?}")),
        );
        assert_eq!(kubeconfig, data.join("kubeconfig"));
        UpProcess { child, kubeconfig }
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_lowercase()
}

/// A test cluster: data dir, kubelet root with the tutorial profiles, the busybox image.
pub struct Cluster {
    /// The temp dir holding everything (data dir, kubelet root, logs).
    pub dir: tempfile::TempDir,
    /// crun or runc.
    pub runtime: &'static str,
    /// The node API port.
    pub api_port: u16,
    /// Extra `armorlet up` arguments.
    pub extra: Vec<String>,
    /// `--node-index`: distinct per cluster of this test binary, so clusters running side by
    /// side get their own bridge, pod CIDR and Service rules table.
    pub node_index: u8,
    /// The directory `armorlet up` runs in (a kind config's relative paths resolve there).
    pub cwd: Option<PathBuf>,
    /// Nodes `start` waits for.
    pub nodes: Vec<String>,
    /// Extra environment of `armorlet up` (e.g. a `PATH` whose `crun` is a fault-injecting
    /// wrapper).
    pub env: Vec<(String, String)>,
    /// A program (and its arguments) `armorlet up` is started through, e.g. the confine
    /// helper with a plan that takes a kernel feature away.
    pub wrapper: Vec<std::ffi::OsString>,
    up: Option<Child>,
}

impl Cluster {
    /// A cluster with default flags on `runtime`.
    pub fn new(runtime: &'static str) -> Cluster {
        Cluster::with_args(runtime, &[])
    }

    /// A cluster whose `armorlet up` gets `extra` arguments too.
    pub fn with_args(runtime: &'static str, extra: &[&str]) -> Cluster {
        Cluster::started(runtime, extra, None, vec![hostname()])
    }

    /// A crun cluster whose nodes enforce AppArmor with Landlock through the static confine
    /// helper, with `extra` arguments too.
    pub fn landlock(extra: &[&str]) -> Cluster {
        let helper = confine_helper();
        let mut args = vec![
            "--apparmor",
            "landlock",
            "--confine-helper",
            helper.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Cluster::with_args("crun", &args)
    }

    /// A cluster whose `armorlet up` runs with `env` added to its environment.
    pub fn with_env(runtime: &'static str, extra: &[&str], env: &[(&str, &str)]) -> Cluster {
        let mut c = Cluster::prepared(runtime, extra, None, vec![hostname()]);
        c.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.start();
        c
    }

    /// A cluster whose temp directory `setup` prepares before anything is written into it
    /// (the images are loaded into `data/` after it), e.g. to put `data/` or `pods/` on a
    /// filesystem of their own.
    pub fn with_setup(runtime: &'static str, extra: &[&str], setup: impl FnOnce(&Path)) -> Cluster {
        let mut c = Cluster::prepared_with(runtime, extra, None, vec![hostname()], setup);
        c.start();
        c
    }

    /// A cluster of the named nodes (`--nodes N` in `extra`: the hostname, `<hostname>-2`...).
    pub fn with_node_names(runtime: &'static str, extra: &[&str], nodes: &[String]) -> Cluster {
        Cluster::started(runtime, extra, None, nodes.to_vec())
    }

    /// `armorlet up --config FILE` run in `dir`, with the nodes the config names.
    pub fn kind(runtime: &'static str, dir: &Path, extra: &[&str], nodes: &[&str]) -> Cluster {
        let nodes = nodes.iter().map(|n| n.to_string()).collect();
        Cluster::started(runtime, extra, Some(dir.to_owned()), nodes)
    }

    fn started(
        runtime: &'static str,
        extra: &[&str],
        cwd: Option<PathBuf>,
        nodes: Vec<String>,
    ) -> Cluster {
        let mut c = Cluster::prepared(runtime, extra, cwd, nodes);
        c.start();
        c
    }

    /// Everything but `armorlet up`: the dirs, the tutorial profiles, the images loaded.
    pub fn prepared(
        runtime: &'static str,
        extra: &[&str],
        cwd: Option<PathBuf>,
        nodes: Vec<String>,
    ) -> Cluster {
        Cluster::prepared_with(runtime, extra, cwd, nodes, |_| {})
    }

    /// [`Cluster::prepared`], with `setup` run on the temp directory before anything is
    /// written into it.
    fn prepared_with(
        runtime: &'static str,
        extra: &[&str],
        cwd: Option<PathBuf>,
        nodes: Vec<String>,
        setup: impl FnOnce(&Path),
    ) -> Cluster {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let profiles = dir.path().join("kroot/seccomp/profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        for p in ["audit", "violation", "fine-grained"] {
            let src = repo().join(format!("testdata/tutorial/profiles/{p}.json"));
            std::fs::copy(&src, profiles.join(format!("{p}.json")))
                .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
        let images = dir.path().join("images-out");
        let out = Command::new(repo().join("images/build"))
            .arg(&images)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "images/build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = armorlet()
            .args(["image", "load", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg(images.join("busybox.tar"))
            .arg(images.join("http-echo.tar"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "image load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api_port = free_port();
        Cluster {
            dir,
            runtime,
            api_port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            node_index: next_node_index(
                extra
                    .iter()
                    .position(|a| *a == "--nodes")
                    .and_then(|i| extra.get(i + 1)?.parse().ok())
                    .unwrap_or(nodes.len() as u8),
            ),
            cwd,
            nodes,
            env: Vec::new(),
            wrapper: Vec::new(),
            up: None,
        }
    }

    /// A cluster whose `armorlet up` runs as `wrapper... armorlet up ...`.
    pub fn wrapped(runtime: &'static str, extra: &[&str], wrapper: &[&std::ffi::OsStr]) -> Cluster {
        let mut c = Cluster::prepared(runtime, extra, None, vec![hostname()]);
        c.wrapper = wrapper.iter().map(|w| w.to_os_string()).collect();
        c.start();
        c
    }

    /// The `armorlet up` command line `start` runs.
    pub fn up_command(&self) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(env!("CARGO_BIN_EXE_armorlet"));
                cmd
            }
            None => armorlet(),
        };
        cmd.args(["up", "--listen", "127.0.0.1:0", "--runtime", self.runtime])
            .arg("--data-dir")
            .arg(self.data());
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        // A kind config gives each node its own kubelet root (seen at /var/lib/kubelet).
        if !self.extra.iter().any(|a| a == "--config") {
            cmd.arg("--kubelet-root-dir")
                .arg(self.dir.path().join("kroot"));
        }
        cmd.arg("--pod-log-dir")
            .arg(self.dir.path().join("pods"))
            .args(["--node-api-port", &self.api_port.to_string()])
            .args(["--node-index", &self.node_index.to_string()])
            .args([
                "--service-cluster-ip-range",
                &format!("10.96.{}.0/24", self.node_index),
                "--service-node-port-range",
                &format!(
                    "{}-{}",
                    30000 + 100 * u32::from(self.node_index),
                    30099 + 100 * u32::from(self.node_index)
                ),
            ])
            .args(&self.extra);
        cmd
    }

    /// The process id of `armorlet up`, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.up.as_ref().map(Child::id)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data().join("kubeconfig")
    }

    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("up.log")).unwrap();
        let mut child = self
            .up_command()
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut first = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("export KUBECONFIG="),
            "unexpected output {first:?}; armorlet up log:\n{}",
            std::fs::read_to_string(self.dir.path().join("up.log")).unwrap_or_default()
        );
        self.up = Some(child);
        for name in self.nodes.clone() {
            self.wait_for(&format!("node {name} to be Ready"), || {
                let node = self.kubectl_json(&["get", "node", &name])?;
                let ready = node["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                ready.then_some(())
            });
        }
    }

    /// Stops `armorlet up` as a service manager would (SIGTERM, then SIGKILL after 60 s), so
    /// it removes its network.
    pub fn stop(&mut self) {
        if let Some(c) = self.up.take() {
            terminate(c);
        }
    }

    /// Kills `armorlet up` outright (no clean shutdown), as a crashed kubelet.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.up.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(KUBECTL)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Option<Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    pub fn apply(&self, yaml: &str) {
        let path = self.dir.path().join("manifest.yaml");
        std::fs::write(&path, yaml).unwrap();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    }

    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if start.elapsed() > PATIENCE {
                let log =
                    std::fs::read_to_string(self.dir.path().join("up.log")).unwrap_or_default();
                // What the cluster shows, so a timeout explains itself.
                let pods = self.kubectl(&["describe", "pods", "-A"]);
                let events = self.kubectl(&["get", "events", "-A"]);
                panic!(
                    "timed out waiting for {what}; armorlet up log:\n{log}\n\
                     kubectl describe pods -A:\n{}\nkubectl get events -A:\n{}",
                    String::from_utf8_lossy(&pods.stdout),
                    String::from_utf8_lossy(&events.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn pod(&self, name: &str) -> Value {
        self.kubectl_json(&["get", "pod", name])
            .unwrap_or(Value::Null)
    }

    pub fn wait_running(&self, name: &str) -> Value {
        self.wait_for(&format!("{name} Running"), || {
            let p = self.pod(name);
            (p["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(p)
        })
    }

    /// The `Seccomp:` mode of the container's init process, read on the host.
    pub fn seccomp_mode(&self, pod: &Value) -> String {
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap();
        let (rt, id) = id.split_once("://").unwrap();
        assert_eq!(rt, self.runtime);
        let root = self.data().join("nodes").join(hostname()).join("runtime");
        let out = Command::new(self.runtime)
            .arg("--root")
            .arg(root)
            .args(["state", id])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} state: {}",
            self.runtime,
            String::from_utf8_lossy(&out.stderr)
        );
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        let pid = state["pid"].as_u64().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.up.is_some() {
            // Delete what is left, in every namespace, so no container outlives the test.
            let _ = self.kubectl(&[
                "delete",
                "pods",
                "--all",
                "--all-namespaces",
                "--grace-period=1",
                "--timeout=60s",
            ]);
        }
        self.stop();
    }
}

/// `GET /` on a new connection (HTTP/1.0, 3 s timeouts): the response body, trimmed; `None`
/// when the request fails.
pub fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    conn.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.trim().to_owned())
}

/// The `InternalIP` address of a Node object.
pub fn internal_ip(node: &Value) -> String {
    node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .expect("the node has an InternalIP address")
        .to_owned()
}

/// The first of `nodes` consecutive node indexes for a new cluster, from 10 up (0 is left to
/// a user's cluster). Each index is held through a lock file for the life of the test
/// process, so test binaries running side by side never share a bridge, pod CIDR or Service
/// rules table.
pub fn next_node_index(nodes: u8) -> u8 {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let mut held = HELD.lock().unwrap();
    let dir = std::env::temp_dir().join("armorlet-test-node-index");
    std::fs::create_dir_all(&dir).unwrap();
    'first: for first in 10..=250u8 - nodes {
        let mut locks = Vec::new();
        for i in first..first + nodes {
            let file = std::fs::File::create(dir.join(i.to_string())).unwrap();
            if file.try_lock().is_err() {
                continue 'first;
            }
            locks.push(file);
        }
        held.extend(locks);
        return first;
    }
    panic!("no free node index between 10 and 250");
}

/// The static confine helper (Landlock AppArmor backend), built once per test binary with
/// `scripts/build-confine` into `target/confine-test`.
pub fn confine_helper() -> PathBuf {
    static HELPER: OnceLock<PathBuf> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let out_dir = repo().join("target/confine-test");
            let out = Command::new(repo().join("scripts/build-confine"))
                .arg(&out_dir)
                .output()
                .expect("run scripts/build-confine");
            assert!(
                out.status.success(),
                "scripts/build-confine: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out_dir.join("armorlet-confine-static")
        })
        .clone()
}

/// The real `apparmor_parser -QK` (parse and compile, no kernel) accepts the file.
pub fn assert_apparmor_parser_accepts(profile: &Path) {
    let parser = ["/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("apparmor_parser (apt-get install -y apparmor)");
    let out = Command::new(parser)
        .arg("-QK")
        .arg(profile)
        .output()
        .expect("running apparmor_parser");
    assert!(
        out.status.success(),
        "apparmor_parser -QK {}: {out:?}\n{}",
        profile.display(),
        std::fs::read_to_string(profile).unwrap_or_default()
    );
}

/// Resident and proportional memory of a process, from `/proc/<pid>/smaps_rollup` (KiB).
pub fn memory(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

/// A field of `/proc/<pid>/status` as a number (`VmRSS` in KiB, `Threads`); 0 when absent.
pub fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of a process from `/proc/<pid>/status` (`VmRSS`, KiB).
pub fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS")
}

/// User + system CPU time of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// One process of `/proc`: its parent, state letter and command line (arguments joined by
/// spaces).
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
    pub cmdline: String,
}

/// Every process on the machine (those that exit while being read are skipped).
pub fn processes() -> Vec<ProcInfo> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // stat(5): "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = cmd
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        out.push(ProcInfo {
            pid,
            ppid,
            state,
            cmdline,
        });
    }
    out
}

/// The per-container monitors of this cluster (`armorlet monitor <dir under the data dir>`).
pub fn monitors(c: &Cluster) -> Vec<u32> {
    let data = c.dir.path().to_string_lossy().into_owned();
    processes()
        .into_iter()
        .filter(|p| {
            let mut args = p.cmdline.split(' ');
            args.nth(1) == Some("monitor") && args.any(|a| a.starts_with(&data))
        })
        .map(|p| p.pid)
        .collect()
}

/// Stops `child` as a service manager would: SIGTERM, then SIGKILL if it has not exited
/// within 60 s.
pub fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
