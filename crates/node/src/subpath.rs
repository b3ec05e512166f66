//! `volumeMounts[].subPath` without symlink escapes (CVE-2017-1002101, CVE-2021-25741).
//!
//! A container can put a symlink into a writable volume (`ln -s / /data/x`); a later
//! container mounting `subPath: x` must not get the host's `/`, and a container swapping a
//! directory for a symlink while the node prepares the mount must not win the race. As the
//! kubelet does (`pkg/volume/util/subpath/subpath_linux.go`: `doBindSubPath` opens the path
//! component by component without following symlinks out of the volume, then bind-mounts
//! `/proc/<pid>/fd/<fd>`), the node opens the subPath beneath the volume with `openat2`
//! (`RESOLVE_BENEATH`: symlinks that stay inside the volume are followed, anything leaving it
//! fails), bind-mounts that open file into a staging path of its own
//! (`D/nodes/N/pods/<uid>/volume-subpaths/<container>/<index>`, outside every volume) and
//! hands the staging path to the OCI runtime. The runtime copies the mount into the
//! container's mount namespace at `create`, so the staging mount is removed right after.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

/// Staging mounts of one container's creation; unmounted and removed on drop.
#[derive(Debug, Default)]
pub struct Staged {
    paths: Vec<PathBuf>,
}

impl Staged {
    /// Bind-mounts `sub` of `volume` at `staging` (created as a file or a directory, like
    /// the target). A subPath that does not exist is created as a directory beneath the
    /// volume, as the kubelet's `SafeMakeDir` does.
    pub fn stage(&mut self, volume: &Path, sub: &str, staging: &Path) -> Result<(), String> {
        let root = rustix::fs::open(
            volume,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("{}: {e}", volume.display()))?;
        let beneath = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let open = || {
            rustix::fs::openat2(
                root.as_fd(),
                sub,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                beneath,
            )
        };
        let fd = match open() {
            Err(rustix::io::Errno::NOENT) => {
                make_dirs_beneath(&root, sub)?;
                open()
            }
            other => other,
        }
        .map_err(|e| describe(sub, volume, e))?;
        let is_dir = rustix::fs::fstat(&fd)
            .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
            .map_err(|e| format!("{sub}: {e}"))?;
        // A staging path left by an agent that died mid-creation.
        let _ = rustix::mount::unmount(staging, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(staging).or_else(|_| std::fs::remove_file(staging));
        if let Some(parent) = staging.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let made = if is_dir {
            std::fs::create_dir(staging)
        } else {
            std::fs::File::create(staging).map(drop)
        };
        made.map_err(|e| format!("{}: {e}", staging.display()))?;
        self.paths.push(staging.to_owned());
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::mount::mount_bind_recursive(proc_path.as_str(), staging)
            .map_err(|e| format!("bind {sub:?} at {}: {e}", staging.display()))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for p in self.paths.drain(..).rev() {
            let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
            // Only the empty mount point: never a recursive removal through a mount.
            let _ = std::fs::remove_dir(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
}

/// Unmounts (lazily) every mount at or beneath `dir`, deepest first, so a recursive removal
/// of `dir` cannot cross into what they show.
pub fn unmount_beneath(dir: &Path) {
    // Mount points are resolved paths: `dir` reached through a symlink is resolved first.
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return;
    };
    let mut points: Vec<PathBuf> = armorlet_runtime::mount_points()
        .into_iter()
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Err(e) = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH) {
            tracing::warn!(path = %p.display(), error = %e, "cannot unmount");
        }
    }
}

/// Creates the missing directories of `sub` beneath `root`, never following a symlink out.
fn make_dirs_beneath(root: &impl AsFd, sub: &str) -> Result<(), String> {
    let mut dir = rustix::fs::openat(
        root,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{sub}: {e}"))?;
    for part in sub.split('/').filter(|p| !p.is_empty() && *p != ".") {
        match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("{sub}: mkdir {part}: {e}")),
        }
        dir = rustix::fs::openat2(
            &dir,
            part,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| describe(sub, Path::new(part), e))?;
    }
    Ok(())
}

fn describe(sub: &str, volume: &Path, e: rustix::io::Errno) -> String {
    match e {
        // openat2 with RESOLVE_BENEATH: the path (or a symlink in it) leaves the volume.
        rustix::io::Errno::XDEV => {
            format!(
                "subpath {sub:?} not within volume path {:?}",
                volume.display().to_string()
            )
        }
        rustix::io::Errno::LOOP => format!("subpath {sub:?}: a symlink where none is allowed"),
        e => format!("subpath {sub:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::Staged;

    #[test]
    fn symlinks_out_of_the_volume_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let vol = d.path().join("vol");
        std::fs::create_dir_all(vol.join("inside/dir")).unwrap();
        std::os::unix::fs::symlink("/", vol.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../", vol.join("inside/up")).unwrap();
        std::os::unix::fs::symlink("inside/dir", vol.join("ok")).unwrap();
        let mut s = Staged::default();
        for bad in ["evil", "evil/etc", "inside/up", "inside/up/x"] {
            let e = s
                .stage(
                    &vol,
                    bad,
                    &d.path().join("stage").join(bad.replace('/', "_")),
                )
                .expect_err(bad);
            assert!(e.contains("not within volume path"), "{bad}: {e}");
        }
        assert!(!d.path().join("x").exists(), "nothing created outside");
        assert!(
            rustix::process::geteuid().is_root(),
            "the node's tests run as root (bind mounts)"
        );
        // A symlink that stays inside is followed; a missing subPath becomes a directory.
        let staging = d.path().join("stage/ok");
        s.stage(&vol, "ok", &staging).unwrap();
        std::fs::write(vol.join("inside/dir/f"), "x").unwrap();
        assert_eq!(std::fs::read_to_string(staging.join("f")).unwrap(), "x");
        s.stage(&vol, "new/sub", &d.path().join("stage/new"))
            .unwrap();
        assert!(vol.join("new/sub").is_dir());
        // What a dead agent leaves: a staging mount; it is unmounted before any removal.
        let mut left = Staged::default();
        let stale = d.path().join("stage/left");
        left.stage(&vol, "inside", &stale).unwrap();
        std::mem::forget(left);
        // Through a symlink to the directory, as when the data directory is one.
        std::os::unix::fs::symlink(d.path().join("stage"), d.path().join("stage-link")).unwrap();
        super::unmount_beneath(&d.path().join("stage-link"));
        assert!(!stale.join("dir").exists(), "no longer shows the volume");
        drop(s);
        assert!(!staging.exists(), "unmounted and removed");
        assert_eq!(
            std::fs::read_to_string(vol.join("inside/dir/f")).unwrap(),
            "x"
        );
    }
}
