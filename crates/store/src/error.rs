//! The store's error type.
//!
//! Messages follow the Kubernetes ones (staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go and
//! staging/src/k8s.io/apiserver/pkg/storage/errors.go), because the API server passes them through verbatim.

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist. `resource` is the qualified resource (`pods`, `daemonsets.apps`).
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    /// An object with this name already exists.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    /// Optimistic concurrency or a precondition failed.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")]
    Conflict {
        resource: String,
        name: String,
        detail: String,
    },
    /// A watch or continue token refers to a resourceVersion whose events were compacted away.
    #[error("too old resource version: {requested} ({compacted})")]
    Expired { requested: u64, compacted: u64 },
    /// The object or request is malformed (missing name, metadata not an object, bad token).
    #[error("{message}")]
    BadRequest { message: String },
    /// A label or field selector could not be parsed.
    #[error(transparent)]
    Selector(#[from] crate::selector::SelectorError),
    /// The database failed.
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored document is not valid JSON.
    #[error("stored object is corrupt: {0}")]
    Json(#[from] serde_json::Error),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The standard conflict for an update with a stale resourceVersion.
    pub(crate) fn stale(resource: &str, name: &str) -> Self {
        StoreError::Conflict {
            resource: resource.to_string(),
            name: name.to_string(),
            detail: "the object has been modified; please apply your changes to the latest version and try again".to_string(),
        }
    }
}

/// Short for `Result<T, StoreError>`.
pub type Result<T> = std::result::Result<T, StoreError>;
