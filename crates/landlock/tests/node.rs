//! The node side: host detection with a fake securityfs, admission inputs,
//! the registry, plan writing, the tutorial's deny-write profile under real
//! Landlock, and the kernel backend's generated profile against
//! `apparmor_parser -QK`.

use std::path::PathBuf;

use armorlet_confinement::{admit_apparmor, AppArmorAdmission, EmulatedVersion, ResolvedAppArmor};
use armorlet_landlock::plan::{apply, Plan};
use armorlet_landlock::{
    host, kernel, AppArmorConfig, AppArmorLaunch, AppArmorNode, BackendChoice, BackendKind,
    LandlockError,
};

const DENY_WRITE: &str = "#include <tunables/global>

profile k8s-apparmor-example-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>

  file,

  # Deny all file writes.
  deny /** w,
}
";

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("params")).expect("mkdir");
        Fixture { _dir: dir, root }
    }

    fn cfg(&self, mode: BackendChoice, approximate: bool) -> AppArmorConfig {
        let helper = self.root.join("helper");
        std::fs::write(&helper, "").expect("fake helper");
        let mut c = AppArmorConfig::new(self.root.join("registry"), helper);
        c.mode = mode;
        c.apparmor_fs = self.root.join("securityfs/apparmor");
        c.module_params = self.root.join("params");
        c.approximate = approximate;
        c
    }

    fn fake_lsm(&self, profiles: &str) {
        let fs = self.root.join("securityfs/apparmor");
        std::fs::create_dir_all(&fs).expect("mkdir");
        std::fs::write(fs.join("profiles"), profiles).expect("write");
        std::fs::write(self.root.join("params/enabled"), "Y\n").expect("write");
    }

    fn profile_file(&self) -> PathBuf {
        let p = self.root.join("deny-write");
        std::fs::write(&p, DENY_WRITE).expect("write");
        p
    }
}

fn pod(profile: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": "hello-apparmor", "annotations": {
            "container.apparmor.security.beta.kubernetes.io/hello": profile}},
        "spec": {"containers": [{"name": "hello"}]}
    })
}

#[test]
fn kernel_backend_reads_the_fake_securityfs() {
    let f = Fixture::new();
    f.fake_lsm("k8s-apparmor-example-deny-write (enforce)\ndocker-default (enforce)\n");
    let node = AppArmorNode::new(f.cfg(BackendChoice::Auto, false)).expect("node");
    assert_eq!(node.backend(), BackendKind::Kernel);
    let h = node.host();
    assert!(h.enabled);
    assert!(h.loaded.contains("k8s-apparmor-example-deny-write"));
    let v22 = EmulatedVersion::new(22).expect("version");
    assert_eq!(
        admit_apparmor(&pod("localhost/k8s-apparmor-example-allow-write"), &h, v22),
        AppArmorAdmission::Block {
            message: "Cannot enforce AppArmor: profile \"k8s-apparmor-example-allow-write\" is not loaded".into()
        }
    );
    assert_eq!(
        admit_apparmor(&pod("localhost/k8s-apparmor-example-deny-write"), &h, v22),
        AppArmorAdmission::Admit
    );
    assert_eq!(node.ready_suffix().as_deref(), None, "1.32 has no suffix");
    let mut old = f.cfg(BackendChoice::Auto, false);
    old.version = v22;
    let node22 = AppArmorNode::new(old).expect("node");
    assert_eq!(node22.ready_suffix().as_deref(), Some(". AppArmor enabled"));
    let launch = node
        .launch(
            &ResolvedAppArmor::Localhost {
                name: "k8s-apparmor-example-deny-write".into(),
            },
            None,
            &f.root,
        )
        .expect("launch");
    assert_eq!(
        launch,
        AppArmorLaunch::Kernel {
            profile: "k8s-apparmor-example-deny-write".into()
        }
    );
}

#[test]
fn kernel_backend_refused_without_the_lsm_and_none_when_off() {
    let f = Fixture::new();
    let err = AppArmorNode::new(f.cfg(BackendChoice::Kernel, false)).expect_err("no LSM");
    assert!(
        err.to_string()
            .contains("AppArmor is not enabled on the host"),
        "{err}"
    );
    let off = AppArmorNode::new(f.cfg(BackendChoice::Off, false)).expect("node");
    assert_eq!(off.backend(), BackendKind::None);
    let h = off.host();
    assert!(!h.enabled);
    assert_eq!(
        admit_apparmor(&pod("localhost/x"), &h, EmulatedVersion::DEFAULT),
        AppArmorAdmission::Reject {
            message: "Cannot enforce AppArmor: AppArmor is not enabled on the host".into()
        }
    );
}

/// Fail closed: a runtime built without AppArmor would start the container with the profile
/// silently ignored, so the kernel backend is refused and `auto` falls back to Landlock (or to
/// no AppArmor, where pods asking for a profile are rejected).
#[test]
fn kernel_backend_refused_when_the_runtime_lacks_apparmor() {
    let f = Fixture::new();
    f.fake_lsm("k8s-apparmor-example-deny-write (enforce)\n");
    let mut cfg = f.cfg(BackendChoice::Kernel, false);
    cfg.runtime_apparmor = Some(false);
    let err = AppArmorNode::new(cfg.clone()).expect_err("runtime without AppArmor");
    assert!(
        err.to_string()
            .contains("the OCI runtime does not support AppArmor"),
        "{err}"
    );
    cfg.runtime_apparmor = None;
    assert_eq!(
        AppArmorNode::new(cfg.clone())
            .expect("unknown support: the runtime decides")
            .backend(),
        BackendKind::Kernel
    );
    cfg.mode = BackendChoice::Auto;
    cfg.runtime_apparmor = Some(false);
    let expected = if host::landlock_abi() >= 6 {
        BackendKind::Landlock
    } else {
        BackendKind::None
    };
    assert_eq!(
        AppArmorNode::new(cfg.clone()).expect("auto").backend(),
        expected
    );
    cfg.helper = f.root.join("missing-helper");
    let none = AppArmorNode::new(cfg).expect("auto without the helper");
    assert_eq!(none.backend(), BackendKind::None);
    assert_eq!(
        admit_apparmor(
            &pod("localhost/k8s-apparmor-example-deny-write"),
            &none.host(),
            EmulatedVersion::DEFAULT
        ),
        AppArmorAdmission::Reject {
            message: "Cannot enforce AppArmor: AppArmor is not enabled on the host".into()
        }
    );
}

#[test]
fn auto_without_the_helper_has_no_apparmor() {
    let f = Fixture::new();
    let mut cfg = f.cfg(BackendChoice::Auto, false);
    cfg.helper = f.root.join("missing-helper");
    let node = AppArmorNode::new(cfg.clone()).expect("node");
    assert_eq!(node.backend(), BackendKind::None);
    assert!(!node.host().enabled);
    cfg.mode = BackendChoice::Landlock;
    let explicit = AppArmorNode::new(cfg).expect("node");
    let err = explicit
        .start()
        .expect_err("explicit landlock needs the helper");
    assert!(err.to_string().contains("confine helper"), "{err}");
}

#[test]
fn landlock_backend_registry_admission_and_plan() {
    assert!(
        host::landlock_abi() >= 6,
        "Landlock ABI 6+ required on this machine"
    );
    let f = Fixture::new();
    let node = AppArmorNode::new(f.cfg(BackendChoice::Auto, false)).expect("node");
    assert_eq!(
        node.backend(),
        BackendKind::Landlock,
        "no LSM in the fake securityfs: auto picks Landlock"
    );
    let file = f.profile_file();
    // Exactly enforcing the tutorial profile is impossible (abstractions/base
    // lets it probe other processes with signal 0): refused without approximate.
    let err = node
        .registry()
        .load_file(&file, false)
        .expect_err("refused");
    assert!(matches!(err, LandlockError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("abstractions/base"), "{err}");
    let loaded = node.registry().load_file(&file, true).expect("load");
    assert_eq!(loaded[0].name, "k8s-apparmor-example-deny-write");
    assert_eq!(
        std::fs::read_to_string(node.registry().profiles_path()).expect("profiles"),
        "k8s-apparmor-example-deny-write (enforce)\n"
    );
    let h = node.host();
    assert!(h.enabled && h.loaded.contains("k8s-apparmor-example-deny-write"));
    let dir = f.root.join("container");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let prof = ResolvedAppArmor::Localhost {
        name: "k8s-apparmor-example-deny-write".into(),
    };
    let AppArmorLaunch::Landlock(files) = node.launch(&prof, None, &dir).expect("launch") else {
        panic!("expected a Landlock launch");
    };
    assert_eq!(files.helper, f.root.join("helper"));
    assert_eq!(files.approximations.len(), 1);
    let plan = Plan::read(&files.plan).expect("plan");
    assert_eq!(
        plan.capabilities.as_deref(),
        Some(&[][..]),
        "the profile grants no capability"
    );
    let missing = ResolvedAppArmor::Localhost {
        name: "nope".into(),
    };
    assert!(matches!(
        node.launch(&missing, None, &dir),
        Err(LandlockError::NotLoaded(_))
    ));
    assert!(node
        .registry()
        .unload("k8s-apparmor-example-deny-write")
        .expect("unload"));
    assert!(node.host().loaded.is_empty());
}

/// Forks, applies `plan`, runs `f`, returns its byte.
fn in_child(plan: &Plan, f: fn() -> u8) -> u8 {
    let mut fds = [0i32; 2];
    // SAFETY: pipe, fork; the child only applies the plan, does syscalls and _exit()s.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            let b = if apply(plan).is_ok() { f() } else { 255 };
            libc::write(fds[1], (&b as *const u8).cast(), 1);
            libc::_exit(0);
        }
        libc::close(fds[1]);
        let mut b = 0u8;
        let n = libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        libc::close(fds[0]);
        assert_eq!(n, 1, "child died");
        b
    }
}

#[test]
fn deny_write_profile_denies_writes_and_allows_reads_under_real_landlock() {
    assert!(
        host::landlock_abi() >= 6,
        "Landlock ABI 6+ required on this machine"
    );
    let f = Fixture::new();
    let reg = armorlet_landlock::Registry::open(&f.root.join("reg")).expect("registry");
    reg.load_file(&f.profile_file(), true).expect("load");
    let plan = reg
        .translation("k8s-apparmor-example-deny-write", false)
        .expect("translation")
        .plan;
    let write = in_child(&plan, || {
        let e = std::fs::File::create("/tmp/armorlet-deny-write-test").expect_err("must be denied");
        (e.kind() == std::io::ErrorKind::PermissionDenied) as u8
    });
    assert_eq!(write, 1, "touch /tmp/test must fail with Permission denied");
    let read = in_child(&plan, || {
        std::fs::read_to_string("/proc/1/status").is_ok() as u8
    });
    assert_eq!(read, 1, "reads must work");
    let socket = in_child(&plan, || {
        std::net::TcpListener::bind("127.0.0.1:0").is_err() as u8
    });
    assert_eq!(socket, 1, "the profile grants no inet sockets");
}

#[test]
fn runtime_default_profile_is_accepted_by_apparmor_parser() {
    kernel::parser_check(&kernel::runtime_default_profile()).expect("apparmor_parser -QK");
    let t = kernel::runtime_default_translation().expect("translation");
    assert!(
        t.plan.sockets.is_some(),
        "AF_ALG is denied, so sockets are filtered"
    );
    assert!(
        !t.approximations.is_empty(),
        "its /proc globs are tightened"
    );
}

#[test]
fn profiles_dir_loads_each_file_and_reports_failures() {
    let f = Fixture::new();
    let dir = f.root.join("profiles.d");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("a-exact"),
        "profile exact-one {\n  /data/** r,\n}\n",
    )
    .expect("write");
    std::fs::write(dir.join("b-broken"), "profile broken {\n  /data/** rr q,\n").expect("write");
    std::fs::write(dir.join(".hidden"), "profile hidden {\n}\n").expect("write");
    let node = AppArmorNode::new(f.cfg(BackendChoice::Landlock, false)).expect("node");
    let results = node.load_dir(&dir).expect("load_dir");
    let names: Vec<String> = results
        .iter()
        .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["a-exact", "b-broken"],
        "sorted, hidden files skipped"
    );
    assert_eq!(
        results[0].1.as_ref().expect("a-exact loads"),
        &vec!["exact-one".to_string()]
    );
    let err = results[1].1.as_ref().expect_err("b-broken is refused");
    assert!(err.to_string().contains("b-broken"), "{err}");
    assert_eq!(
        node.loaded_profiles().into_iter().collect::<Vec<_>>(),
        [("exact-one".to_string(), "enforce".to_string())]
    );
    let off = AppArmorNode::new(f.cfg(BackendChoice::Off, false)).expect("node");
    assert!(off.load_file(&dir.join("a-exact")).is_err());
}
