//! Errors of the image store.

use std::path::PathBuf;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An I/O error on a named path.
    #[error("{path}: {error}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The reference cannot be parsed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The archive is not a valid OCI layout or docker-archive.
    #[error("invalid image archive {path}: {reason}")]
    InvalidArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob's content does not match its digest.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which blob.
        what: String,
        /// The digest the manifest names.
        expected: String,
        /// The digest of the content.
        actual: String,
    },
    /// A layer contains an entry the store refuses to unpack.
    #[error("unsafe layer entry {entry:?} in {layer}: {reason}")]
    UnsafeLayer {
        /// The layer digest.
        layer: String,
        /// The entry path.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A pull from a registry failed (containerd's wording, which the kubelet passes on).
    #[error("failed to pull and unpack image \"{reference}\": {reason}")]
    Pull {
        /// The normalized reference.
        reference: String,
        /// What went wrong.
        reason: String,
        /// The registry has no such repository, tag or digest.
        not_found: bool,
    },
    /// No image matches the reference.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// The index or a JSON document is malformed.
    #[error("{what}: {error}")]
    Json {
        /// What was being parsed.
        what: String,
        /// The parse error.
        error: serde_json::Error,
    },
}

impl ImageError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |error| ImageError::Io { path, error }
    }
}
