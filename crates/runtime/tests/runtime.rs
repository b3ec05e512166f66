//! Integration tests against the real crun and runc (root required).
//!
//! Each test runs for both runtimes. A minimal rootfs is built from the
//! host's static busybox. Nothing is skipped: missing root, busybox or a
//! runtime binary fails the test.

use armorlet_runtime::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    image: PathBuf,
    rt: Runtime,
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
    assert!(Path::new("/bin/busybox").exists(), "install busybox-static");
}

/// A rootfs with /bin/busybox and its applets as symlinks.
fn build_image(dir: &Path) -> PathBuf {
    let image = dir.join("image");
    std::fs::create_dir_all(image.join("bin")).unwrap();
    for d in ["etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(image.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", image.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        let link = image.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    image
}

fn config(root: &Path, kind: RuntimeKind) -> RuntimeConfig {
    RuntimeConfig {
        kind,
        binary: None,
        state_root: root.join("runtime"),
        containers_dir: root.join("containers"),
        sandboxes_dir: root.join("sandboxes"),
        monitor_exe: PathBuf::from(env!("CARGO_BIN_EXE_armorlet-runtime-monitor")),
        cgroup_parent: format!(
            "/armorlet-test/{}",
            root.file_name().unwrap().to_string_lossy()
        ),
        request_timeout: DEFAULT_REQUEST_TIMEOUT,
    }
}

fn env(kind: RuntimeKind) -> Env {
    require_root();
    let tmp = tempfile::Builder::new()
        .prefix("rt")
        .tempdir_in("/tmp")
        .unwrap();
    let root = tmp.path().to_path_buf();
    let image = build_image(&root);
    let rt = Runtime::new(config(&root, kind)).expect("runtime");
    Env {
        _tmp: tmp,
        root,
        image,
        rt,
    }
}

fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:032x}{:016x}{:08x}{:08x}", t, n, std::process::id(), n)
}

const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

impl Drop for Env {
    /// Removes whatever a (possibly failed) test left: containers, sandboxes, cgroups.
    fn drop(&mut self) {
        for c in self.rt.list_containers().unwrap_or_default() {
            let _ = self.rt.stop_container(&c.id, Duration::from_secs(0));
            let _ = self.rt.remove_container(&c.id);
        }
        for s in self.rt.list_sandboxes().unwrap_or_default() {
            let _ = self.rt.remove_sandbox(&s.pod_uid);
        }
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let _ = std::fs::remove_dir(
                    d.path()
                        .join("armorlet-test")
                        .join(self.root.file_name().unwrap()),
                );
            }
        }
    }
}

impl Env {
    fn sandbox(&self, uid: &str) -> Sandbox {
        self.rt
            .create_sandbox(&SandboxSpec {
                pod_uid: uid.into(),
                namespace: "default".into(),
                name: format!("pod-{uid}"),
                hostname: format!("host-{uid}"),
            })
            .expect("sandbox")
    }

    fn spec(&self, pod: &str, args: &[&str]) -> ContainerSpec {
        let id = new_id();
        ContainerSpec {
            labels: BTreeMap::from([("name".to_string(), "c".to_string())]),
            pod_uid: pod.into(),
            image_root: self.image.clone(),
            process: ProcessSpec {
                args: args.iter().map(|s| s.to_string()).collect(),
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                capabilities: DEFAULT_CAPS.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            readonly_rootfs: false,
            privileged: false,
            mounts: vec![],
            seccomp: None,
            apparmor_profile: None,
            landlock: None,
            resources: Resources::default(),
            log_path: self.root.join("logs").join(format!("{id}.log")),
            record_seccomp: None,
            id,
        }
    }

    fn run(&self, spec: &ContainerSpec) -> ContainerStatus {
        self.rt.create_container(spec).expect("create");
        self.rt.start_container(&spec.id).expect("start");
        self.wait_exit(&spec.id)
    }

    fn wait_exit(&self, id: &str) -> ContainerStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = self.rt.container_status(id).expect("status");
            if st.state == ContainerState::Exited {
                return st;
            }
            assert!(Instant::now() < deadline, "container did not exit: {st:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_running(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.rt.container_status(id).unwrap().state != ContainerState::Running {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self, spec: &ContainerSpec) -> Vec<(String, String, String)> {
        std::fs::read_to_string(&spec.log_path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut it = l.splitn(4, ' ');
                it.next();
                (
                    it.next().unwrap().to_string(),
                    it.next().unwrap().to_string(),
                    it.next().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn exec_output(&self, id: &str, args: &[&str]) -> (String, i32) {
        let mut p = self
            .rt
            .exec(
                id,
                &ExecSpec {
                    args: args.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                },
            )
            .expect("exec");
        let mut out = String::new();
        p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let code = p.child.wait().unwrap().code().unwrap();
        (out, code)
    }

    fn cleanup(&self, id: &str) {
        self.rt.stop_container(id, Duration::from_secs(0)).unwrap();
        self.rt.remove_container(id).unwrap();
    }
}

fn profile(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../testdata/tutorial/profiles/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let p = armorlet_seccomp::Profile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    armorlet_seccomp::oci::to_oci(&p, &ctx()).unwrap()
}

fn ctx() -> armorlet_seccomp::ResolveContext {
    let mut c = armorlet_seccomp::ResolveContext::host_default();
    c.caps = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    c
}

fn runtime_default() -> serde_json::Value {
    armorlet_seccomp::oci::to_oci(&armorlet_seccomp::runtime_default(), &ctx()).unwrap()
}

fn output_and_exit_codes(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let s = e.spec("pod1", &["sh", "-c", "echo hello out; echo hello err >&2"]);
    let st = e.run(&s);
    assert_eq!(st.exit_code, Some(0));
    assert!(st.created_at.is_some() && st.started_at.is_some() && st.finished_at.is_some());
    assert_eq!(st.labels["name"], "c");
    let log = e.log(&s);
    assert!(
        log.contains(&("stdout".into(), "F".into(), "hello out".into())),
        "{log:?}"
    );
    assert!(
        log.contains(&("stderr".into(), "F".into(), "hello err".into())),
        "{log:?}"
    );
    e.rt.remove_container(&s.id).unwrap();

    let s = e.spec("pod1", &["sh", "-c", "exit 3"]);
    assert_eq!(e.run(&s).exit_code, Some(3));
    e.rt.remove_container(&s.id).unwrap();
    // A long line is split into 16 KiB partial records.
    let s = e.spec(
        "pod1",
        &["sh", "-c", "head -c 20000 /dev/zero | tr '\\0' a; echo"],
    );
    assert_eq!(e.run(&s).exit_code, Some(0));
    let log = e.log(&s);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((log[0].1.as_str(), log[0].2.len()), ("P", 16384));
    assert_eq!((log[1].1.as_str(), log[1].2.len()), ("F", 20000 - 16384));
    e.rt.remove_container(&s.id).unwrap();
    e.rt.remove_sandbox("pod1").unwrap();
}

/// What the tutorial's violation.json (defaultAction SCMP_ACT_ERRNO, no rules) does.
/// Measured: crun fails `create` ("read from the init process"); runc's
/// `create` succeeds, its init dies before `start` (exit 139 recorded) and
/// `start` fails with "cannot start a container that has stopped", which
/// containerd reports as "cannot start a stopped process" (the golden record).
fn violation_profile(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["echo", "hi"]);
    s.seccomp = Some(profile("violation.json"));
    let created = e.rt.create_container(&s);
    eprintln!("{kind:?} violation.json create: {created:?}");
    match kind {
        RuntimeKind::Crun => {
            let err = created.expect_err("crun create must fail under violation.json");
            assert!(matches!(err, RuntimeError::Create { .. }), "{err:?}");
            assert!(
                err.to_string().contains("read from the init process"),
                "{err}"
            );
            // crun's own error also goes to its stderr, the container's stderr pipe.
            assert_eq!(
                e.log(&s),
                [(
                    "stderr".into(),
                    "F".into(),
                    "read from the init process".into()
                )]
            );
            // A failed create leaves nothing behind.
            assert!(e.rt.list_containers().unwrap().is_empty());
        }
        RuntimeKind::Runc => {
            created.expect("runc create succeeds under violation.json");
            let started = e.rt.start_container(&s.id);
            eprintln!("{kind:?} violation.json start: {started:?}");
            let err = started.expect_err("runc start must fail");
            assert!(matches!(err, RuntimeError::Start { .. }), "{err:?}");
            assert_eq!(err.to_string(), "cannot start a container that has stopped");
            let st = e.wait_exit(&s.id);
            eprintln!("{kind:?} violation.json status: {st:?}");
            assert_ne!(st.exit_code, Some(0));
            assert!(e.log(&s).is_empty());
            // The failed start deleted it from the runtime (as containerd deletes the task).
            assert!(!e.root.join("runtime").join(&s.id).exists());
            e.rt.remove_container(&s.id).unwrap();
        }
    }
}

/// The monitor of a running container is SIGKILLed: the container is not left running
/// unmonitored; recovery deletes it and records exit 137 (containerd after a dead shim), once.
fn dead_monitor_is_recovered(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let s = e.spec("pod1", &["sleep", "1000"]);
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    let dir = e.root.join("containers").join(&s.id);
    let monitor: i32 = std::fs::read_to_string(dir.join("monitor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let init = e.rt.container_status(&s.id).unwrap().pid.unwrap();
    // SAFETY: kill(2) on the monitor we just read.
    assert_eq!(unsafe { libc::kill(monitor, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let st = loop {
        let st = e.rt.container_status(&s.id).unwrap();
        if st.state != ContainerState::Running {
            break st;
        }
        assert!(Instant::now() < deadline, "still Running without a monitor");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.state, ContainerState::Unknown, "{st:?}");
    assert!(e.rt.recover_lost_monitor(&s.id).unwrap());
    assert!(!e.rt.recover_lost_monitor(&s.id).unwrap(), "recorded twice");
    let st = e.rt.container_status(&s.id).unwrap();
    assert_eq!(
        (st.state, st.exit_code),
        (ContainerState::Exited, Some(137))
    );
    assert_eq!(
        st.message.as_deref(),
        Some("the container's monitor died; the container was killed")
    );
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('Z'),
        "the container's init still runs: {stat}"
    );
    assert!(!e.root.join("runtime").join(&s.id).exists());
    e.rt.remove_container(&s.id).unwrap();
}

fn audit_profile(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["echo", "audited"]);
    s.seccomp = Some(profile("audit.json"));
    assert_eq!(e.run(&s).exit_code, Some(0));
    assert_eq!(e.log(&s), [("stdout".into(), "F".into(), "audited".into())]);
    e.rt.remove_container(&s.id).unwrap();
}

/// The tutorial's fine-grained profile with busybox `sleep 3600`.
/// Measured: under crun the container starts and `sleep` exits 0 at once
/// (clock_nanosleep is not in the list; the golden record shows the same
/// "Completed"); under runc the init process fails after the filter is
/// installed (its `/proc/self/fd` check needs `fstatfs`) and exits 1 with
/// "ensure /proc/self/fd is on procfs: operation not permitted" on stderr.
fn fine_grained_profile(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["sleep", "3600"]);
    s.seccomp = Some(profile("fine-grained.json"));
    s.process.no_new_privileges = true;
    e.rt.create_container(&s).expect("create");
    e.rt.start_container(&s.id).expect("start");
    let st = e.wait_exit(&s.id);
    let log = e.log(&s);
    eprintln!("{kind:?} fine-grained: exit {:?} log {log:?}", st.exit_code);
    match kind {
        RuntimeKind::Crun => {
            assert_eq!(st.exit_code, Some(0));
            assert!(log.is_empty(), "{log:?}");
        }
        RuntimeKind::Runc => {
            assert_eq!(st.exit_code, Some(1));
            assert_eq!(
                log,
                [(
                    "stderr".into(),
                    "F".into(),
                    "ensure /proc/self/fd is on procfs: operation not permitted".into()
                )]
            );
        }
    }
    e.rt.remove_container(&s.id).unwrap();
}

fn runtime_default_blocks_unshare(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec(
        "pod1",
        &["sh", "-c", "echo works; unshare -U true; echo rc=$?"],
    );
    s.seccomp = Some(runtime_default());
    s.process.no_new_privileges = true;
    assert_eq!(e.run(&s).exit_code, Some(0));
    let log = e.log(&s);
    assert!(
        log.contains(&("stdout".into(), "F".into(), "works".into())),
        "{log:?}"
    );
    assert!(
        log.contains(&("stdout".into(), "F".into(), "rc=1".into())),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.0 == "stderr" && l.2.contains("Operation not permitted")),
        "{log:?}"
    );
    e.rt.remove_container(&s.id).unwrap();
    // Without the profile the same command is allowed (the check can fail).
    let s = e.spec("pod1", &["sh", "-c", "unshare -U true; echo rc=$?"]);
    e.run(&s);
    assert!(
        e.log(&s)
            .contains(&("stdout".into(), "F".into(), "rc=0".into())),
        "{:?}",
        e.log(&s)
    );
    e.rt.remove_container(&s.id).unwrap();
}

fn seccomp_status(e: &Env, id: &str) -> String {
    let (out, code) = e.exec_output(id, &["grep", "^Seccomp:", "/proc/self/status"]);
    assert_eq!(code, 0);
    out.split_whitespace().nth(1).unwrap_or("").to_string()
}

fn exec_gets_container_seccomp(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["sleep", "1000"]);
    s.seccomp = Some(runtime_default());
    s.process.no_new_privileges = true;
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    assert_eq!(seccomp_status(&e, &s.id), "2");
    let (_, code) = e.exec_output(&s.id, &["sh", "-c", "exit 5"]);
    assert_eq!(code, 5);
    let (_, code) = e.exec_output(&s.id, &["unshare", "-U", "true"]);
    assert_ne!(code, 0, "unshare must be blocked in exec'd processes");
    let (out, _) = e.exec_output(&s.id, &["sh", "-c", "echo $FOO"]);
    assert_eq!(out, "\n");
    let mut p =
        e.rt.exec(
            &s.id,
            &ExecSpec {
                args: vec!["sh".into(), "-c".into(), "echo $FOO".into()],
                env: vec!["FOO=bar".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let mut out = String::new();
    p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "bar\n");
    assert!(p.child.wait().unwrap().success());
    // stdin is a pipe to the exec'd process.
    let mut p =
        e.rt.exec(
            &s.id,
            &ExecSpec {
                args: vec!["tr".into(), "a-z".into(), "A-Z".into()],
                stdin: true,
                ..Default::default()
            },
        )
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = p.stdin.take().unwrap();
        stdin.write_all(b"xyz\n").unwrap();
    }
    let mut out = String::new();
    p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "XYZ\n");
    assert!(p.child.wait().unwrap().success());
    e.cleanup(&s.id);
    // An unconfined container's exec has no filter.
    let s = e.spec("pod1", &["sleep", "1000"]);
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    assert_eq!(seccomp_status(&e, &s.id), "0");
    e.cleanup(&s.id);
}

fn tty_exec(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["sleep", "1000"]);
    s.seccomp = Some(runtime_default());
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    let mut p =
        e.rt.exec(
            &s.id,
            &ExecSpec {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "sleep 0.5; tty; stty size; grep ^Seccomp: /proc/self/status; exit 7".into(),
                ],
                tty: true,
                ..Default::default()
            },
        )
        .expect("tty exec");
    assert!(p.stderr.is_none());
    use std::os::fd::AsFd;
    resize_pty(p.pty.as_ref().unwrap().as_fd(), 100, 30).unwrap();
    let mut out = Vec::new();
    let mut stdout = p.stdout.take().unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("30 100"), "{out:?}");
    assert!(out.contains("Seccomp:\t2"), "{out:?}");
    assert_eq!(p.child.wait().unwrap().code(), Some(7));
    e.cleanup(&s.id);
}

fn tty_container(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["sh", "-c", "tty; echo done"]);
    s.process.tty = true;
    assert_eq!(e.run(&s).exit_code, Some(0));
    let log = e.log(&s);
    assert!(log.iter().any(|l| l.2.contains("/dev/pts/")), "{log:?}");
    assert!(log.iter().any(|l| l.2.contains("done")), "{log:?}");
    e.rt.remove_container(&s.id).unwrap();
    // TTY with stdin: the FIFO feeds the terminal.
    let mut s = e.spec("pod1", &["sh", "-c", "read line; echo got-$line"]);
    s.process.tty = true;
    s.process.stdin = true;
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    let fifo = e.root.join("containers").join(&s.id).join("stdin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(b"abc\n")
        })
        .unwrap();
    assert_eq!(e.wait_exit(&s.id).exit_code, Some(0));
    let log = e.log(&s);
    assert!(log.iter().any(|l| l.2.contains("got-abc")), "{log:?}");
    e.rt.remove_container(&s.id).unwrap();
}

fn stop_with_grace(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let s = e.spec(
        "pod1",
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    std::thread::sleep(Duration::from_millis(300));
    e.rt.stop_container(&s.id, Duration::from_secs(30)).unwrap();
    let st = e.rt.container_status(&s.id).unwrap();
    assert_eq!((st.state, st.exit_code), (ContainerState::Exited, Some(0)));
    assert!(e
        .log(&s)
        .contains(&("stdout".into(), "F".into(), "got TERM".into())));
    e.rt.stop_container(&s.id, Duration::from_secs(1)).unwrap(); // idempotent
    e.rt.remove_container(&s.id).unwrap();
    e.rt.remove_container(&s.id).unwrap(); // idempotent
                                           // PID 1 ignores SIGTERM without a handler: SIGKILL after the grace period.
    let s = e.spec("pod1", &["sleep", "1000"]);
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    e.rt.stop_container(&s.id, Duration::from_millis(500))
        .unwrap();
    assert_eq!(e.rt.container_status(&s.id).unwrap().exit_code, Some(137));
    e.rt.remove_container(&s.id).unwrap();
}

fn adoption_after_restart(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let s = e.spec("pod1", &["sh", "-c", "echo before; sleep 1000"]);
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    let rt2 = Runtime::new(config(&e.root, kind)).unwrap();
    let list = rt2.list_containers().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].pod_uid.as_str()),
        (s.id.as_str(), "pod1")
    );
    assert_eq!(list[0].log_path, s.log_path);
    let st = rt2.container_status(&s.id).unwrap();
    assert_eq!(st.state, ContainerState::Running);
    let pid: i32 =
        std::fs::read_to_string(e.root.join("containers").join(&s.id).join("monitor.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    // SAFETY: signal 0 only checks for existence.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "monitor alive");
    // Detached: not our child, leader of its own session.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_ne!(
        fields[1],
        std::process::id().to_string(),
        "monitor's parent"
    );
    assert_eq!(fields[3], pid.to_string(), "monitor's session");
    assert!(matches!(
        rt2.container_status(&"f".repeat(64)),
        Err(RuntimeError::NotFound(_))
    ));
    assert!(matches!(
        rt2.container_status("../x"),
        Err(RuntimeError::Invalid(_))
    ));
    assert_eq!(rt2.list_sandboxes().unwrap().len(), 1);
    rt2.stop_container(&s.id, Duration::from_millis(200))
        .unwrap();
    let st = rt2.container_status(&s.id).unwrap();
    assert_eq!(
        (st.state, st.exit_code),
        (ContainerState::Exited, Some(137))
    );
    assert!(e
        .log(&s)
        .contains(&("stdout".into(), "F".into(), "before".into())));
    rt2.remove_container(&s.id).unwrap();
}

fn sandbox_shared_and_removal_clean(kind: RuntimeKind) {
    let e = env(kind);
    let sb = e.sandbox("pod1");
    assert_eq!(e.sandbox("pod1"), sb, "idempotent");
    let mut ids = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let s = e.spec("pod1", &["sleep", "1000"]);
        e.rt.create_container(&s).unwrap();
        e.rt.start_container(&s.id).unwrap();
        e.wait_running(&s.id);
        let (ns, _) = e.exec_output(&s.id, &["readlink", "/proc/self/ns/net"]);
        let (host, _) = e.exec_output(&s.id, &["hostname"]);
        let (etc, _) = e.exec_output(&s.id, &["cat", "/etc/hostname"]);
        let (lo, _) = e.exec_output(&s.id, &["cat", "/sys/class/net/lo/operstate"]);
        seen.push((ns, host, etc, lo));
        ids.push(s.id);
    }
    assert_eq!(seen[0], seen[1]);
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(&sb.netns).unwrap().ino();
    assert_eq!(seen[0].0.trim(), format!("net:[{inode}]"));
    assert_eq!(seen[0].1.trim(), "host-pod1");
    assert_eq!(seen[0].2.trim(), "host-pod1");
    assert_ne!(seen[0].3.trim(), "down");
    let root = e.root.to_string_lossy().to_string();
    for id in &ids {
        e.cleanup(id);
    }
    e.rt.remove_sandbox("pod1").unwrap();
    e.rt.remove_sandbox("pod1").unwrap();
    assert!(e.rt.list_sandboxes().unwrap().is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "mounts left: {mounts}");
    let leftovers: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|d| {
            d.path()
                .join("armorlet-test")
                .join(e.root.file_name().unwrap())
                .join("podpod1")
        })
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(leftovers.is_empty(), "cgroups left: {leftovers:?}");
}

fn privileged_and_readonly(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["sh", "-c", "grep ^CapEff: /proc/self/status; grep ' /sys ' /proc/self/mountinfo | grep -c rw,; head -c 5 /proc/timer_list | wc -c; ls /dev | grep -c ."]);
    s.privileged = true;
    assert_eq!(e.run(&s).exit_code, Some(0));
    let log: Vec<String> = e.log(&s).into_iter().map(|l| l.2).collect();
    // Every capability of our own bounding set (this host lacks CAP_SYS_RESOURCE).
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = host
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(log[0], format!("CapEff:\t{bnd}"), "{log:?}");
    assert_eq!(log[1], "1", "/sys is read-write: {log:?}");
    assert_eq!(log[2], "5", "no masked paths: {log:?}");
    assert!(log[3].parse::<u32>().unwrap() > 20, "host devices: {log:?}");
    e.rt.remove_container(&s.id).unwrap();

    let mut s = e.spec("pod1", &["sh", "-c", "touch /x 2>/dev/null && echo wrote; grep ^CapEff: /proc/self/status; head -c 5 /proc/timer_list | wc -c; echo done"]);
    s.readonly_rootfs = true;
    assert_eq!(e.run(&s).exit_code, Some(0));
    let log: Vec<String> = e.log(&s).into_iter().map(|l| l.2).collect();
    assert_eq!(log, ["CapEff:\t00000000a80425fb", "0", "done"]);
    e.rt.remove_container(&s.id).unwrap();
}

fn oom_killed(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec(
        "pod1",
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    s.resources.memory_limit = Some(32 * 1024 * 1024);
    let st = e.run(&s);
    assert_eq!(
        st.reason.as_deref(),
        Some("OOMKilled"),
        "{st:?} {:?}",
        e.log(&s)
    );
    e.rt.remove_container(&s.id).unwrap();
}

fn landlock_helper_prefix(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let helper = e.root.join("helper.sh");
    std::fs::write(
        &helper,
        "#!/bin/sh\nplan=$1; shift; shift\necho \"confined by $(cat $plan)\"\nexec \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plan = e.root.join("plan");
    std::fs::write(&plan, "PLAN").unwrap();
    let mut s = e.spec("pod1", &["sh", "-c", "echo main; sleep 1000"]);
    s.landlock = Some(LandlockLaunch { helper, plan });
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    e.wait_running(&s.id);
    let (out, code) = e.exec_output(&s.id, &["echo", "exec"]);
    assert_eq!((out.as_str(), code), ("confined by PLAN\nexec\n", 0));
    let (_, code) = e.exec_output(&s.id, &["sh", "-c", "echo x > /.armorlet/plan"]);
    assert_ne!(code, 0, "the plan is read-only");
    e.cleanup(&s.id);
    let log: Vec<String> = e.log(&s).into_iter().map(|l| l.2).collect();
    assert_eq!(log, ["confined by PLAN", "main"]);
}

fn stdin_fifo(kind: RuntimeKind) {
    let e = env(kind);
    e.sandbox("pod1");
    let mut s = e.spec("pod1", &["sh", "-c", "read line; echo got $line"]);
    s.process.stdin = true;
    e.rt.create_container(&s).unwrap();
    e.rt.start_container(&s.id).unwrap();
    let fifo = e.root.join("containers").join(&s.id).join("stdin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(b"hello\n")
        })
        .unwrap();
    assert_eq!(e.wait_exit(&s.id).exit_code, Some(0));
    assert_eq!(
        e.log(&s),
        [("stdout".into(), "F".into(), "got hello".into())]
    );
    e.rt.remove_container(&s.id).unwrap();
}

macro_rules! for_runtimes {
    ($($name:ident),* $(,)?) => {
        mod crun {
            $( #[test] fn $name() { super::$name(armorlet_runtime::RuntimeKind::Crun) } )*
        }
        mod runc {
            $( #[test] fn $name() { super::$name(armorlet_runtime::RuntimeKind::Runc) } )*
        }
    };
}

for_runtimes!(
    dead_monitor_is_recovered,
    output_and_exit_codes,
    violation_profile,
    audit_profile,
    fine_grained_profile,
    runtime_default_blocks_unshare,
    exec_gets_container_seccomp,
    tty_exec,
    tty_container,
    stop_with_grace,
    adoption_after_restart,
    sandbox_shared_and_removal_clean,
    privileged_and_readonly,
    oom_killed,
    landlock_helper_prefix,
    stdin_fifo,
);

/// The runtimes' own `features` answers: runc 1.1 reports AppArmor compiled in; crun 1.8
/// has no `features` command (it came in crun 1.9), so the node lets crun decide: it applies
/// the profile and fails the container when the kernel cannot.
#[test]
fn apparmor_support_from_the_runtime_features() {
    assert_eq!(env(RuntimeKind::Runc).rt.apparmor_support(), Some(true));
    assert_eq!(env(RuntimeKind::Crun).rt.apparmor_support(), None);
}
