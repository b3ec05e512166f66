//! `armorlet up --config kind.yaml`: a kind `Cluster` (`kind.x-k8s.io/v1alpha4`) as the
//! seccomp tutorial writes it, turned into armorlet nodes.
//!
//! What maps (kind's `pkg/apis/config/v1alpha4/types.go` is the reference for the fields):
//! - `nodes[]`: one node agent each, named as kind names its node containers
//!   (`<name>-control-plane`, `<name>-control-plane2`, `<name>-worker`, `<name>-worker2`, ...);
//!   control-plane nodes get the labels kubeadm of the emulated release sets
//!   (`node-role.kubernetes.io/control-plane`, and up to 1.23 `.../master`) and, when the
//!   cluster has workers, its `NoSchedule` taint (kind untaints a lone control plane).
//!   No node: one control-plane node, as kind.
//! - `extraMounts`: the node's view (`armorlet_node::NodeView`). Each node has its own kubelet
//!   root (`D/nodes/<node>/kubelet`, seen at `/var/lib/kubelet`), so a mount at
//!   `/var/lib/kubelet/seccomp/profiles` is where that node's kubelet finds Localhost profiles.
//!   A relative `hostPath` is relative to the current directory (where `kind create cluster`
//!   runs); a `hostPath` that does not exist is an error (Docker would create an empty
//!   directory, which only hides a typo).
//! - `labels`: node labels.
//! - `featureGates`: every component's `--feature-gates` (the API server's AppArmor gate, the
//!   kubelet's SeccompDefault, ...).
//! - `kubeadmConfigPatches` (cluster-wide and per node): a `KubeletConfiguration`'s
//!   `seccompDefault` / `featureGates`, and `kubeletExtraArgs` of `InitConfiguration` (the first
//!   control-plane node) and `JoinConfiguration` (the other nodes): `seccomp-default`,
//!   `feature-gates`, `node-labels`. These are the kubelet settings the tutorial mentions.
//! - `networking.serviceSubnet`, `apiServerAddress`, `apiServerPort`: the API server's
//!   Service range and listen address.
//!
//! Fields armorlet has no use for (`image`, `extraPortMappings`, `containerdConfigPatches`,
//! `runtimeConfig`, other kubelet flags, ...) are warnings naming the field; a wrong type, an
//! unknown role, a missing path or an unparsable patch is an error naming the field.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use armorlet_node::ViewMount;
use serde_yaml::Value;

#[path = "bounded_yaml.rs"]
mod bounded_yaml;
#[cfg(test)]
#[path = "kind_fuzz.rs"]
mod kind_fuzz;

use bounded_yaml::Budget;

/// kind's `apiVersion` for the `Cluster` kind.
const API_VERSION: &str = "kind.x-k8s.io/v1alpha4";
/// Label kubeadm puts on control-plane nodes (cmd/kubeadm/app/constants: LabelNodeRoleControlPlane).
const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The feature gates armorlet implements (the agent's `--feature-gates`).
const KNOWN_GATES: &[&str] = &["SeccompDefault", "AppArmor"];

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `control-plane`.
    ControlPlane,
    /// `worker`.
    Worker,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindNode {
    /// Its name (kind's container name).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// `extraMounts` as view mounts (host paths absolute).
    pub mounts: Vec<ViewMount>,
    /// `labels` (and `node-labels` from kubelet args; the role label).
    pub labels: BTreeMap<String, String>,
    /// The kubelet's `--seccomp-default` / `seccompDefault`, when a patch sets it.
    pub seccomp_default: Option<bool>,
    /// Feature gates for this node's kubelet, in order (later wins).
    pub feature_gates: Vec<(String, bool)>,
}

/// A parsed kind cluster config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCluster {
    /// `name` (default `kind`).
    pub name: String,
    /// The nodes, in the file's order.
    pub nodes: Vec<KindNode>,
    /// Cluster-wide `featureGates` (the API server's too).
    pub feature_gates: Vec<(String, bool)>,
    /// `networking.serviceSubnet`.
    pub service_subnet: Option<String>,
    /// `networking.apiServerAddress`.
    pub api_server_address: Option<IpAddr>,
    /// `networking.apiServerPort`.
    pub api_server_port: Option<u16>,
    /// What was ignored, one line each.
    pub warnings: Vec<String>,
}

impl KindCluster {
    /// Reads and parses `path`; relative `hostPath`s resolve against `cwd`.
    pub fn load(path: &Path, cwd: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, cwd).with_context(|| format!("{}", path.display()))
    }

    /// Parses a config's text.
    pub fn parse(text: &str, cwd: &Path) -> anyhow::Result<Self> {
        // One budget for the document and its kubeadmConfigPatches: aliases cannot blow up.
        let budget = Budget::default();
        let doc: Value = budget.document(text).context("not valid YAML")?;
        let top = mapping(&doc, "the document")?;
        let mut w = Vec::new();
        let kind = str_field(top, "kind", "")?;
        if kind.as_deref() != Some("Cluster") {
            bail!("kind: expected \"Cluster\", got {kind:?}");
        }
        let api = str_field(top, "apiVersion", "")?;
        if api.as_deref() != Some(API_VERSION) {
            bail!("apiVersion: expected {API_VERSION:?}, got {api:?}");
        }
        let name = str_field(top, "name", "")?.unwrap_or_else(|| "kind".into());
        let mut out = KindCluster {
            name,
            nodes: Vec::new(),
            feature_gates: Vec::new(),
            service_subnet: None,
            api_server_address: None,
            api_server_port: None,
            warnings: Vec::new(),
        };
        let mut cluster_patches = Vec::new();
        for (k, v) in top {
            let key = key_str(k)?;
            match key {
                "kind" | "apiVersion" | "name" | "nodes" => {}
                "featureGates" => out.feature_gates = gates(v, "featureGates")?,
                "networking" => networking(v, &mut out, &mut w)?,
                "kubeadmConfigPatches" => cluster_patches = string_list(v, key)?,
                other => w.push(format!("{other}: not used by armorlet (ignored)")),
            }
        }
        let nodes = match top.get("nodes") {
            None | Some(Value::Null) => vec![Value::Mapping(
                [(Value::from("role"), Value::from("control-plane"))]
                    .into_iter()
                    .collect(),
            )],
            Some(Value::Sequence(s)) if !s.is_empty() => s.clone(),
            Some(_) => bail!("nodes: expected a non-empty list of nodes"),
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut first_control_plane = true;
        for (i, n) in nodes.iter().enumerate() {
            let at = format!("nodes[{i}]");
            let node = mapping(n, &at)?;
            let role = match str_field(node, "role", &at)?.as_deref() {
                Some("control-plane") | None => Role::ControlPlane,
                Some("worker") => Role::Worker,
                Some(other) => bail!(
                    "{at}.role: unknown role {other:?} (expected \"control-plane\" or \"worker\")"
                ),
            };
            let role_name = match role {
                Role::ControlPlane => "control-plane",
                Role::Worker => "worker",
            };
            let count = counts.entry(role_name).or_default();
            *count += 1;
            // kind's node names: the first of a role has no number, then 2, 3, ...
            let suffix = if *count == 1 {
                String::new()
            } else {
                count.to_string()
            };
            let mut kn = KindNode {
                name: format!("{}-{role_name}{suffix}", out.name),
                role,
                mounts: Vec::new(),
                labels: BTreeMap::new(),
                seccomp_default: None,
                feature_gates: Vec::new(),
            };
            if role == Role::ControlPlane {
                kn.labels.insert(CONTROL_PLANE_LABEL.into(), String::new());
            }
            // kind applies InitConfiguration to the first control-plane node and
            // JoinConfiguration to every other node.
            let init = role == Role::ControlPlane && std::mem::take(&mut first_control_plane);
            for p in &cluster_patches {
                apply_patch(p, init, &mut kn, "kubeadmConfigPatches", &mut w, &budget)?;
            }
            for (k, v) in node {
                let key = key_str(k)?;
                let here = format!("{at}.{key}");
                match key {
                    "role" => {}
                    "extraMounts" => kn.mounts = extra_mounts(v, &here, cwd, &mut w)?,
                    "labels" => {
                        for (lk, lv) in mapping(v, &here)? {
                            let lk = key_str(lk)?;
                            let lv = scalar_string(lv)
                                .with_context(|| format!("{here}.{lk}: expected a string"))?;
                            kn.labels.insert(lk.to_owned(), lv);
                        }
                    }
                    "kubeadmConfigPatches" => {
                        for p in string_list(v, &here)? {
                            apply_patch(&p, init, &mut kn, &here, &mut w, &budget)?;
                        }
                    }
                    other => w.push(format!("{at}.{other}: not used by armorlet (ignored)")),
                }
            }
            out.nodes.push(kn);
        }
        // Gates armorlet has no behaviour for would be refused by the agent's --feature-gates;
        // a real cluster has hundreds, so they are warnings here.
        let mut known = |gates: &mut Vec<(String, bool)>, at: &str| {
            gates.retain(|(g, _)| {
                let ok = KNOWN_GATES.contains(&g.as_str());
                if !ok {
                    w.push(format!(
                        "{at}: feature gate {g} has no effect in armorlet (ignored)"
                    ));
                }
                ok
            })
        };
        known(&mut out.feature_gates, "featureGates");
        for n in &mut out.nodes {
            known(&mut n.feature_gates, &n.name);
        }
        out.warnings = w;
        Ok(out)
    }
}

fn networking(v: &Value, out: &mut KindCluster, w: &mut Vec<String>) -> anyhow::Result<()> {
    for (k, v) in mapping(v, "networking")? {
        let key = key_str(k)?;
        let at = format!("networking.{key}");
        match key {
            "serviceSubnet" => {
                out.service_subnet =
                    Some(scalar_string(v).with_context(|| format!("{at}: expected a CIDR"))?)
            }
            "apiServerAddress" => {
                let s = scalar_string(v).with_context(|| format!("{at}: expected an address"))?;
                out.api_server_address = Some(
                    s.parse()
                        .with_context(|| format!("{at}: {s:?} is not an IP address"))?,
                );
            }
            "apiServerPort" => {
                let port = v
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .with_context(|| format!("{at}: expected a port number"))?;
                // kind: 0 (or unset) picks a random port; armorlet keeps --listen's.
                out.api_server_port = (port != 0).then_some(port);
            }
            "ipFamily" => {
                let f = scalar_string(v).unwrap_or_default();
                if f != "ipv4" {
                    bail!("{at}: {f:?} is not supported (armorlet's pod and Service networks are IPv4)");
                }
            }
            "podSubnet" => {
                let s = scalar_string(v).unwrap_or_default();
                if s != "10.244.0.0/16" {
                    w.push(format!(
                        "{at}: armorlet gives node i the pod CIDR 10.244.<i>.0/24 (kind's default 10.244.0.0/16); {s:?} ignored"
                    ));
                }
            }
            other => w.push(format!(
                "networking.{other}: not used by armorlet (ignored)"
            )),
        }
    }
    Ok(())
}

fn extra_mounts(
    v: &Value,
    at: &str,
    cwd: &Path,
    w: &mut Vec<String>,
) -> anyhow::Result<Vec<ViewMount>> {
    let Value::Sequence(list) = v else {
        bail!("{at}: expected a list of mounts");
    };
    let mut out = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let map = mapping(m, &here)?;
        let host = str_field(map, "hostPath", &here)?
            .with_context(|| format!("{here}.hostPath: required"))?;
        let node = str_field(map, "containerPath", &here)?
            .with_context(|| format!("{here}.containerPath: required"))?;
        let node_path = PathBuf::from(&node);
        if !node_path.is_absolute() || node.split('/').any(|s| s == "..") {
            bail!("{here}.containerPath: {node:?} must be an absolute path without \"..\"");
        }
        let host_path = cwd.join(&host);
        let host_path = host_path.canonicalize().with_context(|| {
            format!(
                "{here}.hostPath: {host:?} ({}) does not exist",
                host_path.display()
            )
        })?;
        let mut read_only = false;
        for (k, v) in map {
            match key_str(k)? {
                "hostPath" | "containerPath" => {}
                "readOnly" => {
                    read_only = v
                        .as_bool()
                        .with_context(|| format!("{here}.readOnly: expected true or false"))?
                }
                "selinuxRelabel" | "propagation" => {}
                other => w.push(format!("{here}.{other}: not used by armorlet (ignored)")),
            }
        }
        out.push(ViewMount {
            node_path,
            host_path,
            read_only,
        });
    }
    Ok(out)
}

/// Applies one `kubeadmConfigPatches` entry (one or more YAML documents) to `node`.
fn apply_patch(
    patch: &str,
    init: bool,
    node: &mut KindNode,
    at: &str,
    w: &mut Vec<String>,
    budget: &Budget,
) -> anyhow::Result<()> {
    for doc in budget.documents(patch) {
        let doc = doc.with_context(|| format!("{at}: a patch is not valid YAML"))?;
        let map = mapping(&doc, at)?;
        let kind = str_field(map, "kind", at)?.unwrap_or_default();
        let here = format!("{at} ({kind})");
        match kind.as_str() {
            "KubeletConfiguration" => {
                for (k, v) in map {
                    match key_str(k)? {
                        "kind" | "apiVersion" => {}
                        "seccompDefault" => {
                            node.seccomp_default = Some(v.as_bool().with_context(|| {
                                format!("{here}.seccompDefault: expected true or false")
                            })?)
                        }
                        "featureGates" => node
                            .feature_gates
                            .extend(gates(v, &format!("{here}.featureGates"))?),
                        other => w.push(format!("{here}.{other}: not used by armorlet (ignored)")),
                    }
                }
            }
            "InitConfiguration" | "JoinConfiguration" => {
                if (kind == "InitConfiguration") != init {
                    continue;
                }
                let Some(args) = map
                    .get("nodeRegistration")
                    .and_then(|r| r.get("kubeletExtraArgs"))
                else {
                    w.push(format!(
                        "{here}: only nodeRegistration.kubeletExtraArgs is used by armorlet"
                    ));
                    continue;
                };
                for (flag, value) in kubelet_args(args, &here)? {
                    kubelet_flag(&flag, &value, node, &here, w)?;
                }
            }
            other => w.push(format!(
                "{at}: a {other} patch is not used by armorlet (ignored)"
            )),
        }
    }
    Ok(())
}

/// `kubeletExtraArgs`: a map (kubeadm v1beta3) or a list of `{name, value}` (v1beta4).
fn kubelet_args(v: &Value, at: &str) -> anyhow::Result<Vec<(String, String)>> {
    match v {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let k = key_str(k)?.to_owned();
                let v =
                    scalar_string(v).with_context(|| format!("{at}: {k}: expected a string"))?;
                Ok((k, v))
            })
            .collect(),
        Value::Sequence(s) => s
            .iter()
            .map(|a| {
                let m = mapping(a, at)?;
                let name = str_field(m, "name", at)?
                    .with_context(|| format!("{at}: kubeletExtraArgs entry without a name"))?;
                let value = m.get("value").and_then(scalar_string).unwrap_or_default();
                Ok((name, value))
            })
            .collect(),
        _ => bail!("{at}: kubeletExtraArgs: expected a map or a list"),
    }
}

/// One kubelet flag from `kubeletExtraArgs`.
fn kubelet_flag(
    flag: &str,
    value: &str,
    node: &mut KindNode,
    at: &str,
    w: &mut Vec<String>,
) -> anyhow::Result<()> {
    match flag {
        "seccomp-default" => {
            node.seccomp_default = Some(value.parse().with_context(|| {
                format!("{at}: --seccomp-default={value:?}: expected true or false")
            })?)
        }
        "feature-gates" => node.feature_gates.extend(gate_list(value, at)?),
        "node-labels" => {
            for kv in value.split(',').filter(|s| !s.is_empty()) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                node.labels.insert(k.to_owned(), v.to_owned());
            }
        }
        other => w.push(format!(
            "{at}: kubelet flag --{other} is not supported by armorlet's node agent (ignored)"
        )),
    }
    Ok(())
}

/// `featureGates` as a map of booleans.
fn gates(v: &Value, at: &str) -> anyhow::Result<Vec<(String, bool)>> {
    mapping(v, at)?
        .iter()
        .map(|(k, v)| {
            let k = key_str(k)?;
            let b = v
                .as_bool()
                .with_context(|| format!("{at}.{k}: expected true or false"))?;
            Ok((k.to_owned(), b))
        })
        .collect()
}

/// `A=true,B=false`.
fn gate_list(s: &str, at: &str) -> anyhow::Result<Vec<(String, bool)>> {
    s.split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("{at}: feature gate {kv:?} is not Name=true|false"))?;
            let b = v
                .parse()
                .with_context(|| format!("{at}: feature gate {k}: {v:?} is not true or false"))?;
            Ok((k.to_owned(), b))
        })
        .collect()
}

/// Gates as the `--feature-gates` value.
pub fn gates_flag(gates: &[(String, bool)]) -> String {
    gates
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn mapping<'a>(v: &'a Value, at: &str) -> anyhow::Result<&'a serde_yaml::Mapping> {
    v.as_mapping()
        .with_context(|| format!("{at}: expected a mapping"))
}

fn key_str(k: &Value) -> anyhow::Result<&str> {
    k.as_str()
        .with_context(|| format!("a key is not a string: {k:?}"))
}

fn str_field(m: &serde_yaml::Mapping, key: &str, at: &str) -> anyhow::Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_string(v).map(Some).with_context(|| {
            let at = if at.is_empty() {
                key.to_owned()
            } else {
                format!("{at}.{key}")
            };
            format!("{at}: expected a string")
        }),
    }
}

/// A scalar as text (YAML numbers and booleans are strings in kubelet flags and labels).
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn string_list(v: &Value, at: &str) -> anyhow::Result<Vec<String>> {
    let Value::Sequence(s) = v else {
        bail!("{at}: expected a list of strings");
    };
    s.iter()
        .map(|p| {
            p.as_str()
                .map(str::to_owned)
                .with_context(|| format!("{at}: expected a list of strings"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seccomp tutorial's kind.yaml, verbatim.
    const TUTORIAL: &str = r#"apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
nodes:
- role: control-plane
  extraMounts:
  - hostPath: "./profiles"
    containerPath: "/var/lib/kubelet/seccomp/profiles"
"#;

    fn cwd() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("profiles")).unwrap();
        d
    }

    #[test]
    fn the_tutorials_config() {
        let d = cwd();
        let c = KindCluster::parse(TUTORIAL, d.path()).unwrap();
        assert_eq!(c.name, "kind");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.nodes.len(), 1);
        let n = &c.nodes[0];
        assert_eq!(n.name, "kind-control-plane");
        assert_eq!(n.role, Role::ControlPlane);
        assert_eq!(
            n.labels.get(CONTROL_PLANE_LABEL).map(String::as_str),
            Some("")
        );
        assert_eq!(
            n.mounts,
            vec![ViewMount {
                node_path: "/var/lib/kubelet/seccomp/profiles".into(),
                host_path: d.path().join("profiles").canonicalize().unwrap(),
                read_only: false,
            }]
        );
    }

    #[test]
    fn names_like_kind_and_applies_patches_by_role() {
        let d = cwd();
        let text = r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: demo
featureGates:
  SeccompDefault: true
kubeadmConfigPatches:
- |
  kind: JoinConfiguration
  nodeRegistration:
    kubeletExtraArgs:
      seccomp-default: "true"
      node-labels: "apparmor=deny-write"
nodes:
- role: control-plane
  image: kindest/node:v1.22.0
- role: worker
  labels:
    tier: one
- role: worker
  kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    seccompDefault: false
    featureGates:
      AppArmor: false
networking:
  serviceSubnet: 10.97.0.0/16
  apiServerAddress: 127.0.0.1
  apiServerPort: 7443
  podSubnet: 10.245.0.0/16
"#;
        let c = KindCluster::parse(text, d.path()).unwrap();
        let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["demo-control-plane", "demo-worker", "demo-worker2"]);
        assert_eq!(c.feature_gates, vec![("SeccompDefault".into(), true)]);
        assert_eq!(gates_flag(&c.feature_gates), "SeccompDefault=true");
        // The JoinConfiguration patch is for the workers only.
        assert_eq!(c.nodes[0].seccomp_default, None);
        assert_eq!(c.nodes[1].seccomp_default, Some(true));
        assert_eq!(c.nodes[1].labels.get("apparmor").unwrap(), "deny-write");
        assert_eq!(c.nodes[1].labels.get("tier").unwrap(), "one");
        assert!(!c.nodes[1].labels.contains_key(CONTROL_PLANE_LABEL));
        // The node's own patch comes after the cluster's.
        assert_eq!(c.nodes[2].seccomp_default, Some(false));
        assert_eq!(c.nodes[2].feature_gates, vec![("AppArmor".into(), false)]);
        assert_eq!(c.service_subnet.as_deref(), Some("10.97.0.0/16"));
        assert_eq!(c.api_server_address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(c.api_server_port, Some(7443));
        let w = c.warnings.join("\n");
        assert!(w.contains("nodes[0].image: not used"), "{w}");
        assert!(w.contains("networking.podSubnet"), "{w}");
    }

    #[test]
    fn no_nodes_means_one_control_plane() {
        let d = cwd();
        let c = KindCluster::parse(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n",
            d.path(),
        )
        .unwrap();
        assert_eq!(c.nodes.len(), 1);
        assert_eq!(c.nodes[0].name, "kind-control-plane");
    }

    #[test]
    fn errors_name_the_field() {
        let d = cwd();
        let head = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";
        let err = |body: &str| {
            format!(
                "{:#}",
                KindCluster::parse(&format!("{head}{body}"), d.path()).unwrap_err()
            )
        };
        assert!(err("nodes:\n- role: master\n").contains("nodes[0].role: unknown role \"master\""));
        assert!(
            err("nodes:\n- extraMounts:\n  - hostPath: ./nope\n    containerPath: /x\n")
                .contains("nodes[0].extraMounts[0].hostPath: \"./nope\"")
        );
        assert!(err("nodes:\n- extraMounts:\n  - hostPath: ./profiles\n")
            .contains("containerPath: required"));
        assert!(
            err("nodes:\n- extraMounts:\n  - hostPath: ./profiles\n    containerPath: rel\n")
                .contains("must be an absolute path")
        );
        assert!(err("featureGates:\n  SeccompDefault: yes-please\n")
            .contains("featureGates.SeccompDefault: expected true or false"));
        assert!(err("networking:\n  ipFamily: ipv6\n").contains("not supported"));
        assert!(err("nodes: [").contains("not valid YAML"));
        let wrong = KindCluster::parse("kind: Pod\napiVersion: v1\n", d.path()).unwrap_err();
        assert!(
            wrong.to_string().contains("expected \"Cluster\""),
            "{wrong}"
        );
        let wrong = KindCluster::parse(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n",
            d.path(),
        )
        .unwrap_err();
        assert!(
            wrong.to_string().contains("kind.x-k8s.io/v1alpha4"),
            "{wrong}"
        );
    }
}
