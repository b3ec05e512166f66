//! AppArmor on the node: host detection as the kubelet does it, the node's
//! profile registry, the kernel backend (`apparmor_parser`) and the Landlock
//! backend (AppArmor profile → confine plan for the static helper).
//!
//! - [`host`]: the kubelet's "is AppArmor enabled" check and the securityfs
//!   `profiles` format.
//! - [`registry`]: the Landlock backend's registry `D/nodes/N/apparmor/`.
//! - [`translate`]: profile → [`plan::Plan`] (sound; refusals/tightenings).
//! - [`plan`]: the plan file and the code applying it (used by the helper).
//! - [`kernel`]: `apparmor_parser` and the generated runtime default profile.
//!
//! With the Landlock backend the node reports AppArmor as enabled and the
//! registry as the loaded profiles, although the kernel has no AppArmor LSM:
//! pods then run confined by Landlock. That deliberately differs from a real
//! kubelet on such a kernel (which rejects them); it is the point of armorlet.

pub mod caps;
mod error;
pub mod host;
pub mod kernel;
pub mod plan;
pub mod registry;
pub mod translate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use armorlet_confinement::{AppArmorHost, EmulatedVersion, ResolvedAppArmor, Switch};
use armorlet_seccomp::SockFilter;

pub use error::LandlockError;
pub use plan::Plan;
pub use registry::{LoadedProfile, Registry};
pub use translate::{translate, Translation};

/// One file of a profiles directory and what loading it gave: its profile
/// names, or why it was not loaded.
pub type FileLoad = (PathBuf, Result<Vec<String>, LandlockError>);

/// Which backend enforces AppArmor profiles on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The AppArmor LSM, through `apparmor_parser` and `process.apparmorProfile`.
    Kernel,
    /// Landlock through the confine helper.
    Landlock,
    /// None: AppArmor is not enabled on this node.
    None,
}

/// `--apparmor=auto|kernel|landlock|off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// Kernel when the LSM is enabled, else Landlock when available, else none.
    #[default]
    Auto,
    /// The LSM (error if absent).
    Kernel,
    /// Landlock (error if absent).
    Landlock,
    /// No AppArmor support (pods asking for a profile are not admitted).
    Off,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "kernel" => Ok(BackendChoice::Kernel),
            "landlock" => Ok(BackendChoice::Landlock),
            "off" => Ok(BackendChoice::Off),
            other => Err(format!(
                "invalid --apparmor value {other:?}: expected auto, kernel, landlock or off"
            )),
        }
    }
}

/// Node AppArmor configuration.
#[derive(Debug, Clone)]
pub struct AppArmorConfig {
    /// Backend choice.
    pub mode: BackendChoice,
    /// `--apparmor-fs` (default `/sys/kernel/security/apparmor`).
    pub apparmor_fs: PathBuf,
    /// Module parameters (default `/sys/module/apparmor/parameters`).
    pub module_params: PathBuf,
    /// `D/nodes/N/apparmor`.
    pub registry_dir: PathBuf,
    /// Tighten profiles Landlock cannot enforce exactly instead of refusing them.
    pub approximate: bool,
    /// The static confine helper on the host.
    pub helper: PathBuf,
    /// The kubelet's `AppArmor` feature gate.
    pub feature_gate: bool,
    /// The emulated Kubernetes version (node Ready message).
    pub version: EmulatedVersion,
    /// Whether the OCI runtime applies `process.apparmorProfile` (its `features` answer;
    /// `None`: it does not say). The kernel backend needs it: a runtime built without
    /// AppArmor could start the container unconfined, so with `Some(false)` `kernel` is
    /// refused and `auto` does not pick it (fail closed).
    pub runtime_apparmor: Option<bool>,
}

impl AppArmorConfig {
    /// Defaults for a registry dir and helper.
    pub fn new(registry_dir: PathBuf, helper: PathBuf) -> Self {
        AppArmorConfig {
            mode: BackendChoice::Auto,
            apparmor_fs: host::DEFAULT_APPARMOR_FS.into(),
            module_params: host::DEFAULT_MODULE_PARAMS.into(),
            registry_dir,
            approximate: false,
            helper,
            feature_gate: true,
            version: EmulatedVersion::DEFAULT,
            runtime_apparmor: None,
        }
    }
}

/// What the runtime needs to start a container under the Landlock backend:
/// the helper is bind-mounted read-only at `/.armorlet/confine`, the plan at
/// `/.armorlet/plan`, and the process is
/// `["/.armorlet/confine", "/.armorlet/plan", "--", args...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockPlanFiles {
    /// The static helper on the host.
    pub helper: PathBuf,
    /// The plan file on the host.
    pub plan: PathBuf,
    /// Tightenings made (the agent emits a Warning event when non-empty).
    pub approximations: Vec<String>,
    /// The plan reports denials to the audit subsystem (which must be on).
    pub log_denials: bool,
}

/// How to confine one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArmorLaunch {
    /// No AppArmor confinement.
    None,
    /// OCI `process.apparmorProfile`.
    Kernel {
        /// Profile name.
        profile: String,
    },
    /// Start through the confine helper.
    Landlock(LandlockPlanFiles),
}

/// Path of the helper inside the container.
pub const HELPER_IN_CONTAINER: &str = "/.armorlet/confine";
/// Path of the plan inside the container.
pub const PLAN_IN_CONTAINER: &str = "/.armorlet/plan";
/// File name of the plan in the container dir.
pub const PLAN_FILE: &str = "confine-plan.json";

/// The node's AppArmor support.
#[derive(Debug)]
pub struct AppArmorNode {
    cfg: AppArmorConfig,
    backend: BackendKind,
    registry: Registry,
}

impl AppArmorNode {
    /// Detects the host and opens the registry.
    pub fn new(cfg: AppArmorConfig) -> Result<AppArmorNode, LandlockError> {
        let lsm = host::lsm_enabled(&cfg.apparmor_fs, &cfg.module_params);
        let landlock = host::landlock_abi() >= 6;
        let runtime_ok = cfg.runtime_apparmor != Some(false);
        let backend = match cfg.mode {
            BackendChoice::Off => BackendKind::None,
            BackendChoice::Kernel if lsm && runtime_ok => BackendKind::Kernel,
            BackendChoice::Kernel if lsm => {
                return Err(LandlockError::Backend {
                    backend: "kernel",
                    reason: "the OCI runtime does not support AppArmor (its `features` report \
                             linux.apparmor.enabled: false)"
                        .into(),
                })
            }
            BackendChoice::Kernel => {
                return Err(LandlockError::Backend {
                    backend: "kernel",
                    reason: format!(
                        "AppArmor is not enabled on the host ({} / {}/enabled)",
                        cfg.apparmor_fs.display(),
                        cfg.module_params.display()
                    ),
                })
            }
            BackendChoice::Landlock if landlock => BackendKind::Landlock,
            BackendChoice::Landlock => {
                return Err(LandlockError::Backend {
                    backend: "landlock",
                    reason: format!(
                        "the kernel's Landlock ABI is {} (6 or newer needed)",
                        host::landlock_abi()
                    ),
                })
            }
            BackendChoice::Auto if lsm && runtime_ok => BackendKind::Kernel,
            // Without the helper Landlock cannot confine anything: `auto` then
            // means "no AppArmor" (pods asking for a profile are refused), while
            // an explicit `--apparmor=landlock` fails in `start`.
            BackendChoice::Auto if landlock && cfg.helper.is_file() => BackendKind::Landlock,
            BackendChoice::Auto => BackendKind::None,
        };
        let registry = Registry::open(&cfg.registry_dir)?;
        Ok(AppArmorNode {
            cfg,
            backend,
            registry,
        })
    }

    /// Prepares the backend when the node starts: the kernel backend loads
    /// the generated runtime default profile (`apparmor_parser -r`), the
    /// Landlock backend checks the helper exists.
    pub fn start(&self) -> Result<(), LandlockError> {
        match self.backend {
            BackendKind::Kernel => kernel::load_runtime_default(),
            BackendKind::Landlock if !self.cfg.helper.is_file() => Err(LandlockError::Backend {
                backend: "landlock",
                reason: format!("confine helper {} not found", self.cfg.helper.display()),
            }),
            _ => Ok(()),
        }
    }

    /// Loads every profile file of `dir` (sorted; hidden files skipped), like
    /// the AppArmor service loading /etc/apparmor.d at boot: `apparmor_parser -r`
    /// with the kernel backend, the registry with Landlock. Returns one result
    /// per file; a file that fails does not stop the others.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<FileLoad>, LandlockError> {
        Ok(profile_files(dir)?
            .into_iter()
            .map(|f| {
                let r = self.load_file(&f);
                (f, r)
            })
            .collect())
    }

    /// Loads one profile file into the backend; returns the profile names.
    pub fn load_file(&self, file: &Path) -> Result<Vec<String>, LandlockError> {
        match self.backend {
            BackendKind::None => Err(LandlockError::Backend {
                backend: "none",
                reason: "AppArmor is not enabled on the host".into(),
            }),
            BackendKind::Kernel => {
                kernel::load(file)?;
                let text = std::fs::read_to_string(file).map_err(|e| LandlockError::io(file, e))?;
                let dir = file.parent().unwrap_or(Path::new("."));
                Ok(registry::parse_policy(&text, file, dir)?
                    .profiles
                    .into_iter()
                    .map(|p| p.name)
                    .collect())
            }
            BackendKind::Landlock => Ok(self
                .registry
                .load_file(file, self.cfg.approximate)?
                .into_iter()
                .map(|p| p.name)
                .collect()),
        }
    }

    /// Removes a profile from the backend (`apparmor_parser -R` semantics); `false` when it
    /// was not loaded.
    pub fn unload(&self, name: &str) -> Result<bool, LandlockError> {
        match self.backend {
            BackendKind::None => Ok(false),
            BackendKind::Kernel => {
                if !self.loaded_profiles().contains_key(name) {
                    return Ok(false);
                }
                kernel::unload(&self.cfg.apparmor_fs, name)?;
                Ok(true)
            }
            BackendKind::Landlock => self.registry.unload(name),
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// The registry (Landlock backend).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The loaded profiles and their modes (`name → enforce|complain`), as the
    /// securityfs `profiles` file (kernel) or the registry (Landlock) lists them.
    pub fn loaded_profiles(&self) -> std::collections::BTreeMap<String, String> {
        match self.backend {
            BackendKind::None => Default::default(),
            BackendKind::Kernel => {
                host::read_profiles(&self.cfg.apparmor_fs.join("profiles")).unwrap_or_default()
            }
            BackendKind::Landlock => self.registry.profiles().unwrap_or_default(),
        }
    }

    /// What the kubelet's admission sees.
    pub fn host(&self) -> AppArmorHost {
        let enabled = self.backend != BackendKind::None;
        let loaded: BTreeSet<String> = self.loaded_profiles().into_keys().collect();
        AppArmorHost {
            enabled,
            loaded,
            feature_gate: self.cfg.feature_gate,
        }
    }

    /// `". AppArmor enabled"` for the node Ready message, where the emulated
    /// kubelet appends it (`pkg/kubelet/nodestatus/setters.go`).
    pub fn ready_suffix(&self) -> Option<String> {
        let on = self.backend != BackendKind::None
            && self.cfg.feature_gate
            && self.cfg.version.has(Switch::NodeReadyAppArmorMessage);
        on.then(|| ". AppArmor enabled".to_string())
    }

    /// How to confine one container. Landlock: writes the plan (with the
    /// container's seccomp program and its load flags, which the helper
    /// installs last) into
    /// `container_dir`. Errors name the rule that cannot be enforced.
    pub fn launch(
        &self,
        profile: &ResolvedAppArmor,
        seccomp: Option<(&[SockFilter], u32)>,
        container_dir: &Path,
    ) -> Result<AppArmorLaunch, LandlockError> {
        match self.backend {
            BackendKind::None => match profile {
                ResolvedAppArmor::Unset | ResolvedAppArmor::Unconfined => Ok(AppArmorLaunch::None),
                _ => Err(LandlockError::Backend {
                    backend: "none",
                    reason: "AppArmor is not enabled on the host".into(),
                }),
            },
            BackendKind::Kernel => Ok(match profile {
                ResolvedAppArmor::Unconfined => AppArmorLaunch::None,
                ResolvedAppArmor::Unset | ResolvedAppArmor::RuntimeDefault => {
                    AppArmorLaunch::Kernel {
                        profile: kernel::RUNTIME_DEFAULT_NAME.into(),
                    }
                }
                ResolvedAppArmor::Localhost { name } => AppArmorLaunch::Kernel {
                    profile: name.clone(),
                },
            }),
            BackendKind::Landlock => {
                let translation = match profile {
                    // Deliberate: ordinary pods are not confined by the
                    // Landlock default profile (containerd would apply its
                    // default only with the LSM present).
                    ResolvedAppArmor::Unset | ResolvedAppArmor::Unconfined => {
                        return Ok(AppArmorLaunch::None)
                    }
                    ResolvedAppArmor::RuntimeDefault => kernel::runtime_default_translation()?,
                    ResolvedAppArmor::Localhost { name } => {
                        self.registry.translation(name, self.cfg.approximate)?
                    }
                };
                let mut plan = translation.plan;
                if let Some((prog, flags)) = seccomp {
                    plan.set_seccomp(prog, flags);
                }
                let path = container_dir.join(PLAN_FILE);
                plan.write(&path)?;
                Ok(AppArmorLaunch::Landlock(LandlockPlanFiles {
                    helper: self.cfg.helper.clone(),
                    plan: path,
                    approximations: translation.approximations,
                    log_denials: plan.log_denials,
                }))
            }
        }
    }
}

/// The profile files of a directory, sorted: regular files not starting with `.` (as the
/// AppArmor service skips hidden files in /etc/apparmor.d).
pub fn profile_files(dir: &Path) -> Result<Vec<PathBuf>, LandlockError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LandlockError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}
