//! When each pod of a namespace became Ready and when it was gone, seen through one watch that
//! runs for the whole benchmark (kube-rs, as a controller sees the pods).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

/// Longest wait for a pod to become Ready or gone; a guard against hanging, not a measurement.
const PATIENCE: Duration = Duration::from_secs(300);

#[derive(Default, Clone, Copy)]
struct Seen {
    /// The first event of the pod: the API server stored it.
    created: Option<Instant>,
    ready: Option<Instant>,
    gone: Option<Instant>,
}

type Shared = Arc<(Mutex<HashMap<String, Seen>>, Condvar)>;

pub struct Watcher {
    seen: Shared,
}

/// The pod's Ready condition is True.
pub fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl Watcher {
    /// Starts watching `namespace` from now on (returns once the watch is open).
    pub fn start(kubeconfig: &Path, namespace: &str) -> Watcher {
        let seen: Shared = Arc::default();
        let shared = seen.clone();
        let kubeconfig = kubeconfig.to_owned();
        let namespace = namespace.to_owned();
        let (opened, is_open) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = armorlet_node::client_from_kubeconfig(&kubeconfig)
                    .await
                    .unwrap();
                let pods: Api<Pod> = Api::namespaced(client, &namespace);
                let mut rv = pods
                    .list_metadata(&ListParams::default().limit(1))
                    .await
                    .unwrap()
                    .metadata
                    .resource_version
                    .unwrap();
                let mut opened = Some(opened);
                loop {
                    let wp = WatchParams::default().timeout(290);
                    // An error here is the cluster stopping at the end of the benchmark: a pod
                    // still awaited then times out in `wait`, with its names.
                    let Ok(events) = pods.watch(&wp, &rv).await else {
                        return;
                    };
                    let mut events = events.boxed();
                    if let Some(tx) = opened.take() {
                        tx.send(()).unwrap();
                    }
                    while let Some(ev) = events.next().await {
                        let now = Instant::now();
                        let Ok(ev) = ev else {
                            break;
                        };
                        let (pod, gone) = match ev {
                            WatchEvent::Added(p) | WatchEvent::Modified(p) => (p, false),
                            WatchEvent::Deleted(p) => (p, true),
                            WatchEvent::Bookmark(b) => {
                                rv = b.metadata.resource_version;
                                continue;
                            }
                            WatchEvent::Error(e) => panic!("pod watch: {e:?}"),
                        };
                        rv = pod.metadata.resource_version.clone().unwrap_or(rv);
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let (lock, cv) = &*shared;
                        let mut seen = lock.lock().unwrap();
                        let s = seen.entry(name).or_default();
                        s.created.get_or_insert(now);
                        if gone {
                            s.gone.get_or_insert(now);
                        } else if ready(&pod) {
                            s.ready.get_or_insert(now);
                        }
                        cv.notify_all();
                    }
                }
            });
        });
        is_open.recv().expect("the pod watch did not open");
        Watcher { seen }
    }

    fn wait(
        &self,
        names: &[String],
        what: &str,
        get: impl Fn(&Seen) -> Option<Instant>,
    ) -> Instant {
        let (lock, cv) = &*self.seen;
        let deadline = Instant::now() + PATIENCE;
        let mut seen = lock.lock().unwrap();
        loop {
            let times: Option<Vec<Instant>> =
                names.iter().map(|n| seen.get(n).and_then(&get)).collect();
            if let Some(times) = times {
                return times.into_iter().max().expect("at least one pod");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for pods to be {what}: {names:?}"
            );
            seen = cv.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// When the last of `names` became Ready.
    pub fn wait_ready(&self, names: &[String]) -> Instant {
        self.wait(names, "Ready", |s| s.ready)
    }

    /// When `name` was first seen (created), once it became Ready.
    pub fn created(&self, name: &str) -> Instant {
        let at = [name.to_owned()];
        self.wait(&at, "created", |s| s.created)
    }

    /// When the last of `names` was deleted.
    pub fn wait_gone(&self, names: &[String]) -> Instant {
        self.wait(names, "gone", |s| s.gone)
    }
}
