//! Events as the kubelet's recorder writes them: source `kubelet` + host,
//! `involvedObject` with `fieldPath` `spec.containers{NAME}`, and aggregation
//! of identical events into one object with `count`, `firstTimestamp`,
//! `lastTimestamp` (k8s.io/client-go/tools/record/events_cache.go).

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use std::collections::HashMap;

/// Normal event type.
pub const NORMAL: &str = "Normal";
/// Warning event type.
pub const WARNING: &str = "Warning";

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    uid: String,
    field_path: String,
    type_: String,
    reason: String,
    message: String,
}

struct Seen {
    name: String,
    namespace: String,
    count: u32,
}

/// Records events about pods of one node.
///
/// As client-go's broadcaster, recording does not wait for the API server: events go
/// through a queue to one writer task, which keeps their order and the aggregation
/// state, so a pod's start is not slowed by its `Pulled`/`Created`/`Started` writes.
#[derive(Clone)]
pub struct Recorder {
    queue: tokio::sync::mpsc::UnboundedSender<Queued>,
}

/// One event to write, or a pod to forget.
enum Queued {
    Event {
        key: Key,
        namespace: String,
        name: String,
        resource_version: Option<String>,
        time: String,
    },
    Forget(String),
}

impl Recorder {
    /// A recorder for node `host`; its writer task runs until every clone is dropped.
    pub fn new(client: kube::Client, host: &str) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let host = host.to_owned();
        tokio::spawn(async move {
            let mut seen: HashMap<Key, Seen> = HashMap::new();
            while let Some(q) = rx.recv().await {
                match q {
                    Queued::Forget(uid) => seen.retain(|k, _| k.uid != uid),
                    Queued::Event {
                        key,
                        namespace,
                        name,
                        resource_version,
                        time,
                    } => {
                        let reason = key.reason.clone();
                        let r = write(
                            &client,
                            &host,
                            &mut seen,
                            key,
                            namespace,
                            &name,
                            resource_version,
                            &time,
                        );
                        if let Err(e) = r.await {
                            tracing::warn!(reason, error = %e, "cannot record event");
                        }
                    }
                }
            }
        });
        Recorder { queue }
    }

    /// Records one event about `pod` (container `container`, if any). Failures are logged.
    pub async fn record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let key = Key {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: container
                .map(|c| container_field_path(pod, c))
                .unwrap_or_default(),
            type_: type_.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        let _ = self.queue.send(Queued::Event {
            key,
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            resource_version: pod.metadata.resource_version.clone(),
            time: crate::time::now(),
        });
    }

    /// Forgets the aggregation state of a pod that is gone.
    pub async fn forget(&self, uid: &str) {
        let _ = self.queue.send(Queued::Forget(uid.to_owned()));
    }
}

/// Writes one event: a new Event object, or a count bump of the same earlier one.
#[allow(clippy::too_many_arguments)]
async fn write(
    client: &kube::Client,
    host: &str,
    seen: &mut HashMap<Key, Seen>,
    key: Key,
    namespace: String,
    name: &str,
    resource_version: Option<String>,
    now: &str,
) -> Result<(), kube::Error> {
    if let Some(s) = seen.get_mut(&key) {
        s.count += 1;
        let api: Api<Event> = Api::namespaced(client.clone(), &s.namespace);
        let patch = serde_json::json!({"count": s.count, "lastTimestamp": now});
        if api
            .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    let event_name = format!("{name}.{:x}", unique_suffix());
    let mut involved = serde_json::json!({
        "kind": "Pod", "apiVersion": "v1", "namespace": namespace, "name": name,
        "uid": key.uid, "resourceVersion": resource_version,
    });
    if !key.field_path.is_empty() {
        involved["fieldPath"] = key.field_path.clone().into();
    }
    let event: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": event_name, "namespace": namespace},
        "involvedObject": involved,
        "reason": key.reason, "message": key.message, "type": key.type_,
        "source": {"component": "kubelet", "host": host},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "reportingComponent": "kubelet", "reportingInstance": host,
    }))
    .map_err(kube::Error::SerdeError)?;
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    api.create(&PostParams::default(), &event).await?;
    seen.insert(
        key,
        Seen {
            name: event_name,
            namespace,
            count: 1,
        },
    );
    Ok(())
}

/// `spec.containers{NAME}` / `spec.initContainers{NAME}` (pkg/kubelet/container/ref.go).
fn container_field_path(pod: &Pod, container: &str) -> String {
    let is_init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|l| l.iter().any(|c| c.name == container));
    if is_init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

/// The recorder names events `<object>.<unix nanos in hex>` (events_cache.go).
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
