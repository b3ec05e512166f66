//! The typed seccomp audit record, its parser and its syslog-style rendering.

use std::time::{Duration, UNIX_EPOCH};

use crate::attribution::Owner;
use crate::AuditError;

/// The audit message type of seccomp records (`AUDIT_SECCOMP`).
pub const AUDIT_SECCOMP: u16 = 1326;

/// One `type=1326` record: a syscall a seccomp filter logged, trapped, denied or killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompRecord {
    /// Seconds part of `audit(SECONDS.MILLIS:SERIAL)`.
    pub seconds: u64,
    /// Milliseconds part of the audit timestamp.
    pub millis: u32,
    /// The audit serial number.
    pub serial: u64,
    /// Kernel log time (`[369128.669452]`) in microseconds since boot, when known.
    pub kernel_time_us: Option<u64>,
    /// Login uid (4294967295 when unset).
    pub auid: u32,
    /// Real uid.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
    /// Audit session id.
    pub ses: u32,
    /// The process id (in the initial pid namespace).
    pub pid: u32,
    /// The task name.
    pub comm: String,
    /// The executable path.
    pub exe: String,
    /// The signal the action delivers (SIGSYS for kill/trap, 0 otherwise).
    pub sig: u32,
    /// `AUDIT_ARCH_*` of the syscall.
    pub arch: u32,
    /// The syscall number.
    pub syscall: u32,
    /// 1 for a compat (32-bit) syscall.
    pub compat: u32,
    /// The instruction pointer.
    pub ip: u64,
    /// The filter's return value (`SECCOMP_RET_*` | data).
    pub code: u32,
}

impl SeccompRecord {
    /// Parses the text after `type=1326 ` (or a full `audit: type=1326 audit(...): ...` line).
    pub fn parse(text: &str) -> Result<SeccompRecord, AuditError> {
        let bad = |reason: &str| AuditError::Malformed {
            reason: reason.into(),
            text: text.into(),
        };
        let start = text
            .find("audit(")
            .ok_or_else(|| bad("no audit(...) stamp"))?;
        let rest = &text[start + "audit(".len()..];
        let (stamp, fields) = rest
            .split_once("):")
            .ok_or_else(|| bad("unterminated audit stamp"))?;
        let (time, serial) = stamp.split_once(':').ok_or_else(|| bad("no serial"))?;
        let (secs, millis) = time.split_once('.').unwrap_or((time, "0"));
        let fields = Fields::parse(fields);
        let num = |key: &str| {
            fields
                .number(key)
                .ok_or_else(|| bad(&format!("missing or bad {key}")))
        };
        Ok(SeccompRecord {
            seconds: secs.parse().map_err(|_| bad("bad seconds"))?,
            millis: millis.parse().map_err(|_| bad("bad milliseconds"))?,
            serial: serial.parse().map_err(|_| bad("bad serial"))?,
            kernel_time_us: None,
            auid: fields.number("auid").unwrap_or(u32::MAX as u64) as u32,
            uid: num("uid")? as u32,
            gid: num("gid")? as u32,
            ses: fields.number("ses").unwrap_or(u32::MAX as u64) as u32,
            pid: num("pid")? as u32,
            comm: fields.string("comm").unwrap_or_default(),
            exe: fields.string("exe").unwrap_or_default(),
            sig: num("sig")? as u32,
            arch: fields
                .hex("arch")
                .ok_or_else(|| bad("missing or bad arch"))? as u32,
            syscall: num("syscall")? as u32,
            compat: fields.number("compat").unwrap_or(0) as u32,
            ip: fields.hex("ip").ok_or_else(|| bad("missing or bad ip"))?,
            code: fields
                .hex("code")
                .ok_or_else(|| bad("missing or bad code"))? as u32,
        })
    }

    /// The syscall's name from armorlet-seccomp's tables for the record's architecture
    /// (x32 syscalls carry bit 30 on x86_64), as a recording names it.
    pub fn syscall_name(&self) -> Option<&'static str> {
        armorlet_seccomp::record::identify(self.arch, self.syscall).map(|(_, name)| name)
    }

    /// The record in the kernel's own text (`audit(…): auid=… code=0x…`).
    pub fn kernel_text(&self) -> String {
        format!(
            "audit({}.{:03}:{}): auid={} uid={} gid={} ses={} pid={} comm={} exe={} sig={} arch={:x} syscall={} compat={} ip=0x{:x} code=0x{:x}",
            self.seconds, self.millis, self.serial, self.auid, self.uid, self.gid, self.ses, self.pid,
            untrusted(&self.comm), untrusted(&self.exe), self.sig, self.arch, self.syscall, self.compat, self.ip, self.code
        )
    }

    /// The node audit log line: the tutorial's syslog format
    /// (`Jul  6 15:37:40 my-machine kernel: [369128.669452] audit: type=1326 audit(…): …`)
    /// followed by ` syscall_name=NAME` and, when attributed, ` pod=NS/NAME container=C`.
    pub fn log_line(&self, hostname: &str, owner: Option<&Owner>) -> String {
        let kt = self.kernel_time_us.unwrap_or(0);
        let mut line = format!(
            "{} {hostname} kernel: [{:>5}.{:06}] audit: type={AUDIT_SECCOMP} {} syscall_name={}",
            syslog_time(self.seconds),
            kt / 1_000_000,
            kt % 1_000_000,
            self.kernel_text(),
            self.syscall_name().unwrap_or("?"),
        );
        if let Some(o) = owner {
            line.push_str(&format!(
                " pod={}/{} container={}",
                o.namespace, o.pod, o.container
            ));
        }
        line
    }
}

/// `audit(SECONDS.MILLIS:SERIAL)` at the start of `text` → its three numbers.
pub(crate) fn audit_stamp(text: &str) -> Option<(u64, u32, u64)> {
    let rest = text.strip_prefix("audit(")?;
    let (stamp, _) = rest.split_once("):")?;
    let (time, serial) = stamp.split_once(':')?;
    let (secs, millis) = time.split_once('.').unwrap_or((time, "0"));
    Some((
        secs.parse().ok()?,
        millis.parse().ok()?,
        serial.parse().ok()?,
    ))
}

/// `Jul  6 15:37:40` (RFC 3164 timestamp, UTC).
pub(crate) fn syslog_time(seconds: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = UNIX_EPOCH + Duration::from_secs(seconds);
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (_, month, day) = civil_from_days(days);
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[month as usize - 1],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's public-domain algorithm;
/// hand-written to avoid a date crate for one timestamp format).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The kernel's rendering of an untrusted string: quoted, or hex when it needs escaping.
fn untrusted(s: &str) -> String {
    let needs_hex = s.bytes().any(|b| b == b'"' || !(0x21..=0x7e).contains(&b));
    if needs_hex {
        s.bytes().map(|b| format!("{b:02X}")).collect()
    } else {
        format!("\"{s}\"")
    }
}

/// The `key=value` fields of a record.
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn parse(text: &'a str) -> Fields<'a> {
        let mut out = Vec::new();
        let mut rest = text.trim_start();
        while let Some((key, after)) = rest.split_once('=') {
            let key = key.trim();
            let end = if let Some(quoted) = after.strip_prefix('"') {
                quoted.find('"').map_or(after.len(), |e| e + 2)
            } else {
                after.find(' ').unwrap_or(after.len())
            };
            let (value, next) = after.split_at(end);
            out.push((key, value));
            rest = next.trim_start();
        }
        Fields(out)
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    fn hex(&self, key: &str) -> Option<u64> {
        let v = self.get(key)?;
        u64::from_str_radix(v.strip_prefix("0x").unwrap_or(v), 16).ok()
    }

    /// A quoted string, or the kernel's hex encoding of one.
    fn string(&self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        if let Some(q) = v.strip_prefix('"') {
            return Some(q.trim_end_matches('"').to_string());
        }
        if v == "(null)" || v.len() % 2 != 0 {
            return Some(v.to_string());
        }
        let bytes: Option<Vec<u8>> = (0..v.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&v[i..i + 2], 16).ok())
            .collect();
        Some(bytes.map_or_else(
            || v.to_string(),
            |b| String::from_utf8_lossy(&b).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TUTORIAL: &str = "Jul  6 15:37:40 my-machine kernel: [369128.669452] audit: type=1326 audit(1594067860.484:14536): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=29064 comm=\"http-echo\" exe=\"/http-echo\" sig=0 arch=c000003e syscall=51 compat=0 ip=0x46fe1f code=0x7ffc0000";

    #[test]
    fn parses_and_renders_the_tutorial_line() {
        let mut r = SeccompRecord::parse(TUTORIAL).unwrap();
        assert_eq!(
            (r.pid, r.syscall, r.arch, r.code),
            (29064, 51, 0xc000003e, 0x7ffc0000)
        );
        assert_eq!(
            (r.comm.as_str(), r.exe.as_str()),
            ("http-echo", "/http-echo")
        );
        assert_eq!((r.seconds, r.millis, r.serial), (1594067860, 484, 14536));
        assert_eq!(r.syscall_name(), Some("getsockname"));
        r.kernel_time_us = Some(369_128_669_452);
        // The tutorial's syslog is in the machine's local time; ours is UTC.
        let owner = Owner {
            namespace: "default".into(),
            pod: "fine-pod".into(),
            container: "test-container".into(),
        };
        let line = r.log_line("my-machine", Some(&owner));
        assert_eq!(
            line,
            format!(
                "{} syscall_name=getsockname pod=default/fine-pod container=test-container",
                TUTORIAL.replace("Jul  6 15:37:40", "Jul  6 20:37:40")
            )
        );
    }

    #[test]
    fn hex_encoded_comm_and_malformed_records() {
        let text = "audit(1.002:3): auid=1 uid=2 gid=3 ses=4 pid=5 comm=6120622063 exe=\"/x\" sig=31 arch=40000003 syscall=20 compat=1 ip=0x1 code=0x0";
        let r = SeccompRecord::parse(text).unwrap();
        assert_eq!(r.comm, "a b c");
        assert_eq!(r.syscall_name(), Some("getpid"));
        assert!(r.kernel_text().contains("comm=6120622063"));
        assert!(SeccompRecord::parse("audit(1.0:1): pid=1").is_err());
    }
}
