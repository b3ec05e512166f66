//! Errors of the audit reader and log.

use std::path::PathBuf;

/// Everything that can go wrong reading audit records or the node audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Neither the audit netlink socket nor `/dev/kmsg` could be opened.
    #[error("no audit source: netlink: {netlink}; /dev/kmsg: {kmsg}")]
    NoSource {
        /// Why the netlink socket failed.
        netlink: std::io::Error,
        /// Why `/dev/kmsg` failed.
        kmsg: std::io::Error,
    },
    /// Reading the audit source failed.
    #[error("reading audit records: {0}")]
    Read(std::io::Error),
    /// A file operation on the audit log failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A record text is not a well-formed seccomp record.
    #[error("malformed seccomp audit record ({reason}): {text:?}")]
    Malformed {
        /// What is missing or wrong.
        reason: String,
        /// The record text.
        text: String,
    },
}
