//! A cache of every object of a few resources, kept current from the live feed: what client-go's
//! shared informer is to a controller (one list, then the changes), for the API server's
//! in-process controllers. Before it, each controller pass listed the pods several times, and a
//! list parses every stored pod while holding the store's one connection lock: with 1,000 pods
//! stored, single-object requests waited tens of milliseconds behind it.
//!
//! Invariant: after [`Informer::sync`], the cache holds exactly the store's objects of its
//! resources as of [`Informer::resource_version`] (in the store's list order).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::feed::{FeedReceiver, Next};
use crate::{meta_get, EventType, Gvr, Result, Store};

/// Objects of one resource by (namespace, name).
type Objects = BTreeMap<(String, String), Value>;

/// See the module documentation.
pub struct Informer {
    store: Store,
    rx: FeedReceiver,
    /// By resource key ([`Gvr::key`]).
    resources: BTreeMap<String, Objects>,
    rv: u64,
    /// A relist failed (its queue already emptied): the next [`Informer::sync`] lists again.
    stale: bool,
}

impl std::fmt::Debug for Informer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("resources", &self.resources.keys().collect::<Vec<_>>())
            .field("rv", &self.rv)
            .finish()
    }
}

impl Store {
    /// An informer over `resources`, filled from the store now.
    pub fn informer(&self, resources: &[Gvr]) -> Result<Informer> {
        let rx = {
            // Subscribed under the lock, as a watch is: no write falls between list and feed.
            let _conn = self.lock();
            self.inner.feed.subscribe()
        };
        let mut informer = Informer {
            store: self.clone(),
            rx,
            resources: resources
                .iter()
                .map(|g| (g.key(), Objects::new()))
                .collect(),
            rv: 0,
            stale: true,
        };
        informer.relist()?;
        Ok(informer)
    }
}

impl Informer {
    /// Reads every object again: at the start, and after the feed dropped entries. The rows are
    /// read under the store's lock (with the feed emptied under it too, so the queue then holds
    /// only later writes) and parsed after it is released. The cache changes only when all
    /// parsed; until then the informer is stale and lists again at the next sync.
    fn relist(&mut self) -> Result<()> {
        self.stale = true;
        let mut rows: Vec<(String, String, String, String)> = Vec::new();
        let rv;
        {
            let conn = self.store.lock();
            while self.rx.try_next().is_some() {}
            rv = meta_get(&conn, "resource_version")?;
            let mut stmt = conn.prepare_cached(
                "SELECT namespace, name, data FROM objects WHERE resource = ?1 ORDER BY namespace, name",
            )?;
            for resource in self.resources.keys() {
                let found = stmt.query_map([resource], |r| {
                    Ok((resource.clone(), r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                for row in found {
                    rows.push(row?);
                }
            }
        }
        let mut fresh: BTreeMap<String, Objects> = self
            .resources
            .keys()
            .map(|k| (k.clone(), Objects::new()))
            .collect();
        for (resource, namespace, name, data) in rows {
            let object: Value = serde_json::from_str(&data)?;
            if let Some(objects) = fresh.get_mut(&resource) {
                objects.insert((namespace, name), object);
            }
        }
        self.resources = fresh;
        self.rv = rv;
        self.stale = false;
        Ok(())
    }

    /// Applies the writes committed since the last call (without waiting for more). After an
    /// error the informer recovers by listing again at the next call.
    pub fn sync(&mut self) -> Result<()> {
        if self.stale {
            return self.relist();
        }
        while let Some(next) = self.rx.try_next() {
            let entry = match next {
                Next::Entry(entry) => entry,
                Next::Lagged => return self.relist(),
            };
            if entry.rv <= self.rv {
                continue;
            }
            self.rv = entry.rv;
            let Some(objects) = self.resources.get_mut(&entry.resource) else {
                continue;
            };
            let name = entry.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let key = (entry.namespace.clone(), name);
            match entry.event {
                EventType::Deleted => {
                    objects.remove(&key);
                }
                EventType::Added | EventType::Modified => {
                    objects.insert(key, entry.object.clone());
                }
            }
        }
        Ok(())
    }

    /// The store's resourceVersion the cache reflects.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The cached objects of `gvr`, in the order [`Store::list`] gives (namespace, name); empty
    /// for a resource the informer does not hold.
    pub fn list(&self, gvr: &Gvr) -> Vec<&Value> {
        self.resources
            .get(&gvr.key())
            .map(|objects| objects.values().collect())
            .unwrap_or_default()
    }
}
