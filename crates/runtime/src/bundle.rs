//! The OCI bundle's `config.json`, built like containerd's CRI plugin builds
//! it (`oci/spec.go` `populateDefaultUnixSpec`, `internal/cri/opts/spec_linux*.go`):
//! default mounts, masked and read-only paths, namespaces (new pid and mount,
//! the sandbox's net/ipc/uts by path), capabilities, user, resources and the
//! `linux.seccomp` object passed through unchanged.

use crate::error::RuntimeError;
use crate::types::{ContainerSpec, MountKind, MountSpec};
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};
use std::path::{Path, PathBuf};

/// containerd's default masked paths (`oci/spec.go`).
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];
/// containerd's default read-only paths.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Capability names by bit number (linux/capability.h), for privileged containers: one table
/// for the workspace, in armorlet-seccomp.
use armorlet_seccomp::resolve::ALL_CAPS as CAP_NAMES;

/// Where the Landlock confine helper and its plan appear in the container.
pub(crate) const CONFINE_HELPER: &str = "/.armorlet/confine";
/// The plan file's path in the container.
pub(crate) const CONFINE_PLAN: &str = "/.armorlet/plan";
/// Where a recorded container's confine helper finds the monitor's recorder
/// socket: `armorlet_landlock::plan::SECCOMP_LISTENER` (the node's tests check
/// they agree; the runtime does not depend on the Landlock crate).
pub const CONFINE_LISTENER: &str = "/.armorlet/seccomp.sock";

/// Paths the bundle refers to.
pub(crate) struct BundlePaths<'a> {
    /// The mounted rootfs.
    pub rootfs: &'a Path,
    /// The pod's sandbox directory (namespaces and /etc files).
    pub sandbox_dir: &'a Path,
    /// The cgroup parent (`RuntimeConfig::cgroup_parent`).
    pub cgroup_parent: &'a str,
}

/// Builds the whole `config.json` value.
pub(crate) fn build(
    spec: &ContainerSpec,
    paths: &BundlePaths<'_>,
) -> Result<serde_json::Value, RuntimeError> {
    let oci = build_spec(spec, paths).map_err(|e| RuntimeError::Spec(e.to_string()))?;
    let mut value = serde_json::to_value(&oci).map_err(|e| RuntimeError::Spec(e.to_string()))?;
    sort_capabilities(&mut value);
    // linux.seccomp is passed through as given: the object containerd would
    // hand the runtime, without a round trip through oci-spec's types.
    if let Some(seccomp) = &spec.seccomp {
        if !seccomp.is_object() {
            return Err(RuntimeError::Invalid("seccomp: not a JSON object".into()));
        }
        value["linux"]["seccomp"] = seccomp.clone();
        if spec.record_seccomp.is_some() && spec.landlock.is_none() {
            value["linux"]["seccomp"]["listenerPath"] = crate::record::socket_path(&spec.id)
                .to_string_lossy()
                .into();
            value["linux"]["seccomp"]["listenerMetadata"] = spec.id.clone().into();
        }
    }
    Ok(value)
}

/// oci-spec keeps capabilities in hash sets; sort them so the bundle is stable.
fn sort_capabilities(value: &mut serde_json::Value) {
    if let Some(caps) = value["process"]["capabilities"].as_object_mut() {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn build_spec(spec: &ContainerSpec, paths: &BundlePaths<'_>) -> Result<Spec, BoxError> {
    let p = &spec.process;
    if p.args.is_empty() {
        return Err("process.args is empty".into());
    }
    let caps = capabilities(spec)?;
    let mut process = ProcessBuilder::default()
        .terminal(p.tty)
        .user(
            UserBuilder::default()
                .uid(p.uid)
                .gid(p.gid)
                .additional_gids(p.additional_gids.clone())
                .build()?,
        )
        .args(process_args(spec))
        .env(p.env.clone())
        .cwd(if p.cwd.is_empty() {
            "/"
        } else {
            p.cwd.as_str()
        })
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                // Explicitly empty: oci-spec's defaults would add ambient and
                // inheritable capabilities, which containerd never sets.
                .inheritable(Capabilities::new())
                .ambient(Capabilities::new())
                .build()?,
        )
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(1024u64)
            .soft(1024u64)
            .build()?])
        .no_new_privileges(p.no_new_privileges)
        .build()?;
    if let Some(profile) = &spec.apparmor_profile {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    let mut spec_out = SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path(paths.rootfs)
                .readonly(spec.readonly_rootfs)
                .build()?,
        )
        .mounts(mounts(spec, paths.sandbox_dir)?)
        .process(process)
        .linux(linux(spec, paths)?)
        .build()?;
    // oci-spec's defaults carry a hostname ("youki"); the UTS namespace is
    // the sandbox's and its hostname is already set there.
    spec_out.set_hostname(None);
    spec_out.set_annotations(None);
    Ok(spec_out)
}

/// The container's argv, prefixed by the confine helper when Landlock confines it.
pub(crate) fn process_args(spec: &ContainerSpec) -> Vec<String> {
    confined_args(spec, &spec.process.args)
}

/// `args`, prefixed by the confine helper when the container has a Landlock launch.
pub(crate) fn confined_args(spec: &ContainerSpec, args: &[String]) -> Vec<String> {
    match &spec.landlock {
        None => args.to_vec(),
        Some(_) => [CONFINE_HELPER, CONFINE_PLAN, "--"]
            .iter()
            .map(|s| s.to_string())
            .chain(args.iter().cloned())
            .collect(),
    }
}

/// The capability set: the given list, or every capability of our bounding set when privileged.
fn capabilities(spec: &ContainerSpec) -> Result<Capabilities, BoxError> {
    let names: Vec<String> = if spec.privileged {
        host_bounding_caps()
    } else {
        spec.process.capabilities.clone()
    };
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone()))
                .map_err(|_| format!("unknown capability {n:?}").into())
        })
        .collect()
}

/// The capabilities in this process' bounding set (containerd's `WithAllCurrentCapabilities`).
fn host_bounding_caps() -> Vec<String> {
    let bits = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn mount(
    dest: &str,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[&str],
) -> Result<Mount, BoxError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source.into())
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Default mounts, the sandbox's /etc files and /dev/shm, the extra mounts, the confine helper.
fn mounts(spec: &ContainerSpec, sandbox_dir: &Path) -> Result<Vec<Mount>, BoxError> {
    let sys = if spec.privileged { "rw" } else { "ro" };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys],
        )?,
    ];
    // The pod's shared /dev/shm and /etc files (containerd's CRI bind-mounts the sandbox's).
    out.push(mount(
        "/dev/shm",
        "bind",
        sandbox_dir.join("shm"),
        &["rbind", "rprivate", "rw"],
    )?);
    let etc_mode = if spec.readonly_rootfs { "ro" } else { "rw" };
    for file in ["hostname", "hosts", "resolv.conf"] {
        out.push(mount(
            &format!("/etc/{file}"),
            "bind",
            sandbox_dir.join(file),
            &["rbind", "rprivate", etc_mode],
        )?);
    }
    for m in &spec.mounts {
        out.push(extra_mount(m)?);
    }
    if let Some(l) = &spec.landlock {
        out.push(mount(
            CONFINE_HELPER,
            "bind",
            &l.helper,
            &["rbind", "rprivate", "ro"],
        )?);
        out.push(mount(
            CONFINE_PLAN,
            "bind",
            &l.plan,
            &["rbind", "rprivate", "ro"],
        )?);
        if spec.record_seccomp.is_some() {
            out.push(mount(
                CONFINE_LISTENER,
                "bind",
                crate::record::socket_path(&spec.id),
                &["rbind", "rprivate"],
            )?);
        }
    }
    Ok(out)
}

fn extra_mount(m: &MountSpec) -> Result<Mount, BoxError> {
    if !m.destination.starts_with('/') {
        return Err(format!("mount destination {:?} is not absolute", m.destination).into());
    }
    match &m.kind {
        MountKind::Bind { readonly } => {
            let mode = if *readonly { "ro" } else { "rw" };
            mount(
                &m.destination,
                "bind",
                &m.source,
                &["rbind", "rprivate", mode],
            )
        }
        MountKind::Tmpfs => mount(&m.destination, "tmpfs", "tmpfs", &["nosuid", "nodev"]),
        MountKind::Proc => mount(
            &m.destination,
            "proc",
            "proc",
            &["nosuid", "noexec", "nodev"],
        ),
    }
}

fn linux(
    spec: &ContainerSpec,
    paths: &BundlePaths<'_>,
) -> Result<oci_spec::runtime::Linux, BoxError> {
    let ns = |typ: LinuxNamespaceType, path: Option<PathBuf>| {
        let b = LinuxNamespaceBuilder::default().typ(typ);
        match path {
            Some(p) => b.path(p).build(),
            None => b.build(),
        }
    };
    let sdir = paths.sandbox_dir;
    let namespaces = vec![
        ns(LinuxNamespaceType::Pid, None)?,
        ns(LinuxNamespaceType::Ipc, Some(sdir.join("ipc")))?,
        ns(LinuxNamespaceType::Uts, Some(sdir.join("uts")))?,
        ns(LinuxNamespaceType::Mount, None)?,
        ns(LinuxNamespaceType::Network, Some(sdir.join("net")))?,
    ];
    let cgroups_path = format!(
        "{}/pod{}/{}",
        paths.cgroup_parent.trim_end_matches('/'),
        spec.pod_uid,
        spec.id
    );
    let mut b = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(cgroups_path))
        .resources(resources(spec)?);
    if spec.privileged {
        b = b
            .devices(host_devices())
            .masked_paths(Vec::<String>::new())
            .readonly_paths(Vec::<String>::new());
    } else {
        b = b
            .masked_paths(
                MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .readonly_paths(
                READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            );
    }
    Ok(b.build()?)
}

fn resources(spec: &ContainerSpec) -> Result<oci_spec::runtime::LinuxResources, BoxError> {
    let r = &spec.resources;
    // containerd's default: deny every device; runc and crun then add their
    // standard allow list (null, zero, full, tty, random, urandom, pts...).
    // Privileged containers get everything (`WithAllDevicesAllowed`).
    let device_rule = LinuxDeviceCgroupBuilder::default()
        .allow(spec.privileged)
        .access("rwm")
        .build()?;
    let mut cpu = LinuxCpuBuilder::default();
    if let Some(s) = r.cpu_shares {
        cpu = cpu.shares(s);
    }
    if let Some(q) = r.cpu_quota {
        cpu = cpu.quota(q);
    }
    if let Some(p) = r.cpu_period {
        cpu = cpu.period(p);
    }
    let mut b = LinuxResourcesBuilder::default()
        .devices(vec![device_rule])
        .cpu(cpu.build()?);
    if let Some(limit) = r.memory_limit {
        b = b.memory(LinuxMemoryBuilder::default().limit(limit).build()?);
    }
    Ok(b.build()?)
}

/// The host's devices under /dev (containerd's `WithHostDevices`), for privileged containers.
fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    collect_devices(Path::new("/dev"), &mut out);
    out
}

fn collect_devices(dir: &Path, out: &mut Vec<LinuxDevice>) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_dir() {
            let name = e.file_name();
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                collect_devices(&path, out);
            }
            continue;
        }
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        if path == Path::new("/dev/console") {
            continue;
        }
        let rdev = md.rdev();
        if let Ok(d) = LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(libc::major(rdev) as i64)
            .minor(libc::minor(rdev) as i64)
            .file_mode(md.mode() & 0o777)
            .uid(md.uid())
            .gid(md.gid())
            .build()
        {
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::*;
    use serde_json::json;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            id: "a".repeat(64),
            pod_uid: "uid1".into(),
            labels: Default::default(),
            image_root: "/img".into(),
            process: ProcessSpec {
                args: vec!["sleep".into(), "1".into()],
                env: vec!["A=b".into()],
                cwd: String::new(),
                uid: 1000,
                gid: 1001,
                additional_gids: vec![5],
                capabilities: vec!["CAP_KILL".into(), "CAP_CHOWN".into()],
                no_new_privileges: true,
                ..Default::default()
            },
            readonly_rootfs: true,
            privileged: false,
            mounts: vec![MountSpec {
                destination: "/data".into(),
                source: "/host/data".into(),
                kind: MountKind::Bind { readonly: true },
            }],
            seccomp: Some(
                json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}),
            ),
            apparmor_profile: Some("k8s-deny-write".into()),
            landlock: None,
            resources: Resources {
                cpu_shares: Some(512),
                cpu_quota: Some(50000),
                cpu_period: Some(100000),
                memory_limit: Some(1 << 26),
            },
            log_path: "/log".into(),
            record_seccomp: None,
        }
    }

    fn build_for(s: &ContainerSpec) -> serde_json::Value {
        build(
            s,
            &BundlePaths {
                rootfs: Path::new("/c/rootfs"),
                sandbox_dir: Path::new("/sb/uid1"),
                cgroup_parent: "/armorlet/n1/",
            },
        )
        .unwrap()
    }

    #[test]
    fn like_containerd_cri() {
        let v = build_for(&spec());
        assert_eq!(v["root"], json!({"path": "/c/rootfs", "readonly": true}));
        assert!(v.get("hostname").is_none() && v.get("annotations").is_none());
        let p = &v["process"];
        assert_eq!(p["args"], json!(["sleep", "1"]));
        assert_eq!(p["cwd"], "/");
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 1001, "additionalGids": [5]})
        );
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["apparmorProfile"], "k8s-deny-write");
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(p["capabilities"][set], json!(["CAP_CHOWN", "CAP_KILL"]));
        }
        for set in ["inheritable", "ambient"] {
            assert_eq!(p["capabilities"][set], json!([]));
        }
        let l = &v["linux"];
        assert_eq!(
            l["cgroupsPath"],
            format!("/armorlet/n1/poduid1/{}", "a".repeat(64))
        );
        assert_eq!(
            l["namespaces"],
            json!([{"type": "pid"}, {"type": "ipc", "path": "/sb/uid1/ipc"}, {"type": "uts", "path": "/sb/uid1/uts"},
                   {"type": "mount"}, {"type": "network", "path": "/sb/uid1/net"}])
        );
        assert_eq!(
            l["maskedPaths"].as_array().unwrap().len(),
            MASKED_PATHS.len()
        );
        assert_eq!(
            l["readonlyPaths"].as_array().unwrap().len(),
            READONLY_PATHS.len()
        );
        assert_eq!(
            l["seccomp"],
            json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"]})
        );
        assert_eq!(l["resources"]["memory"]["limit"], 1 << 26);
        assert_eq!(
            l["resources"]["cpu"],
            json!({"shares": 512, "quota": 50000, "period": 100000})
        );
        assert_eq!(
            l["resources"]["devices"],
            json!([{"allow": false, "access": "rwm"}])
        );
        let mounts: Vec<(&str, &str)> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["destination"].as_str().unwrap(),
                    m["type"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            mounts,
            [
                ("/proc", "proc"),
                ("/dev", "tmpfs"),
                ("/dev/pts", "devpts"),
                ("/dev/mqueue", "mqueue"),
                ("/sys", "sysfs"),
                ("/sys/fs/cgroup", "cgroup"),
                ("/dev/shm", "bind"),
                ("/etc/hostname", "bind"),
                ("/etc/hosts", "bind"),
                ("/etc/resolv.conf", "bind"),
                ("/data", "bind"),
            ]
        );
        assert!(v["mounts"][4]["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(v["mounts"][10]["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
    }

    #[test]
    fn privileged_and_landlock() {
        let mut s = spec();
        s.privileged = true;
        s.seccomp = None;
        s.landlock = Some(LandlockLaunch {
            helper: "/usr/lib/armorlet/confine".into(),
            plan: "/c/plan".into(),
        });
        let v = build_for(&s);
        assert_eq!(v["linux"]["maskedPaths"], json!([]));
        assert_eq!(v["linux"]["readonlyPaths"], json!([]));
        assert!(v["linux"].get("seccomp").is_none());
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
        assert!(v["mounts"][4]["options"]
            .as_array()
            .unwrap()
            .contains(&json!("rw")));
        assert_eq!(
            v["process"]["args"],
            json!(["/.armorlet/confine", "/.armorlet/plan", "--", "sleep", "1"])
        );
        let n = v["mounts"].as_array().unwrap().len();
        assert_eq!(v["mounts"][n - 2]["destination"], CONFINE_HELPER);
        assert_eq!(v["mounts"][n - 1]["source"], "/c/plan");
        assert!(v["mounts"][n - 1]["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut s = spec();
        s.process.capabilities.push("CAP_NOPE".into());
        let paths = BundlePaths {
            rootfs: Path::new("/r"),
            sandbox_dir: Path::new("/s"),
            cgroup_parent: "/p",
        };
        let e = build(&s, &paths).unwrap_err().to_string();
        assert!(e.contains("unknown capability \"CAP_NOPE\""), "{e}");
        let mut s = spec();
        s.process.args.clear();
        assert!(build(&s, &paths)
            .unwrap_err()
            .to_string()
            .contains("process.args is empty"));
        let mut s = spec();
        s.seccomp = Some(json!("x"));
        assert!(build(&s, &paths).is_err());
        let mut s = spec();
        s.mounts[0].destination = "rel".into();
        assert!(build(&s, &paths)
            .unwrap_err()
            .to_string()
            .contains("not absolute"));
    }
}
