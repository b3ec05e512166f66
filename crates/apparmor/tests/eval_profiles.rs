//! The evaluator on real profiles, parsed by the crate's parser: the k8s
//! tutorial's deny-write profile (with the system's `<tunables/global>` and
//! `<abstractions/base>` from the `apparmor` Debian package), and moby's
//! docker-default profile from the shared oracle data. Every expected
//! verdict below is worked out by hand from the profile text.

use std::path::{Path, PathBuf};

use armorlet_apparmor::ast::{MountKind, Profile};
use armorlet_apparmor::eval::{
    find_profile, Decision, Evaluator, FileAccess, FileRequest, Log, MountRequest, NetworkRequest,
    PtraceRequest, Reason, Request, SignalRequest, Verdict,
};
use armorlet_apparmor::{load_file, parse_str, ParseOptions, Policy, Severity};

/// The system profile directory; installed by `apt-get install apparmor`
/// (`.ci/run` does it). Missing means a broken setup: fail, do not skip.
fn system_apparmor_d() -> PathBuf {
    let d = PathBuf::from("/etc/apparmor.d");
    assert!(
        d.join("tunables/global").is_file() && d.join("abstractions/base").is_file(),
        "/etc/apparmor.d/tunables/global or abstractions/base is missing: install the \
         `apparmor` Debian package (apt-get install apparmor)"
    );
    d
}

fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("ARMORLET_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    assert!(
        dir.join("oracles/apparmor").is_dir(),
        "the shared data is missing: {} has no oracles/apparmor (set ARMORLET_SHARED)",
        dir.display()
    );
    dir
}

fn parse_ok(src: &str, name: &str, include_dirs: Vec<PathBuf>) -> Policy {
    let mut opts = ParseOptions::default();
    opts.include_dirs.extend(include_dirs);
    let (policy, diags) = parse_str(src, name, &opts);
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{name}: unexpected errors: {errors:#?}");
    policy
}

fn file(path: &str, access: &str, owner: bool) -> Request {
    Request::File(FileRequest {
        path: path.into(),
        access: FileAccess::parse(access).expect("valid access"),
        owner,
        link_target: None,
    })
}

fn rule_lines(d: &Decision) -> Vec<(String, u32)> {
    d.rules
        .iter()
        .map(|r| (r.span.file.to_string(), r.span.line))
        .collect()
}

const K8S_DENY_WRITE: &str = "\
#include <tunables/global>

profile k8s-apparmor-example-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>

  file,

  # Deny all file writes.
  deny /** w,
}
";

fn k8s_policy() -> Policy {
    parse_ok(K8S_DENY_WRITE, "deny-write.sd", vec![system_apparmor_d()])
}

#[test]
fn k8s_deny_write_denies_writes_and_allows_reads() {
    let policy = k8s_policy();
    let profile = find_profile(&policy, None).expect("one profile");
    assert_eq!(profile.name, "k8s-apparmor-example-deny-write");
    assert_eq!(profile.flags.attach_disconnected, Some(true));
    let ev = Evaluator::new(profile).expect("compiles");

    let d = ev.evaluate(&file("/tmp/test", "w", true));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, Reason::ExplicitDeny);
    assert_eq!(rule_lines(&d), vec![("deny-write.sd".to_string(), 9)]);
    assert_eq!(d.log, Log::None, "a plain deny rule is quiet");

    let d = ev.evaluate(&file("/tmp/test", "r", true));
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(
        rule_lines(&d).contains(&("deny-write.sd".to_string(), 6)),
        "`file,` decides: {:?}",
        rule_lines(&d)
    );

    // append is a kind of write: denied as well
    assert_eq!(
        ev.evaluate(&file("/var/log/x", "a", false)).verdict,
        Verdict::Deny
    );
    // exec and mmap are granted by `file,` (`ix` implies `m`)
    let d = ev.evaluate(&file("/usr/bin/ls", "mrx", false));
    assert_eq!(d.verdict, Verdict::Allow);
    // `/**` does not match the root directory itself
    assert_eq!(ev.evaluate(&file("/", "w", false)).verdict, Verdict::Allow);
    // read+write: denied, by the deny rule only
    let d = ev.evaluate(&file("/etc/hosts", "rw", true));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(rule_lines(&d), vec![("deny-write.sd".to_string(), 9)]);
    // nothing grants a capability
    let d = ev.evaluate(&Request::Capability("sys_admin".into()));
    assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::NotGranted));
}

/// A profile with only `<abstractions/base>`: its rules come from the
/// system file, with `@{etc_ro}`, `@{PROC}` and `@{profile_name}` expanded.
#[test]
fn abstractions_base_rules_apply_with_their_source_lines() {
    let src = "#include <tunables/global>\nprofile t {\n  #include <abstractions/base>\n}\n";
    let policy = parse_ok(src, "base.sd", vec![system_apparmor_d()]);
    let profile = find_profile(&policy, Some("t")).expect("profile t");
    let ev = Evaluator::new(profile).expect("compiles");

    let d = ev.evaluate(&file("/dev/null", "rw", false));
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(
        d.rules
            .iter()
            .all(|r| r.span.file.ends_with("abstractions/base")),
        "{:?}",
        rule_lines(&d)
    );
    // @{etc_ro}/ld.so.cache mr  (@{etc_ro} = /etc/ /usr/etc/)
    for p in ["/etc/ld.so.cache", "/usr/etc/ld.so.cache"] {
        let d = ev.evaluate(&file(p, "mr", false));
        assert_eq!(d.verdict, Verdict::Allow, "{p}: {d:#?}");
    }
    // @{PROC}/sys/kernel/version r
    assert_eq!(
        ev.evaluate(&file("/proc/sys/kernel/version", "r", false))
            .verdict,
        Verdict::Allow
    );
    // nothing in base grants /etc/shadow or writes to /etc
    let d = ev.evaluate(&file("/etc/shadow", "r", false));
    assert_eq!(
        (d.verdict, d.reason, d.log),
        (Verdict::Deny, Reason::NotGranted, Log::Denied)
    );
    // signal peer=@{profile_name}: the profile may signal itself
    let sig = |perm: &str, peer: &str| {
        ev.evaluate(&Request::Signal(SignalRequest {
            perm: perm.into(),
            signal: "term".into(),
            peer: peer.into(),
        }))
        .verdict
    };
    assert_eq!(sig("send", "t"), Verdict::Allow);
    assert_eq!(sig("receive", "unconfined"), Verdict::Allow);
    assert_eq!(sig("send", "other"), Verdict::Deny);
}

#[test]
fn k8s_profile_in_complain_mode_converts_only_implicit_denials() {
    let src = K8S_DENY_WRITE.replace("flags=(attach_disconnected)", "flags=(complain)");
    let policy = parse_ok(&src, "complain.sd", vec![system_apparmor_d()]);
    let profile = find_profile(&policy, None).expect("one profile");
    let ev = Evaluator::new(profile).expect("compiles");
    let d = ev.evaluate(&file("/tmp/test", "w", true));
    assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::ExplicitDeny));
    let d = ev.evaluate(&Request::Capability("net_raw".into()));
    assert_eq!(
        (d.verdict, d.reason, d.log),
        (Verdict::Allow, Reason::Complain, Log::Allowed)
    );
}

fn docker_default() -> (Policy, String) {
    let path = shared_dir().join("oracles/apparmor/docker-default/default.golden");
    let (policy, diags) =
        load_file(&path, &ParseOptions::default()).expect("docker-default golden is readable");
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "docker-default: {errors:#?}");
    (policy, path.display().to_string())
}

fn docker_profile(policy: &Policy) -> &Profile {
    find_profile(policy, Some("default")).expect("profile \"default\"")
}

#[test]
fn docker_default_proc_and_sys_writes() {
    let (policy, path) = docker_default();
    let ev = Evaluator::new(docker_profile(&policy)).expect("compiles");
    let verdict = |p: &str, a: &str| ev.evaluate(&file(p, a, true)).verdict;
    let deny_line = |p: &str, a: &str| {
        let d = ev.evaluate(&file(p, a, true));
        assert_eq!(d.reason, Reason::ExplicitDeny, "{p} {a}");
        d.rules
            .iter()
            .map(|r| {
                assert_eq!(&*r.span.file, path.as_str());
                r.span.line
            })
            .collect::<Vec<_>>()
    };
    // /proc/sys/kernel: only shm* stays writable
    assert_eq!(verdict("/proc/sys/kernel/shmmax", "w"), Verdict::Allow);
    assert_eq!(deny_line("/proc/sys/kernel/core_pattern", "w"), vec![28]);
    assert_eq!(deny_line("/proc/sys/kernel/ab", "w"), vec![28]);
    // /proc/sys outside kernel
    assert_eq!(deny_line("/proc/sys/net/ipv4/ip_forward", "w"), vec![27]);
    // files directly in /proc
    assert_eq!(deny_line("/proc/uptime", "w"), vec![24]);
    assert_eq!(verdict("/proc/uptime", "r"), Verdict::Allow);
    // /proc/<pid>/** stays writable, /proc/self/** does not (4+ chars)
    assert_eq!(verdict("/proc/1/attr/current", "w"), Verdict::Allow);
    assert_eq!(verdict("/proc/42/oom_score_adj", "w"), Verdict::Allow);
    assert_eq!(deny_line("/proc/self/attr/current", "w"), vec![26]);
    assert_eq!(deny_line("/proc/tty/driver/x", "w"), vec![26]);
    // sysrq-trigger and kcore: no access at all (also matched by /proc/* w)
    assert_eq!(deny_line("/proc/sysrq-trigger", "r"), vec![29]);
    assert_eq!(deny_line("/proc/kcore", "r"), vec![30]);
    // /sys: only /sys/fs/cgroup/** is writable
    assert_eq!(verdict("/sys/fs/cgroup/memory.max", "w"), Verdict::Allow);
    assert_eq!(deny_line("/sys/class/net/eth0/mtu", "w"), vec![34]);
    assert_eq!(deny_line("/sys/fs/fuse/connections/x", "w"), vec![36]);
    assert_eq!(verdict("/sys/class/net/eth0/address", "r"), Verdict::Allow);
    assert_eq!(
        deny_line("/sys/kernel/security/apparmor/profiles", "r"),
        vec![41]
    );
    assert_eq!(deny_line("/sys/firmware/efi/x", "r"), vec![39]);
    // ordinary container files: `file,`
    let d = ev.evaluate(&file("/etc/passwd", "rw", true));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(rule_lines(&d), vec![(path.clone(), 11)]);
}

#[test]
fn docker_default_other_classes() {
    let (policy, _) = docker_default();
    let ev = Evaluator::new(docker_profile(&policy)).expect("compiles");
    let net = |domain: &str, ty: &str| {
        ev.evaluate(&Request::Network(NetworkRequest {
            domain: domain.into(),
            sock_type: Some(ty.into()),
            ..NetworkRequest::default()
        }))
    };
    assert_eq!(net("inet", "stream").verdict, Verdict::Allow);
    let d = net("alg", "seqpacket");
    assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::ExplicitDeny));
    assert_eq!(d.rules[0].span.line, 9);
    assert_eq!(
        ev.evaluate(&Request::Capability("sys_admin".into()))
            .verdict,
        Verdict::Allow
    );
    let mount = |kind| {
        ev.evaluate(&Request::Mount(MountRequest {
            kind,
            source: Some("tmpfs".into()),
            mountpoint: Some("/mnt".into()),
            fstype: Some("tmpfs".into()),
            options: vec![],
        }))
    };
    let d = mount(MountKind::Mount);
    assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::ExplicitDeny));
    assert_eq!(mount(MountKind::Umount).verdict, Verdict::Allow);
    // `remount` is `mount options=(remount)`: covered by `deny mount,`
    let d = mount(MountKind::Remount);
    assert_eq!((d.reason, d.rules[0].span.line), (Reason::ExplicitDeny, 32));
    assert_eq!(mount(MountKind::PivotRoot).reason, Reason::NotGranted);
    let sig = |perm: &str, peer: &str| {
        ev.evaluate(&Request::Signal(SignalRequest {
            perm: perm.into(),
            signal: "kill".into(),
            peer: peer.into(),
        }))
        .verdict
    };
    assert_eq!(sig("receive", "runc"), Verdict::Allow);
    assert_eq!(sig("receive", "unconfined"), Verdict::Allow);
    assert_eq!(sig("send", "runc"), Verdict::Deny);
    assert_eq!(sig("send", "default"), Verdict::Allow);
    assert_eq!(sig("receive", "other"), Verdict::Deny);
    let pt = |perm: &str, peer: &str| {
        ev.evaluate(&Request::Ptrace(PtraceRequest {
            perm: perm.into(),
            peer: peer.into(),
        }))
        .verdict
    };
    assert_eq!(pt("trace", "default"), Verdict::Allow);
    assert_eq!(pt("readby", "default"), Verdict::Allow);
    assert_eq!(pt("trace", "unconfined"), Verdict::Deny);
}
