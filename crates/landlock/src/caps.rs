//! Capability names and dropping them (bounding, ambient, then
//! effective/permitted/inheritable) in the calling process.
//!
//! Hand-written over `prctl`/`capset` (a few lines) instead of a crate: the
//! helper must stay small and static, and only these three calls are needed.

use crate::LandlockError;

/// Capability names by number (`linux/capability.h`, up to `CAP_CHECKPOINT_RESTORE` = 40):
/// the workspace's one table, in armorlet-seccomp.
pub use armorlet_seccomp::resolve::ALL_CAPS as NAMES;

/// `CAP_X` for an AppArmor capability name such as `net_admin`.
pub fn canonical(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

fn number(name: &str) -> Option<u32> {
    NAMES
        .iter()
        .position(|n| *n == canonical(name))
        .map(|i| i as u32)
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn err(step: &'static str) -> LandlockError {
    LandlockError::Apply {
        step,
        message: std::io::Error::last_os_error().to_string(),
    }
}

/// Keeps only `keep` in every set. The bounding set needs `CAP_SETPCAP`;
/// when that is missing and `no_new_privs` is set, execve cannot raise
/// capabilities anyway, so a failed bounding drop is tolerated then.
pub fn restrict(keep: &[String], no_new_privs: bool) -> Result<(), LandlockError> {
    let mut mask: u64 = 0;
    for k in keep {
        if let Some(n) = number(k) {
            mask |= 1 << n;
        }
    }
    // Every capability the kernel knows: PR_CAPBSET_READ fails (EINVAL) past
    // the last one. (Not /proc/sys/kernel/cap_last_cap: Landlock is already in
    // place here and the profile need not allow reading it.)
    for cap in 0..=63u32 {
        // SAFETY: plain prctl calls.
        let in_bounding =
            unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if in_bounding < 0 {
            break;
        }
        if mask & (1 << cap) != 0 {
            continue;
        }
        if in_bounding == 1 {
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r != 0 && !no_new_privs {
                return Err(err("capabilities (bounding set)"));
            }
        }
    }
    // SAFETY: plain prctl.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(err("capabilities (ambient)"));
    }
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and two data structs as capget(2) wants for version 3.
    if unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    } != 0
    {
        return Err(err("capabilities (capget)"));
    }
    for (i, d) in data.iter_mut().enumerate() {
        let m = (mask >> (32 * i)) as u32;
        d.effective &= m;
        d.permitted &= m;
        d.inheritable &= m;
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) } != 0 {
        return Err(err("capabilities (capset)"));
    }
    Ok(())
}
