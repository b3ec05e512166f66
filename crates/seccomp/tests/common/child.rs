//! Running code under a filter in a forked child (never in the test process).
#![allow(dead_code)]

use armorlet_seccomp::bpf::SockFilter;
use armorlet_seccomp::load;

/// Words the child writes and the parent reads (a shared anonymous mapping).
pub struct Shared {
    ptr: *mut i64,
}

pub const SLOTS: usize = 64;

impl Shared {
    pub fn new() -> Shared {
        // SAFETY: anonymous shared mapping of one page, checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        let s = Shared { ptr: p.cast() };
        for i in 0..SLOTS {
            s.set(i, i64::MIN);
        }
        s
    }

    pub fn set(&self, i: usize, v: i64) {
        assert!(i < SLOTS);
        // SAFETY: in bounds of the mapping; volatile because another process reads it.
        unsafe { self.ptr.add(i).write_volatile(v) }
    }

    pub fn get(&self, i: usize) -> i64 {
        assert!(i < SLOTS);
        // SAFETY: as above.
        unsafe { self.ptr.add(i).read_volatile() }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Signaled(i32),
}

/// Slot 0: 0 when the filter loaded, else the errno of the failed load.
pub const LOADED: usize = 0;

/// Forks; the child installs `prog` (with no_new_privs) and runs `body`, which
/// must only make raw syscalls and write to `shared`; then it `_exit`s.
pub fn run_filtered(
    prog: Option<&[SockFilter]>,
    flags: u32,
    shared: &Shared,
    body: fn(&Shared),
) -> End {
    // SAFETY: the child only makes raw syscalls and writes to shared memory
    // (no allocation, no locks) before `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        if let Some(prog) = prog {
            match load::install(prog, flags, true) {
                Ok(_) => shared.set(LOADED, 0),
                Err(e) => {
                    shared.set(LOADED, i64::from(e.raw_os_error().unwrap_or(-1)));
                    // SAFETY: terminating the child.
                    unsafe { libc::_exit(100) };
                }
            }
        } else {
            shared.set(LOADED, 0);
        }
        body(shared);
        // SAFETY: terminating the child.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid");
    if libc::WIFEXITED(status) {
        End::Exited(libc::WEXITSTATUS(status))
    } else {
        End::Signaled(libc::WTERMSIG(status))
    }
}

/// A raw syscall returning `-errno` on failure (no libc wrapper side effects).
pub fn raw(nr: libc::c_long, a: [libc::c_long; 3]) -> i64 {
    // SAFETY: callers pass syscalls and arguments that touch no memory of ours
    // except valid pointers.
    let rc = unsafe { libc::syscall(nr, a[0], a[1], a[2]) };
    if rc == -1 {
        // SAFETY: reading errno of this thread.
        -i64::from(unsafe { *libc::__errno_location() })
    } else {
        rc
    }
}
