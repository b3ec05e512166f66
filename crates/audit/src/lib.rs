//! armorlet-audit: the node's seccomp audit trail.
//!
//! This crate owns reading kernel `AUDIT_SECCOMP` (type 1326) records — from the audit netlink
//! socket's read-only multicast group (no auditd registration needed), or from `/dev/kmsg`
//! when that socket is unavailable — parsing them into [`SeccompRecord`], naming the syscall
//! with armorlet-seccomp's tables, attributing the process to a container through
//! `/proc/<pid>/cgroup`, and the node audit log (`D/nodes/<node>/audit.log`): lines in the
//! syslog format of the seccomp tutorial followed by ` syscall_name=… pod=NS/NAME container=C`.

mod attribution;
mod error;
mod landlock;
mod log;
mod reader;
mod record;

pub use attribution::{container_id_of, Attribute, Owner};
pub use error::AuditError;
pub use landlock::{LandlockRecord, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN};
pub use log::{logged_syscalls, AuditLog, PodFilter};
pub use reader::{ensure_audit_enabled, AuditReader, Record, Source};
pub use record::{SeccompRecord, AUDIT_SECCOMP};
