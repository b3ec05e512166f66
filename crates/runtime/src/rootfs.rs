//! The container's root filesystem: an overlay of the image root (read-only
//! lower layer) with `upper/` and `work/` in the container directory, or, if
//! overlayfs cannot be mounted here, a copy (logged).

use crate::error::RuntimeError;
use crate::util;
use std::path::{Path, PathBuf};

/// Mounts (or copies) the rootfs under `dir/rootfs`; idempotent.
pub(crate) fn prepare(dir: &Path, image_root: &Path) -> Result<PathBuf, RuntimeError> {
    let rootfs = dir.join("rootfs");
    if !image_root.is_dir() {
        return Err(RuntimeError::Invalid(format!(
            "image root {} is not a directory",
            image_root.display()
        )));
    }
    for d in ["upper", "work", "rootfs"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(|e| RuntimeError::io(&p, e))?;
    }
    if util::is_mount_point(&rootfs) {
        return Ok(rootfs);
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        image_root.display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let data = std::ffi::CString::new(data)
        .map_err(|_| RuntimeError::Invalid("image root path contains NUL".into()))?;
    match rustix::mount::mount(
        "overlay",
        &rootfs,
        "overlay",
        rustix::mount::MountFlags::empty(),
        data.as_c_str(),
    ) {
        Ok(()) => Ok(rootfs),
        Err(e) => {
            tracing::warn!(
                "overlayfs mount for {} failed ({e}); copying the image root instead",
                rootfs.display()
            );
            copy_tree(image_root, &rootfs)?;
            Ok(rootfs)
        }
    }
}

/// Copies a tree preserving owners, modes, links and devices. `cp -a` does
/// exactly that; a hand-written walker would have to re-implement special
/// files, hard links and xattrs for a rarely used fallback.
fn copy_tree(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    let mut src = from.as_os_str().to_owned();
    src.push("/.");
    util::run(std::process::Command::new("cp").arg("-a").arg(src).arg(to))
        .map(|_| ())
        .map_err(|m| RuntimeError::Create {
            message: format!("copying {} to {}: {m}", from.display(), to.display()),
        })
}

/// Unmounts the rootfs (if mounted).
pub(crate) fn release(dir: &Path) -> Result<(), RuntimeError> {
    util::unmount(&dir.join("rootfs"))
}
