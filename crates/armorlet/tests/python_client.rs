//! The API server through the Python `kubernetes` client (issue 5's acceptance: the kubectl
//! scenarios pass with it too): testdata/python/client_scenarios.py, run by the client release
//! that matches Kubernetes 1.32, which `scripts/install-deps` installs from PyPI into
//! `/opt/armorlet/pyclient`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PYTHON: &str = "/opt/armorlet/pyclient/bin/python";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn python_kubernetes_client_scenarios() {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run scripts/install-deps (it installs the Python kubernetes client)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_armorlet"))
        .args([
            "up",
            "--nodes",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let kubeconfig = first
        .strip_prefix("export KUBECONFIG=")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let out = Command::new(PYTHON)
        .arg(repo().join("testdata/python/client_scenarios.py"))
        .arg(&kubeconfig)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client scenarios failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .collect();
    assert_eq!(
        passed,
        [
            "version",
            "create namespace",
            "create pod",
            "get and list",
            "strategic merge patch",
            "not found",
            "invalid",
            "already exists",
            "watch",
            "optimistic concurrency",
            "pagination",
        ]
    );
}
