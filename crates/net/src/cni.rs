//! CNI: runs the standard plugins (Debian's `containernetworking-plugins`)
//! to attach a pod network namespace to the node bridge.
//!
//! Owns `D/nodes/<node>/cni/`: `net.d/10-armorlet.conflist` (the network
//! list, written on [`Cni::new`]), `cache/<pod-uid>.json` (the ADD result, so
//! DEL works after an agent restart) and `ipam/` (host-local reservations).
//! Plugins are executed as the CNI 1.0 specification says
//! (<https://github.com/containernetworking/cni/blob/main/SPEC.md>): the
//! `CNI_*` variables in the environment, the plugin's configuration (with
//! `name`, `cniVersion`, `runtimeConfig` for its capabilities and
//! `prevResult`) on stdin, the result or an error object on stdout; ADD runs
//! the list in order, DEL in reverse order.
//!
//! Outbound masquerading is not the bridge plugin's per-pod `ipMasq` (one
//! iptables chain per pod: eight `iptables` runs on every ADD, the largest
//! share of a pod's network set-up, and chains that outlive a killed agent)
//! but one nftables table per node, `ip armorlet-masq-<bridge>`, written once per
//! process on the first ADD and deleted by [`Cni::teardown_all`]. Its one
//! rule is the plugin's: traffic from the pod CIDR to anywhere but the pod
//! CIDR and multicast is masqueraded.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The CNI specification version armorlet speaks.
pub const CNI_VERSION: &str = "1.0.0";
/// Directory Debian installs the reference plugins into.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";
/// Interface name inside the pod.
pub const POD_IFNAME: &str = "eth0";
/// File name of the network list inside `net.d/`.
pub const CONFLIST_NAME: &str = "10-armorlet.conflist";

/// Errors of the CNI layer.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration is unusable (bad CIDR, bad name, missing plugin).
    #[error("invalid CNI configuration: {0}")]
    Config(String),
    /// A plugin could not be started.
    #[error("cannot run CNI plugin {plugin}: {source}")]
    Exec {
        /// Plugin path.
        plugin: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A plugin reported an error (CNI error object or exit status).
    #[error("CNI plugin {plugin} {command} failed: {message}")]
    Plugin {
        /// Plugin type, e.g. `bridge`.
        plugin: String,
        /// `ADD`, `DEL` or `CHECK`.
        command: &'static str,
        /// The plugin's `msg` (and `details`) or its stderr.
        message: String,
    },
    /// The node's masquerade table could not be written or deleted.
    #[error("cannot set up masquerading for the pod network: {0}")]
    Masquerade(String),
    /// A plugin's result could not be understood.
    #[error("CNI plugin {plugin} returned an unusable result: {message}")]
    Result {
        /// Plugin type.
        plugin: String,
        /// What is wrong.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CniError + '_ {
    move |source| CniError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How to build the node's pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniConfig {
    /// `D/nodes/<node>/cni`: holds `net.d/`, `cache/` and `ipam/`.
    pub dir: PathBuf,
    /// The node bridge, e.g. `armorlet0` (at most 15 bytes).
    pub bridge: String,
    /// The node's pod CIDR, e.g. `10.244.0.0/24`; the bridge gets its first address.
    pub pod_cidr: String,
    /// Directories searched for plugins (`CNI_PATH`).
    pub plugin_dirs: Vec<PathBuf>,
    /// Network name written into the conflist.
    pub network_name: String,
}

impl CniConfig {
    /// The defaults for node number `index` (0-based) with node dir `node_dir`
    /// (`D/nodes/<node>`): bridge `armorlet<index>`, pod CIDR `10.244.<index>.0/24`.
    pub fn for_node(node_dir: &Path, index: u8) -> CniConfig {
        CniConfig {
            dir: node_dir.join("cni"),
            bridge: format!("armorlet{index}"),
            pod_cidr: format!("10.244.{index}.0/24"),
            plugin_dirs: vec![PathBuf::from(DEFAULT_PLUGIN_DIR)],
            network_name: "armorlet".to_string(),
        }
    }
}

/// One hostPort mapping (the `portMappings` capability).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port on the node.
    pub host_port: u16,
    /// Port in the pod.
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp` (lower case, as the plugin wants).
    pub protocol: String,
    /// Host address to bind (empty: all).
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "hostIP")]
    pub host_ip: String,
}

/// The network a pod got from ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// The pod IP (`status.podIP`).
    pub ip: Ipv4Addr,
    /// Prefix length of the pod network.
    pub prefix_len: u8,
    /// The gateway (the bridge address).
    pub gateway: Option<Ipv4Addr>,
    /// MAC address of the pod's `eth0`, when the plugin reported it.
    pub mac: Option<String>,
    /// The full CNI result, as cached.
    pub result: Value,
}

/// What `cache/<pod-uid>.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    netns: String,
    port_mappings: Vec<PortMapping>,
    result: Value,
    /// The attachment has the bridge plugin's own per-pod masquerade chain, which
    /// its DEL must remove: attachments cached before the node's table replaced it
    /// (entries without this field).
    #[serde(default = "plugin_masquerades")]
    plugin_masq: bool,
}

fn plugin_masquerades() -> bool {
    true
}

/// The node's CNI runner. Cheap to clone (clones share whether the masquerade
/// table was written); holds no open resources.
#[derive(Debug, Clone)]
pub struct Cni {
    config: CniConfig,
    list: Value,
    /// Whether this process wrote the masquerade table (reset by teardown).
    masquerading: Arc<Mutex<bool>>,
}

impl Cni {
    /// Validates `config`, checks the plugins exist, creates the directories
    /// and writes `net.d/10-armorlet.conflist`.
    pub fn new(config: CniConfig) -> Result<Cni, CniError> {
        validate(&config)?;
        let list = conflist(&config);
        let cni = Cni {
            config,
            list,
            masquerading: Arc::default(),
        };
        for plugin in ["bridge", "host-local", "portmap"] {
            cni.find_plugin(plugin)?;
        }
        for dir in [cni.net_d(), cni.cache_dir(), cni.ipam_dir()] {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let path = cni.conflist_path();
        let text = serde_json::to_string_pretty(&cni.list).expect("JSON value serializes");
        std::fs::write(&path, text + "\n").map_err(io_err(&path))?;
        Ok(cni)
    }

    /// The configuration this runner was built from.
    pub fn config(&self) -> &CniConfig {
        &self.config
    }

    /// Path of the written network list.
    pub fn conflist_path(&self) -> PathBuf {
        self.net_d().join(CONFLIST_NAME)
    }

    /// Directory of the host-local IPAM reservations.
    pub fn ipam_dir(&self) -> PathBuf {
        self.config.dir.join("ipam")
    }

    /// Directory of the cached ADD results.
    pub fn cache_dir(&self) -> PathBuf {
        self.config.dir.join("cache")
    }

    fn net_d(&self) -> PathBuf {
        self.config.dir.join("net.d")
    }

    fn cache_path(&self, pod_uid: &str) -> PathBuf {
        self.cache_dir().join(format!("{pod_uid}.json"))
    }

    /// Attaches the pod network namespace at `netns` to the bridge (CNI ADD)
    /// with the given hostPort mappings and returns the pod's address.
    /// On failure the partial attachment is undone with DEL. A pod already attached is
    /// detached first, so a second ADD replaces the first.
    pub fn add(
        &self,
        pod_uid: &str,
        netns: &Path,
        port_mappings: &[PortMapping],
    ) -> Result<PodNetwork, CniError> {
        validate_container_id(pod_uid)?;
        self.ensure_masquerade()?;
        // The plugins refuse a second ADD of one pod (`eth0` exists in its namespace): an
        // attachment left from before (an agent stopped after the ADD, before the pod's
        // first container started) is deleted first.
        if self.read_cache(pod_uid)?.is_some() {
            self.del(pod_uid, netns)?;
        }
        let netns_s = netns.to_string_lossy().into_owned();
        let mut prev: Option<Value> = None;
        for plugin in self.plugins(Some(port_mappings)) {
            let step = self.exec(
                &plugin,
                "ADD",
                pod_uid,
                &netns_s,
                port_mappings,
                prev.as_ref(),
            );
            match step {
                Ok(result) => prev = Some(result),
                Err(e) => {
                    let _ =
                        self.run_del(pod_uid, &netns_s, Some(port_mappings), prev.as_ref(), false);
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        let network = parse_result(&result)?;
        let entry = CacheEntry {
            netns: netns_s,
            port_mappings: port_mappings.to_vec(),
            result,
            plugin_masq: false,
        };
        let path = self.cache_path(pod_uid);
        let text = serde_json::to_vec_pretty(&entry).expect("cache entry serializes");
        // Replaced whole through a temporary file and a rename: a torn entry (an agent killed
        // while writing it) would make every later DEL of the pod fail to parse it, and its
        // veth, address and hostPort rules would stay. Mode 0600, as libcni's cache.
        let dir = self.cache_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        tmp.write_all(&text).map_err(io_err(tmp.path()))?;
        tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        crate::sysctl::enable_pod_routing(&self.config.bridge)
            .map_err(io_err(Path::new("/proc/sys/net/ipv4")))?;
        Ok(network)
    }

    /// Detaches the pod (CNI DEL): removes its veth, hostPort rules and IP
    /// reservation. Idempotent; works from the cache after an agent restart
    /// and when the namespace is already gone.
    pub fn del(&self, pod_uid: &str, netns: &Path) -> Result<(), CniError> {
        validate_container_id(pod_uid)?;
        let cached = self.read_cache(pod_uid)?;
        let (netns_s, mappings, prev, plugin_masq) = match cached {
            Some(c) => (
                c.netns,
                Some(c.port_mappings),
                Some(c.result),
                c.plugin_masq,
            ),
            None => (netns.to_string_lossy().into_owned(), None, None, false),
        };
        let netns_s = if Path::new(&netns_s).exists() {
            netns_s
        } else {
            String::new()
        };
        self.run_del(
            pod_uid,
            &netns_s,
            mappings.as_deref(),
            prev.as_ref(),
            plugin_masq,
        )?;
        let path = self.cache_path(pod_uid);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Checks the pod's attachment (CNI CHECK) against the cached result.
    pub fn check(&self, pod_uid: &str) -> Result<(), CniError> {
        let entry = self
            .read_cache(pod_uid)?
            .ok_or_else(|| CniError::Config(format!("no cached CNI result for pod {pod_uid}")))?;
        for plugin in self.plugins(Some(&entry.port_mappings)) {
            self.exec(
                &plugin,
                "CHECK",
                pod_uid,
                &entry.netns,
                &entry.port_mappings,
                Some(&entry.result),
            )?;
        }
        Ok(())
    }

    /// The network a pod got from its cached ADD (after an agent restart).
    pub fn cached(&self, pod_uid: &str) -> Result<Option<PodNetwork>, CniError> {
        validate_container_id(pod_uid)?;
        self.read_cache(pod_uid)?
            .map(|entry| parse_result(&entry.result))
            .transpose()
    }

    /// The pod UIDs with a cached attachment.
    pub fn attached(&self) -> Result<Vec<String>, CniError> {
        let dir = self.cache_dir();
        let mut uids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let name = entry.map_err(io_err(&dir))?.file_name();
            if let Some(uid) = name.to_string_lossy().strip_suffix(".json") {
                uids.push(uid.to_string());
            }
        }
        uids.sort();
        Ok(uids)
    }

    /// Detaches every cached pod, deletes the bridge and the IPAM
    /// reservations: the node leaves no veths, bridge, rules or files.
    pub fn teardown_all(&self) -> Result<(), CniError> {
        for uid in self.attached()? {
            self.del(&uid, Path::new(""))?;
        }
        let ipam = self.ipam_dir().join(&self.config.network_name);
        match std::fs::remove_dir_all(&ipam) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&ipam)(e)),
            _ => {}
        }
        self.remove_masquerade()?;
        delete_link(&self.config.bridge)
    }

    /// The nftables table that masquerades the pod network (`ip armorlet-masq-<bridge>`).
    pub fn masquerade_table(&self) -> String {
        format!("armorlet-masq-{}", self.config.bridge)
    }

    /// Writes the masquerade table unless this process already did: one
    /// transaction that replaces any earlier copy (an agent restart keeps the
    /// connections it tracks).
    fn ensure_masquerade(&self) -> Result<(), CniError> {
        let mut done = self.masquerading.lock().unwrap_or_else(|e| e.into_inner());
        if !*done {
            crate::rules::nft(&masquerade_nft(
                &self.masquerade_table(),
                &self.config.pod_cidr,
            ))
            .map_err(|e| CniError::Masquerade(e.to_string()))?;
            *done = true;
        }
        Ok(())
    }

    fn remove_masquerade(&self) -> Result<(), CniError> {
        let mut done = self.masquerading.lock().unwrap_or_else(|e| e.into_inner());
        crate::rules::delete_table(&self.masquerade_table())
            .map_err(|e| CniError::Masquerade(e.to_string()))?;
        *done = false;
        Ok(())
    }

    fn read_cache(&self, pod_uid: &str) -> Result<Option<CacheEntry>, CniError> {
        let path = self.cache_path(pod_uid);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CniError::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The plugins to run for a pod with these hostPort mappings (`None`: not known, as for
    /// a DEL without a cached ADD): `portmap` only when there are mappings, since without
    /// any it neither adds nor removes anything and only costs a process.
    fn plugins(&self, mappings: Option<&[PortMapping]>) -> Vec<Value> {
        let all = self.list["plugins"].as_array().cloned().unwrap_or_default();
        match mappings {
            Some([]) => all
                .into_iter()
                .filter(|p| p["capabilities"]["portMappings"] != json!(true))
                .collect(),
            _ => all,
        }
    }

    /// The plugins DEL runs, in reverse order; for an attachment with the bridge
    /// plugin's own masquerade chain, the bridge plugin with `ipMasq` so it removes it.
    fn del_plugins(&self, mappings: Option<&[PortMapping]>, plugin_masq: bool) -> Vec<Value> {
        let mut plugins = self.plugins(mappings);
        plugins.reverse();
        for plugin in &mut plugins {
            if plugin_masq && plugin["type"] == "bridge" {
                plugin["ipMasq"] = Value::Bool(true);
            }
        }
        plugins
    }

    fn run_del(
        &self,
        pod_uid: &str,
        netns: &str,
        mappings: Option<&[PortMapping]>,
        prev: Option<&Value>,
        plugin_masq: bool,
    ) -> Result<(), CniError> {
        let mut first_error = None;
        for plugin in self.del_plugins(mappings, plugin_masq) {
            let m = mappings.unwrap_or_default();
            if let Err(e) = self.exec(&plugin, "DEL", pod_uid, netns, m, prev) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn find_plugin(&self, plugin_type: &str) -> Result<PathBuf, CniError> {
        self.config
            .plugin_dirs
            .iter()
            .map(|d| d.join(plugin_type))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                CniError::Config(format!(
                    "CNI plugin {plugin_type:?} not found in {:?} (install containernetworking-plugins)",
                    self.config.plugin_dirs
                ))
            })
    }

    /// Runs one plugin of the list for `command`.
    fn exec(
        &self,
        plugin: &Value,
        command: &'static str,
        pod_uid: &str,
        netns: &str,
        mappings: &[PortMapping],
        prev: Option<&Value>,
    ) -> Result<Value, CniError> {
        let plugin_type = plugin["type"].as_str().unwrap_or_default().to_string();
        let path = self.find_plugin(&plugin_type)?;
        let stdin = self.plugin_config(plugin, mappings, prev);
        let cni_path = std::env::join_paths(&self.config.plugin_dirs)
            .map_err(|e| CniError::Config(e.to_string()))?;
        let mut child = Command::new(&path)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", pod_uid)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", POD_IFNAME)
            .env("CNI_PATH", cni_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CniError::Exec {
                plugin: path.clone(),
                source,
            })?;
        let exec_err = |source| CniError::Exec {
            plugin: path.clone(),
            source,
        };
        let mut input = child.stdin.take().expect("stdin is piped");
        input
            .write_all(stdin.to_string().as_bytes())
            .map_err(exec_err)?;
        drop(input);
        let out = child.wait_with_output().map_err(exec_err)?;
        plugin_output(&plugin_type, command, &out)
    }

    /// The stdin configuration of one plugin: the list's `name` and
    /// `cniVersion`, the plugin's fields, `runtimeConfig` for the
    /// capabilities it declares, and `prevResult`.
    fn plugin_config(
        &self,
        plugin: &Value,
        mappings: &[PortMapping],
        prev: Option<&Value>,
    ) -> Value {
        let mut conf = plugin.clone();
        conf["name"] = json!(self.config.network_name);
        conf["cniVersion"] = json!(CNI_VERSION);
        if plugin["capabilities"]["portMappings"] == json!(true) {
            conf["runtimeConfig"] = json!({ "portMappings": mappings });
        }
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        conf
    }
}

/// Interprets a plugin's exit status and stdout.
fn plugin_output(
    plugin: &str,
    command: &'static str,
    out: &std::process::Output,
) -> Result<Value, CniError> {
    let parsed: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if out.status.success() {
        return Ok(parsed.unwrap_or(Value::Null));
    }
    let message = match parsed {
        Some(err) if err.get("msg").is_some() => {
            let msg = err["msg"].as_str().unwrap_or_default();
            match err["details"].as_str() {
                Some(d) if !d.is_empty() => format!("{msg}: {d}"),
                _ => msg.to_string(),
            }
        }
        _ => format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    };
    Err(CniError::Plugin {
        plugin: plugin.to_string(),
        command,
        message,
    })
}

/// Reads the pod address from a CNI 1.0 result: the first IPv4 `ips` entry
/// on the interface inside the sandbox.
fn parse_result(result: &Value) -> Result<PodNetwork, CniError> {
    let bad = |message: &str| CniError::Result {
        plugin: "bridge".to_string(),
        message: message.to_string(),
    };
    let ips = result["ips"].as_array().ok_or_else(|| bad("no ips"))?;
    let interfaces = result["interfaces"].as_array().cloned().unwrap_or_default();
    let entry = ips
        .iter()
        .find_map(|ip| {
            let net: Ipv4Net = ip["address"].as_str()?.parse().ok()?;
            Some((net, ip))
        })
        .ok_or_else(|| bad("no IPv4 address"))?;
    let (net, ip) = entry;
    let mac = ip["interface"]
        .as_u64()
        .and_then(|i| interfaces.get(i as usize))
        .and_then(|i| i["mac"].as_str())
        .map(str::to_string);
    Ok(PodNetwork {
        ip: net.addr(),
        prefix_len: net.prefix_len(),
        gateway: ip["gateway"].as_str().and_then(|g| g.parse().ok()),
        mac,
        result: result.clone(),
    })
}

/// The masquerade table for `pod_cidr` as an `nft -f` script: the rule of the
/// bridge plugin's `ipMasq` (plugins/pkg/ip/ipmasq_linux.go in
/// containernetworking/plugins), once for the node instead of once per pod.
fn masquerade_nft(table: &str, pod_cidr: &str) -> String {
    format!(
        "{}table ip {table} {{\n  \
         chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         ip saddr {pod_cidr} ip daddr != {pod_cidr} ip daddr != 224.0.0.0/4 masquerade\n  }}\n}}\n",
        crate::rules::emptied(table)
    )
}

/// The network list: bridge (with host-local IPAM; masquerading is the
/// node's table, see the module documentation) then portmap.
fn conflist(config: &CniConfig) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": config.network_name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": config.bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": config.pod_cidr }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": config.dir.join("ipam"),
                }
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
                "snat": true
            }
        ]
    })
}

fn validate(config: &CniConfig) -> Result<(), CniError> {
    let b = &config.bridge;
    if b.is_empty() || b.len() > 15 || !b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return Err(CniError::Config(format!(
            "bridge name {b:?} must be 1-15 letters, digits or '-'"
        )));
    }
    let net: Ipv4Net = config.pod_cidr.parse().map_err(|_| {
        CniError::Config(format!(
            "pod CIDR {:?} is not an IPv4 CIDR",
            config.pod_cidr
        ))
    })?;
    if net.prefix_len() > 30 || net.network() != net.addr() {
        return Err(CniError::Config(format!(
            "pod CIDR {:?} must be a network address with a prefix of at most /30",
            config.pod_cidr
        )));
    }
    if config.network_name.is_empty() {
        return Err(CniError::Config("network name is empty".to_string()));
    }
    Ok(())
}

/// CNI container IDs: alphanumerics first, then alphanumerics, `_`, `.`, `-`.
fn validate_container_id(id: &str) -> Result<(), CniError> {
    let ok = id.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(CniError::Config(format!(
            "invalid pod UID {id:?} for a CNI container ID"
        )))
    }
}

/// Deletes a network interface if it exists.
fn delete_link(name: &str) -> Result<(), CniError> {
    if !Path::new("/sys/class/net").join(name).exists() {
        return Ok(());
    }
    let out = Command::new("ip")
        .args(["link", "delete", name])
        .output()
        .map_err(|source| CniError::Exec {
            plugin: PathBuf::from("ip"),
            source,
        })?;
    if out.status.success() || !Path::new("/sys/class/net").join(name).exists() {
        return Ok(());
    }
    Err(CniError::Plugin {
        plugin: "ip".to_string(),
        command: "DEL",
        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CniConfig {
        CniConfig::for_node(Path::new("/d/nodes/n1"), 3)
    }

    #[test]
    fn conflist_has_bridge_ipam_and_portmap() {
        let list = conflist(&config());
        assert_eq!(list["plugins"][0]["bridge"], "armorlet3");
        assert_eq!(
            list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.244.3.0/24"
        );
        assert_eq!(
            list["plugins"][0]["ipam"]["dataDir"],
            "/d/nodes/n1/cni/ipam"
        );
        assert_eq!(list["plugins"][1]["capabilities"]["portMappings"], true);
        assert_eq!(
            list["plugins"][0]["ipMasq"], false,
            "the node's table masquerades, not one chain per pod"
        );
    }

    #[test]
    fn attachments_cached_before_the_node_table_delete_their_own_chain() {
        let cni = Cni {
            list: conflist(&config()),
            config: config(),
            masquerading: Arc::default(),
        };
        let old: CacheEntry = serde_json::from_value(
            json!({"netns": "/run/netns/x", "port_mappings": [], "result": {}}),
        )
        .unwrap();
        assert!(
            old.plugin_masq,
            "an entry without the field predates the node table"
        );
        let del = cni.del_plugins(Some(&[]), old.plugin_masq);
        assert_eq!(del.len(), 1);
        assert_eq!(del[0]["type"], "bridge");
        assert_eq!(del[0]["ipMasq"], true);
        let del = cni.del_plugins(None, false);
        assert_eq!(del[0]["type"], "portmap", "DEL runs the list in reverse");
        assert_eq!(del[1]["ipMasq"], false);
    }

    #[test]
    fn masquerade_table_replaces_itself_and_spares_the_pod_cidr() {
        let script = masquerade_nft("armorlet-masq-armorlet3", "10.244.3.0/24");
        let lines: Vec<&str> = script.lines().map(str::trim).collect();
        assert_eq!(lines[0], "table ip armorlet-masq-armorlet3");
        assert_eq!(lines[1], "delete table ip armorlet-masq-armorlet3");
        assert!(lines.contains(&"type nat hook postrouting priority srcnat; policy accept;"));
        assert!(lines.contains(
            &"ip saddr 10.244.3.0/24 ip daddr != 10.244.3.0/24 ip daddr != 224.0.0.0/4 masquerade"
        ));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = config();
        c.pod_cidr = "10.244.0.1/24".into();
        assert!(validate(&c)
            .unwrap_err()
            .to_string()
            .contains("network address"));
        c = config();
        c.bridge = "a-very-long-bridge-name".into();
        assert!(validate(&c)
            .unwrap_err()
            .to_string()
            .contains("bridge name"));
        assert!(validate_container_id("../x").is_err());
        assert!(validate_container_id("0b1c-22_x.y").is_ok());
    }

    #[test]
    fn result_parsing_reads_ip_gateway_mac() {
        let r = json!({"cniVersion":"1.0.0","interfaces":[{"name":"armorlet0"},{"name":"veth1"},
            {"name":"eth0","mac":"aa:bb","sandbox":"/x"}],
            "ips":[{"interface":2,"address":"10.244.0.5/24","gateway":"10.244.0.1"}]});
        let n = parse_result(&r).unwrap();
        assert_eq!(n.ip, Ipv4Addr::new(10, 244, 0, 5));
        assert_eq!(n.prefix_len, 24);
        assert_eq!(n.gateway, Some(Ipv4Addr::new(10, 244, 0, 1)));
        assert_eq!(n.mac.as_deref(), Some("aa:bb"));
        assert!(parse_result(&json!({})).is_err());
    }

    #[test]
    fn plugin_error_object_is_reported() {
        use std::os::unix::process::ExitStatusExt;
        let out = std::process::Output {
            status: std::process::ExitStatus::from_raw(1 << 8),
            stdout: br#"{"code":7,"msg":"failed to allocate","details":"range full"}"#.to_vec(),
            stderr: vec![],
        };
        let e = plugin_output("bridge", "ADD", &out)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "CNI plugin bridge ADD failed: failed to allocate: range full"
        );
    }
}
