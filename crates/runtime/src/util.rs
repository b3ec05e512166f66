//! Small helpers: id checks, state files replaced whole, running the OCI runtime.

use crate::error::RuntimeError;
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Refuses anything but 64 lowercase hex characters (ids become paths).
pub(crate) fn check_id(id: &str) -> Result<(), RuntimeError> {
    if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(RuntimeError::Invalid(format!(
            "container id {id:?} is not 64 lowercase hex characters"
        )))
    }
}

/// Refuses names that could escape a directory (pod UIDs become paths).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), RuntimeError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::Invalid(format!(
            "{what} {name:?} is not a valid name"
        )))
    }
}

/// Writes `value` as JSON to `path` with [`write_state`].
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), RuntimeError> {
    let data = serde_json::to_vec_pretty(value).map_err(|source| RuntimeError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_state(path, &data)
}

/// Replaces `path` with `data` through a temp file and a rename: a reader sees the old or
/// the new content, never a part of it, even when the writer dies half-way; on failure
/// (e.g. the filesystem is full) `path` is unchanged and the temp file removed.
///
/// Not synced to disk. This is the node's runtime state (bundles, sandbox files, status
/// records, pid files), which describes processes that a power loss ends anyway, and each
/// `fsync` cost a pod's start one to eight milliseconds here. containerd and the kubelet
/// write theirs the same way (`os.WriteFile`, no sync: containerd's runtime/v2 bundle
/// `config.json`, the kubelet's managed `/etc/hosts`). After a power loss such a file can
/// be empty; its readers treat it as unreadable (a container whose `spec.json` cannot be
/// read is not listed, a `status.json` that cannot be read is an empty record).
pub(crate) fn write_state(path: &Path, data: &[u8]) -> Result<(), RuntimeError> {
    replace(path, data, false)
}

/// As [`write_state`], and synced before the rename: for what the user keeps (a recorded
/// profile), which must survive a power loss whole.
pub(crate) fn write_durable(path: &Path, data: &[u8]) -> Result<(), RuntimeError> {
    replace(path, data, true)
}

fn replace(path: &Path, data: &[u8], sync: bool) -> Result<(), RuntimeError> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(data)?;
            if sync {
                f.sync_all()?;
            }
            Ok(())
        })
        .map_err(|e| RuntimeError::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads a JSON file.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, RuntimeError> {
    let data = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RuntimeError::NotFound(path.display().to_string())
        } else {
            RuntimeError::io(path, e)
        }
    })?;
    serde_json::from_slice(&data).map_err(|source| RuntimeError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `cmd`, returning its stdout, or its trimmed stderr as the error text.
pub(crate) fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut msg = clean_message(&String::from_utf8_lossy(&out.stderr));
        if msg.is_empty() {
            msg = format!("{:?} exited with {}", cmd.get_program(), out.status);
        }
        Err(msg)
    }
}

/// The mount points of this mount namespace (`/proc/self/mountinfo`, unescaped): resolved
/// paths, as the kernel names them. Empty when mountinfo cannot be read.
pub fn mount_points() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| PathBuf::from(unescape_mountinfo(mp)))
        .collect()
}

/// Whether `path` is a mount point (per `/proc/self/mountinfo`).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    // mountinfo names mount points by their resolved path: a data directory reached through a
    // symlink (say `/var/lib/armorlet` → `/srv/armorlet`) must be resolved before comparing,
    // or its mounts are never seen, never unmounted, and their directories cannot be removed.
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    mount_points().contains(&real)
}

/// Undoes mountinfo's octal escapes (`\040` for a space...).
fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts `path` lazily; a path that is not mounted is fine.
pub(crate) fn unmount(path: &Path) -> Result<(), RuntimeError> {
    while is_mount_point(path) {
        rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| RuntimeError::io(path, e.into()))?;
    }
    Ok(())
}

/// The runtime's message without logrus decoration: runc prints
/// `time="..." level=error msg="text"`; we keep `text` (unescaped).
pub(crate) fn clean_message(stderr: &str) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .map(|line| match line.find(" msg=\"") {
            Some(i) if line.starts_with("time=") => {
                go_quoted(&line[i + 5..]).unwrap_or_else(|| line[i + 5..].to_string())
            }
            _ => line.to_string(),
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines.join("\n").trim().to_string()
}

/// The string value of the Go-quoted literal at the start of `s`.
fn go_quoted(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return serde_json::from_str(&s[..=i]).ok(),
            _ => i += 1,
        }
    }
    None
}

/// `eprintln!` that never panics. The monitor's (and exec supervisor's) stderr is a file in
/// the data directory, whose disk may be full: a log line that cannot be written is lost,
/// and the process carries on (`eprintln!` would panic and take the container's exit code
/// with it).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_found_through_symlinks() {
        assert!(
            rustix::process::geteuid().is_root(),
            "the runtime's tests run as root (mounts)"
        );
        let d = tempfile::tempdir().unwrap();
        let point = d.path().join("real/m");
        std::fs::create_dir_all(&point).unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("link")).unwrap();
        let through_link = d.path().join("link/m");
        assert!(!is_mount_point(&through_link));
        rustix::mount::mount(
            "t",
            &point,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            c"",
        )
        .unwrap();
        assert!(is_mount_point(&point));
        assert!(
            is_mount_point(&through_link),
            "the same mount, by a symlinked path"
        );
        unmount(&through_link).unwrap();
        assert!(!is_mount_point(&point));
        assert!(!is_mount_point(&d.path().join("missing")));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b/c"), "/a b/c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
    }

    #[test]
    fn logrus_lines_are_reduced_to_their_message() {
        assert_eq!(
            clean_message("time=\"2026-11-23T22:18:35Z\" level=error msg=\"cannot start a container that has stopped\"\n"),
            "cannot start a container that has stopped"
        );
        assert_eq!(
            clean_message("time=\"x\" level=error msg=\"a \\\"quoted\\\" word\"\n"),
            "a \"quoted\" word"
        );
        assert_eq!(clean_message("plain error\n"), "plain error");
    }
}
