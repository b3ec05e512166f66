//! `armorlet audit`: the node audit logs (`D/nodes/*/audit.log`, written by the node agent
//! from kernel seccomp records) filtered by pod, optionally followed.
//!
//! Exit codes: 0 ok, 2 usage or I/O errors.

use std::path::PathBuf;
use std::process::ExitCode;

use armorlet_audit::{AuditLog, PodFilter};

/// Flags of `armorlet audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing new lines as they are written.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only records of this pod.
    #[arg(long)]
    pod: Option<String>,
    /// Only records of pods in this namespace.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// The data directory holding `nodes/<node>/audit.log`.
    #[arg(long, env = "ARMORLET_DATA_DIR", default_value = "/var/lib/armorlet")]
    data_dir: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let nodes = args.data_dir.join("nodes");
    let logs = node_logs(&args.data_dir)?;
    if logs.is_empty() {
        eprintln!("armorlet: no node audit logs under {}", nodes.display());
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let filter = PodFilter {
        namespace: args.namespace,
        pod: args.pod,
    };
    let mut stdout = std::io::stdout().lock();
    AuditLog::read_filtered(&logs, &filter, args.follow, &mut stdout)?;
    Ok(ExitCode::SUCCESS)
}

/// `D/nodes/*/audit.log`, sorted (a log may not exist yet).
pub(crate) fn node_logs(data_dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(super::node_dirs(data_dir)?
        .into_iter()
        .map(|d| d.join("audit.log"))
        .collect())
}
