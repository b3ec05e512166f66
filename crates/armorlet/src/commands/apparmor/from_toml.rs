//! `armorlet apparmor from-toml FILE`: bane's simplified TOML language compiled
//! to an AppArmor profile (see `armorlet_apparmor::from_toml`), checked by
//! our parser (with the includes resolved) before it is written.
//!
//! Exit codes: 0 written, 1 invalid description (the message names the key),
//! 2 I/O errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use armorlet_apparmor::from_toml::SimpleProfile;

use super::IncludeArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML description.
    file: PathBuf,
    /// Write the profile here (default: standard output).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    #[command(flatten)]
    include: IncludeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let profile = match SimpleProfile::from_toml(&text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", args.file.display());
            return Ok(ExitCode::from(1));
        }
    };
    let out = profile.to_apparmor();
    let errors =
        super::generated_profile_errors(&out, &profile.name, &args.include.parse_options());
    if !errors.is_empty() {
        eprintln!(
            "{}: the generated profile is not valid:\n{}",
            args.file.display(),
            errors.join("\n")
        );
        return Ok(ExitCode::from(1));
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{out}"),
    }
    Ok(ExitCode::SUCCESS)
}
