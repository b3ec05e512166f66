//! Watches: a replay of the event log from a resourceVersion followed by live events.
//!
//! Semantics follow the Kubernetes watch contract (staging/src/k8s.io/apimachinery/pkg/watch and
//! the apiserver's cacher):
//! 1. From resourceVersion `None` or `0`, the watch first yields a synthetic `ADDED` for every
//!    current matching object, then every change after that.
//! 2. From `n > 0`, it yields every change with a resourceVersion greater than `n`, in order; if
//!    those events were compacted away, creating the watch fails with [`StoreError::Expired`].
//! 3. With selectors, an object that starts matching arrives as `ADDED`, one that stops matching
//!    as `DELETED`.

use std::collections::VecDeque;

use rusqlite::{params, Connection};
use serde_json::Value;

use crate::feed::{FeedReceiver, Next};
use crate::{meta_get, FieldSelector, Gvr, LabelSelector, LogEntry, Result, Store, StoreError};

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created (or started matching the selectors).
    Added,
    /// The object changed.
    Modified,
    /// The object was removed (or stopped matching the selectors).
    Deleted,
}

impl EventType {
    /// The wire name: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "ADDED" => EventType::Added,
            "DELETED" => EventType::Deleted,
            _ => EventType::Modified,
        }
    }
}

/// One event delivered to a watcher.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// What happened.
    pub event: EventType,
    /// The object's state after the change (its last state for deletions).
    pub object: Value,
    /// The resourceVersion of the change.
    pub resource_version: u64,
}

/// A live watch; call [`Watch::next`] in a loop.
pub struct Watch {
    store: Store,
    rx: FeedReceiver,
    pending: VecDeque<WatchEvent>,
    last_rv: u64,
    resource: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("resource", &self.resource)
            .field("last_rv", &self.last_rv)
            .finish()
    }
}

fn load_events(conn: &Connection, resource: &str, after: u64) -> Result<Vec<LogEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rv, namespace, type, data, prev FROM events WHERE resource = ?1 AND rv > ?2 ORDER BY rv",
    )?;
    let rows = stmt.query_map(params![resource, after as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (rv, namespace, ty, data, prev) = row?;
        out.push(LogEntry {
            rv: rv as u64,
            resource: resource.to_string(),
            namespace,
            event: EventType::parse(&ty),
            object: serde_json::from_str(&data)?,
            prev: match prev {
                Some(p) => Some(serde_json::from_str(&p)?),
                None => None,
            },
        });
    }
    Ok(out)
}

impl Store {
    /// Starts a watch on one resource, in one namespace or (with `None`) all of them.
    pub fn watch(
        &self,
        gvr: &Gvr,
        namespace: Option<&str>,
        resource_version: Option<u64>,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> Result<Watch> {
        let conn = self.lock();
        // Subscribing under the lock means no write can slip between the replay and the live feed.
        let rx = self.inner.feed.subscribe();
        let head = meta_get(&conn, "resource_version")?;
        let mut watch = Watch {
            store: self.clone(),
            rx,
            pending: VecDeque::new(),
            last_rv: head,
            resource: gvr.key(),
            namespace: namespace.map(str::to_string),
            labels,
            fields,
        };
        match resource_version {
            None | Some(0) => {
                let mut stmt = conn.prepare_cached(
                    "SELECT rv, data FROM objects WHERE resource = ?1 AND (?2 IS NULL OR namespace = ?2) ORDER BY namespace, name",
                )?;
                let rows = stmt.query_map(params![watch.resource, namespace], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (rv, data) = row?;
                    let object: Value = serde_json::from_str(&data)?;
                    if watch.matches(&object) {
                        watch.pending.push_back(WatchEvent {
                            event: EventType::Added,
                            object,
                            resource_version: rv as u64,
                        });
                    }
                }
            }
            Some(n) => {
                let compacted = meta_get(&conn, "compacted")?;
                if n < compacted {
                    return Err(StoreError::Expired {
                        requested: n,
                        compacted,
                    });
                }
                for entry in load_events(&conn, &watch.resource, n)? {
                    if let Some(ev) = watch.convert(&entry) {
                        watch.pending.push_back(ev);
                    }
                }
                watch.last_rv = head.max(n);
            }
        }
        Ok(watch)
    }
}

impl Watch {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches_object(obj)
    }

    fn convert(&self, entry: &LogEntry) -> Option<WatchEvent> {
        if entry.resource != self.resource {
            return None;
        }
        if let Some(ns) = &self.namespace {
            if &entry.namespace != ns {
                return None;
            }
        }
        let now = self.matches(&entry.object);
        let before = entry.prev.as_ref().is_some_and(|p| self.matches(p));
        let event = match entry.event {
            EventType::Added => now.then_some(EventType::Added)?,
            EventType::Deleted => (now || before).then_some(EventType::Deleted)?,
            EventType::Modified => match (before, now) {
                (true, true) => EventType::Modified,
                (false, true) => EventType::Added,
                (true, false) => EventType::Deleted,
                (false, false) => return None,
            },
        };
        Some(WatchEvent {
            event,
            object: entry.object.clone(),
            resource_version: entry.rv,
        })
    }

    /// Reloads the log after the live feed overflowed.
    fn catch_up(&mut self) -> Result<()> {
        let conn = self.store.lock();
        let compacted = meta_get(&conn, "compacted")?;
        if self.last_rv < compacted {
            return Err(StoreError::Expired {
                requested: self.last_rv,
                compacted,
            });
        }
        for entry in load_events(&conn, &self.resource, self.last_rv)? {
            if let Some(ev) = self.convert(&entry) {
                self.pending.push_back(ev);
            }
        }
        self.last_rv = meta_get(&conn, "resource_version")?.max(self.last_rv);
        Ok(())
    }

    /// Waits for the next event. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<WatchEvent> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(ev);
            }
            match self.rx.next().await {
                Next::Entry(entry) => {
                    if entry.rv <= self.last_rv {
                        continue;
                    }
                    self.last_rv = entry.rv;
                    if let Some(ev) = self.convert(&entry) {
                        return Ok(ev);
                    }
                }
                Next::Lagged => self.catch_up()?,
            }
        }
    }

    /// The resourceVersion a BOOKMARK may report now: every change up to it has been delivered
    /// (or did not match). `None` while replayed events are still queued.
    pub fn bookmark_resource_version(&self) -> Option<u64> {
        self.pending.is_empty().then_some(self.last_rv)
    }
}
