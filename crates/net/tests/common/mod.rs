//! Helpers of the real-network tests: network namespaces, a busybox httpd
//! inside a namespace, HTTP clients from the host and from a namespace.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// The tests change host networking (iptables, bridges): run them one at a
/// time, and fail loudly when the environment cannot run them.
pub fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        rustix_is_root(),
        "these tests need root (CAP_NET_ADMIN, netns)"
    );
    for bin in [
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/usr/lib/cni/portmap",
    ] {
        assert!(
            Path::new(bin).is_file(),
            "{bin} missing: apt-get install -y containernetworking-plugins"
        );
    }
    for tool in ["nft", "iptables", "ip", "busybox"] {
        assert!(
            run_ok(Command::new("sh").args(["-c", &format!("command -v {tool}")])),
            "{tool} is not installed"
        );
    }
    guard
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

pub fn run_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace (`ip netns add`), loopback up, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = run_ok(Command::new("ip").args(["netns", "del", name]));
        assert!(
            run_ok(Command::new("ip").args(["netns", "add", name])),
            "ip netns add {name}"
        );
        assert!(run_ok(
            Command::new("ip").args(["-n", name, "link", "set", "lo", "up"])
        ));
        Netns {
            name: name.to_string(),
        }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    pub fn exec(&self) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]);
        c
    }

    /// `ping -c 1` from this namespace.
    pub fn ping(&self, ip: Ipv4Addr) -> bool {
        run_ok(
            self.exec()
                .args(["busybox", "ping", "-c", "1", "-W", "3", &ip.to_string()]),
        )
    }

    /// HTTP GET of `/index.html` from this namespace (busybox nc: the static
    /// busybox wget crashes here); the body or None.
    pub fn wget(&self, ip: Ipv4Addr, port: u16) -> Option<String> {
        let mut child = self
            .exec()
            .args([
                "busybox",
                "nc",
                "-w",
                "3",
                &ip.to_string(),
                &port.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()?
            .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
            .ok()?;
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
    }

    /// Starts `busybox httpd` on `port` serving `body` as `/index.html`.
    pub fn serve(&self, port: u16, body: &str, dir: &Path) -> Server {
        let root = dir.join(format!("www-{}-{port}", self.name));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), body).unwrap();
        let child = self
            .exec()
            .args(["busybox", "httpd", "-f", "-p", &port.to_string(), "-h"])
            .arg(&root)
            .spawn()
            .expect("busybox httpd starts");
        Server { child }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run_ok(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// A server process, killed on drop.
pub struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP GET from the host; the body or None.
pub fn http_get(ip: Ipv4Addr, port: u16) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// Retries `f` until it returns Some (servers need a moment to start); the
/// deadline only bounds the wait, nothing asserts on time.
pub fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first global IPv4 address of the host (the node IP).
pub fn node_ip() -> Ipv4Addr {
    let text = output(Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]));
    text.lines()
        .filter(|l| !l.contains(" armorlet"))
        .find_map(|l| l.split_whitespace().nth(3)?.split('/').next()?.parse().ok())
        .expect("the host has a global IPv4 address")
}

/// Interfaces enslaved to `bridge`.
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let text = output(Command::new("ip").args(["-o", "link", "show", "master", bridge]));
    text.lines()
        .filter_map(|l| l.split(':').nth(1).map(|s| s.trim().to_string()))
        .collect()
}

/// Host interfaces whose name starts with `veth`.
pub fn host_veths() -> usize {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("veth")
        })
        .count()
}

/// The NAT rules of iptables, without counters.
pub fn iptables_nat() -> String {
    output(Command::new("iptables-save").args(["-t", "nat"]))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(':'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Files under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
