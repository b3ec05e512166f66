//! The agent's `armorlet_nodeapi::NodeBackend`: finds a pod's containers from
//! the runtime's persisted labels (so it needs no shared state with the pod
//! workers), serves their CRI logs (`--previous`: the instance before) and
//! runs exec through the runtime, which applies the container's confinement,
//! and attaches to a container's main process through its monitor.

use crate::spec::labels;
use armorlet_nodeapi::{
    Attached, BackendError, ExecProcess, ExecSpec, LogTarget, NodeBackend, PortForwardTarget,
};
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

    fn port_forward(&self, ns: &str, pod: &str) -> Result<PortForwardTarget, BackendError> {
        // The pod's sandbox, through its containers' labels (kubelet server.go `getPortForward`
        // answers 404 "pod does not exist" for a pod it does not run).
        let uid = self
            .runtime
            .list_containers()
            .map_err(|e| BackendError::Internal(e.to_string()))?
            .into_iter()
            .find(|r| {
                r.labels.get(labels::NAMESPACE).map(String::as_str) == Some(ns)
                    && r.labels.get(labels::POD).map(String::as_str) == Some(pod)
            })
            .map(|r| r.pod_uid)
            .ok_or_else(|| BackendError::NotFound("pod does not exist".into()))?;
        let sandbox = self
            .runtime
            .list_sandboxes()
            .map_err(|e| BackendError::Internal(e.to_string()))?
            .into_iter()
            .find(|s| s.pod_uid == uid)
            .ok_or_else(|| BackendError::NotFound("pod does not exist".into()))?;
        let netns = sandbox.netns.clone();
        let id = sandbox.pod_uid.clone();
        Ok(PortForwardTarget {
            sandbox_id: sandbox.pod_uid,
            dial: Box::new(move |port| dial_in(&netns, &id, port)),
        })
    }
}

/// Connects to `localhost:port` inside the network namespace at `netns`, IPv4 then IPv6, with
/// containerd's error text (`internal/cri/server/sandbox_portforward_linux.go`).
fn dial_in(netns: &std::path::Path, id: &str, port: u16) -> Result<std::net::TcpStream, String> {
    let path = netns.to_path_buf();
    let id = id.to_string();
    let result = std::thread::scope(|s| {
        s.spawn(|| -> Result<std::net::TcpStream, String> {
            let ns = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            // Only this thread enters the pod's network namespace; the socket stays in it.
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| std::io::Error::from(e).to_string())?;
            let v4 = std::net::TcpStream::connect(("127.0.0.1", port));
            let v4_err = match v4 {
                Ok(c) => return Ok(c),
                Err(e) => format!("dial tcp4 127.0.0.1:{port}: connect: {}", go_errno(&e)),
            };
            match std::net::TcpStream::connect(("::1", port)) {
                Ok(c) => Ok(c),
                Err(e) => Err(format!(
                    "failed to connect to localhost:{port} inside namespace {id:?}, IPv4: {v4_err} IPv6 dial tcp6 [::1]:{port}: connect: {} ",
                    go_errno(&e)
                )),
            }
        })
        .join()
        .unwrap_or_else(|_| Err("the port-forward dialer panicked".into()))
    });
    result.map_err(|e| {
        format!(
            "failed to execute portforward in network namespace {:?}: {e}",
            path.display().to_string()
        )
    })
}

/// An OS error as Go's `syscall.Errno` prints it ("connection refused").
fn go_errno(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
