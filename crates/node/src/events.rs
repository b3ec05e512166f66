//! Events as the kubelet's recorder writes them: source `kubelet` + host,
//! `involvedObject` with `fieldPath` `spec.containers{NAME}`, and aggregation
//! of identical events into one object with `count`, `firstTimestamp`,
//! `lastTimestamp` (k8s.io/client-go/tools/record/events_cache.go).

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

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
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    host: String,
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
}

impl Recorder {
    /// A recorder for node `host`.
    pub fn new(client: kube::Client, host: &str) -> Self {
        Recorder {
            client,
            host: host.to_owned(),
            seen: Arc::default(),
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
        if let Err(e) = self
            .try_record(pod, container, type_, reason, message)
            .await
        {
            tracing::warn!(reason, error = %e, "cannot record event");
        }
    }

    async fn try_record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        type_: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let key = Key {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: container
                .map(|c| container_field_path(pod, c))
                .unwrap_or_default(),
            type_: type_.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        let now = crate::time::now();
        let mut seen = self.seen.lock().await;
        if let Some(s) = seen.get_mut(&key) {
            s.count += 1;
            let api: Api<Event> = Api::namespaced(self.client.clone(), &s.namespace);
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
            "uid": key.uid, "resourceVersion": pod.metadata.resource_version,
        });
        if !key.field_path.is_empty() {
            involved["fieldPath"] = key.field_path.clone().into();
        }
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": type_,
            "source": {"component": "kubelet", "host": self.host},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": self.host,
        }))
        .map_err(kube::Error::SerdeError)?;
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
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

    /// Forgets the aggregation state of a pod that is gone.
    pub async fn forget(&self, uid: &str) {
        self.seen.lock().await.retain(|k, _| k.uid != uid);
    }
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
