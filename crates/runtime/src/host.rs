//! Host preparation: finding the OCI runtime binary, its version, the
//! cgroup hierarchy crun needs, and the runtime's directories.

use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::types::{RuntimeConfig, RuntimeKind};
use crate::util;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where crun looks for the v1 hugetlb hierarchy on hybrid hosts.
const HUGETLB_V1: &str = "/sys/fs/cgroup/hugetlb";
/// The cgroup2 mount of a hybrid (v1 + unified) host.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// Builds a [`Runtime`]: binary, version, host preparation, directories.
pub(crate) fn new_runtime(cfg: RuntimeConfig) -> Result<Runtime, RuntimeError> {
    let binary = match &cfg.binary {
        Some(b) => b.clone(),
        None => find_on_path(cfg.kind.name()).ok_or_else(|| {
            RuntimeError::Binary(format!("{} not found on PATH", cfg.kind.name()))
        })?,
    };
    let version = read_version(cfg.kind, &binary, cfg.request_timeout)?;
    if cfg.kind == RuntimeKind::Crun {
        prepare_hybrid_cgroups_for_crun()?;
    }
    for dir in [&cfg.state_root, &cfg.containers_dir, &cfg.sandboxes_dir] {
        std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io(dir, e))?;
    }
    Ok(Runtime {
        cfg,
        binary,
        version,
    })
}

/// The first executable `name` in `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `crun://1.8.1` from `crun version 1.8.1`; build metadata (`+ds1`) dropped.
fn read_version(
    kind: RuntimeKind,
    binary: &Path,
    timeout: std::time::Duration,
) -> Result<String, RuntimeError> {
    let out = crate::invoke::call(Command::new(binary).arg("--version"), "--version", timeout)
        .map_err(|e| {
            let e = match e {
                crate::invoke::CallError::Failed(m) => m,
                crate::invoke::CallError::DeadlineExceeded => {
                    format!("--version: {}", crate::invoke::DEADLINE_EXCEEDED)
                }
            };
            RuntimeError::Binary(format!("{}: {e}", binary.display()))
        })?;
    parse_version(kind, &out).ok_or_else(|| {
        RuntimeError::Binary(format!(
            "{}: unexpected --version output {:?}",
            binary.display(),
            out.lines().next().unwrap_or("")
        ))
    })
}

pub(crate) fn parse_version(kind: RuntimeKind, out: &str) -> Option<String> {
    let first = out.lines().next()?;
    let v = first
        .strip_prefix(kind.name())?
        .trim()
        .strip_prefix("version")?
        .trim();
    let v = v.split('+').next()?.split_whitespace().next()?;
    Some(format!("{}://{v}", kind.name()))
}

/// crun 1.8 refuses hybrid hosts ("cgroups in hybrid mode not supported")
/// unless a v1 hugetlb hierarchy is mounted; measured on this host, so we
/// mount it when cgroup2 sits at `/sys/fs/cgroup/unified` and hugetlb is missing.
fn prepare_hybrid_cgroups_for_crun() -> Result<(), RuntimeError> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let hugetlb = Path::new(HUGETLB_V1);
    if !util::is_mount_point(Path::new(UNIFIED)) || util::is_mount_point(hugetlb) {
        return Ok(());
    }
    std::fs::create_dir_all(hugetlb).map_err(|e| RuntimeError::io(hugetlb, e))?;
    rustix::mount::mount(
        "cgroup",
        hugetlb,
        "cgroup",
        rustix::mount::MountFlags::empty(),
        c"hugetlb",
    )
    .map_err(|e| RuntimeError::io(hugetlb, e.into()))?;
    tracing::info!("mounted the cgroup v1 hugetlb hierarchy at {HUGETLB_V1} for crun");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version(RuntimeKind::Crun, "crun version 1.8.1\ncommit: f8a\n").as_deref(),
            Some("crun://1.8.1")
        );
        assert_eq!(
            parse_version(RuntimeKind::Runc, "runc version 1.1.5+ds1\ncommit: x\n").as_deref(),
            Some("runc://1.1.5")
        );
        assert_eq!(parse_version(RuntimeKind::Runc, "crun version 1"), None);
    }
}
