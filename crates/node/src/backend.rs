//! The agent's `armorlet_nodeapi::NodeBackend`: finds a pod's containers from
//! the runtime's persisted labels (so it needs no shared state with the pod
//! workers), serves their CRI logs (`--previous`: the instance before) and
//! runs exec through the runtime, which applies the container's confinement,
//! and attaches to a container's main process through its monitor.

use crate::spec::labels;
use armorlet_nodeapi::{Attached, BackendError, ExecProcess, ExecSpec, LogTarget, NodeBackend};
use armorlet_runtime::{ContainerRecord, ContainerState, Runtime};
use std::sync::Arc;

/// The node API backend of one agent.
pub struct Backend {
    runtime: Arc<Runtime>,
}

impl Backend {
    /// A backend over `runtime`.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Backend { runtime }
    }

    /// The container's instances, newest (highest restart count) first.
    fn instances(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Result<Vec<ContainerRecord>, BackendError> {
        let mut list: Vec<ContainerRecord> = self
            .runtime
            .list_containers()
            .map_err(|e| BackendError::Internal(e.to_string()))?
            .into_iter()
            .filter(|r| {
                r.labels.get(labels::NAMESPACE).map(String::as_str) == Some(ns)
                    && r.labels.get(labels::POD).map(String::as_str) == Some(pod)
                    && r.labels.get(labels::CONTAINER).map(String::as_str) == Some(container)
            })
            .collect();
        list.sort_by_key(|r| {
            std::cmp::Reverse(
                r.labels
                    .get(labels::RESTART)
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0),
            )
        });
        if list.is_empty() {
            return Err(BackendError::NotFound(format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            )));
        }
        Ok(list)
    }

    fn running_id(&self, ns: &str, pod: &str, container: &str) -> Result<String, BackendError> {
        let current = self.instances(ns, pod, container)?.remove(0);
        match self.runtime.container_status(&current.id) {
            Ok(s) if s.state == ContainerState::Running => Ok(current.id),
            _ => Err(BackendError::BadRequest(format!(
                "container {container} is not running in pod {pod}"
            ))),
        }
    }
}

impl NodeBackend for Backend {
    fn log_target(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogTarget, BackendError> {
        let list = self.instances(ns, pod, container)?;
        let rec = if previous {
            list.into_iter().nth(1).ok_or_else(|| {
                BackendError::BadRequest(format!(
                    "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                ))
            })?
        } else {
            list.into_iter().next().expect("non-empty")
        };
        let rt = self.runtime.clone();
        let id = rec.id.clone();
        Ok(LogTarget {
            path: rec.log_path,
            container_id: rec.id,
            running: Arc::new(move || {
                rt.container_status(&id)
                    .is_ok_and(|s| s.state == ContainerState::Running)
            }),
        })
    }

    fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        spec: ExecSpec,
    ) -> Result<ExecProcess, BackendError> {
        let id = self.running_id(ns, pod, container)?;
        self.runtime
            .exec(&id, &spec)
            .map_err(|e| BackendError::Internal(e.to_string()))
    }

    fn attach(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        stdin: bool,
    ) -> Result<Attached, BackendError> {
        let id = self.running_id(ns, pod, container)?;
        self.runtime
            .attach(&id, stdin)
            .map_err(|e| BackendError::Internal(e.to_string()))
    }
}
