//! moby's own profile fixtures: the old single-`name` format, errnoRet on a
//! rule and capability conditions.

use std::path::PathBuf;

use armorlet_seccomp::policy::{ret, SeccompData};
use armorlet_seccomp::resolve::ResolveContext;
use armorlet_seccomp::{arch::AUDIT_ARCH_X86_64, syscalls, Arch, Profile};

fn fixture(name: &str) -> Profile {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/moby/{name}.json"));
    let (profile, warnings) = armorlet_seccomp::check(&std::fs::read(p).unwrap()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    profile
}

fn decide(profile: &Profile, caps: &[&str], name: &str, a0: u64) -> u32 {
    let ctx = ResolveContext::new(Arch::X86_64, caps.iter().copied(), "6.1".parse().unwrap());
    let policy = profile.resolve(&ctx).policy().unwrap();
    let prog = policy.compile().unwrap();
    let d = SeccompData {
        nr: syscalls::resolve(Arch::X86_64, name).unwrap(),
        arch: AUDIT_ARCH_X86_64,
        args: [a0, 0, 0, 0, 0, 0],
        ..Default::default()
    };
    let r = armorlet_seccomp::bpf::interpret(&prog, &d).unwrap().ret;
    assert_eq!(r, policy.decide(&d).ret);
    r
}

#[test]
fn example_uses_the_old_name_field_and_errno_ret() {
    let p = fixture("example");
    assert_eq!(p.syscalls[0].name.as_deref(), Some("clone"));
    assert_eq!(decide(&p, &[], "open", 0), ret::ALLOW);
    assert_eq!(decide(&p, &[], "syslog", 0), ret::ERRNO | 12345);
    assert_eq!(decide(&p, &[], "clone", 0x11), ret::ALLOW);
    assert_eq!(
        decide(&p, &[], "clone", 0x1000_0000),
        ret::ERRNO | 1,
        "CLONE_NEWUSER"
    );
    assert_eq!(decide(&p, &[], "read", 0), ret::ERRNO | 1);
}

#[test]
fn conditional_include_follows_capabilities() {
    let p = fixture("conditional_include");
    assert_eq!(decide(&p, &[], "chmod", 0), ret::ALLOW);
    assert_eq!(decide(&p, &[], "syslog", 0), ret::ERRNO | 1);
    assert_eq!(decide(&p, &["CAP_SYSLOG"], "syslog", 0), ret::ALLOW);
    assert_eq!(decide(&p, &[], "ptrace", 0), ret::ALLOW);
    assert_eq!(decide(&p, &["CAP_SYS_ADMIN"], "ptrace", 0), ret::ERRNO | 1);
}

#[test]
fn old_format_default_round_trips_through_json() {
    let p = fixture("default-old-format");
    assert_eq!(p.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
    let again = Profile::from_json(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(again, p);
    assert_eq!(decide(&p, &[], "accept4", 0), ret::ALLOW);
}
