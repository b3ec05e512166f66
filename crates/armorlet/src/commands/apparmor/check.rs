//! `armorlet apparmor check FILE... [-I DIR]...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use armorlet_apparmor::{load_file, Severity};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Profile files (`-` reads standard input).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub includes: super::IncludeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.includes.parse_options();
    let mut all_ok = true;
    for f in &args.files {
        let (_policy, diags) =
            load_file(f, &opts).with_context(|| format!("checking {}", f.display()))?;
        for d in &diags {
            eprintln!("{d}");
        }
        if diags.iter().any(|d| d.severity == Severity::Error) {
            all_ok = false;
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
