//! `--apparmor-profiles-dir`: a directory of AppArmor profile files the node keeps loaded, as
//! the AppArmor service keeps /etc/apparmor.d loaded, and as the upstream DaemonSet
//! "apparmor-loader" does it for a node: files that appear or change are (re)loaded, and
//! the profiles of a removed file are unloaded. The tutorial's "through a DaemonSet that
//! runs a Pod on each node" is a pod that writes its profiles (from a ConfigMap) into this
//! directory through a hostPath volume.
//!
//! A file that does not load is logged and retried only when it changes; pods asking for its
//! profiles stay blocked or fail as for any profile that is not loaded (fail closed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use armorlet_landlock::AppArmorNode;

/// What was last seen of one file.
#[derive(Debug)]
struct Seen {
    /// Modification time and size when it was last loaded (or failed to).
    stamp: (SystemTime, u64),
    /// The profiles it defined (empty when it failed).
    profiles: Vec<String>,
    /// Why it did not load.
    error: Option<String>,
}

/// The watched directory.
#[derive(Debug)]
pub struct ProfilesDir {
    dir: PathBuf,
    files: BTreeMap<PathBuf, Seen>,
}

impl ProfilesDir {
    /// Watches `dir` (it may not exist yet).
    pub fn new(dir: &Path) -> Self {
        ProfilesDir {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
        }
    }

    /// Loads new and changed files and unloads the profiles of removed ones.
    pub fn sync(&mut self, node: &AppArmorNode) {
        let present = match armorlet_landlock::profile_files(&self.dir) {
            Ok(f) => f,
            // A directory that does not exist (yet) holds no profiles.
            Err(_) if !self.dir.exists() => Vec::new(),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the AppArmor profiles directory");
                return;
            }
        };
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|f| !present.contains(f))
            .cloned()
            .collect();
        for f in gone {
            if let Some(seen) = self.files.remove(&f) {
                unload(node, &f, &seen.profiles);
            }
        }
        for f in present {
            let Some(stamp) = stamp(&f) else { continue };
            if self.files.get(&f).is_some_and(|s| s.stamp == stamp) {
                continue;
            }
            let before = self
                .files
                .remove(&f)
                .map(|s| s.profiles)
                .unwrap_or_default();
            let (profiles, error) = match node.load_file(&f) {
                Ok(names) => {
                    tracing::info!(file = %f.display(), profiles = ?names, "AppArmor profiles loaded");
                    (names, None)
                }
                Err(e) => {
                    tracing::error!(file = %f.display(), error = %e, "AppArmor profile not loaded");
                    (Vec::new(), Some(e.to_string()))
                }
            };
            let dropped: Vec<String> = before
                .into_iter()
                .filter(|p| !profiles.contains(p))
                .collect();
            unload(node, &f, &dropped);
            self.files.insert(
                f,
                Seen {
                    stamp,
                    profiles,
                    error,
                },
            );
        }
    }

    /// What the last sync made of `file`: the profiles it loaded, or why it did not load
    /// (`None` when the file was not seen).
    pub fn outcome(&self, file: &Path) -> Option<Result<&[String], &str>> {
        self.files.get(file).map(|s| match &s.error {
            Some(e) => Err(e.as_str()),
            None => Ok(s.profiles.as_slice()),
        })
    }
}

fn stamp(f: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(f).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn unload(node: &AppArmorNode, file: &Path, profiles: &[String]) {
    for p in profiles {
        match node.unload(p) {
            Ok(_) => {
                tracing::info!(file = %file.display(), profile = %p, "AppArmor profile unloaded")
            }
            Err(e) => {
                tracing::error!(file = %file.display(), profile = %p, error = %e, "cannot unload AppArmor profile")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use armorlet_landlock::{AppArmorConfig, BackendChoice};

    fn node(root: &Path) -> AppArmorNode {
        let helper = root.join("helper");
        std::fs::write(&helper, "").unwrap();
        let mut c = AppArmorConfig::new(root.join("registry"), helper);
        c.mode = BackendChoice::Landlock;
        c.apparmor_fs = root.join("no-securityfs");
        c.module_params = root.join("no-params");
        AppArmorNode::new(c).unwrap()
    }

    fn loaded(n: &AppArmorNode) -> Vec<String> {
        n.loaded_profiles().into_keys().collect()
    }

    #[test]
    fn follows_the_directory() {
        let tmp = std::env::temp_dir().join(format!("armorlet-pd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let n = node(&tmp);
        let dir = tmp.join("apparmor.d");
        let mut pd = ProfilesDir::new(&dir);
        pd.sync(&n); // no directory yet: nothing, no error
        assert!(loaded(&n).is_empty());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a"),
            "profile one {\n  /data/** r,\n}\nprofile two {\n  /data/** r,\n}\n",
        )
        .unwrap();
        std::fs::write(dir.join("b"), "profile broken {\n  /data/** rr q,\n").unwrap();
        pd.sync(&n);
        assert_eq!(loaded(&n), ["one", "two"]);
        // A changed file: a profile it no longer defines is unloaded.
        std::fs::write(dir.join("a"), "profile one {\n  /data/** rw,\n}\n").unwrap();
        pd.sync(&n);
        assert_eq!(loaded(&n), ["one"]);
        // A removed file: its profiles are unloaded.
        std::fs::remove_file(dir.join("a")).unwrap();
        pd.sync(&n);
        assert!(loaded(&n).is_empty());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
