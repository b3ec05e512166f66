//! `armorlet image` (placeholder until its issue lands; owned by the helper that implements it).

use std::process::ExitCode;

/// Flags of `armorlet image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments (placeholder).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("armorlet image is not implemented yet")
}
