//! The one function that touches the kernel: installing a filter with
//! `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! [`install`] allocates nothing and makes only raw syscalls, so it is safe to
//! call in a child between `fork` and `exec` (e.g. from `Command::pre_exec`).

use std::io;
use std::os::fd::RawFd;

use crate::bpf::SockFilter;

/// `SECCOMP_SET_MODE_FILTER`.
pub const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
/// `SECCOMP_FILTER_FLAG_TSYNC`.
pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`.
pub const SECCOMP_FILTER_FLAG_LOG: u32 = 2;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 4;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the call returns a notification fd.
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;

/// Installs `prog` on the calling thread (all threads with TSYNC).
///
/// With `no_new_privs`, sets `PR_SET_NO_NEW_PRIVS` first (needed unless the
/// caller has `CAP_SYS_ADMIN`). Returns the listener fd when `flags` has
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`. Irreversible for the calling process.
pub fn install(prog: &[SockFilter], flags: u32, no_new_privs: bool) -> io::Result<Option<RawFd>> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if no_new_privs {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let fprog = libc::sock_fprog {
        len,
        // `SockFilter` is `#[repr(C)]` with the layout of `struct sock_filter`;
        // the kernel only reads through this pointer.
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `len` valid instructions for the whole call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        Ok(Some(rc as RawFd))
    } else {
        Ok(None)
    }
}
