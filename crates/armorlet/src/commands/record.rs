//! `armorlet record seccomp`: a least-privilege seccomp profile from what a
//! workload does.
//!
//! `-- CMD ARGS` runs the command under a filter that reports each syscall to
//! armorlet through seccomp user notification (no AppArmor, BPF or audit
//! needed) and lets it run; `--pod NAME` reads what the node recorded for a pod
//! annotated `recording.armorlet.io/seccomp` (while it runs or after).
//! Either way the profile allows exactly the syscalls seen (sorted, with their
//! architectures), merged with `--merge` profiles from earlier runs.
//!
//! `record apparmor --interactive` then reviews each rule like aa-logprof
//! (allow, deny, ignore, glob, new path; prompts on standard error, answers
//! from standard input once the command has exited) and writes the reviewed
//! profile.
//!
//! Exit status: with a command, the command's own (as `strace`), after the
//! profile is written; with `--pod`, 0. 2 for usage and I/O errors (and an
//! aborted review).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use std::sync::{Arc, Mutex};

use armorlet_apparmor::generate::Observed;
use armorlet_runtime::record::ContainerRecording;
use armorlet_seccomp::record::{notify_profile, GenerateOptions, NotifyRuntime, Recording};
use armorlet_seccomp::{Arch, ResolveContext};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record a command's or a pod's syscalls into a least-privilege seccomp profile.
    Seccomp(SeccompArgs),
    /// Record a command's or a pod's file, network and capability use into an AppArmor profile.
    Apparmor(AppArmorArgs),
}

#[derive(Debug, Args)]
pub struct SeccompArgs {
    /// Add the syscalls of a profile recorded before (repeatable; the output
    /// file itself may be one).
    #[arg(long = "merge")]
    merge: Vec<PathBuf>,
    /// Allow `socket` only for the address families used (one rule on argument 0 per family).
    #[arg(long = "socket-families")]
    socket_families: bool,
    /// Compare with another profile (e.g. a hand-written one) and list the
    /// differences on standard error.
    #[arg(long = "compare")]
    compare: Option<PathBuf>,
    #[command(flatten)]
    what: Workload,
}

#[derive(Debug, Args)]
pub struct AppArmorArgs {
    /// The profile's name (default: the pod's name, or the command's file name).
    #[arg(long = "name")]
    name: Option<String>,
    /// Review each rule before it is written, like aa-logprof: (A)llow, (D)eny,
    /// (I)gnore, (G)lob, Glob with (E)xtension, (N)ew path, Abo(r)t, (F)inish.
    /// Questions go to standard error; answers are read from standard input
    /// after the command has exited.
    #[arg(long = "interactive")]
    interactive: bool,
    #[command(flatten)]
    what: Workload,
}

/// What to record and where the profile goes.
#[derive(Debug, Args)]
pub struct Workload {
    /// Write the profile here (default: standard output).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// The pod whose recording to read (instead of running a command).
    #[arg(long = "pod", conflicts_with = "command")]
    pod: Option<String>,
    /// The pod's namespace.
    #[arg(
        short = 'n',
        long = "namespace",
        default_value = "default",
        requires = "pod"
    )]
    namespace: String,
    /// Only this container of the pod (default: all its containers, merged).
    #[arg(short = 'c', long = "container", requires = "pod")]
    container: Option<String>,
    /// The data directory of `armorlet up` (its nodes keep the recordings).
    #[arg(
        long = "data-dir",
        env = "ARMORLET_DATA_DIR",
        default_value = "/var/lib/armorlet"
    )]
    data_dir: PathBuf,
    /// The command to record and its arguments, after `--`.
    #[arg(last = true)]
    command: Vec<String>,
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Seccomp(args) => seccomp(args),
            Command::Apparmor(args) => apparmor(args),
        }
    }
}

impl Workload {
    /// Runs the command, or reads the pod's recording.
    fn record(&self) -> anyhow::Result<(ContainerRecording, ExitCode)> {
        match (&self.pod, self.command.is_empty()) {
            (Some(pod), _) => Ok((
                pod_recording(
                    &self.data_dir,
                    &self.namespace,
                    pod,
                    self.container.as_deref(),
                )?,
                ExitCode::SUCCESS,
            )),
            (None, false) => record_command(&self.command),
            (None, true) => bail!("nothing to record: give a command after `--`, or --pod NAME"),
        }
    }

    fn write(&self, text: &str) -> anyhow::Result<()> {
        match &self.output {
            Some(path) => {
                std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
            }
            None => {
                print!("{text}");
                Ok(())
            }
        }
    }

    fn written_to(&self) -> String {
        self.output
            .as_ref()
            .map(|p| format!("; profile written to {}", p.display()))
            .unwrap_or_default()
    }
}

fn apparmor(args: AppArmorArgs) -> anyhow::Result<ExitCode> {
    let (recording, code) = args.what.record()?;
    let name = match (&args.name, &args.what.pod) {
        (Some(n), _) => n.clone(),
        (None, Some(pod)) => pod.clone(),
        (None, None) => Path::new(&args.what.command[0])
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "recorded".into()),
    };
    let text = if args.interactive {
        // The review is armorlet's own: Ctrl-C ends it again.
        // SAFETY: setting a signal disposition; no handler runs.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
        let mut input = std::io::stdin().lock();
        let mut prompts = std::io::stderr();
        let reviewed =
            armorlet_apparmor::review::review(&recording.apparmor, &name, &mut input, &mut prompts)
                .context("reviewing the recorded rules")?;
        let Some(reviewed) = reviewed else {
            bail!("review aborted: no profile written");
        };
        let count = |r: &armorlet_apparmor::generate::Rules| {
            r.capabilities.len() + r.network.len() + r.files.len()
        };
        eprintln!(
            "armorlet: reviewed: {} rules allowed, {} denied",
            count(&reviewed.allow),
            count(&reviewed.deny)
        );
        reviewed.profile(&name)
    } else {
        recording.apparmor.profile(&name)
    };
    // Never write a profile our parser refuses (with the system's tunables, as
    // apparmor_parser would read it).
    let opts = armorlet_apparmor::ParseOptions {
        include_dirs: vec![PathBuf::from("/etc/apparmor.d")],
    };
    let errors = super::apparmor::generated_profile_errors(&text, &name, &opts);
    if !errors.is_empty() {
        bail!(
            "the generated profile is not valid:\n{}\n{text}",
            errors.join("\n")
        );
    }
    args.what.write(&text)?;
    let o = &recording.apparmor;
    eprintln!(
        "armorlet: recorded {} paths, {} network and {} capability rules{}",
        o.files.len(),
        o.network.len(),
        o.capabilities.len(),
        args.what.written_to()
    );
    Ok(code)
}

fn seccomp(args: SeccompArgs) -> anyhow::Result<ExitCode> {
    let (recording, code) = args.what.record()?;
    let mut recording = recording.seccomp;
    for file in &args.merge {
        // The output file does not exist before the first run.
        if args.what.output.as_ref() == Some(file) && !file.exists() {
            continue;
        }
        let p = read_profile(file)?;
        recording.merge(&Recording::from_profile(&p, &file.display().to_string())?);
    }
    let profile = recording.profile(GenerateOptions {
        socket_families: args.socket_families,
    });
    let mut text = serde_json::to_string_pretty(&profile)?;
    text.push('\n');
    args.what.write(&text)?;
    let arches: Vec<&str> = recording.syscalls.keys().map(|a| a.scmp_name()).collect();
    eprintln!(
        "armorlet: recorded {} syscalls ({}){}",
        recording.len(),
        arches.join(", "),
        args.what.written_to()
    );
    for (token, nr) in &recording.unnamed {
        eprintln!("armorlet: warning: syscall {nr} of audit architecture {token:#x} has no name in the syscall tables; the profile cannot allow it");
    }
    if let Some(reference) = &args.compare {
        let p = read_profile(reference)?;
        let (only_there, only_here) = recording.compare(&p);
        let name = reference.display();
        eprintln!(
            "only in {name} ({}): {}",
            only_there.len(),
            only_there.join(" ")
        );
        eprintln!(
            "only in the recording ({}): {}",
            only_here.len(),
            only_here.join(" ")
        );
    }
    Ok(code)
}

use super::profile::read as read_profile;

/// Runs the command under a filter that notifies every syscall of the native
/// architecture and its compat ones (x86 and x32 on x86_64), and records it.
fn record_command(command: &[String]) -> anyhow::Result<(ContainerRecording, ExitCode)> {
    let host = ResolveContext::host_default();
    let mut profile = notify_profile(None, NotifyRuntime::Crun, host.arch);
    profile.architectures = match host.arch {
        Arch::X86_64 => vec![Arch::X86_64, Arch::X86, Arch::X32],
        Arch::Aarch64 => vec![Arch::Aarch64, Arch::Arm],
        a => vec![a],
    };
    let compiled = profile
        .compile(&host)
        .context("compiling the recording filter")?;
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..]);
    // Ctrl-C is for the workload (it gets it as the terminal's foreground
    // group); armorlet waits for it to exit and writes the profile.
    // SAFETY: setting a signal disposition; no handler runs.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    // SAFETY: the closure only resets a signal disposition (async-signal-safe).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let observed = Arc::new(Mutex::new(Observed::default()));
    let (mut child, recorder) = armorlet_seccomp::notify::spawn_recorded(
        &mut cmd,
        compiled.program,
        compiled.flags,
        armorlet_runtime::record::apparmor_observer(observed.clone()),
    )
    .with_context(|| format!("starting {}", command[0]))?;
    let status = child.wait().context("waiting for the command")?;
    let recording = recorder
        .finish()
        .context("recording the command's syscalls")?;
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    let apparmor = observed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((
        ContainerRecording {
            seccomp: recording,
            apparmor,
        },
        ExitCode::from(code.clamp(0, 255) as u8),
    ))
}

/// What the nodes of `data_dir` recorded for the pod, over all its nodes and
/// runs (and only `container`, when given).
pub(crate) fn pod_recording(
    data_dir: &Path,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
) -> anyhow::Result<ContainerRecording> {
    let nodes = data_dir.join("nodes");
    let mut recording = ContainerRecording::default();
    let mut found = Vec::new();
    for node in super::node_dirs(data_dir)? {
        let name = node.file_name().unwrap_or_default().to_string_lossy();
        let dir = armorlet_node::recordings_dir(data_dir, &name)
            .join(namespace)
            .join(pod);
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path();
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            if path.extension().is_none_or(|e| e != "json")
                || container.is_some_and(|c| name.as_deref() != Some(c))
            {
                continue;
            }
            recording.merge(&armorlet_runtime::record::read_recording(&path)?);
            found.push(path);
        }
    }
    if found.is_empty() {
        bail!(
            "no recording of pod {namespace}/{pod}{} under {}: the pod needs the annotation {}: \"*\" (or its container names) and must have started on a node of this data directory",
            container.map(|c| format!(" container {c}")).unwrap_or_default(),
            nodes.display(),
            armorlet_node::RECORD_SECCOMP_ANNOTATION,
        );
    }
    Ok(recording)
}
