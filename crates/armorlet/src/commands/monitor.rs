//! `armorlet monitor <container-dir>` (hidden): the per-container monitor
//! process started by the node's runtime layer (`armorlet_runtime::monitor_main`).

use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `armorlet monitor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's directory (holds `spec.json` and `bundle/`).
    pub container_dir: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let code = armorlet_runtime::monitor_main(&args.container_dir);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
