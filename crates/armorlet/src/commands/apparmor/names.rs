//! `armorlet apparmor names FILE [-I DIR]...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use armorlet_apparmor::{load_file, profile_names, Severity};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Profile file (`-` reads standard input).
    pub file: PathBuf,
    #[command(flatten)]
    pub includes: super::IncludeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.includes.parse_options();
    let (policy, diags) =
        load_file(&args.file, &opts).with_context(|| format!("reading {}", args.file.display()))?;
    let mut failed = false;
    for d in &diags {
        eprintln!("{d}");
        failed |= d.severity == Severity::Error;
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    for n in profile_names(&policy) {
        println!("{n}");
    }
    Ok(ExitCode::SUCCESS)
}
