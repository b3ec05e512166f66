//! Events as the kubelet's recorder writes them: source `kubelet` + host,
//! `involvedObject` with `fieldPath` `spec.containers{NAME}`, and aggregation
//! of identical events into one object with `count`, `firstTimestamp`,
//! `lastTimestamp` (k8s.io/client-go/tools/record/events_cache.go).

use crate::health::{is_unavailable, ApiHealth};
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
/// As there (k8s.io/client-go/tools/record/event.go), the queue holds at most
/// [`MAX_QUEUED_EVENTS`] (newer ones are dropped when it is full), and an event the API
/// server could not take because it was unavailable is retried [`MAX_TRIES_PER_EVENT`]
/// times, [`RETRY_SLEEP`] apart (the first wait a random part of it), before it is dropped;
/// one the server refused is not retried.
#[derive(Clone)]
pub struct Recorder {
    queue: tokio::sync::mpsc::Sender<Queued>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// client-go's `maxQueuedEvents`.
pub const MAX_QUEUED_EVENTS: usize = 1000;
/// client-go's `maxTriesPerEvent`.
pub const MAX_TRIES_PER_EVENT: u32 = 12;
/// client-go's `defaultSleepDuration`.
pub const RETRY_SLEEP: std::time::Duration = std::time::Duration::from_secs(10);

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
    pub fn new(client: kube::Client, host: &str, health: ApiHealth) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel(MAX_QUEUED_EVENTS);
        let host = host.to_owned();
        tokio::spawn(async move {
            let mut seen: HashMap<Key, Seen> = HashMap::new();
            while let Some(q) = rx.recv().await {
                let Queued::Event {
                    key,
                    namespace,
                    name,
                    resource_version,
                    time,
                } = q
                else {
                    if let Queued::Forget(uid) = q {
                        seen.retain(|k, _| k.uid != uid);
                    }
                    continue;
                };
                let reason = key.reason.clone();
                let mut tries = 0;
                loop {
                    let r = crate::health::bounded(write(
                        &client,
                        &host,
                        &mut seen,
                        key.clone(),
                        namespace.clone(),
                        &name,
                        resource_version.clone(),
                        &time,
                    ))
                    .await;
                    health.record("record event", &r);
                    let Err(e) = r else { break };
                    if !is_unavailable(&e) {
                        tracing::warn!(reason, error = %e, "cannot record event");
                        break;
                    }
                    tries += 1;
                    if tries >= MAX_TRIES_PER_EVENT {
                        tracing::warn!(reason, error = %e, "cannot record event (retry limit exceeded)");
                        break;
                    }
                    // The first wait is random, so nodes do not all retry at once.
                    let wait = if tries == 1 {
                        RETRY_SLEEP.mul_f64(f64::from(unique_suffix() as u32 % 1000) / 1000.0)
                    } else {
                        RETRY_SLEEP
                    };
                    tokio::time::sleep(wait).await;
                }
            }
        });
        Recorder {
            queue,
            dropped: Default::default(),
        }
    }

    fn enqueue(&self, q: Queued) {
        use std::sync::atomic::Ordering;
        if self.queue.try_send(q).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() || n == 0 {
                tracing::warn!(
                    dropped = n + 1,
                    "event queue full ({MAX_QUEUED_EVENTS} events): event dropped"
                );
            }
        }
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
        self.enqueue(Queued::Event {
            key,
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            resource_version: pod.metadata.resource_version.clone(),
            time: crate::time::now(),
        });
    }

    /// Forgets the aggregation state of a pod that is gone.
    pub async fn forget(&self, uid: &str) {
        self.enqueue(Queued::Forget(uid.to_owned()));
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
        let api: Api<Event> = Api::namespaced(client.clone(), &s.namespace);
        let patch = serde_json::json!({"count": s.count + 1, "lastTimestamp": now});
        match api
            .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                s.count += 1;
                return Ok(());
            }
            // Retried as a whole; a refused patch (the event is gone) makes a new one.
            Err(e) if is_unavailable(&e) => return Err(e),
            Err(_) => {}
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
