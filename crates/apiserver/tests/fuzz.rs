//! Bounded in-suite fuzzing of what the API server decodes from clients.
//!
//! In process (`fuzz_request_decoders`): the protobuf envelope decoder, the three PATCH
//! flavours applied to the objects of `testdata/fuzz/requests/` (pods, a PodSecurityPolicy,
//! a CustomResourceDefinition and its objects, ...), label and field selectors, query strings
//! and Content-Types; inputs are arbitrary bytes, token soup and tree mutations of the corpus.
//! Every case runs on a worker thread with panics caught and a time bound.
//!
//! Over HTTPS (`malformed_requests_get_status_errors`): a real server, as `tests/server.rs`
//! starts one, gets a few hundred malformed requests to create, update, patch, list and watch
//! endpoints (truncated JSON, wrong kinds and apiVersions, huge numbers, invalid UTF-8,
//! mismatched Content-Types, broken patches of each type, bad query parameters), then mutated
//! corpus objects. Every failure must be a Kubernetes `Status` (kind Status, `code` equal to
//! the HTTP status, a reason and a non-empty message), nothing may be a 5xx, the cases whose
//! answer kube-apiserver fixes get that answer, and afterwards the server still serves.
//!
//! `ARMORLET_FUZZ_SCALE` (default 1) scales the generated cases; each test prints one
//! summary line (`--nocapture` shows them).

use armorlet_fuzzkit::{bounded, corpus_dir, run, scale};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use armorlet_apiserver::http::{percent_decode, Query};
use armorlet_apiserver::patch::{self, PatchType};
use armorlet_apiserver::{protobuf, ApiError, Config, Server};
use armorlet_store::{FieldSelector, LabelSelector};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// Upper bound for one in-process case.
const CASE_LIMIT: Duration = Duration::from_secs(10);

/// The corpus: file name and JSON value, sorted by name.
fn corpus() -> &'static [(String, Value)] {
    static C: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = corpus_dir("requests");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let c: Vec<(String, Value)> = files
            .into_iter()
            .map(|p| {
                let v = serde_json::from_slice(&std::fs::read(&p).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (p.file_name().unwrap().to_string_lossy().into_owned(), v)
            })
            .collect();
        assert!(
            c.len() >= 10,
            "expected the request corpus in {}",
            dir.display()
        );
        c
    })
}

fn seed(name: &str) -> Value {
    corpus()
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} is not in the corpus"))
        .1
        .clone()
}

/// The corpus objects (not the patches).
fn objects() -> Vec<Value> {
    corpus()
        .iter()
        .filter(|(n, _)| !n.starts_with("patch-"))
        .map(|(_, v)| v.clone())
        .collect()
}

/// An `ApiError` must carry a Kubernetes status: a 4xx code, a reason and a message.
fn check_api_error(e: &ApiError, allowed: &[u16]) -> Result<(), String> {
    if !allowed.contains(&e.code) || e.reason.is_empty() || e.message.trim().is_empty() {
        return Err(format!(
            "unexpected error {e:?} (allowed codes {allowed:?})"
        ));
    }
    let s = e.to_status();
    if s["kind"] != "Status" || s["code"] != e.code || s["status"] != "Failure" {
        return Err(format!("bad Status {s}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generators.

/// Interesting JSON values: wrong types, boundaries, directives, deep and big things.
fn interesting(pick: usize) -> Value {
    let all = [
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(0.5),
        json!(""),
        json!("x".repeat(10_000)),
        json!("\u{0}\u{ffff}\u{10ffff}"),
        json!("v1"),
        json!("Pod"),
        json!("Status"),
        json!("policy/v1beta1"),
        json!("apps/v1"),
        json!("../../etc"),
        json!("runtime/default"),
        json!("localhost/../x"),
        json!("RuntimeDefault"),
        json!("Localhost"),
        json!("Unconfined"),
        json!([]),
        json!({}),
        json!([null, 1, "a", {}]),
        json!({"$patch": "delete"}),
        json!({"$patch": "replace"}),
        json!({"$patch": "merge"}),
        json!({"$retainKeys": ["a"]}),
        json!({"$deleteFromPrimitiveList/finalizers": ["a"]}),
        json!({"$setElementOrder/containers": [{"name": "x"}]}),
        json!([{"name": "hello", "image": "busybox"}]),
        json!([{"name": "hello", "$patch": "delete"}]),
        json!({"name": "x", "containerPort": -1}),
        json!({"type": "Localhost", "localhostProfile": "../x.json"}),
        json!({"seccompProfile": {"type": "Bogus"}}),
        json!({"container.apparmor.security.beta.kubernetes.io/hello": "localhost/"}),
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
        serde_json::from_str(&format!("{}{}", "[".repeat(100), "]".repeat(100))).unwrap(),
        serde_json::from_str(&format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100))).unwrap(),
    ];
    all[pick % all.len()].clone()
}

const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "generateName",
    "labels",
    "annotations",
    "resourceVersion",
    "uid",
    "finalizers",
    "ownerReferences",
    "deletionTimestamp",
    "spec",
    "status",
    "containers",
    "initContainers",
    "image",
    "securityContext",
    "seccompProfile",
    "appArmorProfile",
    "type",
    "localhostProfile",
    "ports",
    "containerPort",
    "nodeName",
    "volumes",
    "tolerations",
    "data",
    "versions",
    "schema",
    "openAPIV3Schema",
    "x-kubernetes-preserve-unknown-fields",
    "op",
    "path",
    "from",
    "value",
    "$patch",
    "unknownField",
];

#[derive(Debug, Clone)]
enum Edit {
    Replace {
        node: usize,
        value: usize,
    },
    Remove {
        node: usize,
    },
    AddField {
        node: usize,
        field: usize,
        value: usize,
    },
    Duplicate {
        node: usize,
        times: usize,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    let n = any::<usize>();
    prop_oneof![
        4 => (n, n).prop_map(|(node, value)| Edit::Replace { node, value }),
        2 => n.prop_map(|node| Edit::Remove { node }),
        3 => (n, n, n).prop_map(|(node, field, value)| Edit::AddField { node, field, value }),
        1 => (n, 1..200usize).prop_map(|(node, times)| Edit::Duplicate { node, times }),
    ]
}

fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn apply_edits(mut doc: Value, edits: &[Edit]) -> Value {
    for e in edits {
        let mut ptrs = Vec::new();
        pointers(&doc, String::new(), &mut ptrs);
        let at = |i: usize| ptrs[i % ptrs.len()].clone();
        let parent = |p: &str| {
            p.rsplit_once('/')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        };
        match *e {
            Edit::Replace { node, value } => {
                if let Some(slot) = doc.pointer_mut(&at(node)) {
                    *slot = interesting(value);
                }
            }
            Edit::Remove { node } => {
                let Some((p, key)) = parent(&at(node)) else {
                    continue;
                };
                match doc.pointer_mut(&p) {
                    Some(Value::Object(m)) => {
                        m.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(i) = key.parse::<usize>() {
                            if i < a.len() {
                                a.remove(i);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Edit::AddField { node, field, value } => {
                let p = at(node);
                let target = match doc.pointer(&p) {
                    Some(Value::Object(_)) => p,
                    _ => parent(&p).map(|(q, _)| q).unwrap_or_default(),
                };
                if let Some(Value::Object(m)) = doc.pointer_mut(&target) {
                    m.insert(FIELDS[field % FIELDS.len()].into(), interesting(value));
                }
            }
            Edit::Duplicate { node, times } => {
                let p = at(node);
                let target = match doc.pointer(&p) {
                    Some(Value::Array(_)) => p,
                    _ => parent(&p).map(|(q, _)| q).unwrap_or_default(),
                };
                if let Some(Value::Array(a)) = doc.pointer_mut(&target) {
                    if let Some(first) = a.first().cloned() {
                        a.extend(std::iter::repeat_n(first, times));
                    }
                }
            }
        }
    }
    doc
}

/// A random JSON patch operation list (RFC 6902), pointers into the common fields.
fn json_patch_ops() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(
        &[
            "add", "remove", "replace", "move", "copy", "test", "frob", "",
        ][..],
    );
    let path = prop::sample::select(
        &[
            "",
            "/",
            "/metadata",
            "/metadata/labels",
            "/metadata/labels/a",
            "/metadata/labels/a~1b",
            "/metadata/name",
            "/spec/containers/0",
            "/spec/containers/-",
            "/spec/containers/99",
            "/spec/containers/-1",
            "/spec/containers/01",
            "/spec/containers/18446744073709551616",
            "/kind",
            "/apiVersion",
            "/status",
            "metadata",
            "/~2",
            "/a/b/c/d",
        ][..],
    );
    prop::collection::vec((op, path.clone(), path, any::<usize>()), 0..6).prop_map(|ops| {
        Value::Array(
            ops.into_iter()
                .map(|(op, path, from, v)| json!({"op": op, "path": path, "from": from, "value": interesting(v)}))
                .collect(),
        )
    })
}

/// A valid protobuf envelope of a ConfigMap, Namespace or Secret (kinds the decoder knows).
fn envelope(kind_pick: usize, name: &str) -> Vec<u8> {
    fn field(num: u64, data: &[u8]) -> Vec<u8> {
        let mut v = varint(num << 3 | 2);
        v.extend(varint(data.len() as u64));
        v.extend_from_slice(data);
        v
    }
    fn varint(mut x: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (x & 0x7f) as u8;
            x >>= 7;
            if x == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }
    let meta = [
        field(1, name.as_bytes()),
        field(11, &[field(1, b"app"), field(2, b"web")].concat()),
    ]
    .concat();
    let (kind, raw) = match kind_pick % 3 {
        0 => (
            "ConfigMap",
            [
                field(1, &meta),
                field(2, &[field(1, b"k"), field(2, b"v")].concat()),
            ]
            .concat(),
        ),
        1 => ("Namespace", field(1, &meta)),
        _ => (
            "Secret",
            [
                field(1, &meta),
                field(2, &[field(1, b"k"), field(2, b"\x00\xff")].concat()),
            ]
            .concat(),
        ),
    };
    let type_meta = [field(1, b"v1"), field(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &raw)].concat()
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| ByteEdit::Set(a, b)),
        (
            any::<usize>(),
            prop_oneof![
                Just(vec![0xff; 10]),
                Just(vec![0x80; 11]),
                Just(vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
                prop::collection::vec(any::<u8>(), 1..8)
            ]
        )
            .prop_map(|(a, b)| ByteEdit::Insert(a, b)),
        (any::<usize>(), 1..20usize).prop_map(|(a, n)| ByteEdit::Delete(a, n)),
        any::<usize>().prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(mut b: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        let n = b.len();
        let pos = |a: usize| if n == 0 { 0 } else { a % (n + 1) };
        match e {
            ByteEdit::Set(a, v) if n > 0 => b[a % n] = *v,
            ByteEdit::Insert(a, v) => {
                let p = pos(*a);
                b.splice(p..p, v.iter().copied());
            }
            ByteEdit::Delete(a, len) => {
                let p = pos(*a);
                b.drain(p..(p + len).min(n));
            }
            ByteEdit::Truncate(a) => b.truncate(pos(*a)),
            _ => {}
        }
    }
    b
}

const SELECTOR_TOKENS: &[&str] = &[
    "a",
    "b",
    "app",
    "metadata.name",
    "spec.nodeName",
    "status.phase",
    "=",
    "==",
    "!=",
    "!",
    ",",
    " in ",
    " notin ",
    "(",
    ")",
    " ",
    "x/y",
    "example.com/k",
    "-",
    ".",
    "_",
    "a.b",
    "=a",
    "\u{e9}",
    "\0",
    "%",
    "%3D",
    "0",
    "exists",
    "\\",
    "\\,",
    "\\=",
];

fn selector_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(SELECTOR_TOKENS), 0..16).prop_map(|t| t.concat())
}

// ---------------------------------------------------------------------------
// In process.

#[test]
fn fuzz_request_decoders() {
    let start = Instant::now();
    let s = scale();
    let cases = AtomicUsize::new(0);
    let panics = AtomicUsize::new(0);
    let decoded = AtomicUsize::new(0);
    let bounded_case = |f: Box<dyn FnOnce() -> Result<bool, String> + Send>| -> Result<(), String> {
        cases.fetch_add(1, Ordering::Relaxed);
        let r = bounded(CASE_LIMIT, f).and_then(|r| r);
        match &r {
            Err(e) if e.starts_with("PANIC") => {
                panics.fetch_add(1, Ordering::Relaxed);
            }
            Ok(true) => {
                decoded.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        r.map(|_| ())
    };
    let protobuf_case = |body: Vec<u8>| {
        bounded_case(Box::new(move || match protobuf::decode(&body) {
            Ok(v) => {
                if !v.is_object() || v["kind"].as_str().is_none_or(str::is_empty) {
                    return Err(format!("decoded to {v}"));
                }
                Ok(true)
            }
            Err(e) if e.trim().is_empty() => Err("an error without a message".into()),
            Err(_) => Ok(false),
        }))
    };
    let mut failures = Vec::new();
    failures.extend(run(
        "protobuf: arbitrary bytes",
        600 * s,
        (any::<bool>(), prop::collection::vec(any::<u8>(), 0..512)),
        |(prefix, b)| {
            let body = if prefix {
                [b"k8s\0".as_slice(), &b].concat()
            } else {
                b
            };
            protobuf_case(body)
        },
    ));
    failures.extend(run(
        "protobuf: mutated envelopes",
        1200 * s,
        (any::<usize>(), prop::collection::vec(byte_edit(), 1..5)),
        |(k, edits)| protobuf_case(apply_bytes(envelope(k, "fuzzed"), &edits)),
    ));
    let patch_case = |ty: PatchType, mut doc: Value, p: Value| {
        bounded_case(Box::new(move || match patch::apply(ty, &mut doc, &p) {
            Ok(()) => Ok(true),
            Err(e) => check_api_error(&e, &[400, 422]).map(|()| false),
        }))
    };
    let objects = objects();
    let patches: Vec<(PatchType, Value)> = vec![
        (PatchType::Merge, seed("patch-merge.json")),
        (PatchType::Strategic, seed("patch-strategic.json")),
        (PatchType::Json, seed("patch-json.json")),
        (PatchType::Apply, seed("patch-apply.json")),
    ];
    failures.extend(run(
        "patch: mutated corpus patches on mutated corpus objects",
        1500 * s,
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            prop::collection::vec(edit(), 0..4),
            prop::collection::vec(edit(), 0..3),
            any::<prop::sample::Index>(),
        ),
        |(o, p, patch_edits, doc_edits, ty)| {
            let doc = apply_edits(o.get(&objects).clone(), &doc_edits);
            let (own_ty, patch) = p.get(&patches).clone();
            // The patch's own type half the time, any type otherwise.
            let tys = [
                own_ty,
                PatchType::Merge,
                PatchType::Strategic,
                PatchType::Json,
                PatchType::Apply,
            ];
            let ty = if ty.index(2) == 0 {
                own_ty
            } else {
                *ty.get(&tys)
            };
            patch_case(ty, doc, apply_edits(patch, &patch_edits))
        },
    ));
    failures.extend(run(
        "patch: generated JSON patches",
        800 * s,
        (any::<prop::sample::Index>(), json_patch_ops()),
        |(o, ops)| patch_case(PatchType::Json, o.get(&objects).clone(), ops),
    ));
    failures.extend(run(
        "selectors, query strings, content types",
        1500 * s,
        (
            selector_soup(),
            "[ -~]{0,40}",
            prop::collection::vec(any::<u8>(), 0..64),
        ),
        |(sel, text, raw)| {
            bounded_case(Box::new(move || {
                for r in [
                    LabelSelector::parse(&sel).err(),
                    FieldSelector::parse(&sel).err(),
                ]
                .into_iter()
                .flatten()
                {
                    if r.to_string().trim().is_empty() {
                        return Err(format!("selector error without a message for {sel:?}"));
                    }
                }
                let lossy = String::from_utf8_lossy(&raw).into_owned();
                for q in [&sel, &text, &lossy] {
                    let parsed = Query::parse(Some(q));
                    let _ = (
                        parsed.get("limit"),
                        parsed.flag("watch"),
                        parsed.all("dryRun"),
                    );
                    let _ = percent_decode(q);
                    if let Err(e) = PatchType::from_content_type(q) {
                        check_api_error(&e, &[415])?;
                    }
                }
                Ok(true)
            }))
        },
    ));
    // Regression inputs: JSON patches that once panicked, on every corpus object.
    let dir = corpus_dir("requests").join("regressions");
    let mut regressions: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    regressions.sort();
    for p in regressions {
        let patch: Value = serde_json::from_slice(&std::fs::read(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for o in &objects {
            for ty in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
                if let Err(e) = patch_case(ty, o.clone(), patch.clone()) {
                    failures.push(format!("regression {}: {e}", p.display()));
                }
            }
        }
    }
    let cases = cases.load(Ordering::Relaxed);
    let panics = panics.load(Ordering::Relaxed);
    println!(
        "fuzz: requests (decoders): {cases} cases in {:.1} s, {panics} panics ({} decoded or applied)",
        start.elapsed().as_secs_f64(),
        decoded.load(Ordering::Relaxed)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(panics, 0);
}

// ---------------------------------------------------------------------------
// Over HTTPS.

struct Running {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    token: String,
    tls: tokio_rustls::TlsConnector,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Response {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Running {
    async fn start() -> Running {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cfg = Config::new(&data, "127.0.0.1:0".parse().unwrap());
        cfg.max_body_bytes = 256 * 1024;
        // PodSecurityPolicy is served up to 1.24.
        cfg.emulated_version = "1.24".parse().unwrap();
        let server = Server::bind(cfg).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = server.local_addr();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(data.join("pki/ca.crt")).unwrap();
        use rustls_pki_types::pem::PemObject;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Running {
            token: std::fs::read_to_string(data.join("admin-token"))
                .unwrap()
                .trim()
                .to_string(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            _dir: dir,
            addr,
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

    /// One request on a fresh connection, as the admin; an error if no complete response
    /// comes within 20 s (a watch that does not end, a handler that died).
    async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n",
            self.token,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        tls.write_all(body)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        let label = format!("{method} {}", path.chars().take(200).collect::<String>());
        tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut raw))
            .await
            .map_err(|_| format!("{label}: no complete response within 20 s"))?
            .ok();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| {
                format!(
                    "{label}: no response head in {:?}",
                    String::from_utf8_lossy(&raw)
                )
            })?;
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{label}: bad status line in {head:?}"))?;
        let mut body = raw[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        Ok(Response {
            status,
            headers: head,
            body,
        })
    }
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = s.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&s[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let start = i + 2;
        out.extend_from_slice(&s[start..(start + n).min(s.len())]);
        s = &s[(start + n + 2).min(s.len())..];
    }
    out
}

/// One malformed request and what kube-apiserver answers it with, when that is fixed
/// (`None`: any 2xx or 4xx, as long as a failure is a proper Status).
struct Probe {
    what: String,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    want: Option<u16>,
}

fn probe(
    what: impl Into<String>,
    method: &'static str,
    path: impl Into<String>,
    ct: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    want: Option<u16>,
) -> Probe {
    Probe {
        what: what.into(),
        method,
        path: path.into(),
        content_type: ct,
        body: body.into(),
        want,
    }
}

/// Checks a response against the Status contract; returns the Status (or `Null` for 2xx).
fn check_response(p: &Probe, r: &Response) -> Result<Value, String> {
    let text = String::from_utf8_lossy(&r.body);
    let label = format!(
        "{} ({} {}): {} {}",
        p.what,
        p.method,
        p.path.chars().take(200).collect::<String>(),
        r.status,
        text.chars().take(400).collect::<String>()
    );
    if r.status >= 500 {
        return Err(format!("server error: {label}"));
    }
    if let Some(want) = p.want {
        if r.status != want {
            return Err(format!("expected {want}: {label}"));
        }
    }
    if r.status < 400 {
        if !r.headers.contains("transfer-encoding: chunked") {
            // Syntax only (`IgnoredAny` has no nesting limit): a list wraps an object that is
            // as deep as the server stores in two more levels, which Go clients read.
            serde_json::from_slice::<serde::de::IgnoredAny>(&r.body)
                .map_err(|e| format!("a 2xx body that is not JSON ({e}): {label}"))?;
        }
        return Ok(Value::Null);
    }
    let s: Value =
        serde_json::from_slice(&r.body).map_err(|e| format!("not a JSON Status ({e}): {label}"))?;
    let ok = s["kind"] == "Status"
        && s["apiVersion"] == "v1"
        && s["status"] == "Failure"
        && s["code"] == r.status
        && s["reason"].as_str().is_some_and(|x| !x.is_empty())
        && s["message"].as_str().is_some_and(|x| !x.trim().is_empty());
    if !ok || !r.headers.contains("content-type: application/json") {
        return Err(format!("not a proper Status: {label}"));
    }
    Ok(s)
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const CMS: &str = "/api/v1/namespaces/default/configmaps";
const PSPS: &str = "/apis/policy/v1beta1/podsecuritypolicies";
const WIDGETS: &str = "/apis/fuzz.example.com/v1/namespaces/default/widgets";
const JSON_CT: Option<&str> = Some("application/json");

/// The hand-written malformed requests.
fn probes() -> Vec<Probe> {
    let pod = serde_json::to_vec(&seed("pod-seccomp-fields.json")).unwrap();
    let pod_name = seed("pod-seccomp-fields.json")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let mut v = Vec::new();
    // Bodies of create.
    for cut in [0, 1, 10, pod.len() / 2, pod.len() - 1] {
        v.push(probe(
            format!("pod truncated at {cut}"),
            "POST",
            PODS,
            JSON_CT,
            &pod[..cut],
            Some(400),
        ));
    }
    for (what, body, want) in [
        ("a JSON array", b"[]".to_vec(), Some(400)),
        ("a JSON string", b"\"pod\"".to_vec(), Some(400)),
        ("null", b"null".to_vec(), Some(400)),
        ("invalid UTF-8", b"{\"metadata\":{\"name\":\"\xff\xfe\"}}".to_vec(), Some(400)),
        ("a lone surrogate", br#"{"metadata":{"name":"\ud800"}}"#.to_vec(), Some(400)),
        ("NUL bytes", vec![0; 64], Some(400)),
        ("trailing garbage", [pod.as_slice(), b"}}}"].concat(), Some(400)),
        ("two objects", [pod.as_slice(), pod.as_slice()].concat(), Some(400)),
        ("1000 nested arrays", format!("{{\"a\":{}{}}}", "[".repeat(1000), "]".repeat(1000)).into_bytes(), Some(400)),
        ("a huge number", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"n1","generation":1e400}}"#.to_vec(), None),
        ("a 20-digit integer", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"n2"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":99999999999999999999}]}]}}"#.to_vec(), None),
        ("a negative port", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"n3"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":-5}]}]}}"#.to_vec(), None),
        ("wrong kind", br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"k"}}"#.to_vec(), Some(400)),
        ("kind Status", br#"{"apiVersion":"v1","kind":"Status","metadata":{"name":"k"}}"#.to_vec(), Some(400)),
        ("wrong apiVersion", br#"{"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"k"}}"#.to_vec(), Some(400)),
        ("kind of the wrong type", br#"{"apiVersion":"v1","kind":7,"metadata":{"name":"k"}}"#.to_vec(), None),
        ("metadata of the wrong type", br#"{"apiVersion":"v1","kind":"Pod","metadata":"x"}"#.to_vec(), None),
        ("labels of the wrong type", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"k","labels":[1]}}"#.to_vec(), None),
        ("spec of the wrong type", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"k"},"spec":[]}"#.to_vec(), None),
        ("containers of the wrong type", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"k"},"spec":{"containers":{"a":1}}}"#.to_vec(), None),
        ("a namespace of another namespace", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"k","namespace":"other"}}"#.to_vec(), Some(400)),
        ("no name", br#"{"apiVersion":"v1","kind":"Pod","metadata":{},"spec":{"containers":[{"name":"c","image":"i"}]}}"#.to_vec(), None),
        ("an invalid name", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"UPPER_case"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#.to_vec(), None),
        ("a bad seccomp type", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"sc"},"spec":{"securityContext":{"seccompProfile":{"type":"Bogus"}},"containers":[{"name":"c","image":"i"}]}}"#.to_vec(), None),
        ("a localhost profile with ..", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"sc2"},"spec":{"securityContext":{"seccompProfile":{"type":"Localhost","localhostProfile":"../../etc/x"}},"containers":[{"name":"c","image":"i"}]}}"#.to_vec(), None),
        ("a 10k-character label", format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"l","labels":{{"a":"{}"}}}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}"#, "x".repeat(10_000)).into_bytes(), None),
    ] {
        v.push(probe(format!("create: {what}"), "POST", PODS, JSON_CT, body, want));
    }
    // Content types.
    for (ct, want) in [
        (Some("text/plain"), None),
        (Some("application/yaml"), None),
        (Some("application/vnd.kubernetes.protobuf"), Some(415)),
        (Some("application/json; charset=utf-16"), None),
        (Some(";;;"), None),
        (None, None),
    ] {
        v.push(probe(
            format!("create with Content-Type {ct:?}"),
            "POST",
            CMS,
            ct,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"ct-"}}"#.to_vec(),
            want,
        ));
    }
    v.push(probe(
        "YAML body as YAML",
        "POST",
        CMS,
        Some("application/yaml"),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n".to_vec(),
        None,
    ));
    v.push(probe(
        "protobuf garbage",
        "POST",
        CMS,
        Some("application/vnd.kubernetes.protobuf"),
        b"k8s\0\x0a\xff\xff\xff\xff\xff\xff".to_vec(),
        Some(415),
    ));
    // Update.
    let at = format!("{PODS}/{pod_name}");
    for (what, body, want) in [
        ("truncated", pod[..pod.len() / 2].to_vec(), Some(400)),
        (
            "another name",
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"other"}}"#.to_vec(),
            Some(400),
        ),
        (
            "wrong kind",
            br#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"x"}}"#.to_vec(),
            Some(400),
        ),
        (
            "a stale resourceVersion",
            serde_json::to_vec(&{
                let mut p = seed("pod-seccomp-fields.json");
                p["metadata"]["resourceVersion"] = json!("1");
                p
            })
            .unwrap(),
            Some(409),
        ),
        (
            "a non-numeric resourceVersion",
            serde_json::to_vec(&{
                let mut p = seed("pod-seccomp-fields.json");
                p["metadata"]["resourceVersion"] = json!("abc");
                p
            })
            .unwrap(),
            None,
        ),
        ("an empty body", Vec::new(), Some(400)),
    ] {
        v.push(probe(
            format!("update: {what}"),
            "PUT",
            at.clone(),
            JSON_CT,
            body,
            want,
        ));
    }
    v.push(probe(
        "update of a missing object",
        "PUT",
        format!("{PODS}/missing"),
        JSON_CT,
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"missing"}}"#.to_vec(),
        None,
    ));
    // Patches of each type.
    let merge = Some("application/merge-patch+json");
    let strategic = Some("application/strategic-merge-patch+json");
    let jsonp = Some("application/json-patch+json");
    let apply = Some("application/apply-patch+yaml");
    for (what, ct, body, want) in [
        (
            "merge: truncated",
            merge,
            b"{\"metadata\":".to_vec(),
            Some(400),
        ),
        ("merge: not JSON", merge, b"labels: a".to_vec(), Some(400)),
        ("merge: null", merge, b"null".to_vec(), None),
        ("merge: an array", merge, b"[1,2]".to_vec(), None),
        (
            "merge: change the kind",
            merge,
            br#"{"kind":"Service"}"#.to_vec(),
            None,
        ),
        (
            "merge: change the name",
            merge,
            br#"{"metadata":{"name":"renamed"}}"#.to_vec(),
            None,
        ),
        (
            "merge: a wrong type for spec",
            merge,
            br#"{"spec":"x"}"#.to_vec(),
            None,
        ),
        (
            "merge: invalid UTF-8",
            merge,
            b"{\"metadata\":{\"labels\":{\"a\":\"\xff\"}}}".to_vec(),
            Some(400),
        ),
        ("strategic: an array", strategic, b"[]".to_vec(), Some(400)),
        (
            "strategic: a string",
            strategic,
            b"\"x\"".to_vec(),
            Some(400),
        ),
        (
            "strategic: bad directives",
            strategic,
            br#"{"spec":{"containers":[{"$patch":"delete"}],"$patch":"frob"},"$retainKeys":5}"#
                .to_vec(),
            None,
        ),
        (
            "strategic: delete every container",
            strategic,
            br#"{"spec":{"containers":{"$patch":"replace"}}}"#.to_vec(),
            None,
        ),
        (
            "strategic: a deleteFromPrimitiveList of the wrong type",
            strategic,
            br#"{"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}}"#.to_vec(),
            None,
        ),
        (
            "json: an object",
            jsonp,
            br#"{"op":"add"}"#.to_vec(),
            Some(400),
        ),
        (
            "json: an unknown op",
            jsonp,
            br#"[{"op":"frob","path":"/a"}]"#.to_vec(),
            Some(400),
        ),
        (
            "json: no path",
            jsonp,
            br#"[{"op":"add","value":1}]"#.to_vec(),
            Some(400),
        ),
        (
            "json: a path without /",
            jsonp,
            br#"[{"op":"add","path":"metadata","value":1}]"#.to_vec(),
            None,
        ),
        (
            "json: remove a missing field",
            jsonp,
            br#"[{"op":"remove","path":"/metadata/nope"}]"#.to_vec(),
            Some(422),
        ),
        (
            "json: a failing test",
            jsonp,
            br#"[{"op":"test","path":"/metadata/name","value":"other"}]"#.to_vec(),
            Some(422),
        ),
        (
            "json: replace the root",
            jsonp,
            br#"[{"op":"replace","path":"","value":[]}]"#.to_vec(),
            None,
        ),
        (
            "json: move into itself",
            jsonp,
            br#"[{"op":"move","from":"/metadata","path":"/metadata/x"}]"#.to_vec(),
            None,
        ),
        (
            "json: remove the metadata",
            jsonp,
            br#"[{"op":"remove","path":"/metadata"}]"#.to_vec(),
            None,
        ),
        (
            "json: 10k operations",
            jsonp,
            serde_json::to_vec(&vec![
                json!({"op":"test","path":"/kind","value":"Pod"});
                10_000
            ])
            .unwrap(),
            None,
        ),
        (
            "apply: YAML",
            apply,
            b"apiVersion: v1\nkind: Pod\n".to_vec(),
            None,
        ),
        (
            "apply: truncated JSON",
            apply,
            b"{\"apiVersion\":".to_vec(),
            None,
        ),
        (
            "apply: another name",
            apply,
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"other"}}"#.to_vec(),
            None,
        ),
        (
            "unknown patch type",
            Some("application/foo-patch+json"),
            b"{}".to_vec(),
            Some(415),
        ),
        ("no patch type", None, b"{}".to_vec(), Some(415)),
        ("JSON as a patch type", JSON_CT, b"{}".to_vec(), Some(415)),
    ] {
        v.push(probe(
            format!("patch: {what}"),
            "PATCH",
            at.clone(),
            ct,
            body,
            want,
        ));
    }
    v.push(probe(
        "patch of a missing object",
        "PATCH",
        format!("{PODS}/missing"),
        merge,
        b"{}".to_vec(),
        Some(404),
    ));
    for (what, path) in [
        ("an index out of range", "/spec/tags/99"),
        ("a huge index", "/spec/tags/18446744073709551616"),
        ("a negative index", "/spec/tags/-1"),
        ("a leading zero", "/spec/tags/01"),
    ] {
        let body = format!(r#"[{{"op":"add","path":"{path}","value":"t"}}]"#);
        v.push(probe(
            format!("patch: json: {what}"),
            "PATCH",
            format!("{WIDGETS}/w1"),
            jsonp,
            body.into_bytes(),
            Some(422),
        ));
    }
    v.push(probe(
        "patch of a custom object with a wrong type",
        "PATCH",
        format!("{WIDGETS}/w1"),
        merge,
        br#"{"spec":{"size":"big"}}"#.to_vec(),
        None,
    ));
    v.push(probe(
        "patch of a custom object out of range",
        "PATCH",
        format!("{WIDGETS}/w1"),
        merge,
        br#"{"spec":{"size":1000,"name":"UPPER"}}"#.to_vec(),
        Some(422),
    ));
    v.push(probe("create a custom object with a wrong type", "POST", WIDGETS, JSON_CT, br#"{"apiVersion":"fuzz.example.com/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"size":"x","tags":"y"}}"#.to_vec(), Some(422)));
    // Nesting past serde_json's 128 levels by patching a deep value under another one: the
    // stored object must stay readable (or the patch be refused).
    let deep = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    v.push(probe("create a 120-deep custom object", "POST", WIDGETS, JSON_CT, format!(r#"{{"apiVersion":"fuzz.example.com/v1","kind":"Widget","metadata":{{"name":"deep"}},"spec":{{"free":{}}}}}"#, deep(120)).into_bytes(), Some(201)));
    v.push(probe(
        "nest it 240 deep with a JSON patch",
        "PATCH",
        format!("{WIDGETS}/deep"),
        Some("application/json-patch+json"),
        format!(
            r#"[{{"op":"replace","path":"/spec/free{}","value":{}}}]"#,
            "/a".repeat(119),
            deep(120)
        )
        .into_bytes(),
        None,
    ));
    v.push(probe(
        "nest it 240 deep with a merge patch",
        "PATCH",
        format!("{WIDGETS}/deep"),
        Some("application/merge-patch+json"),
        format!(r#"{{"spec":{{"free":{}}}}}"#, deep(125)).into_bytes(),
        None,
    ));
    v.push(probe(
        "read the deep object",
        "GET",
        format!("{WIDGETS}/deep"),
        None,
        Vec::new(),
        Some(200),
    ));
    v.push(probe("create a PSP with a wrong type", "POST", PSPS, JSON_CT, br#"{"apiVersion":"policy/v1beta1","kind":"PodSecurityPolicy","metadata":{"name":"p2"},"spec":{"privileged":"yes","seLinux":{"rule":5}}}"#.to_vec(), None));
    v.push(probe("create a CRD without versions", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", JSON_CT, br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"x.y.z"},"spec":{"group":"y.z","names":{"plural":"x","kind":"X"},"scope":"Bogus","versions":[]}}"#.to_vec(), Some(422)));
    // Query parameters of list and watch.
    for (q, want) in [
        ("limit=-1", None),
        ("limit=abc", Some(400)),
        ("limit=99999999999999999999", Some(400)),
        ("limit=1.5", Some(400)),
        ("limit=", None),
        ("continue=garbage", Some(400)),
        ("continue=%ff%fe", Some(400)),
        ("resourceVersion=abc", None),
        ("resourceVersion=-1", None),
        ("resourceVersionMatch=Bogus", None),
        ("fieldSelector===", Some(400)),
        ("fieldSelector=metadata.name", Some(400)),
        ("fieldSelector=spec.unknownField%3Dx", Some(400)),
        ("fieldSelector=%3D%3D%3D%2C%2C", Some(400)),
        ("labelSelector=a%20in%20(", Some(400)),
        ("labelSelector=!!a", Some(400)),
        ("labelSelector=a%3D%3D%3Db", Some(400)),
        ("labelSelector=%ff", Some(400)),
        ("labelSelector=a,,b", Some(400)),
        ("includeObject=Bogus", None),
        ("timeoutSeconds=x", None),
        ("pretty=maybe", None),
        ("%zz=%zz&&&=", None),
    ] {
        v.push(probe(
            format!("list ?{q}"),
            "GET",
            format!("{PODS}?{q}"),
            None,
            Vec::new(),
            want,
        ));
    }
    for (q, want) in [
        ("watch=1&timeoutSeconds=x", Some(400)),
        ("watch=1&timeoutSeconds=-1", Some(200)),
        ("watch=1&timeoutSeconds=99999999999999999999", Some(400)),
        ("watch=1&resourceVersion=abc&timeoutSeconds=1", Some(400)),
        ("watch=1&resourceVersion=-1&timeoutSeconds=1", Some(400)),
        ("watch=1&resourceVersion=1&timeoutSeconds=1", None),
        ("watch=1&fieldSelector===&timeoutSeconds=1", Some(400)),
        (
            "watch=1&labelSelector=a%20in%20(&timeoutSeconds=1",
            Some(400),
        ),
        ("watch=maybe&timeoutSeconds=1", Some(200)),
        ("watch=&timeoutSeconds=1", Some(200)),
        ("watch&timeoutSeconds=1", Some(200)),
        ("watch=FALSE", Some(200)),
        (
            "watch=1&allowWatchBookmarks=maybe&timeoutSeconds=1",
            Some(200),
        ),
        (
            "watch=1&sendInitialEvents=yes&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
            Some(200),
        ),
    ] {
        v.push(probe(
            format!("watch ?{q}"),
            "GET",
            format!("{CMS}?{q}"),
            None,
            Vec::new(),
            want,
        ));
    }
    // Deletes with odd options.
    // (in this order: the first two leave the object, the third may delete it)
    for (what, body, want) in [
        (
            "truncated options",
            b"{\"gracePeriodSeconds\":".to_vec(),
            Some(400),
        ),
        (
            "a wrong precondition",
            br#"{"preconditions":{"uid":"nope"}}"#.to_vec(),
            Some(409),
        ),
        (
            "a huge grace period",
            br#"{"gracePeriodSeconds":99999999999999999999}"#.to_vec(),
            None,
        ),
        (
            "propagation Bogus",
            br#"{"propagationPolicy":"Bogus"}"#.to_vec(),
            None,
        ),
        (
            "a negative grace period",
            br#"{"gracePeriodSeconds":-5}"#.to_vec(),
            None,
        ),
    ] {
        v.push(probe(
            format!("delete: {what}"),
            "DELETE",
            format!("{CMS}/keep"),
            JSON_CT,
            body,
            want,
        ));
    }
    v.push(probe(
        "delete with gracePeriodSeconds=x",
        "DELETE",
        format!("{CMS}/keep?gracePeriodSeconds=x"),
        None,
        Vec::new(),
        None,
    ));
    v.push(probe(
        "deletecollection with a bad selector",
        "DELETE",
        format!("{CMS}?labelSelector=a%20in%20("),
        None,
        Vec::new(),
        Some(400),
    ));
    // Paths.
    for (m, p, want) in [
        ("GET", "/api/v1/namespaces/default/frobs", Some(404)),
        ("GET", "/api/v1/namespaces/default/pods/a/b/c/d", Some(404)),
        ("GET", "/api/v1/namespaces/default/pods/%ff%fe", Some(404)),
        ("GET", "/apis/nope.example.com/v1/things", Some(404)),
        ("POST", "/api/v1/pods", None),
        ("PUT", PODS, Some(405)),
        ("POST", "/version", Some(405)),
        (
            "GET",
            "/api/v1/namespaces/default/pods/x/status/extra",
            Some(404),
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/x/status",
            Some(404),
        ),
        ("GET", "/api/v1/namespaces//pods", None),
    ] {
        v.push(probe(format!("path {m} {p}"), m, p, None, Vec::new(), want));
    }
    v
}

/// Mutated corpus objects as creates and updates, mutated patches.
fn generated(n: u32) -> Vec<Probe> {
    let mut runner = TestRunner::deterministic();
    let strat = (
        any::<prop::sample::Index>(),
        prop::collection::vec(edit(), 1..4),
        0usize..4,
        prop::collection::vec(byte_edit(), 0..2),
    );
    let objects: Vec<Value> = objects();
    let endpoints: Vec<(&str, &str)> = vec![
        ("v1/Pod", PODS),
        ("v1/ConfigMap", CMS),
        ("v1/Namespace", "/api/v1/namespaces"),
        ("v1/Service", "/api/v1/namespaces/default/services"),
        (
            "apps/v1/DaemonSet",
            "/apis/apps/v1/namespaces/default/daemonsets",
        ),
        ("policy/v1beta1/PodSecurityPolicy", PSPS),
        (
            "apiextensions.k8s.io/v1/CustomResourceDefinition",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        ),
        ("fuzz.example.com/v1/Widget", WIDGETS),
        (
            "security-profiles-operator.x-k8s.io/v1beta1/SeccompProfile",
            "/apis/security-profiles-operator.x-k8s.io/v1beta1/namespaces/default/seccompprofiles",
        ),
    ];
    let mut out = Vec::new();
    for i in 0..n {
        let (o, edits, verb, bytes) = strat.new_tree(&mut runner).unwrap().current();
        let mut obj = apply_edits(o.get(&objects).clone(), &edits);
        let gvk = format!(
            "{}/{}",
            obj["apiVersion"].as_str().unwrap_or(""),
            obj["kind"].as_str().unwrap_or("")
        );
        let base = endpoints
            .iter()
            .find(|(k, _)| *k == gvk)
            .map(|(_, p)| *p)
            .unwrap_or(PODS);
        // Fresh names so creates do not all collide.
        if obj["metadata"].is_object() && obj["metadata"]["name"].is_string() && verb == 0 {
            obj["metadata"]["name"] = json!(format!("gen-{i}"));
        }
        let body = apply_bytes(serde_json::to_vec(&obj).unwrap(), &bytes);
        let name = obj["metadata"]["name"].as_str().unwrap_or("x").to_string();
        let p = match verb {
            0 => probe(
                format!("generated create #{i}"),
                "POST",
                base,
                JSON_CT,
                body,
                None,
            ),
            1 => probe(
                format!("generated update #{i}"),
                "PUT",
                format!("{base}/{}", percent(&name)),
                JSON_CT,
                body,
                None,
            ),
            2 => probe(
                format!("generated merge patch #{i}"),
                "PATCH",
                format!("{base}/{}", percent(&name)),
                Some("application/merge-patch+json"),
                body,
                None,
            ),
            _ => probe(
                format!("generated strategic patch #{i}"),
                "PATCH",
                format!("{base}/{}", percent(&name)),
                Some("application/strategic-merge-patch+json"),
                body,
                None,
            ),
        };
        out.push(p);
    }
    out
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_status_errors() {
    let start = Instant::now();
    let s = Running::start().await;
    // The objects the probes address.
    for (name, path) in [
        ("pod-seccomp-fields.json", PODS),
        ("psp.json", PSPS),
        (
            "crd.json",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        ),
    ] {
        let r = s
            .request(
                "POST",
                path,
                JSON_CT,
                &serde_json::to_vec(&seed(name)).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            r.status,
            201,
            "creating {name}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = s
        .request(
            "POST",
            WIDGETS,
            JSON_CT,
            &serde_json::to_vec(&seed("widget.json")).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status,
        201,
        "creating widget.json: {}",
        String::from_utf8_lossy(&r.body)
    );
    let r = s
        .request(
            "POST",
            CMS,
            JSON_CT,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"}}"#,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

    let mut all = probes();
    let hand_written = all.len();
    all.extend(generated(150 * scale()));
    let mut failures = Vec::new();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for p in &all {
        match s.request(p.method, &p.path, p.content_type, &p.body).await {
            Ok(r) => {
                *counts.entry(r.status).or_default() += 1;
                if let Err(e) = check_response(p, &r) {
                    failures.push(e);
                }
            }
            Err(e) => failures.push(format!("{}: {e}", p.what)),
        }
    }
    // `?watch=maybe` is a watch, as kube-apiserver reads booleans: a stream of events.
    match s
        .request(
            "GET",
            &format!("{CMS}?watch=maybe&timeoutSeconds=1"),
            None,
            b"",
        )
        .await
    {
        Ok(r) => {
            let first = r.body.split(|b| *b == b'\n').next().unwrap_or_default();
            let ev: Value = serde_json::from_slice(first).unwrap_or(Value::Null);
            if r.status != 200 || ev["type"] != "ADDED" {
                failures.push(format!(
                    "?watch=maybe is not a watch: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
            }
        }
        Err(e) => failures.push(format!("?watch=maybe: {e}")),
    }
    // Still serving, and the probes left the seed objects readable.
    let alive = probe(
        "GET the pod afterwards",
        "GET",
        format!(
            "{PODS}/{}",
            seed("pod-seccomp-fields.json")["metadata"]["name"]
                .as_str()
                .unwrap()
        ),
        None,
        Vec::new(),
        Some(200),
    );
    let r = s
        .request(alive.method, &alive.path, None, b"")
        .await
        .unwrap();
    failures.extend(check_response(&alive, &r).err());
    for path in [PODS, CMS, PSPS, WIDGETS, "/api/v1/namespaces"] {
        let p = probe(
            format!("list {path} afterwards"),
            "GET",
            path,
            None,
            Vec::new(),
            Some(200),
        );
        let r = s.request("GET", path, None, b"").await.unwrap();
        failures.extend(check_response(&p, &r).err());
    }
    let r = s
        .request(
            "POST",
            CMS,
            JSON_CT,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after"}}"#,
        )
        .await
        .unwrap();
    if r.status != 201 {
        failures.push(format!(
            "creating a configmap afterwards: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    s.shutdown().await;
    println!(
        "fuzz: requests (HTTPS): {} requests ({hand_written} hand-written) in {:.1} s, {} failures (5xx, not a Status, or not kube-apiserver's code); statuses {counts:?}",
        all.len(),
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// The protobuf seeds the mutations start from are valid envelopes.
#[test]
fn protobuf_seeds_decode() {
    for k in 0..3 {
        let v = protobuf::decode(&envelope(k, "seed")).unwrap();
        assert_eq!(v["metadata"]["name"], "seed", "{v}");
    }
}
