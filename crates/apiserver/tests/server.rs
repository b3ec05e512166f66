//! The server in-process, driven over real TLS with a minimal HTTP/1.1 client that trusts the
//! generated CA: authentication, watch edge cases (410, bookmarks), pagination, errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use armorlet_apiserver::{Config, Server};
use armorlet_store::{Gvr, Store, WriteOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

struct Running {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    token: String,
    ca: PathBuf,
    store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start(bookmark_interval: Duration) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cfg = Config::new(&data, "127.0.0.1:0".parse().unwrap());
        cfg.bookmark_interval = bookmark_interval;
        cfg.max_body_bytes = 64 * 1024;
        let server = Server::bind(cfg).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = server.local_addr();
        let store = server.store().clone();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Running {
            token: std::fs::read_to_string(data.join("admin-token"))
                .unwrap()
                .trim()
                .to_string(),
            ca: data.join("pki/ca.crt"),
            _dir: dir,
            addr,
            store,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.task.take().unwrap())
            .await
            .expect("server stops")
            .unwrap();
    }

    /// One request on a fresh connection; returns status, lower-cased headers and the body
    /// (de-chunked).
    async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, String) {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&self.ca).unwrap();
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), tls.read_to_end(&mut raw))
            .await
            .expect("response within 60s")
            .ok();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let headers = head.to_ascii_lowercase();
        let body = if headers.contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let token = self.token.clone();
        let (code, _, body) = self.request("GET", path, Some(&token), &[], b"").await;
        (
            code,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    async fn watch_lines(&self, path: &str) -> Vec<Value> {
        let token = self.token.clone();
        let (code, _, body) = self.request("GET", path, Some(&token), &[], b"").await;
        assert_eq!(code, 200, "{body}");
        body.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .map(Result::unwrap)
        .collect()
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

fn cms() -> Gvr {
    Gvr::new("", "v1", "configmaps")
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_token_are_unauthorized_except_public_paths() {
    let s = Running::start(Duration::from_secs(60)).await;
    let (code, headers, body) = s.request("GET", "/version", None, &[], b"").await;
    assert_eq!(code, 200);
    assert!(
        headers.contains("cache-control: no-cache, private"),
        "{headers}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("32"))
    );
    let (code, _, body) = s.request("GET", "/readyz", None, &[], b"").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    for token in [None, Some("wrong"), Some("")] {
        let (code, _, body) = s
            .request("GET", "/api/v1/namespaces", token, &[], b"")
            .await;
        assert_eq!(code, 401);
        let status: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            status,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"Unauthorized","reason":"Unauthorized","code":401})
        );
    }
    // A wrong token is refused even on public paths, as kube-apiserver does.
    let (code, _, _) = s.request("GET", "/version", Some("wrong"), &[], b"").await;
    assert_eq!(code, 401);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_resource_version_ends_with_an_expired_error() {
    let s = Running::start(Duration::from_secs(60)).await;
    for n in ["a", "b", "c"] {
        s.store
            .create(&cms(), "default", cm(n), &WriteOptions::default())
            .unwrap();
    }
    let head = s.store.current_resource_version().unwrap();
    s.store.compact(head).unwrap();
    let lines = s
        .watch_lines("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1")
        .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "ERROR");
    let status = &lines[0]["object"];
    assert_eq!(
        (status["code"].as_u64(), status["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    assert_eq!(
        status["message"],
        format!("too old resource version: 1 ({head})")
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_replay_with_synthetic_added_events_and_send_bookmarks() {
    let s = Running::start(Duration::from_millis(50)).await;
    s.store
        .create(&cms(), "default", cm("a"), &WriteOptions::default())
        .unwrap();
    s.store
        .create(&cms(), "default", cm("b"), &WriteOptions::default())
        .unwrap();
    let head = s.store.current_resource_version().unwrap();
    let lines = s
        .watch_lines("/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=3")
        .await;
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types[..3], ["ADDED", "ADDED", "BOOKMARK"], "{lines:?}");
    assert_eq!(
        lines[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        lines[2]["object"]["metadata"]["resourceVersion"],
        head.to_string()
    );
    assert_eq!(lines[2]["object"]["kind"], "ConfigMap");
    // The 50 ms ticker keeps sending progress bookmarks until the 3 s timeout ends the stream.
    assert!(types[3..].iter().all(|t| *t == "BOOKMARK"), "{types:?}");
    assert!(
        types.len() > 3,
        "no periodic bookmark in 3 s at a 50 ms interval: {types:?}"
    );
    // Without allowWatchBookmarks there are none; the field selector filters the replay.
    let lines = s
        .watch_lines("/api/v1/namespaces/default/configmaps?watch=1&fieldSelector=metadata.name%3Db&timeoutSeconds=1")
        .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (
            lines[0]["type"].as_str(),
            lines[0]["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_limit_and_continue() {
    let s = Running::start(Duration::from_secs(60)).await;
    for n in ["a", "b", "c"] {
        s.store
            .create(&cms(), "default", cm(n), &WriteOptions::default())
            .unwrap();
    }
    let (code, page) = s.get("/api/v1/namespaces/default/configmaps?limit=2").await;
    assert_eq!(code, 200);
    assert_eq!(page["kind"], "ConfigMapList");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["metadata"]["remainingItemCount"], 1);
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page2) = s
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?limit=2&continue={token}"
        ))
        .await;
    assert_eq!(page2["items"][0]["metadata"]["name"], "c");
    assert!(page2["metadata"].get("continue").is_none());
    assert_eq!(
        page2["metadata"]["resourceVersion"],
        page["metadata"]["resourceVersion"]
    );
    let (code, status) = s
        .get("/api/v1/namespaces/default/configmaps?continue=garbage")
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_status_objects() {
    let s = Running::start(Duration::from_secs(60)).await;
    let token = s.token.clone();
    let (code, status) = s.get("/api/v1/nope").await;
    assert_eq!(
        (code, status["message"].as_str()),
        (
            404,
            Some("the server could not find the requested resource")
        )
    );
    let (code, status) = s.get("/api/v1/pods?fieldSelector=spec.foo%3Dx").await;
    assert_eq!(
        (code, status["message"].as_str()),
        (400, Some("field label not supported: spec.foo"))
    );
    let (code, status) = s.get("/api/v1/pods?labelSelector=a%20in%20(b").await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let ct = [("Content-Type", "application/json")];
    let (code, _, body) = s
        .request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&token),
            &ct,
            b"{not json",
        )
        .await;
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, status["kind"].as_str()), (400, Some("Status")));
    let big = vec![b' '; 65 * 1024];
    let (code, _, body) = s
        .request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&token),
            &ct,
            &big,
        )
        .await;
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, status["message"].as_str()),
        (413, Some("Request entity too large: limit is 65536"))
    );
    let (code, _, body) = s
        .request(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/x",
            Some(&token),
            &[("Content-Type", "text/plain")],
            b"{}",
        )
        .await;
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let body = serde_json::to_vec(
        &json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    .unwrap();
    let (code, _, resp) = s
        .request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&token),
            &ct,
            &body,
        )
        .await;
    assert_eq!(code, 400, "{resp}");
    let (code, _, resp) = s
        .request(
            "PUT",
            "/api/v1/namespaces/default/configmaps/other",
            Some(&token),
            &ct,
            &serde_json::to_vec(&cm("x")).unwrap(),
        )
        .await;
    assert_eq!(code, 400, "{resp}");
    let (code, _, resp) = s
        .request("DELETE", "/version", Some(&token), &[], b"")
        .await;
    assert_eq!(code, 405, "{resp}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_discovery_is_served_with_its_content_type() {
    let s = Running::start(Duration::from_secs(60)).await;
    let token = s.token.clone();
    let accept = [(
        "Accept",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    )];
    let (code, headers, body) = s.request("GET", "/apis", Some(&token), &accept, b"").await;
    assert_eq!(code, 200);
    assert!(
        headers.contains(
            "content-type: application/json;g=apidiscovery.k8s.io;v=v2;as=apigroupdiscoverylist"
        ),
        "{headers}"
    );
    let doc: Value = serde_json::from_str(&body).unwrap();
    let groups: Vec<&str> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            "apps",
            "coordination.k8s.io",
            "discovery.k8s.io",
            "apiextensions.k8s.io",
            "rbac.authorization.k8s.io",
            "events.k8s.io",
            "security-profiles-operator.x-k8s.io"
        ]
    );
    let (_, legacy) = s.get("/api").await;
    assert_eq!(legacy["kind"], "APIVersions");
    let (_, list) = s.get("/apis/apps/v1").await;
    assert_eq!(list["groupVersion"], "apps/v1");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_creates_pass_confinement_admission_with_status_causes_and_warnings() {
    let s = Running::start(Duration::from_secs(60)).await;
    let token = s.token.clone();
    let ct = [("Content-Type", "application/json")];
    let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {
        "securityContext": {"seccompProfile": {"type": "Localhost"}},
        "containers": [{"name": "hello", "image": "busybox:1.28"}]}});
    let (code, _, resp) = s
        .request(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(&token),
            &ct,
            &serde_json::to_vec(&bad).unwrap(),
        )
        .await;
    let status: Value = serde_json::from_str(&resp).unwrap();
    assert_eq!(code, 422, "{resp}");
    let field = "spec.securityContext.seccompProfile.localhostProfile";
    let cause = "Required value: must be set when seccomp type is Localhost";
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("Pod \"bad\" is invalid: {field}: {cause}"),
            "reason": "Invalid", "code": 422,
            "details": {"name": "bad", "kind": "Pod", "causes": [
                {"reason": "FieldValueRequired", "message": cause, "field": field}]}})
    );
    let warned = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "warned",
        "annotations": {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}},
        "spec": {"containers": [{"name": "hello", "image": "busybox:1.28"}]}});
    let body = serde_json::to_vec(&warned).unwrap();
    let (code, headers, resp) = s
        .request(
            "POST",
            "/api/v1/namespaces/default/pods?dryRun=All",
            Some(&token),
            &ct,
            &body,
        )
        .await;
    assert_eq!(code, 201, "{resp}");
    assert!(
        headers.contains("warning: 299 - \"metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the \\\"seccompprofile\\\" field instead\""),
        "{headers}"
    );
    let (code, _) = s.get("/api/v1/namespaces/default/pods/warned").await;
    assert_eq!(code, 404);
    s.shutdown().await;
}
