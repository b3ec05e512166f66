//! A read-only typed view of the confinement-relevant parts of a pod held as
//! generic JSON, and the few writes the create-time synchronisation needs.
//!
//! JSON `null` is treated as absent, as the Kubernetes decoder does for
//! pointer fields. Any other wrong shape is a [`ShapeError`], never a panic.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::shape::{get_object, get_string, join};

/// Annotation key of the pod-level seccomp annotation.
pub const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
/// Prefix of the per-container seccomp annotation keys.
pub const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str =
    "container.seccomp.security.alpha.kubernetes.io/";
/// Prefix of the per-container AppArmor annotation keys.
pub const APPARMOR_CONTAINER_ANNOTATION_PREFIX: &str =
    "container.apparmor.security.beta.kubernetes.io/";

/// The JSON is not shaped like a pod where confinement settings live.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A value has the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        /// JSON path of the value, e.g. `spec.containers[0].securityContext`.
        path: String,
        /// What the Kubernetes schema wants there.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
}

/// The kind of container list a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// `spec.initContainers`
    Init,
    /// `spec.containers`
    Regular,
    /// `spec.ephemeralContainers`
    Ephemeral,
}

impl ContainerKind {
    /// The JSON field name of the list.
    pub fn field(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// A `seccompProfile` or `appArmorProfile` value. A missing `type` reads as
/// the empty string, as Go's zero value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `type`
    pub type_: String,
    /// `localhostProfile`
    pub localhost_profile: Option<String>,
}

impl Profile {
    /// A profile of the given type without a localhost name.
    pub fn of_type(type_: &str) -> Self {
        Self {
            type_: type_.to_string(),
            localhost_profile: None,
        }
    }

    /// A `Localhost` profile naming `name`.
    pub fn localhost(name: &str) -> Self {
        Self {
            type_: "Localhost".to_string(),
            localhost_profile: Some(name.to_string()),
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(p) = &self.localhost_profile {
            m.insert("localhostProfile".into(), Value::String(p.clone()));
        }
        m.insert("type".into(), Value::String(self.type_.clone()));
        Value::Object(m)
    }
}

/// Confinement settings of one security context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityContextView {
    /// `seccompProfile`
    pub seccomp: Option<Profile>,
    /// `appArmorProfile`
    pub apparmor: Option<Profile>,
    /// `privileged` (containers only)
    pub privileged: bool,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    /// Which list it is in.
    pub kind: ContainerKind,
    /// Index in that list.
    pub index: usize,
    /// `name` (empty when missing).
    pub name: String,
    /// `securityContext`, if present.
    pub security_context: Option<SecurityContextView>,
}

impl ContainerView {
    /// Field path of the container, e.g. `spec.containers[0]`.
    pub fn path(&self) -> String {
        format!("spec.{}[{}]", self.kind.field(), self.index)
    }

    /// The container-level seccomp profile.
    pub fn seccomp(&self) -> Option<&Profile> {
        self.security_context.as_ref()?.seccomp.as_ref()
    }

    /// The container-level AppArmor profile.
    pub fn apparmor(&self) -> Option<&Profile> {
        self.security_context.as_ref()?.apparmor.as_ref()
    }

    /// Whether `securityContext.privileged` is true.
    pub fn privileged(&self) -> bool {
        self.security_context.as_ref().is_some_and(|s| s.privileged)
    }
}

/// The confinement-relevant parts of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodView {
    /// `metadata.name`
    pub name: String,
    /// `metadata.annotations`
    pub annotations: BTreeMap<String, String>,
    /// `spec.securityContext`
    pub security_context: Option<SecurityContextView>,
    /// Containers in the order Kubernetes visits them: init, regular,
    /// ephemeral.
    pub containers: Vec<ContainerView>,
    /// `spec.os.name == "windows"`
    pub windows: bool,
}

impl PodView {
    /// Reads the pod.
    pub fn parse(pod: &Value) -> Result<Self, ShapeError> {
        let root = as_object(pod, "")?;
        let mut view = PodView::default();
        if let Some(meta) = get_object(root, "metadata", "")? {
            if let Some(name) = get_string(meta, "name", "metadata")? {
                view.name = name;
            }
            if let Some(ann) = get_object(meta, "annotations", "metadata")? {
                for (k, v) in ann {
                    let path = format!("metadata.annotations[{k}]");
                    match v {
                        Value::String(s) => {
                            view.annotations.insert(k.clone(), s.clone());
                        }
                        Value::Null => {}
                        other => return Err(wrong(&path, "string", other)),
                    }
                }
            }
        }
        let Some(spec) = get_object(root, "spec", "")? else {
            return Ok(view);
        };
        if let Some(os) = get_object(spec, "os", "spec")? {
            view.windows = get_string(os, "name", "spec.os")?.as_deref() == Some("windows");
        }
        view.security_context = parse_security_context(spec, "spec")?;
        for kind in [
            ContainerKind::Init,
            ContainerKind::Regular,
            ContainerKind::Ephemeral,
        ] {
            let list_path = format!("spec.{}", kind.field());
            let Some(list) = spec.get(kind.field()) else {
                continue;
            };
            let items = match list {
                Value::Null => continue,
                Value::Array(items) => items,
                other => return Err(wrong(&list_path, "array", other)),
            };
            for (index, item) in items.iter().enumerate() {
                let path = format!("{list_path}[{index}]");
                let obj = as_object(item, &path)?;
                let name = get_string(obj, "name", &path)?.unwrap_or_default();
                let security_context = parse_security_context(obj, &path)?;
                view.containers.push(ContainerView {
                    kind,
                    index,
                    name,
                    security_context,
                });
            }
        }
        Ok(view)
    }

    /// The pod-level seccomp profile.
    pub fn pod_seccomp(&self) -> Option<&Profile> {
        self.security_context.as_ref()?.seccomp.as_ref()
    }

    /// The pod-level AppArmor profile.
    pub fn pod_apparmor(&self) -> Option<&Profile> {
        self.security_context.as_ref()?.apparmor.as_ref()
    }

    /// Whether any container (of any kind) has this name.
    pub fn has_container(&self, name: &str) -> bool {
        self.containers.iter().any(|c| c.name == name)
    }
}

/// The `securityContext` of `parent` (whose path is `parent_path`).
fn parse_security_context(
    parent: &Map<String, Value>,
    parent_path: &str,
) -> Result<Option<SecurityContextView>, ShapeError> {
    let Some(sc) = get_object(parent, "securityContext", parent_path)? else {
        return Ok(None);
    };
    let path = join(parent_path, "securityContext");
    let seccomp = parse_profile(sc, "seccompProfile", &path)?;
    let apparmor = parse_profile(sc, "appArmorProfile", &path)?;
    let privileged = match sc.get("privileged") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong(&format!("{path}.privileged"), "boolean", other)),
    };
    Ok(Some(SecurityContextView {
        seccomp,
        apparmor,
        privileged,
    }))
}

/// The profile at `key` of `parent` (whose path is `parent_path`).
fn parse_profile(
    parent: &Map<String, Value>,
    key: &str,
    parent_path: &str,
) -> Result<Option<Profile>, ShapeError> {
    let Some(obj) = get_object(parent, key, parent_path)? else {
        return Ok(None);
    };
    let path = join(parent_path, key);
    Ok(Some(Profile {
        type_: get_string(obj, "type", &path)?.unwrap_or_default(),
        localhost_profile: get_string(obj, "localhostProfile", &path)?,
    }))
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn wrong(path: &str, expected: &'static str, found: &Value) -> ShapeError {
    ShapeError::WrongType {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.into()
        },
        expected,
        found: type_name(found),
    }
}

fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ShapeError> {
    v.as_object().ok_or_else(|| wrong(path, "object", v))
}

/// Returns the object at `key` in `parent`, creating it (or replacing a
/// `null`) when absent. Fails on any other non-object value.
fn object_entry<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Map<String, Value>, ShapeError> {
    let slot = parent
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    let found = type_name(slot);
    slot.as_object_mut().ok_or(ShapeError::WrongType {
        path: path.to_string(),
        expected: "object",
        found,
    })
}

/// Sets `metadata.annotations[key] = value`.
pub fn set_annotation(pod: &mut Value, key: &str, value: &str) -> Result<(), ShapeError> {
    let found = type_name(pod);
    let root = pod.as_object_mut().ok_or(ShapeError::WrongType {
        path: "<root>".into(),
        expected: "object",
        found,
    })?;
    let meta = object_entry(root, "metadata", "metadata")?;
    let ann = object_entry(meta, "annotations", "metadata.annotations")?;
    ann.insert(key.to_string(), Value::String(value.to_string()));
    Ok(())
}

/// Which profile field of a security context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    /// `seccompProfile`
    Seccomp,
    /// `appArmorProfile`
    AppArmor,
}

impl ProfileField {
    fn key(self) -> &'static str {
        match self {
            ProfileField::Seccomp => "seccompProfile",
            ProfileField::AppArmor => "appArmorProfile",
        }
    }
}

/// Sets a profile field in the pod's (`container == None`) or a container's
/// security context, creating the security context when needed.
pub fn set_profile(
    pod: &mut Value,
    container: Option<(ContainerKind, usize)>,
    field: ProfileField,
    profile: &Profile,
) -> Result<(), ShapeError> {
    let found = type_name(pod);
    let root = pod.as_object_mut().ok_or(ShapeError::WrongType {
        path: "<root>".into(),
        expected: "object",
        found,
    })?;
    let spec = object_entry(root, "spec", "spec")?;
    let (holder, path) = match container {
        None => (spec, "spec".to_string()),
        Some((kind, index)) => {
            let list_path = format!("spec.{}", kind.field());
            let item_path = format!("{list_path}[{index}]");
            let list = spec.get_mut(kind.field()).and_then(Value::as_array_mut);
            let item = list
                .and_then(|l| l.get_mut(index))
                .ok_or(ShapeError::WrongType {
                    path: item_path.clone(),
                    expected: "object",
                    found: "null",
                })?;
            let found = type_name(item);
            let obj = item.as_object_mut().ok_or(ShapeError::WrongType {
                path: item_path.clone(),
                expected: "object",
                found,
            })?;
            (obj, item_path)
        }
    };
    let sc = object_entry(
        holder,
        "securityContext",
        &format!("{path}.securityContext"),
    )?;
    sc.insert(field.key().to_string(), profile.to_json());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_all_container_kinds_in_visit_order() {
        let pod = json!({
            "metadata": {"name": "p", "annotations": {"a": "b", "n": null}},
            "spec": {
                "containers": [{"name": "c", "securityContext": {"privileged": true}}],
                "initContainers": [{"name": "i"}],
                "ephemeralContainers": [{"name": "e", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
                "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "x"}}
            }
        });
        let v = PodView::parse(&pod).expect("valid");
        let names: Vec<_> = v.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["i", "c", "e"]);
        assert_eq!(v.containers[1].path(), "spec.containers[0]");
        assert!(v.containers[1].privileged());
        assert_eq!(
            v.containers[2].seccomp(),
            Some(&Profile::of_type("Unconfined"))
        );
        assert_eq!(v.pod_apparmor(), Some(&Profile::localhost("x")));
        assert_eq!(v.annotations.len(), 1);
        assert_eq!(v.name, "p");
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        let cases = [
            (json!([]), "<root>"),
            (json!({"metadata": 1}), "metadata"),
            (
                json!({"metadata": {"annotations": {"k": 1}}}),
                "metadata.annotations[k]",
            ),
            (json!({"spec": {"containers": {}}}), "spec.containers"),
            (json!({"spec": {"containers": [1]}}), "spec.containers[0]"),
            (
                json!({"spec": {"containers": [{"securityContext": {"seccompProfile": "x"}}]}}),
                "spec.containers[0].securityContext.seccompProfile",
            ),
            (
                json!({"spec": {"securityContext": {"appArmorProfile": {"type": 3}}}}),
                "spec.securityContext.appArmorProfile.type",
            ),
            (
                json!({"spec": {"containers": [{"securityContext": {"privileged": "yes"}}]}}),
                "spec.containers[0].securityContext.privileged",
            ),
        ];
        for (pod, want) in cases {
            match PodView::parse(&pod) {
                Err(ShapeError::WrongType { path, .. }) => assert_eq!(path, want),
                other => panic!("{pod}: {other:?}"),
            }
        }
    }

    #[test]
    fn writes_create_missing_objects() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "securityContext": null}]}});
        set_annotation(&mut pod, "k", "v").expect("ok");
        set_profile(
            &mut pod,
            Some((ContainerKind::Regular, 0)),
            ProfileField::AppArmor,
            &Profile::of_type("RuntimeDefault"),
        )
        .expect("ok");
        assert_eq!(pod["metadata"]["annotations"]["k"], "v");
        assert_eq!(
            pod["spec"]["containers"][0]["securityContext"]["appArmorProfile"],
            json!({"type": "RuntimeDefault"})
        );
        let mut bad = json!({"metadata": {"annotations": []}});
        assert!(set_annotation(&mut bad, "k", "v").is_err());
        let mut missing = json!({"spec": {}});
        assert!(set_profile(
            &mut missing,
            Some((ContainerKind::Init, 3)),
            ProfileField::Seccomp,
            &Profile::of_type("Unconfined")
        )
        .is_err());
    }
}
