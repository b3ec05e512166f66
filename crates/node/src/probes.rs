//! Container probes (pkg/kubelet/prober): exec, httpGet and tcpSocket, for
//! startup, liveness and readiness, with the kubelet's defaults (period 10 s,
//! timeout 1 s, success threshold 1, failure threshold 3).
//!
//! Pods have no IP yet, so httpGet/tcpSocket connect to `127.0.0.1:<port>`
//! (or `host`) from inside the pod's network namespace, on a short-lived
//! thread that joins the sandbox's `net` namespace.

use armorlet_runtime::{ExecSpec, Runtime};
use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The three probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// startupProbe.
    Startup,
    /// livenessProbe.
    Liveness,
    /// readinessProbe.
    Readiness,
}

impl Kind {
    /// `Startup` / `Liveness` / `Readiness` as in the kubelet's event messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// One probe's running state for one container instance.
#[derive(Debug, Clone, Default)]
pub struct ProbeState {
    last: Option<Instant>,
    successes: i32,
    failures: i32,
    /// The probe's current verdict (`None` until thresholds are reached).
    pub result: Option<bool>,
}

/// What one probe run changed.
pub struct Tick {
    /// The verdict changed to this.
    pub verdict: Option<bool>,
    /// The failure output of this run (for the `Unhealthy` event).
    pub failure: Option<String>,
}

impl ProbeState {
    /// Runs the probe if due; returns what happened.
    pub async fn tick(&mut self, p: &Probe, started: Instant, target: Target) -> Option<Tick> {
        let now = Instant::now();
        let delay = Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let period = Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
        if now < started + delay || self.last.is_some_and(|l| now < l + period) {
            return None;
        }
        self.last = Some(now);
        let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
        let p2 = p.clone();
        let outcome = tokio::task::spawn_blocking(move || run(&p2, &target, timeout))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let before = self.result;
        match &outcome {
            Ok(()) => {
                self.failures = 0;
                self.successes += 1;
                if self.successes >= p.success_threshold.unwrap_or(1).max(1) {
                    self.result = Some(true);
                }
            }
            Err(_) => {
                self.successes = 0;
                self.failures += 1;
                if self.failures >= p.failure_threshold.unwrap_or(3).max(1) {
                    self.result = Some(false);
                }
            }
        }
        Some(Tick {
            verdict: (self.result != before).then_some(self.result).flatten(),
            failure: outcome.err(),
        })
    }
}

/// Where a probe runs.
#[derive(Clone)]
pub struct Target {
    /// The runtime (for exec probes).
    pub runtime: Arc<Runtime>,
    /// The container ID.
    pub id: String,
    /// The sandbox's network namespace (for network probes).
    pub netns: PathBuf,
}

fn run(p: &Probe, t: &Target, timeout: Duration) -> Result<(), String> {
    if let Some(e) = &p.exec {
        return exec(t, e.command.clone().unwrap_or_default(), timeout);
    }
    if let Some(h) = &p.http_get {
        let port = port(&h.port)?;
        let host = h.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        return in_netns(&t.netns, move || http_get(&host, port, &path, timeout));
    }
    if let Some(s) = &p.tcp_socket {
        let port = port(&s.port)?;
        let host = s.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        return in_netns(&t.netns, move || connect(&host, port, timeout).map(|_| ()));
    }
    Err("probe has no handler".into())
}

fn port(p: &IntOrString) -> Result<u16, String> {
    match p {
        IntOrString::Int(i) => u16::try_from(*i).map_err(|_| format!("invalid port {i}")),
        IntOrString::String(s) => s
            .parse()
            .map_err(|_| format!("named port {s:?} is not supported")),
    }
}

/// pkg/kubelet/prober/prober.go: exit code 0 is success; the output is the failure message.
fn exec(t: &Target, args: Vec<String>, timeout: Duration) -> Result<(), String> {
    let spec = ExecSpec {
        args,
        ..Default::default()
    };
    let mut p = t.runtime.exec(&t.id, &spec).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = p.child.try_wait().map_err(|e| e.to_string())? {
            let mut out = String::new();
            for mut o in [p.stdout.take(), p.stderr.take()].into_iter().flatten() {
                let _ = o.read_to_string(&mut out);
            }
            return if status.success() { Ok(()) } else { Err(out) };
        }
        if Instant::now() > deadline {
            let _ = p.child.kill();
            let _ = p.child.wait();
            return Err(format!("command timed out after {}s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `f` on a new thread that joined the network namespace at `netns`.
fn in_netns<T: Send + 'static>(
    netns: &std::path::Path,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let ns = std::fs::File::open(netns).map_err(|e| format!("{}: {e}", netns.display()))?;
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| format!("setns: {e}"))?;
        f()
    })
    .join()
    .map_err(|_| "probe thread panicked".to_string())?
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("dial tcp {addr}: connect: {}", go_err(&e)))
}

fn go_err(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_lowercase()
}

/// pkg/probe/http/http.go: 200 ≤ status < 400 is success.
fn http_get(host: &str, port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let mut s = connect(host, port, timeout)?;
    let _ = s.set_read_timeout(Some(timeout));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = s
        .read(&mut buf)
        .map_err(|e| format!("Get \"http://{host}:{port}{path}\": {}", go_err(&e)))?;
    let line = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}
