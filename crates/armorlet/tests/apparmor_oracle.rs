//! The AppArmor parser against its oracles (issue 3):
//!
//! - upstream's accept/reject corpus through `run-oracle`: `armorlet apparmor
//!   check` must agree with `#=EXRESULT` on at least 97% of the tests;
//! - `armorlet apparmor names` must print what `apparmor_parser -N` prints
//!   for every corpus file both accept;
//! - the stress tests must each check in under a second.
//!
//! The shared data lives in `$CARGO_MANIFEST_DIR/../../../shared` (override
//! with `ARMORLET_SHARED`). Missing data or tools fail the tests: nothing is
//! skipped silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_armorlet");

fn shared() -> PathBuf {
    let p = match std::env::var_os("ARMORLET_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    assert!(
        p.join("oracles/apparmor/run-oracle").is_file(),
        "shared oracle data not found at {} (set ARMORLET_SHARED)",
        p.display()
    );
    p
}

fn oracle_dir() -> PathBuf {
    shared().join("oracles/apparmor")
}

/// Every non-DISABLED `.sd` test, relative to `simple_tests`.
fn corpus(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|e| e == "sd") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                if !text.lines().any(|l| l.starts_with("#=DISABLED")) {
                    out.push(p.strip_prefix(root).expect("under root").to_path_buf());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn check_agrees_with_upstream_corpus() {
    let dir = oracle_dir();
    let out = Command::new(dir.join("run-oracle"))
        .arg(dir.join("simple_tests"))
        .args([
            "--",
            BIN,
            "apparmor",
            "check",
            "--include-dir",
            "simple_tests",
            "{}",
        ])
        .output()
        .expect("running run-oracle (python3 needed)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .chain(stderr.lines())
        .rfind(|l| l.starts_with("agreement:"))
        .unwrap_or_else(|| {
            panic!("no agreement line from run-oracle\nstdout:\n{stdout}\nstderr:\n{stderr}")
        })
        .to_string();
    println!("{line}");
    // agreement: A/N (P%)
    let frac = line
        .trim_start_matches("agreement:")
        .split_whitespace()
        .next()
        .expect("A/N");
    let (a, n) = frac.split_once('/').expect("A/N");
    let a: f64 = a.parse().expect("A");
    let n: f64 = n.parse().expect("N");
    assert!(n > 1000.0, "suspiciously few tests compared: {line}");
    let pct = 100.0 * a / n;
    assert!(pct >= 97.0, "agreement below 97%: {line}\n{stdout}");
}

/// A scratch `tst/` directory like run-oracle's, so quoted includes relative
/// to the working directory resolve.
fn scratch_tst(dir: &Path) -> PathBuf {
    let base = std::env::temp_dir().join(format!("armorlet-names-{}", std::process::id()));
    let tst = base.join("tst");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&tst).expect("scratch dir");
    for name in ["simple_tests", "features_files", "parser.conf"] {
        std::os::unix::fs::symlink(dir.join(name), tst.join(name)).expect("symlink");
    }
    tst
}

#[test]
fn names_agree_with_apparmor_parser() {
    let dir = oracle_dir();
    let tst = scratch_tst(&dir);
    let probe = Command::new("apparmor_parser").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "apparmor_parser not found: install it (apt-get install apparmor)"
    );
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for rel in corpus(&dir.join("simple_tests")) {
        let path = Path::new("simple_tests").join(&rel);
        let theirs = Command::new("apparmor_parser")
            .current_dir(&tst)
            .args([
                "--config-file=./parser.conf",
                "-M",
                "features_files/features.all",
                "-N",
                "-I",
                "simple_tests",
            ])
            .arg(&path)
            .stderr(Stdio::null())
            .output()
            .expect("running apparmor_parser");
        if !theirs.status.success() {
            continue;
        }
        let ours = Command::new(BIN)
            .current_dir(&tst)
            .args(["apparmor", "names", "-I", "simple_tests"])
            .arg(&path)
            .stderr(Stdio::null())
            .output()
            .expect("running armorlet");
        if !ours.status.success() {
            continue;
        }
        compared += 1;
        if theirs.stdout != ours.stdout {
            mismatches.push(format!(
                "{}:\n  apparmor_parser: {:?}\n  armorlet:        {:?}",
                rel.display(),
                String::from_utf8_lossy(&theirs.stdout),
                String::from_utf8_lossy(&ours.stdout)
            ));
        }
    }
    println!(
        "names: {} compared, {} mismatches",
        compared,
        mismatches.len()
    );
    assert!(compared > 500, "too few files accepted by both: {compared}");
    assert!(
        mismatches.is_empty(),
        "names differ:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn stress_tests_check_in_under_a_second() {
    let dir = oracle_dir();
    let st = dir.join("simple_tests");
    let mut files: Vec<PathBuf> = corpus(&st)
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.starts_with("vars/vars_stress_") || s == "regressions/ok_normalize.sd"
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "stress tests not found in {}",
        st.display()
    );
    let mut slow = Vec::new();
    for rel in files {
        let t = Instant::now();
        let out = Command::new(BIN)
            .current_dir(&dir)
            .args(["apparmor", "check", "-I", "simple_tests"])
            .arg(Path::new("simple_tests").join(&rel))
            .output()
            .expect("running armorlet");
        let took = t.elapsed();
        println!(
            "{}: {:?} (exit {:?})",
            rel.display(),
            took,
            out.status.code()
        );
        assert!(
            out.status.success(),
            "{} rejected: {}",
            rel.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        if took > Duration::from_secs(1) {
            slow.push(format!("{}: {took:?}", rel.display()));
        }
    }
    assert!(slow.is_empty(), "stress tests over one second: {slow:?}");
}
