//! Regenerates `src/syscalls/generated.rs` from the installed kernel UAPI headers.
//!
//! `cargo run -p armorlet-seccomp --example gen-syscalls [-- OUT]`

use std::path::PathBuf;
use std::process::ExitCode;

use armorlet_seccomp::syscalls::gen::{generate, HeaderPaths};

fn main() -> ExitCode {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/syscalls/generated.rs")
        });
    match generate(&HeaderPaths::system()) {
        Ok(text) => match std::fs::write(&out, text) {
            Ok(()) => {
                println!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen-syscalls: writing {}: {e}", out.display());
                ExitCode::from(2)
            }
        },
        Err(e) => {
            eprintln!("gen-syscalls: {e}");
            ExitCode::from(2)
        }
    }
}
