//! The parts of a pod (or pod template) the Pod Security checks read, decoded from generic
//! JSON as the Go types of `k8s.io/api/core/v1` would hold them: `null` and missing are the
//! zero value, any other wrong JSON type is a [`ShapeError`] (kube-apiserver refuses such a
//! body when it decodes it, before admission).
//!
//! The view is taken after kube-apiserver's defaulting (`pkg/apis/core/v1/defaults.go`) as far
//! as the checks can see it: a volume without a source is an `emptyDir` (`SetDefaults_Volume`),
//! and with `hostNetwork: true` every container and init container port's `hostPort` defaults
//! to its `containerPort` (`SetDefaults_Pod` for pods; `SetDefaults_PodSpec` for templates
//! while the [`crate::Switch::HostNetworkHostPortsInTemplates`] row is on). armorlet's stored
//! objects do not carry these defaults yet, so the view applies them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::pod::{wrong, ShapeError};
use crate::shape::{get_array, get_bool, get_int, get_object, get_string, join, object, strings};

/// `seLinuxOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeLinux {
    /// `type`
    pub type_: String,
    /// `user`
    pub user: String,
    /// `role`
    pub role: String,
}

/// The security context fields the checks read (pod-level ones have no `privileged`,
/// `allowPrivilegeEscalation`, `capabilities` or `procMount`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityContext {
    /// `seccompProfile.type` when `seccompProfile` is set.
    pub seccomp_type: Option<String>,
    /// `appArmorProfile.type` when `appArmorProfile` is set.
    pub apparmor_type: Option<String>,
    /// `runAsNonRoot`
    pub run_as_non_root: Option<bool>,
    /// `runAsUser`
    pub run_as_user: Option<i64>,
    /// `seLinuxOptions`
    pub se_linux: Option<SeLinux>,
    /// `windowsOptions.hostProcess`
    pub host_process: Option<bool>,
    /// `privileged`
    pub privileged: Option<bool>,
    /// `allowPrivilegeEscalation`
    pub allow_privilege_escalation: Option<bool>,
    /// `capabilities.add` when `capabilities` is set.
    pub capabilities: Option<Capabilities>,
    /// `procMount`
    pub proc_mount: Option<String>,
    /// `sysctls[*].name` (pod level only).
    pub sysctls: Vec<String>,
}

/// `capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `add`
    pub add: Vec<String>,
    /// `drop`
    pub drop: Vec<String>,
}

/// One container of any kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// `name`
    pub name: String,
    /// `image`
    pub image: String,
    /// `ports[*].hostPort` (0 when unset).
    pub host_ports: Vec<i64>,
    /// `securityContext`
    pub security_context: Option<SecurityContext>,
}

/// One volume: its name and the sources set on it (JSON keys with a non-null value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volume {
    /// `name`
    pub name: String,
    /// The `VolumeSource` members set, e.g. `["hostPath"]`.
    pub sources: Vec<String>,
}

impl Volume {
    /// Whether the source `key` is set.
    pub fn has(&self, key: &str) -> bool {
        self.sources.iter().any(|s| s == key)
    }
}

/// A pod's metadata and spec as the checks see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSpecView {
    /// `metadata.annotations`
    pub annotations: BTreeMap<String, String>,
    /// `spec.hostNetwork`
    pub host_network: bool,
    /// `spec.hostPID`
    pub host_pid: bool,
    /// `spec.hostIPC`
    pub host_ipc: bool,
    /// `spec.os.name == "windows"`
    pub windows: bool,
    /// `spec.securityContext`
    pub security_context: Option<SecurityContext>,
    /// `spec.volumes`
    pub volumes: Vec<Volume>,
    /// `spec.initContainers`, `spec.containers`, `spec.ephemeralContainers`, in that order
    /// (`visitContainers` in policy/visitor.go).
    pub containers: Vec<Container>,
    /// How many of [`Self::containers`] are init containers.
    pub init_count: usize,
    /// How many of [`Self::containers`] are regular containers.
    pub regular_count: usize,
}

/// Every member of `VolumeSource` in k8s.io/api/core/v1 (v1.32); a volume setting none of
/// them is defaulted to `emptyDir`.
const VOLUME_SOURCES: [&str; 30] = [
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

impl PodSpecView {
    /// Reads `metadata` and `spec` (either may be `Null`). `default_host_ports`: whether
    /// kube-apiserver's defaulting gives `hostNetwork` ports their `hostPort` here.
    pub fn parse(
        metadata: &Value,
        spec: &Value,
        path: &str,
        default_host_ports: bool,
    ) -> Result<Self, ShapeError> {
        let mut view = PodSpecView::default();
        let meta_path = join(path, "metadata");
        if let Some(meta) = object(metadata, &meta_path)? {
            if let Some(ann) = get_object(meta, "annotations", &meta_path)? {
                for (k, v) in ann {
                    match v {
                        Value::String(s) => {
                            view.annotations.insert(k.clone(), s.clone());
                        }
                        Value::Null => {}
                        other => {
                            return Err(wrong(
                                &format!("{meta_path}.annotations[{k}]"),
                                "string",
                                other,
                            ))
                        }
                    }
                }
            }
        }
        let spec_path = join(path, "spec");
        let Some(spec) = object(spec, &spec_path)? else {
            return Ok(view);
        };
        view.host_network = get_bool(spec, "hostNetwork", &spec_path)?.unwrap_or(false);
        view.host_pid = get_bool(spec, "hostPID", &spec_path)?.unwrap_or(false);
        view.host_ipc = get_bool(spec, "hostIPC", &spec_path)?.unwrap_or(false);
        if let Some(os) = get_object(spec, "os", &spec_path)? {
            view.windows =
                get_string(os, "name", &format!("{spec_path}.os"))?.as_deref() == Some("windows");
        }
        view.security_context = security_context(spec, &spec_path)?;
        for (i, v) in get_array(spec, "volumes", &spec_path)?.iter().enumerate() {
            let vpath = format!("{spec_path}.volumes[{i}]");
            let Some(v) = object(v, &vpath)? else {
                view.volumes.push(Volume {
                    sources: vec!["emptyDir".into()],
                    ..Volume::default()
                });
                continue;
            };
            let name = get_string(v, "name", &vpath)?.unwrap_or_default();
            let mut sources: Vec<String> = VOLUME_SOURCES
                .iter()
                .filter(|k| v.get(**k).is_some_and(|x| !x.is_null()))
                .map(|k| k.to_string())
                .collect();
            if sources.is_empty() {
                sources.push("emptyDir".into());
            }
            view.volumes.push(Volume { name, sources });
        }
        let host_ports = default_host_ports && view.host_network;
        for (field, defaulted) in [
            ("initContainers", host_ports),
            ("containers", host_ports),
            ("ephemeralContainers", false),
        ] {
            let list_path = format!("{spec_path}.{field}");
            for (i, c) in get_array(spec, field, &spec_path)?.iter().enumerate() {
                let cpath = format!("{list_path}[{i}]");
                let c = object(c, &cpath)?.cloned().unwrap_or_default();
                let mut ports = Vec::new();
                for (j, p) in get_array(&c, "ports", &cpath)?.iter().enumerate() {
                    let ppath = format!("{cpath}.ports[{j}]");
                    let Some(p) = object(p, &ppath)? else {
                        ports.push(0);
                        continue;
                    };
                    let host = get_int(p, "hostPort", &ppath)?.unwrap_or(0);
                    let container = get_int(p, "containerPort", &ppath)?.unwrap_or(0);
                    ports.push(if host == 0 && defaulted {
                        container
                    } else {
                        host
                    });
                }
                view.containers.push(Container {
                    name: get_string(&c, "name", &cpath)?.unwrap_or_default(),
                    image: get_string(&c, "image", &cpath)?.unwrap_or_default(),
                    host_ports: ports,
                    security_context: security_context(&c, &cpath)?,
                });
                match field {
                    "initContainers" => view.init_count += 1,
                    "containers" => view.regular_count += 1,
                    _ => {}
                }
            }
        }
        Ok(view)
    }

    /// The ephemeral containers (after the init and regular ones).
    pub fn ephemeral(&self) -> &[Container] {
        &self.containers[self.init_count + self.regular_count..]
    }
}

fn security_context(
    parent: &Map<String, Value>,
    path: &str,
) -> Result<Option<SecurityContext>, ShapeError> {
    let Some(sc) = get_object(parent, "securityContext", path)? else {
        return Ok(None);
    };
    let path = join(path, "securityContext");
    let profile_type = |key: &str| -> Result<Option<String>, ShapeError> {
        let ppath = format!("{path}.{key}");
        Ok(match get_object(sc, key, &path)? {
            Some(p) => Some(get_string(p, "type", &ppath)?.unwrap_or_default()),
            None => None,
        })
    };
    let se_linux = match get_object(sc, "seLinuxOptions", &path)? {
        Some(o) => {
            let p = format!("{path}.seLinuxOptions");
            Some(SeLinux {
                type_: get_string(o, "type", &p)?.unwrap_or_default(),
                user: get_string(o, "user", &p)?.unwrap_or_default(),
                role: get_string(o, "role", &p)?.unwrap_or_default(),
            })
        }
        None => None,
    };
    let host_process = match get_object(sc, "windowsOptions", &path)? {
        Some(o) => get_bool(o, "hostProcess", &format!("{path}.windowsOptions"))?,
        None => None,
    };
    let capabilities = match get_object(sc, "capabilities", &path)? {
        Some(o) => {
            let p = format!("{path}.capabilities");
            Some(Capabilities {
                add: strings(o, "add", &p)?,
                drop: strings(o, "drop", &p)?,
            })
        }
        None => None,
    };
    let mut sysctls = Vec::new();
    for (i, s) in get_array(sc, "sysctls", &path)?.iter().enumerate() {
        let spath = format!("{path}.sysctls[{i}]");
        let name = match object(s, &spath)? {
            Some(o) => get_string(o, "name", &spath)?.unwrap_or_default(),
            None => String::new(),
        };
        sysctls.push(name);
    }
    Ok(Some(SecurityContext {
        seccomp_type: profile_type("seccompProfile")?,
        apparmor_type: profile_type("appArmorProfile")?,
        run_as_non_root: get_bool(sc, "runAsNonRoot", &path)?,
        run_as_user: get_int(sc, "runAsUser", &path)?,
        se_linux,
        host_process,
        privileged: get_bool(sc, "privileged", &path)?,
        allow_privilege_escalation: get_bool(sc, "allowPrivilegeEscalation", &path)?,
        capabilities,
        proc_mount: get_string(sc, "procMount", &path)?,
        sysctls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_go_zero_values_and_defaults() {
        let pod = json!({
            "metadata": {"annotations": {"a": "b", "n": null}},
            "spec": {
                "hostNetwork": true,
                "volumes": [{"name": "v"}, {"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": null}],
                "initContainers": [{"name": "i", "ports": [{"containerPort": 81}]}],
                "containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 90, "hostPort": 91}],
                                "securityContext": {"seccompProfile": {}, "capabilities": {"add": ["X"]}}}],
                "ephemeralContainers": [{"name": "e", "ports": [{"containerPort": 82}]}]
            }
        });
        let v = PodSpecView::parse(&pod["metadata"], &pod["spec"], "", true).unwrap();
        assert_eq!(v.annotations.len(), 1);
        assert_eq!(v.volumes[0].sources, ["emptyDir"]);
        assert!(v.volumes[1].has("hostPath"));
        assert_eq!(v.volumes[2].sources, ["emptyDir"]);
        let names: Vec<_> = v.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["i", "c", "e"]);
        assert_eq!(v.containers[0].host_ports, [81]);
        assert_eq!(v.containers[1].host_ports, [80, 91]);
        assert_eq!(v.ephemeral()[0].host_ports, [0]);
        let sc = v.containers[1].security_context.as_ref().unwrap();
        assert_eq!(sc.seccomp_type.as_deref(), Some(""));
        assert_eq!(sc.capabilities.as_ref().unwrap().add, ["X"]);
        let v = PodSpecView::parse(&pod["metadata"], &pod["spec"], "", false).unwrap();
        assert_eq!(v.containers[1].host_ports, [0, 91]);
    }

    #[test]
    fn wrong_types_name_their_path() {
        let cases = [
            (json!({"hostNetwork": "true"}), "spec.hostNetwork"),
            (
                json!({"containers": [{"securityContext": {"runAsUser": 1.5}}]}),
                "spec.containers[0].securityContext.runAsUser",
            ),
            (
                json!({"securityContext": {"sysctls": [{"name": 3}]}}),
                "spec.securityContext.sysctls[0].name",
            ),
            (
                json!({"containers": [{"securityContext": {"capabilities": {"add": [1]}}}]}),
                "spec.containers[0].securityContext.capabilities.add[0]",
            ),
            (json!({"volumes": {}}), "spec.volumes"),
            (
                json!({"containers": [{"securityContext": []}]}),
                "spec.containers[0].securityContext",
            ),
        ];
        for (spec, want) in cases {
            match PodSpecView::parse(&Value::Null, &spec, "", true) {
                Err(ShapeError::WrongType { path, .. }) => assert_eq!(path, want, "{spec}"),
                other => panic!("{spec}: {other:?}"),
            }
        }
        let tmpl = PodSpecView::parse(&Value::Null, &json!({"hostPID": 1}), "spec.template", true);
        assert!(
            matches!(tmpl, Err(ShapeError::WrongType { path, .. }) if path == "spec.template.spec.hostPID")
        );
    }
}
