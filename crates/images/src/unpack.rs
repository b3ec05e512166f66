//! Applying one layer tar onto a root directory, safely.
//!
//! Hand-written instead of `tar::Entry::unpack_in` because layers need OCI whiteouts,
//! overlay-style replacement of lower entries, symlink resolution *scoped to the root* for
//! parent directories (an absolute or `..` symlink from a lower layer must never lead a write
//! outside the root), refusal of device nodes, and exact modes (setuid kept only when the
//! layer has it: owner is set before the mode, since chown clears setuid).

use std::collections::{HashSet, VecDeque};
use std::ffi::{CString, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use tar::EntryType;

use crate::archive::{expect_digest, maybe_gunzip, HashingReader};
use crate::store::remove_any;
use crate::ImageError;
use sha2::Digest;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
/// Symlinks followed while resolving one path (as the kernel's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// Applies the layer blob at `blob` (plain or gzip tar) onto `root`; what was read,
/// uncompressed, must have the digest `diff_id` (the whole stream, also what follows the
/// tar's end).
pub(crate) fn apply_layer(
    blob: &Path,
    digest: &str,
    diff_id: &str,
    root: &Path,
) -> Result<(), ImageError> {
    let mut archive = tar::Archive::new(HashingReader {
        inner: maybe_gunzip(File::open(blob).map_err(ImageError::io(blob))?, blob)?,
        hasher: sha2::Sha256::new(),
    });
    let mut layer = Layer {
        root,
        digest,
        written: HashSet::new(),
        chown: running_as_root(),
    };
    for entry in archive.entries().map_err(ImageError::io(blob))? {
        let mut entry = entry.map_err(ImageError::io(blob))?;
        layer.apply(&mut entry)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(ImageError::io(blob))?;
    expect_digest(
        &format!("uncompressed layer {digest}"),
        diff_id,
        &rest.digest(),
    )
}

/// True when running as root (ownership from the layer is applied only then).
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

struct Layer<'a> {
    root: &'a Path,
    digest: &'a str,
    /// Root-relative paths this layer has written (an opaque whiteout keeps them).
    written: HashSet<PathBuf>,
    chown: bool,
}

impl Layer<'_> {
    fn apply<R: io::Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), ImageError> {
        let raw = entry
            .path()
            .map_err(ImageError::io(self.root))?
            .into_owned();
        let rel = self.clean(&raw)?;
        let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Ok(()); // the root itself ("./")
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = self.resolve(parent_rel)?;
        if name == OPAQUE {
            return self.opaque(&parent, parent_rel);
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            // `.wh..` and `.wh...` would remove the directory itself or its parent: with the
            // whiteout at the top, the directory of every image's root.
            if matches!(hidden, "" | "." | "..") {
                return Err(
                    self.unsafe_entry(&raw, "a whiteout must name an entry of its directory")
                );
            }
            return remove_any(&parent.join(hidden));
        }
        fs::create_dir_all(&parent).map_err(ImageError::io(&parent))?;
        let path = parent.join(&name);
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(ImageError::io(&path))? & 0o7777;
        let uid = header.uid().map_err(ImageError::io(&path))? as u32;
        let gid = header.gid().map_err(ImageError::io(&path))? as u32;
        let mtime = header.mtime().unwrap_or(0);
        match kind {
            EntryType::Directory => self.directory(&path, mode, uid, gid)?,
            EntryType::Regular | EntryType::Continuous => {
                self.file(entry, &path, mode, uid, gid, mtime)?
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(ImageError::io(&path))?
                    .unwrap_or_default()
                    .into_owned();
                remove_any(&path)?;
                std::os::unix::fs::symlink(&target, &path).map_err(ImageError::io(&path))?;
                self.own(&path, uid, gid)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(ImageError::io(&path))?
                    .unwrap_or_default()
                    .into_owned();
                let target_rel = self.clean(&target)?;
                let source = self.resolve(target_rel.parent().unwrap_or(Path::new("")))?;
                let source = source.join(target_rel.file_name().unwrap_or_default());
                remove_any(&path)?;
                fs::hard_link(&source, &path).map_err(|e| {
                    // Name the missing target, not the link being made.
                    let missing = fs::symlink_metadata(&source).is_err();
                    ImageError::io(if missing { &source } else { &path })(e)
                })?;
            }
            EntryType::Fifo => {
                remove_any(&path)?;
                mkfifo(&path)?;
                self.own(&path, uid, gid)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(ImageError::io(&path))?;
            }
            EntryType::Char | EntryType::Block => {
                return Err(self.unsafe_entry(&raw, "device nodes are not allowed in image layers"))
            }
            _ => return Ok(()), // pax/GNU metadata entries are consumed by the tar crate; others carry no files
        }
        self.written.insert(rel);
        Ok(())
    }

    fn directory(&self, path: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), ImageError> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                remove_any(path)?;
                fs::create_dir(path).map_err(ImageError::io(path))?;
            }
            Err(_) => fs::create_dir(path).map_err(ImageError::io(path))?,
        }
        self.own(path, uid, gid)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(ImageError::io(path))
    }

    fn file<R: io::Read>(
        &self,
        entry: &mut R,
        path: &Path,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: u64,
    ) -> Result<(), ImageError> {
        remove_any(path)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(path)
            .map_err(ImageError::io(path))?;
        io::copy(entry, &mut file).map_err(ImageError::io(path))?;
        if self.chown {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(ImageError::io(path))?;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(ImageError::io(path))?;
        file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
            .map_err(ImageError::io(path))
    }

    fn own(&self, path: &Path, uid: u32, gid: u32) -> Result<(), ImageError> {
        if self.chown {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(ImageError::io(path))?;
        }
        Ok(())
    }

    /// Removes what lower layers put in a directory (entries of this layer stay).
    fn opaque(&self, dir: &Path, dir_rel: &Path) -> Result<(), ImageError> {
        let Ok(children) = fs::read_dir(dir) else {
            return Ok(());
        };
        for child in children {
            let child = child.map_err(ImageError::io(dir))?;
            if !self.written.contains(&dir_rel.join(child.file_name())) {
                remove_any(&child.path())?;
            }
        }
        Ok(())
    }

    /// Normalizes an entry path; refuses `..` components.
    fn clean(&self, path: &Path) -> Result<PathBuf, ImageError> {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(self.unsafe_entry(path, "'..' in a layer path"));
                }
            }
        }
        Ok(out)
    }

    /// Resolves a root-relative directory path, following symlinks as if `root` were `/`
    /// (absolute targets restart at the root, `..` stops at the root).
    fn resolve(&self, rel: &Path) -> Result<PathBuf, ImageError> {
        let mut pending: VecDeque<OsString> = rel.iter().map(OsString::from).collect();
        let mut stack: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            match c.as_bytes() {
                b"" | b"." | b"/" => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let here: PathBuf = self
                .root
                .iter()
                .chain(stack.iter().map(|s| s.as_os_str()))
                .collect::<PathBuf>()
                .join(&c);
            match fs::symlink_metadata(&here) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(self.unsafe_entry(rel, "too many levels of symbolic links"));
                    }
                    let target = fs::read_link(&here).map_err(ImageError::io(&here))?;
                    if target.is_absolute() {
                        stack.clear();
                    }
                    for part in target.iter().rev() {
                        pending.push_front(part.to_os_string());
                    }
                }
                _ => stack.push(c),
            }
        }
        Ok(self
            .root
            .iter()
            .chain(stack.iter().map(|s| s.as_os_str()))
            .collect())
    }

    fn unsafe_entry(&self, entry: &Path, reason: &str) -> ImageError {
        ImageError::UnsafeLayer {
            layer: self.digest.into(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }
}

fn mkfifo(path: &Path) -> Result<(), ImageError> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| ImageError::io(path)(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(ImageError::io(path)(io::Error::last_os_error()));
    }
    Ok(())
}
