//! `armorlet node`: runs the node agent against a Kubernetes API server, and the
//! agent flags shared with `armorlet up`.
//!
//! On SIGINT/SIGTERM the agent stops and leaves the containers running, like a
//! kubelet restart: the next start adopts them (same container IDs, restart
//! counts continue). Delete the pods (or the node) to stop the containers.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use armorlet_confinement::{EmulatedVersion, NodeSettings};
use armorlet_node::NodeConfig;
use armorlet_runtime::RuntimeKind;

/// Flags of the node agent, shared by `armorlet node` and `armorlet up`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentFlags {
    /// OCI runtime that runs the containers.
    #[arg(long, default_value = "crun", value_parser = parse_runtime)]
    pub runtime: RuntimeKind,
    /// Timeout of all runtime requests except long running request - exec (the kubelet's
    /// flag, a Go duration such as `2m0s` or `30s`). When timeout exceeded, the call is killed,
    /// the container gets the error `context deadline exceeded`, and the call is retried later
    /// with back-off.
    #[arg(long, default_value = "2m0s", value_name = "DURATION", value_parser = parse_request_timeout)]
    pub runtime_request_timeout: std::time::Duration,
    /// The kubelet's root directory; Localhost seccomp profiles are read from `<dir>/seccomp`.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub kubelet_root_dir: PathBuf,
    /// Use RuntimeDefault for containers without a seccomp profile (KubeletConfiguration seccompDefault).
    #[arg(long)]
    pub seccomp_default: bool,
    /// Feature gates, `Name=true|false,...` (known: SeccompDefault).
    #[arg(long, value_name = "K=V,...")]
    pub feature_gates: Option<String>,
    /// Directory of the CRI container logs.
    #[arg(long, default_value = "/var/log/pods")]
    pub pod_log_dir: PathBuf,
    /// The node's InternalIP (default: the source address of the default route).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// AppArmor backend: the kernel LSM, Landlock, `auto` (the LSM when enabled, else
    /// Landlock) or `off` (pods asking for a profile are refused as on a host without AppArmor).
    #[arg(long, default_value = "auto", value_name = "auto|kernel|landlock|off")]
    pub apparmor: armorlet_landlock::BackendChoice,
    /// The AppArmor securityfs directory (the kubelet's host check and loaded profiles).
    #[arg(long, default_value = armorlet_landlock::host::DEFAULT_APPARMOR_FS)]
    pub apparmor_fs: PathBuf,
    /// What the Landlock backend does with a profile it cannot enforce exactly: refuse it
    /// (`exact`) or tighten it and warn (`approximate`).
    #[arg(
        long,
        default_value = "exact",
        value_name = "exact|approximate",
        value_parser = parse_landlock_mode,
        action = clap::ArgAction::Set
    )]
    pub apparmor_landlock: bool,
    /// A directory of AppArmor profiles the node keeps loaded (like /etc/apparmor.d on a host
    /// with the LSM): files that appear or change are loaded, the profiles of removed files
    /// unloaded. Besides it, every node keeps its drop-in directory loaded, seen on the node
    /// as /etc/armorlet/apparmor.d (a DaemonSet loader's hostPath).
    #[arg(long)]
    pub apparmor_profiles_dir: Option<PathBuf>,
    /// The static confine helper (Landlock backend); default: `armorlet-confine-static` next
    /// to this executable.
    #[arg(long)]
    pub confine_helper: Option<PathBuf>,
    /// A registry (`HOST:PORT`, as image references name it) the node pulls from in plain
    /// HTTP instead of HTTPS, as containerd's and podman's insecure registries; repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// A PEM file of a CA the node trusts for registries, besides the system roots; repeatable.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// A registry (as normalized image references name it, `docker.io`) whose mirror is the
    /// node's image store: the kubelet's pulls of its images (`imagePullPolicy: Always`, the
    /// default for `busybox` or `:latest`) resolve against the images loaded with `armorlet
    /// image load` and fail as not found for others, like a containerd node whose
    /// `hosts.toml` mirrors the registry in an air-gapped cluster. Repeatable; default
    /// `docker.io`, so the tutorials' `image: busybox` runs offline; `none` turns it off.
    #[arg(long, value_name = "REGISTRY", default_value = "docker.io")]
    pub local_registry_mirror: Vec<String>,
}

/// Flags of `armorlet node`.
#[derive(Debug, clap::Args)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Instead of running an agent: commands about the nodes of this machine.
    #[command(subcommand)]
    pub action: Option<Action>,
    /// kubeconfig of the API server.
    #[arg(long, required = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The node's name.
    #[arg(long, required = true)]
    pub name: Option<String>,
    /// armorlet's data directory (images, runtime state).
    #[arg(long, env = "ARMORLET_DATA_DIR", default_value = "/var/lib/armorlet")]
    pub data_dir: PathBuf,
    /// Kubernetes release (1.X) whose kubelet semantics the agent emulates.
    #[arg(long, default_value = "1.32", value_name = "1.X")]
    pub emulated_version: EmulatedVersion,
    /// Address of the node API (the kubelet's port 10250).
    #[arg(long, default_value = "0.0.0.0:10250")]
    pub node_api_listen: SocketAddr,
    /// Index of this node among the nodes sharing this machine (its pod CIDR and bridge).
    #[arg(long, default_value_t = 0)]
    pub node_index: u8,
    /// Agent flags.
    #[command(flatten)]
    pub agent: AgentFlags,
}

/// `--apparmor-landlock`: `true` for `approximate`.
fn parse_landlock_mode(s: &str) -> Result<bool, String> {
    match s {
        "exact" => Ok(false),
        "approximate" => Ok(true),
        other => Err(format!(
            "invalid --apparmor-landlock value {other:?}: expected exact or approximate"
        )),
    }
}

/// `--runtime-request-timeout`: a positive Go duration.
fn parse_request_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_go_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: the timeout must be greater than 0"));
    }
    Ok(d)
}

/// A duration as Go's `time.ParseDuration` reads it (the kubelet's duration flags): decimal
/// numbers with units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, e.g. `2m0s`, `1.5h`, `300ms`;
/// `0` alone. Negative durations are refused.
pub(crate) fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected e.g. 2m0s, 30s or 500ms");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_nanos(total as u64))
}

fn parse_runtime(s: &str) -> Result<RuntimeKind, String> {
    match s {
        "crun" => Ok(RuntimeKind::Crun),
        "runc" => Ok(RuntimeKind::Runc),
        other => Err(format!("unknown runtime {other:?}: expected crun or runc")),
    }
}

/// The kubelet feature gates armorlet knows.
#[derive(Debug, Default, PartialEq, Eq)]
struct FeatureGates {
    seccomp_default: Option<bool>,
    apparmor: Option<bool>,
}

/// Parses `--feature-gates`; an unknown gate is an error, and so is turning off a gate the
/// emulated release locked on (component-base/featuregate/feature_gate.go: "cannot set
/// feature gate %v to %v, feature is locked to %v").
fn feature_gates(gates: Option<&str>, version: EmulatedVersion) -> anyhow::Result<FeatureGates> {
    let mut out = FeatureGates::default();
    for kv in gates
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--feature-gates: {kv:?} is not K=V"))?;
        let v: bool = v
            .parse()
            .with_context(|| format!("--feature-gates: {k}: {v:?} is not true/false"))?;
        match k {
            "SeccompDefault" => out.seccomp_default = Some(v),
            "AppArmor" => {
                if !v && !version.has(armorlet_confinement::Switch::AppArmorFeatureGateConfigurable)
                {
                    anyhow::bail!(
                        "--feature-gates: cannot set feature gate AppArmor to false, feature is locked to true"
                    );
                }
                out.apparmor = Some(v)
            }
            other => anyhow::bail!("--feature-gates: unknown feature gate {other:?}"),
        }
    }
    Ok(out)
}

impl AgentFlags {
    /// The `AppArmor` feature gate from `--feature-gates` (the API server's pod
    /// validation uses it too).
    pub fn apparmor_gate(&self, version: EmulatedVersion) -> anyhow::Result<bool> {
        Ok(feature_gates(self.feature_gates.as_deref(), version)?
            .apparmor
            .unwrap_or(true))
    }

    /// The node configuration for node `name`.
    pub fn config(
        &self,
        name: String,
        kubeconfig: PathBuf,
        data_dir: PathBuf,
        version: EmulatedVersion,
        api_listen: SocketAddr,
        node_index: u8,
    ) -> anyhow::Result<NodeConfig> {
        let gates = feature_gates(self.feature_gates.as_deref(), version)?;
        let node_dir = data_dir.join("nodes").join(&name);
        let helper = match &self.confine_helper {
            Some(h) => h.clone(),
            None => std::env::current_exe()
                .context("locating the armorlet executable")?
                .with_file_name("armorlet-confine-static"),
        };
        let mut apparmor =
            armorlet_landlock::AppArmorConfig::new(node_dir.join("apparmor"), helper);
        apparmor.mode = self.apparmor;
        apparmor.apparmor_fs = self.apparmor_fs.clone();
        apparmor.approximate = self.apparmor_landlock;
        apparmor.feature_gate = gates.apparmor.unwrap_or(true);
        apparmor.version = version;
        Ok(NodeConfig {
            name,
            kubeconfig,
            data_dir,
            runtime: self.runtime,
            runtime_request_timeout: self.runtime_request_timeout,
            kubelet_root_dir: self.kubelet_root_dir.clone(),
            pod_log_dir: self.pod_log_dir.clone(),
            settings: NodeSettings {
                version,
                kubelet_root_dir: self.kubelet_root_dir.clone(),
                seccomp_default: self.seccomp_default,
                seccomp_default_gate: gates.seccomp_default,
            },
            node_ip: self.node_ip,
            api_listen,
            node_index,
            own_netns: false,
            apparmor,
            apparmor_profiles_dir: self.apparmor_profiles_dir.clone(),
            view: armorlet_node::NodeView::default(),
            labels: Default::default(),
            register_with_taints: Vec::new(),
            registries: armorlet_images::RegistryOptions {
                insecure: self.insecure_registry.clone(),
                ca_files: self.registry_ca.clone(),
                local_mirrors: self
                    .local_registry_mirror
                    .iter()
                    .filter(|r| r.as_str() != "none")
                    .cloned()
                    .collect(),
            },
        })
    }
}

/// `armorlet node exec` and friends.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Run a command in a node's view of the machine (its network namespace), in place of
    /// the tutorials' `ssh NODE` / `docker exec NODE`: `armorlet node exec vm-2 -- curl
    /// localhost:30000`.
    Exec(ExecArgs),
    /// The AppArmor tutorial's prerequisites, per node, as a table: kubelet version, whether
    /// the AppArmor module is loaded, which backend enforces profiles, the runtime, and the
    /// loaded profiles (from what each node publishes to the API server).
    Check(CheckArgs),
    /// Issue a node's credential for `armorlet node --kubeconfig FILE --name NAME` against the
    /// API server of this data directory: a token for user `system:node:NAME` (group
    /// `system:nodes`, which may modify only its own Node, Lease and pods' status, and read
    /// only the secrets of its pods), accepted by the running server at once, and its
    /// kubeconfig, `D/nodes/NAME/kubeconfig`, whose path is printed. Issuing again keeps the
    /// token and rewrites the kubeconfig (after the server moved to another port).
    /// `armorlet up` issues one to each node it runs.
    Credential(CredentialArgs),
}

/// Flags of `armorlet node credential`.
#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// The node's name.
    pub name: String,
    /// The API server's data directory.
    #[arg(long, env = "ARMORLET_DATA_DIR", default_value = "/var/lib/armorlet")]
    pub data_dir: PathBuf,
}

/// `armorlet node credential`.
fn credential(args: CredentialArgs) -> anyhow::Result<ExitCode> {
    let path = armorlet_apiserver::credentials::issue_node_kubeconfig(&args.data_dir, &args.name)
        .with_context(|| format!("issuing node {}'s credential", args.name))?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Flags of `armorlet node check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// kubeconfig of the API server.
    #[arg(
        long,
        env = "KUBECONFIG",
        default_value = "/var/lib/armorlet/kubeconfig"
    )]
    pub kubeconfig: PathBuf,
    /// Only this node.
    pub node: Option<String>,
}

/// `armorlet node check`: one row per node; exit 1 when a node cannot enforce AppArmor
/// profiles (the tutorial's prerequisites are not met there).
fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let nodes = rt
        .block_on(armorlet_node::apparmor_status(
            &args.kubeconfig,
            args.node.as_deref(),
        ))
        .context("reading the nodes from the API server")?;
    let mut rows = vec![[
        "NODE".to_owned(),
        "READY".to_owned(),
        "KUBELET".to_owned(),
        "RUNTIME".to_owned(),
        "APPARMOR MODULE".to_owned(),
        "ENFORCED BY".to_owned(),
        "PROFILES".to_owned(),
    ]];
    let mut all_enforce = true;
    for n in &nodes {
        let (module, backend) = match n.backend.as_deref() {
            Some("kernel") => ("loaded", "AppArmor LSM"),
            Some("landlock") => ("not loaded", "Landlock"),
            Some(_) => ("not loaded", "nothing"),
            None => ("unknown", "unknown"),
        };
        all_enforce &= matches!(n.backend.as_deref(), Some("kernel" | "landlock"));
        let profiles = if n.profiles.is_empty() {
            "<none>".to_owned()
        } else {
            n.profiles
                .iter()
                .map(|(p, m)| format!("{p} ({m})"))
                .collect::<Vec<_>>()
                .join(",")
        };
        rows.push([
            n.name.clone(),
            if n.ready { "True" } else { "False" }.to_owned(),
            n.kubelet_version.clone(),
            n.container_runtime.clone(),
            module.to_owned(),
            backend.to_owned(),
            profiles,
        ]);
    }
    // kubectl's table layout: columns padded to the widest cell plus three spaces.
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(if all_enforce {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Flags of `armorlet node exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// armorlet's data directory.
    #[arg(long, env = "ARMORLET_DATA_DIR", default_value = "/var/lib/armorlet")]
    pub data_dir: PathBuf,
    /// The node (as `kubectl get nodes` names it).
    pub node: String,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

/// Enters the node's network namespace (when it has one) and its view of the filesystem,
/// then execs the command; its exit status becomes ours (127 when it cannot be started, as a
/// shell reports).
fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let node_dir = args.data_dir.join("nodes").join(&args.node);
    if !node_dir.is_dir() {
        anyhow::bail!(
            "node {:?} has never run on this machine (no {})",
            args.node,
            node_dir.display()
        );
    }
    if let Some(netns) = armorlet_node::node_netns(&node_dir) {
        let file = std::fs::File::open(&netns)
            .with_context(|| format!("node {:?}: opening {}", args.node, netns.display()))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .with_context(|| format!("node {:?}: entering {}", args.node, netns.display()))?;
    }
    enter_view(&node_dir).with_context(|| format!("node {:?}: entering its view", args.node))?;
    let err = std::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .exec();
    eprintln!(
        "armorlet: cannot run {}: {err}",
        args.command[0].to_string_lossy()
    );
    Ok(ExitCode::from(127))
}

/// Where the kernel's AppArmor interface lives; the Landlock backend's registry is shown
/// there inside `node exec` (see [`enter_view`]).
const SECURITYFS: &str = "/sys/kernel/security";

/// Gives this process the node's view in a private mount namespace: the view's bind mounts
/// (its kubelet root at /var/lib/kubelet, kind's extraMounts), and, when the node's profiles
/// are kept by the Landlock backend on a host without the AppArmor LSM, that registry at
/// `/sys/kernel/security/apparmor` (read-only, its `profiles` file in the kernel's format), so
/// the tutorial's `cat /sys/kernel/security/apparmor/profiles` shows what the node enforces.
/// The rest of securityfs stays visible; `/sys/module/apparmor` stays absent, so nothing
/// mistakes the node for one with the LSM. Nothing changes outside this process.
fn enter_view(node_dir: &std::path::Path) -> anyhow::Result<()> {
    use rustix::mount::{
        mount_bind, mount_change, mount_remount, MountFlags, MountPropagationFlags,
    };
    let view = armorlet_node::NodeView::load(node_dir)?;
    let registry = node_dir.join("apparmor");
    let sec = std::path::Path::new(SECURITYFS);
    let show_registry =
        registry.join("profiles").is_file() && sec.is_dir() && !sec.join("apparmor").exists();
    if view.mounts.is_empty() && !show_registry {
        return Ok(());
    }
    // SAFETY: `node exec` has started no thread; CLONE_NEWNS shares no file descriptors.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .context("unshare(CLONE_NEWNS)")?;
    mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::DOWNSTREAM,
    )
    .context("making / a slave mount")?;
    for m in &view.mounts {
        if m.host_path.is_dir() {
            std::fs::create_dir_all(&m.node_path)
        } else {
            if let Some(parent) = m.node_path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&m.node_path)
                .map(drop)
        }
        .with_context(|| format!("creating the mount point {}", m.node_path.display()))?;
        mount_bind(&m.host_path, &m.node_path).with_context(|| {
            format!(
                "bind-mounting {} at {}",
                m.host_path.display(),
                m.node_path.display()
            )
        })?;
        if m.read_only {
            mount_remount(&m.node_path, MountFlags::BIND | MountFlags::RDONLY, "")
                .with_context(|| format!("making {} read-only", m.node_path.display()))?;
        }
    }
    if show_registry {
        // A tmpfs over securityfs with every original entry bound back, plus `apparmor`.
        let original = std::fs::File::open(sec).with_context(|| format!("opening {SECURITYFS}"))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&original);
        let entries: Vec<(std::ffi::OsString, bool)> = std::fs::read_dir(sec)?
            .filter_map(Result::ok)
            .map(|e| (e.file_name(), e.path().is_dir()))
            .collect();
        rustix::mount::mount(
            "tmpfs",
            sec,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"mode=755",
        )
        .with_context(|| format!("mounting a tmpfs over {SECURITYFS}"))?;
        for (name, dir) in entries {
            let at = sec.join(&name);
            if dir {
                std::fs::create_dir(&at)?;
            } else {
                std::fs::write(&at, b"")?;
            }
            let from = std::path::Path::new(&format!("/proc/self/fd/{fd}")).join(&name);
            mount_bind(&from, &at).with_context(|| format!("restoring {}", at.display()))?;
        }
        let at = sec.join("apparmor");
        std::fs::create_dir(&at)?;
        mount_bind(&registry, &at)
            .with_context(|| format!("bind-mounting {}", registry.display()))?;
        mount_remount(&at, MountFlags::BIND | MountFlags::RDONLY, "")?;
        mount_remount(sec, MountFlags::RDONLY, "")?;
    }
    Ok(())
}

/// Runs the agent until SIGINT/SIGTERM (or the subcommand).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(Action::Exec(e)) => return exec(e),
        Some(Action::Check(c)) => return check(c),
        Some(Action::Credential(c)) => return credential(c),
        None => {}
    }
    let (Some(name), Some(kubeconfig)) = (args.name, args.kubeconfig) else {
        anyhow::bail!("--name and --kubeconfig are required to run a node agent");
    };
    super::up::init_tracing();
    super::memory::trim_when_quiet();
    let cfg = args.agent.config(
        name,
        kubeconfig,
        args.data_dir,
        args.emulated_version,
        args.node_api_listen,
        args.node_index,
    )?;
    let rt = super::async_runtime()?;
    rt.block_on(async move {
        armorlet_node::run(cfg, super::up::shutdown_signal())
            .await
            .context("running the node agent")
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_request_timeouts_are_go_durations() {
        use std::time::Duration;
        assert_eq!(parse_request_timeout("2m0s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_request_timeout("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_request_timeout("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_request_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_request_timeout("250ms"),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(parse_request_timeout("10us"), Ok(Duration::from_micros(10)));
        for bad in ["", "2", "2x", "-1s", "s", "1..2s", "0"] {
            let err = parse_request_timeout(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(parse_request_timeout("0s")
            .unwrap_err()
            .contains("must be greater than 0"));
    }

    #[test]
    fn parses_feature_gates() {
        let v132 = EmulatedVersion::DEFAULT;
        let v122: EmulatedVersion = "1.22".parse().unwrap();
        assert_eq!(feature_gates(None, v132).unwrap(), FeatureGates::default());
        let g = feature_gates(Some("SeccompDefault=false,AppArmor=true"), v132).unwrap();
        assert_eq!(g.seccomp_default, Some(false));
        assert_eq!(g.apparmor, Some(true));
        assert_eq!(
            feature_gates(Some("AppArmor=false"), v122)
                .unwrap()
                .apparmor,
            Some(false)
        );
        let locked = feature_gates(Some("AppArmor=false"), v132).unwrap_err();
        assert!(locked.to_string().contains("locked to true"), "{locked}");
        assert!(feature_gates(Some("Bogus=true"), v132).is_err());
        assert!(feature_gates(Some("SeccompDefault"), v132).is_err());
    }
}
