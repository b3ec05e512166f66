//! Image pulls from OCI registries end to end: Debian's `docker-registry` (distribution 2.8)
//! on loopback with a generated config (plain HTTP, htpasswd basic auth, TLS with a test CA),
//! images pushed by the test with oci-client, `armorlet image pull` and pods with every
//! `imagePullPolicy`; a tiny fake registry (test only) serves blobs that do not match their
//! digests. Needs root for the pod half (`Cluster`); `scripts/install-deps` installs the
//! registry and `htpasswd`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn sha256(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

/// A running `docker-registry serve`, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// `auth`: an htpasswd user; `tls`: (cert, key) PEM files.
    fn start(auth: Option<(&str, &str)>, tls: Option<(&Path, &Path)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: armorlet-test\n",
            dir.path().join("storage").display()
        );
        if let Some((cert, key)) = tls {
            config += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apache2-utils, scripts/install-deps)");
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            config += &format!(
                "auth:\n  htpasswd:\n    realm: armorlet-test\n    path: {}\n",
                file.display()
            );
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (scripts/install-deps)");
        let r = Registry {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < common::PATIENCE,
                "docker-registry did not listen: {}",
                std::fs::read_to_string(r._dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The blobs of an `images/build` OCI layout tar: (manifest, config, layer) bytes.
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    config_digest: String,
    layer: Vec<u8>,
    layer_digest: String,
}

fn read_layout(tar: &Path, dir: &Path) -> Image {
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(ok.success());
    let blob = |d: &str| std::fs::read(dir.join("blobs/sha256").join(&d[7..])).unwrap();
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let config_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let layer_digest = m["layers"][0]["digest"].as_str().unwrap().to_string();
    Image {
        config: blob(&config_digest),
        layer: blob(&layer_digest),
        manifest,
        config_digest,
        layer_digest,
    }
}

/// A manifest of `config`/`layer` with the given media types.
fn manifest_of(img: &Image, mt: &str, config_mt: &str, layer_mt: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "digest": img.config_digest, "size": img.config.len()},
        "layers": [{"mediaType": layer_mt, "digest": img.layer_digest, "size": img.layer.len()}],
    }))
    .unwrap()
}

fn index_of(mt: &str, entries: &[(&[u8], &str, &str)]) -> Vec<u8> {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(bytes, entry_mt, arch)| {
            json!({"mediaType": entry_mt, "digest": sha256(bytes), "size": bytes.len(),
                   "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt, "manifests": manifests}))
        .unwrap()
}

/// Pushes blobs and tagged manifests to `registry` (HOST:PORT, plain HTTP).
fn push(
    registry: &str,
    repo: &str,
    auth: Option<(&str, &str)>,
    blobs: &[&[u8]],
    manifests: &[(&str, &[u8], &str)],
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::Http,
            ..Default::default()
        });
        let auth = match auth {
            Some((u, p)) => oci_client::secrets::RegistryAuth::Basic(u.into(), p.into()),
            None => oci_client::secrets::RegistryAuth::Anonymous,
        };
        let base: oci_client::Reference = format!("{registry}/{repo}:push").parse().unwrap();
        client
            .auth(&base, &auth, oci_client::RegistryOperation::Push)
            .await
            .unwrap();
        for b in blobs {
            client
                .push_blob(&base, b.to_vec(), &sha256(b))
                .await
                .unwrap();
        }
        for (tag, bytes, mt) in manifests {
            let r: oci_client::Reference = format!("{registry}/{repo}:{tag}").parse().unwrap();
            client
                .push_manifest_raw(&r, bytes.to_vec(), mt.parse().unwrap())
                .await
                .unwrap_or_else(|e| panic!("push {tag}: {e}"));
        }
    });
}

fn armorlet(data: &Path, args: &[&str]) -> Output {
    common::armorlet()
        .args(["image", "--data-dir"])
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What the store holds: the index and the blob names.
fn store_state(data: &Path) -> (String, Vec<String>) {
    let index = std::fs::read_to_string(data.join("images/index.json")).unwrap_or_default();
    let mut blobs: Vec<String> = std::fs::read_dir(data.join("images/blobs/sha256"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    blobs.sort();
    (index, blobs)
}

/// A fake registry serving `manifest` under `/v2/bad/manifests/1` and the given blobs (by
/// digest, whatever their content); it stops with the test process.
fn fake_registry(manifest: Vec<u8>, blobs: Vec<(String, Vec<u8>)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(200) {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, ctype, body): (&str, &str, Vec<u8>) = if path == "/v2/" {
                ("200 OK", "application/json", b"{}".to_vec())
            } else if path.ends_with("/manifests/1") {
                ("200 OK", OCI_MANIFEST, manifest.clone())
            } else if let Some((_, b)) = blobs.iter().find(|(d, _)| path.ends_with(d.as_str())) {
                ("200 OK", "application/octet-stream", b.clone())
            } else {
                (
                    "404 Not Found",
                    "application/json",
                    br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#.to_vec(),
                )
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            if method != "HEAD" {
                let _ = conn.write_all(&body);
            }
            let _ = conn.flush();
            let mut rest = Vec::new();
            let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
            let _ = reader.read_to_end(&mut rest);
        }
    });
    port
}

fn build_images(dir: &Path) -> PathBuf {
    let out = Command::new(common::repo().join("images/build"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    dir.to_path_buf()
}

/// The busybox and http-echo images pushed to `registry` under `busybox` as every manifest
/// kind: `1.28` (OCI manifest), `docker` (Docker v2 schema 2), `multi` (OCI index: amd64
/// busybox, arm64 http-echo), `list` (Docker manifest list, likewise). Returns busybox's
/// config digest (its image id) and the OCI manifest's digest.
fn push_all(registry: &str, auth: Option<(&str, &str)>, work: &Path) -> (String, String) {
    let images = build_images(&work.join("built"));
    let bb = read_layout(&images.join("busybox.tar"), &work.join("bb"));
    let echo = read_layout(&images.join("http-echo.tar"), &work.join("echo"));
    let docker = manifest_of(
        &bb,
        DOCKER_MANIFEST,
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    );
    let echo_docker = manifest_of(
        &echo,
        DOCKER_MANIFEST,
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    );
    let multi = index_of(
        OCI_INDEX,
        &[
            (&echo.manifest, OCI_MANIFEST, "arm64"),
            (&bb.manifest, OCI_MANIFEST, "amd64"),
        ],
    );
    let list = index_of(
        DOCKER_LIST,
        &[
            (&echo_docker, DOCKER_MANIFEST, "arm64"),
            (&docker, DOCKER_MANIFEST, "amd64"),
        ],
    );
    push(
        registry,
        "busybox",
        auth,
        &[&bb.config, &bb.layer, &echo.config, &echo.layer],
        &[
            ("1.28", &bb.manifest, OCI_MANIFEST),
            ("echo", &echo.manifest, OCI_MANIFEST),
            ("docker", &docker, DOCKER_MANIFEST),
            ("echo-docker", &echo_docker, DOCKER_MANIFEST),
            ("multi", &multi, OCI_INDEX),
            ("list", &list, DOCKER_LIST),
        ],
    );
    (bb.config_digest, sha256(&bb.manifest))
}

#[test]
fn cli_pulls_every_manifest_kind_and_refuses_bad_content() {
    let work = tempfile::tempdir().unwrap();
    let reg = Registry::start(None, None);
    let host = format!("127.0.0.1:{}", reg.port);
    let (id, manifest_digest) = push_all(&host, None, work.path());
    let data = work.path().join("data");
    let insecure = ["--insecure-registry", host.as_str()];

    // By tag: docker pull's closing lines, the image listed under its registry name.
    let r = format!("{host}/busybox:1.28");
    let out = armorlet(&data, &[&["pull", &r][..], &insecure].concat());
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("Digest: {manifest_digest}\n")), "{t}");
    assert!(t.contains(&format!("Image ID: {id}\n")), "{t}");
    assert!(t.contains("Size: "), "{t}");
    assert!(
        t.contains(&format!("Status: Downloaded image for {r}\n")),
        "{t}"
    );
    let ls = text(&armorlet(&data, &["ls"]));
    assert!(ls.contains(&format!("{host}/busybox")), "{ls}");

    // By digest: the same image gets the repo digest, no new tag.
    let by_digest = format!("{host}/busybox@{manifest_digest}");
    let out = armorlet(&data, &[&["pull", &by_digest][..], &insecure].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("Image ID: {id}")));

    // Docker schema 2, an OCI index and a Docker manifest list: the linux/amd64 entry, which
    // is busybox (the arm64 entry is http-echo).
    for tag in ["docker", "multi", "list"] {
        let r = format!("{host}/busybox:{tag}");
        let out = armorlet(&data, &[&["pull", &r][..], &insecure].concat());
        let t = text(&out);
        assert!(out.status.success(), "{tag}: {t}");
        assert!(t.contains(&format!("Image ID: {id}")), "{tag}: {t}");
    }
    // The index's digest is the repo digest of an index pull: pulling by it finds the image.
    let ls = text(&armorlet(&data, &["ls"]));
    for tag in ["1.28", "docker", "multi", "list"] {
        assert!(ls.contains(tag), "{ls}");
    }

    // A missing tag: exit 1, containerd's wording.
    let before = store_state(&data);
    let r = format!("{host}/busybox:nope");
    let out = armorlet(&data, &[&["pull", &r][..], &insecure].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "failed to pull and unpack image \"{r}\": failed to resolve reference \"{r}\": {r}: not found"
        )),
        "{}",
        text(&out)
    );
    // HTTPS unless the registry is listed as insecure.
    let out = armorlet(&data, &["pull", &format!("{host}/busybox:1.28")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(store_state(&data), before);

    // A registry serving a layer whose content does not match its digest, and one whose
    // config's diff_ids do not match the layer: refused, the store unchanged.
    let bb = read_layout(
        &work.path().join("built/busybox.tar"),
        &work.path().join("bb2"),
    );
    let mut tampered = bb.layer.clone();
    let n = tampered.len();
    tampered[n - 9] ^= 0xff;
    let port = fake_registry(
        bb.manifest.clone(),
        vec![
            (bb.config_digest.clone(), bb.config.clone()),
            (bb.layer_digest.clone(), tampered),
        ],
    );
    let fake = format!("127.0.0.1:{port}");
    // A store without busybox's layer (a blob the store has is linked, not downloaded), but
    // with another image.
    let data_t = work.path().join("data-tampered");
    let out = armorlet(
        &data_t,
        &[
            "load",
            work.path().join("built/http-echo.tar").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let before_t = store_state(&data_t);
    let out = armorlet(
        &data_t,
        &[
            "pull",
            &format!("{fake}/bad:1"),
            "--insecure-registry",
            &fake,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&bb.layer_digest), "{}", text(&out));
    assert_eq!(
        store_state(&data_t),
        before_t,
        "a refused pull changed the store"
    );

    let mut config: Value = serde_json::from_slice(&bb.config).unwrap();
    config["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", "0".repeat(64)));
    let config = serde_json::to_vec(&config).unwrap();
    let fake_img = Image {
        manifest: Vec::new(),
        config_digest: sha256(&config),
        config: config.clone(),
        layer_digest: bb.layer_digest.clone(),
        layer: bb.layer.clone(),
    };
    let manifest = manifest_of(
        &fake_img,
        OCI_MANIFEST,
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    // A fresh store, so that the layer is downloaded, not linked from the store.
    let data2 = work.path().join("data2");
    let port = fake_registry(
        manifest,
        vec![
            (fake_img.config_digest.clone(), config),
            (bb.layer_digest.clone(), bb.layer.clone()),
        ],
    );
    let fake = format!("127.0.0.1:{port}");
    let out = armorlet(
        &data2,
        &[
            "pull",
            &format!("{fake}/bad:1"),
            "--insecure-registry",
            &fake,
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("digest mismatch for uncompressed layer"), "{t}");
    let (index, blobs) = store_state(&data2);
    assert!(
        blobs.is_empty() && !index.contains("bad"),
        "{index} {blobs:?}"
    );
}

#[test]
fn cli_pulls_with_basic_auth_and_tls() {
    let work = tempfile::tempdir().unwrap();
    let reg = Registry::start(Some(("armorlet", "s3cret")), None);
    let host = format!("127.0.0.1:{}", reg.port);
    let (id, _) = push_all(&host, Some(("armorlet", "s3cret")), work.path());
    let data = work.path().join("data");
    let r = format!("{host}/busybox:1.28");
    let out = armorlet(&data, &["pull", &r, "--insecure-registry", &host]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("401 Unauthorized"), "{}", text(&out));
    let out = armorlet(
        &data,
        &[
            "pull",
            &r,
            "--insecure-registry",
            &host,
            "--creds",
            "armorlet:wrong",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = armorlet(
        &data,
        &[
            "pull",
            &r,
            "--insecure-registry",
            &host,
            "--creds",
            "armorlet:s3cret",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("Image ID: {id}")));

    // TLS with a test CA: trusted through --registry-ca only.
    let ca = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "armorlet test registry CA");
    let ca_cert = ca_params.self_signed(&ca).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca).unwrap();
    let files = work.path().join("tls");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(files.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(files.join("key.pem"), key.serialize_pem()).unwrap();
    let tls = Registry::start(
        None,
        Some((&files.join("cert.pem"), &files.join("key.pem"))),
    );
    // Pushed over plain HTTP to the first registry's storage would be simpler, but the TLS
    // registry has its own: copy the image through a pull-free path, the client's push.
    let tls_host = format!("localhost:{}", tls.port);
    push_tls(&tls_host, &files.join("ca.pem"), work.path());
    let r = format!("{tls_host}/busybox:1.28");
    let data3 = work.path().join("data3");
    let out = armorlet(&data3, &["pull", &r]);
    assert_eq!(out.status.code(), Some(2), "untrusted CA: {}", text(&out));
    let out = armorlet(
        &data3,
        &[
            "pull",
            &r,
            "--registry-ca",
            files.join("ca.pem").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("Image ID: {id}")));
}

/// Pushes busybox:1.28 to a TLS registry trusting `ca`.
fn push_tls(registry: &str, ca: &Path, work: &Path) {
    let bb = read_layout(&work.join("built/busybox.tar"), &work.join("bb-tls"));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = oci_client::Client::new(oci_client::client::ClientConfig {
            extra_root_certificates: vec![oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: std::fs::read(ca).unwrap(),
            }],
            ..Default::default()
        });
        let r: oci_client::Reference = format!("{registry}/busybox:1.28").parse().unwrap();
        for b in [&bb.config, &bb.layer] {
            client.push_blob(&r, b.clone(), &sha256(b)).await.unwrap();
        }
        client
            .push_manifest_raw(&r, bb.manifest.clone(), OCI_MANIFEST.parse().unwrap())
            .await
            .unwrap();
    });
}

fn events_of(c: &Cluster, pod: &str) -> String {
    c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
        "-o",
        "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message",
    ])
}

fn waiting(c: &Cluster, pod: &str) -> Option<(String, String)> {
    let p = c.pod(pod);
    let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
    Some((
        w["reason"].as_str()?.to_string(),
        w["message"].as_str().unwrap_or("").to_string(),
    ))
}

#[test]
fn pods_pull_per_policy_with_pull_secrets() {
    common::require_root();
    let work = tempfile::tempdir().unwrap();
    let open = Registry::start(None, None);
    let locked = Registry::start(Some(("puller", "pa55")), None);
    let open_host = format!("localhost:{}", open.port);
    let locked_host = format!("localhost:{}", locked.port);
    push_all(&format!("127.0.0.1:{}", open.port), None, work.path());
    // The locked registry gets the same image (its own storage).
    let work2 = work.path().join("locked");
    push_all(
        &format!("127.0.0.1:{}", locked.port),
        Some(("puller", "pa55")),
        &work2,
    );
    let c = Cluster::with_args(
        "crun",
        &[
            "--insecure-registry",
            &open_host,
            "--insecure-registry",
            &locked_host,
        ],
    );
    let image = format!("{open_host}/busybox:1.28");
    let pod = |name: &str, image: &str, policy: &str, secret: Option<&str>| {
        let secrets = secret
            .map(|s| format!("  imagePullSecrets:\n  - name: {s}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{secrets}  containers:\n  - name: c\n    image: {image}\n    imagePullPolicy: {policy}\n    command: [sleep, \"3600\"]\n---\n"
        )
    };
    c.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={locked_host}"),
        "--docker-username=puller",
        "--docker-password=pa55",
    ]);
    let missing = format!("{open_host}/busybox:nope");
    let locked_image = format!("{locked_host}/busybox:1.28");
    c.apply(
        &[
            pod("always", &image, "Always", None),
            pod("never", &format!("{open_host}/absent:1"), "Never", None),
            pod("missing", &missing, "IfNotPresent", None),
            pod("with-secret", &locked_image, "Always", Some("regcred")),
            pod("no-secret", &locked_image, "Always", None),
        ]
        .concat(),
    );

    // Always: pulled, with the kubelet's events; imageID is the registry's repo digest.
    let p = c.wait_running("always");
    let image_id = p["status"]["containerStatuses"][0]["imageID"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        image_id.starts_with(&format!("{open_host}/busybox@sha256:")),
        "{image_id}"
    );
    let ev = events_of(&c, "always");
    assert!(ev.contains(&format!("Pulling image \"{image}\"")), "{ev}");
    let pulled = ev
        .lines()
        .find(|l| l.contains("Successfully pulled image"))
        .unwrap_or_else(|| panic!("{ev}"));
    let msg = pulled.split_once("Successfully").unwrap().1;
    let (took, rest) = msg
        .strip_prefix(&format!(" pulled image \"{image}\" in "))
        .unwrap_or_else(|| panic!("{pulled}"))
        .split_once(" (")
        .unwrap();
    assert!(took.ends_with('s'), "{pulled}");
    let size = rest
        .strip_prefix(&format!("{took} including waiting). Image size: "))
        .and_then(|r| r.strip_suffix(" bytes."))
        .unwrap_or_else(|| panic!("{pulled}"));
    assert!(size.parse::<u64>().unwrap() > 100_000, "{pulled}");

    // IfNotPresent after it: no pull, "already present".
    c.apply(&pod("present", &image, "IfNotPresent", None));
    c.wait_running("present");
    let ev = events_of(&c, "present");
    assert!(
        ev.contains(&format!(
            "Container image \"{image}\" already present on machine"
        )),
        "{ev}"
    );
    assert!(!ev.contains("Pulling"), "{ev}");

    // Never with a missing image.
    let (reason, message) = c.wait_for("ErrImageNeverPull", || {
        waiting(&c, "never").filter(|(r, _)| r == "ErrImageNeverPull")
    });
    assert_eq!(reason, "ErrImageNeverPull");
    assert_eq!(
        message,
        format!(
            "Container image \"{open_host}/absent:1\" is not present with pull policy of Never"
        )
    );

    // A missing tag: ErrImagePull with the runtime's error, then ImagePullBackOff.
    let expected = format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{missing}\": failed to resolve reference \"{missing}\": {missing}: not found"
    );
    let (_, message) = c.wait_for("ErrImagePull", || {
        waiting(&c, "missing").filter(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff")
    });
    if message.starts_with("rpc error") {
        assert_eq!(message, expected);
    }
    let (_, message) = c.wait_for("ImagePullBackOff", || {
        waiting(&c, "missing").filter(|(r, _)| r == "ImagePullBackOff")
    });
    assert_eq!(message, format!("Back-off pulling image \"{missing}\""));
    let ev = events_of(&c, "missing");
    for want in [
        format!("Failed to pull image \"{missing}\": {expected}"),
        "Error: ErrImagePull".to_string(),
        format!("Back-off pulling image \"{missing}\""),
        "Error: ImagePullBackOff".to_string(),
    ] {
        assert!(ev.contains(&want), "{want}\n{ev}");
    }

    // Basic auth: the pod's dockerconfigjson secret opens the registry; without it, 401.
    c.wait_running("with-secret");
    let ev = c.wait_for("no-secret's failed pull", || {
        let ev = events_of(&c, "no-secret");
        ev.contains("Failed to pull image").then_some(ev)
    });
    assert!(ev.contains("401 Unauthorized"), "{ev}");
}
