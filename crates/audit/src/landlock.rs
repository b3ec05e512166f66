//! Landlock audit records (Linux 6.15+, Landlock ABI 7): `type=1423`
//! (`AUDIT_LANDLOCK_ACCESS`, one denied access: `domain=… blockers=… path=…`)
//! and `type=1424` (`AUDIT_LANDLOCK_DOMAIN`, a domain's allocation with the pid
//! and executable that created it, and its deallocation). The Landlock AppArmor
//! backend turns them on for profiles whose denials AppArmor would log; the
//! node attributes a domain to the container whose process created it.

use crate::attribution::Owner;
use crate::record::{audit_stamp, syslog_time};
use crate::AuditError;

/// `AUDIT_LANDLOCK_ACCESS`.
pub const AUDIT_LANDLOCK_ACCESS: u16 = 1423;
/// `AUDIT_LANDLOCK_DOMAIN`.
pub const AUDIT_LANDLOCK_DOMAIN: u16 = 1424;

/// One Landlock record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockRecord {
    /// 1423 or 1424.
    pub kind: u16,
    /// Seconds part of the audit timestamp.
    pub seconds: u64,
    /// The text from `audit(` on, as the kernel wrote it.
    pub text: String,
    /// The domain id (hex).
    pub domain: String,
    /// `pid=` of a domain allocation record (the process that created the domain).
    pub pid: Option<u32>,
    /// Kernel log time in microseconds since boot, when known.
    pub kernel_time_us: Option<u64>,
}

impl LandlockRecord {
    /// Parses the text after `type=N ` for `kind` 1423 or 1424.
    pub fn parse(kind: u16, text: &str) -> Result<LandlockRecord, AuditError> {
        let bad = |reason: &str| AuditError::Malformed {
            reason: reason.into(),
            text: text.into(),
        };
        let start = text.find("audit(").ok_or_else(|| bad("no audit( stamp"))?;
        let text = &text[start..];
        let (seconds, _, _) = audit_stamp(text).ok_or_else(|| bad("bad audit( stamp"))?;
        let field = |name: &str| {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let domain = field("domain=").ok_or_else(|| bad("no domain="))?;
        let pid = if field("status=").as_deref() == Some("allocated") {
            field("pid=").and_then(|p| p.parse().ok())
        } else {
            None
        };
        Ok(LandlockRecord {
            kind,
            seconds,
            text: text.to_owned(),
            domain,
            pid,
            kernel_time_us: None,
        })
    }

    /// Whether this is a denied access (not a domain status record).
    pub fn is_access(&self) -> bool {
        self.kind == AUDIT_LANDLOCK_ACCESS
    }

    /// The node audit log line, in the syslog shape of the seccomp records,
    /// followed by the enforced profile (when known) and the pod container.
    pub fn log_line(&self, hostname: &str, owner: &Owner, profile: Option<&str>) -> String {
        let kt = self.kernel_time_us.unwrap_or(0);
        let mut line = format!(
            "{} {hostname} kernel: [{:>5}.{:06}] audit: type={} {}",
            syslog_time(self.seconds),
            kt / 1_000_000,
            kt % 1_000_000,
            self.kind,
            self.text
        );
        if let Some(p) = profile {
            line.push_str(&format!(" apparmor_profile=\"{p}\""));
        }
        line.push_str(&format!(
            " pod={}/{} container={}",
            owner.namespace, owner.pod, owner.container
        ));
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_and_domain_records() {
        let a = LandlockRecord::parse(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1795489872.189:6219): domain=156431a72 blockers=fs.read_file path=\"/etc/hostname\" dev=\"vda\" ino=611",
        )
        .unwrap();
        assert!(a.is_access());
        assert_eq!(
            (a.seconds, a.domain.as_str(), a.pid),
            (1_795_489_872, "156431a72", None)
        );
        let d = LandlockRecord::parse(
            AUDIT_LANDLOCK_DOMAIN,
            "audit(1795489872.189:6219): domain=156431a72 status=allocated mode=enforcing pid=31798 uid=0 exe=\"/bin/sh\" comm=\"sh\"",
        )
        .unwrap();
        assert_eq!(d.pid, Some(31798));
        let owner = Owner {
            namespace: "default".into(),
            pod: "p".into(),
            container: "c".into(),
        };
        let line = a.log_line("vm", &owner, Some("deny-write"));
        assert!(line.contains("audit: type=1423 audit(1795489872.189:6219): domain=156431a72 blockers=fs.read_file"), "{line}");
        assert!(
            line.ends_with(" apparmor_profile=\"deny-write\" pod=default/p container=c"),
            "{line}"
        );
        assert!(LandlockRecord::parse(AUDIT_LANDLOCK_ACCESS, "audit(1.2:3): x=1").is_err());
    }
}
