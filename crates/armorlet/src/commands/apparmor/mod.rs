//! `armorlet apparmor ...`

use std::process::ExitCode;

use std::path::PathBuf;

use armorlet_apparmor::ParseOptions;
use clap::Subcommand;

mod check;
mod explain;
mod from_toml;
mod load;
mod names;
mod status;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check profiles; exit 0 when all are valid, 1 otherwise.
    Check(check::Args),
    /// Print the profile names a file defines, as `apparmor_parser -N` does.
    Names(names::Args),
    /// Explain how a profile decides one request (exit 0 allow, 1 deny, 2 error).
    Explain(Box<explain::Args>),
    /// Load profiles onto the node(s): Landlock registry or kernel (`apparmor_parser -r`).
    Load(load::LoadArgs),
    /// Remove loaded profiles by name.
    Unload(load::UnloadArgs),
    /// Show the loaded profiles, like `aa-status`.
    Status(status::Args),
    /// Compile a bane-style TOML description to an AppArmor profile.
    FromToml(from_toml::Args),
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Check(a) => check::run(a),
            Command::Names(a) => names::run(a),
            Command::Explain(a) => explain::run(*a),
            Command::Load(a) => load::run_load(a),
            Command::Unload(a) => load::run_unload(a),
            Command::Status(a) => status::run(a),
            Command::FromToml(a) => from_toml::run(a),
        }
    }
}

/// Where `include <...>` is searched, shared by every subcommand that reads policy.
#[derive(Debug, clap::Args)]
pub struct IncludeArgs {
    /// Search directory for `include <...>` (repeatable), like apparmor_parser's `-I`.
    #[arg(
        short = 'I',
        long = "include-dir",
        visible_alias = "include",
        value_name = "DIR"
    )]
    pub include_dirs: Vec<PathBuf>,
    /// Base directory searched after the `-I` directories, as apparmor_parser's `-b`.
    #[arg(
        short = 'b',
        long = "base",
        value_name = "DIR",
        default_value = "/etc/apparmor.d"
    )]
    pub base: PathBuf,
}

impl IncludeArgs {
    /// The parse options: `-I` directories in order, then the base directory.
    pub fn parse_options(&self) -> ParseOptions {
        let mut include_dirs = self.include_dirs.clone();
        include_dirs.push(self.base.clone());
        ParseOptions { include_dirs }
    }
}

/// The parser's errors on a profile armorlet generated (`from-toml`, `record apparmor`), one
/// per line; empty when it is valid. Such a profile is never written when this is not empty.
pub fn generated_profile_errors(text: &str, name: &str, opts: &ParseOptions) -> Vec<String> {
    let (_, diagnostics) = armorlet_apparmor::parse_str(text, name, opts);
    diagnostics
        .iter()
        .filter(|d| d.severity == armorlet_apparmor::Severity::Error)
        .map(|d| d.to_string())
        .collect()
}
