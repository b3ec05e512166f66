//! The kernel backend: `apparmor_parser` and the generated runtime default
//! profile (the docker-default policy: everything allowed except the
//! dangerous `/proc` and `/sys` writes, `mount`, and `AF_ALG` sockets;
//! see `shared/oracles/apparmor/README.md`).

use std::path::Path;
use std::process::Command;

use crate::translate::{translate, Translation};
use crate::LandlockError;

/// Name of the generated runtime default profile.
pub const RUNTIME_DEFAULT_NAME: &str = "armorlet-default";

/// The runtime default profile text (written here from the policy, with
/// globs simplified to what the policy denies).
pub fn runtime_default_profile() -> String {
    format!(
        "abi <abi/3.0>,\n\
         @{{PROC}}=/proc/\n\
         profile {RUNTIME_DEFAULT_NAME} flags=(attach_disconnected,mediate_deleted) {{\n\
         \x20 network,\n\
         \x20 deny network alg,\n\
         \x20 capability,\n\
         \x20 file,\n\
         \x20 umount,\n\
         \x20 signal (receive) peer=unconfined,\n\
         \x20 signal (send,receive) peer={RUNTIME_DEFAULT_NAME},\n\
         \x20 deny @{{PROC}}/* w,\n\
         \x20 deny @{{PROC}}/sys/[^k]** w,\n\
         \x20 deny @{{PROC}}/sysrq-trigger rwklx,\n\
         \x20 deny @{{PROC}}/kcore rwklx,\n\
         \x20 deny mount,\n\
         \x20 deny /sys/firmware/** rwklx,\n\
         \x20 deny /sys/kernel/security/** rwklx,\n\
         \x20 ptrace (trace,tracedby,read,readby) peer={RUNTIME_DEFAULT_NAME},\n\
         }}\n"
    )
}

/// The runtime default profile for the Landlock backend. Capabilities,
/// sockets and scopes come from translating [`runtime_default_profile`]; the
/// file rules are written here, because its `/proc` and `/sys` denials are
/// globs that a generic translation can only honour by taking away the whole
/// filesystem. Always an approximation; the tightenings are listed.
pub fn runtime_default_translation() -> Result<Translation, LandlockError> {
    use crate::plan::{fs, FsRule};
    let text = runtime_default_profile();
    let policy =
        crate::registry::parse_policy(&text, Path::new(RUNTIME_DEFAULT_NAME), Path::new("/"))?;
    let profile = policy
        .profiles
        .first()
        .ok_or_else(|| LandlockError::NotLoaded(RUNTIME_DEFAULT_NAME.into()))?;
    let mut t = translate(profile, true)?;
    let read = fs::READ_FILE | fs::READ_DIR;
    let rule = |path: &str, access: u64, except: &[&str]| FsRule {
        path: path.into(),
        access,
        except: except.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(l) = t.plan.landlock.as_mut() {
        l.fs = vec![
            rule("/", fs::ALL, &["/proc", "/sys"]),
            rule("/proc", read, &[]),
            rule("/sys", read, &["/sys/firmware", "/sys/kernel/security"]),
        ];
    }
    t.approximations = RUNTIME_DEFAULT_TIGHTENINGS
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok(t)
}

/// What the Landlock runtime default takes away beyond docker-default, and
/// the one denial it leaves to the runtime.
pub const RUNTIME_DEFAULT_TIGHTENINGS: &[&str] = &[
    "writes beneath /proc are denied (docker-default denies only @{PROC}/* and @{PROC}/sys/[^k]**)",
    "writes beneath /sys are denied (sysfs is mounted read-only in containers anyway)",
    "the root directory itself cannot be listed or written (rules are granted per top-level entry)",
    "umount is denied (Landlock forbids changing the mount topology)",
    "signals, ptrace and abstract UNIX sockets are scoped to the container",
    "reads of /proc/kcore and /proc/sysrq-trigger are stopped by the runtime's masked and read-only paths, not by Landlock",
];

fn run_parser(args: &[&str], stdin: Option<&str>) -> Result<(), LandlockError> {
    use std::io::Write;
    let mut cmd = Command::new("apparmor_parser");
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| LandlockError::Parser {
        args: args.join(" "),
        message: e.to_string(),
    })?;
    if let (Some(text), Some(mut si)) = (stdin, child.stdin.take()) {
        si.write_all(text.as_bytes())
            .map_err(|e| LandlockError::io("apparmor_parser stdin", e))?;
    }
    drop(child.stdin.take());
    let out = child
        .wait_with_output()
        .map_err(|e| LandlockError::io("apparmor_parser", e))?;
    if !out.status.success() {
        return Err(LandlockError::Parser {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Loads (replaces) the profiles of `file` into the kernel, after checking
/// it with our parser.
pub fn load(file: &Path) -> Result<(), LandlockError> {
    let text = std::fs::read_to_string(file).map_err(|e| LandlockError::io(file, e))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    crate::registry::parse_policy(&text, file, dir)?;
    run_parser(&["-r", &file.display().to_string()], None)
}

/// [`load`] for policy text from standard input (`apparmor_parser -r` reading stdin).
pub fn load_text(text: &str, source_dir: &Path) -> Result<(), LandlockError> {
    crate::registry::parse_policy(text, Path::new("<stdin>"), source_dir)?;
    run_parser(&["-r"], Some(text))
}

/// Loads the generated runtime default profile.
pub fn load_runtime_default() -> Result<(), LandlockError> {
    run_parser(&["-r"], Some(&runtime_default_profile()))
}

/// Checks `text` with `apparmor_parser -QK` (parse and compile, no load).
pub fn parser_check(text: &str) -> Result<(), LandlockError> {
    run_parser(&["-QK"], Some(text))
}

/// Removes a profile by name through `<apparmor-fs>/.remove`.
pub fn unload(apparmor_fs: &Path, name: &str) -> Result<(), LandlockError> {
    let path = apparmor_fs.join(".remove");
    std::fs::write(&path, name).map_err(|e| LandlockError::io(&path, e))
}
