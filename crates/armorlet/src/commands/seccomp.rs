//! `armorlet seccomp ...`: check, compile, explain and diff seccomp profiles.
//!
//! Exit codes: 0 ok (no differences), 1 invalid profile or differences found,
//! 2 usage or I/O error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use armorlet_seccomp::bpf;
use armorlet_seccomp::explain;
use armorlet_seccomp::model::KernelVersion;
use armorlet_seccomp::resolve::DEFAULT_CAPS;
use armorlet_seccomp::{check, Arch, Policy, ResolveContext};
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a seccomp profile (OCI `linux.seccomp` or Docker format).
    Check {
        /// Profile JSON file.
        file: PathBuf,
    },
    /// Compile a profile to a BPF program (raw `sock_filter` array or a listing).
    Compile {
        /// Profile JSON file.
        file: PathBuf,
        /// Output file (default: standard output).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// `raw`: the bytes `seccomp(2)` loads; `text`: a readable disassembly.
        #[arg(long, value_enum, default_value_t = Format::Raw)]
        format: Format,
        #[command(flatten)]
        ctx: ContextArgs,
    },
    /// Explain the decision for one syscall and the rule that made it.
    Explain {
        /// Profile JSON file.
        file: PathBuf,
        /// Syscall name or number.
        syscall: String,
        /// Syscall arguments (decimal or 0x-prefixed hex), up to six.
        #[arg(num_args = 0..=6, value_parser = parse_u64, allow_negative_numbers = true)]
        args: Vec<u64>,
        /// The architecture of the calling process (default: the node's).
        #[arg(long = "syscall-arch", value_parser = parse_arch)]
        syscall_arch: Option<Arch>,
        #[command(flatten)]
        ctx: ContextArgs,
    },
    /// List the syscalls whose decision differs between two profiles.
    Diff {
        /// First profile.
        a: PathBuf,
        /// Second profile.
        b: PathBuf,
        #[command(flatten)]
        ctx: ContextArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Raw,
    Text,
}

/// The container the profile is resolved for (`includes`/`excludes`, `archMap`).
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// The node's native architecture (SCMP_ARCH_X86_64, x86_64, amd64, ...).
    #[arg(long, value_parser = parse_arch)]
    arch: Option<Arch>,
    /// Capabilities of the container (repeatable; default: the runtime default set).
    #[arg(long = "cap")]
    caps: Vec<String>,
    /// Kernel version for `minKernel` (default: the running kernel).
    #[arg(long, value_parser = parse_kernel)]
    kernel: Option<KernelVersion>,
}

impl ContextArgs {
    fn context(&self) -> ResolveContext {
        let host = ResolveContext::host_default();
        let caps: Vec<String> = if self.caps.is_empty() {
            DEFAULT_CAPS.iter().map(|c| c.to_string()).collect()
        } else {
            self.caps.clone()
        };
        ResolveContext::new(
            self.arch.unwrap_or(host.arch),
            caps,
            self.kernel.unwrap_or(host.kernel_version),
        )
    }
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    s.parse::<Arch>().map_err(|e| e.to_string())
}

fn parse_kernel(s: &str) -> Result<KernelVersion, String> {
    s.parse::<KernelVersion>().map_err(|e| e.to_string())
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s
            .parse::<u64>()
            .or_else(|_| s.parse::<i64>().map(|v| v as u64)),
    };
    r.map_err(|_| format!("invalid argument value {s:?}"))
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing standard output")
        }
        _ => Ok(()),
    }
}

/// A profile that failed to load: already reported, exit 1.
struct Invalid;

/// Reads and validates; `check` prints every warning, the others a count.
fn load(
    file: &Path,
    all_warnings: bool,
) -> anyhow::Result<Result<armorlet_seccomp::Profile, Invalid>> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    match check(&bytes) {
        Ok((profile, warnings)) => {
            if all_warnings {
                for w in &warnings {
                    eprintln!("armorlet: {}: warning: {w}", file.display());
                }
            } else if !warnings.is_empty() {
                eprintln!(
                    "armorlet: {}: {} warnings (see `armorlet seccomp check`)",
                    file.display(),
                    warnings.len()
                );
            }
            Ok(Ok(profile))
        }
        Err(e) => {
            eprintln!("armorlet: {}: {e}", file.display());
            Ok(Err(Invalid))
        }
    }
}

fn policy(file: &Path, ctx: &ResolveContext) -> anyhow::Result<Result<Policy, Invalid>> {
    let profile = match load(file, false)? {
        Ok(p) => p,
        Err(i) => return Ok(Err(i)),
    };
    match profile.resolve(ctx).policy() {
        Ok(p) => Ok(Ok(p)),
        Err(e) => {
            eprintln!("armorlet: {}: {e}", file.display());
            Ok(Err(Invalid))
        }
    }
}

const INVALID: u8 = 1;

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Check { file } => {
                let Ok(profile) = load(&file, true)? else {
                    return Ok(ExitCode::from(INVALID));
                };
                out(&format!(
                    "{}: ok ({} rules, default {})\n",
                    file.display(),
                    profile.syscalls.len(),
                    profile.default_action
                ))?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Compile {
                file,
                output,
                format,
                ctx,
            } => {
                let Ok(policy) = policy(&file, &ctx.context())? else {
                    return Ok(ExitCode::from(INVALID));
                };
                let prog = match policy.compile() {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("armorlet: {}: {e}", file.display());
                        return Ok(ExitCode::from(INVALID));
                    }
                };
                let bytes = match format {
                    Format::Raw => bpf::to_bytes(&prog),
                    Format::Text => bpf::disassemble(&prog).into_bytes(),
                };
                match output {
                    Some(path) => std::fs::write(&path, &bytes)
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => {
                        let mut stdout = std::io::stdout().lock();
                        match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                                return Err(e).context("writing standard output")
                            }
                            _ => {}
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Explain {
                file,
                syscall,
                args,
                syscall_arch,
                ctx,
            } => {
                let ctx = ctx.context();
                let Ok(policy) = policy(&file, &ctx)? else {
                    return Ok(ExitCode::from(INVALID));
                };
                let prog = match policy.compile() {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("armorlet: {}: {e}", file.display());
                        return Ok(ExitCode::from(INVALID));
                    }
                };
                let arch = syscall_arch.unwrap_or(ctx.arch);
                let e = explain::explain(&policy, &prog, arch, &syscall, &args)
                    .map_err(|e| anyhow::anyhow!(e))?;
                out(&format!("{e}\n"))?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Diff { a, b, ctx } => {
                let ctx = ctx.context();
                let (Ok(pa), Ok(pb)) = (policy(&a, &ctx)?, policy(&b, &ctx)?) else {
                    return Ok(ExitCode::from(INVALID));
                };
                let diffs = explain::diff(&pa, &pb);
                let mut text = String::new();
                for d in &diffs {
                    text.push_str(&format!(
                        "{} {} ({}): {} | {}\n",
                        d.arch, d.name, d.nr, d.left, d.right
                    ));
                }
                out(&text)?;
                if diffs.is_empty() {
                    out("no differences\n")?;
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("{} syscalls differ", diffs.len());
                    Ok(ExitCode::from(INVALID))
                }
            }
        }
    }
}
