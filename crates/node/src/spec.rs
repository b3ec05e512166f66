//! Turns one container of a pod into an `armorlet_runtime::ContainerSpec`, with
//! the confinement the kubelet + containerd would give it: seccomp (Localhost
//! files under the kubelet root, RuntimeDefault, privileged → unconfined),
//! capabilities (containerd's default set + add − drop), noNewPrivileges,
//! user/groups, command/args merged with the image, env, volumes, cgroup limits.

use armorlet_confinement::{ContainerConfinement, ResolvedAppArmor, ResolvedSeccomp};
use armorlet_images::ImageRecord;
use armorlet_landlock::{AppArmorLaunch, AppArmorNode, BackendKind};
use armorlet_runtime::{
    ContainerSpec, LandlockLaunch, MountKind, MountSpec, ProcessSpec, Resources,
};
use armorlet_seccomp::resolve::{ResolveContext, ALL_CAPS, DEFAULT_CAPS};
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Label keys persisted with each container (the names containerd's CRI plugin uses).
pub mod labels {
    /// Pod namespace.
    pub const NAMESPACE: &str = "io.kubernetes.pod.namespace";
    /// Pod name.
    pub const POD: &str = "io.kubernetes.pod.name";
    /// Pod UID.
    pub const UID: &str = "io.kubernetes.pod.uid";
    /// Container name.
    pub const CONTAINER: &str = "io.kubernetes.container.name";
    /// Restart count of this instance.
    pub const RESTART: &str = "io.kubernetes.container.restartCount";
}

/// Why a container cannot be created; the kubelet's waiting reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `CreateContainerError` or `CreateContainerConfigError`.
    pub reason: &'static str,
    /// The message shown in the waiting state and the `Failed` event.
    pub message: String,
}

impl SpecError {
    fn create(message: String) -> Self {
        SpecError {
            reason: "CreateContainerError",
            message,
        }
    }
    fn config(message: String) -> Self {
        SpecError {
            reason: "CreateContainerConfigError",
            message,
        }
    }
}

/// The inputs of [`build`].
pub struct SpecInput<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The container.
    pub container: &'a Container,
    /// Its resolved confinement.
    pub confinement: &'a ContainerConfinement,
    /// Its image.
    pub image: &'a ImageRecord,
    /// The unpacked image.
    pub image_root: PathBuf,
    /// Restart count of the instance being created.
    pub restart_count: u32,
    /// Prepared volumes: name → host directory.
    pub volumes: &'a BTreeMap<String, PathBuf>,
    /// Pod log directory root (`/var/log/pods`).
    pub pod_log_dir: &'a Path,
    /// The node's name and IP (downward API).
    pub node_name: &'a str,
    /// The node's IP.
    pub host_ip: &'a str,
    /// The node's AppArmor backend.
    pub apparmor: &'a AppArmorNode,
    /// The runtime's containers directory (the Landlock plan goes into `<dir>/<id>/`).
    pub containers_dir: &'a Path,
    /// The node's view: Localhost seccomp profiles are node paths.
    pub view: &'a crate::NodeView,
    /// The node's recordings (`D/nodes/<node>/recordings`).
    pub recordings_dir: &'a Path,
    /// The OCI runtime (what it accepts as notify rules differs).
    pub notify_runtime: armorlet_seccomp::record::NotifyRuntime,
}

pub use armorlet_confinement::profiles::{RECORD_APPARMOR_ANNOTATION, RECORD_SECCOMP_ANNOTATION};

/// Where the recording of a container goes: per pod name, so the runs of
/// restarted and re-created pods merge.
pub fn recording_file(
    recordings_dir: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
) -> PathBuf {
    recordings_dir
        .join(namespace)
        .join(pod)
        .join(format!("{container}.json"))
}

/// Whether one of the pod's recording annotations selects `container`.
fn records(pod: &Pod, container: &str) -> bool {
    let Some(a) = pod.metadata.annotations.as_ref() else {
        return false;
    };
    [RECORD_SECCOMP_ANNOTATION, RECORD_APPARMOR_ANNOTATION]
        .iter()
        .filter_map(|k| a.get(*k))
        .any(|v| {
            v.split(',')
                .map(str::trim)
                .any(|n| n == "*" || n == container)
        })
}

/// Whether the container's AppArmor profile is loaded in complain mode on a backend
/// without the kernel's complain logging (Landlock): it then runs unconfined by
/// AppArmor and recorded, so what the profile would have denied can be listed
/// (`armorlet profile suggest --apparmor`). The kernel backend logs `ALLOWED` itself.
fn complains(input: &SpecInput<'_>) -> bool {
    let ResolvedAppArmor::Localhost { name: profile } = &input.confinement.apparmor else {
        return false;
    };
    input.apparmor.backend() == BackendKind::Landlock
        && input
            .apparmor
            .loaded_profiles()
            .get(profile)
            .is_some_and(|mode| mode == "complain")
}

/// A container spec and what its confinement had to tighten.
#[derive(Debug)]
pub struct Built {
    /// The spec for the runtime.
    pub spec: ContainerSpec,
    /// Rules the Landlock backend tightened (`--apparmor-landlock=approximate`);
    /// the agent reports them in a Warning event.
    pub approximations: Vec<String>,
    /// Landlock reports this container's denials to the audit subsystem.
    pub log_denials: bool,
    /// The mounts with a `subPath`: the agent stages each safely (`crate::subpath`) and
    /// replaces the mount's source before the runtime sees it.
    pub sub_paths: Vec<SubPathMount>,
}

/// A `volumeMounts[]` entry with a `subPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubPathMount {
    /// Its index in `spec.mounts`.
    pub index: usize,
    /// The volume's `name` (for the kubelet's error message).
    pub volume_name: String,
    /// The volume's host directory.
    pub volume: PathBuf,
    /// The subPath, relative to the volume.
    pub sub_path: String,
}

/// Builds the container's spec; a new random ID is chosen. With the Landlock
/// backend this writes the confine plan into the container's directory (the
/// last step, so a failure before it leaves nothing behind).
pub fn build(input: &SpecInput<'_>) -> Result<Built, SpecError> {
    let c = input.container;
    let sc = c.security_context.as_ref();
    let privileged = input.confinement.privileged;
    let capabilities = capabilities(c, privileged);
    let mut seccomp_profile = seccomp_profile(&input.confinement.seccomp, input.view)?;
    let host = ResolveContext::host_default();
    let record = records(input.pod, &c.name) || complains(input);
    if record {
        // The container's own confinement, with what it allows reported.
        seccomp_profile = Some(armorlet_seccomp::record::notify_profile(
            seccomp_profile.as_ref(),
            input.notify_runtime,
            host.arch,
        ));
    }
    let seccomp_ctx =
        ResolveContext::new(host.arch, capabilities.iter().cloned(), host.kernel_version);
    let (uid, gid, additional_gids) = identity(input)?;
    let process = ProcessSpec {
        args: command(c, input.image)?,
        env: env(input),
        cwd: c
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| input.image.config.working_dir.clone()),
        uid,
        gid,
        additional_gids,
        tty: c.tty.unwrap_or(false),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        capabilities,
        no_new_privileges: !privileged
            && sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
    };
    let meta = &input.pod.metadata;
    let (ns, name, uid_s) = (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
        meta.uid.clone().unwrap_or_default(),
    );
    let labels = BTreeMap::from([
        (labels::NAMESPACE.to_owned(), ns.clone()),
        (labels::POD.to_owned(), name.clone()),
        (labels::UID.to_owned(), uid_s.clone()),
        (labels::CONTAINER.to_owned(), c.name.clone()),
        (labels::RESTART.to_owned(), input.restart_count.to_string()),
    ]);
    let mut spec = ContainerSpec {
        id: new_id(),
        pod_uid: uid_s.clone(),
        labels,
        image_root: input.image_root.clone(),
        process,
        readonly_rootfs: sc.and_then(|s| s.read_only_root_filesystem) == Some(true),
        privileged,
        mounts: Vec::new(),
        seccomp: None,
        apparmor_profile: None,
        landlock: None,
        resources: resources(c)?,
        log_path: log_path(
            input.pod_log_dir,
            &ns,
            &name,
            &uid_s,
            &c.name,
            input.restart_count,
        ),
        record_seccomp: record.then(|| recording_file(input.recordings_dir, &ns, &name, &c.name)),
    };
    let (mounts, sub_paths) = mounts(input.pod, c, input.volumes)?;
    spec.mounts = mounts;
    let (approximations, log_denials) =
        confine(input, &mut spec, seccomp_profile.as_ref(), &seccomp_ctx)?;
    Ok(Built {
        spec,
        approximations,
        log_denials,
        sub_paths,
    })
}

/// Sets the spec's AppArmor and seccomp confinement. Under the Landlock backend
/// a container with a profile starts through the confine helper, which installs
/// the seccomp filter itself after the Landlock ruleset (the runtime's filter
/// would otherwise block the helper's own Landlock and capability calls), so the
/// OCI spec then carries no seccomp section.
fn confine(
    input: &SpecInput<'_>,
    spec: &mut ContainerSpec,
    seccomp: Option<&armorlet_seccomp::Profile>,
    ctx: &ResolveContext,
) -> Result<(Vec<String>, bool), SpecError> {
    let profile = &input.confinement.apparmor;
    let through_helper = input.apparmor.backend() == BackendKind::Landlock
        && matches!(
            profile,
            ResolvedAppArmor::RuntimeDefault | ResolvedAppArmor::Localhost { .. }
        );
    let compiled = match (through_helper, seccomp) {
        (true, Some(p)) => Some(p.compile(ctx).map_err(|e| {
            SpecError::create(format!(
                "failed to create container: failed to generate seccomp spec opts: {e}"
            ))
        })?),
        _ => None,
    };
    if !through_helper {
        spec.seccomp = seccomp.map(|p| seccomp_oci(p, ctx)).transpose()?;
    }
    let dir = input.containers_dir.join(&spec.id);
    if through_helper {
        std::fs::create_dir_all(&dir).map_err(|e| apparmor_error(profile, &e.to_string()))?;
    }
    let seccomp_prog = compiled.as_ref().map(|c| (c.program.as_slice(), c.flags));
    let launch = input
        .apparmor
        .launch(profile, seccomp_prog, &dir)
        .map_err(|e| {
            if through_helper {
                let _ = std::fs::remove_dir_all(&dir);
            }
            apparmor_error(profile, &e.to_string())
        })?;
    Ok(match launch {
        AppArmorLaunch::None => (Vec::new(), false),
        AppArmorLaunch::Kernel { profile } => {
            spec.apparmor_profile = Some(profile);
            (Vec::new(), false)
        }
        AppArmorLaunch::Landlock(files) => {
            spec.landlock = Some(LandlockLaunch {
                helper: files.helper,
                plan: files.plan,
            });
            (files.approximations, files.log_denials)
        }
    })
}

/// The CreateContainerError for a profile the backend cannot apply. The text
/// follows runc's `unable to apply apparmor profile` failure, naming the profile.
fn apparmor_error(profile: &ResolvedAppArmor, detail: &str) -> SpecError {
    let name = match profile {
        ResolvedAppArmor::Localhost { name } => format!("localhost/{name}"),
        ResolvedAppArmor::RuntimeDefault => "runtime/default".into(),
        ResolvedAppArmor::Unconfined => "unconfined".into(),
        ResolvedAppArmor::Unset => String::new(),
    };
    SpecError::create(format!(
        "failed to create container: unable to apply apparmor profile {name:?}: {detail}"
    ))
}

/// `/var/log/pods/<ns>_<pod>_<uid>/<container>/<restartCount>.log`
/// (pkg/kubelet/kuberuntime/helpers.go `BuildContainerLogsDirectory`).
pub fn log_path(
    root: &Path,
    ns: &str,
    pod: &str,
    uid: &str,
    container: &str,
    restart: u32,
) -> PathBuf {
    root.join(format!("{ns}_{pod}_{uid}"))
        .join(container)
        .join(format!("{restart}.log"))
}

fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// containerd's default capability set plus `add` minus `drop`; `ALL` in
/// either list as containerd's `pkg/cri/opts/spec_linux.go` handles it.
fn capabilities(c: &Container, privileged: bool) -> Vec<String> {
    if privileged {
        return ALL_CAPS.iter().map(|s| s.to_string()).collect();
    }
    let caps = c
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref());
    let norm = |s: &String| {
        let up = s.to_uppercase();
        if up == "ALL" || up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let add: Vec<String> = caps
        .and_then(|c| c.add.as_ref())
        .map(|l| l.iter().map(norm).collect())
        .unwrap_or_default();
    let drop: Vec<String> = caps
        .and_then(|c| c.drop.as_ref())
        .map(|l| l.iter().map(norm).collect())
        .unwrap_or_default();
    let mut set: BTreeSet<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    if add.iter().any(|a| a == "ALL") {
        set = ALL_CAPS.iter().map(|s| s.to_string()).collect();
    }
    set.extend(add.iter().filter(|a| *a != "ALL").cloned());
    if drop.iter().any(|d| d == "ALL") {
        set.clear();
        set.extend(add.iter().filter(|a| *a != "ALL").cloned());
    }
    for d in &drop {
        if !add.contains(d) {
            set.remove(d);
        }
    }
    set.into_iter().collect()
}

/// The seccomp profile the container asked for, loaded.
///
/// Message shape: containerd's `failed to create containerd container: cannot
/// load seccomp profile "<path>": <os error>` (golden doc, nope-pod) with the
/// word "containerd" dropped — our runtime is not containerd, and the rest
/// stays verbatim so users can match the upstream text.
fn seccomp_profile(
    resolved: &ResolvedSeccomp,
    view: &crate::NodeView,
) -> Result<Option<armorlet_seccomp::Profile>, SpecError> {
    Ok(match resolved {
        ResolvedSeccomp::Unconfined => None,
        ResolvedSeccomp::RuntimeDefault => Some(armorlet_seccomp::runtime_default()),
        ResolvedSeccomp::Localhost { path } => Some(load_localhost(path, view)?),
    })
}

/// The profile as OCI `linux.seccomp`, resolved for the container's capabilities.
fn seccomp_oci(
    profile: &armorlet_seccomp::Profile,
    ctx: &ResolveContext,
) -> Result<serde_json::Value, SpecError> {
    armorlet_seccomp::oci::to_oci(profile, ctx).map_err(|e| {
        SpecError::create(format!(
            "failed to create container: failed to generate seccomp spec opts: {e}"
        ))
    })
}

/// Reads the profile at node path `path` (messages name the node path, as the kubelet's do).
fn load_localhost(
    path: &Path,
    view: &crate::NodeView,
) -> Result<armorlet_seccomp::Profile, SpecError> {
    let p = path.display();
    let fail = |detail: String| {
        SpecError::create(format!(
            "failed to create container: cannot load seccomp profile \"{p}\": {detail}"
        ))
    };
    let bytes = std::fs::read(view.host_path(path))
        .map_err(|e| fail(format!("open {p}: {}", go_errno_text(&e))))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(fail("unexpected end of JSON input".into()));
    }
    armorlet_seccomp::check(&bytes)
        .map(|(profile, _warnings)| profile)
        .map_err(|e| fail(format!("decoding seccomp profile failed: {e}")))
}

/// Go's `syscall.Errno` texts for the usual file errors (lower-case, no "(os error N)").
fn go_errno_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

/// runAsUser/runAsGroup (container over pod), else the image's numeric USER;
/// fsGroup and supplementalGroups become additional groups.
fn identity(input: &SpecInput<'_>) -> Result<(u32, u32, Vec<u32>), SpecError> {
    let psc = input
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref());
    let csc = input.container.security_context.as_ref();
    let (img_uid, img_gid) = image_user(&input.image.config.user)?;
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|s| s.run_as_user));
    let gid = csc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|s| s.run_as_group));
    if csc
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|s| s.run_as_non_root))
        == Some(true)
        && uid.unwrap_or(img_uid as i64) == 0
    {
        return Err(SpecError::config(
            "container has runAsNonRoot and image will run as root".into(),
        ));
    }
    let mut groups: Vec<u32> = psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|g| g as u32)
        .collect();
    if let Some(fs) = psc.and_then(|s| s.fs_group) {
        groups.push(fs as u32);
    }
    Ok((
        uid.map_or(img_uid, |u| u as u32),
        gid.map_or(img_gid, |g| g as u32),
        groups,
    ))
}

fn image_user(user: &str) -> Result<(u32, u32), SpecError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let uid = match u {
        "" | "root" => 0,
        n => n.parse().map_err(|_| {
            SpecError::create(format!(
                "failed to create container: unsupported non-numeric image user {user:?}"
            ))
        })?,
    };
    let gid = if g.is_empty() || g == "root" {
        0
    } else {
        g.parse().unwrap_or(uid)
    };
    Ok((uid, gid))
}

/// command/args merged with the image's entrypoint/cmd like containerd's CRI plugin
/// (pkg/cri/opts/spec.go `WithProcessArgs`), after `$(VAR)` expansion is skipped.
fn command(c: &Container, image: &ImageRecord) -> Result<Vec<String>, SpecError> {
    let cmd = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();
    let mut out = if !cmd.is_empty() {
        cmd
    } else {
        image.config.entrypoint.clone()
    };
    if !args.is_empty() {
        out.extend(args);
    } else if c.command.as_ref().is_none_or(Vec::is_empty) {
        out.extend(image.config.cmd.clone());
    }
    if out.is_empty() {
        return Err(SpecError::create(
            "failed to create container: no command specified".into(),
        ));
    }
    Ok(out)
}

/// Image env, then HOSTNAME, then the container's env (values and basic fieldRefs).
fn env(input: &SpecInput<'_>) -> Vec<String> {
    let meta = &input.pod.metadata;
    let mut out = input.image.config.env.clone();
    if let Some(name) = &meta.name {
        out.push(format!("HOSTNAME={name}"));
    }
    for e in input.container.env.iter().flatten() {
        let field = e.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
        let value = match field.map(|f| f.field_path.as_str()) {
            None => e.value.clone().unwrap_or_default(),
            Some("metadata.name") => meta.name.clone().unwrap_or_default(),
            Some("metadata.namespace") => meta.namespace.clone().unwrap_or_default(),
            Some("metadata.uid") => meta.uid.clone().unwrap_or_default(),
            Some("spec.nodeName") => input.node_name.to_owned(),
            Some("spec.serviceAccountName") => input
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_default(),
            Some("status.hostIP") => input.host_ip.to_owned(),
            Some(_) => String::new(),
        };
        out.push(format!("{}={value}", e.name));
    }
    out
}

/// The container's volume mounts. The volumes the kubelet fills from the API (configMap,
/// secret, downwardAPI, projected) are always read-only, as their `GetAttributes` say
/// (`pkg/volume/configmap/configmap.go` and the others: `ReadOnly: true`), so a container
/// cannot plant symlinks where the node writes. Mounts with a `subPath` are listed for
/// staging (`crate::subpath`).
fn mounts(
    pod: &Pod,
    c: &Container,
    volumes: &BTreeMap<String, PathBuf>,
) -> Result<(Vec<MountSpec>, Vec<SubPathMount>), SpecError> {
    let api_data = |name: &str| {
        pod.spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
            .find(|v| v.name == name)
            .is_some_and(|v| {
                v.config_map.is_some()
                    || v.secret.is_some()
                    || v.downward_api.is_some()
                    || v.projected.is_some()
            })
    };
    let mut out = Vec::new();
    let mut sub_paths = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let source = volumes.get(&m.name).ok_or_else(|| {
            SpecError::config(format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, c.name
            ))
        })?;
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sub.split('/').any(|s| s == "..") || sub.starts_with('/') {
                return Err(SpecError::config(format!("invalid subPath {sub:?}")));
            }
            sub_paths.push(SubPathMount {
                index: out.len(),
                volume_name: m.name.clone(),
                volume: source.clone(),
                sub_path: sub.to_owned(),
            });
        }
        out.push(MountSpec {
            destination: m.mount_path.clone(),
            source: source.clone(),
            kind: MountKind::Bind {
                readonly: m.read_only == Some(true) || api_data(&m.name),
            },
        });
    }
    Ok((out, sub_paths))
}

/// cgroup v1 values as the kubelet computes them
/// (pkg/kubelet/cm/helpers_linux.go `MilliCPUToShares`, `MilliCPUToQuota`).
fn resources(c: &Container) -> Result<Resources, SpecError> {
    let get =
        |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| { m.and_then(|m| m.get(k)).map(|q| q.0.clone()) };
    let r = c.resources.as_ref();
    let limits = r.and_then(|r| r.limits.as_ref());
    let requests = r.and_then(|r| r.requests.as_ref());
    let bad = |q: &str| SpecError::config(format!("invalid resource quantity {q:?}"));
    let cpu_req = get(requests, "cpu").or(get(limits, "cpu"));
    let mut out = Resources::default();
    if let Some(q) = cpu_req {
        let milli = parse_quantity(&q, 1000).ok_or_else(|| bad(&q))?;
        out.cpu_shares = Some((milli * 1024 / 1000).max(2) as u64);
    } else {
        out.cpu_shares = Some(2);
    }
    if let Some(q) = get(limits, "cpu") {
        let milli = parse_quantity(&q, 1000).ok_or_else(|| bad(&q))?;
        out.cpu_period = Some(100_000);
        out.cpu_quota = Some(((milli * 100_000) / 1000).max(1000) as i64);
    }
    if let Some(q) = get(limits, "memory") {
        out.memory_limit = Some(parse_quantity(&q, 1).ok_or_else(|| bad(&q))? as i64);
    }
    Ok(out)
}

/// A resource quantity times `scale` (1000 for milli-units), rounded up.
fn parse_quantity(q: &str, scale: u128) -> Option<u128> {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let mult: (u128, u128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1000, 1),
        "M" => (1000u128.pow(2), 1),
        "G" => (1000u128.pow(3), 1),
        "T" => (1000u128.pow(4), 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        _ => return None,
    };
    let frac_div = 10u128.checked_pow(frac.len() as u32)?;
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    let num = digits * mult.0 * scale;
    let den = frac_div * mult.1;
    Some(num.div_ceil(den))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_and_the_runtime_agree_on_the_recorder_socket() {
        assert_eq!(
            armorlet_runtime::CONFINE_LISTENER,
            armorlet_landlock::plan::SECCOMP_LISTENER
        );
    }

    #[test]
    fn the_recording_annotation_names_containers() {
        let pod = |v: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"annotations": {RECORD_SECCOMP_ANNOTATION: v}}
            }))
            .unwrap()
        };
        assert!(records(&pod("*"), "web"));
        assert!(records(&pod("sidecar, web"), "web"));
        assert!(!records(&pod("sidecar"), "web"));
        assert!(!records(&Pod::default(), "web"));
        let apparmor: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"annotations": {RECORD_APPARMOR_ANNOTATION: "web"}}
        }))
        .unwrap();
        assert!(records(&apparmor, "web"));
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m", 1000), Some(100));
        assert_eq!(parse_quantity("1.5", 1000), Some(1500));
        assert_eq!(parse_quantity("64Mi", 1), Some(64 << 20));
        assert_eq!(parse_quantity("1G", 1), Some(1_000_000_000));
        assert_eq!(parse_quantity("1x", 1), None);
    }

    #[test]
    fn caps_add_drop() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["CHOWN"]}}
        }))
        .unwrap();
        let caps = capabilities(&c, false);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(caps.contains(&"CAP_KILL".to_string()));
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "securityContext": {"capabilities": {"drop": ["ALL"]}}
        }))
        .unwrap();
        assert!(capabilities(&c, false).is_empty());
    }

    #[test]
    fn missing_localhost_profile_message() {
        let err = seccomp_profile(
            &ResolvedSeccomp::Localhost {
                path: "/nonexistent/profiles/nope.json".into(),
            },
            &crate::NodeView::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason, "CreateContainerError");
        assert_eq!(
            err.message,
            "failed to create container: cannot load seccomp profile \"/nonexistent/profiles/nope.json\": open /nonexistent/profiles/nope.json: no such file or directory"
        );
    }
}
