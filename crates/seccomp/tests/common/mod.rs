//! Shared by the integration tests: the libseccomp oracle and the profiles.
#![allow(dead_code)]

pub mod child;

use std::path::PathBuf;
use std::process::Command;

use armorlet_seccomp::bpf::{self, SockFilter};
use armorlet_seccomp::{Arch, Profile, ResolvedProfile};

pub const PYTHON: &str = "/usr/bin/python3";

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn oracle_script() -> PathBuf {
    manifest_dir().join("tests/helpers/libseccomp_oracle.py")
}

pub fn tutorial_profile(name: &str) -> Profile {
    let path = manifest_dir().join(format!("../../testdata/tutorial/profiles/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Profile::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("armorlet-seccomp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// libseccomp's program for `resolved`, built as crun would, and the names it skipped.
/// Panics (fails the test) when python3-seccomp is missing: CI installs it.
pub fn libseccomp_bpf(resolved: &ResolvedProfile, label: &str) -> (Vec<SockFilter>, Vec<String>) {
    libseccomp_bpf_or_rejected(resolved, label)
        .unwrap_or_else(|why| panic!("libseccomp rejected the profile: {why}"))
}

/// Like [`libseccomp_bpf`], but a rule libseccomp refuses (as crun would fail
/// the container) is `Err` with libseccomp's message.
pub fn libseccomp_bpf_or_rejected(
    resolved: &ResolvedProfile,
    label: &str,
) -> Result<(Vec<SockFilter>, Vec<String>), String> {
    let json = scratch(&format!("{label}.json"));
    let out = scratch(&format!("{label}.bpf"));
    std::fs::write(&json, serde_json::to_vec(&resolved.to_profile()).unwrap()).unwrap();
    let run = Command::new(PYTHON)
        .arg(oracle_script())
        .arg("bpf")
        .arg(&json)
        .arg(&out)
        .args((resolved.native != Arch::X86_64).then_some("foreign-native"))
        .output()
        .unwrap_or_else(|e| panic!("running {PYTHON}: {e} (install python3-seccomp)"));
    if run.status.code() == Some(3) {
        let _ = std::fs::remove_file(&json);
        return Err(String::from_utf8_lossy(&run.stderr).trim().to_string());
    }
    assert!(
        run.status.success(),
        "libseccomp oracle failed (apt-get install python3-seccomp libseccomp2): {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("oracle JSON");
    let skipped = report["skipped"]
        .as_array()
        .expect("skipped list")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let prog = bpf::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&out);
    Ok((prog, skipped))
}

/// Drops rule names libseccomp does not know, so both sides compile the same rules.
pub fn without_names(resolved: &ResolvedProfile, skipped: &[String]) -> ResolvedProfile {
    let mut r = resolved.clone();
    for rule in &mut r.rules {
        rule.rule.names.retain(|n| !skipped.contains(n));
        if rule.rule.name.as_ref().is_some_and(|n| skipped.contains(n)) {
            rule.rule.name = None;
        }
    }
    r.rules.retain(|r| r.rule.all_names().next().is_some());
    r
}

pub fn remove_scratch() {
    let dir = std::env::temp_dir().join(format!("armorlet-seccomp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(dir);
}
