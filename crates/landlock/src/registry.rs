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
        let path = self.profiles_path();
        let tmp = self.dir.join(".profiles.tmp");
        std::fs::write(&tmp, host::render_profiles(p)).map_err(|e| LandlockError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LandlockError::io(&path, e))
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
            std::fs::write(&path, json).map_err(|e| LandlockError::io(&path, e))?;
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
