//! The agent's error type.

use std::path::PathBuf;

/// Why the agent cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The kubeconfig cannot be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The API server refused a request the agent cannot do without.
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    /// The container runtime cannot be used.
    #[error("container runtime: {0}")]
    Runtime(String),
    /// The image store cannot be opened.
    #[error("image store: {0}")]
    Images(String),
    /// The pod network (CNI) cannot be set up.
    #[error("pod network: {0}")]
    Network(String),
    /// The AppArmor backend cannot be started.
    #[error("AppArmor: {0}")]
    AppArmor(String),
    /// The node's configuration (its view, its directories) is unusable.
    #[error("node configuration: {0}")]
    Config(String),
}
