//! The crate's error type.

use std::path::PathBuf;

/// Errors of the runtime layer. `Create` and `Start` carry the OCI runtime's
/// own message (its stderr), which the agent surfaces like the kubelet does.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The OCI runtime's `create` (or the preparation of the bundle) failed.
    #[error("{message}")]
    Create {
        /// The runtime's stderr (or what failed before it ran).
        message: String,
    },
    /// The OCI runtime's `start` failed.
    #[error("{message}")]
    Start {
        /// The runtime's stderr.
        message: String,
    },
    /// No such container or sandbox.
    #[error("not found: {0}")]
    NotFound(String),
    /// An input was refused (bad id, bad spec field...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The OCI runtime binary is missing or unusable.
    #[error("OCI runtime: {0}")]
    Binary(String),
    /// Another runtime command (kill, delete, state, exec) failed.
    #[error("{command} failed: {message}")]
    Command {
        /// The runtime subcommand.
        command: String,
        /// Its stderr.
        message: String,
    },
    /// An OCI runtime call outlived the runtime request timeout; its process group was
    /// killed. Shown as the kubelet shows a CRI call whose deadline passed.
    #[error("{}", crate::invoke::DEADLINE_EXCEEDED)]
    DeadlineExceeded {
        /// The runtime subcommand.
        command: String,
        /// The timeout it outlived.
        timeout: std::time::Duration,
    },
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be read or written.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// Building the OCI spec failed.
    #[error("OCI spec: {0}")]
    Spec(String),
}

impl RuntimeError {
    /// The error of runtime subcommand `command` that failed with `e`.
    pub(crate) fn call(
        command: &str,
        timeout: std::time::Duration,
        e: crate::invoke::CallError,
    ) -> Self {
        match e {
            crate::invoke::CallError::DeadlineExceeded => RuntimeError::DeadlineExceeded {
                command: command.to_owned(),
                timeout,
            },
            crate::invoke::CallError::Failed(message) => RuntimeError::Command {
                command: command.to_owned(),
                message,
            },
        }
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            path: path.into(),
            source,
        }
    }
}
