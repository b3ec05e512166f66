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
}

/// Flags of `armorlet node`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// kubeconfig of the API server.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The node's name.
    #[arg(long)]
    pub name: String,
    /// armorlet's data directory (images, runtime state).
    #[arg(long, default_value = "/var/lib/armorlet")]
    pub data_dir: PathBuf,
    /// Kubernetes release (1.X) whose kubelet semantics the agent emulates.
    #[arg(long, default_value = "1.32", value_name = "1.X")]
    pub emulated_version: EmulatedVersion,
    /// Address of the node API (the kubelet's port 10250).
    #[arg(long, default_value = "0.0.0.0:10250")]
    pub node_api_listen: SocketAddr,
    /// Agent flags.
    #[command(flatten)]
    pub agent: AgentFlags,
}

fn parse_runtime(s: &str) -> Result<RuntimeKind, String> {
    match s {
        "crun" => Ok(RuntimeKind::Crun),
        "runc" => Ok(RuntimeKind::Runc),
        other => Err(format!("unknown runtime {other:?}: expected crun or runc")),
    }
}

/// `SeccompDefault` from `--feature-gates`; any other gate is an error.
fn seccomp_gate(gates: Option<&str>) -> anyhow::Result<Option<bool>> {
    let mut out = None;
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
            "SeccompDefault" => out = Some(v),
            other => anyhow::bail!("--feature-gates: unknown feature gate {other:?}"),
        }
    }
    Ok(out)
}

impl AgentFlags {
    /// The node configuration for node `name`.
    pub fn config(
        &self,
        name: String,
        kubeconfig: PathBuf,
        data_dir: PathBuf,
        version: EmulatedVersion,
        api_listen: SocketAddr,
    ) -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig {
            name,
            kubeconfig,
            data_dir,
            runtime: self.runtime,
            kubelet_root_dir: self.kubelet_root_dir.clone(),
            pod_log_dir: self.pod_log_dir.clone(),
            settings: NodeSettings {
                version,
                kubelet_root_dir: self.kubelet_root_dir.clone(),
                seccomp_default: self.seccomp_default,
                seccomp_default_gate: seccomp_gate(self.feature_gates.as_deref())?,
            },
            node_ip: self.node_ip,
            api_listen,
        })
    }
}

/// Runs the agent until SIGINT/SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::up::init_tracing();
    let cfg = args.agent.config(
        args.name,
        args.kubeconfig,
        args.data_dir,
        args.emulated_version,
        args.node_api_listen,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
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
    fn feature_gates() {
        assert_eq!(seccomp_gate(None).unwrap(), None);
        assert_eq!(
            seccomp_gate(Some("SeccompDefault=false")).unwrap(),
            Some(false)
        );
        assert!(seccomp_gate(Some("Bogus=true")).is_err());
        assert!(seccomp_gate(Some("SeccompDefault")).is_err());
    }
}
