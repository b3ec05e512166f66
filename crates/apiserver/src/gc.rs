//! The garbage collector: kube-controller-manager's (pkg/controller/garbagecollector), as one
//! pass over the stored objects in the controller loop.
//!
//! A DELETE chooses a propagation policy (`propagationPolicy`, kubectl's `--cascade`):
//! - `Background` (the default of every kind served here): the owner goes at once; its
//!   dependents are deleted afterwards, when this pass finds their owner gone;
//! - `Foreground`: the owner gets `deletionTimestamp` and the `foregroundDeletion` finalizer;
//!   its dependents are deleted, and the finalizer is removed (so the owner goes) once no
//!   dependent with `blockOwnerDeletion: true` is left;
//! - `Orphan`: the owner gets the `orphan` finalizer; its dependents' ownerReferences to it are
//!   removed, then the finalizer.
//!
//! A dependent's owners are looked up by their coordinates (kind → resource, name, the
//! dependent's namespace for a namespaced kind) and must have the reference's uid, as upstream's
//! `attemptToDeleteItem` / `isDangling` do. A dependent is deleted when none of its owners is
//! solid (all absent, or being deleted in the foreground); references to absent or
//! foreground-deleting owners are removed from a dependent that keeps a solid owner. References
//! that cannot be resolved (a kind not served, a namespaced owner of a cluster-scoped
//! dependent, which upstream reports as `OwnerRefInvalidNamespace`) keep the dependent: the
//! collector fails closed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use armorlet_store::{StoreError, WriteOptions};
use serde_json::Value;

use crate::error::ApiError;
use crate::handlers::{self, DeleteRequest, State};
use crate::registry::ResourceDef;

/// The finalizer of an `Orphan` delete (metav1.FinalizerOrphanDependents).
pub const ORPHAN: &str = "orphan";
/// The finalizer of a `Foreground` delete (metav1.FinalizerDeleteDependents).
pub const FOREGROUND: &str = "foregroundDeletion";

/// `DeleteOptions.propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are left, their references to the owner removed.
    Orphan,
    /// The owner goes now, its dependents after it.
    Background,
    /// The owner stays until its blocking dependents are gone.
    Foreground,
}

impl Propagation {
    /// Parses the API's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Orphan" => Some(Self::Orphan),
            "Background" => Some(Self::Background),
            "Foreground" => Some(Self::Foreground),
            _ => None,
        }
    }
}

/// The finalizers a delete with `policy` adds and removes (upstream
/// `deletionFinalizersForGarbageCollection`, registry/generic/registry/store.go): an explicit
/// policy sets its finalizer and clears the other; none keeps what the object has.
pub fn finalizer_changes(policy: Option<Propagation>) -> (Vec<String>, Vec<String>) {
    let s = |v: &[&str]| v.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    match policy {
        None => (Vec::new(), Vec::new()),
        Some(Propagation::Orphan) => (s(&[ORPHAN]), s(&[FOREGROUND])),
        Some(Propagation::Foreground) => (s(&[FOREGROUND]), s(&[ORPHAN])),
        Some(Propagation::Background) => (Vec::new(), s(&[ORPHAN, FOREGROUND])),
    }
}

/// A stored object the pass looks at.
struct Item {
    def: Arc<ResourceDef>,
    obj: Value,
}

impl Item {
    fn meta(&self, f: &str) -> &str {
        self.obj["metadata"][f].as_str().unwrap_or("")
    }
    fn deleting(&self) -> bool {
        !self.obj["metadata"]["deletionTimestamp"].is_null()
    }
    fn has_finalizer(&self, f: &str) -> bool {
        has_finalizer(&self.obj, f)
    }
    fn refs(&self) -> impl Iterator<Item = &Value> {
        self.obj["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
    }
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == f))
}

/// What an owner reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Exists with the reference's uid and is not waiting for its dependents.
    Solid,
    /// Does not exist, or exists with another uid.
    Dangling,
    /// Exists and is being deleted in the foreground.
    Waiting,
    /// Cannot be looked up; counts as solid (fail closed).
    Unresolvable,
}

/// The served resource of an owner reference's `apiVersion` and `kind`.
fn owner_def(state: &State, api_version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let served = state.registry.served();
    let same_kind = |d: &&Arc<ResourceDef>| d.group == group && d.kind == kind;
    served
        .iter()
        .filter(same_kind)
        .find(|d| d.version == version)
        .or_else(|| served.iter().find(same_kind))
        .cloned()
}

/// What the collector looks for in the stored objects' JSON text.
const NEEDLES: [&str; 3] = ["\"ownerReferences\"", FOREGROUND, "\"orphan\""];

/// The collector's memory between passes: every stored object whose JSON text has one of
/// [`NEEDLES`] (owners or a collector finalizer), as of a resourceVersion. Kept current from the
/// event log's writes since, so a pass reads the store's other objects only when it must (the
/// first pass, or after the log was compacted past it): scanning 1,000 pods three times every
/// pass held the store's lock long enough to show in every request's tail latency.
#[derive(Debug, Default)]
pub struct Tracked {
    rv: Option<u64>,
    /// By (resource key, namespace, name).
    objects: BTreeMap<(String, String, String), Value>,
}

impl Tracked {
    /// Reads every tracked object from the store.
    fn rescan(&mut self, state: &State) -> Result<(), ApiError> {
        let head = state.store.current_resource_version()?;
        self.objects.clear();
        for needle in NEEDLES {
            for (key, obj) in state.store.scan_containing(needle)? {
                let ns = obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
                self.objects.entry((key, ns, name)).or_insert(obj);
            }
        }
        // A write between the scans is read again from the log next time.
        self.rv = Some(head);
        Ok(())
    }

    /// Applies the writes since the last call; whether the collector has work: a tracked
    /// object changed or went, an object was deleted while others have owners (it may have
    /// been their owner), or a CustomResourceDefinition changed (an owner reference of its kind
    /// may resolve now).
    fn update(&mut self, state: &State) -> Result<bool, ApiError> {
        let Some(after) = self.rv else {
            self.rescan(state)?;
            return Ok(true);
        };
        let Some((head, writes)) = state.store.writes_after(after)? else {
            self.rescan(state)?;
            return Ok(true);
        };
        let crds =
            armorlet_store::Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .key();
        let mut work = false;
        for w in writes {
            work |= w.resource == crds;
            let key = (w.resource, w.namespace, w.name);
            if w.deleted {
                work |= self.objects.remove(&key).is_some() || !self.objects.is_empty();
            } else if NEEDLES.iter().any(|n| w.data.contains(n)) {
                let obj = serde_json::from_str(&w.data).map_err(|e| {
                    ApiError::internal(format!("stored {} {}/{}: {e}", key.0, key.1, key.2))
                })?;
                self.objects.insert(key, obj);
                work = true;
            } else {
                work |= self.objects.remove(&key).is_some();
            }
        }
        self.rv = Some(head);
        Ok(work)
    }
}

/// One collector pass, over the objects `tracked` follows; nothing to do while no write since
/// the last pass can have made work ([`Tracked::update`]).
pub fn sync_once(state: &State, tracked: &mut Tracked) -> Result<(), ApiError> {
    if !tracked.update(state)? {
        return Ok(());
    }
    let result = collect(state, &tracked.objects);
    if result.is_err() {
        // A pass that failed runs again, from a fresh scan.
        tracked.rv = None;
    }
    result
}

fn collect(
    state: &State,
    tracked: &BTreeMap<(String, String, String), Value>,
) -> Result<(), ApiError> {
    // Everything with owners or a collector finalizer, by (resource key, namespace, name).
    let mut items: BTreeMap<(String, String, String), Item> = BTreeMap::new();
    for (key, obj) in tracked {
        let Some(def) = state.registry.by_key(&key.0) else {
            continue;
        };
        items.insert(
            key.clone(),
            Item {
                def,
                obj: obj.clone(),
            },
        );
    }
    // Dependents by owner uid, with whether the reference blocks the owner's deletion.
    let mut dependents: HashMap<&str, Vec<(&Item, bool)>> = HashMap::new();
    for item in items.values() {
        for r in item.refs() {
            if let Some(uid) = r["uid"].as_str() {
                dependents
                    .entry(uid)
                    .or_default()
                    .push((item, r["blockOwnerDeletion"] == true));
            }
        }
    }

    // Owners being deleted with a collector finalizer (upstream processDeletingDependentsItem
    // and orphanDependents).
    // Owners whose dependents were orphaned in this pass: the dependents read above still
    // refer to them.
    let mut orphaned: HashSet<&str> = HashSet::new();
    for item in items.values().filter(|i| i.deleting()) {
        let uid = item.meta("uid");
        let mine = dependents.get(uid).map(Vec::as_slice).unwrap_or(&[]);
        if item.has_finalizer(ORPHAN) {
            for (dep, _) in mine {
                remove_owner_refs(state, dep, &HashSet::from([uid.to_owned()]))?;
            }
            remove_finalizer(state, item, ORPHAN)?;
            orphaned.insert(uid);
        } else if item.has_finalizer(FOREGROUND) && !mine.iter().any(|(_, blocking)| *blocking) {
            remove_finalizer(state, item, FOREGROUND)?;
        }
    }

    // Dependents (upstream attemptToDeleteItem).
    let mut owners: HashMap<(String, String, String), Option<Value>> = HashMap::new();
    for item in items.values() {
        if item.deleting() || item.refs().next().is_none() {
            continue;
        }
        let ns = item.meta("namespace");
        let mut solid = 0;
        let mut dangling = HashSet::new();
        let mut waiting = HashSet::new();
        let refs: Vec<&Value> = item
            .refs()
            .filter(|r| !r["uid"].as_str().is_some_and(|u| orphaned.contains(u)))
            .collect();
        if refs.is_empty() {
            continue;
        }
        for r in refs {
            let uid = r["uid"].as_str().unwrap_or("");
            match owner_state(state, &mut owners, ns, r)? {
                Owner::Solid | Owner::Unresolvable => solid += 1,
                Owner::Dangling => {
                    dangling.insert(uid.to_owned());
                }
                Owner::Waiting => {
                    waiting.insert(uid.to_owned());
                }
            }
        }
        if solid > 0 {
            if !dangling.is_empty() || !waiting.is_empty() {
                let gone: HashSet<String> = dangling.union(&waiting).cloned().collect();
                remove_owner_refs(state, item, &gone)?;
            }
            continue;
        }
        // Every owner is gone or going: the dependent goes. It waits for its own dependents
        // when an owner does (the foreground cascades), else its own finalizers decide.
        let propagation = (!waiting.is_empty() && dependents.contains_key(item.meta("uid")))
            .then_some(Propagation::Foreground);
        let req = DeleteRequest {
            grace: None,
            uid: Some(item.meta("uid").to_owned()),
            resource_version: None,
            dry_run: false,
            propagation,
        };
        match handlers::delete_object(state, &item.def, ns, item.meta("name"), &req) {
            Ok(_) => {}
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Looks an owner reference of a dependent in namespace `ns` up (memoised per pass).
fn owner_state(
    state: &State,
    cache: &mut HashMap<(String, String, String), Option<Value>>,
    ns: &str,
    r: &Value,
) -> Result<Owner, ApiError> {
    let (Some(av), Some(kind), Some(name), Some(uid)) = (
        r["apiVersion"].as_str(),
        r["kind"].as_str(),
        r["name"].as_str(),
        r["uid"].as_str(),
    ) else {
        return Ok(Owner::Unresolvable);
    };
    let Some(def) = owner_def(state, av, kind) else {
        return Ok(Owner::Unresolvable);
    };
    let owner_ns = if def.namespaced {
        if ns.is_empty() {
            // A cluster-scoped dependent cannot have a namespaced owner
            // (OwnerRefInvalidNamespace upstream); it is never collected.
            return Ok(Owner::Unresolvable);
        }
        ns
    } else {
        ""
    };
    let key = (def.gvr().key(), owner_ns.to_owned(), name.to_owned());
    if !cache.contains_key(&key) {
        let found = match state.store.get(&def.gvr(), owner_ns, name) {
            Ok(o) => Some(o),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        cache.insert(key.clone(), found);
    }
    Ok(match cache.get(&key).and_then(Option::as_ref) {
        Some(o) if o["metadata"]["uid"] == uid => {
            if !o["metadata"]["deletionTimestamp"].is_null() && has_finalizer(o, FOREGROUND) {
                Owner::Waiting
            } else {
                Owner::Solid
            }
        }
        _ => Owner::Dangling,
    })
}

/// Removes the ownerReferences to `uids` from a dependent.
fn remove_owner_refs(state: &State, item: &Item, uids: &HashSet<String>) -> Result<(), ApiError> {
    update(state, item, |obj| {
        let Some(meta) = obj["metadata"].as_object_mut() else {
            return;
        };
        if let Some(refs) = meta
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            refs.retain(|r| !r["uid"].as_str().is_some_and(|u| uids.contains(u)));
            if refs.is_empty() {
                meta.remove("ownerReferences");
            }
        }
    })
}

/// Removes one finalizer; the store deletes an object whose last finalizer went.
fn remove_finalizer(state: &State, item: &Item, finalizer: &str) -> Result<(), ApiError> {
    update(state, item, |obj| {
        let Some(meta) = obj["metadata"].as_object_mut() else {
            return;
        };
        if let Some(f) = meta.get_mut("finalizers").and_then(Value::as_array_mut) {
            f.retain(|x| x != finalizer);
            if f.is_empty() {
                meta.remove("finalizers");
            }
        }
    })
}

/// A read-modify-write of the item's current state, if it is still the same object.
fn update(state: &State, item: &Item, f: impl FnOnce(&mut Value)) -> Result<(), ApiError> {
    let uid = item.meta("uid").to_owned();
    let result = state.store.guaranteed_update(
        &item.def.gvr(),
        item.meta("namespace"),
        item.meta("name"),
        &WriteOptions::default(),
        |mut cur| {
            if cur["metadata"]["uid"] != uid.as_str() {
                return Err(StoreError::NotFound {
                    resource: String::new(),
                    name: String::new(),
                });
            }
            f(&mut cur);
            Ok(cur)
        },
    );
    match result {
        Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_set_their_finalizer_and_clear_the_other() {
        assert_eq!(finalizer_changes(None), (vec![], vec![]));
        assert_eq!(
            finalizer_changes(Some(Propagation::Orphan)),
            (
                vec!["orphan".to_string()],
                vec!["foregroundDeletion".to_string()]
            )
        );
        assert_eq!(
            finalizer_changes(Some(Propagation::Foreground)),
            (
                vec!["foregroundDeletion".to_string()],
                vec!["orphan".to_string()]
            )
        );
        assert_eq!(
            finalizer_changes(Some(Propagation::Background)).1,
            vec!["orphan".to_string(), "foregroundDeletion".to_string()]
        );
        assert_eq!(Propagation::parse("Bogus"), None);
    }
}
