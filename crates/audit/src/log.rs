//! The node audit log (`D/nodes/<node>/audit.log`): appending lines and reading them back
//! filtered by pod, optionally following growth like `tail -f`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::attribution::{container_id_of, Attribute};
use crate::{AuditError, SeccompRecord};

/// How often followed logs are polled for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Which lines to show: all when both fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFilter {
    /// Only this pod namespace.
    pub namespace: Option<String>,
    /// Only this pod name.
    pub pod: Option<String>,
}

impl PodFilter {
    /// Whether a log line's `pod=NS/NAME` matches (unattributed lines match only the empty filter).
    pub fn matches(&self, line: &str) -> bool {
        if self.namespace.is_none() && self.pod.is_none() {
            return true;
        }
        let Some(owner) = line.split(' ').find_map(|t| t.strip_prefix("pod=")) else {
            return false;
        };
        let Some((ns, name)) = owner.split_once('/') else {
            return false;
        };
        self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.pod.as_deref().is_none_or(|p| p == name)
    }
}

/// `SECCOMP_RET_LOG`: the `code=` of a syscall a complain-mode profile let through.
const RET_LOG: &str = "code=0x7ffc0000";

/// The names of the syscalls that lines of `text` (node audit log lines) record
/// as logged by a `SCMP_ACT_LOG` action, for the pods `filter` selects and, when
/// given, only `container`: what a complain-mode profile would have denied.
pub fn logged_syscalls(
    text: &str,
    filter: &PodFilter,
    container: Option<&str>,
) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| filter.matches(l))
        .filter(|l| l.split(' ').any(|t| t == RET_LOG))
        .filter(|l| {
            container.is_none_or(|c| {
                l.split(' ')
                    .any(|t| t.strip_prefix("container=") == Some(c))
            })
        })
        .filter_map(|l| l.split(' ').find_map(|t| t.strip_prefix("syscall_name=")))
        .map(str::to_owned)
        .collect()
}

/// The node audit log files.
#[derive(Debug, Clone, Copy)]
pub struct AuditLog;

impl AuditLog {
    /// Appends one line (a newline is added) to the log at `path`, creating it (and its directory).
    pub fn append(path: &Path, line: &str) -> Result<(), AuditError> {
        let io = |error| AuditError::Io {
            path: path.to_path_buf(),
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let mut bytes = line.trim_end_matches('\n').as_bytes().to_vec();
        bytes.push(b'\n');
        file.write_all(&bytes).map_err(io)
    }

    /// Appends a record's line to the node log at `path` when `attribute` places its process
    /// in one of the node's containers; returns whether it did. This is the node agent's
    /// loop body: `loop { AuditLog::record(&log, &reader.next_record()?, host, &attr)?; }`.
    pub fn record(
        path: &Path,
        rec: &SeccompRecord,
        hostname: &str,
        attribute: &dyn Attribute,
    ) -> Result<bool, AuditError> {
        let Some(owner) = container_id_of(rec.pid).and_then(|id| attribute.owner(&id)) else {
            return Ok(false);
        };
        AuditLog::append(path, &rec.log_line(hostname, Some(&owner)))?;
        Ok(true)
    }

    /// Writes the lines of `paths` matching `filter` to `out`, file after file; with `follow`,
    /// then keeps polling all of them for new lines until `out` fails (e.g. a closed pipe).
    /// Missing files count as empty (they may appear later when following).
    pub fn read_filtered(
        paths: &[PathBuf],
        filter: &PodFilter,
        follow: bool,
        out: &mut dyn Write,
    ) -> Result<(), AuditError> {
        let mut tails: Vec<Tail> = paths
            .iter()
            .map(|p| Tail {
                path: p.clone(),
                offset: 0,
                partial: String::new(),
            })
            .collect();
        loop {
            for tail in &mut tails {
                for line in tail.new_lines()? {
                    if filter.matches(&line)
                        && writeln!(out, "{line}").and_then(|()| out.flush()).is_err()
                    {
                        return Ok(());
                    }
                }
            }
            if !follow {
                return Ok(());
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// A file read incrementally.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    /// The complete lines added since the last call.
    fn new_lines(&mut self) -> Result<Vec<String>, AuditError> {
        let io = |error| AuditError::Io {
            path: self.path.clone(),
            error,
        };
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        if len < self.offset {
            self.offset = 0; // truncated or replaced: start over
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let complete = match self.partial.rfind('\n') {
            Some(i) => self.partial.drain(..=i).collect::<String>(),
            None => return Ok(Vec::new()),
        };
        Ok(complete.lines().map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_namespace_and_pod() {
        let line = "Jul  6 15:37:40 h kernel: [ 1.000000] audit: type=1326 audit(1.0:1): pid=1 syscall_name=openat pod=default/audit-pod container=c";
        let f = |ns: Option<&str>, pod: Option<&str>| PodFilter {
            namespace: ns.map(Into::into),
            pod: pod.map(Into::into),
        };
        assert!(f(None, None).matches(line));
        assert!(f(Some("default"), None).matches(line));
        assert!(f(None, Some("audit-pod")).matches(line));
        assert!(!f(Some("kube-system"), Some("audit-pod")).matches(line));
        assert!(!f(None, Some("audit")).matches(line));
        assert!(!f(None, Some("x")).matches("no owner"));
    }

    #[test]
    fn logged_syscalls_are_the_complain_modes_would_be_denials() {
        let text = "\
a: type=1326 audit(1.0:1): syscall=83 code=0x7ffc0000 syscall_name=mkdir pod=default/p container=c
a: type=1326 audit(1.0:2): syscall=0 code=0x7fff0000 syscall_name=read pod=default/p container=c
a: type=1326 audit(1.0:3): syscall=84 code=0x7ffc0000 syscall_name=rmdir pod=default/p container=side
a: type=1326 audit(1.0:4): syscall=85 code=0x7ffc0000 syscall_name=creat pod=default/other container=c
";
        let f = PodFilter {
            namespace: Some("default".into()),
            pod: Some("p".into()),
        };
        let names = |c| logged_syscalls(text, &f, c).into_iter().collect::<Vec<_>>();
        assert_eq!(names(None), ["mkdir", "rmdir"]);
        assert_eq!(names(Some("c")), ["mkdir"]);
    }

    #[test]
    fn append_then_read_back() {
        let dir = std::env::temp_dir().join(format!("armorlet-audit-log-{}", std::process::id()));
        let path = dir.join("n1/audit.log");
        AuditLog::append(&path, "a pod=ns/p1 container=c").unwrap();
        AuditLog::append(&path, "b pod=ns/p2 container=c").unwrap();
        let mut out = Vec::new();
        let filter = PodFilter {
            namespace: None,
            pod: Some("p2".into()),
        };
        AuditLog::read_filtered(&[path, dir.join("missing.log")], &filter, false, &mut out)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "b pod=ns/p2 container=c\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
