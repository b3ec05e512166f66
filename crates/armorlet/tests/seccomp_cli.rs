//! `armorlet seccomp ...` end to end: exit codes and output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tutorial(name: &str) -> PathBuf {
    repo().join(format!("testdata/tutorial/profiles/{name}.json"))
}

fn moby() -> PathBuf {
    repo().join("crates/seccomp/profiles/moby-default.json")
}

fn armorlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_armorlet"))
        .arg("seccomp")
        .args(args)
        .output()
        .expect("run armorlet")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn temp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("armorlet-seccomp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_accepts_the_tutorial_profiles() {
    for name in ["audit", "violation", "fine-grained"] {
        let o = armorlet(&["check", s(&tutorial(name))]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains(": ok ("), "{}", text(&o.stdout));
    }
    let o = armorlet(&["check", s(&moby())]);
    assert_eq!(o.status.code(), Some(0));
    // Names of other architectures are warnings, not errors.
    assert!(
        text(&o.stderr)
            .contains("warning: syscalls[14].names[0]: unknown syscall \"s390_pci_mmio_read\""),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn check_rejects_bad_input_with_paths_and_exit_1() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["write"],"action":"SCMP_ACT_FOO"}]}"#,
            "syscalls[1].action: unknown action \"SCMP_ACT_FOO\"",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}"#,
            "architectures[0]: unknown architecture \"SCMP_ARCH_Z80\"",
        ),
        (r#"{"defaultAction":"SCMP_ACT_ERRNO","#, "EOF while parsing"),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#,
            "syscalls[0].args[0].op: unknown operator \"SCMP_CMP_ABOUT\"",
        ),
    ];
    for (i, (json, want)) in cases.iter().enumerate() {
        let f = temp(&format!("bad{i}.json"), json.as_bytes());
        let o = armorlet(&["check", s(&f)]);
        assert_eq!(o.status.code(), Some(1), "{json}");
        assert!(
            text(&o.stderr).contains(want),
            "{json}: {}",
            text(&o.stderr)
        );
    }
    let mut big = b"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"comment\":\"".to_vec();
    big.resize(10 * 1024 * 1024, b'x');
    big.extend_from_slice(b"\"}");
    let f = temp("big.json", &big);
    let o = armorlet(&["check", s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("more than the limit of 1048576 bytes"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn io_and_usage_errors_exit_2() {
    let o = armorlet(&["check", "/no/such/profile.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("reading /no/such/profile.json"));
    let o = armorlet(&["compile"]);
    assert_eq!(o.status.code(), Some(2));
    let o = armorlet(&["compile", s(&tutorial("audit")), "--format", "hex"]);
    assert_eq!(o.status.code(), Some(2));
    let o = armorlet(&["compile", s(&tutorial("audit")), "--arch", "vax"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn compile_writes_raw_bpf_and_text() {
    let o = armorlet(&["compile", s(&tutorial("fine-grained"))]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(o.stdout.len() % 8, 0);
    let prog = armorlet_seccomp::bpf::from_bytes(&o.stdout).unwrap();
    let d = armorlet_seccomp::SeccompData {
        nr: 110, // getppid: not in the list
        arch: armorlet_seccomp::arch::AUDIT_ARCH_X86_64,
        ..Default::default()
    };
    assert_eq!(
        armorlet_seccomp::bpf::interpret(&prog, &d).unwrap().ret,
        0x0005_0001
    );
    let d = armorlet_seccomp::SeccompData { nr: 39, ..d }; // getpid: listed
    assert_eq!(
        armorlet_seccomp::bpf::interpret(&prog, &d).unwrap().ret,
        0x7fff_0000
    );

    let out = std::env::temp_dir().join(format!(
        "armorlet-seccomp-cli-{}-out.bpf",
        std::process::id()
    ));
    let o = armorlet(&[
        "compile",
        s(&tutorial("fine-grained")),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(&out).unwrap(), bpf_of("fine-grained"));
    let _ = std::fs::remove_file(out);

    let o = armorlet(&["compile", s(&tutorial("violation")), "--format", "text"]);
    assert_eq!(o.status.code(), Some(0));
    let listing = text(&o.stdout);
    assert!(listing.starts_with("   0: ld  [arch]\n"), "{listing}");
    assert!(listing.contains("ret SCMP_ACT_ERRNO(1)"), "{listing}");
    assert!(listing.contains("ret SCMP_ACT_KILL_THREAD"), "{listing}");
}

fn bpf_of(name: &str) -> Vec<u8> {
    armorlet(&["compile", s(&tutorial(name))]).stdout
}

#[test]
fn explain_names_the_deciding_rule() {
    let o = armorlet(&["explain", s(&moby()), "personality", "8"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(t.contains("personality (nr 135): SCMP_ACT_ALLOW"), "{t}");
    assert!(t.contains("decided by syscalls[6]"), "{t}");

    let o = armorlet(&["explain", s(&moby()), "personality", "9"]);
    let t = text(&o.stdout);
    assert!(
        t.contains("SCMP_ACT_ERRNO(1)") && t.contains("no argument condition held"),
        "{t}"
    );

    // Negative numbers are 64-bit two's complement: -1 is not 0xffffffff on x86_64.
    let o = armorlet(&["explain", s(&moby()), "personality", "-1"]);
    assert!(
        text(&o.stdout).contains("personality (nr 135): SCMP_ACT_ERRNO(1)"),
        "{}",
        text(&o.stdout)
    );
    let o = armorlet(&["explain", s(&moby()), "personality", "0xffffffff"]);
    assert!(
        text(&o.stdout).contains("personality (nr 135): SCMP_ACT_ALLOW"),
        "{}",
        text(&o.stdout)
    );

    let o = armorlet(&["explain", s(&moby()), "mount"]);
    let t = text(&o.stdout);
    assert!(
        t.contains("mount (nr 165): SCMP_ACT_ERRNO(1)") && t.contains("no rule"),
        "{t}"
    );

    let o = armorlet(&["explain", s(&moby()), "mount", "--cap", "CAP_SYS_ADMIN"]);
    let t = text(&o.stdout);
    assert!(
        t.contains("SCMP_ACT_ALLOW") && t.contains("decided by syscalls[17]"),
        "{t}"
    );

    let o = armorlet(&[
        "explain",
        s(&moby()),
        "socketcall",
        "1",
        "--syscall-arch",
        "x86",
    ]);
    assert!(text(&o.stdout).contains("SCMP_ARCH_X86 socketcall (nr 102): SCMP_ACT_ALLOW"));

    let o = armorlet(&[
        "explain",
        s(&tutorial("fine-grained")),
        "63",
        "--syscall-arch",
        "SCMP_ARCH_AARCH64",
    ]);
    let t = text(&o.stdout);
    assert!(
        t.contains("SCMP_ACT_KILL_THREAD") && t.contains("architecture not covered"),
        "{t}"
    );

    let o = armorlet(&["explain", s(&tutorial("audit")), "no_such_call"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn diff_lists_differences_and_exits_1() {
    let o = armorlet(&["diff", s(&tutorial("violation")), s(&tutorial("violation"))]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "no differences\n");

    let o = armorlet(&["diff", s(&tutorial("audit")), s(&tutorial("violation"))]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o.stdout);
    assert!(
        t.contains("SCMP_ARCH_X86_64 read (0): SCMP_ACT_LOG | SCMP_ACT_ERRNO(1)"),
        "{t}"
    );

    let o = armorlet(&[
        "diff",
        s(&tutorial("violation")),
        s(&tutorial("fine-grained")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o.stdout);
    assert!(
        t.contains("SCMP_ARCH_X86_64 getpid (39): SCMP_ACT_ERRNO(1) | SCMP_ACT_ALLOW"),
        "{t}"
    );
    assert!(
        !t.contains("SCMP_ARCH_X86_64 getppid "),
        "getppid is denied by both: {t}"
    );
    // fine-grained adds x86 and x32: their syscalls differ (bad arch vs rules).
    assert!(t.contains("SCMP_ARCH_X86 getppid (64): SCMP_ACT_KILL_THREAD (architecture not covered) | SCMP_ACT_ERRNO(1)"), "{t}");
}

#[test]
fn architectures_without_a_table_are_a_clear_error() {
    let o = armorlet(&["compile", s(&moby()), "--arch", "s390x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no syscall table for architecture SCMP_ARCH_S390X"),
        "{}",
        text(&o.stderr)
    );
    let f = temp(
        "arm.json",
        br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_PPC64LE"]}"#,
    );
    let o = armorlet(&["check", s(&f)]);
    assert_eq!(o.status.code(), Some(0), "valid, just not compilable here");
    let o = armorlet(&["compile", s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("SCMP_ARCH_ARM"),
        "{}",
        text(&o.stderr)
    );
}
