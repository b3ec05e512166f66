//! Objects that expire a fixed time after their last write, as etcd leases expire the keys
//! kube-apiserver attaches them to (Events: `--event-ttl`, pkg/registry/core/event/storage/storage.go
//! `TTLFunc`, a fresh lease of the whole TTL on every create and update).
//!
//! Deadlines are kept in memory on the monotonic clock, as etcd's lessor keeps them: a wall-clock
//! jump expires nothing early or late. When the store opens, every stored object of an expiring
//! resource gets the whole TTL again, as etcd's `Lessor.Promote` refreshes every lease when a
//! leader takes over (go.etcd.io/etcd/server/v3/lease/lessor.go), so a restart never expires
//! objects at once.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::Gvr;

/// (resource key, namespace, name)
pub(crate) type Key = (String, String, String);

#[derive(Debug, Default)]
pub(crate) struct Leases {
    /// Resource key → (its GVR, its TTL).
    ttl: HashMap<String, (Gvr, Duration)>,
    deadline: HashMap<Key, Instant>,
    queue: BTreeSet<(Instant, Key)>,
}

impl Leases {
    pub(crate) fn new(ttl: &[(Gvr, Duration)]) -> Self {
        Leases {
            ttl: ttl
                .iter()
                .map(|(g, d)| (g.key(), (g.clone(), *d)))
                .collect(),
            ..Default::default()
        }
    }

    /// The TTL of a resource key, if its objects expire.
    pub(crate) fn ttl_of(&self, resource: &str) -> Option<Duration> {
        self.ttl.get(resource).map(|(_, d)| *d)
    }

    /// The expiring resources.
    pub(crate) fn resources(&self) -> Vec<Gvr> {
        self.ttl.values().map(|(g, _)| g.clone()).collect()
    }

    /// The GVR of a resource key.
    pub(crate) fn gvr(&self, resource: &str) -> Option<Gvr> {
        self.ttl.get(resource).map(|(g, _)| g.clone())
    }

    /// A write of `key` at `now`: a new lease of the resource's whole TTL.
    pub(crate) fn written(&mut self, key: Key, now: Instant) {
        let Some(ttl) = self.ttl_of(&key.0) else {
            return;
        };
        self.forget(&key);
        let at = now + ttl;
        self.deadline.insert(key.clone(), at);
        self.queue.insert((at, key));
    }

    /// `key` is gone.
    pub(crate) fn forget(&mut self, key: &Key) {
        if let Some(at) = self.deadline.remove(key) {
            self.queue.remove(&(at, key.clone()));
        }
    }

    /// Up to `limit` keys whose lease ran out by `now`, earliest first (they stay leased until
    /// deleted).
    pub(crate) fn due(&self, now: Instant, limit: usize) -> Vec<Key> {
        self.queue
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Whether `key`'s lease ran out by `now`.
    pub(crate) fn is_due(&self, key: &Key, now: Instant) -> bool {
        self.deadline.get(key).is_some_and(|at| *at <= now)
    }

    /// How many objects hold a lease.
    pub(crate) fn len(&self) -> usize {
        self.deadline.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> Key {
        ("/v1/events".into(), "default".into(), n.into())
    }

    #[test]
    fn a_write_renews_the_lease_and_only_due_keys_are_returned() {
        let ttl = Duration::from_secs(10);
        let mut l = Leases::new(&[(Gvr::new("", "v1", "events"), ttl)]);
        let t0 = Instant::now();
        l.written(key("a"), t0);
        l.written(key("b"), t0 + Duration::from_secs(5));
        l.written(("/v1/pods".into(), "default".into(), "p".into()), t0);
        assert_eq!(l.len(), 2, "pods do not expire");
        assert!(l.due(t0 + Duration::from_secs(9), 10).is_empty());
        assert_eq!(l.due(t0 + ttl, 10), vec![key("a")]);
        // Rewritten: a new whole TTL from the write.
        l.written(key("a"), t0 + Duration::from_secs(8));
        assert_eq!(l.due(t0 + Duration::from_secs(16), 10), vec![key("b")]);
        assert_eq!(
            l.due(t0 + Duration::from_secs(20), 10),
            vec![key("b"), key("a")]
        );
        assert_eq!(l.due(t0 + Duration::from_secs(20), 1), vec![key("b")]);
        l.forget(&key("b"));
        assert_eq!(l.due(t0 + Duration::from_secs(20), 10), vec![key("a")]);
        assert_eq!(l.len(), 1);
    }
}
