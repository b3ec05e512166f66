//! Real kernel records: a forked child installs a `SCMP_ACT_LOG` filter (armorlet-seccomp)
//! and makes a few syscalls; the reader must see records with the child's pid, named by
//! armorlet-seccomp's tables. Needs root (CAP_AUDIT_READ, /dev/kmsg): fails loudly otherwise.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use armorlet_audit::{AuditReader, SeccompRecord, Source};
use armorlet_seccomp::resolve::ResolveContext;
use armorlet_seccomp::{load, Profile};

/// How long to wait for records before failing (a failure bound, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(20);

/// Forks a child that logs every syscall and calls getpid and openat; returns its pid.
fn logged_child() -> u32 {
    let policy = Profile::from_json(r#"{"defaultAction":"SCMP_ACT_LOG"}"#)
        .unwrap()
        .resolve(&ResolveContext::host_default())
        .policy()
        .unwrap();
    let prog = policy.compile().unwrap();
    let flags = policy.load_flags();
    let path = c"/etc/hostname";
    // SAFETY: the child only makes raw syscalls (no allocation) and exits with _exit.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            if load::install(&prog, flags, true).is_err() {
                libc::_exit(2);
            }
            libc::syscall(libc::SYS_getpid);
            let fd = libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                path.as_ptr(),
                libc::O_RDONLY,
            );
            libc::syscall(libc::SYS_close, fd);
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
        pid as u32
    }
}

/// Collects the syscall names of `pid`'s records until getpid, openat and close were seen
/// (or `patience` ran out).
fn names_for(
    reader: &mut AuditReader,
    start_child: impl FnOnce() -> u32,
    patience: Duration,
) -> (u32, BTreeSet<String>, Vec<SeccompRecord>) {
    let pid = start_child();
    let deadline = Instant::now() + patience;
    let mut names = BTreeSet::new();
    let mut records = Vec::new();
    while !["getpid", "openat", "close"]
        .iter()
        .all(|n| names.contains(*n))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(rec) = reader
            .next_record_timeout(left)
            .expect("read audit records")
        else {
            break;
        };
        if rec.pid == pid {
            names.insert(rec.syscall_name().unwrap_or("?").to_string());
            records.push(rec);
        }
    }
    (pid, names, records)
}

fn check_record(r: &SeccompRecord) {
    assert_eq!(r.code, 0x7ffc_0000, "SECCOMP_RET_LOG");
    assert_eq!(r.arch, 0xc000_003e);
    assert!(r.kernel_time_us.is_some());
    let line = r.log_line("node", None);
    assert!(
        line.contains(&format!("audit: type=1326 audit({}.", r.seconds)),
        "{line}"
    );
}

#[test]
fn records_arrive_on_the_audit_netlink_socket() {
    let mut reader = AuditReader::open().expect("open audit source");
    assert_eq!(
        reader.source(),
        Source::Netlink,
        "the audit netlink socket is unavailable (root with CAP_AUDIT_READ needed)"
    );
    let (pid, names, records) = names_for(&mut reader, logged_child, PATIENCE);
    eprintln!(
        "netlink: {} records for pid {pid}: {names:?}",
        records.len()
    );
    // The multicast group gets every record: all three syscalls must be there.
    for n in ["getpid", "openat", "close"] {
        assert!(
            names.contains(n),
            "netlink: no {n} record for pid {pid}; saw {names:?}"
        );
    }
    check_record(&records[0]);
}

/// The kernel prints audit records under `printk_ratelimit()` (10 per 5 s, shared with
/// every other process on the machine), so `/dev/kmsg` loses records: the fallback is
/// lossy by design. The test retries a few rate-limit windows until some record arrives.
#[test]
fn records_arrive_on_dev_kmsg() {
    let mut reader = AuditReader::open_kmsg().expect("open /dev/kmsg (root needed)");
    for attempt in 0..6 {
        let (pid, names, records) = names_for(&mut reader, logged_child, Duration::from_secs(6));
        eprintln!(
            "kmsg attempt {attempt}: {} records for pid {pid}: {names:?}",
            records.len()
        );
        if let Some(r) = records.first() {
            assert!(
                names
                    .iter()
                    .all(|n| ["getpid", "openat", "close", "exit_group"].contains(&n.as_str())),
                "{names:?}"
            );
            check_record(r);
            return;
        }
    }
    panic!("no seccomp record of our children reached /dev/kmsg in 6 attempts");
}
