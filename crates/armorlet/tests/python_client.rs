//! The API server through the Python `kubernetes` client (issue 5's acceptance: the kubectl
//! scenarios pass with it too): testdata/python/client_scenarios.py, run by the client release
//! that matches Kubernetes 1.32, which `scripts/install-deps` installs from PyPI into
//! `/opt/armorlet/pyclient`.

mod common;

use common::{repo, UpProcess};
use std::path::Path;
use std::process::Command;

const PYTHON: &str = "/opt/armorlet/pyclient/bin/python";

#[test]
fn python_kubernetes_client_scenarios() {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run scripts/install-deps (it installs the Python kubernetes client)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = UpProcess::control_plane(&data);
    let out = Command::new(PYTHON)
        .arg(repo().join("testdata/python/client_scenarios.py"))
        .arg(&server.kubeconfig)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    drop(server);
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
