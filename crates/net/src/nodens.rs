//! A node's own network namespace, for several nodes on one machine
//! (`armorlet up --nodes N`): like the nodes of a kind cluster, each node gets
//! a namespace (`ip netns` name `armorlet-node-<index>`) with one interface,
//! `eth0`, on a host bridge (`armorletn`, `172.31.0.1/24`) and its own address
//! `172.31.0.<index + 2>`; the host routes each node's pod CIDR to the node.
//! The node's pod bridge, its CNI plugins, its Service rules and its node API
//! listener then all live in that namespace ([`NodeNetns::run`]).
//!
//! Wired with `ip` (iproute2), as the CNI plugins are external programs too.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The host bridge joining the node namespaces.
pub const HOST_BRIDGE: &str = "armorletn";
/// The host's address on [`HOST_BRIDGE`] (the nodes' default gateway).
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
/// Prefix length of the nodes' network.
const PREFIX: u8 = 24;

/// Failures wiring a node namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// An `ip` invocation failed.
    #[error("ip {args}: {message}")]
    Ip {
        /// The arguments.
        args: String,
        /// Its standard error (or the spawn error).
        message: String,
    },
    /// Entering the namespace failed.
    #[error("entering network namespace {path}: {source}")]
    Enter {
        /// The namespace file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The machine-wide wiring lock cannot be taken.
    #[error("locking {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No address is left for the node.
    #[error("node index {0} has no address in 172.31.0.0/24 (at most 252 nodes)")]
    Index(u8),
}

/// One node's network namespace.
#[derive(Debug, Clone)]
pub struct NodeNetns {
    name: String,
    index: u8,
    pod_cidr: String,
}

/// Serialises the wiring of namespaces made by this process (nodes start concurrently).
static WIRING: Mutex<()> = Mutex::new(());

/// The file whose `flock` serialises the wiring between processes: several `armorlet up`
/// share [`HOST_BRIDGE`], and one must not create it while another removes it.
const WIRING_LOCK: &str = "/run/armorlet/netns.lock";

/// Held while the host side is wired: this process's mutex, then the machine-wide lock
/// (released when the file closes).
struct Wiring {
    _guard: std::sync::MutexGuard<'static, ()>,
    _file: std::fs::File,
}

fn wiring() -> Result<Wiring, NetnsError> {
    let guard = WIRING.lock().unwrap_or_else(|e| e.into_inner());
    let err = |e: std::io::Error| NetnsError::Lock {
        path: WIRING_LOCK.into(),
        source: e,
    };
    let path = Path::new(WIRING_LOCK);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(err)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| err(e.into()))?;
    Ok(Wiring {
        _guard: guard,
        _file: file,
    })
}

impl NodeNetns {
    /// The namespace of node `index`, created and wired when missing (idempotent: a node
    /// restarted after a crash finds its namespace, pods and address as they were).
    pub fn ensure(index: u8, pod_cidr: &str) -> Result<NodeNetns, NetnsError> {
        let ns = NodeNetns {
            name: format!("armorlet-node-{index}"),
            index,
            pod_cidr: pod_cidr.to_owned(),
        };
        let ip = ns.ip()?;
        let _wiring = wiring()?;
        if !ns.path().exists() {
            ip_cmd(&["netns", "add", &ns.name])?;
        }
        if !link_exists(HOST_BRIDGE) {
            ip_cmd(&["link", "add", HOST_BRIDGE, "type", "bridge"])?;
            ip_cmd(&[
                "addr",
                "replace",
                &format!("{HOST_IP}/{PREFIX}"),
                "dev",
                HOST_BRIDGE,
            ])?;
        }
        ip_cmd(&["link", "set", HOST_BRIDGE, "up"])?;
        let host_if = ns.host_if();
        if !link_exists(&host_if) {
            ip_cmd(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
            ])?;
        }
        ip_cmd(&["link", "set", &host_if, "master", HOST_BRIDGE, "up"])?;
        let n = ["-n", ns.name.as_str()];
        let cidr = format!("{ip}/{PREFIX}");
        for args in [
            &["addr", "replace", &cidr, "dev", "eth0"][..],
            &["link", "set", "eth0", "up"],
            &["link", "set", "lo", "up"],
            &["route", "replace", "default", "via", &HOST_IP.to_string()],
        ] {
            ip_cmd(&[&n[..], args].concat())?;
        }
        ip_cmd(&[
            "route",
            "replace",
            &ns.pod_cidr,
            "via",
            &ip.to_string(),
            "dev",
            HOST_BRIDGE,
        ])?;
        crate::sysctl::enable("ip_forward").map_err(|e| NetnsError::Ip {
            args: "sysctl net.ipv4.ip_forward=1".into(),
            message: e.to_string(),
        })?;
        ns.run(|| crate::sysctl::enable("ip_forward"))?
            .map_err(|e| NetnsError::Ip {
                args: format!("sysctl net.ipv4.ip_forward=1 in {}", ns.name),
                message: e.to_string(),
            })?;
        Ok(ns)
    }

    /// The node's address.
    pub fn ip(&self) -> Result<Ipv4Addr, NetnsError> {
        match self.index.checked_add(2) {
            Some(last) if last < 255 => Ok(Ipv4Addr::new(172, 31, 0, last)),
            _ => Err(NetnsError::Index(self.index)),
        }
    }

    /// The `ip netns` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file (`/run/netns/<name>`).
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// The host end of the node's link.
    fn host_if(&self) -> String {
        format!("anode{}", self.index)
    }

    /// Runs `f` on a thread inside the namespace: sockets it opens, `/proc/sys/net` it
    /// writes and programs it starts belong to the node's network.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(|| {
                let enter = |source| NetnsError::Enter {
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::open(&path).map_err(enter)?;
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| enter(e.into()))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Removes the namespace (and with it the node's link), the host route, and the host
    /// bridge when no node is left on it.
    pub fn remove(&self) -> Result<(), NetnsError> {
        let _wiring = wiring()?;
        if route_exists(&self.pod_cidr) {
            ip_cmd(&["route", "del", &self.pod_cidr])?;
        }
        // Deleting the host end removes the pair now; the namespace's own teardown (and with
        // it that of its links) runs asynchronously in the kernel.
        if link_exists(&self.host_if()) {
            ip_cmd(&["link", "del", &self.host_if()])?;
        }
        if self.path().exists() {
            ip_cmd(&["netns", "del", &self.name])?;
        }
        let ports = std::fs::read_dir(format!("/sys/class/net/{HOST_BRIDGE}/brif"))
            .map(|d| d.count())
            .unwrap_or(0);
        if link_exists(HOST_BRIDGE) && ports == 0 {
            ip_cmd(&["link", "del", HOST_BRIDGE])?;
        }
        Ok(())
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn route_exists(cidr: &str) -> bool {
    Command::new("ip")
        .args(["route", "show", cidr])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}

fn ip_cmd(args: &[&str]) -> Result<(), NetnsError> {
    let err = |message: String| NetnsError::Ip {
        args: args.join(" "),
        message,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| err(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_index() {
        let ns = |index| NodeNetns {
            name: String::new(),
            index,
            pod_cidr: String::new(),
        };
        assert_eq!(ns(0).ip().unwrap(), Ipv4Addr::new(172, 31, 0, 2));
        assert_eq!(ns(252).ip().unwrap(), Ipv4Addr::new(172, 31, 0, 254));
        assert!(matches!(ns(253).ip(), Err(NetnsError::Index(253))));
    }
}
