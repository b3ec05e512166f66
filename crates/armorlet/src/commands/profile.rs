//! `armorlet profile`: the complain → enforce workflow, for seccomp and
//! AppArmor profiles.
//!
//! Seccomp:
//! 1. `armorlet profile complain P.json -o P-complain.json`: every denying
//!    action becomes `SCMP_ACT_LOG`; run the workload with it (a Localhost
//!    profile), it is not stopped and the node's audit log records each
//!    syscall the profile would have denied.
//! 2. `armorlet profile suggest P.json --pod NAME -o P-next.json`: the logged
//!    syscalls of that pod, listed, and P with them allowed.
//! 3. Enforce with `P-next.json`.
//!
//! AppArmor (a profile file, not a JSON object):
//! 1. `armorlet profile complain P -o P-complain`: `flags=(complain)`, as
//!    aa-complain; run the pod with it, recorded
//!    (`recording.armorlet.io/apparmor`).
//! 2. `armorlet profile suggest --apparmor P --pod NAME -o P-next`: the
//!    recorded accesses the profile's rules do not grant, listed, and P with
//!    rules for them before its closing `}`.
//! 3. `armorlet profile enforce P-next -o P-enforce`: `complain` removed, as
//!    aa-enforce.
//!
//! Exit codes: 0 ok (nothing to add for `suggest`), 1 `suggest` found
//! syscalls or accesses to add, 2 usage or I/O errors (and invalid profiles).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use armorlet_apparmor::suggest::{add_rules, check, describe, set_mode};
use armorlet_apparmor::{ParseOptions, Policy};
use armorlet_audit::PodFilter;
use armorlet_seccomp::record::{allow_more, complain};
use armorlet_seccomp::Profile;
use clap::Subcommand;

use super::apparmor::IncludeArgs;

/// The profile whose mode `complain` or `enforce` changes.
#[derive(Debug, clap::Args)]
pub struct ModeArgs {
    /// The profile: seccomp (a JSON object; `complain` only) or AppArmor.
    file: PathBuf,
    /// Write it here (default: standard output).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// AppArmor: only this profile (`outer//hat` for a hat; default: every
    /// top-level profile of the file).
    #[arg(long = "name")]
    name: Option<String>,
    #[command(flatten)]
    include: IncludeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Complain mode: what a seccomp profile denies is logged instead; an
    /// AppArmor profile gets `flags=(complain)` (as aa-complain).
    Complain(ModeArgs),
    /// Enforce mode of an AppArmor profile: `complain` (and the other mode
    /// flags but `enforce`) removed from its flags, as aa-enforce.
    Enforce(ModeArgs),
    /// What a pod did that a profile denies, and the profile allowing it: the
    /// syscalls its seccomp complain mode logged (FILE), or the file, network
    /// and capability accesses recorded for it that an AppArmor profile does
    /// not grant (--apparmor).
    #[command(group(
        clap::ArgGroup::new("profile")
            .required(true)
            .args(["file", "apparmor"])
    ))]
    Suggest {
        /// The seccomp profile the complain mode was made from.
        file: Option<PathBuf>,
        /// The AppArmor profile the pod ran with (complain mode or not); the
        /// pod's recording (`recording.armorlet.io/apparmor`) is checked against it.
        #[arg(long = "apparmor", value_name = "PROFILE_FILE")]
        apparmor: Option<PathBuf>,
        /// With --apparmor: the profile of the file to check and extend
        /// (default: its only profile).
        #[arg(long = "name", requires = "apparmor")]
        name: Option<String>,
        /// The pod that ran with the complain mode.
        #[arg(long = "pod")]
        pod: String,
        /// The pod's namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
        /// Only this container of the pod.
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        /// The data directory of `armorlet up` (its nodes' audit logs and recordings).
        #[arg(
            long = "data-dir",
            env = "ARMORLET_DATA_DIR",
            default_value = "/var/lib/armorlet"
        )]
        data_dir: PathBuf,
        /// Write the extended profile here (default: standard output).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        include: IncludeArgs,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Complain(args) => {
                if is_seccomp(&args.file)? {
                    write(&complain(&read(&args.file)?), args.output.as_deref())?;
                } else {
                    args.set_apparmor_mode(true)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Enforce(args) => {
                if is_seccomp(&args.file)? {
                    bail!(
                        "{} is a seccomp profile: its complain mode cannot be undone; apply the original profile (the one `armorlet profile complain` was made from, or the one `profile suggest` wrote) instead",
                        args.file.display()
                    );
                }
                args.set_apparmor_mode(false)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Suggest {
                file: None,
                apparmor: Some(file),
                name,
                pod,
                namespace,
                container,
                data_dir,
                output,
                include,
            } => {
                let opts = include.parse_options();
                let (text, policy) = read_apparmor(&file, &opts)?;
                let recording = super::record::pod_recording(
                    &data_dir,
                    &namespace,
                    &pod,
                    container.as_deref(),
                )?;
                suggest_apparmor(
                    &file,
                    (&text, &policy),
                    name.as_deref(),
                    &recording.apparmor,
                    &opts,
                    output.as_deref(),
                )
            }
            Command::Suggest {
                file: Some(file),
                apparmor: None,
                pod,
                namespace,
                container,
                data_dir,
                output,
                ..
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
            Command::Suggest { .. } => {
                bail!("give exactly one of the seccomp profile FILE or --apparmor PROFILE_FILE")
            }
        }
    }
}

/// A seccomp profile is a JSON object; anything else is AppArmor policy.
fn is_seccomp(file: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(text
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{'))
}

/// Reads an AppArmor policy file; its parse errors, named after the file,
/// are an error.
fn read_apparmor(file: &Path, opts: &ParseOptions) -> anyhow::Result<(String, Policy)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (policy, diagnostics) =
        armorlet_apparmor::parse_str(&text, &file.display().to_string(), opts);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity == armorlet_apparmor::Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if !errors.is_empty() {
        bail!(
            "{} is not a valid AppArmor profile:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
    Ok((text, policy))
}

/// `profile complain|enforce` of an AppArmor profile file.
impl ModeArgs {
    /// Writes the AppArmor profile with its complain flag set or cleared.
    fn set_apparmor_mode(&self, complain: bool) -> anyhow::Result<()> {
        let opts = self.include.parse_options();
        let (text, _) = read_apparmor(&self.file, &opts)?;
        let edited = set_mode(&text, self.name.as_deref(), complain, &opts)
            .map_err(|e| anyhow!("{}: {e}", self.file.display()))?;
        write_text(&edited, self.output.as_deref())
    }
}

/// `profile suggest --apparmor`: what `observed` needs that the profile does
/// not grant, listed on standard error, and the profile with rules for it.
fn suggest_apparmor(
    file: &Path,
    (text, policy): (&str, &Policy),
    name: Option<&str>,
    observed: &armorlet_apparmor::generate::Observed,
    opts: &ParseOptions,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let profile = armorlet_apparmor::eval::find_profile(policy, name)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    if observed.is_empty() {
        eprintln!("armorlet: warning: the recording holds no file, network or capability access");
    }
    let denials = check(observed, profile).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    for line in describe(&denials.explicit) {
        eprintln!("armorlet: a deny rule of the profile denies: {line} (not added)");
    }
    let missing = describe(&denials.missing);
    for line in &missing {
        eprintln!("armorlet: the profile would deny: {line}");
    }
    eprintln!(
        "armorlet: {} recorded accesses the profile would deny{}",
        missing.len(),
        output
            .map(|p| format!("; profile with rules for them written to {}", p.display()))
            .unwrap_or_default()
    );
    let extended = add_rules(text, name, &denials.missing, opts)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    write_text(&extended, output)?;
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_text(text: &str, output: Option<&Path>) -> anyhow::Result<()> {
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
    write_text(&text, output)
}
