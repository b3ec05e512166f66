//! Shared by the integration tests: the tutorial images built once by `images/build`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `images/build` once per test binary into a fresh directory and returns it
/// (it holds `busybox.tar`, `http-echo.tar` and the bare `http-echo` binary).
pub fn built_images() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("armorlet-images-test-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/build");
        let res = Command::new(&script)
            .arg(&out)
            .output()
            .expect("run images/build");
        assert!(
            res.status.success(),
            "images/build failed: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let printed = String::from_utf8_lossy(&res.stdout);
        for tar in ["busybox.tar", "http-echo.tar"] {
            assert!(
                printed.contains(&format!("{}/{tar}", out.display())),
                "{printed}"
            );
        }
        out
    })
    .clone()
}
