//! Wakes the pod workers when a pod bound to this node changes, so a new pod
//! starts as soon as the scheduler binds it instead of at the next periodic
//! pass (the kubelet's pod config watch, pkg/kubelet/config/apiserver.go).
//! The periodic pass stays: it notices container exits and retries.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{WatchEvent, WatchParams};
use kube::Api;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Watches the pods with `spec.nodeName=<node>` and notifies `wake` on every
/// change; re-establishes the watch (after a short pause) when it ends or fails.
pub async fn watch_pods(client: kube::Client, node: String, wake: Arc<Notify>) {
    let api: Api<Pod> = Api::all(client);
    let params = WatchParams::default().fields(&format!("spec.nodeName={node}"));
    loop {
        // "0": start from any recent state; the periodic pass covers what a
        // restarted watch may have missed.
        match api.watch(&params, "0").await {
            Ok(stream) => {
                let mut stream = stream.boxed();
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(WatchEvent::Bookmark(_)) => {}
                        Ok(WatchEvent::Error(e)) => {
                            tracing::debug!(error = %e.message, "pod watch error event");
                            break;
                        }
                        Ok(_) => wake.notify_one(),
                        Err(e) => {
                            tracing::debug!(error = %e, "pod watch stream failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot watch pods"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
