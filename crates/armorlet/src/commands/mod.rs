//! One module per top-level subcommand.

pub mod apparmor;
pub mod audit;
pub mod daemon;
pub mod image;
pub mod kind;
pub mod manifests;
pub mod monitor;
pub mod node;
pub mod profile;
pub mod record;
pub mod seccomp;
pub mod up;

/// The multi-threaded tokio runtime of the long-running commands (`up`, `node`, `daemon`).
pub fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `D/nodes/<node>` for every node of the data directory, sorted (none when `D/nodes`
/// does not exist yet).
pub fn node_dirs(data_dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use anyhow::Context;
    let nodes = data_dir.join("nodes");
    let mut dirs = Vec::new();
    match std::fs::read_dir(&nodes) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.with_context(|| format!("reading {}", nodes.display()))?;
                if entry.file_type()?.is_dir() {
                    dirs.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", nodes.display())),
    }
    dirs.sort();
    Ok(dirs)
}
