//! A simplified profile language compiled to AppArmor: bane's TOML
//! (`genuinetools/bane`, `sample.toml`), read strictly.
//!
//! ```toml
//! Name = "nginx"
//! [Filesystem]
//! ReadOnlyPaths = ["/etc/**"]      # deny PATH wl,
//! LogOnWritePaths = ["/**"]        # audit PATH w,
//! WritablePaths = ["/run/nginx.pid"] # PATH w,
//! AllowExec = ["/usr/sbin/nginx"]  # PATH ix,
//! DenyExec = ["/bin/sh"]           # deny PATH mrwklx,
//! [Capabilities]
//! Allow = ["chown"]                # capability chown,  (or Deny: capability, + deny capability X,)
//! [Network]
//! Raw = false                      # deny network raw,
//! Packet = false                   # deny network packet,
//! Protocols = ["tcp", "udp"]       # network inet tcp, ... (else: network,)
//! ```
//!
//! The output follows bane's template (`apparmor/template.go`): the
//! `tunables/global` and `abstractions/base` includes, `file,` and `umount,`,
//! the rules above, and the same fixed denials of `/proc` and `/sys` writes,
//! `mount`, and `/sys/kernel/security`. Two decisions differ from bane:
//! the profile is named exactly `Name` (bane prefixes `docker-`; pods refer to
//! it as `localhost/<Name>`), and where bane silently ignores or passes on
//! bad input this refuses it, naming the key: unknown keys, relative paths,
//! unknown capabilities or protocols, both `Allow` and `Deny`
//! capabilities (bane would drop `Allow`), and names that are not a profile
//! name.

use std::fmt::Write;

use serde::Deserialize;

use crate::tables;

/// A bane-style profile description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SimpleProfile {
    /// The profile name.
    pub name: String,
    /// File rules.
    #[serde(default)]
    pub filesystem: Filesystem,
    /// Capability rules.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Network rules.
    #[serde(default)]
    pub network: Network,
}

/// `[Filesystem]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Filesystem {
    /// Denied writes and links (`deny PATH wl,`).
    #[serde(default)]
    pub read_only_paths: Vec<String>,
    /// Audited writes (`audit PATH w,`).
    #[serde(default)]
    pub log_on_write_paths: Vec<String>,
    /// Allowed writes (`PATH w,`).
    #[serde(default)]
    pub writable_paths: Vec<String>,
    /// Executables run in the profile (`PATH ix,`).
    #[serde(default)]
    pub allow_exec: Vec<String>,
    /// Executables denied altogether (`deny PATH mrwklx,`).
    #[serde(default)]
    pub deny_exec: Vec<String>,
}

/// `[Capabilities]`: an allow list, or everything but a deny list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Capabilities {
    /// Capabilities allowed (lower case, without `CAP_`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Capabilities denied; all others are allowed.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `[Network]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Network {
    /// Allow raw sockets.
    #[serde(default)]
    pub raw: bool,
    /// Allow packet sockets.
    #[serde(default)]
    pub packet: bool,
    /// Only these inet protocols (`tcp`, `udp`, `icmp`); empty: all networking.
    #[serde(default)]
    pub protocols: Vec<String>,
}

/// Why a TOML description cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TomlError {
    /// Not TOML, or not the expected keys and types.
    #[error("{0}")]
    Parse(String),
    /// A value that would make a wrong or weaker profile.
    #[error("{key}: {message}")]
    Invalid {
        /// The key (`Filesystem.WritablePaths[2]`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: String, message: impl Into<String>) -> TomlError {
    TomlError::Invalid {
        key,
        message: message.into(),
    }
}

impl SimpleProfile {
    /// Reads the TOML text.
    pub fn from_toml(text: &str) -> Result<SimpleProfile, TomlError> {
        let p: SimpleProfile = toml::from_str(text).map_err(|e| TomlError::Parse(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), TomlError> {
        let name_ok = !self.name.is_empty()
            && !self.name.starts_with(['/', '@', '-'])
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
        if !name_ok {
            return Err(invalid(
                "Name".into(),
                format!(
                    "{:?} is not a profile name (letters, digits and - _ . + only)",
                    self.name
                ),
            ));
        }
        let fs = &self.filesystem;
        for (key, paths) in [
            ("ReadOnlyPaths", &fs.read_only_paths),
            ("LogOnWritePaths", &fs.log_on_write_paths),
            ("WritablePaths", &fs.writable_paths),
            ("AllowExec", &fs.allow_exec),
            ("DenyExec", &fs.deny_exec),
        ] {
            for (i, p) in paths.iter().enumerate() {
                let key = || format!("Filesystem.{key}[{i}]");
                if !(p.starts_with('/') || p.starts_with("@{")) {
                    return Err(invalid(key(), format!("{p:?} is not an absolute path")));
                }
                if p.chars().any(|c| c.is_whitespace() || c == ',') {
                    return Err(invalid(
                        key(),
                        format!("{p:?}: whitespace and commas are not allowed in a path"),
                    ));
                }
            }
        }
        let caps = &self.capabilities;
        if !caps.allow.is_empty() && !caps.deny.is_empty() {
            return Err(invalid(
                "Capabilities".into(),
                "Allow and Deny exclude each other (Deny allows every capability it does not name)",
            ));
        }
        for (key, list) in [("Allow", &caps.allow), ("Deny", &caps.deny)] {
            for (i, c) in list.iter().enumerate() {
                if !tables::CAPABILITIES.contains(&c.as_str()) {
                    return Err(invalid(
                        format!("Capabilities.{key}[{i}]"),
                        format!("unknown capability {c:?} (lower case, without CAP_)"),
                    ));
                }
            }
        }
        for (i, p) in self.network.protocols.iter().enumerate() {
            if !matches!(p.as_str(), "tcp" | "udp" | "icmp") {
                return Err(invalid(
                    format!("Network.Protocols[{i}]"),
                    format!("unknown protocol {p:?} (tcp, udp or icmp)"),
                ));
            }
        }
        Ok(())
    }

    /// The AppArmor profile text.
    pub fn to_apparmor(&self) -> String {
        let mut o = String::new();
        let fs = &self.filesystem;
        let _ = writeln!(o, "#include <tunables/global>\n");
        let _ = writeln!(
            o,
            "profile {} flags=(attach_disconnected,mediate_deleted) {{",
            self.name
        );
        let _ = writeln!(o, "  #include <abstractions/base>\n");
        if self.network.protocols.is_empty() {
            let _ = writeln!(o, "  network,");
        } else {
            for p in &self.network.protocols {
                let _ = writeln!(o, "  network inet {p},");
            }
        }
        if !self.network.raw {
            let _ = writeln!(o, "  deny network raw,");
        }
        if !self.network.packet {
            let _ = writeln!(o, "  deny network packet,");
        }
        let _ = writeln!(o, "\n  file,\n  umount,\n");
        let lines = [
            ("deny ", &fs.read_only_paths, " wl"),
            ("audit ", &fs.log_on_write_paths, " w"),
            ("", &fs.writable_paths, " w"),
            ("", &fs.allow_exec, " ix"),
            ("deny ", &fs.deny_exec, " mrwklx"),
        ];
        for (prefix, paths, perms) in lines {
            for p in paths {
                let _ = writeln!(o, "  {prefix}{p}{perms},");
            }
        }
        let caps = &self.capabilities;
        if !caps.deny.is_empty() {
            let _ = writeln!(o, "\n  capability,");
            for c in &caps.deny {
                let _ = writeln!(o, "  deny capability {c},");
            }
        } else {
            let _ = writeln!(o);
            for c in &caps.allow {
                let _ = writeln!(o, "  capability {c},");
            }
        }
        o.push_str(FIXED_DENIALS);
        o.push_str("}\n");
        o
    }
}

/// bane's closing denials: writes to `/proc` outside the process's own
/// directories and `/proc/sys/kernel/shm*`, the dangerous `/proc` files,
/// `mount`, writes under `/sys` except cgroups, EFI variables and securityfs.
const FIXED_DENIALS: &str = "
  deny @{PROC}/* w,   # deny write for all files directly in /proc (not in a subdir)
  deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9]*}/** w,
  deny @{PROC}/sys/[^k]** w,  # deny /proc/sys except /proc/sys/k* (effectively /proc/sys/kernel)
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,  # deny everything except shm* in /proc/sys/kernel/
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/mem rwklx,
  deny @{PROC}/kmem rwklx,
  deny @{PROC}/kcore rwklx,
  deny mount,
  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/efi/efivars/** rwklx,
  deny /sys/kernel/security/** rwklx,
";

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
Name = "nginx"
[Filesystem]
ReadOnlyPaths = ["/etc/**", "/usr/**"]
LogOnWritePaths = ["/**"]
WritablePaths = ["/var/run/nginx.pid"]
AllowExec = ["/usr/sbin/nginx"]
DenyExec = ["/bin/sh"]
[Capabilities]
Allow = ["chown", "net_bind_service"]
[Network]
Raw = false
Packet = false
Protocols = ["tcp", "udp"]
"#;

    #[test]
    fn compiles_the_sample_to_a_profile_our_parser_accepts() {
        let p = SimpleProfile::from_toml(SAMPLE).unwrap();
        let text = p.to_apparmor();
        for line in [
            "profile nginx flags=(attach_disconnected,mediate_deleted) {",
            "  network inet tcp,",
            "  deny network raw,",
            "  deny /etc/** wl,",
            "  audit /** w,",
            "  /var/run/nginx.pid w,",
            "  /usr/sbin/nginx ix,",
            "  deny /bin/sh mrwklx,",
            "  capability net_bind_service,",
            "  deny mount,",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        // Without the system's includes: the body alone must parse cleanly.
        let body = text
            .lines()
            .filter(|l| !l.contains("#include"))
            .collect::<Vec<_>>()
            .join("\n");
        let (_, diags) = crate::parse_str(
            &format!("@{{PROC}}=/proc/\n{body}"),
            "nginx",
            &crate::ParseOptions::default(),
        );
        assert!(
            diags.iter().all(|d| d.severity != crate::Severity::Error),
            "{diags:?}\n{text}"
        );
    }

    #[test]
    fn deny_capabilities_allow_the_rest() {
        let p = SimpleProfile::from_toml("Name = \"x\"\n[Capabilities]\nDeny = [\"sys_admin\"]\n")
            .unwrap();
        let text = p.to_apparmor();
        assert!(
            text.contains("\n  capability,\n  deny capability sys_admin,\n"),
            "{text}"
        );
        assert!(text.contains("\n  network,\n"), "{text}");
    }

    #[test]
    fn bad_input_names_the_key() {
        let err = |t: &str| SimpleProfile::from_toml(t).unwrap_err().to_string();
        assert_eq!(
            err("Name = \"x\"\n[Filesystem]\nWritablePaths = [\"/ok\", \"tmp/x\"]\n"),
            "Filesystem.WritablePaths[1]: \"tmp/x\" is not an absolute path"
        );
        assert_eq!(
            err("Name = \"x\"\n[Capabilities]\nAllow = [\"CAP_CHOWN\"]\n"),
            "Capabilities.Allow[0]: unknown capability \"CAP_CHOWN\" (lower case, without CAP_)"
        );
        assert!(
            err("Name = \"x\"\n[Capabilities]\nAllow = [\"chown\"]\nDeny = [\"kill\"]\n")
                .starts_with("Capabilities: Allow and Deny exclude each other")
        );
        assert!(err("Name = \"a b\"\n").starts_with("Name: \"a b\" is not a profile name"));
        assert!(err("Name = \"x\"\nFilesytem = 1\n").contains("unknown field `Filesytem`"));
        assert!(err("Name = \"x\"\n[Network]\nProtocols = [\"sctp\"]\n")
            .starts_with("Network.Protocols[0]: unknown protocol \"sctp\""));
        assert!(err("[Network]\nRaw = true\n").contains("missing field `Name`"));
    }
}
