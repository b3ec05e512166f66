//! `armorlet daemon`: the profile-distribution agent alone, against any
//! Kubernetes API server that serves the Security Profiles Operator's
//! `SeccompProfile` and `SecurityProfileNodeStatus` resources (SPO's CRDs on a
//! real cluster, or `armorlet up`). Every second it installs each profile
//! under `<kubelet-root>/seccomp/operator/<namespace>/<name>.json` on this
//! node and reports it (see `armorlet_node::operator`). Run on each node, e.g.
//! as a DaemonSet with the node name from the downward API (`NODE_NAME`) and
//! the kubelet's seccomp directory as a hostPath volume.
//!
//! Exit codes: 0 stopped by SIGINT/SIGTERM, 2 usage or connection errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use armorlet_node::operator::{self, AppArmorInstall, Operator, OperatorTarget};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of the API server (default: in-cluster configuration, or $KUBECONFIG).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// This node's name, as in the node statuses.
    #[arg(long = "node-name", env = "NODE_NAME")]
    node_name: Option<String>,
    /// The kubelet's root directory; profiles go to `<dir>/seccomp/operator`.
    #[arg(long, default_value = "/var/lib/kubelet")]
    kubelet_root_dir: PathBuf,
    /// Where AppArmorProfiles are written before `apparmor_parser` loads them (only on
    /// nodes whose kernel has the AppArmor LSM; elsewhere they are not installed).
    #[arg(long, default_value = "/var/lib/armorlet/operator/apparmor")]
    apparmor_dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::up::init_tracing();
    let node = match args.node_name {
        Some(n) => n,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("reading the hostname (or give --node-name)")?
            .trim()
            .to_lowercase(),
    };
    let rt = super::async_runtime()?;
    rt.block_on(async move {
        let client = match &args.kubeconfig {
            Some(path) => armorlet_node::client_from_kubeconfig(path).await?,
            None => armorlet_node::default_client().await?,
        };
        let target = OperatorTarget {
            node: node.clone(),
            dir: args.kubelet_root_dir.join("seccomp").join("operator"),
        };
        tracing::info!(node = %node, dir = %target.dir.display(), "installing seccomp profiles");
        let apparmor = kernel_apparmor(&args.apparmor_dir);
        operator::run(
            client,
            Operator {
                target,
                apparmor,
                recordings: None,
            },
            super::up::shutdown_signal(),
        )
        .await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The kernel's AppArmor, when it has the LSM: the daemon runs beside a kubelet whose
/// runtime applies kernel profiles (a Landlock registry here would confine nothing).
fn kernel_apparmor(dir: &std::path::Path) -> Option<AppArmorInstall> {
    let mut cfg = armorlet_landlock::AppArmorConfig::new(dir.join(".registry"), PathBuf::new());
    cfg.mode = armorlet_landlock::BackendChoice::Kernel;
    match armorlet_landlock::AppArmorNode::new(cfg).and_then(|n| n.start().map(|()| n)) {
        Ok(node) if node.backend() == armorlet_landlock::BackendKind::Kernel => {
            tracing::info!(dir = %dir.display(), "installing AppArmor profiles with apparmor_parser");
            Some(AppArmorInstall::new(
                std::sync::Arc::new(node),
                dir.to_path_buf(),
            ))
        }
        Ok(_) | Err(_) => {
            tracing::warn!(
                "the kernel has no AppArmor LSM: AppArmorProfiles are not installed on this node"
            );
            None
        }
    }
}
