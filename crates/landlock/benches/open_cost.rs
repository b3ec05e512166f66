//! Landlock's cost on the path it mediates: `open(2)` + `close(2)` of a file in a process
//! confined by the plan of an AppArmor profile (translated and applied as the confine helper
//! applies it) against the same loop in an unconfined process; interleaved, in forked
//! children, min and median of the runs. Prints figures, asserts nothing about time.
//! `cargo bench -p armorlet-landlock --bench open_cost` (`-- --quick`: a few runs).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::time::Instant;

/// Reads everywhere, writes under /tmp: the file opened is inside a rule (path walk through
/// the ruleset's layers), as a confined container's reads are.
const PROFILE: &str = "profile bench-open {\n  /** r,\n  /tmp/** rw,\n}\n";

/// ns per open+close in a forked child, confined by `plan` when given.
fn run(path: &CString, plan: Option<&armorlet_landlock::Plan>, calls: u32) -> f64 {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) into a two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: the child only applies the plan, runs the loop, writes and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        if let Some(plan) = plan {
            if armorlet_landlock::plan::apply(plan).is_err() {
                unsafe { libc::_exit(3) };
            }
        }
        let t = Instant::now();
        for _ in 0..calls {
            // SAFETY: a valid C string; the fd is closed at once.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                unsafe { libc::_exit(4) };
            }
            unsafe { libc::close(fd) };
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(calls);
        let out = ns.to_le_bytes();
        // SAFETY: writes 8 bytes from a live buffer, then exits without unwinding.
        unsafe {
            libc::write(fds[1], out.as_ptr().cast(), out.len());
            libc::_exit(0)
        };
    }
    // SAFETY: the parent closes its copy of the write end and owns the read end.
    unsafe { libc::close(fds[1]) };
    let mut reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut buf = [0u8; 8];
    let read = reader.read_exact(&mut buf);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        read.is_ok() && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the benchmark child failed (status {status}): Landlock could not be applied or the open failed"
    );
    f64::from_le_bytes(buf)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (runs, calls) = if quick { (3, 2_000) } else { (21, 200_000) };
    let (policy, diags) = armorlet_apparmor::parse_str(PROFILE, "bench-open", &Default::default());
    assert!(diags.is_empty(), "{diags:?}");
    let translation =
        armorlet_landlock::translate(&policy.profiles[0], false).expect("an exact translation");
    let plan = translation.plan;
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let path = CString::new(file.to_str().unwrap()).unwrap();
    let (mut free, mut confined) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        free.push(run(&path, None, calls));
        confined.push(run(&path, Some(&plan), calls));
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let (free_min, free_med) = stats(&mut free);
    let (conf_min, conf_med) = stats(&mut confined);
    println!(
        "open(2)+close(2) of {}: ns per call, min (median) of {runs} runs x {calls} calls",
        file.display()
    );
    println!("  unconfined              {free_min:8.1} ({free_med:8.1})");
    println!(
        "  Landlock ({:>2} rules)    {conf_min:8.1} ({conf_med:8.1})",
        plan.landlock.as_ref().map_or(0, |l| l.fs.len())
    );
    println!(
        "  ratio confined/unconfined {:.2} (medians: {:.2}); added per open {:.1} ns",
        conf_min / free_min,
        conf_med / free_med,
        conf_med - free_med
    );
}
