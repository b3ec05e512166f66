//! The tutorial profiles loaded for real with seccomp(2) in forked children
//! (never in the test process): they must behave as the tutorial says.

mod common;

use armorlet_seccomp::bpf::SockFilter;
use armorlet_seccomp::resolve::{ResolveContext, DEFAULT_CAPS};
use armorlet_seccomp::{load, Arch, Policy};
use common::child::{raw, run_filtered, End, Shared, LOADED};

const BUSYBOX: &str = "/bin/busybox";

fn compiled(name: &str) -> (Policy, Vec<SockFilter>) {
    let p = common::tutorial_profile(name);
    let ctx = ResolveContext::new(
        Arch::X86_64,
        DEFAULT_CAPS.iter().copied(),
        "6.1".parse().unwrap(),
    );
    let policy = p.resolve(&ctx).policy().unwrap();
    let prog = policy.compile().unwrap();
    (policy, prog)
}

/// Runs busybox with `args` under `prog`, returning (status, stdout).
fn busybox_under(
    prog: Vec<SockFilter>,
    flags: u32,
    args: &[&str],
) -> std::io::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    assert!(
        std::path::Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing (apt-get install busybox-static)"
    );
    let mut cmd = std::process::Command::new(BUSYBOX);
    cmd.args(args);
    // SAFETY: `install` only makes raw syscalls and does not allocate.
    unsafe {
        cmd.pre_exec(move || load::install(&prog, flags, true).map(|_| ()));
    }
    cmd.output()
}

#[test]
fn audit_profile_allows_everything() {
    let (policy, prog) = compiled("audit");
    let shared = Shared::new();
    let end = run_filtered(Some(&prog), policy.load_flags(), &shared, |s| {
        s.set(1, raw(libc::SYS_getppid, [0; 3]));
        s.set(2, raw(libc::SYS_getpid, [0; 3]));
        s.set(
            3,
            raw(
                libc::SYS_mkdirat,
                [
                    libc::AT_FDCWD as libc::c_long,
                    c"/proc/no/such".as_ptr() as libc::c_long,
                    0o700,
                ],
            ),
        );
    });
    assert_eq!(shared.get(LOADED), 0, "filter failed to load");
    assert_eq!(end, End::Exited(0));
    assert_eq!(
        shared.get(1),
        i64::from(std::process::id()),
        "getppid under audit"
    );
    assert!(shared.get(2) > 0);
    // mkdirat is allowed by the filter; the kernel then answers ENOENT, not EPERM.
    assert_eq!(shared.get(3), -i64::from(libc::ENOENT));

    // The kernel logs SCMP_ACT_LOG decisions when "log" is among the logged actions.
    let logged = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged").unwrap();
    assert!(
        logged.split_whitespace().any(|a| a == "log"),
        "actions_logged: {logged}"
    );

    let out = busybox_under(
        prog,
        policy.load_flags(),
        &["sh", "-c", "echo audited; ls / >/dev/null"],
    )
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "audited\n");
}

#[test]
fn violation_profile_cannot_even_exec() {
    let (policy, prog) = compiled("violation");
    let shared = Shared::new();
    let end = run_filtered(Some(&prog), policy.load_flags(), &shared, |s| {
        let path = c"/bin/busybox";
        let argv = [c"busybox".as_ptr(), c"true".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        s.set(
            1,
            raw(
                libc::SYS_execve,
                [
                    path.as_ptr() as libc::c_long,
                    argv.as_ptr() as libc::c_long,
                    envp.as_ptr() as libc::c_long,
                ],
            ),
        );
        s.set(2, raw(libc::SYS_getpid, [0; 3]));
    });
    assert_eq!(shared.get(LOADED), 0, "filter failed to load");
    assert_eq!(
        shared.get(1),
        -i64::from(libc::EPERM),
        "execve must fail with EPERM"
    );
    assert_eq!(
        shared.get(2),
        -i64::from(libc::EPERM),
        "getpid must fail with EPERM"
    );
    // Even exit_group fails, so glibc's _exit ends in a fault instead of an exit.
    assert!(matches!(end, End::Signaled(_)), "{end:?}");

    let err = busybox_under(prog, policy.load_flags(), &["true"]);
    assert!(
        err.is_err() || !err.as_ref().unwrap().status.success(),
        "{err:?}"
    );
}

#[test]
fn fine_grained_profile_allows_only_its_list() {
    let (policy, prog) = compiled("fine-grained");
    let shared = Shared::new();
    let end = run_filtered(Some(&prog), policy.load_flags(), &shared, |s| {
        s.set(1, raw(libc::SYS_getpid, [0; 3]));
        s.set(2, raw(libc::SYS_getppid, [0; 3]));
        s.set(
            3,
            raw(
                libc::SYS_mkdirat,
                [
                    libc::AT_FDCWD as libc::c_long,
                    c"/tmp/x".as_ptr() as libc::c_long,
                    0o700,
                ],
            ),
        );
        s.set(4, raw(libc::SYS_getuid, [0; 3]));
        s.set(5, raw(libc::SYS_uname, [0; 3]));
        let fd = raw(
            libc::SYS_openat,
            [
                libc::AT_FDCWD as libc::c_long,
                c"/proc/self/stat".as_ptr() as libc::c_long,
                libc::O_RDONLY as libc::c_long,
            ],
        );
        s.set(6, fd);
        if fd >= 0 {
            s.set(7, raw(libc::SYS_close, [fd as libc::c_long, 0, 0]));
        }
    });
    assert_eq!(shared.get(LOADED), 0, "filter failed to load");
    assert_eq!(end, End::Exited(0), "exit_group is allowed");
    assert!(shared.get(1) > 0, "getpid is allowed");
    assert_eq!(
        shared.get(2),
        -i64::from(libc::EPERM),
        "getppid is not in the list"
    );
    assert_eq!(
        shared.get(3),
        -i64::from(libc::EPERM),
        "mkdirat is not in the list"
    );
    assert_eq!(shared.get(4), 0, "getuid is allowed (we are root)");
    assert_eq!(
        shared.get(5),
        -i64::from(libc::EPERM),
        "uname is not in the list"
    );
    assert!(shared.get(6) >= 0, "openat is allowed: {}", shared.get(6));
    assert_eq!(shared.get(7), 0, "close is allowed");

    // execve is in the list, so a program can start; busybox's echo needs only listed calls.
    let out = busybox_under(prog, policy.load_flags(), &["echo", "fine"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fine\n");
}

#[test]
fn runtime_default_loads_and_blocks_mount() {
    let p = armorlet_seccomp::runtime_default();
    let ctx = ResolveContext::new(
        Arch::X86_64,
        DEFAULT_CAPS.iter().copied(),
        "6.1".parse().unwrap(),
    );
    let policy = p.resolve(&ctx).policy().unwrap();
    let prog = policy.compile().unwrap();
    let shared = Shared::new();
    let end = run_filtered(Some(&prog), policy.load_flags(), &shared, |s| {
        s.set(1, raw(libc::SYS_getppid, [0; 3]));
        s.set(2, raw(libc::SYS_mount, [0, 0, 0]));
        s.set(
            3,
            raw(
                libc::SYS_unshare,
                [libc::CLONE_NEWUSER as libc::c_long, 0, 0],
            ),
        );
    });
    assert_eq!(shared.get(LOADED), 0);
    assert_eq!(end, End::Exited(0));
    assert_eq!(shared.get(1), i64::from(std::process::id()));
    assert_eq!(shared.get(2), -i64::from(libc::EPERM));
    assert_eq!(shared.get(3), -i64::from(libc::EPERM));
}

#[test]
fn profile_flags_and_notify_listener_load() {
    let text = r#"{"defaultAction":"SCMP_ACT_ALLOW",
      "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#;
    let ctx = ResolveContext::new(
        Arch::X86_64,
        DEFAULT_CAPS.iter().copied(),
        "6.1".parse().unwrap(),
    );
    let c = armorlet_seccomp::Profile::from_json(text)
        .unwrap()
        .compile(&ctx)
        .unwrap();
    assert_eq!(
        c.flags,
        load::SECCOMP_FILTER_FLAG_TSYNC
            | load::SECCOMP_FILTER_FLAG_LOG
            | load::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
    let shared = Shared::new();
    let end = run_filtered(Some(&c.program), c.flags, &shared, |s| {
        s.set(1, raw(libc::SYS_getppid, [0; 3]));
    });
    assert_eq!(shared.get(LOADED), 0);
    assert_eq!(end, End::Exited(0));
    assert_eq!(shared.get(1), -i64::from(libc::ENOSYS), "errnoRet 38");

    // SCMP_ACT_NOTIFY: loading asks for a listener fd.
    let text = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#;
    let c = armorlet_seccomp::Profile::from_json(text)
        .unwrap()
        .compile(&ctx)
        .unwrap();
    assert_ne!(c.flags & load::SECCOMP_FILTER_FLAG_NEW_LISTENER, 0);
    let shared = Shared::new();
    let prog = c.program.clone();
    let flags = c.flags;
    // SAFETY: the child only makes raw syscalls and writes to shared memory.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let v = match load::install(&prog, flags, true) {
            Ok(Some(fd)) => i64::from(fd),
            Ok(None) => -1000,
            Err(e) => -i64::from(e.raw_os_error().unwrap_or(1)),
        };
        shared.set(1, v);
        // SAFETY: terminating the child.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(shared.get(1) >= 0, "listener fd: {}", shared.get(1));
}
