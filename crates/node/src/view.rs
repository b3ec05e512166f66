//! The node's view of the filesystem: which host directories appear at which paths "on the
//! node". A kind node is a container whose `extraMounts` bind host directories into it, so its
//! kubelet reads `/var/lib/kubelet/seccomp/profiles/audit.json` from wherever the mount came
//! from. armorlet's nodes are not containers; they translate the paths the kubelet would use
//! (Localhost seccomp profiles, hostPath volumes, the root directory's disk) through this view,
//! and `armorlet node exec` shows the same view by bind-mounting it in a private mount
//! namespace. The view is saved as `D/nodes/<name>/view.json` for `node exec`.
//!
//! Invariant: outside its mounts a node sees the host (the empty view is the identity). A node
//! started without a kind config has one mount: its AppArmor drop-in directory
//! ([`crate::NODE_PROFILES_DIR`]).

use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// File name of the saved view in the node's directory.
pub const VIEW_FILE: &str = "view.json";

/// One bind mount of the view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewMount {
    /// Absolute path as the node sees it (kind's `containerPath`).
    pub node_path: PathBuf,
    /// Absolute host path that appears there (kind's `hostPath`, made absolute).
    pub host_path: PathBuf,
    /// Read-only on the node.
    #[serde(default)]
    pub read_only: bool,
}

/// The mounts of a node's view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The mounts, in the order they are applied (a later mount may lie inside an earlier one).
    pub mounts: Vec<ViewMount>,
}

impl NodeView {
    /// The host path behind `node_path`: the deepest mount containing it decides (as the
    /// kernel's mount table does for nested bind mounts); outside every mount the path is the
    /// host's own.
    pub fn host_path(&self, node_path: &Path) -> PathBuf {
        match self.mount_of(node_path) {
            Some(m) => match node_path.strip_prefix(&m.node_path) {
                Ok(rest) if !rest.as_os_str().is_empty() => m.host_path.join(rest),
                _ => m.host_path.clone(),
            },
            None => node_path.to_path_buf(),
        }
    }

    /// The deepest mount containing `node_path` (the last of equals, as a later mount over the
    /// same path hides an earlier one).
    fn mount_of(&self, node_path: &Path) -> Option<&ViewMount> {
        self.mounts
            .iter()
            .filter(|m| node_path.starts_with(&m.node_path))
            .max_by_key(|m| m.node_path.components().count())
    }

    /// Whether `node_path` lies on a read-only mount of the view.
    pub fn read_only(&self, node_path: &Path) -> bool {
        self.mount_of(node_path).is_some_and(|m| m.read_only)
    }

    /// Writes the view into the node's directory (atomically: temporary file, rename).
    pub fn save(&self, node_dir: &Path) -> std::io::Result<()> {
        let tmp = node_dir.join(format!("{VIEW_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, node_dir.join(VIEW_FILE))
    }

    /// The view saved in `node_dir` (the identity when there is none).
    pub fn load(node_dir: &Path) -> std::io::Result<Self> {
        match std::fs::read(node_dir.join(VIEW_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", node_dir.join(VIEW_FILE).display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Checks the mounts: both paths absolute and without `..` (a view must not be able to
    /// climb out of what it names).
    pub fn validate(&self) -> Result<(), String> {
        for m in &self.mounts {
            for (what, p) in [("node path", &m.node_path), ("host path", &m.host_path)] {
                if !p.is_absolute() {
                    return Err(format!("{what} {} is not absolute", p.display()));
                }
                if p.components().any(|c| c == Component::ParentDir) {
                    return Err(format!("{what} {} contains \"..\"", p.display()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> NodeView {
        NodeView {
            mounts: vec![
                ViewMount {
                    node_path: "/var/lib/kubelet".into(),
                    host_path: "/d/nodes/kind-control-plane/kubelet".into(),
                    read_only: false,
                },
                ViewMount {
                    node_path: "/var/lib/kubelet/seccomp/profiles".into(),
                    host_path: "/home/me/profiles".into(),
                    read_only: true,
                },
            ],
        }
    }

    #[test]
    fn deepest_mount_decides() {
        let v = view();
        assert_eq!(
            v.host_path(Path::new("/var/lib/kubelet/seccomp/profiles/audit.json")),
            PathBuf::from("/home/me/profiles/audit.json")
        );
        assert_eq!(
            v.host_path(Path::new("/var/lib/kubelet/seccomp/profiles")),
            PathBuf::from("/home/me/profiles")
        );
        assert_eq!(
            v.host_path(Path::new("/var/lib/kubelet/seccomp/other.json")),
            PathBuf::from("/d/nodes/kind-control-plane/kubelet/seccomp/other.json")
        );
        // Component-wise prefixes only: /var/lib/kubeletx is not under /var/lib/kubelet.
        assert_eq!(
            v.host_path(Path::new("/var/lib/kubeletx/a")),
            PathBuf::from("/var/lib/kubeletx/a")
        );
        assert_eq!(
            NodeView::default().host_path(Path::new("/etc/x")),
            PathBuf::from("/etc/x")
        );
        assert!(v.read_only(Path::new("/var/lib/kubelet/seccomp/profiles/a")));
        assert!(!v.read_only(Path::new("/var/lib/kubelet/pods")));
    }

    #[test]
    fn saves_and_loads() {
        let dir = std::env::temp_dir().join(format!("armorlet-view-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(NodeView::load(&dir).unwrap(), NodeView::default());
        view().save(&dir).unwrap();
        assert_eq!(NodeView::load(&dir).unwrap(), view());
        std::fs::write(dir.join(VIEW_FILE), "{").unwrap();
        let err = NodeView::load(&dir).unwrap_err();
        assert!(err.to_string().contains("view.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validates_paths() {
        assert!(view().validate().is_ok());
        let mut v = view();
        v.mounts[1].host_path = "profiles".into();
        assert!(v.validate().unwrap_err().contains("not absolute"));
        v.mounts[1].host_path = "/a/../b".into();
        assert!(v.validate().unwrap_err().contains(".."));
    }
}
