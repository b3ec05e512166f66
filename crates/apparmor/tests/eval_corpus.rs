//! Every profile of every corpus file the parser accepts must compile into
//! an [`Evaluator`] (its patterns are valid AAREs: the parser and the
//! matcher agree on the syntax), and answering a spread of requests must
//! not panic. Corpus: `shared/oracles/apparmor/simple_tests`
//! (`$ARMORLET_SHARED` overrides the shared/ location).

use std::path::{Path, PathBuf};

use armorlet_apparmor::ast::{MountKind, Profile};
use armorlet_apparmor::eval::{
    CondRequest, Evaluator, FileAccess, FileRequest, MountRequest, NetworkRequest, PtraceRequest,
    Request, SignalRequest,
};
use armorlet_apparmor::{load_file, ParseOptions, Severity};

fn simple_tests() -> PathBuf {
    let shared = match std::env::var_os("ARMORLET_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let dir = shared.join("oracles/apparmor/simple_tests");
    assert!(
        dir.is_dir(),
        "the shared corpus is missing: {} (set ARMORLET_SHARED)",
        dir.display()
    );
    dir
}

fn collect_sd(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_sd(&p, out);
        } else if p.extension().is_some_and(|e| e == "sd") {
            out.push(p);
        }
    }
}

fn requests() -> Vec<Request> {
    let file = |p: &str, a: &str, owner| {
        Request::File(FileRequest {
            path: p.into(),
            access: FileAccess::parse(a).expect("access"),
            owner,
            link_target: Some("/tmp/target".into()),
        })
    };
    vec![
        file("/tmp/x", "rwalkmx", true),
        file("/does/not/exist", "r", false),
        file("/usr/bin/foo", "x", false),
        file("/", "w", true),
        Request::Capability("sys_admin".into()),
        Request::Network(NetworkRequest {
            domain: "inet".into(),
            sock_type: Some("stream".into()),
            ..NetworkRequest::default()
        }),
        Request::Signal(SignalRequest {
            perm: "send".into(),
            signal: "hup".into(),
            peer: "unconfined".into(),
        }),
        Request::Ptrace(PtraceRequest {
            perm: "trace".into(),
            peer: "foo".into(),
        }),
        Request::Unix(CondRequest {
            perms: vec!["connect".into()],
            ..CondRequest::default()
        }),
        Request::Dbus(CondRequest {
            perms: vec!["send".into()],
            ..CondRequest::default()
        }),
        Request::Mqueue(CondRequest {
            perms: vec!["read".into()],
            name: Some("/q".into()),
            ..CondRequest::default()
        }),
        Request::Mount(MountRequest {
            kind: MountKind::Mount,
            source: Some("/dev/sda1".into()),
            mountpoint: Some("/mnt".into()),
            fstype: Some("ext4".into()),
            options: vec!["ro".into()],
        }),
        Request::Userns,
        Request::IoUring {
            perms: vec!["sqpoll".into()],
            label: None,
        },
        Request::ChangeProfile {
            target: "foo".into(),
            exec: None,
        },
    ]
}

fn walk<'a>(p: &'a Profile, out: &mut Vec<&'a Profile>) {
    out.push(p);
    for c in &p.children {
        walk(c, out);
    }
}

#[test]
fn every_accepted_profile_compiles_and_answers() {
    let mut files = Vec::new();
    collect_sd(&simple_tests(), &mut files);
    assert!(files.len() > 1000, "corpus too small: {}", files.len());
    let mut opts = ParseOptions::default();
    opts.include_dirs.push(simple_tests());
    let reqs = requests();
    let (mut accepted, mut profiles, mut failures) = (0, 0, Vec::new());
    for f in &files {
        let Ok((policy, diags)) = load_file(f, &opts) else {
            continue;
        };
        if diags.iter().any(|d| d.severity == Severity::Error) {
            continue;
        }
        accepted += 1;
        let mut all = Vec::new();
        for p in &policy.profiles {
            walk(p, &mut all);
        }
        for p in all {
            profiles += 1;
            match Evaluator::new(p) {
                Ok(ev) => {
                    for r in &reqs {
                        let d = ev.evaluate(r);
                        // every deciding rule belongs to the profile
                        assert!(d
                            .rules
                            .iter()
                            .all(|r| p.rules.iter().any(|x| std::ptr::eq(x, *r))));
                    }
                }
                Err(e) => failures.push(format!("{}: profile {}: {e}", f.display(), p.name)),
            }
        }
    }
    assert!(accepted > 500, "only {accepted} corpus files accepted");
    assert!(
        failures.is_empty(),
        "{} of {profiles} profiles do not compile:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
