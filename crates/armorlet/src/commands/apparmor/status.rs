//! `armorlet apparmor status`: the loaded profiles, like `aa-status`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use armorlet_landlock::host;

use super::load::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
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
