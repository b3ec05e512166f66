//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`) and the custom resources they add.
//!
//! A definition is validated on every write (the checks of
//! staging/src/k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation/validation.go
//! that a client meets: names, group, scope, versions, schemas), gets its `status` at once
//! (`NamesAccepted` and `Established` true, `acceptedNames`, `storedVersions`: kube-apiserver's
//! naming and establishing controllers, done synchronously so a custom resource can be created
//! right after its definition), and then every served version is a resource of the
//! [`Registry`]. Objects are stored in the storage version's key space and served in any served
//! version unchanged (the `None` conversion strategy).
//!
//! Custom objects are checked against their version's `openAPIV3Schema` as the structural
//! schema machinery does: `null` dropped where not `nullable`, defaults applied, unknown fields
//! pruned (an error with `fieldValidation=Strict`, a warning otherwise), then types, `enum`,
//! `required`, bounds and `pattern` validated, with upstream's field paths and messages.
//! Deleting a definition deletes its objects (the `customresourcecleanup` finalizer's job).
//!
//! The Security Profiles Operator's definitions ship with the server ([`BUNDLED`]) and are
//! installed at start-up.

use std::sync::Arc;

use armorlet_store::{Gvr, ListOptions, Store, WriteOptions};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, Cause};
use crate::registry::{Registry, ResourceDef};

/// The CustomResourceDefinitions the server installs when it starts: the Security Profiles
/// Operator's resources, with the same groups, versions, kinds and fields.
pub const BUNDLED: &str = include_str!("../crds/security-profiles-operator.yaml");

/// What a custom resource's version adds to its [`ResourceDef`].
#[derive(Debug, Clone, PartialEq)]
pub struct Custom {
    /// The version objects are stored in.
    pub storage_version: String,
    /// The version's `openAPIV3Schema`.
    pub schema: Value,
    /// The version's `additionalPrinterColumns` (or the default `Age`).
    pub columns: Vec<Column>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Column {
    /// Header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Format hint.
    #[serde(default)]
    pub format: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// 0 always shown; above 0 only with `-o wide`.
    #[serde(default)]
    pub priority: i64,
    /// A simple JSONPath (`.status.phase`, `.metadata.labels['a']`, `.spec.items[0]`).
    #[serde(rename = "jsonPath")]
    pub json_path: String,
}

fn crds() -> Gvr {
    Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn cause(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Cause {
    Cause {
        reason,
        field: field.into(),
        message: message.into(),
    }
}

fn quoted(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The resources a definition serves: one per served version.
pub fn definitions(crd: &Value) -> Vec<Arc<ResourceDef>> {
    let spec = &crd["spec"];
    let versions = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let Some(storage) = versions.iter().find(|v| v["storage"] == true) else {
        return Vec::new();
    };
    let names = &crd["status"]["acceptedNames"];
    let names = if names.is_object() {
        names
    } else {
        &spec["names"]
    };
    let strings = |ptr: &str| -> Vec<String> {
        names
            .pointer(ptr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    versions
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| {
            let columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .filter_map(|c| serde_json::from_value(c.clone()).ok())
                        .collect::<Vec<Column>>()
                })
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| {
                    // crdHandler's default when a version declares no columns.
                    vec![Column {
                        name: "Age".into(),
                        ty: "date".into(),
                        format: String::new(),
                        description: String::new(),
                        priority: 0,
                        json_path: ".metadata.creationTimestamp".into(),
                    }]
                });
            Arc::new(ResourceDef {
                group: s(spec, "/group").to_owned(),
                version: s(v, "/name").to_owned(),
                plural: s(names, "/plural").to_owned(),
                singular: s(names, "/singular").to_owned(),
                kind: s(names, "/kind").to_owned(),
                namespaced: spec["scope"] == "Namespaced",
                short_names: strings("/shortNames"),
                categories: strings("/categories"),
                has_status: v["subresources"]["status"].is_object(),
                tracks_generation: true,
                field_labels: Vec::new(),
                custom: Some(Arc::new(Custom {
                    storage_version: s(storage, "/name").to_owned(),
                    schema: v["schema"]["openAPIV3Schema"].clone(),
                    columns,
                })),
            })
        })
        .collect()
}

/// Rebuilds the registry's custom resources from the stored definitions.
pub fn reload(registry: &Registry, store: &Store) -> Result<(), ApiError> {
    let all = store.list(&crds(), None, &ListOptions::default())?.items;
    let mut defs = Vec::new();
    for crd in &all {
        for d in definitions(crd) {
            // A built-in resource always wins (kube-apiserver refuses such groups anyway).
            if crate::registry::builtin(&d.group, &d.version, &d.plural).is_none() {
                defs.push(d);
            }
        }
    }
    registry.set_custom(defs);
    Ok(())
}

/// Groups only definitions approved upstream may use (`api-approved.kubernetes.io`).
fn protected(group: &str) -> bool {
    ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|p| group == *p || group.ends_with(&format!(".{p}")))
}

/// DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, alphanumeric at both ends.
fn dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// DNS-1035 label (what plural, singular and short names must be).
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase()
        && !s.ends_with('-')
}

/// Fills the defaults of `spec.names` (`singular` from the kind, `listKind`), as
/// SetDefaults_CustomResourceDefinitionSpec.
pub fn default_definition(crd: &mut Value) {
    let names = &mut crd["spec"]["names"];
    if !names.is_object() {
        return;
    }
    let kind = s(names, "/kind").to_owned();
    if s(names, "/singular").is_empty() && !kind.is_empty() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if s(names, "/listKind").is_empty() && !kind.is_empty() {
        names["listKind"] = json!(format!("{kind}List"));
    }
}

/// The validation of a definition's create or update (`old`), as
/// ValidateCustomResourceDefinition(Update) for the fields clients set.
pub fn validate_definition(crd: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = s(spec, "/group");
    let plural = s(spec, "/names/plural");
    let kind = s(spec, "/names/kind");
    let name = s(crd, "/metadata/name");
    if name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!(
                "Invalid value: {}: must be spec.names.plural+\".\"+spec.group",
                quoted(name)
            ),
        ));
    }
    if group.is_empty() {
        causes.push(cause("FieldValueRequired", "spec.group", "Required value"));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!(
                "Invalid value: {}: should be a domain with at least one dot",
                quoted(group)
            ),
        ));
    } else if !dns_subdomain(group) {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: {}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", quoted(group)),
        ));
    }
    if protected(group)
        && crd
            .pointer("/metadata/annotations/api-approved.kubernetes.io")
            .is_none()
    {
        causes.push(cause(
            "FieldValueRequired",
            "metadata.annotations[api-approved.kubernetes.io]",
            "Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111",
        ));
    }
    match s(spec, "/scope") {
        "Cluster" | "Namespaced" => {}
        "" => causes.push(cause("FieldValueRequired", "spec.scope", "Required value")),
        other => causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
                quoted(other)
            ),
        )),
    }
    if plural.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if kind.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    for (field, v) in [("plural", plural), ("singular", s(spec, "/names/singular"))] {
        if !v.is_empty() && !dns_label(v) {
            causes.push(cause(
                "FieldValueInvalid",
                format!("spec.names.{field}"),
                format!("Invalid value: {}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", quoted(v)),
            ));
        }
    }
    for (i, short) in spec["names"]["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let v = short.as_str().unwrap_or("");
        if !dns_label(v) {
            causes.push(cause(
                "FieldValueInvalid",
                format!("spec.names.shortNames[{i}]"),
                format!("Invalid value: {}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", quoted(v)),
            ));
        }
    }
    let versions = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if versions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: \"null\": must have exactly one version marked as storage version",
        ));
    } else if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                quoted(&Value::Array(versions.to_vec()).to_string())
            ),
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let vname = s(v, "/name");
        if vname.is_empty() || !dns_label(vname) {
            causes.push(cause(
                "FieldValueInvalid",
                format!("spec.versions[{i}].name"),
                format!("Invalid value: {}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character", quoted(vname)),
            ));
        }
        if !v["schema"]["openAPIV3Schema"].is_object() {
            causes.push(cause(
                "FieldValueRequired",
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required",
            ));
        } else if v["schema"]["openAPIV3Schema"]["type"] != "object" {
            causes.push(cause(
                "FieldValueInvalid",
                format!("spec.versions[{i}].schema.openAPIV3Schema.type"),
                format!(
                    "Invalid value: {}: must be object at the root",
                    quoted(s(v, "/schema/openAPIV3Schema/type"))
                ),
            ));
        }
        if let Some(p) = v["schema"]["openAPIV3Schema"]
            .pointer("/properties")
            .and_then(Value::as_object)
        {
            check_patterns(
                &Value::Object(p.clone()),
                &format!("spec.versions[{i}].schema.openAPIV3Schema.properties"),
                &mut causes,
            );
        }
        for (j, c) in v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let ty = s(c, "/type");
            if !matches!(ty, "string" | "integer" | "number" | "boolean" | "date") {
                causes.push(cause(
                    "FieldValueNotSupported",
                    format!("spec.versions[{i}].additionalPrinterColumns[{j}].type"),
                    format!("Unsupported value: {}: supported values: \"boolean\", \"date\", \"integer\", \"number\", \"string\"", quoted(ty)),
                ));
            }
            if parse_path(s(c, "/jsonPath")).is_none() {
                causes.push(cause(
                    "FieldValueInvalid",
                    format!("spec.versions[{i}].additionalPrinterColumns[{j}].jsonPath"),
                    format!(
                        "Invalid value: {}: must be a simple json path starting with .",
                        quoted(s(c, "/jsonPath"))
                    ),
                ));
            }
        }
    }
    if let Some(old) = old {
        for (field, ptr) in [("spec.scope", "/spec/scope"), ("spec.group", "/spec/group")] {
            if s(old, ptr) != s(crd, ptr) {
                causes.push(cause(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {}: field is immutable", quoted(s(crd, ptr))),
                ));
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("CustomResourceDefinition", name, causes))
    }
}

/// Every `pattern` in a schema must compile.
fn check_patterns(props: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(map) = props.as_object() else {
        return;
    };
    for (k, sch) in map {
        let here = format!("{path}[{k}]");
        if let Some(p) = sch["pattern"].as_str() {
            if let Err(e) = regex::Regex::new(p) {
                causes.push(cause(
                    "FieldValueInvalid",
                    format!("{here}.pattern"),
                    format!(
                        "Invalid value: {}: must be a valid regular expression, but isn't: {e}",
                        quoted(p)
                    ),
                ));
            }
        }
        check_patterns(&sch["properties"], &format!("{here}.properties"), causes);
        if sch["items"].is_object() {
            let mut one = Map::new();
            one.insert("items".into(), sch["items"].clone());
            check_patterns(&Value::Object(one), &here, causes);
        }
    }
}

/// The definition's status as the naming and establishing controllers leave it: names
/// accepted, established, and the storage version added to `storedVersions`.
pub fn definition_status(crd: &Value, old: Option<&Value>, now: &str) -> Value {
    let mut stored: Vec<Value> = old
        .and_then(|o| o.pointer("/status/storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        if v["storage"] == true && !stored.contains(&v["name"]) {
            stored.push(v["name"].clone());
        }
    }
    let since = |ty: &str| {
        old.and_then(|o| o.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now)
            .to_owned()
    };
    json!({
        "acceptedNames": crd["spec"]["names"].clone(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": since("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": since("Established")},
        ],
        "storedVersions": stored,
    })
}

/// What `fieldValidation` asks for unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the default).
    Warn,
    /// Refuse the request.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter (absent → `Warn`, kube-apiserver's default).
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn, or Strict, but got {other}"
            ))),
        }
    }
}

/// Checks a custom object against its schema: drops what the schema does not declare and
/// `null`s it does not allow, applies defaults, then validates. Returns the warnings for
/// dropped fields (`Warn`).
pub fn check_object(
    def: &ResourceDef,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let Some(custom) = &def.custom else {
        return Ok(Vec::new());
    };
    let schema = &custom.schema;
    let mut unknown = Vec::new();
    if let Some(map) = obj.as_object_mut() {
        let props = schema["properties"].as_object();
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.and_then(|p| p.get(&k)) {
                Some(sub) => {
                    let v = map.get_mut(&k).expect("key listed");
                    if v.is_null() && sub["nullable"] != true {
                        map.remove(&k);
                        continue;
                    }
                    normalize(sub, v, &k, &mut unknown);
                }
                None if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
                None => {
                    map.remove(&k);
                    unknown.push(k);
                }
            }
        }
        apply_defaults(schema, map);
    }
    let warnings: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {}", quoted(f)))
        .collect();
    if mode == FieldValidation::Strict && !warnings.is_empty() {
        return Err(crate::fields::strict_error(
            &def.kind,
            &def.version,
            &warnings,
        ));
    }
    let mut causes = Vec::new();
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(sub) = schema["properties"].get(k) {
                validate(sub, v, k, &mut causes);
            }
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            if let Some(r) = r.as_str() {
                if !map.contains_key(r) {
                    causes.push(cause("FieldValueRequired", r, "Required value"));
                }
            }
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            &def.kind,
            s(obj, "/metadata/name"),
            causes,
        ));
    }
    Ok(if mode == FieldValidation::Warn {
        warnings
    } else {
        Vec::new()
    })
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == true
}

/// Pruning and `null` dropping below the root, collecting the dropped paths.
fn normalize(schema: &Value, v: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match v {
        Value::Object(map) if schema["type"] == "object" || schema["properties"].is_object() => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let sub = props
                    .and_then(|p| p.get(&k))
                    .or_else(|| additional.is_object().then_some(additional));
                let here = format!("{path}.{k}");
                match sub {
                    Some(sub) => {
                        let child = map.get_mut(&k).expect("key listed");
                        if child.is_null() && sub["nullable"] != true {
                            map.remove(&k);
                            continue;
                        }
                        normalize(sub, child, &here, unknown);
                    }
                    None if preserves(schema) || *additional == Value::Bool(true) => {}
                    None => {
                        map.remove(&k);
                        unknown.push(here);
                    }
                }
            }
            apply_defaults(schema, map);
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter_mut().enumerate() {
                normalize(&schema["items"], item, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

fn apply_defaults(schema: &Value, map: &mut Map<String, Value>) {
    for (k, sub) in schema["properties"].as_object().into_iter().flatten() {
        if !map.contains_key(k) {
            if let Some(d) = sub.get("default") {
                map.insert(k.clone(), d.clone());
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(want: &str, v: &Value) -> bool {
    match (want, v) {
        ("", _) => true,
        ("number", Value::Number(_)) => true,
        (w, v) => w == type_name(v),
    }
}

/// kube-openapi's validation of one value, with upstream's messages.
fn validate(schema: &Value, v: &Value, path: &str, causes: &mut Vec<Cause>) {
    if v.is_null() && schema["nullable"] == true {
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"] == true;
    let want = s(schema, "/type");
    let ok = if int_or_string {
        matches!(type_name(v), "integer" | "string")
    } else {
        type_matches(want, v)
    };
    if !ok {
        let want = if int_or_string {
            "integer or string"
        } else {
            want
        };
        causes.push(cause(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body must be of type {want}: {}",
                quoted(type_name(v)),
                quoted(type_name(v))
            ),
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            causes.push(cause(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {v}: supported values: {}",
                    list.join(", ")
                ),
            ));
        }
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema["minimum"].as_f64() {
                if x < min {
                    causes.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!("Invalid value: {v}: {path} in body should be greater than or equal to {}", schema["minimum"]),
                    ));
                }
            }
            if let Some(max) = schema["maximum"].as_f64() {
                if x > max {
                    causes.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!(
                            "Invalid value: {v}: {path} in body should be less than or equal to {}",
                            schema["maximum"]
                        ),
                    ));
                }
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64() {
                if len > max {
                    causes.push(cause(
                        "FieldValueTooLong",
                        path,
                        format!("Too long: may not be more than {max} bytes"),
                    ));
                }
            }
            if let Some(min) = schema["minLength"].as_u64() {
                if len < min {
                    causes.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!(
                            "Invalid value: {}: {path} in body should be at least {min} chars long",
                            quoted(text)
                        ),
                    ));
                }
            }
            if let Some(p) = schema["pattern"].as_str() {
                // Patterns were compiled when the definition was accepted.
                if regex::Regex::new(p).is_ok_and(|re| !re.is_match(text)) {
                    causes.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!(
                            "Invalid value: {}: {path} in body should match '{p}'",
                            quoted(text)
                        ),
                    ));
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64() {
                if items.len() as u64 > max {
                    causes.push(cause(
                        "FieldValueTooMany",
                        path,
                        format!("Too many: {}: must have at most {max} items", items.len()),
                    ));
                }
            }
            if let Some(min) = schema["minItems"].as_u64() {
                if (items.len() as u64) < min {
                    causes.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!(
                            "Invalid value: {}: {path} in body should have at least {min} items",
                            items.len()
                        ),
                    ));
                }
            }
            if schema["items"].is_object() {
                for (i, item) in items.iter().enumerate() {
                    validate(&schema["items"], item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (k, child) in map {
                let sub = props
                    .and_then(|p| p.get(k))
                    .or_else(|| additional.is_object().then_some(additional));
                if let Some(sub) = sub {
                    validate(sub, child, &format!("{path}.{k}"), causes);
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                if let Some(r) = r.as_str() {
                    if !map.contains_key(r) {
                        causes.push(cause(
                            "FieldValueRequired",
                            format!("{path}.{r}"),
                            "Required value",
                        ));
                    }
                }
            }
        }
        _ => {}
    }
}

/// One step of a simple JSONPath.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses `.a.b`, `.a['b.c']`, `.a[0]` (the simple paths printer columns allow).
fn parse_path(p: &str) -> Option<Vec<Step>> {
    let p = p.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p);
    if !p.starts_with('.') {
        return None;
    }
    let mut steps = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            let key = inner
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')));
            match key {
                Some(k) => steps.push(Step::Key(k.to_owned())),
                None => steps.push(Step::Index(inner.parse().ok()?)),
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for step in parse_path(path)? {
        cur = match step {
            Step::Key(k) => cur.get(&k)?,
            Step::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// The Table columns of a custom resource: `Name`, then its printer columns.
pub fn columns(custom: &Custom) -> Vec<Value> {
    let mut out = vec![json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0})];
    for c in &custom.columns {
        out.push(json!({"name": c.name, "type": c.ty, "format": c.format,
                        "description": c.description, "priority": c.priority}));
    }
    out
}

/// One object's cells (apiextensions-apiserver's tableconvertor: strings printed as JSONPath
/// prints them, dates as ages, missing values as `null`).
pub fn cells(custom: &Custom, obj: &Value, now: i64) -> Vec<Value> {
    let mut out = vec![json!(s(obj, "/metadata/name"))];
    for c in &custom.columns {
        let cell = match lookup(obj, &c.json_path) {
            None | Some(Value::Null) => Value::Null,
            Some(v) => match c.ty.as_str() {
                "date" => json!(crate::table::age(Some(v), now)),
                "string" => match v {
                    Value::String(x) => json!(x),
                    other => json!(other.to_string()),
                },
                _ => v.clone(),
            },
        };
        out.push(cell);
    }
    out
}

/// Installs (or brings up to date) the bundled definitions.
pub fn install_bundled(store: &Store, registry: &Registry) -> Result<(), ApiError> {
    for doc in serde_yaml::Deserializer::from_str(BUNDLED) {
        let mut crd = Value::deserialize(doc)
            .map_err(|e| ApiError::internal(format!("bundled CRDs: {e}")))?;
        default_definition(&mut crd);
        validate_definition(&crd, None)?;
        let name = s(&crd, "/metadata/name").to_owned();
        match store.get(&crds(), "", &name) {
            Ok(cur) if cur["spec"] == crd["spec"] => continue,
            Ok(cur) => {
                store.guaranteed_update(
                    &crds(),
                    "",
                    &name,
                    &WriteOptions::default(),
                    |mut new| {
                        new["spec"] = crd["spec"].clone();
                        new["status"] = definition_status(
                            &new,
                            Some(&cur),
                            &armorlet_store::time::now_rfc3339(),
                        );
                        Ok(new)
                    },
                )?;
            }
            Err(armorlet_store::StoreError::NotFound { .. }) => {
                crd["apiVersion"] = json!("apiextensions.k8s.io/v1");
                crd["kind"] = json!("CustomResourceDefinition");
                crd["status"] = definition_status(&crd, None, &armorlet_store::time::now_rfc3339());
                store.create(
                    &crds(),
                    "",
                    crd,
                    &WriteOptions {
                        tracks_generation: true,
                        ..WriteOptions::default()
                    },
                )?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    reload(registry, store)
}

/// After a write to definitions: the objects of those that are gone (of `before`) are
/// deleted, and the registry is rebuilt.
pub fn after_change(registry: &Registry, store: &Store, before: &[Value]) -> Result<(), ApiError> {
    for crd in before {
        let name = s(crd, "/metadata/name");
        if let Err(armorlet_store::StoreError::NotFound { .. }) = store.get(&crds(), "", name) {
            delete_objects(store, crd)?;
        }
    }
    reload(registry, store)
}

/// Deletes every object of a definition that is gone (all its versions' storage).
pub fn delete_objects(store: &Store, crd: &Value) -> Result<(), ApiError> {
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        let gvr = Gvr::new(group, s(v, "/name"), plural);
        for obj in store.list(&gvr, None, &ListOptions::default())?.items {
            let ns = s(&obj, "/metadata/namespace");
            let name = s(&obj, "/metadata/name");
            // The definition is gone, so nothing will ever remove these finalizers.
            let unfinalized = if obj.pointer("/metadata/finalizers").is_some() {
                store
                    .guaranteed_update(&gvr, ns, name, &WriteOptions::default(), |mut cur| {
                        if let Some(m) = cur["metadata"].as_object_mut() {
                            m.remove("finalizers");
                        }
                        Ok(cur)
                    })
                    .map(|_| ())
            } else {
                Ok(())
            };
            let deleted = unfinalized.and_then(|()| {
                store.delete(&gvr, ns, name, &armorlet_store::DeleteOptions::default())
            });
            match deleted {
                Ok(_) | Err(armorlet_store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        let doc = serde_yaml::Deserializer::from_str(BUNDLED)
            .next()
            .expect("one document");
        let mut v = Value::deserialize(doc).unwrap();
        default_definition(&mut v);
        v
    }

    fn bundled() -> Vec<Value> {
        serde_yaml::Deserializer::from_str(BUNDLED)
            .map(|d| {
                let mut v = Value::deserialize(d).unwrap();
                default_definition(&mut v);
                v
            })
            .collect()
    }

    #[test]
    fn bundled_definitions_are_valid() {
        let all = bundled();
        assert!(all.len() >= 5, "{}", all.len());
        for c in &all {
            validate_definition(c, None)
                .unwrap_or_else(|e| panic!("{}: {e:?}", c["metadata"]["name"]));
            assert!(!definitions(c).is_empty());
        }
    }

    #[test]
    fn definition_errors_name_their_fields() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong");
        c["spec"]["scope"] = json!("Galaxy");
        c["spec"]["versions"][0]["storage"] = json!(false);
        let e = validate_definition(&c, None).unwrap_err();
        let text = e.message;
        assert!(text.contains("metadata.name: Invalid value: \"wrong\": must be spec.names.plural+\".\"+spec.group"), "{text}");
        assert!(text.contains("spec.scope: Unsupported value: \"Galaxy\": supported values: \"Cluster\", \"Namespaced\""), "{text}");
        assert!(
            text.contains("must have exactly one version marked as storage version"),
            "{text}"
        );
        let mut k8s = crd();
        k8s["spec"]["group"] = json!("x.k8s.io");
        k8s["metadata"]["name"] = json!(format!(
            "{}.x.k8s.io",
            k8s["spec"]["names"]["plural"].as_str().unwrap()
        ));
        assert!(validate_definition(&k8s, None)
            .unwrap_err()
            .message
            .contains("api-approved.kubernetes.io"));
        let mut moved = crd();
        moved["spec"]["scope"] = json!("Cluster");
        let old = crd();
        if old["spec"]["scope"] != "Cluster" {
            assert!(validate_definition(&moved, Some(&old))
                .unwrap_err()
                .message
                .contains("spec.scope: Invalid value: \"Cluster\": field is immutable"));
        }
    }

    fn seccomp_def() -> Arc<ResourceDef> {
        let c = bundled()
            .into_iter()
            .find(|c| c["spec"]["names"]["kind"] == "SeccompProfile")
            .unwrap();
        definitions(&c).remove(0)
    }

    #[test]
    fn objects_are_pruned_defaulted_and_validated() {
        let def = seccomp_def();
        let mut obj = json!({"apiVersion": "security-profiles-operator.x-k8s.io/v1beta1", "kind": "SeccompProfile",
            "metadata": {"name": "p"},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO", "bogus": 1, "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read"], "extra": true}]},
            "top": 1});
        let warnings = check_object(&def, &mut obj, FieldValidation::Warn).unwrap();
        assert_eq!(
            warnings,
            [
                "unknown field \"spec.bogus\"",
                "unknown field \"spec.syscalls[0].extra\"",
                "unknown field \"top\""
            ]
        );
        assert!(obj.get("top").is_none() && obj["spec"].get("bogus").is_none());
        assert_eq!(obj["spec"]["disabled"], false, "default applied");
        let mut strict = json!({"metadata": {"name": "p"}, "spec": {"defaultAction": "SCMP_ACT_ERRNO", "bogus": 1}});
        let e = check_object(&def, &mut strict, FieldValidation::Strict).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.contains("SeccompProfile in version \"v1beta1\" cannot be handled as a SeccompProfile: strict decoding error: unknown field \"spec.bogus\""), "{}", e.message);
        let mut bad = json!({"metadata": {"name": "p"}, "spec": {"defaultAction": "SCMP_ACT_NOPE", "syscalls": "read"}});
        let e = check_object(&def, &mut bad, FieldValidation::Strict).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("spec.defaultAction: Unsupported value: \"SCMP_ACT_NOPE\": supported values: \"SCMP_ACT_KILL\""), "{}", e.message);
        assert!(e.message.contains("spec.syscalls: Invalid value: \"string\": spec.syscalls in body must be of type array: \"string\""), "{}", e.message);
        let mut missing = json!({"metadata": {"name": "p"}, "spec": {}});
        let e = check_object(&def, &mut missing, FieldValidation::Strict).unwrap_err();
        assert!(
            e.message.contains("spec.defaultAction: Required value"),
            "{}",
            e.message
        );
    }

    #[test]
    fn printer_columns_follow_their_paths() {
        let def = seccomp_def();
        let custom = def.custom.as_ref().unwrap();
        let cols = columns(custom);
        let names: Vec<&str> = cols.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Name", "Status", "Age", "LocalhostProfile"]);
        let now = armorlet_store::time::now_unix();
        let obj = json!({"metadata": {"name": "p", "creationTimestamp": armorlet_store::time::format_rfc3339(now - 5)},
                         "status": {"status": "Installed"}});
        assert_eq!(
            cells(custom, &obj, now),
            vec![json!("p"), json!("Installed"), json!("5s"), Value::Null]
        );
        let labels = json!({"metadata": {"labels": {"a.b/c": "x"}}, "items": [1, 2]});
        assert_eq!(
            lookup(&labels, ".metadata.labels['a.b/c']"),
            Some(&json!("x"))
        );
        assert_eq!(lookup(&labels, ".items[1]"), Some(&json!(2)));
        assert!(parse_path("metadata").is_none());
    }
}
