//! `armorlet-confine PLAN -- ARGS...`: reads the confine plan, applies it
//! (no_new_privs, Landlock, capabilities, socket filter, seccomp last) and
//! execs ARGS. Fail closed: any failing step prints a message naming the
//! step and exits 126; ARGS never run unconfined.
//!
//! Built static so it runs inside any image (busybox without libc):
//! `cargo rustc -p armorlet-confine --release -- -C target-feature=+crt-static`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use armorlet_landlock::plan::{apply, Plan};

/// Exit status when confinement cannot be applied (as a shell's "cannot execute").
const EXIT_CONFINE: i32 = 126;
/// Exit status when the command is not found.
const EXIT_NOT_FOUND: i32 = 127;

fn fail(step: &str, message: &str, code: i32) -> ! {
    eprintln!("armorlet-confine: {step}: {message}");
    std::process::exit(code);
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() < 4 || args[2] != "--" {
        fail("usage", "armorlet-confine PLAN -- COMMAND [ARGS...]", 2);
    }
    let plan = Plan::read(Path::new(&args[1]))
        .unwrap_or_else(|e| fail("plan", &e.to_string(), EXIT_CONFINE));
    let argv: Vec<CString> = args[3..]
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .unwrap_or_else(|_| fail("exec", "NUL byte in argument", EXIT_CONFINE))
        })
        .collect();
    if let Err(e) = apply(&plan) {
        fail("confine", &e.to_string(), EXIT_CONFINE);
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    exec(&argv[0], &ptrs);
}

/// `execvp` (PATH search as a shell would); returns only on failure.
fn exec(file: &CString, argv: &[*const libc::c_char]) -> ! {
    // SAFETY: NUL-terminated argv of valid C strings that outlive the call.
    unsafe { libc::execvp(file.as_ptr(), argv.as_ptr()) };
    let e = std::io::Error::last_os_error();
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CONFINE
    };
    fail("exec", &format!("{}: {e}", file.to_string_lossy()), code);
}
