//! The tutorials in `../shared/seeds/`, step by step, as a new user runs them: the commands
//! of the documents (run by bash, so `$'…'` jsonpaths work verbatim) against `armorlet up`,
//! with the manifests and profiles of `tests/tutorials/` (copied from the documents). One line
//! per step (`PASS`/`FAIL`), then `N passed, N failed`; `scripts/test` runs this binary with
//! its output shown.
//!
//! Substitutions (the README's table): `ssh NODE 'sudo apparmor_parser -q'` → `armorlet
//! apparmor load`; the kernel's `/proc/1/attr/current` cannot name a Landlock-enforced profile.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// One command's result.
struct Ran {
    code: i32,
    out: String,
    err: String,
}

/// Runs steps, prints a line per step, counts.
struct Tutorial<'a> {
    name: &'static str,
    cluster: &'a Cluster,
    dir: PathBuf,
    passed: u32,
    failed: Vec<String>,
}

impl<'a> Tutorial<'a> {
    fn new(name: &'static str, cluster: &'a Cluster) -> Self {
        Tutorial {
            name,
            cluster,
            dir: repo().join("tests/tutorials").join(name),
            passed: 0,
            failed: Vec::new(),
        }
    }

    /// Runs `script` with bash in the tutorial's directory, kubectl pointed at the cluster
    /// and `armorlet` on PATH.
    fn sh(&self, script: &str) -> Ran {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_armorlet"));
        let path = format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(&self.dir)
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .env("HOME", self.cluster.dir.path())
            .env("PATH", path)
            .env("ARMORLET_DATA_DIR", self.cluster.data())
            .output()
            .expect("run bash");
        Ran {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A step: `script` once, `check` its result.
    fn step(&mut self, name: &str, script: &str, check: impl Fn(&Ran) -> Result<(), String>) {
        let ran = self.sh(script);
        self.record(name, check(&ran));
    }

    /// A step a user waits for: `script` until `check` passes (or the patience runs out).
    fn eventually(&mut self, name: &str, script: &str, check: impl Fn(&Ran) -> Result<(), String>) {
        let start = Instant::now();
        let result = loop {
            let r = check(&self.sh(script));
            if r.is_ok() || start.elapsed() > PATIENCE {
                break r;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        };
        self.record(name, result);
    }

    fn record(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                println!("PASS {}: {name}", self.name);
                self.passed += 1;
            }
            Err(why) => {
                println!("FAIL {}: {name}: {why}", self.name);
                self.failed.push(name.to_owned());
            }
        }
    }

    fn finish(self) {
        println!(
            "{}: {} passed, {} failed",
            self.name,
            self.passed,
            self.failed.len()
        );
        assert!(self.failed.is_empty(), "failed steps: {:?}", self.failed);
    }
}

/// `out` equals `want` exactly.
fn stdout_is(want: String) -> impl Fn(&Ran) -> Result<(), String> {
    move |r| {
        (r.code == 0 && r.out == want).then_some(()).ok_or_else(|| {
            format!(
                "exit {}, stdout {:?}, stderr {:?}, want {want:?}",
                r.code, r.out, r.err
            )
        })
    }
}

/// Exit `code` and every `needle` in stdout+stderr.
fn shows(code: i32, needles: &'static [&'static str]) -> impl Fn(&Ran) -> Result<(), String> {
    move |r| {
        let all = format!("{}{}", r.out, r.err);
        let missing: Vec<&&str> = needles.iter().filter(|n| !all.contains(**n)).collect();
        (r.code == code && missing.is_empty())
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "exit {} (want {code}), missing {missing:?} in {all:?}",
                    r.code
                )
            })
    }
}

/// The AppArmor tutorial at its own release (annotations, the kubelet's soft admission).
#[test]
fn tutorial_suite_apparmor() {
    let helper = confine_helper();
    let c = Cluster::with_args(
        "crun",
        &[
            "--emulated-version",
            "1.22",
            "--apparmor",
            "landlock",
            "--confine-helper",
            helper.to_str().unwrap(),
        ],
    );
    let node = hostname();
    let mut t = Tutorial::new("apparmor", &c);
    t.step(
        "kubelet version of the nodes",
        r#"kubectl get nodes -o=jsonpath=$'{range .items[*]}{@.metadata.name}: {@.status.nodeInfo.kubeletVersion}\n{end}'"#,
        stdout_is(format!("{node}: v1.22.0\n")),
    );
    t.step(
        "node ready condition says AppArmor is enabled",
        r#"kubectl get nodes -o=jsonpath=$'{range .items[*]}{@.metadata.name}: {.status.conditions[?(@.reason=="KubeletReady")].message}\n{end}'"#,
        stdout_is(format!("{node}: kubelet is posting ready status. AppArmor enabled\n")),
    );
    t.step(
        "load the deny-write profile on all nodes",
        "armorlet apparmor load --approximate --data-dir \"$ARMORLET_DATA_DIR\" k8s-apparmor-example-deny-write",
        shows(0, &["k8s-apparmor-example-deny-write: loaded (Landlock"]),
    );
    t.step(
        "kubectl create -f ./hello-apparmor.yaml",
        "kubectl create -f ./hello-apparmor.yaml",
        stdout_is("pod/hello-apparmor created\n".into()),
    );
    t.eventually(
        "the pod events show the container created and started",
        "kubectl get events | grep hello-apparmor",
        shows(
            0,
            &[
                "Normal    Scheduled   pod/hello-apparmor",
                "Normal    Created     pod/hello-apparmor   Created container hello",
                "Normal    Started     pod/hello-apparmor   Started container hello",
            ],
        ),
    );
    t.step(
        "/proc/1/attr/current (no AppArmor LSM: Landlock cannot show the profile there)",
        "kubectl exec hello-apparmor -- cat /proc/1/attr/current",
        shows(1, &["cat: read error: Invalid argument"]),
    );
    t.step(
        "violating the profile: kubectl exec hello-apparmor -- touch /tmp/test",
        "kubectl exec hello-apparmor -- touch /tmp/test",
        shows(
            1,
            &[
                "touch: /tmp/test: Permission denied",
                "command terminated with exit code 1",
            ],
        ),
    );
    t.step(
        "a profile that is not loaded: create hello-apparmor-2",
        "kubectl create -f /dev/stdin < hello-apparmor-2.yaml",
        stdout_is("pod/hello-apparmor-2 created\n".into()),
    );
    t.eventually(
        "kubectl describe pod hello-apparmor-2",
        "kubectl describe pod hello-apparmor-2",
        shows(
            0,
            &[
                "Status:           Pending\n",
                "Reason:           AppArmor\n",
                "Message:          Pod Cannot enforce AppArmor: profile \"k8s-apparmor-example-allow-write\" is not loaded\n",
                "    State:          Waiting\n      Reason:       Blocked\n",
                "Warning  AppArmor",
                "Cannot enforce AppArmor: profile \"k8s-apparmor-example-allow-write\" is not loaded",
            ],
        ),
    );
    t.step(
        "clean up",
        "kubectl delete pod hello-apparmor hello-apparmor-2 --grace-period=1",
        shows(
            0,
            &[
                "pod \"hello-apparmor\" deleted",
                "pod \"hello-apparmor-2\" deleted",
            ],
        ),
    );
    t.finish();
}
