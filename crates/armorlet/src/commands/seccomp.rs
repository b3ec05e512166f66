//! `armorlet seccomp ...`

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a seccomp profile.
    Check {
        /// Profile JSON file.
        file: std::path::PathBuf,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Check { .. } => anyhow::bail!("seccomp check: not implemented yet"),
        }
    }
}
