//! Security of the control plane (issue 12 item 4, issue 5 item 6), against a real
//! `armorlet up`: node identities and what they may do (the Node authorizer and
//! NodeRestriction), the admin's full access, unknown tokens, the header size limit, the
//! max-in-flight limits, the audit log of writes, the modes of secret-bearing files, and TLS
//! only. The real kubectl where a user would use it, raw HTTPS (trusting the cluster CA)
//! where the exact bytes matter.
//!
//! The API checks run on control-plane-only servers (`--nodes 0`; node credentials issued
//! with `armorlet node credential`, pods bound to those nodes by `spec.nodeName`); one test
//! runs a real node agent, which works with its own credential.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A control-plane-only `armorlet up` with its own data directory and HOME.
struct Server {
    dir: tempfile::TempDir,
    child: Option<Child>,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = armorlet()
            .args([
                "up",
                "--nodes",
                "0",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("up.log")).unwrap())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.starts_with("export KUBECONFIG="), "{first:?}");
        let kubeconfig = std::fs::read_to_string(dir.path().join("data/kubeconfig")).unwrap();
        let addr = field(&kubeconfig, "server:")
            .strip_prefix("https://")
            .unwrap()
            .parse()
            .unwrap();
        Server {
            dir,
            child: Some(child),
            addr,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn admin_kubeconfig(&self) -> PathBuf {
        self.data().join("kubeconfig")
    }

    /// `armorlet node credential NAME`: the node's kubeconfig.
    fn node_credential(&self, name: &str) -> PathBuf {
        let out = armorlet()
            .args(["node", "credential", name, "--data-dir"])
            .arg(self.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    }

    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    }

    /// kubectl as `kubeconfig`'s user; the command must succeed.
    fn ok(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.kubectl(kubeconfig, args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// kubectl as `kubeconfig`'s user; the command must fail with `stderr`.
    fn refused(&self, kubeconfig: &Path, args: &[&str], stderr: &str) {
        let out = self.kubectl(kubeconfig, args);
        assert!(!out.status.success(), "kubectl {args:?} succeeded");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            stderr,
            "kubectl {args:?}"
        );
    }

    fn apply(&self, kubeconfig: &Path, yaml: &str) -> String {
        let path = self.dir.path().join("manifest.yaml");
        std::fs::write(&path, yaml).unwrap();
        self.ok(kubeconfig, &["apply", "-f", path.to_str().unwrap()])
    }

    fn ca(&self) -> PathBuf {
        self.data().join("pki/ca.crt")
    }

    /// SIGTERM, as a service manager stops it; its exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < PATIENCE, "armorlet up did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The value of the first `key` line of a kubeconfig we wrote.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .to_owned()
}

fn token_of(kubeconfig: &Path) -> String {
    field(&std::fs::read_to_string(kubeconfig).unwrap(), "token:")
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to the server, trusting the cluster CA.
async fn connect(addr: SocketAddr, ca: &Path) -> Tls {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// A response: status code, lower-cased head, body.
#[derive(Debug)]
struct Resp {
    code: u16,
    head: String,
    body: String,
}

impl Resp {
    fn status(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads a `Connection: close` response to its end (a reset after it counts as the end).
async fn read_response(tls: &mut Tls) -> Resp {
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tls.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    Resp {
        code: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn request_head(method: &str, path: &str, token: &str, content_length: usize) -> String {
    let ty = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: {ty}\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

/// One request on a new connection.
async fn request(s: &Server, method: &str, path: &str, token: &str, body: &str) -> Resp {
    let mut tls = connect(s.addr, &s.ca()).await;
    let mut req = request_head(method, path, token, body.len()).into_bytes();
    req.extend_from_slice(body.as_bytes());
    tls.write_all(&req).await.unwrap();
    read_response(&mut tls).await
}

/// A Node object named `name`.
fn node_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n")
}

/// A pod bound to `node` that uses secret `secret` (in a volume, or as `envFrom`).
fn bound_pod(name: &str, node: &str, secret: &str, as_env: bool) -> String {
    let use_secret = if as_env {
        format!("    envFrom:\n    - secretRef:\n        name: {secret}\n")
    } else {
        format!("    volumeMounts:\n    - name: s\n      mountPath: /s\n  volumes:\n  - name: s\n    secret:\n      secretName: {secret}\n")
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sleep\", \"3600\"]\n{use_secret}"
    )
}

/// A node may write its own Node, Lease and pods' status and read the secrets of its pods,
/// nothing of another node's; the admin may do all of it; the refusals are kube-apiserver's.
#[test]
fn node_credentials_reach_only_their_own_objects() {
    let s = Server::start(&[]);
    let admin = s.admin_kubeconfig();
    let a = s.node_credential("node-a");
    let b = s.node_credential("node-b");
    assert_eq!(a, s.data().join("nodes/node-a/kubeconfig"));
    let text = std::fs::read_to_string(&a).unwrap();
    assert!(text.contains("\n- name: system:node:node-a\n"), "{text}");
    assert_eq!(field(&text, "server:"), format!("https://{}", s.addr));
    assert_ne!(token_of(&a), token_of(&b));
    assert_ne!(token_of(&a), token_of(&admin));
    // Issuing again keeps the token.
    let before = token_of(&a);
    s.node_credential("node-a");
    assert_eq!(token_of(&a), before);
    let bad = armorlet()
        .args(["node", "credential", "../x", "--data-dir"])
        .arg(s.data())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");

    // Each node registers itself; registering another is refused by NodeRestriction.
    s.apply(&a, &node_yaml("node-a"));
    s.apply(&b, &node_yaml("node-b"));
    let c = s.dir.path().join("node-c.yaml");
    std::fs::write(&c, node_yaml("node-c")).unwrap();
    s.refused(
        &a,
        &["create", "-f", c.to_str().unwrap()],
        &format!(
            "Error from server (Forbidden): error when creating {:?}: nodes \"node-c\" is forbidden: node \"node-a\" is not allowed to modify node \"node-c\"\n",
            c.to_str().unwrap()
        ),
    );
    // A node changes its own Node, not another's.
    let label = r#"{"metadata":{"labels":{"team":"x"}}}"#;
    s.ok(&a, &["patch", "node", "node-a", "-p", label]);
    // kubectl reads the Node before patching it: at 1.32 a node reads only its own.
    s.refused(
        &a,
        &["patch", "node", "node-b", "-p", label],
        "Error from server (Forbidden): nodes \"node-b\" is forbidden: User \"system:node:node-a\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'node-a' cannot read 'node-b', only its own Node object\n",
    );
    // 1.32 (AuthorizeNodeWithSelectors): a node reads its own Node only.
    s.ok(&a, &["get", "node", "node-a"]);
    s.refused(
        &a,
        &["get", "node", "node-b"],
        "Error from server (Forbidden): nodes \"node-b\" is forbidden: User \"system:node:node-a\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'node-a' cannot read 'node-b', only its own Node object\n",
    );

    // Secrets: one used by a pod on node-a, one used by a pod on node-b.
    s.ok(
        &admin,
        &[
            "create",
            "secret",
            "generic",
            "for-a",
            "--from-literal=k=secret-of-a",
        ],
    );
    s.ok(
        &admin,
        &[
            "create",
            "secret",
            "generic",
            "for-b",
            "--from-literal=k=secret-of-b",
        ],
    );
    s.apply(&admin, &bound_pod("pod-a", "node-a", "for-a", false));
    s.apply(&admin, &bound_pod("pod-b", "node-b", "for-b", true));
    let got: Value =
        serde_json::from_str(&s.ok(&a, &["get", "secret", "for-a", "-o", "json"])).unwrap();
    assert_eq!(got["data"]["k"], "c2VjcmV0LW9mLWE=");
    s.refused(
        &a,
        &["get", "secret", "for-b"],
        "Error from server (Forbidden): secrets \"for-b\" is forbidden: User \"system:node:node-a\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'node-a' and this object\n",
    );
    s.ok(&b, &["get", "secret", "for-b"]);
    s.refused(
        &a,
        &["create", "secret", "generic", "mine", "--from-literal=k=v"],
        "error: failed to create secret secrets is forbidden: User \"system:node:node-a\" cannot create resource \"secrets\" in API group \"\" in the namespace \"default\": can only read resources of this type\n",
    );

    // Pods: a node lists the pods bound to it, and writes only their status.
    s.refused(
        &a,
        &["get", "pods", "-A"],
        "Error from server (Forbidden): pods is forbidden: User \"system:node:node-a\" cannot list resource \"pods\" in API group \"\" at the cluster scope: can only list/watch pods with spec.nodeName field selector\n",
    );
    let mine = s.ok(
        &a,
        &[
            "get",
            "pods",
            "-A",
            "--field-selector",
            "spec.nodeName=node-a",
            "-o",
            "name",
        ],
    );
    assert_eq!(mine, "pod/pod-a\n");
    let status = r#"{"status":{"message":"written by the node"}}"#;
    let rt = runtime();
    let token_a = token_of(&a);
    rt.block_on(async {
        // The patch itself is refused by NodeRestriction.
        let r = request(&s, "PATCH", "/api/v1/nodes/node-b", &token_a, label)
            .await;
        assert_eq!(r.code, 403, "{r:?}");
        assert_eq!(
            r.status(),
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "nodes \"node-b\" is forbidden: node \"node-a\" is not allowed to modify node \"node-b\"",
                "reason": "Forbidden", "details": {"name": "node-b", "kind": "nodes"}, "code": 403})
        );
        // Pod status: only of pods bound to the node (kubectl cannot: it reads pods/status
        // first, which the Node authorizer does not allow).
        let pod_status = |pod: &str| format!("/api/v1/namespaces/default/pods/{pod}/status");
        let r = request(&s, "PATCH", &pod_status("pod-a"), &token_a, status).await;
        assert_eq!(r.code, 200, "{r:?}");
        assert_eq!(r.status()["status"]["message"], "written by the node");
        let r = request(&s, "PATCH", &pod_status("pod-b"), &token_a, status).await;
        assert_eq!(r.code, 403, "{r:?}");
        assert_eq!(
            r.status()["message"],
            "pods \"pod-b\" is forbidden: node \"node-a\" can only update pod status for pods with spec.nodeName set to itself"
        );
        // Deleting: only pods bound to the node.
        let r = request(&s, "DELETE", "/api/v1/namespaces/default/pods/pod-b", &token_a, "").await;
        assert_eq!(r.code, 403, "{r:?}");
        assert_eq!(
            r.status()["message"],
            "pods \"pod-b\" is forbidden: node \"node-a\" can only delete pods with spec.nodeName set to itself"
        );
        // Leases: its own, in kube-node-lease.
        let lease = |name: &str| {
            format!(r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{name}"}},"spec":{{"holderIdentity":"{name}"}}}}"#)
        };
        let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
        let r = request(&s, "POST", leases, &token_a, &lease("node-a")).await;
        assert_eq!(r.code, 201, "{r:?}");
        let r = request(&s, "POST", leases, &token_a, &lease("node-b")).await;
        assert_eq!(r.code, 403, "{r:?}");
        assert_eq!(
            r.status()["message"],
            "leases.coordination.k8s.io \"node-b\" is forbidden: can only access node lease with the same name as the requesting node"
        );
        let r = request(&s, "GET", &format!("{leases}/node-b"), &token_a, "").await;
        assert_eq!(r.code, 403, "{r:?}");
        assert_eq!(
            r.status(),
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "leases.coordination.k8s.io \"node-b\" is forbidden: User \"system:node:node-a\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": can only access node lease with the same name as the requesting node",
                "reason": "Forbidden", "details": {"name": "node-b", "group": "coordination.k8s.io", "kind": "leases"}, "code": 403})
        );
        // The node deletes its own pod.
        let r = request(&s, "DELETE", "/api/v1/namespaces/default/pods/pod-a", &token_a, "").await;
        assert_eq!(r.code, 200, "{r:?}");
        // An unknown token is nobody.
        let r = request(&s, "GET", "/api/v1/namespaces", "not-a-token", "").await;
        assert_eq!(r.code, 401, "{r:?}");
        assert_eq!(r.status()["reason"], "Unauthorized");
    });

    // The admin may do all of it.
    s.ok(&admin, &["patch", "node", "node-b", "-p", label]);
    s.ok(&admin, &["get", "secret", "for-b"]);
    s.ok(&admin, &["get", "nodes"]);
    s.ok(
        &admin,
        &[
            "patch",
            "pod",
            "pod-b",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
    );
    s.ok(&admin, &["delete", "pod", "pod-b", "--wait=false"]);
    s.refused(
        &admin,
        &["--token=not-a-token", "get", "pods"],
        "error: You must be logged in to the server (Unauthorized)\n",
    );
}

/// 431 for a 2 MiB header (the server keeps serving), 429 beyond `--max-requests-inflight`
/// and `--max-mutating-requests-inflight` (not for watches, nor for the admin), and no API
/// over plain HTTP.
#[test]
fn header_and_in_flight_limits_and_tls_only() {
    let s = Server::start(&[
        "--max-requests-inflight",
        "1",
        "--max-mutating-requests-inflight",
        "1",
    ]);
    let token = token_of(&s.node_credential("limited"));
    let admin = token_of(&s.admin_kubeconfig());
    let help = armorlet().args(["up", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--max-requests-inflight <MAX_REQUESTS_INFLIGHT>",
        "[default: 400]",
        "--max-mutating-requests-inflight <MAX_MUTATING_REQUESTS_INFLIGHT>",
        "[default: 200]",
    ] {
        assert!(help.contains(flag), "{flag} in {help}");
    }

    // Plain HTTP on the API port: Go's net/http answer, nothing of the API.
    let mut tcp = std::net::TcpStream::connect(s.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(b"GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut plain = String::new();
    tcp.read_to_string(&mut plain).unwrap();
    assert_eq!(
        plain,
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );

    let rt = runtime();
    rt.block_on(async {
        // A 2 MiB header: 431 and the connection closes (read while writing: the server
        // answers before it has read it all).
        let mut tls = connect(s.addr, &s.ca()).await;
        let big = format!(
            "GET /version HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(2 << 20)
        );
        let (mut rd, mut wr) = tokio::io::split(tls);
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(big.as_bytes()).await;
            wr
        });
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, rd.read_to_end(&mut raw)).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{text:?}");
        let _ = writer.await;
        // The server goes on serving.
        let r = request(&s, "GET", "/version", &admin, "").await;
        assert_eq!(r.code, 200, "{r:?}");
        assert!(r.head.contains("\r\naudit-id: "), "{}", r.head);

        // A read whose body has not arrived yet holds the one non-mutating slot.
        tls = connect(s.addr, &s.ca()).await;
        tls.write_all(request_head("GET", "/api/v1/namespaces/default", &token, 2).as_bytes())
            .await
            .unwrap();
        let start = Instant::now();
        let refused = loop {
            let r = request(&s, "GET", "/api/v1/namespaces", &token, "").await;
            if r.code == 429 {
                break r;
            }
            assert_eq!(r.code, 200, "{r:?}");
            assert!(start.elapsed() < PATIENCE, "no 429");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(refused.head.contains("\r\nretry-after: 1\r\n"), "{}", refused.head);
        assert_eq!(
            refused.status(),
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Too many requests, please try again later.", "reason": "TooManyRequests",
                "details": {"retryAfterSeconds": 1}, "code": 429})
        );
        // The admin (system:masters) is never refused; watches are not counted.
        let r = request(&s, "GET", "/api/v1/namespaces", &admin, "").await;
        assert_eq!(r.code, 200, "{r:?}");
        let mut watch = connect(s.addr, &s.ca()).await;
        watch
            .write_all(request_head("GET", "/api/v1/namespaces?watch=1", &token, 0).as_bytes())
            .await
            .unwrap();
        let mut first = [0u8; 12];
        watch.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        // Writes have their own slot: a held create makes the next one 429, not a read.
        let mut held_write = connect(s.addr, &s.ca()).await;
        held_write
            .write_all(
                request_head("POST", "/api/v1/namespaces/default/events", &token, 2).as_bytes(),
            )
            .await
            .unwrap();
        let start = Instant::now();
        loop {
            let r = request(&s, "POST", "/api/v1/namespaces/default/events", &token, "{}").await;
            if r.code == 429 {
                break;
            }
            assert!(start.elapsed() < PATIENCE, "no 429 for a write: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Once the held requests end, their slots are free again.
        tls.write_all(b"{}").await.unwrap();
        let r = read_response(&mut tls).await;
        assert_eq!(r.code, 200, "{r:?}");
        held_write.write_all(b"{}").await.unwrap();
        let r = read_response(&mut held_write).await;
        assert_ne!(r.code, 429, "{r:?}");
        let r = request(&s, "GET", "/api/v1/namespaces", &token, "").await;
        assert_eq!(r.code, 200, "{r:?}");
        drop(watch);
    });
}

/// Every write (create, patch, delete) is one audit.k8s.io/v1 Event line at Metadata level,
/// reads are not logged, and the log is complete once the server has stopped.
#[test]
fn the_audit_log_records_writes_but_not_reads() {
    let mut s = Server::start(&[]);
    let admin = s.admin_kubeconfig();
    let node = s.node_credential("auditor");
    s.ok(
        &admin,
        &["create", "configmap", "audited", "--from-literal=a=b"],
    );
    s.ok(&admin, &["get", "configmap", "audited"]);
    s.ok(
        &admin,
        &[
            "patch",
            "configmap",
            "audited",
            "-p",
            r#"{"data":{"a":"c"}}"#,
        ],
    );
    s.ok(&admin, &["get", "configmaps"]);
    s.ok(&admin, &["delete", "configmap", "audited"]);
    let out = s.kubectl(&node, &["delete", "namespace", "default", "--wait=false"]);
    assert!(!out.status.success());
    // The server stops normally: every acknowledged write is in the log.
    assert!(s.stop().success());
    let log = s.data().join("audit/api.log");
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(log.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for e in &events {
        assert!(
            ["create", "update", "patch", "delete", "deletecollection"]
                .contains(&e["verb"].as_str().unwrap()),
            "a read was logged: {e}"
        );
    }
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["objectRef"]["resource"] == "configmaps" && e["objectRef"]["name"] == "audited"
        })
        .collect();
    let verbs: Vec<&str> = ours.iter().map(|e| e["verb"].as_str().unwrap()).collect();
    assert_eq!(verbs, ["create", "patch", "delete"], "{text}");
    for (e, code) in ours.iter().zip([201, 200, 200]) {
        assert_eq!(e["kind"], "Event");
        assert_eq!(e["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(e["level"], "Metadata");
        assert_eq!(e["stage"], "ResponseComplete");
        assert_eq!(
            e["user"],
            serde_json::json!({"username": "admin", "groups": ["system:masters", "system:authenticated"]})
        );
        assert_eq!(e["sourceIPs"], serde_json::json!(["127.0.0.1"]));
        assert!(
            e["userAgent"]
                .as_str()
                .unwrap()
                .starts_with("kubectl/v1.32"),
            "{e}"
        );
        assert!(
            e["requestURI"]
                .as_str()
                .unwrap()
                .starts_with("/api/v1/namespaces/default/configmaps"),
            "{e}"
        );
        assert_eq!(
            e["objectRef"],
            serde_json::json!({"resource": "configmaps", "namespace": "default", "name": "audited", "apiVersion": "v1"})
        );
        assert_eq!(
            e["responseStatus"],
            serde_json::json!({"metadata": {}, "code": code})
        );
        assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "allow");
        let t = e["requestReceivedTimestamp"].as_str().unwrap();
        assert_eq!(t.len(), "2026-01-02T15:04:05.123456Z".len(), "{t}");
        assert!(e["stageTimestamp"].as_str().unwrap() >= t);
        assert_eq!(e["auditID"].as_str().unwrap().len(), 36);
    }
    // A refused write is logged with its Status and the authorizer's decision.
    let refused = events
        .iter()
        .find(|e| e["objectRef"]["resource"] == "namespaces" && e["verb"] == "delete")
        .unwrap_or_else(|| panic!("no namespace delete in {text}"));
    assert_eq!(refused["user"]["username"], "system:node:auditor");
    assert_eq!(refused["responseStatus"]["code"], 403);
    assert_eq!(refused["responseStatus"]["reason"], "Forbidden");
    assert_eq!(
        refused["annotations"]["authorization.k8s.io/decision"],
        "forbid"
    );
}

/// The node agent runs with its own credential (`system:node:<name>`, seen in the audit log),
/// reads the secret of its pod through it, and every secret-bearing file under the data
/// directory is private.
#[test]
fn the_agent_works_as_its_node_and_secret_files_are_private() {
    let c = Cluster::new("crun");
    let node = hostname();
    let data = c.data();
    let kubeconfig = data.join("nodes").join(&node).join("kubeconfig");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains(&format!("\n    user: system:node:{node}\n")),
        "{text}"
    );
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "app-secret",
        "--from-literal=key=sesame",
    ]);
    c.apply(&bound_pod("reader", &node, "app-secret", false).replace(
        "[\"sleep\", \"3600\"]",
        "[\"sh\", \"-c\", \"cat /s/key; echo; sleep 3600\"]",
    ));
    c.wait_running("reader");
    c.wait_for("the secret in the pod's log", || {
        (c.kubectl_ok(&["logs", "reader"]) == "sesame\n").then_some(())
    });
    // The agent's writes are its node's.
    let user = format!("system:node:{node}");
    c.wait_for("the node's writes in the audit log", || {
        let log = std::fs::read_to_string(data.join("audit/api.log")).ok()?;
        let events: Vec<Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let by_node = |resource: &str, sub: Option<&str>| {
            events.iter().any(|e| {
                e["user"]["username"] == user.as_str()
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["subresource"].as_str() == sub
                    && e["responseStatus"]["code"]
                        .as_u64()
                        .is_some_and(|c| c < 300)
            })
        };
        (by_node("nodes", None)
            && by_node("nodes", Some("status"))
            && by_node("pods", Some("status"))
            && by_node("leases", None))
        .then_some(())
    });

    // A node started elsewhere gets its credential from `armorlet node credential`: here
    // the Security Profiles Operator daemon alone (`armorlet daemon`) as node `extra-node`.
    // It and the agent each report a SeccompProfile in their own node status.
    let out = armorlet()
        .args(["node", "credential", "extra-node", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let extra = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _daemon = Killed(
        armorlet()
            .args(["daemon", "--node-name", "extra-node", "--kubeconfig"])
            .arg(&extra)
            .arg("--kubelet-root-dir")
            .arg(c.dir.path().join("extra-kubelet"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    c.apply("apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: log-all\nspec:\n  defaultAction: SCMP_ACT_LOG\n");
    for n in [node.as_str(), "extra-node"] {
        c.wait_for(&format!("{n}'s status of log-all"), || {
            let s = c.kubectl_json(&["get", "spns", &format!("log-all-{n}")])?;
            (s["status"] == "Installed" && s["nodeName"] == n).then_some(())
        });
    }

    for f in [
        "store.db",
        "store.db-wal",
        "store.db-shm",
        "admin-token",
        "kubeconfig",
        "pki/ca.key",
        "pki/apiserver.key",
        "pki/apiserver-kubelet-client.key",
        "audit/api.log",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    for f in [
        format!("pki/node-tokens/{node}"),
        format!("nodes/{node}/kubeconfig"),
        format!("nodes/{node}/pki/kubelet.key"),
    ] {
        assert_eq!(mode(&data.join(&f)), 0o600, "{f}");
    }
    for d in [
        "pki".to_owned(),
        "pki/node-tokens".to_owned(),
        "audit".to_owned(),
        format!("nodes/{node}/pki"),
    ] {
        assert_eq!(mode(&data.join(&d)), 0o700, "{d}");
    }
    // Nothing in pki/ is readable by others.
    for e in std::fs::read_dir(data.join("pki")).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p) & 0o077, 0, "{}", p.display());
    }
}
