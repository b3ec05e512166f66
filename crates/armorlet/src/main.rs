//! The `armorlet` binary: argument parsing and dispatch only.
//!
//! Each subcommand lives in `commands/`; the work itself is done by the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// Kubernetes AppArmor and seccomp confinement on one machine, and the tools to author profiles.
#[derive(Debug, Parser)]
#[command(name = "armorlet", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// AppArmor profile language: check, list profile names, explain decisions.
    #[command(subcommand)]
    Apparmor(commands::apparmor::Command),
    /// Seccomp profiles: check, compile to BPF, explain, diff.
    #[command(subcommand)]
    Seccomp(commands::seccomp::Command),
    /// Record what a workload does into a least-privilege profile.
    #[command(subcommand)]
    Record(commands::record::Command),
    /// Complain → enforce: a seccomp or AppArmor profile's complain mode, and what to add from what it let through.
    #[command(subcommand)]
    Profile(commands::profile::Command),
    /// Start the control plane: the Kubernetes API server and its store.
    Up(commands::up::Args),
    /// Run only the node agent against a Kubernetes API server.
    Node(commands::node::Args),
    /// Install the Security Profiles Operator's seccomp and AppArmor profiles on this node, against any API server.
    Daemon(commands::daemon::Args),
    /// Print the CRDs, RBAC and DaemonSet that run `armorlet daemon` on a cluster.
    Manifests(commands::manifests::Args),
    /// Local container images: load, list, remove.
    Image(commands::image::Args),
    /// Seccomp audit records of the node's containers.
    Audit(commands::audit::Args),
    /// Internal: the per-container monitor started by the node agent.
    #[command(hide = true)]
    Monitor(commands::monitor::Args),
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Apparmor(cmd) => cmd.run(),
        Command::Seccomp(cmd) => cmd.run(),
        Command::Record(cmd) => cmd.run(),
        Command::Profile(cmd) => cmd.run(),
        Command::Up(args) => commands::up::run(args),
        Command::Node(args) => commands::node::run(args),
        Command::Daemon(args) => commands::daemon::run(args),
        Command::Manifests(args) => commands::manifests::run(args),
        Command::Image(args) => commands::image::run(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::Monitor(args) => commands::monitor::run(args),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("armorlet: {err:#}");
            ExitCode::from(2)
        }
    }
}
