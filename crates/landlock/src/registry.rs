//! The Landlock backend's profile registry, `D/nodes/N/apparmor/`:
//! - `profiles`: the loaded profiles in the securityfs format
//!   (`name (enforce)` per line), what admission reads;
//! - `policy/<hex(name)>.json`: per profile, the source text and the
//!   directory of the file it came from (for relative includes); the plan
//!   is recomputed from it at container start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use armorlet_apparmor::{ParseOptions, Policy, Severity};
use serde::{Deserialize, Serialize};

use crate::host;
use crate::translate::{translate, Translation};
use crate::LandlockError;

/// Where `#include <...>` resolves (Debian's apparmor package).
pub const SYSTEM_INCLUDE_DIR: &str = "/etc/apparmor.d";

/// A profile put into the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedProfile {
    /// The profile name.
    pub name: String,
    /// Tightenings (empty: enforced exactly).
    pub approximations: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    name: String,
    source_dir: PathBuf,
    text: String,
    /// Loaded with `--approximate`: tightening is accepted for this profile.
    #[serde(default)]
    approximate: bool,
}

/// The registry directory.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

/// Parses policy text, failing on error diagnostics.
pub fn parse_policy(text: &str, file: &Path, source_dir: &Path) -> Result<Policy, LandlockError> {
    let opts = ParseOptions {
        include_dirs: vec![source_dir.to_path_buf(), PathBuf::from(SYSTEM_INCLUDE_DIR)],
    };
    let (policy, diags) = armorlet_apparmor::parse_str(text, &file.display().to_string(), &opts);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            format!(
                "{}:{}:{}: {}",
                d.span.file, d.span.line, d.span.column, d.message
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(LandlockError::Parse {
            path: file.to_path_buf(),
            message: errors.join("\n"),
        });
    }
    Ok(policy)
}

/// Replaces `path` with `data` through a uniquely named temporary file in its directory and
/// a rename, so a reader (admission, a container start) sees the old or the new file whole,
/// even when the writer dies half-way. Mode 0644, as `std::fs::write` creates them.
fn replace(path: &Path, data: &[u8]) -> Result<(), LandlockError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| LandlockError::io(dir, e))?;
    tmp.write_all(data)
        .map_err(|e| LandlockError::io(tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| LandlockError::io(path, e.error))?;
    Ok(())
}

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Registry {
    /// Opens (creating) the registry at `dir`.
    pub fn open(dir: &Path) -> Result<Registry, LandlockError> {
        std::fs::create_dir_all(dir.join("policy")).map_err(|e| LandlockError::io(dir, e))?;
        Ok(Registry {
            dir: dir.to_path_buf(),
        })
    }

    /// The registry directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `profiles` file.
    pub fn profiles_path(&self) -> PathBuf {
        self.dir.join("profiles")
    }

    /// Loaded profiles: name → mode.
    pub fn profiles(&self) -> Result<BTreeMap<String, String>, LandlockError> {
        host::read_profiles(&self.profiles_path())
    }

    fn write_profiles(&self, p: &BTreeMap<String, String>) -> Result<(), LandlockError> {
        replace(&self.profiles_path(), host::render_profiles(p).as_bytes())
    }

    /// Takes the registry's writer lock, held until the returned file is dropped.
    ///
    /// A load or an unload reads `profiles`, changes it and replaces it. Two at once (the
    /// node agent's profile operator and `armorlet apparmor load`, or two of those) would
    /// otherwise each write their own view and one change would be lost: a profile left on
    /// disk that admission does not see, or an unloaded one still listed. An advisory
    /// `flock`, so it works between processes and is released when a holder dies.
    fn lock(&self) -> Result<std::fs::File, LandlockError> {
        let path = self.dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LandlockError::io(&path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| LandlockError::io(&path, e.into()))?;
        Ok(file)
    }

    /// Parses `file`, checks every top-level profile is enforceable (exactly,
    /// or tightened with `approximate`) and registers them (replacing).
    pub fn load_file(
        &self,
        file: &Path,
        approximate: bool,
    ) -> Result<Vec<LoadedProfile>, LandlockError> {
        let text = std::fs::read_to_string(file).map_err(|e| LandlockError::io(file, e))?;
        let source_dir = file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .canonicalize()
            .map_err(|e| LandlockError::io(file, e))?;
        self.load_text(&text, file, &source_dir, approximate)
    }

    /// [`Registry::load_file`] for policy text read elsewhere (standard input, as
    /// `apparmor_parser` reads it): `file` names it in messages, relative `#include`s resolve
    /// in `source_dir`.
    pub fn load_text(
        &self,
        text: &str,
        file: &Path,
        source_dir: &Path,
        approximate: bool,
    ) -> Result<Vec<LoadedProfile>, LandlockError> {
        let text = text.to_owned();
        let source_dir = source_dir.to_path_buf();
        let policy = parse_policy(&text, file, &source_dir)?;
        if policy.profiles.is_empty() {
            return Err(LandlockError::Parse {
                path: file.to_path_buf(),
                message: "the file defines no profile".into(),
            });
        }
        let mut loaded = Vec::new();
        for profile in &policy.profiles {
            let t = translate(profile, approximate)?;
            loaded.push(LoadedProfile {
                name: profile.name.clone(),
                approximations: t.approximations,
            });
        }
        let _lock = self.lock()?;
        let mut index = self.profiles()?;
        for (profile, l) in policy.profiles.iter().zip(&loaded) {
            let stored = Stored {
                name: l.name.clone(),
                source_dir: source_dir.clone(),
                text: text.clone(),
                approximate,
            };
            let path = self.entry_path(&l.name);
            let json =
                serde_json::to_vec(&stored).map_err(|e| LandlockError::Plan(e.to_string()))?;
            replace(&path, &json)?;
            let mode = match profile.mode() {
                armorlet_apparmor::ast::ProfileMode::Complain => "complain",
                armorlet_apparmor::ast::ProfileMode::Kill => "kill",
                armorlet_apparmor::ast::ProfileMode::Unconfined => "unconfined",
                _ => "enforce",
            };
            index.insert(l.name.clone(), mode.into());
        }
        self.write_profiles(&index)?;
        Ok(loaded)
    }

    fn entry_path(&self, name: &str) -> PathBuf {
        self.dir.join("policy").join(format!("{}.json", hex(name)))
    }

    /// Removes a profile; `false` when it was not loaded.
    pub fn unload(&self, name: &str) -> Result<bool, LandlockError> {
        let _lock = self.lock()?;
        let mut index = self.profiles()?;
        if index.remove(name).is_none() {
            return Ok(false);
        }
        let path = self.entry_path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LandlockError::io(&path, e)),
        }
        self.write_profiles(&index)?;
        Ok(true)
    }

    /// The translation of a loaded profile (tightened when it was loaded
    /// with `approximate` or `approximate` is set now).
    pub fn translation(&self, name: &str, approximate: bool) -> Result<Translation, LandlockError> {
        if !self.profiles()?.contains_key(name) {
            return Err(LandlockError::NotLoaded(name.into()));
        }
        let path = self.entry_path(name);
        let bytes = std::fs::read(&path).map_err(|e| LandlockError::io(&path, e))?;
        let stored: Stored = serde_json::from_slice(&bytes)
            .map_err(|e| LandlockError::Plan(format!("{}: {e}", path.display())))?;
        let policy = parse_policy(&stored.text, &path, &stored.source_dir)?;
        let profile = policy
            .profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| LandlockError::NotLoaded(name.into()))?;
        translate(profile, approximate || stored.approximate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads and unloads from many threads at once, each through its own `Registry` (as
    /// separate processes would open it): no change is lost and every file stays whole.
    #[test]
    fn concurrent_loads_and_unloads_lose_no_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("apparmor");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let root = root.clone();
                let source_dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let registry = Registry::open(&root).expect("open");
                    for i in 0..12 {
                        let text = format!("profile p{t}-{i} {{\n  /tmp/** r,\n}}\n");
                        let file = source_dir.join(format!("p{t}-{i}"));
                        registry
                            .load_text(&text, &file, &source_dir, false)
                            .expect("load");
                        // Every third profile is unloaded again.
                        if i % 3 == 0 {
                            assert!(registry.unload(&format!("p{t}-{i}")).expect("unload"));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let registry = Registry::open(&root).expect("open");
        let profiles = registry.profiles().expect("profiles");
        let expected: BTreeMap<String, String> = (0..8)
            .flat_map(|t| (0..12).filter(|i| i % 3 != 0).map(move |i| (t, i)))
            .map(|(t, i)| (format!("p{t}-{i}"), "enforce".to_string()))
            .collect();
        assert_eq!(profiles, expected);
        for name in expected.keys() {
            registry.translation(name, false).expect("translation");
        }
        // The unloaded ones are gone from the policy directory too; no temporary file is left.
        let left: Vec<String> = std::fs::read_dir(root.join("policy"))
            .expect("policy dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), expected.len(), "{left:?}");
        let hidden: Vec<String> = std::fs::read_dir(&root)
            .expect("registry dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp"))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }
}
