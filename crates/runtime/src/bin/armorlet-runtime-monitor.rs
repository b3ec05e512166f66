//! A standalone monitor executable: `armorlet-runtime-monitor monitor <dir>`,
//! the same entry point as the hidden `armorlet monitor` subcommand. It lets
//! this crate's integration tests (and embedders without the armorlet
//! binary) run real monitors.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() != 3 || args[1] != "monitor" {
        eprintln!("usage: armorlet-runtime-monitor monitor <container-dir>");
        std::process::exit(2);
    }
    std::process::exit(armorlet_runtime::monitor_main(std::path::Path::new(
        &args[2],
    )));
}
