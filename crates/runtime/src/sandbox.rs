//! Pod sandboxes: per pod, new network, IPC and UTS namespaces held by bind
//! mounts (no pause process), plus the `hostname`, `hosts` and `resolv.conf`
//! files bind-mounted into every container of the pod (as containerd does).
//!
//! The namespaces are made by a short-lived thread that unshares them (they
//! are per-thread), sets the hostname, brings `lo` up and bind-mounts its
//! `/proc/thread-self/ns/*` onto files in `sandboxes_dir/<pod-uid>/`.

use crate::error::RuntimeError;
use crate::types::{Sandbox, SandboxSpec};
use crate::util;
use rustix::thread::UnshareFlags;
use std::path::{Path, PathBuf};

/// The sandbox record file.
const RECORD: &str = "sandbox.json";
/// The namespaces a sandbox holds: (file name, unshare flag).
const NAMESPACES: [(&str, UnshareFlags); 3] = [
    ("net", UnshareFlags::NEWNET),
    ("ipc", UnshareFlags::NEWIPC),
    ("uts", UnshareFlags::NEWUTS),
];

/// The kubelet's managed hosts file (pkg/kubelet/kubelet_pods.go,
/// `managedHostsHeader` + `hostsEntriesFromHostAliases` defaults).
const HOSTS: &str = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";

/// Creates the sandbox, or returns the existing one for this pod.
pub(crate) fn create(dir: &Path, spec: &SandboxSpec) -> Result<Sandbox, RuntimeError> {
    util::check_name("pod uid", &spec.pod_uid)?;
    let sdir = dir.join(&spec.pod_uid);
    if let Ok(existing) = util::read_json::<Sandbox>(&sdir.join(RECORD)) {
        if all_mounted(&existing) {
            return Ok(existing);
        }
    }
    std::fs::create_dir_all(&sdir).map_err(|e| RuntimeError::io(&sdir, e))?;
    write_files(&sdir, &spec.hostname)?;
    mount_shm(&sdir.join("shm"))?;
    let sandbox = Sandbox {
        pod_uid: spec.pod_uid.clone(),
        netns: sdir.join("net"),
        ipcns: sdir.join("ipc"),
        utsns: sdir.join("uts"),
        hostname: spec.hostname.clone(),
    };
    for (name, _) in NAMESPACES {
        let p = sdir.join(name);
        util::unmount(&p)?;
        std::fs::File::create(&p).map_err(|e| RuntimeError::io(&p, e))?;
    }
    let hostname = spec.hostname.clone();
    let target = sdir.clone();
    std::thread::spawn(move || make_namespaces(&target, &hostname))
        .join()
        .map_err(|_| RuntimeError::Invalid("sandbox thread panicked".into()))??;
    util::write_json(&sdir.join(RECORD), &sandbox)?;
    Ok(sandbox)
}

/// The pod's shared /dev/shm: a tmpfs like containerd's sandbox shm.
fn mount_shm(shm: &Path) -> Result<(), RuntimeError> {
    use rustix::mount::MountFlags;
    std::fs::create_dir_all(shm).map_err(|e| RuntimeError::io(shm, e))?;
    if util::is_mount_point(shm) {
        return Ok(());
    }
    let flags = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    rustix::mount::mount("shm", shm, "tmpfs", flags, c"mode=1777,size=65536k")
        .map_err(|e| RuntimeError::io(shm, e.into()))
}

fn all_mounted(s: &Sandbox) -> bool {
    [&s.netns, &s.ipcns, &s.utsns]
        .iter()
        .all(|p| util::is_mount_point(p))
}

/// The per-sandbox files containers get at /etc/hostname, /etc/hosts, /etc/resolv.conf.
fn write_files(sdir: &Path, hostname: &str) -> Result<(), RuntimeError> {
    util::write_state(&sdir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    util::write_state(&sdir.join("hosts"), HOSTS.as_bytes())?;
    let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    util::write_state(&sdir.join("resolv.conf"), &resolv)
}

/// Runs on a throwaway thread: new namespaces, hostname, `lo` up, bind mounts.
fn make_namespaces(sdir: &Path, hostname: &str) -> Result<(), RuntimeError> {
    let flags = NAMESPACES
        .iter()
        .fold(UnshareFlags::empty(), |acc, (_, f)| acc | *f);
    // SAFETY: unshare(2) only changes this thread's namespaces; the thread
    // ends right after and holds no file descriptors shared with others.
    unsafe { rustix::thread::unshare_unsafe(flags) }
        .map_err(|e| RuntimeError::io(sdir, e.into()))?;
    rustix::system::sethostname(hostname.as_bytes())
        .map_err(|e| RuntimeError::Invalid(format!("hostname {hostname:?}: {e}")))?;
    loopback_up().map_err(|e| RuntimeError::io("lo", e))?;
    for (name, _) in NAMESPACES {
        let src = PathBuf::from(format!("/proc/thread-self/ns/{name}"));
        let dst = sdir.join(name);
        rustix::mount::mount_bind(&src, &dst).map_err(|e| RuntimeError::io(&dst, e.into()))?;
    }
    Ok(())
}

/// `ip link set lo up` in the current thread's network namespace.
fn loopback_up() -> std::io::Result<()> {
    // rustix has no interface-flag ioctl; SIOCGIFFLAGS/SIOCSIFFLAGS through libc.
    // SAFETY: plain socket/ioctl calls on a zeroed, correctly sized ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// Unmounts the namespaces and removes the directory; a missing sandbox is fine.
pub(crate) fn remove(dir: &Path, pod_uid: &str) -> Result<(), RuntimeError> {
    util::check_name("pod uid", pod_uid)?;
    let sdir = dir.join(pod_uid);
    if !sdir.exists() {
        return Ok(());
    }
    for name in NAMESPACES.iter().map(|(n, _)| *n).chain(["shm"]) {
        util::unmount(&sdir.join(name))?;
    }
    std::fs::remove_dir_all(&sdir).map_err(|e| RuntimeError::io(&sdir, e))
}

/// The sandboxes recorded on disk.
pub(crate) fn list(dir: &Path) -> Result<Vec<Sandbox>, RuntimeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if let Ok(s) = util::read_json::<Sandbox>(&entry.path().join(RECORD)) {
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.pod_uid.cmp(&b.pod_uid));
    Ok(out)
}

/// The sandbox directory of a pod (for the bundle's /etc files).
pub(crate) fn sandbox_dir(dir: &Path, pod_uid: &str) -> Result<PathBuf, RuntimeError> {
    util::check_name("pod uid", pod_uid)?;
    let sdir = dir.join(pod_uid);
    if !sdir.join(RECORD).exists() {
        return Err(RuntimeError::NotFound(format!("sandbox for pod {pod_uid}")));
    }
    Ok(sdir)
}
