//! Authentication: who a request comes from.
//!
//! Two kinds of bearer token, like kube-apiserver's static token file
//! (staging/src/k8s.io/apiserver/plugin/pkg/authenticator/token/tokenfile):
//! - the admin token (`D/admin-token`): user `admin` in `system:masters`, which may do
//!   everything (kube-apiserver's privileged group authorizer) and is never throttled;
//! - one token per node (`D/pki/node-tokens/<node>`, see
//!   [`credentials::issue_node_kubeconfig`](crate::credentials::issue_node_kubeconfig)): user
//!   `system:node:<name>` in `system:nodes`, limited by [`crate::authz`] as the Node
//!   authorizer and the NodeRestriction admission plugin limit kubelets.
//!
//! Every comparison is in constant time. The node token directory is read again whenever it
//! changed, so a node credential issued (or revoked) while the server runs counts at once.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::credentials::{constant_time_eq, read_node_tokens};

/// `system:masters`: may do everything.
pub const MASTERS_GROUP: &str = "system:masters";
/// The group of every node identity.
pub const NODES_GROUP: &str = "system:nodes";
/// Node user names are `system:node:<node name>`.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// Every authenticated user's group.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The admin token's user (the kubeconfig calls its user `admin` too).
pub const ADMIN_USER: &str = "admin";

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `admin`, `system:node:<name>`, `system:anonymous`.
    pub name: String,
    /// Its groups.
    pub groups: Vec<String>,
}

impl User {
    /// The admin token's identity.
    pub fn admin() -> User {
        User {
            name: ADMIN_USER.into(),
            groups: vec![MASTERS_GROUP.into(), AUTHENTICATED_GROUP.into()],
        }
    }

    /// The identity of node `node`.
    pub fn node(node: &str) -> User {
        User {
            name: format!("{NODE_USER_PREFIX}{node}"),
            groups: vec![NODES_GROUP.into(), AUTHENTICATED_GROUP.into()],
        }
    }

    /// A request without credentials (only public paths are served to it).
    pub fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    /// Whether the user is in `system:masters`.
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS_GROUP)
    }

    /// `Some(node name)` for a node identity (`Some("")` for a `system:nodes` member whose
    /// name does not say which node), as pkg/auth/nodeidentifier/default.go `NodeIdentity`.
    pub fn node_name(&self) -> Option<&str> {
        if !self.groups.iter().any(|g| g == NODES_GROUP) {
            return None;
        }
        Some(self.name.strip_prefix(NODE_USER_PREFIX).unwrap_or(""))
    }
}

/// The identity of a stat'ed directory, to notice an added or removed entry.
type Stamp = Option<(u64, std::time::SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?, m.ino()))
}

/// The node tokens as last read: the directory's stamp then (`None`: read it again) and
/// `(token, node)` pairs.
type NodeTokens = (Option<Stamp>, Vec<(String, String)>);

/// The admin token and the node tokens.
#[derive(Debug)]
pub struct Authenticator {
    admin_token: String,
    node_tokens_dir: PathBuf,
    /// The node tokens as last read.
    nodes: Mutex<NodeTokens>,
}

impl Authenticator {
    /// The admin token and the node token directory of a data directory.
    pub fn new(admin_token: String, node_tokens_dir: PathBuf) -> Authenticator {
        let a = Authenticator {
            admin_token,
            node_tokens_dir,
            nodes: Mutex::new((None, Vec::new())),
        };
        a.reload_if_changed();
        a
    }

    /// Re-reads the node tokens when their directory changed; whether it did.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.node_tokens_dir);
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if nodes.0 == Some(now) {
            return false;
        }
        // Timestamps are coarse (a few ms): an entry added in the same tick as this read
        // would leave the stamp unchanged, so a fresh stamp is not trusted for two seconds.
        let fresh = now.is_some_and(|(_, mtime, _)| {
            std::time::SystemTime::now()
                .duration_since(mtime)
                .map_or(true, |age| age < std::time::Duration::from_secs(2))
        });
        match read_node_tokens(&self.node_tokens_dir) {
            Ok(list) => *nodes = ((!fresh).then_some(now), list),
            Err(e) => tracing::warn!(error = %e, "cannot read the node tokens"),
        }
        true
    }

    fn match_node(&self, token: &str) -> Option<String> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        // Every entry is compared, so the time does not tell which one matched.
        let mut found = None;
        for (t, node) in &nodes.1 {
            if constant_time_eq(token.as_bytes(), t.as_bytes()) && found.is_none() {
                found = Some(node.clone());
            }
        }
        found
    }

    /// The user a bearer token belongs to, if any.
    pub fn authenticate(&self, token: &str) -> Option<User> {
        if token.is_empty() {
            return None;
        }
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Some(User::admin());
        }
        // One stat per request: a credential issued or revoked (its file removed) while the
        // server runs counts at once.
        self.reload_if_changed();
        if let Some(node) = self.match_node(token) {
            return Some(User::node(&node));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_users() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("node-tokens");
        let a = Authenticator::new("admintoken".into(), tokens.clone());
        assert_eq!(a.authenticate("admintoken"), Some(User::admin()));
        assert_eq!(a.authenticate("n1token"), None);
        assert_eq!(a.authenticate(""), None);
        // A credential issued while the server runs is picked up.
        std::fs::create_dir(&tokens).unwrap();
        std::fs::write(tokens.join("n1"), "n1token\n").unwrap();
        let u = a.authenticate("n1token").unwrap();
        assert_eq!(u, User::node("n1"));
        assert_eq!(u.node_name(), Some("n1"));
        assert!(!u.is_master());
        assert!(User::admin().is_master());
        assert_eq!(User::admin().node_name(), None);
    }
}
