//! `metadata.managedFields`: kube-apiserver's field manager
//! (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager, now
//! k8s.io/apimachinery/pkg/util/managedfields) over the semantics of
//! sigs.k8s.io/structured-merge-diff (SMD): field sets, their `FieldsV1` encoding, ownership per
//! manager, server-side apply's merge, conflicts and pruning.
//!
//! Without Go types or OpenAPI schemas, the shape of an object is taken from its JSON and the
//! tables strategic merge already has ([`crate::patch::merge_key`]):
//! - an object is a struct, except the fields known to be `map[string]...` (labels,
//!   annotations, data, nodeSelector, resources...): their keys are members of the set;
//! - lists with a merge key are associative lists (`k:{"name":"c"}`), `finalizers` is a set
//!   (`v:"f"`), every other list is atomic;
//! - multi-key lists (container ports' `containerPort`+`protocol` upstream) use the one merge
//!   key strategic merge uses.
//!
//! Left out: the version conversion of field sets (every kind has one served version here),
//! the `ancient-changes` cap of 10 Update managers, `x-kubernetes-*` list types of custom
//! resources' schemas (custom objects follow the same tables), and granular/atomic struct
//! markers (`x-kubernetes-map-type`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, Cause};

/// A set of field paths, as a tree: each node is one path element (`f:name`, `k:{...}`,
/// `v:...`) and is a member of the set or only leads to members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// No path at all.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Adds every path of `other`.
    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union(c);
        }
    }

    /// The paths of `self` that are not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// The paths in both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// The `FieldsV1` JSON: a member with children gets a `"."` key.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Reads a `FieldsV1` value (the root is never a member).
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        fn node(v: &Value) -> FieldSet {
            let mut s = FieldSet::default();
            if let Some(m) = v.as_object() {
                if m.is_empty() {
                    s.member = true;
                }
                for (k, c) in m {
                    if k == "." {
                        s.member = true;
                    } else {
                        s.children.insert(k.clone(), node(c));
                    }
                }
            }
            s
        }
        let mut s = node(v);
        s.member = false;
        s
    }

    /// Every member path, as SMD prints them (`.spec.containers[name="c"].image`).
    pub fn paths(&self) -> Vec<String> {
        fn walk(s: &FieldSet, prefix: &str, out: &mut Vec<String>) {
            if s.member && !prefix.is_empty() {
                out.push(prefix.to_owned());
            }
            for (k, c) in &s.children {
                walk(c, &format!("{prefix}{}", element_string(k)), out);
            }
        }
        let mut out = Vec::new();
        walk(self, "", &mut out);
        out
    }
}

/// One path element as SMD's `PathElement.String()`: `.name`, `[k=v,...]`, `[=v]`, `[i]`.
fn element_string(el: &str) -> String {
    if let Some(f) = el.strip_prefix("f:") {
        return format!(".{f}");
    }
    if let Some(k) = el.strip_prefix("k:") {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(k) {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return format!("[{}]", parts.join(","));
        }
    }
    if let Some(v) = el.strip_prefix("v:") {
        return format!("[={v}]");
    }
    if let Some(i) = el.strip_prefix("i:") {
        return format!("[{i}]");
    }
    el.to_owned()
}

/// Fields whose objects are maps of arbitrary keys (`map[string]...` in the Go types), not
/// structs: their keys are owned one by one.
fn is_map_field(field: &str, v: &Value) -> bool {
    match field {
        "labels" | "annotations" | "data" | "binaryData" | "stringData" | "nodeSelector"
        | "matchLabels" | "limits" | "requests" | "capacity" | "allocatable" | "hard" | "used"
        | "parameters" | "overhead" => true,
        // A Service's or ReplicationController's selector; a LabelSelector is a struct.
        "selector" => v
            .as_object()
            .is_some_and(|m| !m.contains_key("matchLabels") && !m.contains_key("matchExpressions")),
        _ => false,
    }
}

/// How a list is merged and owned.
enum ListKind {
    /// By the value of one key field.
    Map(&'static str),
    /// By value (strings).
    Set,
    /// As a whole.
    Atomic,
}

fn list_kind(field: &str, items: &[Value]) -> ListKind {
    if field == "finalizers" && items.iter().all(Value::is_string) {
        return ListKind::Set;
    }
    match crate::patch::merge_key(field, items) {
        Some(key)
            if items
                .iter()
                .all(|i| i.get(key).is_some_and(|k| !k.is_null())) =>
        {
            ListKind::Map(key)
        }
        _ => ListKind::Atomic,
    }
}

fn key_element(item: &Value, key: &str) -> String {
    let mut m = Map::new();
    m.insert(key.to_owned(), item[key].clone());
    format!("k:{}", Value::Object(m))
}

fn value_element(v: &Value) -> String {
    format!("v:{v}")
}

/// A path element of `fieldsV1`, parsed: a field (`f:name`), a list item by its key fields
/// (`k:{"name":"c"}`) or a set item by its value (`v:"x"`).
enum Element<'e> {
    Field(&'e str),
    Key(Map<String, Value>),
    Item(Value),
}

impl<'e> Element<'e> {
    fn parse(el: &'e str) -> Option<Self> {
        if let Some(f) = el.strip_prefix("f:") {
            Some(Element::Field(f))
        } else if let Some(k) = el.strip_prefix("k:") {
            serde_json::from_str(k).ok().map(Element::Key)
        } else if let Some(x) = el.strip_prefix("v:") {
            serde_json::from_str(x).ok().map(Element::Item)
        } else {
            None
        }
    }

    /// Whether a list item is the one this element names.
    fn selects(&self, item: &Value) -> bool {
        match self {
            Element::Field(_) => false,
            Element::Key(key) => key.iter().all(|(k, kv)| item.get(k) == Some(kv)),
            Element::Item(x) => item == x,
        }
    }
}

/// The child of `v` a path element names.
fn step<'a>(v: &'a Value, el: &str) -> Option<&'a Value> {
    match Element::parse(el)? {
        Element::Field(f) => v.as_object()?.get(f),
        e => v.as_array()?.iter().find(|i| e.selects(i)),
    }
}

/// Removes the child of `v` a path element names.
fn remove_child(v: &mut Value, el: &str) {
    match Element::parse(el) {
        Some(Element::Field(f)) => {
            if let Some(m) = v.as_object_mut() {
                m.remove(f);
            }
        }
        Some(e) => {
            if let Some(items) = v.as_array_mut() {
                items.retain(|i| !e.selects(i));
            }
        }
        None => {}
    }
}

/// The child of `v` a field or keyed element names, to change in place (set items are
/// values: nothing beneath them to change).
fn step_mut<'a>(v: &'a mut Value, el: &str) -> Option<&'a mut Value> {
    match Element::parse(el)? {
        Element::Field(f) => v.as_object_mut()?.get_mut(f),
        e @ Element::Key(_) => v.as_array_mut()?.iter_mut().find(|i| e.selects(i)),
        Element::Item(_) => None,
    }
}

/// Which part of an object a write tracks: the main resource leaves `status` to the status
/// subresource and the status subresource tracks only `status` (the strategies' reset fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything but the system metadata.
    All,
    /// Everything but `status` (kinds with a status subresource).
    Main,
    /// Only `status`.
    Status,
}

/// The metadata fields no manager owns (fieldmanager's `stripMeta`).
const STRIPPED_META: [&str; 10] = [
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The object as the field manager sees it: no apiVersion/kind, no system metadata, only the
/// scope's part.
fn tracked(obj: &Value, scope: Scope) -> Value {
    let Some(m) = obj.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (k, v) in m {
        match (k.as_str(), scope) {
            ("apiVersion" | "kind", _) => {}
            ("status", Scope::Main) => {}
            ("status", Scope::Status) => {
                out.insert(k.clone(), v.clone());
            }
            (_, Scope::Status) => {}
            ("metadata", _) => {
                let mut meta = v.as_object().cloned().unwrap_or_default();
                for f in STRIPPED_META {
                    meta.remove(f);
                }
                if !meta.is_empty() {
                    out.insert(k.clone(), Value::Object(meta));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The field set of an applied configuration (SMD's `ToFieldSet`): every scalar, atomic list,
/// null or empty object, associative list item and key of a map-typed field; a non-empty
/// struct field only leads to its members.
pub fn field_set(obj: &Value) -> FieldSet {
    let mut s = FieldSet::default();
    if let Some(m) = obj.as_object() {
        object_set(m, false, &mut s, 1);
    }
    s
}

/// Values nested deeper than this are owned as a whole: their `fieldsV1` sits four levels
/// below the object's root (metadata, managedFields, the entry, fieldsV1), and a stored object
/// deeper than [`crate::patch::MAX_DEPTH`] could not be read back.
const SET_DEPTH: usize = crate::patch::MAX_DEPTH - 8;

fn object_set(m: &Map<String, Value>, map_typed: bool, out: &mut FieldSet, depth: usize) {
    for (k, v) in m {
        let mut child = FieldSet::default();
        value_set(k, v, &mut child, depth + 1);
        if map_typed || v.is_null() || v.as_object().is_some_and(Map::is_empty) {
            child.member = true;
        }
        if !child.is_empty() {
            out.children.insert(format!("f:{k}"), child);
        }
    }
}

fn value_set(field: &str, v: &Value, out: &mut FieldSet, depth: usize) {
    if depth >= SET_DEPTH {
        out.member = true;
        return;
    }
    match v {
        Value::Object(m) => object_set(m, is_map_field(field, v), out, depth),
        Value::Array(a) if a.is_empty() => out.member = true,
        Value::Array(a) => match list_kind(field, a) {
            ListKind::Atomic => out.member = true,
            ListKind::Set => {
                for x in a {
                    out.children.insert(
                        value_element(x),
                        FieldSet {
                            member: true,
                            ..Default::default()
                        },
                    );
                }
            }
            ListKind::Map(key) => {
                for item in a {
                    let mut c = FieldSet {
                        member: true,
                        ..Default::default()
                    };
                    if let Some(m) = item.as_object() {
                        object_set(m, false, &mut c, depth + 1);
                    }
                    out.children.insert(key_element(item, key), c);
                }
            }
        },
        _ => out.member = true,
    }
}

/// What changed from `old` to `new` (SMD's `Compare`): added, modified and removed paths. A
/// map-typed field or list item that appears is added as a whole, besides its members.
#[derive(Debug, Default)]
struct Comparison {
    changed: FieldSet,
    removed: FieldSet,
}

fn compare(old: &Value, new: &Value) -> Comparison {
    let old_set = update_set(old);
    let new_set = update_set(new);
    let mut changed = new_set.difference(&old_set);
    let removed = old_set.difference(&new_set);
    let both = new_set.intersection(&old_set);
    modified(&both, old, new, "", &mut changed);
    Comparison { changed, removed }
}

/// Leaves in `both` whose values differ between `old` and `new`.
fn modified(both: &FieldSet, old: &Value, new: &Value, _field: &str, out: &mut FieldSet) {
    for (el, c) in &both.children {
        let (Some(o), Some(n)) = (step(old, el), step(new, el)) else {
            continue;
        };
        if c.children.is_empty() {
            if o != n {
                out.children.entry(el.clone()).or_default().member = true;
            }
        } else {
            let mut sub = FieldSet::default();
            modified(c, o, n, el, &mut sub);
            if !sub.is_empty() {
                out.children.entry(el.clone()).or_default().union(&sub);
            }
        }
    }
}

/// The set used to compare objects for an Update: [`field_set`] plus every map-typed field
/// as a member itself, so one that appears is owned as a whole (`f:labels: {.: {}, ...}`).
fn update_set(obj: &Value) -> FieldSet {
    fn mark(s: &mut FieldSet, v: &Value, field: &str) {
        if v.is_object() && is_map_field(field, v) && !s.is_empty() {
            s.member = true;
        }
        for (el, c) in s.children.iter_mut() {
            if let Some(child) = step(v, el) {
                let name = el.strip_prefix("f:").unwrap_or("");
                mark(c, child, name);
            }
        }
    }
    let mut s = field_set(obj);
    mark(&mut s, obj, "");
    s.member = false;
    s
}

/// SMD's merge of an applied configuration into the live object: objects merge by key,
/// associative lists by their key, sets by value; scalars and atomic lists are replaced.
fn merge(live: &mut Value, cfg: &Value, field: &str) {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => {
            for (k, v) in c {
                if v.is_null() {
                    l.remove(k);
                    continue;
                }
                match l.get_mut(k) {
                    Some(lv) => merge(lv, v, k),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(c)) if !c.is_empty() => match list_kind(field, c) {
            ListKind::Map(key) => {
                for item in c {
                    match l.iter_mut().find(|i| i.get(key) == item.get(key)) {
                        Some(li) => merge(li, item, field),
                        None => l.push(item.clone()),
                    }
                }
            }
            ListKind::Set => {
                for x in c {
                    if !l.contains(x) {
                        l.push(x.clone());
                    }
                }
            }
            ListKind::Atomic => *l = c.clone(),
        },
        (l, c) => *l = c.clone(),
    }
}

/// Removes the members of `set` from `v`, except those `others` own (or own something
/// beneath).
fn prune(v: &mut Value, set: &FieldSet, others: Option<&FieldSet>) {
    for (el, c) in &set.children {
        let theirs = others.and_then(|o| o.children.get(el));
        if c.member && theirs.is_none_or(FieldSet::is_empty) {
            remove_child(v, el);
        } else if let Some(child) = step_mut(v, el) {
            prune(child, c, theirs);
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    set: FieldSet,
}

impl Entry {
    fn from_json(v: &Value) -> Option<Entry> {
        Some(Entry {
            manager: v["manager"].as_str()?.to_owned(),
            operation: v["operation"].as_str()?.to_owned(),
            api_version: v["apiVersion"].as_str().unwrap_or("").to_owned(),
            time: v["time"].as_str().unwrap_or("").to_owned(),
            subresource: v["subresource"].as_str().unwrap_or("").to_owned(),
            set: FieldSet::from_fields_v1(&v["fieldsV1"]),
        })
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.set.to_fields_v1(),
        });
        for (k, s) in [
            ("apiVersion", &self.api_version),
            ("time", &self.time),
            ("subresource", &self.subresource),
        ] {
            if !s.is_empty() {
                v[k] = json!(s);
            }
        }
        v
    }

    /// The identity of a manager (`BuildManagerIdentifier`): an applier is the same whatever
    /// API version it applies with.
    fn same_manager(&self, manager: &str, operation: &str, api_version: &str, sub: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == sub
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// As a conflict names it (fieldmanager's `printManager`; the identifier has no time).
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// Writes the entries, sorted as upstream's `sortEncodedManagedFields` (Apply first, then by
/// time, manager, API version, subresource); none at all removes the field.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Who writes, and through which endpoint.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// The manager name (`fieldManager`, else the User-Agent's product).
    pub manager: &'a str,
    /// The served `apiVersion` written with.
    pub api_version: &'a str,
    /// `status` for the status subresource, empty for the main resource.
    pub subresource: &'a str,
    /// What the write may track.
    pub scope: Scope,
}

/// The manager of a write with no `fieldManager`: the User-Agent up to its first `/`,
/// printable characters only, at most 128 bytes (`prefixFromUserAgent`).
pub fn manager_from_user_agent(agent: &str) -> String {
    let mut out = String::new();
    for c in agent.split('/').next().unwrap_or("").chars() {
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

/// A `fieldManager` must be at most 128 characters (`ValidateFieldManager`).
pub fn validate_manager(manager: &str) -> Result<(), ApiError> {
    if manager.chars().count() > 128 {
        return Err(ApiError::unprocessable(format!(
            "fieldManager: Too long: may not be more than 128 bytes (got {})",
            manager.len()
        )));
    }
    Ok(())
}

/// Records an Update (create, update or non-apply patch) of `old` (None: a create) into `new`:
/// the writer owns what it added or changed, other managers lose it
/// (fieldmanager's `Update` and SMD's `Updater.Update`).
pub fn update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>, now: &str) {
    // `managedFields: []` in the request resets them; otherwise the request's entries, if
    // any, replace the stored ones.
    let requested = new.pointer("/metadata/managedFields").cloned();
    if requested
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        write_entries(new, Vec::new());
        return;
    }
    let mut entries = read_entries(new);
    if entries.is_empty() {
        entries = old.map(read_entries).unwrap_or_default();
    }
    let empty = json!({});
    let old_t = tracked(old.unwrap_or(&empty), w.scope);
    let new_t = tracked(new, w.scope);
    let cmp = compare(&old_t, &new_t);
    for e in entries.iter_mut() {
        if !e.same_manager(w.manager, "Update", w.api_version, w.subresource) {
            e.set = e.set.difference(&cmp.changed);
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.same_manager(w.manager, "Update", w.api_version, w.subresource))
    {
        Some(e) => {
            let mut set = e.set.clone();
            set.union(&cmp.changed);
            let set = set.difference(&cmp.removed);
            if set != e.set {
                e.set = set;
                e.time = now.to_owned();
            }
        }
        None => entries.push(Entry {
            manager: w.manager.to_owned(),
            operation: "Update".into(),
            api_version: w.api_version.to_owned(),
            time: now.to_owned(),
            subresource: w.subresource.to_owned(),
            set: cmp.changed,
        }),
    }
    write_entries(new, entries);
}

/// Server-side apply of `config` to `live` (None: the object is created): the merged object,
/// with its managedFields, or the 409 of the fields other managers own and `config` changes
/// (unless `force`), as SMD's `Updater.Apply`.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    w: &Writer<'_>,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    let config_t = tracked(config, w.scope);
    let config_set = field_set(&config_t);
    let Some(live) = live else {
        let mut obj = config.clone();
        write_entries(
            &mut obj,
            vec![Entry {
                manager: w.manager.to_owned(),
                operation: "Apply".into(),
                api_version: w.api_version.to_owned(),
                time: now.to_owned(),
                subresource: w.subresource.to_owned(),
                set: config_set,
            }],
        );
        return Ok(obj);
    };
    let live_t = tracked(live, w.scope);
    let mut entries = read_entries(live);
    if entries.is_empty() {
        // An object nobody manages yet: what it has belongs to `before-first-apply`
        // (fieldmanager's skipNonApplied / `BeforeFirstApplyManager`).
        entries.push(Entry {
            manager: "before-first-apply".into(),
            operation: "Update".into(),
            api_version: w.api_version.to_owned(),
            time: now.to_owned(),
            subresource: w.subresource.to_owned(),
            set: update_set(&live_t),
        });
    }
    let mine = |e: &Entry| e.same_manager(w.manager, "Apply", w.api_version, w.subresource);
    let last = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut others = FieldSet::default();
    for e in entries.iter().filter(|e| !mine(e)) {
        others.union(&e.set);
    }
    let mut merged = live.clone();
    let mut config = config.clone();
    if w.scope == Scope::Main {
        // The main resource's reset fields (the strategies' `GetResetFields`).
        if let Some(m) = config.as_object_mut() {
            m.remove("status");
        }
    }
    merge(&mut merged, &config, "");
    prune(&mut merged, &last.difference(&config_set), Some(&others));
    let cmp = compare(&live_t, &tracked(&merged, w.scope));
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        let c = e.set.intersection(&cmp.changed);
        if c.is_empty() {
            continue;
        }
        for p in c.paths() {
            conflicts.push((e.printed(), p));
        }
        if force {
            e.set = e.set.difference(&c);
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(conflicts));
    }
    entries.retain(|e| !mine(e));
    entries.push(Entry {
        manager: w.manager.to_owned(),
        operation: "Apply".into(),
        api_version: w.api_version.to_owned(),
        time: now.to_owned(),
        subresource: w.subresource.to_owned(),
        set: config_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// The 409 of an apply with conflicts (fieldmanager's `NewConflictError` and
/// `getConflictMessage`): one line for one conflict, else grouped by sorted manager.
fn conflict_error(conflicts: Vec<(String, String)>) -> ApiError {
    let message = if let [(m, p)] = conflicts.as_slice() {
        format!("Apply failed with 1 conflict: conflict with {m}: {p}")
    } else {
        let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (m, p) in &conflicts {
            by.entry(m).or_default().push(p);
        }
        let mut lines = Vec::new();
        for (m, paths) in by {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(paths.iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes = conflicts
        .into_iter()
        .map(|(m, p)| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with {m}"),
            field: p,
        })
        .collect();
    ApiError::apply_conflict(message, causes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "v1",
            subresource: "",
            scope: Scope::All,
        }
    }

    #[test]
    fn field_sets_follow_structs_maps_and_list_types() {
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {"containers": [{"name": "c", "image": "i", "args": ["x"], "resources": {}}],
                     "nodeSelector": {"disk": "ssd"}}});
        let s = field_set(&tracked(&pod, Scope::All));
        assert_eq!(
            s.to_fields_v1(),
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}, "f:labels": {"f:app": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:args": {},
                                "f:image": {}, "f:name": {}, "f:resources": {}}},
                              "f:nodeSelector": {"f:disk": {}}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&s.to_fields_v1()), s);
        assert_eq!(
            s.paths(),
            vec![
                ".metadata.finalizers[=\"a\"]",
                ".metadata.labels.app",
                ".spec.containers[name=\"c\"]",
                ".spec.containers[name=\"c\"].args",
                ".spec.containers[name=\"c\"].image",
                ".spec.containers[name=\"c\"].name",
                ".spec.containers[name=\"c\"].resources",
                ".spec.nodeSelector.disk",
            ]
        );
    }

    #[test]
    fn updates_own_what_they_add_or_change_and_take_it_from_others() {
        let mut cm = json!({"metadata": {"name": "m"}, "data": {"a": "1"}});
        update(None, &mut cm, &writer("kubectl-create"), "t1");
        assert_eq!(
            cm["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {".": {}, "f:a": {}}})
        );
        let old = cm.clone();
        cm["data"]["a"] = json!("2");
        cm["metadata"]["labels"] = json!({"x": "y"});
        update(Some(&old), &mut cm, &writer("kubectl-edit"), "t2");
        let mf = cm["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert_eq!(mf[0]["manager"], "kubectl-create");
        assert_eq!(mf[0]["fieldsV1"], json!({"f:data": {}}));
        assert_eq!(
            mf[1]["fieldsV1"],
            json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
        );
        // An update that changes nothing keeps the entries (and their times).
        let before = cm.clone();
        update(Some(&before), &mut cm, &writer("kubectl-edit"), "t3");
        assert_eq!(cm, before);
        // Status is the status subresource's.
        let mut pod =
            json!({"metadata": {"name": "p"}, "spec": {"x": 1}, "status": {"phase": "Running"}});
        let old = json!({"metadata": {"name": "p"}, "spec": {"x": 1}});
        update(
            Some(&old),
            &mut pod,
            &Writer {
                manager: "kubelet",
                api_version: "v1",
                subresource: "status",
                scope: Scope::Status,
            },
            "t",
        );
        let e = &pod["metadata"]["managedFields"][0];
        assert_eq!(e["subresource"], "status");
        assert_eq!(e["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
    }

    #[test]
    fn apply_conflicts_forces_shares_and_prunes() {
        let cfg1 = json!({"metadata": {"name": "s", "labels": {"app": "web"}}, "data": {"key": "one", "extra": "x"}});
        let live = apply(None, &cfg1, &writer("a"), false, "t1").unwrap();
        assert_eq!(
            live["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:extra": {}, "f:key": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
        );
        let cfg2 = json!({"metadata": {"name": "s"}, "data": {"key": "two"}});
        let err = apply(Some(&live), &cfg2, &writer("b"), false, "t2").unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"a\": .data.key"
        );
        // Same value: shared, no conflict.
        let same = json!({"metadata": {"name": "s"}, "data": {"extra": "x"}});
        let live = apply(Some(&live), &same, &writer("c"), false, "t3").unwrap();
        let live = apply(Some(&live), &cfg2, &writer("b"), true, "t4").unwrap();
        assert_eq!(live["data"]["key"], "two");
        // `a` drops the label and `extra`: the label goes, `extra` stays (c owns it).
        let cfg3 = json!({"metadata": {"name": "s"}, "data": {"more": "y"}});
        let live = apply(Some(&live), &cfg3, &writer("a"), false, "t5").unwrap();
        assert_eq!(
            live["data"],
            json!({"extra": "x", "key": "two", "more": "y"})
        );
        assert_eq!(live["metadata"]["labels"], json!({}));
        // Two conflicts with two managers, grouped and sorted.
        let cfg4 = json!({"metadata": {"name": "s"}, "data": {"key": "3", "extra": "z"}});
        let err = apply(Some(&live), &cfg4, &writer("d"), false, "t6").unwrap_err();
        assert_eq!(
            err.message,
            "Apply failed with 2 conflicts: conflicts with \"b\":\n- .data.key\nconflicts with \"c\":\n- .data.extra"
        );
    }

    /// Found by tests/fuzz.rs: a custom object 120 levels deep got a `fieldsV1` deeper than
    /// the stored object may be, and could not be read back.
    #[test]
    fn deep_values_are_owned_as_a_whole() {
        let deep: Value =
            serde_json::from_str(&format!("{}1{}", "{\"a\":".repeat(124), "}".repeat(124)))
                .unwrap();
        let mut obj = json!({"metadata": {"name": "d"}, "spec": deep});
        update(None, &mut obj, &writer("m"), "t");
        let text = obj.to_string();
        assert!(serde_json::from_str::<Value>(&text).is_ok(), "readable");
        assert!(crate::patch::depth(&obj) <= crate::patch::MAX_DEPTH);
    }

    #[test]
    fn apply_merges_associative_lists_by_key() {
        let live = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}});
        let mut created = live.clone();
        update(None, &mut created, &writer("kubectl-create"), "t0");
        let cfg = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "b", "image": "3"}]}});
        let err = apply(Some(&created), &cfg, &writer("k"), false, "t1").unwrap_err();
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .spec.containers[name=\"b\"].image"
        );
        let out = apply(Some(&created), &cfg, &writer("k"), true, "t1").unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "1"}, {"name": "b", "image": "3"}])
        );
    }
}
