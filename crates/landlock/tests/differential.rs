//! Differential acceptance test: for every corpus profile our parser
//! accepts and the Landlock backend enforces (exactly or tightened), what a
//! process confined by the plan can do in a temp tree mirroring the
//! profile's paths NEVER exceeds what `armorlet_apparmor::eval` allows.
//!
//! Real Landlock in forked children (needs Landlock ABI >= 6; fails, never
//! skips, when absent). Prints exact / approximated / refused counts.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use armorlet_apparmor::ast::{Profile, RuleKind};
use armorlet_apparmor::eval::{Evaluator, FileAccess, FileRequest, Request};
use armorlet_landlock::plan::{apply, Plan};
use armorlet_landlock::{host, translate};

fn shared() -> PathBuf {
    std::env::var_os("ARMORLET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Corpus files expected to parse (`#=EXRESULT PASS`, not TODO/DISABLED).
fn corpus() -> Vec<PathBuf> {
    let root = shared().join("oracles/apparmor/simple_tests");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("corpus dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sd") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let pass = text.lines().any(|l| l.trim() == "#=EXRESULT PASS");
                let skip = text.contains("#=TODO") || text.contains("#=DISABLED");
                if pass && !skip {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Read,
    Write,
    Create,
    Exec,
}

/// A concrete path for a pattern alternative, or `None` when it has
/// constructs we do not instantiate (character classes, variables).
fn instantiate(alt: &str) -> Option<String> {
    if alt.contains(['[', ']', '@', '\\', '"', '{', '}']) || !alt.starts_with('/') {
        return None;
    }
    let s = alt
        .replace("**", "d1/f2")
        .replace('*', "s3")
        .replace('?', "q");
    if s.contains("//") || s.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    Some(s)
}

fn expand(s: &str) -> Vec<String> {
    // Simple `{a,b}` expansion, bounded.
    let Some(open) = s.find('{') else {
        return vec![s.to_string()];
    };
    let Some(rel) = s[open..].find('}') else {
        return vec![];
    };
    let close = open + rel;
    let inner = &s[open + 1..close];
    if inner.contains('{') {
        return vec![];
    }
    let mut out = Vec::new();
    for part in inner.split(',') {
        out.extend(expand(&format!(
            "{}{}{}",
            &s[..open],
            part,
            &s[close + 1..]
        )));
        if out.len() > 32 {
            break;
        }
    }
    out
}

/// Paths (file or dir) named by the profile's file rules.
fn paths_of(profile: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    for r in &profile.rules {
        let RuleKind::File(f) = &r.kind else { continue };
        let pats: Vec<String> = match &f.path {
            None => vec!["/bare/file".into()],
            Some(p) if p.expanded.is_empty() => vec![p.raw.clone()],
            Some(p) => p.expanded.clone(),
        };
        for p in pats {
            for alt in expand(&p) {
                if let Some(path) = instantiate(&alt) {
                    out.push(path);
                }
            }
        }
    }
    out.push("/other/place/file".into());
    out.sort();
    out.dedup();
    out.truncate(10);
    out
}

struct Case {
    op: Op,
    /// The path as the profile sees it.
    path: String,
}

/// A 129-byte static x86-64 ELF that exits 0 (`mov eax,60; xor edi,edi;
/// syscall`): every file of the tree is its own copy, because Landlock
/// rules attach to inodes and hard links would share them.
fn tiny_elf() -> Vec<u8> {
    let mut v = Vec::with_capacity(129);
    v.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&0x3eu16.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&0x400078u64.to_le_bytes());
    v.extend_from_slice(&64u64.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    for x in [64u16, 56, 1, 0, 0, 0] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&5u32.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(&0x400000u64.to_le_bytes());
    v.extend_from_slice(&0x400000u64.to_le_bytes());
    v.extend_from_slice(&129u64.to_le_bytes());
    v.extend_from_slice(&129u64.to_le_bytes());
    v.extend_from_slice(&0x1000u64.to_le_bytes());
    v.extend_from_slice(&[0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    v
}

/// Builds the tree under `root` and the cases (paths clashing with an
/// existing file or directory are skipped).
fn build(root: &Path, paths: &[String], elf: &[u8]) -> Vec<Case> {
    let mut cases = Vec::new();
    for p in paths {
        let host = root.join(p.trim_start_matches('/'));
        if p.ends_with('/') {
            if std::fs::create_dir_all(&host).is_err() {
                continue;
            }
            cases.push(Case {
                op: Op::Read,
                path: p.clone(),
            });
            cases.push(Case {
                op: Op::Create,
                path: format!("{p}new_c"),
            });
            continue;
        }
        let Some(parent) = host.parent() else {
            continue;
        };
        if std::fs::create_dir_all(parent).is_err() {
            continue;
        }
        if !host.exists() && write_exe(&host, elf).is_err() {
            continue;
        }
        if host.is_dir() {
            continue;
        }
        for op in [Op::Read, Op::Write, Op::Exec] {
            cases.push(Case {
                op,
                path: p.clone(),
            });
        }
        let dir = &p[..p.rfind('/').unwrap_or(0) + 1];
        cases.push(Case {
            op: Op::Create,
            path: format!("{dir}new_c"),
        });
    }
    cases
}

fn write_exe(path: &Path, elf: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, elf)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

fn aa_allows(ev: &Evaluator<'_>, c: &Case) -> bool {
    let access = match c.op {
        Op::Read => FileAccess::READ,
        Op::Write | Op::Create => FileAccess::WRITE,
        Op::Exec => FileAccess::EXEC,
    };
    let req = Request::File(FileRequest {
        path: c.path.clone(),
        access,
        owner: true,
        link_target: None,
    });
    ev.evaluate(&req).is_allowed()
}

/// Runs `cases` in a forked child confined by `plan`; returns allowed flags.
fn confined_results(plan: &Plan, root: &Path, cases: &[Case]) -> Vec<bool> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe into a 2-int array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let hosts: Vec<CString> = cases
        .iter()
        .map(|c| {
            CString::new(
                root.join(c.path.trim_start_matches('/'))
                    .as_os_str()
                    .as_bytes(),
            )
            .expect("path")
        })
        .collect();
    // SAFETY: the child only applies the plan, does syscalls and _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let ok = apply(plan).is_ok();
        let mut out = Vec::with_capacity(cases.len() + 1);
        out.push(ok as u8);
        for (c, h) in cases.iter().zip(&hosts) {
            out.push(if ok { try_op(c.op, h) as u8 } else { 0 });
        }
        // SAFETY: write our buffer to the pipe, then exit without unwinding.
        unsafe {
            libc::write(fds[1], out.as_ptr().cast(), out.len());
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut buf = vec![0u8; cases.len() + 1];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into our buffer.
        let n = unsafe { libc::read(fds[0], buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    let mut status = 0;
    // SAFETY: reaping our child; closing our read end.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::close(fds[0]);
    }
    assert_eq!(got, buf.len(), "child died");
    assert_eq!(buf[0], 1, "applying the plan failed in the child");
    buf[1..].iter().map(|b| *b == 1).collect()
}

fn try_op(op: Op, path: &CString) -> bool {
    // SAFETY: plain syscalls on a valid C string.
    unsafe {
        match op {
            Op::Read => {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                if fd >= 0 {
                    libc::close(fd);
                }
                fd >= 0
            }
            Op::Write => {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
                if fd >= 0 {
                    libc::close(fd);
                }
                fd >= 0
            }
            Op::Create => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                    0o644,
                );
                if fd >= 0 {
                    libc::close(fd);
                    libc::unlink(path.as_ptr());
                }
                fd >= 0
            }
            Op::Exec => {
                let pid = libc::fork();
                if pid == 0 {
                    let argv0 = c"true";
                    let argv = [argv0.as_ptr(), std::ptr::null()];
                    let envp = [std::ptr::null()];
                    libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                    libc::_exit(99);
                }
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0
            }
        }
    }
}

/// The plan with its filesystem rules moved under `root` and only the
/// Landlock part kept (the filesystem is what is compared here).
fn rooted(plan: &Plan, root: &Path) -> Plan {
    let mut p = plan.clone();
    p.capabilities = None;
    p.sockets = None;
    if let Some(ll) = &mut p.landlock {
        for r in &mut ll.fs {
            r.path = root
                .join(r.path.trim_start_matches('/'))
                .display()
                .to_string();
        }
    }
    p
}

#[test]
fn landlock_never_exceeds_apparmor_on_the_corpus() {
    let abi = host::landlock_abi();
    assert!(
        abi >= 6,
        "Landlock ABI {abi} on this kernel; ABI 6+ is required (not skipping)"
    );
    let include = shared().join("oracles/apparmor/simple_tests");
    let opts = armorlet_apparmor::ParseOptions {
        include_dirs: vec![include.clone()],
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut checked, mut tighter) = (0usize, 0usize);
    let mut both: BTreeMap<String, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    let scratch = tempfile::tempdir_in("/tmp").expect("tempdir");
    let elf = tiny_elf();
    for (i, file) in corpus().iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let (policy, diags) =
            armorlet_apparmor::parse_str(&text, &file.display().to_string(), &opts);
        if diags
            .iter()
            .any(|d| d.severity == armorlet_apparmor::Severity::Error)
        {
            *counts.entry("not accepted by our parser").or_default() += 1;
            continue;
        }
        for (j, profile) in policy.profiles.iter().enumerate() {
            let t = match translate(profile, false) {
                Ok(t) => {
                    *counts.entry("exact").or_default() += 1;
                    t
                }
                Err(_) => match translate(profile, true) {
                    Ok(t) => {
                        *counts.entry("approximated").or_default() += 1;
                        t
                    }
                    Err(_) => {
                        *counts.entry("refused").or_default() += 1;
                        continue;
                    }
                },
            };
            let Ok(ev) = Evaluator::new(profile) else {
                continue;
            };
            let root = scratch.path().join(format!("t{i}_{j}"));
            let cases = build(&root, &paths_of(profile), &elf);
            let got = confined_results(&rooted(&t.plan, &root), &root, &cases);
            for (c, landlock_ok) in cases.iter().zip(got) {
                let aa_ok = aa_allows(&ev, c);
                checked += 1;
                if landlock_ok && !aa_ok {
                    violations.push(format!(
                        "{}: {}: {:?} {}",
                        file.display(),
                        profile.name,
                        c.op,
                        c.path
                    ));
                }
                if aa_ok && !landlock_ok {
                    tighter += 1;
                }
                if aa_ok && landlock_ok {
                    *both.entry(format!("{:?}", c.op)).or_default() += 1;
                }
            }
            let _ = std::fs::remove_dir_all(&root);
        }
    }
    println!(
        "corpus profiles: exact {}, approximated {}, refused {}; files not accepted by our parser {}",
        counts.get("exact").unwrap_or(&0),
        counts.get("approximated").unwrap_or(&0),
        counts.get("refused").unwrap_or(&0),
        counts.get("not accepted by our parser").unwrap_or(&0)
    );
    println!("requests checked {checked}; denied by Landlock but allowed by AppArmor {tighter}; violations {}", violations.len());
    println!("allowed by both, per operation: {both:?}");
    for op in ["Read", "Write", "Create", "Exec"] {
        assert!(
            both.get(op).copied().unwrap_or(0) > 10,
            "too few allowed {op} requests: the check would be vacuous"
        );
    }
    assert!(counts.get("exact").unwrap_or(&0) + counts.get("approximated").unwrap_or(&0) > 100);
    assert!(checked > 1000, "too few requests checked: {checked}");
    assert!(
        violations.is_empty(),
        "Landlock allowed what AppArmor denies:\n{}",
        violations.join("\n")
    );
}
