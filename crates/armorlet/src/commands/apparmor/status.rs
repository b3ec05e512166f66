//! `armorlet apparmor status`: the loaded profiles, like `aa-status`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use armorlet_landlock::host;

use super::load::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Ask the API server instead of this machine: what each node (or `--node`) publishes
    /// about AppArmor (any node, also one on another machine).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
}

/// `--kubeconfig`: the nodes' published state.
fn from_api(kubeconfig: &std::path::Path, node: Option<&str>) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let nodes = rt
        .block_on(armorlet_node::apparmor_status(kubeconfig, node))
        .context("reading the nodes from the API server")?;
    for n in nodes {
        match n.backend.as_deref() {
            Some("kernel") => println!("node {}: apparmor module is loaded.", n.name),
            Some("landlock") => println!("node {}: AppArmor enforced by Landlock", n.name),
            Some(_) => println!("node {}: AppArmor is not enabled on the node", n.name),
            None => println!(
                "node {}: publishes no AppArmor state (not an armorlet node?)",
                n.name
            ),
        }
        print_modes(&n.profiles);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_modes(profiles: &BTreeMap<String, String>) {
    println!("{} profiles are loaded.", profiles.len());
    for mode in ["enforce", "complain", "kill", "unconfined"] {
        let names: Vec<&String> = profiles
            .iter()
            .filter(|(_, m)| *m == mode)
            .map(|(n, _)| n)
            .collect();
        println!("{} profiles are in {mode} mode.", names.len());
        for n in names {
            println!("   {n}");
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(kc) = &args.kubeconfig {
        return from_api(kc, args.target.node.as_deref());
    }
    if args.target.kernel()? {
        println!("apparmor module is loaded.");
        let profiles = host::read_profiles(&args.target.apparmor_fs.join("profiles"))?;
        print_modes(&profiles);
        return Ok(ExitCode::SUCCESS);
    }
    let abi = host::landlock_abi();
    for (node, r) in args.target.registries()? {
        println!(
            "node {node}: AppArmor enforced by Landlock (ABI {abi}), registry {}",
            r.dir().display()
        );
        print_modes(&r.profiles()?);
    }
    Ok(ExitCode::SUCCESS)
}
