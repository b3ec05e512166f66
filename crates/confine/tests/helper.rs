//! The confine helper binary: applies the plan, execs, fails closed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use armorlet_landlock::plan::{fs, FsRule, LandlockRules, Plan, SocketAllow};
use armorlet_seccomp::SockFilter;

const BUSYBOX: &str = "/usr/bin/busybox";

fn helper(plan: &Path, args: &[&str]) -> Output {
    assert!(Path::new(BUSYBOX).exists(), "busybox-static is required");
    Command::new(env!("CARGO_BIN_EXE_armorlet-confine"))
        .arg(plan)
        .arg("--")
        .args(args)
        .output()
        .expect("run helper")
}

fn write(dir: &Path, plan: &Plan) -> PathBuf {
    let p = dir.join("plan.json");
    plan.write(&p).expect("write plan");
    p
}

/// The tutorial deny-write profile's plan: read/exec everywhere, no writes.
fn deny_write() -> Plan {
    Plan {
        profile: "k8s-apparmor-example-deny-write".into(),
        landlock: Some(LandlockRules {
            handled_fs: fs::ALL,
            fs: vec![FsRule {
                path: "/".into(),
                access: fs::READ_FILE | fs::READ_DIR | fs::EXECUTE,
                except: Vec::new(),
            }],
            scoped: 3,
        }),
        capabilities: Some(vec![]),
        sockets: Some(vec![SocketAllow {
            family: 1,
            sock_type: None,
        }]),
        seccomp_hex: None,
        seccomp_flags: 0,
        log_denials: false,
        no_new_privs: true,
    }
}

/// seccomp: `nr == deny` → EPERM, else allow.
fn deny_syscall(nr: u32) -> Vec<SockFilter> {
    vec![
        SockFilter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        SockFilter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: nr,
        },
        SockFilter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x0005_0001,
        },
        SockFilter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        },
    ]
}

#[test]
fn tutorial_profile_denies_writes_allows_reads() {
    let d = tempfile::tempdir().expect("tempdir");
    let plan = write(d.path(), &deny_write());
    let target = d.path().join("test");
    let out = helper(&plan, &[BUSYBOX, "touch", target.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("touch: {}: Permission denied\n", target.display())
    );
    assert!(!target.exists());
    let out = helper(&plan, &[BUSYBOX, "cat", "/proc/self/status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("CapBnd:\t0000000000000000"), "{status}");
}

#[test]
fn seccomp_is_installed_last() {
    let d = tempfile::tempdir().expect("tempdir");
    // The filter forbids landlock_restrict_self (446): installing it before
    // Landlock would make the helper fail.
    let mut plan = deny_write();
    let prog = deny_syscall(446);
    plan.set_seccomp(&prog, 0);
    let p = write(d.path(), &plan);
    let out = helper(&p, &[BUSYBOX, "true"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it is in force: mkdir (83) fails with EPERM.
    let mut plan = Plan {
        profile: "x".into(),
        ..Plan::default()
    };
    plan.set_seccomp(&deny_syscall(83), 0);
    let p = write(d.path(), &plan);
    let dir = d.path().join("newdir");
    let out = helper(&p, &[BUSYBOX, "mkdir", dir.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    assert!(!dir.exists());
}

#[test]
fn fails_closed_naming_the_step() {
    let d = tempfile::tempdir().expect("tempdir");
    let marker = d.path().join("ran");
    let m = marker.to_str().expect("utf8");
    let out = helper(&d.path().join("missing"), &[BUSYBOX, "touch", m]);
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("armorlet-confine: plan: "));
    let mut bad = deny_write();
    bad.seccomp_hex = Some("zz".into());
    let p = write(d.path(), &bad);
    let out = helper(&p, &[BUSYBOX, "touch", m]);
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("seccomp_hex is not hex"));
    let mut unsupported = deny_write();
    if let Some(l) = &mut unsupported.landlock {
        l.handled_fs = 1 << 40; // not a Landlock right on any kernel
    }
    let p = write(d.path(), &unsupported);
    let out = helper(&p, &[BUSYBOX, "touch", m]);
    assert_eq!(out.status.code(), Some(126));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("confine: landlock: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!marker.exists(), "the command never ran unconfined");
    let out = helper(&write(d.path(), &deny_write()), &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn except_paths_get_nothing_and_their_siblings_everything() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("tree");
    for dir in ["open/sub", "closed/deep", "mixed/hidden", "mixed/shown"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    for file in [
        "open/sub/f",
        "closed/deep/f",
        "mixed/hidden/f",
        "mixed/shown/f",
        "mixed/top",
    ] {
        std::fs::write(root.join(file), "x").expect("write");
    }
    let r = |p: &str| root.join(p).to_str().expect("utf8").to_owned();
    let mut plan = deny_write();
    let rules = plan.landlock.as_mut().expect("landlock");
    rules.fs = vec![
        FsRule {
            path: "/usr".into(),
            access: fs::READ_FILE | fs::EXECUTE,
            except: Vec::new(),
        },
        FsRule {
            path: root.to_str().expect("utf8").into(),
            access: fs::READ_FILE | fs::READ_DIR,
            except: vec![r("closed"), r("mixed/hidden")],
        },
    ];
    let plan = write(d.path(), &plan);
    let cat = |p: &str| helper(&plan, &[BUSYBOX, "cat", &r(p)]).status.code();
    assert_eq!(cat("open/sub/f"), Some(0));
    assert_eq!(cat("mixed/shown/f"), Some(0));
    assert_eq!(
        cat("mixed/top"),
        Some(0),
        "files beside an exception keep the rule"
    );
    assert_eq!(cat("closed/deep/f"), Some(1));
    assert_eq!(cat("mixed/hidden/f"), Some(1));
    // The directories on the way to an exception lose their own listing right.
    let ls = |p: &str| helper(&plan, &[BUSYBOX, "ls", &r(p)]).status.code();
    assert_eq!(ls("open"), Some(0));
    assert_eq!(ls("mixed"), Some(1));
}

#[test]
fn landlock_runtime_default_denies_what_docker_default_denies() {
    let d = tempfile::tempdir().expect("tempdir");
    let t = armorlet_landlock::kernel::runtime_default_translation().expect("translation");
    assert!(!t.approximations.is_empty(), "the tightenings are reported");
    let plan = write(d.path(), &t.plan);
    let run = |args: &[&str]| helper(&plan, args);
    let ok = |args: &[&str]| {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let denied = |args: &[&str]| {
        let out = run(args);
        assert_ne!(out.status.code(), Some(0), "{args:?} must be denied");
    };
    let file = d.path().join("written");
    ok(&[BUSYBOX, "sh", "-c", &format!("echo x > {}", file.display())]);
    ok(&[BUSYBOX, "cat", "/etc/hostname"]);
    ok(&[BUSYBOX, "cat", "/proc/self/status"]);
    ok(&[BUSYBOX, "ls", "/sys/kernel/mm"]);
    ok(&[BUSYBOX, "ls", "/sys/class"]);
    // Tightened: a directory on the way to an exception cannot be listed.
    denied(&[BUSYBOX, "ls", "/sys/kernel"]);
    denied(&[BUSYBOX, "ls", "/sys/kernel/security"]);
    denied(&[BUSYBOX, "ls", "/sys/firmware"]);
    denied(&[BUSYBOX, "sh", "-c", "echo x > /proc/self/comm"]);
    denied(&[BUSYBOX, "sh", "-c", "echo 1 > /proc/sys/kernel/panic"]);
}
