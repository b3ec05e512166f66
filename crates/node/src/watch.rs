//! The pods bound to this node, kept by a list and a watch (the kubelet's pod
//! config source, pkg/kubelet/config/apiserver.go, which runs a reflector over
//! `spec.nodeName=<node>`): the workers read their pods from this cache instead
//! of listing them on every pass, and are woken on every change, so a new pod
//! starts as soon as the scheduler binds it. The periodic pass stays: it
//! notices container exits and retries.
//!
//! Listing every second was the node's main idle cost (serializing and parsing
//! every pod of the node on both sides of the connection; 110 pods: ~8% of a
//! core here), and woken passes during a burst listed once per pod event.

use crate::health::{ApiHealth, Backoff};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::Api;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The node's pods by uid; `None` until the first list arrived.
#[derive(Clone, Default, Debug)]
pub struct PodCache(Arc<Mutex<Option<BTreeMap<String, Pod>>>>);

impl PodCache {
    /// The pods as last seen, or `None` before the first list.
    pub fn snapshot(&self) -> Option<Vec<Pod>> {
        let pods = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pods.as_ref().map(|m| m.values().cloned().collect())
    }

    fn replace(&self, items: Vec<Pod>) {
        let map = items
            .into_iter()
            .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
            .collect();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(map);
    }

    fn apply(&self, pod: Pod, deleted: bool) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let mut pods = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let map = pods.get_or_insert_with(BTreeMap::new);
        if deleted {
            map.remove(&uid);
        } else {
            map.insert(uid, pod);
        }
    }
}

/// Lists the pods with `spec.nodeName=<node>` into `cache`, then watches them
/// from the list's resourceVersion, applying each change and notifying `wake`.
/// A watch that the server ends is resumed from the last resourceVersion; one
/// that fails (410 Gone included) starts over with a new list.
///
/// While the API server is unavailable the cache keeps the pods last seen (the
/// node keeps running them) and the list is retried with client-go's reflector
/// back-off, 800 ms doubling up to 30 s (tools/cache/reflector.go
/// `NewReflectorWithOptions`), reset by a list that works.
pub async fn watch_pods(
    client: kube::Client,
    node: String,
    wake: Arc<Notify>,
    cache: PodCache,
    health: ApiHealth,
) {
    let api: Api<Pod> = Api::all(client);
    let selector = format!("spec.nodeName={node}");
    let mut backoff = Backoff::new(Duration::from_millis(800), Duration::from_secs(30));
    loop {
        let listed = api.list(&ListParams::default().fields(&selector)).await;
        health.record("list pods", &listed);
        let list = match listed {
            Ok(list) => list,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list pods");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        backoff.reset();
        let mut rv = list.metadata.resource_version.unwrap_or_default();
        cache.replace(list.items);
        wake.notify_one();
        'watch: loop {
            let params = WatchParams::default().fields(&selector).timeout(290);
            let started = api.watch(&params, &rv).await;
            health.record("watch pods", &started);
            let mut stream = match started {
                Ok(s) => s.boxed(),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot watch pods");
                    break 'watch;
                }
            };
            while let Some(ev) = stream.next().await {
                let (pod, deleted) = match ev {
                    Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)) => (p, false),
                    Ok(WatchEvent::Deleted(p)) => (p, true),
                    Ok(WatchEvent::Bookmark(b)) => {
                        rv = b.metadata.resource_version;
                        continue;
                    }
                    Ok(WatchEvent::Error(e)) => {
                        tracing::debug!(error = %e.message, "pod watch error event");
                        break 'watch;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "pod watch stream failed");
                        break 'watch;
                    }
                };
                if let Some(v) = &pod.metadata.resource_version {
                    rv.clone_from(v);
                }
                cache.apply(pod, deleted);
                wake.notify_one();
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
