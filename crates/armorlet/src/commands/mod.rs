//! One module per top-level subcommand.

pub mod apparmor;
pub mod audit;
pub mod daemon;
pub mod image;
pub mod kind;
pub mod manifests;
pub mod memory;
pub mod monitor;
pub mod node;
pub mod profile;
pub mod record;
pub mod seccomp;
pub mod up;

/// The multi-threaded tokio runtime of the long-running commands (`up`, `node`, `daemon`).
///
/// Its blocking pool (store calls, OCI runtime and CNI invocations, pod teardowns) lets an idle
/// thread go after [`BLOCKING_KEEP_ALIVE`] instead of tokio's 10 s: an idle thread is woken for
/// the next task in turn (first idle, first woken), so a pool that grew in a burst (a hundred
/// pods deleted at once) is kept whole by a trickle of tasks that reaches each thread within the
/// keep-alive. With 10 s, armorlet's few tasks a second when idle kept every thread of the
/// burst forever (11 threads became 82 after a churn of 450 pods, never shrinking; RSS 26 →
/// 105 MiB); with 1 s the pool shrinks back to what the trickle needs.
///
/// Its threads share one malloc arena per core ([`memory::limit_arenas`]).
pub fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    memory::limit_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("starting the async runtime")
}

/// How long an idle thread of the blocking pool waits for work before it ends.
pub const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

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
