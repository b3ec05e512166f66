//! `kubectl logs` and `kubectl exec` through the API server's node proxy to the node API.
//!
//! The control plane is the real `armorlet up --nodes 0`; the node API is the real
//! `armorlet_nodeapi::serve` (TLS, client certificate checked against the cluster CA), driven by
//! a test [`NodeBackend`] that runs host processes instead of containers (the runtime is tested
//! elsewhere). kubectl is the real one.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use armorlet_nodeapi::{
    BackendError, ExecProcess, ExecSpec, LogTarget, NodeApiConfig, NodeBackend,
};

const KUBECTL: &str = "/usr/bin/kubectl";
/// Guard against hanging forever; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(60);

const LOG: &str = "2024-01-01T00:00:01.000000001Z stdout F one\n\
                   2024-01-01T00:00:02Z stderr P tw\n\
                   2024-01-01T00:00:02.5Z stderr F o\n\
                   2024-01-01T00:00:03Z stdout F three\n";

/// Runs host processes; logs are files in a directory, `<pod>.log`.
struct HostBackend {
    logs: PathBuf,
    running: Arc<AtomicBool>,
}

fn pipes(mut cmd: Command, stdin: bool) -> Result<ExecProcess, BackendError> {
    let mut child = cmd
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BackendError::Internal(e.to_string()))?;
    let file = |fd: Option<std::os::fd::OwnedFd>| fd.map(std::fs::File::from);
    Ok(ExecProcess {
        stdin: file(child.stdin.take().map(Into::into)),
        stdout: file(child.stdout.take().map(Into::into)),
        stderr: file(child.stderr.take().map(Into::into)),
        pty: None,
        child,
    })
}

impl NodeBackend for HostBackend {
    fn log_target(
        &self,
        _ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogTarget, BackendError> {
        if container != "c" {
            return Err(BackendError::NotFound(format!(
                "container {container:?} not found"
            )));
        }
        if previous {
            return Err(BackendError::BadRequest(format!(
                "previous terminated container {container:?} in pod {pod:?} not found"
            )));
        }
        let running = self.running.clone();
        Ok(LogTarget {
            path: self.logs.join(format!("{pod}.log")),
            container_id: format!("host://{pod}"),
            running: Arc::new(move || running.load(Ordering::SeqCst)),
        })
    }

    fn exec(
        &self,
        _ns: &str,
        _pod: &str,
        _container: &str,
        spec: ExecSpec,
    ) -> Result<ExecProcess, BackendError> {
        let mut cmd = if spec.tty {
            // A real terminal for the command: script(1) runs it on a new pty.
            let line = spec
                .args
                .iter()
                .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
                .collect::<Vec<_>>();
            let mut c = Command::new("script");
            c.args(["-qefc", &line.join(" "), "/dev/null"]);
            c
        } else {
            let mut c = Command::new(&spec.args[0]);
            c.args(&spec.args[1..]);
            c
        };
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        pipes(cmd, spec.stdin)
    }

    fn attach(
        &self,
        _ns: &str,
        _pod: &str,
        container: &str,
        _stdin: bool,
    ) -> Result<armorlet_nodeapi::Attached, BackendError> {
        // Attach needs a container monitor: `attach_e2e.rs` tests it on real containers.
        Err(BackendError::BadRequest(format!(
            "container {container} has no monitor on this test node"
        )))
    }

    fn port_forward(
        &self,
        _ns: &str,
        _pod: &str,
    ) -> Result<armorlet_nodeapi::PortForwardTarget, BackendError> {
        // Port-forward needs a pod network namespace: `attach_e2e.rs` tests it.
        Err(BackendError::NotFound("pod does not exist".into()))
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    _server: Server,
    running: Arc<AtomicBool>,
    _rt: tokio::runtime::Runtime,
}

impl Env {
    fn start() -> Env {
        for tool in [KUBECTL, "/usr/bin/script"] {
            assert!(Path::new(tool).exists(), "{tool} is required for this test");
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_armorlet"))
            .args([
                "up",
                "--nodes",
                "0",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn armorlet up");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let server = Server(child);
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("armorlet up printed nothing");
        let kubeconfig = PathBuf::from(
            line.strip_prefix("export KUBECONFIG=")
                .expect("kubeconfig line"),
        );

        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("web.log"), LOG).unwrap();
        let running = Arc::new(AtomicBool::new(true));
        let backend = Arc::new(HostBackend {
            logs,
            running: running.clone(),
        });
        let port = common::free_port();
        let cfg = NodeApiConfig {
            listen: ([127, 0, 0, 1], port).into(),
            cert_dir: dir.path().join("node-pki"),
            client_ca_pem: std::fs::read(data.join("pki/ca.crt")).expect("cluster CA"),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.spawn(async move {
            armorlet_nodeapi::serve(cfg, backend, std::future::pending())
                .await
                .expect("node API");
        });
        let env = Env {
            dir,
            kubeconfig,
            _server: server,
            running,
            _rt: rt,
        };
        env.ok(&[
            "create",
            "-f",
            &env.write(
                "node.yaml",
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: testnode\n",
            ),
        ]);
        let status = format!(
            r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{port}}}}}}}}}"#
        );
        env.ok(&[
            "patch",
            "node",
            "testnode",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
        env
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KUBECTL);
        c.args(args)
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().expect("run kubectl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "kubectl {args:?} failed: {err}");
        out
    }

    /// A pod bound to `node` (or unbound) whose container `c` has `state`.
    fn pod(&self, name: &str, node: Option<&str>, state: &str) {
        let node = node
            .map(|n| format!("  nodeName: {n}\n"))
            .unwrap_or_default();
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{node}  containers:\n  - name: c\n    image: busybox\n"
        );
        self.ok(&[
            "create",
            "-f",
            &self.write(&format!("{name}.yaml"), &manifest),
        ]);
        let status = format!(
            r#"{{"status":{{"phase":"Running","containerStatuses":[{{"name":"c","image":"busybox","imageID":"","ready":true,"restartCount":0,"containerID":"host://{name}","state":{state}}}]}}}}"#
        );
        self.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
    }
}

#[test]
fn logs_through_the_node_api() {
    let env = Env::start();
    env.pod(
        "web",
        Some("testnode"),
        r#"{"running":{"startedAt":"2024-01-01T00:00:00Z"}}"#,
    );
    assert_eq!(env.ok(&["logs", "web"]), "one\ntwo\nthree\n");
    assert_eq!(env.ok(&["logs", "web", "--tail=1"]), "three\n");
    assert_eq!(
        env.ok(&["logs", "web", "--timestamps"]),
        "2024-01-01T00:00:01.000000001Z one\n2024-01-01T00:00:02Z two\n2024-01-01T00:00:03Z three\n"
    );
    assert_eq!(env.ok(&["logs", "web", "--limit-bytes=5"]), "one\nt");

    let (code, _, err) = env.run(&["logs", "web", "--previous"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        r#"Error from server (BadRequest): previous terminated container "c" in pod "web" not found"#
    );

    env.pod(
        "pending",
        Some("testnode"),
        r#"{"waiting":{"reason":"ContainerCreating"}}"#,
    );
    let (code, _, err) = env.run(&["logs", "pending"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        r#"Error from server (BadRequest): container "c" in pod "pending" is waiting to start: ContainerCreating"#
    );

    // Follow: kubectl keeps streaming while the container runs and ends once it stopped.
    let mut follow = env
        .command(&["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    for want in ["one", "two", "three"] {
        assert_eq!(lines.next().unwrap().unwrap(), want);
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.dir.path().join("logs/web.log"))
        .unwrap();
    f.write_all(b"2024-01-01T00:00:04Z stdout F four\n")
        .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "four");
    env.running.store(false, Ordering::SeqCst);
    assert!(
        lines.next().is_none(),
        "follow must end when the container stopped"
    );
    assert!(follow.wait().unwrap().success());
}

#[test]
fn exec_through_the_node_api() {
    let env = Env::start();
    env.pod(
        "web",
        Some("testnode"),
        r#"{"running":{"startedAt":"2024-01-01T00:00:00Z"}}"#,
    );
    env.pod(
        "unbound",
        None,
        r#"{"waiting":{"reason":"ContainerCreating"}}"#,
    );

    assert_eq!(
        env.ok(&["exec", "web", "--", "echo", "hi there"]),
        "hi there\n"
    );

    let (code, out, err) = env.run(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code, 3);
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\ncommand terminated with exit code 3\n");

    let mut cat = env
        .command(&["exec", "-i", "web", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = cat.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");

    // -it under a pty: the command sees a terminal.
    let line = format!(
        "HOME={} KUBECONFIG={} {KUBECTL} exec -it web -- sh -c 'test -t 0 && test -t 1 && echo on-a-tty'",
        env.dir.path().display(),
        env.kubeconfig.display()
    );
    let out = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exec -it failed: {text}");
    assert!(text.contains("on-a-tty"), "{text}");

    let (code, _, err) = env.run(&["exec", "unbound", "--", "true"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error from server (BadRequest): pod unbound does not have a host assigned"
    );

    let (code, _, err) = env.run(&["exec", "web", "-c", "nope", "--", "true"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error from server (BadRequest): container nope is not valid for pod web"
    );
}
