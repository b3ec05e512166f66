//! The armorlet object store: Kubernetes objects as JSON documents in SQLite (WAL mode).
//!
//! Start with [`Store::open`]. Every write takes the next value of one global, persisted
//! `resourceVersion` counter and appends a row to an event log in the same transaction, so a
//! [`Watch`] can resume from any resourceVersion still in the log, also after a restart.
//! Events older than the retention window are compacted away; a watch from before that point fails
//! with [`StoreError::Expired`] (HTTP 410 in the API server).
//!
//! The store knows nothing about HTTP or about particular kinds beyond `metadata`; defaulting,
//! validation and grace-period policy belong to the API server, which passes the decisions in
//! through [`WriteOptions`] and [`DeleteOptions`].

mod error;
mod feed;
mod informer;
pub mod selector;
pub mod time;
mod ttl;
mod watch;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{json, Map, Value};

pub use error::{Result, StoreError};
pub use informer::Informer;
pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use watch::{EventType, Watch, WatchEvent};

/// Group, version and resource: the key space an object lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gvr {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `pods`.
    pub resource: String,
}

impl Gvr {
    /// Builds a GVR.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
        }
    }

    /// The storage key, `group/version/resource` (`/v1/pods` for the core group).
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.group, self.version, self.resource)
    }

    /// The qualified resource used in error messages: `pods`, `daemonsets.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Tuning for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How many events the log keeps before older ones are compacted away.
    pub event_retention: u64,
    /// How many events the in-memory feed queues per watcher before a slow watcher has to
    /// re-read the log (entries every watcher took are freed at once).
    pub live_buffer: usize,
    /// Resources whose objects expire this long after their last write, as the keys of an etcd
    /// lease (kube-apiserver's `--event-ttl` for Events); [`Store::expire`] deletes them.
    pub ttl: Vec<(Gvr, Duration)>,
    /// Resources whose writes commit without waiting for the disk (SQLite's
    /// `synchronous=NORMAL` for their transactions; every other write is `FULL`). Such a write
    /// survives a crash of the process, and a power loss once any later synced write or a
    /// checkpoint synced the log after it: both sync the whole log. For Events, which are
    /// best-effort in Kubernetes (the recorder drops them when its queue is full, they expire
    /// after `--event-ttl`, and clusters keep them in their own etcd with
    /// `--etcd-servers-overrides`), so that the events a pod start writes do not hold the
    /// store's one writer while the disk syncs, ahead of the pod's own writes.
    pub unsynced: Vec<Gvr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            event_retention: 10_000,
            live_buffer: 4096,
            ttl: Vec::new(),
            unsynced: Vec::new(),
        }
    }
}

/// Decisions the caller makes for a create or update.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Maintain `metadata.generation` (1 on create, +1 when `spec` changes).
    pub tracks_generation: bool,
    /// Validate and compute the result, but write nothing.
    pub dry_run: bool,
}

/// Decisions the caller makes for a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Some(n)` with n > 0: graceful deletion, the object gets `deletionTimestamp = now + n` and
    /// stays until deleted again with 0. `None` or `Some(0)`: delete now (unless finalizers remain).
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the stored uid is this one.
    pub precondition_uid: Option<String>,
    /// Delete only if the stored resourceVersion is this one.
    pub precondition_resource_version: Option<String>,
    /// Compute the outcome but write nothing.
    pub dry_run: bool,
    /// Mark the object (`deletionTimestamp`) but keep it, as if a finalizer were present; used for
    /// namespaces, which stay `Terminating` until their content is gone.
    pub keep: bool,
    /// Finalizers the delete adds (the garbage collector's `orphan` or `foregroundDeletion`,
    /// chosen by the propagation policy); an object left with finalizers stays, marked.
    pub add_finalizers: Vec<String>,
    /// Finalizers the delete removes (the other garbage collection finalizer).
    pub remove_finalizers: Vec<String>,
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    /// The object is gone; this is its last state (with the deletion's resourceVersion).
    Deleted(Value),
    /// The object remains, marked with `deletionTimestamp` (grace period or finalizers pending).
    Pending(Value),
}

/// Parameters of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only objects whose labels match.
    pub labels: LabelSelector,
    /// Only objects whose fields match.
    pub fields: FieldSelector,
    /// At most this many items; a continue token is returned when more remain.
    pub limit: Option<usize>,
    /// A token from a previous page.
    pub continue_token: Option<String>,
}

/// One write from the event log, its object as stored JSON text ([`Store::writes_after`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RawWrite {
    /// The resource key ([`Gvr::key`]).
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// The object was deleted (`data` is its last state).
    pub deleted: bool,
    pub data: String,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResult {
    /// The objects, ordered by namespace then name.
    pub items: Vec<Value>,
    /// The store's resourceVersion when the list (its first page) was taken.
    pub resource_version: u64,
    /// Set when more items remain.
    pub continue_token: Option<String>,
    /// How many matching items remain after this page, when a continue token is set.
    pub remaining_item_count: Option<u64>,
}

/// One entry of the event log, shared by all watchers.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    pub rv: u64,
    pub resource: String,
    pub namespace: String,
    pub event: EventType,
    pub object: Value,
    pub prev: Option<Value>,
}

pub(crate) struct Inner {
    pub conn: Mutex<Connection>,
    pub feed: feed::Feed,
    pub options: Options,
    pub path: PathBuf,
    pub leases: Mutex<ttl::Leases>,
    /// The keys of [`Options::unsynced`].
    pub unsynced: HashSet<String>,
}

/// A handle to the store; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    type TEXT NOT NULL, data TEXT NOT NULL, prev TEXT);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (resource, rv);
INSERT OR IGNORE INTO meta (key, value) VALUES ('resource_version', 0), ('compacted', 0);
";

fn meta_get(conn: &Connection, key: &str) -> Result<u64> {
    let v: i64 = conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?;
    Ok(v as u64)
}

fn meta_set(conn: &Connection, key: &str, value: u64) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = ?2 WHERE key = ?1",
        params![key, value as i64],
    )?;
    Ok(())
}

fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>> {
    let map = obj.as_object_mut().ok_or_else(|| StoreError::BadRequest {
        message: "the object must be a JSON object".to_string(),
    })?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if meta.is_null() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().ok_or_else(|| StoreError::BadRequest {
        message: "metadata must be an object".to_string(),
    })
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// The finalizers after a delete's changes (upstream `deletionFinalizersForGarbageCollection`
/// and `updateForGracefulDeletionAndFinalizers` in
/// staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go).
fn changed_finalizers(obj: &Value, opts: &DeleteOptions) -> Option<Vec<Value>> {
    if opts.add_finalizers.is_empty() && opts.remove_finalizers.is_empty() {
        return None;
    }
    let old: Vec<Value> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut new: Vec<Value> = old
        .iter()
        .filter(|f| {
            !f.as_str()
                .is_some_and(|f| opts.remove_finalizers.iter().any(|r| r == f))
        })
        .cloned()
        .collect();
    for f in &opts.add_finalizers {
        if !new.iter().any(|x| x == f.as_str()) {
            new.push(Value::String(f.clone()));
        }
    }
    (new != old).then_some(new)
}

fn set_finalizers(meta: &mut Map<String, Value>, finalizers: Vec<Value>) {
    if finalizers.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
}

fn hex_encode(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Encodes a continue token: the list's resourceVersion and the last key returned.
fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    hex_encode(&json!({"rv": rv, "ns": namespace, "name": name}).to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String, String)> {
    let bad = || {
        StoreError::BadRequest {
        message: "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".to_string(),
    }
    };
    let v: Value = serde_json::from_str(&hex_decode(token).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok((
        v["rv"].as_u64().ok_or_else(bad)?,
        v["ns"].as_str().ok_or_else(bad)?.to_string(),
        v["name"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

/// The store holds Secrets: its database is created mode 0600 before SQLite opens it, and
/// SQLite creates the `-wal` and `-shm` files with the database's mode. Files of an older
/// data directory are made 0600 too.
fn private_files(db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `dir/store.db` with default options.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, Options::default())
    }

    /// Opens the store with explicit options.
    pub fn open_with(dir: &Path, options: Options) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("store.db");
        private_files(&path).map_err(|source| StoreError::DataDir {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path)?;
        // WAL with synchronous=FULL: every committed write survives a crash of the process or
        // of the machine (https://www.sqlite.org/pragma.html#pragma_synchronous); the writes of
        // `Options::unsynced` resources wait for the next synced one (see `begin`).
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::BadRequest {
                message: format!("sqlite refused WAL mode (got {mode})"),
            });
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;")?;
        conn.execute_batch(SCHEMA)?;
        // Every stored object of an expiring resource gets a whole TTL from now (see `ttl`).
        let mut leases = ttl::Leases::new(&options.ttl);
        let now = Instant::now();
        for gvr in leases.resources() {
            let mut stmt =
                conn.prepare("SELECT namespace, name FROM objects WHERE resource = ?1")?;
            let keys = stmt
                .query_map([gvr.key()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(stmt);
            for (ns, name) in keys {
                leases.written((gvr.key(), ns, name), now);
            }
        }
        let unsynced = options.unsynced.iter().map(Gvr::key).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                feed: feed::Feed::new(options.live_buffer),
                unsynced,
                options,
                path,
                leases: Mutex::new(leases),
            }),
        })
    }

    fn leases(&self) -> MutexGuard<'_, ttl::Leases> {
        self.inner.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deletes up to `limit` objects whose TTL ([`Options::ttl`]) ran out, earliest first, each
    /// with a `DELETED` event as an etcd lease's expiry gives kube-apiserver's watchers (the
    /// key's delete event; staging/src/k8s.io/apiserver/pkg/storage/etcd3/watcher.go turns it
    /// into `watch.Deleted`). Finalizers do not keep them, as they do not keep an etcd key
    /// whose lease expired. Returns how many were deleted.
    pub fn expire(&self, limit: usize) -> Result<usize> {
        let due = self.leases().due(Instant::now(), limit);
        let mut deleted = 0;
        for key in due {
            let Some(gvr) = self.leases().gvr(&key.0) else {
                continue;
            };
            let mut conn = self.lock();
            let tx = self.begin(&mut conn, &gvr)?;
            // Renewed since `due` was taken (the connection's lock orders it after that write)?
            if !self.leases().is_due(&key, Instant::now()) {
                continue;
            }
            let (_, namespace, name) = &key;
            let Some(old) = Self::load(&tx, &gvr, namespace, name)? else {
                self.leases().forget(&key);
                continue;
            };
            let rv = meta_get(&tx, "resource_version")? + 1;
            let mut obj = old.clone();
            metadata_mut(&mut obj)?.insert("resourceVersion".into(), Value::String(rv.to_string()));
            let entry = LogEntry {
                rv,
                resource: gvr.key(),
                namespace: namespace.clone(),
                event: EventType::Deleted,
                object: obj,
                prev: Some(old),
            };
            self.commit(tx, entry, name)?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// How many stored objects hold a TTL lease.
    pub fn leased(&self) -> usize {
        self.leases().len()
    }

    /// Begins a write transaction on `gvr`'s objects, synced on commit unless the resource
    /// is one of [`Options::unsynced`]. (`PRAGMA synchronous` cannot change inside a
    /// transaction, so it is set for each one.)
    fn begin<'c>(&self, conn: &'c mut Connection, gvr: &Gvr) -> Result<rusqlite::Transaction<'c>> {
        let sync = if self.inner.unsynced.contains(&gvr.key()) {
            "NORMAL"
        } else {
            "FULL"
        };
        conn.pragma_update(None, "synchronous", sync)?;
        Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back
        // on drop), so a poisoned mutex is still safe to use.
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SQLite's `PRAGMA integrity_check` and a check that every stored document is JSON
    /// and its resourceVersion is not newer than the store's; the problems found, if any.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut problems: Vec<String> = conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|s| s != "ok")
            .collect();
        let newest = meta_get(&conn, "resource_version")?;
        let mut stmt = conn.prepare("SELECT resource, namespace, name, rv, data FROM objects")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                format!(
                    "{}/{}/{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ),
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (key, rv, data) = row?;
            if rv <= 0 || rv as u64 > newest {
                problems.push(format!("{key}: resourceVersion {rv} outside 1..={newest}"));
            }
            if let Err(e) = serde_json::from_str::<Value>(&data) {
                problems.push(format!("{key}: not JSON: {e}"));
            }
        }
        Ok(problems)
    }

    /// The newest resourceVersion handed out.
    pub fn current_resource_version(&self) -> Result<u64> {
        meta_get(&self.lock(), "resource_version")
    }

    /// The newest resourceVersion no longer in the event log (0 when nothing was compacted).
    pub fn compacted_resource_version(&self) -> Result<u64> {
        meta_get(&self.lock(), "compacted")
    }

    /// Reads one object.
    pub fn get(&self, gvr: &Gvr, namespace: &str, name: &str) -> Result<Value> {
        let conn = self.lock();
        Self::load(&conn, gvr, namespace, name)?.ok_or_else(|| StoreError::NotFound {
            resource: gvr.qualified(),
            name: name.to_string(),
        })
    }

    fn load(conn: &Connection, gvr: &Gvr, namespace: &str, name: &str) -> Result<Option<Value>> {
        let data: Option<String> = conn
            .query_row(
                "SELECT data FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                params![gvr.key(), namespace, name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match data {
            Some(d) => Some(serde_json::from_str(&d)?),
            None => None,
        })
    }

    /// Appends the event, stores the new state (or removes it) and bumps the counter, inside `tx`.
    fn record(tx: &Connection, entry: &LogEntry, name: &str) -> Result<()> {
        let data = entry.object.to_string();
        match entry.event {
            EventType::Deleted => {
                tx.execute(
                    "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                    params![entry.resource, entry.namespace, name],
                )?;
            }
            _ => {
                tx.execute(
                    "INSERT OR REPLACE INTO objects (resource, namespace, name, rv, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![entry.resource, entry.namespace, name, entry.rv as i64, data],
                )?;
            }
        }
        tx.execute(
            "INSERT INTO events (rv, resource, namespace, name, type, data, prev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                entry.rv as i64,
                entry.resource,
                entry.namespace,
                name,
                entry.event.as_str(),
                data,
                entry.prev.as_ref().map(|p| p.to_string())
            ],
        )?;
        meta_set(tx, "resource_version", entry.rv)?;
        Ok(())
    }

    /// Records `entry` in `tx`, commits, compacts if due and tells the watchers.
    fn commit(&self, tx: rusqlite::Transaction<'_>, entry: LogEntry, name: &str) -> Result<()> {
        Self::record(&tx, &entry, name)?;
        self.maybe_compact(&tx, entry.rv)?;
        tx.commit()?;
        {
            let mut leases = self.leases();
            if leases.ttl_of(&entry.resource).is_some() {
                let key = (
                    entry.resource.clone(),
                    entry.namespace.clone(),
                    name.to_string(),
                );
                match entry.event {
                    EventType::Deleted => leases.forget(&key),
                    _ => leases.written(key, Instant::now()),
                }
            }
        }
        self.publish(entry);
        Ok(())
    }

    fn publish(&self, entry: LogEntry) {
        self.inner.feed.send(entry);
    }

    fn maybe_compact(&self, conn: &Connection, rv: u64) -> Result<()> {
        let retention = self.inner.options.event_retention.max(1);
        let compacted = meta_get(conn, "compacted")?;
        if rv.saturating_sub(compacted) > retention + retention / 10 {
            self.compact_locked(conn, rv - retention)?;
        }
        Ok(())
    }

    fn compact_locked(&self, conn: &Connection, upto: u64) -> Result<()> {
        let compacted = meta_get(conn, "compacted")?;
        if upto <= compacted {
            return Ok(());
        }
        conn.execute("DELETE FROM events WHERE rv <= ?1", [upto as i64])?;
        meta_set(conn, "compacted", upto)?;
        Ok(())
    }

    /// Drops all events with a resourceVersion up to `upto` from the log; watches from before it
    /// then fail with [`StoreError::Expired`].
    pub fn compact(&self, upto: u64) -> Result<()> {
        let conn = self.lock();
        let upto = upto.min(meta_get(&conn, "resource_version")?);
        self.compact_locked(&conn, upto)
    }

    /// Creates an object. `metadata.name` must be set (the API server resolves `generateName`).
    /// The store fills `uid`, `creationTimestamp`, `resourceVersion` and, if asked, `generation`.
    pub fn create(
        &self,
        gvr: &Gvr,
        namespace: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value> {
        let meta = metadata_mut(&mut obj)?;
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                return Err(StoreError::BadRequest {
                    message: "metadata.name: Required value: name or generateName is required"
                        .to_string(),
                })
            }
        };
        if namespace.is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert("namespace".into(), Value::String(namespace.to_string()));
        }
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert(
            "creationTimestamp".into(),
            Value::String(time::now_rfc3339()),
        );
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("resourceVersion");
        if opts.tracks_generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }

        let mut conn = self.lock();
        let tx = self.begin(&mut conn, gvr)?;
        if Self::load(&tx, gvr, namespace, &name)?.is_some() {
            return Err(StoreError::AlreadyExists {
                resource: gvr.qualified(),
                name,
            });
        }
        if opts.dry_run {
            return Ok(obj);
        }
        let rv = meta_get(&tx, "resource_version")? + 1;
        metadata_mut(&mut obj)?.insert("resourceVersion".into(), Value::String(rv.to_string()));
        let entry = LogEntry {
            rv,
            resource: gvr.key(),
            namespace: namespace.to_string(),
            event: EventType::Added,
            object: obj.clone(),
            prev: None,
        };
        self.commit(tx, entry, &name)?;
        Ok(obj)
    }

    /// Replaces an object. If the new object carries a `metadata.resourceVersion`, it must equal
    /// the stored one (optimistic concurrency); an empty one means an unconditional update.
    pub fn update(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value> {
        self.guaranteed_update(gvr, namespace, name, opts, |_| Ok(obj))
    }

    /// Read-modify-write in one transaction: `f` receives the stored object and returns the new
    /// one. Used for patches and status updates. The same resourceVersion rule as [`Store::update`]
    /// applies to what `f` returns. Writing an identical object is a no-op that keeps the
    /// resourceVersion, as Kubernetes does.
    pub fn guaranteed_update(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        opts: &WriteOptions,
        f: impl FnOnce(Value) -> Result<Value>,
    ) -> Result<Value> {
        let mut conn = self.lock();
        let tx = self.begin(&mut conn, gvr)?;
        let old = Self::load(&tx, gvr, namespace, name)?.ok_or_else(|| StoreError::NotFound {
            resource: gvr.qualified(),
            name: name.to_string(),
        })?;
        let mut obj = f(old.clone())?;
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or("").to_string();
        {
            let meta = metadata_mut(&mut obj)?;
            match meta.get("resourceVersion").and_then(Value::as_str) {
                Some(rv) if !rv.is_empty() && rv != old_rv => {
                    return Err(StoreError::stale(&gvr.qualified(), name));
                }
                _ => {}
            }
            if let Some(n) = meta.get("name").and_then(Value::as_str) {
                if n != name {
                    return Err(StoreError::BadRequest {
                        message: format!(
                            "the name of the object ({n}) does not match the name on the URL ({name})"
                        ),
                    });
                }
            }
            // System fields are owned by the store (rest.BeforeUpdate in
            // staging/src/k8s.io/apiserver/pkg/registry/rest/update.go).
            let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            meta.insert("name".into(), Value::String(name.to_string()));
            if namespace.is_empty() {
                meta.remove("namespace");
            } else {
                meta.insert("namespace".into(), Value::String(namespace.to_string()));
            }
            meta.insert("resourceVersion".into(), Value::String(old_rv.clone()));
        }
        if opts.tracks_generation && old.get("spec") != obj.get("spec") {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut obj)?.insert("generation".into(), json!(g + 1));
        }
        if obj == old {
            return Ok(old);
        }
        // An object being deleted whose last finalizer was just removed, with no grace period
        // left, goes away now (Store.Update's shouldDeleteDuringUpdate in
        // staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go).
        let deleting = obj.pointer("/metadata/deletionTimestamp").is_some()
            && !has_finalizers(&obj)
            && obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0;
        if opts.dry_run {
            return Ok(obj);
        }
        let rv = meta_get(&tx, "resource_version")? + 1;
        metadata_mut(&mut obj)?.insert("resourceVersion".into(), Value::String(rv.to_string()));
        let event = if deleting {
            EventType::Deleted
        } else {
            EventType::Modified
        };
        let entry = LogEntry {
            rv,
            resource: gvr.key(),
            namespace: namespace.to_string(),
            event,
            object: obj.clone(),
            prev: Some(old),
        };
        self.commit(tx, entry, name)?;
        Ok(obj)
    }

    /// Deletes an object, gracefully or not, honouring finalizers.
    ///
    /// 1. Preconditions (uid, resourceVersion) are checked; a mismatch is a Conflict.
    /// 2. An object not yet marked: with a grace period > 0 or with finalizers, it gets
    ///    `deletionTimestamp` (now + grace) and `deletionGracePeriodSeconds` and stays
    ///    ([`DeleteOutcome::Pending`]); otherwise it is removed.
    /// 3. An object already marked: removed if no finalizers remain and the grace period asked
    ///    for is 0 or none; otherwise returned unchanged as pending.
    pub fn delete(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome> {
        let mut conn = self.lock();
        let tx = self.begin(&mut conn, gvr)?;
        let old = Self::load(&tx, gvr, namespace, name)?.ok_or_else(|| StoreError::NotFound {
            resource: gvr.qualified(),
            name: name.to_string(),
        })?;
        let conflict = |detail: String| StoreError::Conflict {
            resource: gvr.qualified(),
            name: name.to_string(),
            detail,
        };
        if let Some(uid) = &opts.precondition_uid {
            let stored = meta_str(&old, "uid").unwrap_or("");
            if uid != stored {
                return Err(conflict(format!("the UID in the precondition ({uid}) does not match the UID in record ({stored}). The object might have been deleted and then recreated")));
            }
        }
        if let Some(rv) = &opts.precondition_resource_version {
            let stored = meta_str(&old, "resourceVersion").unwrap_or("");
            if rv != stored {
                return Err(conflict(format!("the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({stored}). The object might have been modified")));
            }
        }
        let grace = opts.grace_period_seconds.unwrap_or(0).max(0);
        let marked = old.pointer("/metadata/deletionTimestamp").is_some();
        let mut obj = old.clone();
        let new_finalizers = changed_finalizers(&old, opts);
        if let Some(f) = &new_finalizers {
            set_finalizers(metadata_mut(&mut obj)?, f.clone());
        }
        let finalizers = has_finalizers(&obj) || opts.keep;
        let (event, pending) = if marked {
            let current = old
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            // A shorter grace period than the pending one takes over (rest.BeforeDelete in
            // staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go), so the kubelet's final
            // delete of a pod that still has finalizers lets it go once they are removed.
            let shorter = opts.grace_period_seconds.is_some() && grace < current;
            if finalizers || grace > 0 {
                if new_finalizers.is_none() && !shorter {
                    return Ok(DeleteOutcome::Pending(old));
                }
                if shorter {
                    let meta = metadata_mut(&mut obj)?;
                    meta.insert(
                        "deletionTimestamp".into(),
                        Value::String(time::format_rfc3339(time::now_unix() + grace)),
                    );
                    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
                (EventType::Modified, true)
            } else {
                (EventType::Deleted, false)
            }
        } else if grace > 0 || finalizers {
            let meta = metadata_mut(&mut obj)?;
            meta.insert(
                "deletionTimestamp".into(),
                Value::String(time::format_rfc3339(time::now_unix() + grace)),
            );
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if let Some(g) = meta.get("generation").and_then(Value::as_i64) {
                meta.insert("generation".into(), json!(g + 1));
            }
            (EventType::Modified, true)
        } else {
            (EventType::Deleted, false)
        };
        if opts.dry_run {
            return Ok(if pending {
                DeleteOutcome::Pending(obj)
            } else {
                DeleteOutcome::Deleted(obj)
            });
        }
        let rv = meta_get(&tx, "resource_version")? + 1;
        metadata_mut(&mut obj)?.insert("resourceVersion".into(), Value::String(rv.to_string()));
        let entry = LogEntry {
            rv,
            resource: gvr.key(),
            namespace: namespace.to_string(),
            event,
            object: obj.clone(),
            prev: Some(old),
        };
        self.commit(tx, entry, name)?;
        Ok(if pending {
            DeleteOutcome::Pending(obj)
        } else {
            DeleteOutcome::Deleted(obj)
        })
    }

    /// Lists objects of one resource, in one namespace or (with `None`) in all of them.
    ///
    /// Pages continue after the last key of the previous page; they are read from the current
    /// state, not from a snapshot at the first page's resourceVersion.
    pub fn list(
        &self,
        gvr: &Gvr,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult> {
        let conn = self.lock();
        let (list_rv, after) = match &opts.continue_token {
            Some(t) if !t.is_empty() => {
                let (rv, ns, name) = decode_continue(t)?;
                (rv, Some((ns, name)))
            }
            _ => (meta_get(&conn, "resource_version")?, None),
        };
        let (after_ns, after_name) = after.unwrap_or_default();
        let mut stmt = conn.prepare_cached(
            "SELECT namespace, name, data FROM objects
             WHERE resource = ?1 AND (?2 IS NULL OR namespace = ?2)
               AND (namespace, name) > (?3, ?4)
             ORDER BY namespace, name",
        )?;
        let rows = stmt.query_map(params![gvr.key(), namespace, after_ns, after_name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        // The rows are read under the lock and parsed after it is released: parsing is most of
        // a list's time, and every other request waits for the lock.
        let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        drop(conn);
        let limit = opts.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0u64;
        for (ns, name, data) in rows {
            if !opts.labels.is_empty() && opts.labels.matches_json(&data) == Some(false) {
                continue;
            }
            let obj: Value = serde_json::from_str(&data)?;
            if !opts.labels.matches_object(&obj) || !opts.fields.matches_object(&obj) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            last_key = Some((ns, name));
            items.push(obj);
        }
        let continue_token = match (remaining, last_key) {
            (r, Some((ns, name))) if r > 0 => Some(encode_continue(list_rv, &ns, &name)),
            _ => None,
        };
        Ok(ListResult {
            items,
            resource_version: list_rv,
            remaining_item_count: continue_token.as_ref().map(|_| remaining),
            continue_token,
        })
    }

    /// Every stored object whose JSON text contains `needle`, with its resource key; the garbage
    /// collector's cheap pre-filter (`"ownerReferences"`, its finalizers' names).
    pub fn scan_containing(&self, needle: &str) -> Result<Vec<(String, Value)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT resource, data FROM objects WHERE instr(data, ?1) > 0 ORDER BY resource, namespace, name",
        )?;
        let rows = stmt.query_map([needle], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        // Parsed after the lock is released, as in `list`.
        let rows = rows.collect::<rusqlite::Result<Vec<(String, String)>>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(key, data)| Ok((key, serde_json::from_str(&data)?)))
            .collect()
    }

    /// The writes after resourceVersion `after`, oldest first, with the resourceVersion they
    /// reach; `None` when some of them are no longer in the event log (compacted). Objects are
    /// left as JSON text: a controller parses only those it keeps (the garbage collector, which
    /// follows the objects with owners this way instead of scanning the store every pass).
    pub fn writes_after(&self, after: u64) -> Result<Option<(u64, Vec<RawWrite>)>> {
        let conn = self.lock();
        if meta_get(&conn, "compacted")? > after {
            return Ok(None);
        }
        let head = meta_get(&conn, "resource_version")?;
        let mut stmt = conn.prepare_cached(
            "SELECT resource, namespace, name, type, data FROM events WHERE rv > ?1 ORDER BY rv",
        )?;
        let rows = stmt.query_map([after as i64], |r| {
            Ok(RawWrite {
                resource: r.get(0)?,
                namespace: r.get(1)?,
                name: r.get(2)?,
                deleted: r.get::<_, String>(3)? == EventType::Deleted.as_str(),
                data: r.get(4)?,
            })
        })?;
        Ok(Some((head, rows.collect::<rusqlite::Result<Vec<_>>>()?)))
    }

    /// Every (resource key, name) stored in a namespace, for namespace deletion.
    pub fn keys_in_namespace(&self, namespace: &str) -> Result<Vec<(String, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT resource, name FROM objects WHERE namespace = ?1 ORDER BY resource, name",
        )?;
        let rows = stmt.query_map([namespace], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests;
