//! The tutorials in `../shared/seeds/`, step by step, as a new user runs them: the commands
//! of the documents (run by bash, so `$'…'` jsonpaths work verbatim) against `armorlet up`,
//! with the manifests and profiles of `tests/tutorials/` (copied from the documents). One line
//! per step (`PASS`/`FAIL`), then `N passed, N failed`; `scripts/test` runs this binary with
//! its output shown.
//!
//! Substitutions (the README's table): `kind create cluster --config=kind.yaml` → `armorlet up
//! --config=kind.yaml`; `docker exec NODE` / `ssh NODE` → `armorlet node exec NODE --`;
//! `sudo apparmor_parser -q` → `armorlet apparmor load -q`; `tail -f /var/log/syslog` →
//! `armorlet audit -f`; the kernel's `/proc/1/attr/current` cannot name a Landlock-enforced
//! profile.

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

/// Runs steps, prints a line per step, counts, and keeps a transcript: the walkthrough in
/// `docs/tutorials/<file>.md` is a transcript of a run (`scripts/tutorial-docs` copies them
/// from `target/tutorials/`; `scripts/tutorial-docs --check` compares their steps and commands).
struct Tutorial<'a> {
    name: &'static str,
    file: &'static str,
    cluster: &'a Cluster,
    dir: PathBuf,
    passed: u32,
    failed: Vec<String>,
    transcript: String,
}

impl<'a> Tutorial<'a> {
    /// `name` is the directory under `tests/tutorials/`; `file` names the transcript, which
    /// starts with `intro` (markdown).
    fn new(name: &'static str, file: &'static str, cluster: &'a Cluster, intro: &str) -> Self {
        Tutorial {
            name,
            file,
            cluster,
            dir: repo().join("tests/tutorials").join(name),
            passed: 0,
            failed: Vec::new(),
            transcript: format!("{}\n", intro.trim_end()),
        }
    }

    /// Runs the next steps in `sub`, a directory of the tutorial's (one set of manifests).
    fn cd(&mut self, sub: &str) {
        self.dir = repo().join("tests/tutorials").join(self.name).join(sub);
    }

    /// A heading (and optional text) in the transcript.
    fn section(&mut self, title: &str, text: &str) {
        self.transcript.push_str(&format!("\n## {title}\n"));
        if !text.is_empty() {
            self.transcript
                .push_str(&format!("\n{}\n", text.trim_end()));
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
        self.step_as(name, script, script, check);
    }

    /// A step whose transcript shows `shown` (what a user types) while `script` runs (the
    /// same command made checkable, e.g. reading only new log lines).
    fn step_as(
        &mut self,
        name: &str,
        shown: &str,
        script: &str,
        check: impl Fn(&Ran) -> Result<(), String>,
    ) {
        let ran = self.sh(script);
        self.record(name, shown, &ran, check(&ran));
    }

    /// A step a user waits for: `script` until `check` passes (or the patience runs out).
    fn eventually(&mut self, name: &str, script: &str, check: impl Fn(&Ran) -> Result<(), String>) {
        self.eventually_as(name, script, script, check);
    }

    /// [`Tutorial::eventually`] showing `shown` in the transcript (see [`Tutorial::step_as`]).
    fn eventually_as(
        &mut self,
        name: &str,
        shown: &str,
        script: &str,
        check: impl Fn(&Ran) -> Result<(), String>,
    ) {
        let start = Instant::now();
        let (ran, result) = loop {
            let ran = self.sh(script);
            let r = check(&ran);
            if r.is_ok() || start.elapsed() > PATIENCE {
                break (ran, r);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        };
        self.record(name, shown, &ran, result);
    }

    /// Runs `script` as preparation: not a tutorial step, not in the transcript; must succeed.
    fn quietly(&self, script: &str) {
        let ran = self.sh(script);
        assert_eq!(ran.code, 0, "{script}: {} {}", ran.out, ran.err);
    }

    fn record(&mut self, name: &str, shown: &str, ran: &Ran, result: Result<(), String>) {
        let mut output = format!("{}{}", ran.out, ran.err);
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        // A console session: `$ ` before the command, `> ` before its continuation lines.
        let command = shown.replace('\n', "\n> ");
        self.transcript.push_str(&format!(
            "\n### {name}\n\n```console\n$ {command}\n{output}```\n"
        ));
        if ran.code != 0 {
            self.transcript
                .push_str(&format!("\n(exit status {})\n", ran.code));
        }
        match result {
            Ok(()) => {
                println!("PASS {}: {name}", self.file);
                self.passed += 1;
            }
            Err(why) => {
                println!("FAIL {}: {name}: {why}", self.file);
                self.failed.push(name.to_owned());
            }
        }
    }

    fn finish(self) {
        println!(
            "{}: {} passed, {} failed",
            self.file,
            self.passed,
            self.failed.len()
        );
        let dir = repo().join("target/tutorials");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}.md", self.file)), &self.transcript).unwrap();
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

/// The tutorial's profile, as its `ssh ... apparmor_parser -q <<EOF` loop feeds it.
const DENY_WRITE: &str = "#include <tunables/global>

profile k8s-apparmor-example-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>

  file,

  # Deny all file writes.
  deny /** w,
}";

/// The AppArmor tutorial at its own release (annotations, the kubelet's soft admission), on
/// one node.
#[test]
fn tutorial_suite_apparmor() {
    apparmor_tutorial("apparmor", 1);
}

/// The same on three nodes (the document's cluster has three), with the profile loaded on all
/// of them; then the node-label variant: the profile on one node only, and a pod that selects
/// it.
#[test]
fn tutorial_suite_apparmor_three_nodes() {
    apparmor_tutorial("apparmor-3-nodes", 3);
}

fn apparmor_tutorial(file: &'static str, nodes: usize) {
    let helper = confine_helper();
    let names: Vec<String> = (1..=nodes)
        .map(|i| match i {
            1 => hostname(),
            i => format!("{}-{i}", hostname()),
        })
        .collect();
    let count = nodes.to_string();
    let c = Cluster::with_node_names(
        "crun",
        &[
            "--emulated-version",
            "1.22",
            "--apparmor",
            "landlock",
            "--confine-helper",
            helper.to_str().unwrap(),
            "--nodes",
            &count,
        ],
        &names,
    );
    let intro = format!(
        "# The AppArmor tutorial on armorlet{}\n\n\
         A run of \"Restrict a Container's Access to Resources with AppArmor\" (the Kubernetes\n\
         documentation's tutorial, v1.14-v1.22 era) on `armorlet up --emulated-version 1.22\n\
         --apparmor landlock --nodes {nodes}` on a kernel without the AppArmor LSM: Landlock\n\
         enforces the profiles. Generated by `scripts/tutorial-docs` from the tutorial suite\n\
         (`crates/armorlet/tests/tutorials.rs`); every output below is what that run printed.\n\
         Commands differ from the document's only as the README's substitution table says.",
        if nodes > 1 {
            format!(", {nodes} nodes")
        } else {
            String::new()
        }
    );
    let mut t = Tutorial::new("apparmor", file, &c, &intro);
    let each = |f: &dyn Fn(&str) -> String| names.iter().map(|n| f(n)).collect::<String>();
    t.section("Before you begin", "");
    t.step(
        "1. Kubernetes version is at least v1.4: the kubelet version of the nodes",
        r#"kubectl get nodes -o=jsonpath=$'{range .items[*]}{@.metadata.name}: {@.status.nodeInfo.kubeletVersion}\n{end}'"#,
        stdout_is(each(&|n| format!("{n}: v1.22.0\n"))),
    );
    let first = names[0].clone();
    t.step(
        "2. AppArmor kernel module is enabled? Not on this kernel (the file does not exist)",
        &format!("armorlet node exec {first} -- cat /sys/module/apparmor/parameters/enabled"),
        shows(
            1,
            &["cat: /sys/module/apparmor/parameters/enabled: No such file or directory"],
        ),
    );
    t.step(
        "2. ...which is why armorlet's nodes enforce profiles with Landlock (armorlet node check)",
        "armorlet node check",
        shows(0, &["APPARMOR MODULE", "not loaded", "Landlock"]),
    );
    t.step(
        "3. Container runtime supports AppArmor: the runtime of the nodes",
        r#"kubectl get nodes -o=jsonpath=$'{range .items[*]}{@.metadata.name}: {@.status.nodeInfo.containerRuntimeVersion}\n{end}'"#,
        move |r| {
            let lines: Vec<&str> = r.out.lines().collect();
            let ok = r.code == 0
                && lines.len() == nodes
                && lines.iter().all(|l| l.contains(": crun://"));
            ok.then_some(())
                .ok_or_else(|| format!("exit {}, {:?} {:?}", r.code, r.out, r.err))
        },
    );
    t.step(
        "node ready condition message",
        r#"kubectl get nodes -o=jsonpath=$'{range .items[*]}{@.metadata.name}: {.status.conditions[?(@.reason=="KubeletReady")].message}\n{end}'"#,
        stdout_is(each(&|n| {
            format!("{n}: kubelet is posting ready status. AppArmor enabled\n")
        })),
    );
    t.section(
        "Example",
        "The document loads the profile over SSH with `apparmor_parser -q`; here the same loop\n\
         loads it into each node's Landlock backend. `--approximate` is needed: the profile's\n\
         `#include <abstractions/base>` grants `signal (receive, send) set=(\"exists\")` to any\n\
         peer, and Landlock scopes signals to the container, so that rule is tightened (the\n\
         non-quiet output names it).",
    );
    t.step(
        "load the profile on all nodes",
        &format!(
            "NODES=($(kubectl get nodes -o=jsonpath='{{.items[*].metadata.name}}'))\n\
             for NODE in ${{NODES[*]}}; do armorlet apparmor load -q --approximate --node $NODE <<EOF\n\
             {DENY_WRITE}\n\
             EOF\n\
             done"
        ),
        stdout_is(String::new()),
    );
    t.eventually(
        "4. Profile is loaded: the node's profiles (ssh NODE \"sudo cat /sys/kernel/security/apparmor/profiles | sort\")",
        &format!(
            "armorlet node exec {first} -- sh -c \"cat /sys/kernel/security/apparmor/profiles | sort\""
        ),
        stdout_is("k8s-apparmor-example-deny-write (enforce)\n".into()),
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
        "kubectl get events | grep Created",
        "kubectl get events | grep Created",
        shows(0, &["Created container hello"]),
    );
    t.step(
        "/proc/1/attr/current (no AppArmor LSM: the kernel has no AppArmor label to show)",
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
        "reads still work",
        "kubectl exec hello-apparmor -- cat /etc/hostname",
        stdout_is("hello-apparmor\n".into()),
    );
    t.step(
        "a profile that is not loaded: create hello-apparmor-2",
        "kubectl create -f /dev/stdin <<EOF\n\
         apiVersion: v1\n\
         kind: Pod\n\
         metadata:\n  name: hello-apparmor-2\n  annotations:\n    \
         container.apparmor.security.beta.kubernetes.io/hello: localhost/k8s-apparmor-example-allow-write\n\
         spec:\n  containers:\n  - name: hello\n    image: busybox\n    \
         command: [ \"sh\", \"-c\", \"echo 'Hello AppArmor!' && sleep 1h\" ]\n\
         EOF",
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
    if nodes > 1 {
        node_label_variant(&mut t, &names);
    }
    t.finish();
}

/// "An alternative approach is to add a node label for each profile": armorlet's nodes label
/// themselves `apparmor.armorlet.io/<profile>=<mode>` for each loaded profile.
fn node_label_variant(t: &mut Tutorial, names: &[String]) {
    let last = names.last().unwrap().clone();
    t.section(
        "Setting up nodes with profiles: a node label per profile",
        "The profile stays on the last node only; the pod selects the node by its label.",
    );
    t.step(
        "unload the profile from every node but the last",
        "NODES=($(kubectl get nodes -o=jsonpath='{.items[*].metadata.name}'))\n\
         for NODE in ${NODES[@]:0:${#NODES[@]}-1}; do armorlet apparmor unload --node $NODE k8s-apparmor-example-deny-write; done",
        shows(0, &["k8s-apparmor-example-deny-write: unloaded"]),
    );
    let want = format!("{last}\n");
    t.eventually(
        "the nodes that have the profile",
        "kubectl get nodes -l apparmor.armorlet.io/k8s-apparmor-example-deny-write=enforce -o=jsonpath=$'{range .items[*]}{.metadata.name}\\n{end}'",
        stdout_is(want),
    );
    t.step(
        "kubectl create -f ./hello-apparmor-selector.yaml",
        "kubectl create -f ./hello-apparmor-selector.yaml",
        stdout_is("pod/hello-apparmor created\n".into()),
    );
    let on_last: &'static str = Box::leak(last.into_boxed_str());
    t.eventually(
        "the pod runs on the node with the profile",
        "kubectl get pod hello-apparmor -o=jsonpath=$'{.status.phase} {.spec.nodeName}\\n'",
        move |r| {
            (r.code == 0 && r.out == format!("Running {on_last}\n"))
                .then_some(())
                .ok_or_else(|| format!("exit {}, {:?} {:?}", r.code, r.out, r.err))
        },
    );
    t.step(
        "kubectl exec hello-apparmor -- touch /tmp/test",
        "kubectl exec hello-apparmor -- touch /tmp/test",
        shows(1, &["touch: /tmp/test: Permission denied"]),
    );
    t.step(
        "clean up",
        "kubectl delete pod hello-apparmor --grace-period=1",
        stdout_is("pod \"hello-apparmor\" deleted\n".into()),
    );
}

/// The AppArmor tutorial's steps at the default release (1.32): the annotations still work
/// (with the API server's deprecation warning), the `appArmorProfile` field does the same, and
/// a profile that is not loaded is no longer held back by the kubelet: the runtime fails the
/// container (`CreateContainerError`, naming the profile).
#[test]
fn tutorial_suite_apparmor_1_32() {
    let c = Cluster::landlock(&[]);
    let node = hostname();
    let intro = "# The AppArmor tutorial at Kubernetes 1.32 on armorlet\n\n\
         The AppArmor tutorial's steps on `armorlet up --apparmor landlock` at its default release\n\
         (1.32), where they differ from the tutorial's era: the annotation is deprecated (but still\n\
         works), the `securityContext.appArmorProfile` field replaces it, the node's Ready message no\n\
         longer mentions AppArmor, and a profile that is not loaded fails the container instead of\n\
         holding the pod back. (On a node that cannot enforce AppArmor at all, 1.32 rejects the pod:\n\
         `Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host`; the\n\
         end-to-end tests check that with `--apparmor off`.) Generated by `scripts/tutorial-docs`.";
    let mut t = Tutorial::new("apparmor", "apparmor-1.32", &c, intro);
    t.section("Before you begin", "");
    t.step(
        "the kubelet version of the nodes",
        r#"kubectl get nodes -o=jsonpath=$'{range .items[*]}{@.metadata.name}: {@.status.nodeInfo.kubeletVersion}\n{end}'"#,
        stdout_is(format!("{node}: v1.32.0\n")),
    );
    t.step(
        "node ready condition message (no AppArmor suffix since 1.30)",
        r#"kubectl get nodes -o=jsonpath=$'{range .items[*]}{@.metadata.name}: {.status.conditions[?(@.reason=="KubeletReady")].message}\n{end}'"#,
        stdout_is(format!("{node}: kubelet is posting ready status\n")),
    );
    t.section("Example: the annotation", "");
    t.step(
        "load the profile",
        &format!("armorlet apparmor load -q --approximate <<EOF\n{DENY_WRITE}\nEOF"),
        stdout_is(String::new()),
    );
    t.step(
        "kubectl create -f ./hello-apparmor.yaml (deprecated annotation: a warning)",
        "kubectl create -f ./hello-apparmor.yaml",
        shows(
            0,
            &[
                "Warning: metadata.annotations[container.apparmor.security.beta.kubernetes.io/hello]: deprecated since v1.30; use the \"appArmorProfile\" field instead",
                "pod/hello-apparmor created",
            ],
        ),
    );
    t.eventually(
        "the pod runs",
        "kubectl get pod hello-apparmor",
        row("hello-apparmor", &["1/1", "Running", "0"]),
    );
    t.step(
        "the API server copied the annotation into the field",
        "kubectl get pod hello-apparmor -o jsonpath='{.spec.containers[0].securityContext.appArmorProfile}'",
        stdout_is(r#"{"localhostProfile":"k8s-apparmor-example-deny-write","type":"Localhost"}"#.into()),
    );
    t.step(
        "kubectl exec hello-apparmor -- touch /tmp/test",
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
        "clean up",
        "kubectl delete pod hello-apparmor --grace-period=1",
        stdout_is("pod \"hello-apparmor\" deleted\n".into()),
    );
    t.section("Example: the appArmorProfile field", "");
    t.cd("fields");
    t.step(
        "kubectl create -f ./hello-apparmor.yaml",
        "kubectl create -f ./hello-apparmor.yaml",
        stdout_is("pod/hello-apparmor created\n".into()),
    );
    t.eventually(
        "the pod runs",
        "kubectl get pod hello-apparmor",
        row("hello-apparmor", &["1/1", "Running", "0"]),
    );
    t.step(
        "kubectl exec hello-apparmor -- touch /tmp/test",
        "kubectl exec hello-apparmor -- touch /tmp/test",
        shows(1, &["touch: /tmp/test: Permission denied"]),
    );
    t.step(
        "a profile that is not loaded: kubectl create -f ./hello-apparmor-2.yaml",
        "kubectl create -f ./hello-apparmor-2.yaml",
        stdout_is("pod/hello-apparmor-2 created\n".into()),
    );
    t.eventually(
        "the runtime fails the container",
        "kubectl get pod hello-apparmor-2",
        row("hello-apparmor-2", &["0/1", "CreateContainerError", "0"]),
    );
    t.step(
        "the reason names the profile",
        "kubectl get pod hello-apparmor-2 -o jsonpath='{.status.containerStatuses[0].state.waiting.message}'",
        shows(0, &["k8s-apparmor-example-allow-write"]),
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

/// The seccomp tutorial's manifests at the default release (1.32): the fields behave as in
/// the tutorial; the annotations are non-functional since 1.27 (a warning, then nothing).
#[test]
fn tutorial_suite_seccomp_1_32() {
    let dir = repo().join("tests/tutorials/seccomp");
    let c = Cluster::kind("crun", &dir, &["--config", "kind.yaml"], &[KIND_NODE]);
    let intro = "# The seccomp tutorial at Kubernetes 1.32 on armorlet\n\n\
         The seccomp tutorial's manifests on `armorlet up --config=kind.yaml` at its default\n\
         release (1.32), where they differ from the tutorial's 1.22: the `securityContext`\n\
         manifests behave as the tutorial shows, while the `seccomp.security.alpha.kubernetes.io`\n\
         annotations have done nothing since 1.27 (the API server warns; the pod runs without a\n\
         filter). Generated by `scripts/tutorial-docs`.";
    let mut t = Tutorial::new("seccomp", "seccomp-1.32", &c, intro);
    t.section("The securityContext field: as in the tutorial", "");
    t.cd("fields");
    t.step(
        "kubectl apply -f violation-pod.yaml",
        "kubectl apply -f violation-pod.yaml",
        stdout_is("pod/violation-pod created\n".into()),
    );
    t.eventually(
        "kubectl get pod/violation-pod: CrashLoopBackOff",
        "kubectl get pod/violation-pod",
        row("violation-pod", &["0/1", "CrashLoopBackOff"]),
    );
    t.step(
        "kubectl delete pod/violation-pod",
        "kubectl delete pod/violation-pod",
        stdout_is("pod \"violation-pod\" deleted\n".into()),
    );
    t.section("The annotation: a warning, and no filter", "");
    t.cd("annotations");
    let warning = "Warning: metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the \"seccompProfile\" field instead";
    t.step(
        "kubectl apply -f violation-pod.yaml",
        "kubectl apply -f violation-pod.yaml",
        move |r| {
            shows(0, &["pod/violation-pod created"])(r).and_then(|()| {
                r.err
                    .contains(warning)
                    .then_some(())
                    .ok_or_else(|| format!("no {warning:?} in {:?}", r.err))
            })
        },
    );
    t.eventually(
        "the pod runs: the violation profile was not applied",
        "kubectl get pod/violation-pod",
        row("violation-pod", &["1/1", "Running", "0"]),
    );
    t.step(
        "no seccompProfile field: the annotation is not copied into it since 1.27",
        "kubectl get pod/violation-pod -o jsonpath='{.spec.securityContext.seccompProfile}'",
        stdout_is(String::new()),
    );
    t.step(
        "kubectl delete pod/violation-pod",
        "kubectl delete pod/violation-pod",
        stdout_is("pod \"violation-pod\" deleted\n".into()),
    );
    t.finish();
}

/// "Restricting profiles with the PodSecurityPolicy": `armorlet up --emulated-version 1.22
/// --enable-admission-plugins=PodSecurityPolicy` and a policy with the tutorial's two
/// annotations: the default profile is applied to containers without one, a profile outside
/// the allowed list is refused, and a policy whose annotation is not a profile reference is
/// invalid.
#[test]
fn tutorial_suite_apparmor_psp() {
    let c = Cluster::landlock(&[
        "--emulated-version",
        "1.22",
        "--enable-admission-plugins=PodSecurityPolicy",
    ]);
    let intro = "# The AppArmor tutorial's PodSecurityPolicy on armorlet\n\n\
         \"Restricting profiles with the PodSecurityPolicy\" from the AppArmor tutorial on\n\
         `armorlet up --emulated-version 1.22 --enable-admission-plugins=PodSecurityPolicy\n\
         --apparmor landlock`. Generated by `scripts/tutorial-docs` from the tutorial suite.";
    let mut t = Tutorial::new("apparmor", "apparmor-psp", &c, intro);
    t.cd("psp");
    t.section(
        "No policy, no pod",
        "With the plugin on, a pod needs a policy that admits it.",
    );
    t.step(
        "kubectl create -f ./hello-default.yaml",
        "kubectl create -f ./hello-default.yaml",
        shows(
            1,
            &["Error from server (Forbidden): error when creating \"./hello-default.yaml\": pods \"hello-default\" is forbidden: PodSecurityPolicy: no providers available to validate pod request"],
        ),
    );
    t.section("A policy with the AppArmor annotations", "");
    t.step(
        "load the deny-write profile",
        &format!("armorlet apparmor load -q --approximate <<EOF\n{DENY_WRITE}\nEOF"),
        stdout_is(String::new()),
    );
    t.step(
        "kubectl create -f ./apparmor-psp.yaml",
        "kubectl create -f ./apparmor-psp.yaml",
        stdout_is("podsecuritypolicy.policy/apparmor created\n".into()),
    );
    t.step(
        "kubectl get psp",
        "kubectl get psp",
        row("apparmor", &["false", "RunAsAny", "*"]),
    );
    t.step(
        "a pod without a profile gets the default one",
        "kubectl create -f ./hello-default.yaml && kubectl get pod hello-default -o jsonpath=$'{.metadata.annotations}\\n'",
        shows(
            0,
            &[
                "pod/hello-default created",
                r#""container.apparmor.security.beta.kubernetes.io/hello":"runtime/default""#,
                r#""kubernetes.io/psp":"apparmor""#,
            ],
        ),
    );
    t.eventually(
        "it runs",
        "kubectl get pod hello-default",
        row("hello-default", &["1/1", "Running"]),
    );
    t.step(
        "an allowed profile: kubectl create -f ./hello-apparmor.yaml",
        "kubectl create -f ./hello-apparmor.yaml",
        stdout_is("pod/hello-apparmor created\n".into()),
    );
    t.eventually(
        "it runs",
        "kubectl get pod hello-apparmor",
        row("hello-apparmor", &["1/1", "Running"]),
    );
    t.step(
        "a profile the policy does not allow",
        "kubectl create -f /dev/stdin <<EOF\n\
         apiVersion: v1\n\
         kind: Pod\n\
         metadata:\n  name: hello-apparmor-2\n  annotations:\n    \
         container.apparmor.security.beta.kubernetes.io/hello: localhost/k8s-apparmor-example-allow-write\n\
         spec:\n  containers:\n  - name: hello\n    image: busybox\n    \
         command: [ \"sh\", \"-c\", \"echo 'Hello AppArmor!' && sleep 1h\" ]\n\
         EOF",
        shows(
            1,
            &["pods \"hello-apparmor-2\" is forbidden: PodSecurityPolicy: unable to admit pod: [pod.metadata.annotations[container.apparmor.security.beta.kubernetes.io/hello]: Forbidden: localhost/k8s-apparmor-example-allow-write is not an allowed profile. Allowed values: \"runtime/default,localhost/k8s-apparmor-example-deny-write\"]"],
        ),
    );
    t.step(
        "a patch that breaks a policy is refused too",
        r#"kubectl patch psp apparmor --type merge -p '{"spec":{"runAsUser":{"rule":"Sometimes"}}}'"#,
        shows(
            1,
            &["spec.runAsUser.rule: Unsupported value: \"Sometimes\": supported values: \"MustRunAs\", \"MustRunAsNonRoot\", \"RunAsAny\""],
        ),
    );
    t.step(
        "a policy whose default is not a profile reference is invalid",
        "kubectl create -f ./bad-psp.yaml",
        shows(
            1,
            &["metadata.annotations[apparmor.security.beta.kubernetes.io/defaultProfileName]: Invalid value: \"k8s-apparmor-example-deny-write\": invalid AppArmor profile name: \"k8s-apparmor-example-deny-write\""],
        ),
    );
    t.step(
        "clean up",
        "kubectl delete pod hello-default hello-apparmor --grace-period=1 && kubectl delete psp apparmor",
        shows(
            0,
            &[
                "pod \"hello-default\" deleted",
                "pod \"hello-apparmor\" deleted",
                "podsecuritypolicy.policy \"apparmor\" deleted",
            ],
        ),
    );
    t.finish();
}

/// "Setting up nodes with profiles ... through a DaemonSet that runs a Pod on each node": a
/// ConfigMap of profiles and a loader DaemonSet on three nodes load the tutorial's profile onto
/// every node, then the tutorial's pod runs confined by it.
#[test]
fn tutorial_suite_apparmor_daemonset() {
    let helper = confine_helper();
    let names: Vec<String> = (1..=3)
        .map(|i| match i {
            1 => hostname(),
            i => format!("{}-{i}", hostname()),
        })
        .collect();
    let c = Cluster::with_node_names(
        "crun",
        &[
            "--emulated-version",
            "1.22",
            "--apparmor",
            "landlock",
            "--apparmor-landlock",
            "approximate",
            "--confine-helper",
            helper.to_str().unwrap(),
            "--nodes",
            "3",
        ],
        &names,
    );
    let intro = "# Loading the AppArmor tutorial's profile with a DaemonSet on armorlet\n\n\
         \"Setting up nodes with profiles\": \"Through a DaemonSet that runs a Pod on each node to\n\
         ensure the correct profiles are loaded\", on `armorlet up --emulated-version 1.22\n\
         --apparmor landlock --apparmor-landlock approximate --nodes 3`. Each armorlet node keeps\n\
         the profiles in its drop-in directory `/etc/armorlet/apparmor.d` loaded; the loader pods\n\
         copy the ConfigMap's profiles there. Generated by `scripts/tutorial-docs`.";
    let mut t = Tutorial::new("apparmor", "apparmor-daemonset", &c, intro);
    t.cd("daemonset");
    t.section("The loader", "");
    t.step(
        "kubectl apply -f ./apparmor-loader.yaml",
        "kubectl apply -f ./apparmor-loader.yaml",
        stdout_is(
            "configmap/apparmor-profiles created\ndaemonset.apps/apparmor-loader created\n".into(),
        ),
    );
    t.eventually(
        "one loader pod per node, all ready",
        "kubectl get daemonset apparmor-loader",
        |r: &Ran| {
            // NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE ...
            let ok = r.out.lines().any(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                c.len() > 5 && c[0] == "apparmor-loader" && c[1..6].iter().all(|n| *n == "3")
            });
            ok.then_some(())
                .ok_or_else(|| format!("exit {}, {:?} {:?}", r.code, r.out, r.err))
        },
    );
    let each: String = names
        .iter()
        .map(|n| format!("{n}: k8s-apparmor-example-deny-write (enforce)\n"))
        .collect();
    t.eventually(
        "every node has the profile (ssh NODE \"sudo cat /sys/kernel/security/apparmor/profiles\")",
        "for NODE in $(kubectl get nodes -o=jsonpath='{.items[*].metadata.name}'); do echo \"$NODE: $(armorlet node exec $NODE -- cat /sys/kernel/security/apparmor/profiles)\"; done",
        stdout_is(each),
    );
    t.eventually(
        "and says so in its labels",
        "kubectl get nodes -l apparmor.armorlet.io/k8s-apparmor-example-deny-write=enforce -o name | wc -l",
        stdout_is("3\n".into()),
    );
    t.section("The tutorial's pod", "");
    t.cd("");
    t.step(
        "kubectl create -f ./hello-apparmor.yaml",
        "kubectl create -f ./hello-apparmor.yaml",
        stdout_is("pod/hello-apparmor created\n".into()),
    );
    t.eventually(
        "it runs",
        "kubectl get pod hello-apparmor",
        row("hello-apparmor", &["1/1", "Running"]),
    );
    t.step(
        "kubectl exec hello-apparmor -- touch /tmp/test",
        "kubectl exec hello-apparmor -- touch /tmp/test",
        shows(1, &["touch: /tmp/test: Permission denied"]),
    );
    t.step(
        "clean up",
        "kubectl delete pod hello-apparmor --grace-period=1 && kubectl delete -f ./daemonset/apparmor-loader.yaml",
        shows(
            0,
            &[
                "pod \"hello-apparmor\" deleted",
                "configmap \"apparmor-profiles\" deleted",
                "daemonset.apps \"apparmor-loader\" deleted",
            ],
        ),
    );
    t.eventually(
        "the DaemonSet's pods go with it",
        "kubectl get pods -l daemon=apparmor-loader -o name | wc -l",
        stdout_is("0\n".into()),
    );
    t.finish();
}

/// `kubectl get` output (a table) has a row starting with `name` whose columns include every
/// one of `cols` (whitespace-separated cells, compared exactly).
fn row(name: &str, cols: &'static [&'static str]) -> impl Fn(&Ran) -> Result<(), String> {
    let name = name.to_owned();
    move |r| {
        let found = r.out.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&name.as_str()) && cols.iter().all(|c| cells.contains(c))
        });
        (r.code == 0 && found).then_some(()).ok_or_else(|| {
            format!(
                "exit {}, no row {name} with {cols:?} in {:?} (stderr {:?})",
                r.code, r.out, r.err
            )
        })
    }
}

/// The node of the tutorial's kind.yaml, as kind names it.
const KIND_NODE: &str = "kind-control-plane";

/// The seccomp tutorial at its release (`armorlet up --emulated-version 1.22`): the cluster
/// from the tutorial's kind.yaml, then every section with the `securityContext` manifests and
/// again with the annotation manifests (the document prints both).
#[test]
fn tutorial_suite_seccomp() {
    let dir = repo().join("tests/tutorials/seccomp");
    let c = Cluster::kind(
        "crun",
        &dir,
        &["--config", "kind.yaml", "--emulated-version", "1.22"],
        &[KIND_NODE],
    );
    let intro = "# The seccomp tutorial on armorlet\n\n\
         A run of \"Restrict a Container's Syscalls with seccomp\" (the Kubernetes documentation's\n\
         tutorial for v1.22) on `armorlet up --config=kind.yaml --emulated-version 1.22`, with the\n\
         document's kind.yaml, profiles and manifests: first the `securityContext` manifests, then\n\
         the annotation manifests. Generated by `scripts/tutorial-docs` from the tutorial suite\n\
         (`crates/armorlet/tests/tutorials.rs`); every output below is what that run printed.\n\
         Commands differ from the document's only as the README's substitution table says.";
    let mut t = Tutorial::new("seccomp", "seccomp", &c, intro);
    t.section("Create a local Kubernetes cluster", "");
    t.step(
        "armorlet up --config=kind.yaml: the tutorial's single node (docker ps: kind-control-plane)",
        "kubectl get nodes",
        row(KIND_NODE, &["Ready", "control-plane,master", "v1.22.0"]),
    );
    t.step(
        "the profiles are in the node's default seccomp path",
        "armorlet node exec kind-control-plane -- ls /var/lib/kubelet/seccomp/profiles",
        stdout_is("audit.json\nfine-grained.json\nviolation.json\n".into()),
    );
    for variant in ["fields", "annotations"] {
        t.cd(variant);
        seccomp_sections(&mut t, variant);
    }
    t.finish();
}

/// The tutorial's http-echo sequence for `pod`: apply its manifest, wait for it to run, expose
/// it with a NodePort Service, and curl that from the node.
fn serve_and_curl(t: &mut Tutorial, variant: &str, pod: &str) {
    let v = |s: &str| format!("[{variant}] {s}");
    t.step(
        &v(&format!("kubectl apply -f {pod}.yaml")),
        &format!("kubectl apply -f {pod}.yaml"),
        stdout_is(format!("pod/{pod} created\n")),
    );
    t.eventually(
        &v(&format!("kubectl get pod/{pod}: Running")),
        &format!("kubectl get pod/{pod}"),
        row(pod, &["1/1", "Running", "0"]),
    );
    t.step(
        &v(&format!(
            "kubectl expose pod/{pod} --type NodePort --port 5678"
        )),
        &format!("kubectl expose pod/{pod} --type NodePort --port 5678"),
        stdout_is(format!("service/{pod} exposed\n")),
    );
    t.step(
        &v(&format!("kubectl get svc/{pod}")),
        &format!("kubectl get svc/{pod}"),
        row(pod, &["NodePort", "<none>"]),
    );
    // The document's port (32373) is whatever the cluster assigned; read it.
    t.eventually(
        &v("curl the NodePort from the node"),
        &format!(
            "armorlet node exec kind-control-plane -- curl -s localhost:$(kubectl get svc/{pod} -o jsonpath='{{.spec.ports[0].nodePort}}')"
        ),
        stdout_is("just made some syscalls!\n".into()),
    );
}

/// The tutorial's sections, with the manifests of `variant`.
fn seccomp_sections(t: &mut Tutorial, variant: &str) {
    let v = |s: &str| format!("[{variant}] {s}");
    let manifests = if variant == "fields" {
        "the `securityContext.seccompProfile` manifests"
    } else {
        "the `seccomp.security.alpha.kubernetes.io/pod` annotation manifests"
    };
    t.section(
        &format!("Create a Pod with a seccomp profile for syscall auditing ({variant})"),
        &format!("With {manifests}."),
    );
    // The audit log keeps earlier runs' lines: remember where this section starts.
    t.quietly("armorlet audit | wc -l > \"$HOME/audit.before\"");
    serve_and_curl(t, variant, "audit-pod");
    t.eventually_as(
        &v("the audit log shows http-echo's syscalls (tail -f /var/log/syslog | grep 'http-echo')"),
        "armorlet audit | grep 'http-echo'",
        "armorlet audit | tail -n +$(( $(cat \"$HOME/audit.before\") + 1 )) | grep 'http-echo'",
        shows(
            0,
            &[
                "kernel: [",
                "audit: type=1326 audit(",
                "comm=\"http-echo\" exe=\"/http-echo\" sig=0 arch=c000003e syscall=",
                "code=0x7ffc0000",
            ],
        ),
    );
    t.step(
        &v("kubectl delete pod/audit-pod"),
        "kubectl delete pod/audit-pod",
        stdout_is("pod \"audit-pod\" deleted\n".into()),
    );
    t.step(
        &v("kubectl delete svc/audit-pod"),
        "kubectl delete svc/audit-pod",
        stdout_is("service \"audit-pod\" deleted\n".into()),
    );
    t.section(
        &format!("Create Pod with seccomp Profile that Causes Violation ({variant})"),
        "",
    );
    t.step(
        &v("kubectl apply -f violation-pod.yaml"),
        "kubectl apply -f violation-pod.yaml",
        stdout_is("pod/violation-pod created\n".into()),
    );
    t.eventually(
        &v("kubectl get pod/violation-pod: CrashLoopBackOff"),
        "kubectl get pod/violation-pod",
        row("violation-pod", &["0/1", "CrashLoopBackOff"]),
    );
    t.step(
        &v("kubectl delete pod/violation-pod"),
        "kubectl delete pod/violation-pod",
        stdout_is("pod \"violation-pod\" deleted\n".into()),
    );
    // The document deletes a Service it never created here; a cluster says so.
    t.step(
        &v("kubectl delete svc/violation-pod (never created: NotFound)"),
        "kubectl delete svc/violation-pod",
        shows(
            1,
            &["Error from server (NotFound): services \"violation-pod\" not found"],
        ),
    );
    t.section(
        &format!("Create Pod with seccomp Profile that Only Allows Necessary Syscalls ({variant})"),
        "",
    );
    serve_and_curl(t, variant, "fine-pod");
    t.step(
        &v("no syslog lines from fine-pod (every syscall it made was allowed)"),
        "armorlet audit --pod fine-pod",
        stdout_is(String::new()),
    );
    t.step(
        &v("kubectl delete pod/fine-pod"),
        "kubectl delete pod/fine-pod",
        stdout_is("pod \"fine-pod\" deleted\n".into()),
    );
    t.step(
        &v("kubectl delete svc/fine-pod"),
        "kubectl delete svc/fine-pod",
        stdout_is("service \"fine-pod\" deleted\n".into()),
    );
    t.section(
        &format!("Create Pod that uses the Container Runtime Default seccomp Profile ({variant})"),
        "The document's field manifest names this pod `audit-pod`, its annotation manifest\n\
         `default-pod`.",
    );
    let name = if variant == "fields" {
        "audit-pod"
    } else {
        "default-pod"
    };
    t.step(
        &v("kubectl apply -f default-pod.yaml"),
        "kubectl apply -f default-pod.yaml",
        stdout_is(format!("pod/{name} created\n")),
    );
    t.eventually(
        &v("the RuntimeDefault pod runs"),
        &format!("kubectl get pod/{name}"),
        row(name, &["1/1", "Running", "0"]),
    );
    t.step(
        &v("clean up"),
        &format!("kubectl delete pod/{name}"),
        stdout_is(format!("pod \"{name}\" deleted\n")),
    );
}
