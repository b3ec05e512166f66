//! `armorlet profile`: the complain → enforce workflow for seccomp profiles.
//!
//! 1. `armorlet profile complain P.json -o P-complain.json`: every denying
//!    action becomes `SCMP_ACT_LOG`; run the workload with it (a Localhost
//!    profile), it is not stopped and the node's audit log records each
//!    syscall the profile would have denied.
//! 2. `armorlet profile suggest P.json --pod NAME -o P-next.json`: the logged
//!    syscalls of that pod, listed, and P with them allowed.
//! 3. Enforce with `P-next.json`.
//!
//! Exit codes: 0 ok (nothing to add for `suggest`), 1 `suggest` found
//! syscalls to add, 2 usage or I/O errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use armorlet_audit::PodFilter;
use armorlet_seccomp::record::{allow_more, complain};
use armorlet_seccomp::Profile;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Complain mode of a seccomp profile: what it denies is logged instead.
    Complain {
        /// The seccomp profile (JSON).
        file: PathBuf,
        /// Write it here (default: standard output).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// The syscalls a pod made that the profile denies (logged by its complain
    /// mode), and the profile with them allowed.
    Suggest {
        /// The seccomp profile the complain mode was made from.
        file: PathBuf,
        /// The pod that ran with the complain mode.
        #[arg(long = "pod")]
        pod: String,
        /// The pod's namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
        /// Only this container of the pod.
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        /// The data directory of `armorlet up` (its nodes' audit logs).
        #[arg(
            long = "data-dir",
            env = "ARMORLET_DATA_DIR",
            default_value = "/var/lib/armorlet"
        )]
        data_dir: PathBuf,
        /// Write the extended profile here (default: standard output).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Complain { file, output } => {
                write(&complain(&read(&file)?), output.as_deref())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Suggest {
                file,
                pod,
                namespace,
                container,
                data_dir,
                output,
            } => {
                let profile = read(&file)?;
                let filter = PodFilter {
                    namespace: Some(namespace),
                    pod: Some(pod),
                };
                let mut logged = BTreeSet::new();
                for log in super::audit::node_logs(&data_dir)? {
                    let text = match std::fs::read_to_string(&log) {
                        Ok(t) => t,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            return Err(e).with_context(|| format!("reading {}", log.display()))
                        }
                    };
                    logged.extend(armorlet_audit::logged_syscalls(
                        &text,
                        &filter,
                        container.as_deref(),
                    ));
                }
                let names: Vec<&str> = logged.iter().map(String::as_str).collect();
                eprintln!(
                    "armorlet: {} syscalls the profile would have denied: {}",
                    names.len(),
                    names.join(" ")
                );
                write(&allow_more(&profile, &logged), output.as_deref())?;
                Ok(if logged.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
        }
    }
}

/// Reads and validates a seccomp profile.
pub(crate) fn read(file: &Path) -> anyhow::Result<Profile> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (profile, _warnings) =
        armorlet_seccomp::check(&bytes).with_context(|| format!("{}", file.display()))?;
    Ok(profile)
}

fn write(p: &Profile, output: Option<&Path>) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(p)?;
    text.push('\n');
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
