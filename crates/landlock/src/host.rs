//! Host detection as the kubelet does it, and the `profiles` file format.
//!
//! kubernetes/kubernetes `pkg/security/apparmor/validate.go` (`IsEnabled`
//! in `third_party/forked/libcontainer/apparmor/apparmor_linux.go` of later
//! releases): AppArmor is enabled when `/sys/kernel/security/apparmor`
//! exists and `/sys/module/apparmor/parameters/enabled` starts with `Y`.
//! Loaded profiles are the `name (mode)` lines of `<apparmor-fs>/profiles`
//! (the 1.22 validator's `getLoadedProfiles`/`parseProfileName`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::LandlockError;

/// Default `--apparmor-fs`.
pub const DEFAULT_APPARMOR_FS: &str = "/sys/kernel/security/apparmor";
/// Default module parameters directory.
pub const DEFAULT_MODULE_PARAMS: &str = "/sys/module/apparmor/parameters";

/// Whether the AppArmor LSM is enabled (kubelet's check).
pub fn lsm_enabled(apparmor_fs: &Path, module_params: &Path) -> bool {
    if !apparmor_fs.is_dir() {
        return false;
    }
    std::fs::read(module_params.join("enabled"))
        .map(|b| b.first() == Some(&b'Y'))
        .unwrap_or(false)
}

/// Reads a `profiles` file (`name (mode)` per line) into name → mode.
/// A missing file reads as no profiles.
pub fn read_profiles(path: &Path) -> Result<BTreeMap<String, String>, LandlockError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_profiles(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(LandlockError::io(path, e)),
    }
}

/// Parses the securityfs `profiles` format; a line without ` (mode)` is a
/// name with an empty mode (as the kubelet, which keeps the text before
/// the last ` (`).
pub fn parse_profiles(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.rsplit_once(" (") {
            Some((name, mode)) => (name.to_string(), mode.trim_end_matches(')').to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// Renders name → mode in the securityfs format.
pub fn render_profiles(profiles: &BTreeMap<String, String>) -> String {
    profiles
        .iter()
        .map(|(n, m)| format!("{n} ({m})\n"))
        .collect()
}

/// The Landlock ABI version the kernel supports (0: none).
pub fn landlock_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only returns the ABI version.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if r < 0 {
        0
    } else {
        r as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_needs_dir_and_y() {
        let d = tempfile::tempdir().unwrap();
        let fs = d.path().join("apparmor");
        let params = d.path().join("params");
        std::fs::create_dir_all(&params).unwrap();
        assert!(!lsm_enabled(&fs, &params));
        std::fs::create_dir_all(&fs).unwrap();
        assert!(!lsm_enabled(&fs, &params));
        std::fs::write(params.join("enabled"), "N\n").unwrap();
        assert!(!lsm_enabled(&fs, &params));
        std::fs::write(params.join("enabled"), "Y\n").unwrap();
        assert!(lsm_enabled(&fs, &params));
    }

    #[test]
    fn profiles_round_trip() {
        let text = "k8s-apparmor-example-deny-write (enforce)\n/usr/bin/man (complain)\nodd\n";
        let p = parse_profiles(text);
        assert_eq!(p["k8s-apparmor-example-deny-write"], "enforce");
        assert_eq!(p["/usr/bin/man"], "complain");
        assert_eq!(p["odd"], "");
        let d = tempfile::tempdir().unwrap();
        assert!(read_profiles(&d.path().join("none")).unwrap().is_empty());
    }
}
