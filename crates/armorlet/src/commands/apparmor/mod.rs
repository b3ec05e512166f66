//! `armorlet apparmor ...`

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check profiles; exit 0 when all are valid, 1 otherwise.
    Check {
        /// Profile files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Check { .. } => anyhow::bail!("apparmor check: not implemented yet"),
        }
    }
}
