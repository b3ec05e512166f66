//! The image store against real archives: the tutorial images built by `images/build`,
//! and hand-made OCI layouts / docker-archives exercising digests, whiteouts and unsafe layers.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use armorlet_images::{ImageError, ImageStore};
use common::built_images;
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// One layer entry for hand-made layers.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
    Char(&'a str),
}

/// A plain tar layer; names are written raw so unsafe names (`..`) can be tested.
fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let (name, data): (&str, &[u8]) = match e {
            E::Dir(n, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (n, b"")
            }
            E::File(n, d, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (n, d)
            }
            E::Link(n, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(target).unwrap();
                h.set_mode(0o777);
                (n, b"")
            }
            E::Char(n) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                (n, b"")
            }
        };
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes an OCI layout directory with one image named `name` made of `layers`.
fn oci_layout(dir: &Path, name: &str, layers: &[Vec<u8>]) -> PathBuf {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = sha(bytes);
        fs::write(blobs.join(&d[7..]), bytes).unwrap();
        (d, bytes.len())
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let (d, n) = put(l);
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
        })
        .collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/app"], "Env": ["A=1"], "WorkingDir": "/w", "User": "65534"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let (cd, cn) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": descs});
    let (md, mn) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn, "annotations": {"io.containerd.image.name": name}}]});
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_path_buf()
}

fn store(tmp: &tempfile::TempDir) -> ImageStore {
    ImageStore::open(&tmp.path().join("images")).unwrap()
}

#[test]
fn tutorial_busybox_loads_resolves_and_unpacks() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp);
    let recs = s.load_archive(&built_images().join("busybox.tar")).unwrap();
    assert_eq!(recs.len(), 2);
    let all = s.list().unwrap();
    assert_eq!(all.len(), 1, "one image with two names: {all:?}");
    assert_eq!(
        all[0].names,
        [
            "docker.io/library/busybox:1.28",
            "docker.io/library/busybox:latest"
        ]
    );
    assert!(all[0].repo_digests[0].starts_with("docker.io/library/busybox@sha256:"));
    assert_eq!(all[0].config.cmd, ["sh"]);
    for r in [
        "busybox",
        "busybox:1.28",
        "docker.io/library/busybox:latest",
        &all[0].id,
        &all[0].id[7..19],
    ] {
        assert_eq!(s.resolve(r).unwrap().as_ref(), Some(&all[0]), "{r}");
    }
    assert_eq!(s.resolve("busybox:1.29").unwrap(), None);
    let root = s.image_root(&all[0]).unwrap();
    assert_eq!(s.image_root(&all[0]).unwrap(), root, "idempotent");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    assert!(fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .contains("nobody:x:65534:65534"));
    let out = Command::new(root.join("bin/busybox"))
        .args(["echo", "ok"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"ok\n");
}

#[test]
fn tutorial_http_echo_has_entrypoint() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp);
    s.load_archive(&built_images().join("http-echo.tar"))
        .unwrap();
    let rec = s
        .resolve("hashicorp/http-echo:0.2.3")
        .unwrap()
        .expect("loaded");
    assert_eq!(rec.config.entrypoint, ["/http-echo"]);
    let root = s.image_root(&rec).unwrap();
    assert_eq!(
        fs::metadata(root.join("http-echo"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
}

#[test]
fn corrupted_layer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = oci_layout(
        &tmp.path().join("l"),
        "example.com/x:1",
        &[layer(&[E::File("a", b"hello", 0o644)])],
    );
    let blob = fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::read(p).unwrap().len() > 1000)
        .unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[512] ^= 1; // flip a content byte of "hello"
    fs::write(&blob, bytes).unwrap();
    let err = store(&tmp).load_archive(&dir).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(store(&tmp).list().unwrap().is_empty());
}

/// The blob files of a store.
fn blobs(store_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store_dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A load refused for a digest mismatch leaves the store as it was: nothing listed and none
/// of the blobs it had copied in (here the config and the first, good, layer).
#[test]
fn refused_load_leaves_no_blobs_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let good = oci_layout(
        &tmp.path().join("good"),
        "example.com/g:1",
        &[layer(&[E::File("g", b"good", 0o644)])],
    );
    let s = store(&tmp);
    s.load_archive(&good).unwrap();
    let before = blobs(&tmp.path().join("images"));
    let dir = oci_layout(
        &tmp.path().join("l"),
        "example.com/x:1",
        &[
            layer(&[E::File("a", b"first", 0o644)]),
            layer(&[E::File("b", b"second", 0o644)]),
        ],
    );
    let second = sha(&layer(&[E::File("b", b"second", 0o644)]));
    let blob = dir.join("blobs/sha256").join(&second[7..]);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[512] ^= 1;
    fs::write(&blob, bytes).unwrap();
    let err = s.load_archive(&dir).unwrap_err();
    assert!(
        matches!(err, ImageError::DigestMismatch { .. }) && err.to_string().contains(&second),
        "{err}"
    );
    assert_eq!(s.list().unwrap().len(), 1);
    assert_eq!(blobs(&tmp.path().join("images")), before);
}

/// A layer blob corrupted on disk after a good load: unpacking refuses it, naming the
/// layer's digest, and publishes no root; loading the good archive again repairs the blob.
/// A corrupted config blob is refused the same way.
#[test]
fn blob_corrupted_on_disk_is_refused_at_unpack_and_repaired_by_a_load() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layer(&[E::File("a", b"hello", 0o644)]);
    let digest = sha(&l);
    let dir = oci_layout(&tmp.path().join("l"), "example.com/c:1", &[l]);
    let s = store(&tmp);
    let rec = s.load_archive(&dir).unwrap().remove(0);
    let images = tmp.path().join("images");
    let stored = images.join("blobs/sha256").join(&digest[7..]);
    let mut bytes = fs::read(&stored).unwrap();
    bytes[512] ^= 1; // "hello" becomes "iello"
    fs::write(&stored, &bytes).unwrap();
    let err = s.image_root(&rec).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "digest mismatch for layer {digest} in the image store: expected {digest}, got sha256:"
        )),
        "{err}"
    );
    let roots: Vec<_> = fs::read_dir(images.join("roots")).unwrap().collect();
    assert!(roots.is_empty(), "no root, no staging left: {roots:?}");
    s.load_archive(&dir).unwrap();
    let root = s.image_root(&rec).unwrap();
    assert_eq!(fs::read(root.join("a")).unwrap(), b"hello");

    fs::remove_dir_all(&root).unwrap();
    let config = images.join("blobs/sha256").join(&rec.id[7..]);
    let mut text = fs::read(&config).unwrap();
    text.push(b' ');
    fs::write(&config, text).unwrap();
    let err = s.image_root(&rec).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "digest mismatch for image config {} in the image store",
            rec.id
        )),
        "{err}"
    );
    s.load_archive(&dir).unwrap();
    s.image_root(&rec).unwrap();
}

#[test]
fn whiteouts_replacement_and_setuid() {
    let tmp = tempfile::tempdir().unwrap();
    let l1 = layer(&[
        E::Dir("a", 0o755),
        E::File("a/x", b"x", 0o644),
        E::File("b", b"b", 0o644),
        E::File("c", b"old", 0o644),
        E::Dir("d", 0o755),
        E::File("d/keep", b"k", 0o644),
    ]);
    let l2 = layer(&[
        E::File("a/z", b"z", 0o644),
        E::File("a/.wh..wh..opq", b"", 0o644),
        E::File(".wh.b", b"", 0o644),
        E::File("c", b"new", 0o4755),
    ]);
    let dir = oci_layout(&tmp.path().join("l"), "example.com/w:1", &[l1, l2]);
    let s = store(&tmp);
    let rec = s.load_archive(&dir).unwrap().remove(0);
    assert_eq!(rec.config.entrypoint, ["/bin/app"]);
    assert_eq!(rec.config.user, "65534");
    let root = s.image_root(&rec).unwrap();
    let names = |p: &Path| {
        let mut v: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&root), ["a", "c", "d"]);
    assert_eq!(
        names(&root.join("a")),
        ["z"],
        "opaque dir keeps only this layer's entries"
    );
    assert_eq!(fs::read(root.join("c")).unwrap(), b"new");
    assert_eq!(
        fs::metadata(root.join("c")).unwrap().mode() & 0o7777,
        0o4755,
        "setuid as in the layer"
    );
    assert_eq!(
        fs::metadata(root.join("d/keep")).unwrap().mode() & 0o7777,
        0o644
    );
}

#[test]
fn unsafe_layers_are_refused_or_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp);
    for (i, (entries, what)) in [
        (vec![E::File("../escape", b"x", 0o644)], "'..'"),
        (vec![E::Char("dev/evil")], "device"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = oci_layout(
            &tmp.path().join(format!("bad{i}")),
            &format!("example.com/bad:{i}"),
            &[layer(&entries)],
        );
        let rec = s.load_archive(&dir).unwrap().remove(0);
        let err = s.image_root(&rec).unwrap_err();
        assert!(
            matches!(err, ImageError::UnsafeLayer { .. }) && err.to_string().contains(what),
            "{err}"
        );
    }
    assert!(!tmp.path().join("images/roots/escape").exists());

    // A symlink to an absolute path outside, then a write through it: lands inside the root.
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let l1 = layer(&[
        E::Link("evil", outside.to_str().unwrap()),
        E::Link("up", "../../../.."),
    ]);
    let l2 = layer(&[
        E::File("evil/pwned", b"x", 0o644),
        E::File("up/pwned2", b"x", 0o644),
    ]);
    let dir = oci_layout(&tmp.path().join("sym"), "example.com/sym:1", &[l1, l2]);
    let rec = s.load_archive(&dir).unwrap().remove(0);
    let root = s.image_root(&rec).unwrap();
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside the root"
    );
    assert!(root
        .join(outside.strip_prefix("/").unwrap())
        .join("pwned")
        .is_file());
    assert!(
        root.join("pwned2").is_file(),
        "'..' symlink clamped at the root"
    );
}

#[test]
fn docker_archive_and_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layer(&[E::File("hello", b"hi", 0o644)]);
    let config = serde_json::json!({"config": {"Cmd": ["/hello"]}, "rootfs": {"type": "layers", "diff_ids": [sha(&l)]}});
    let cfg = config.to_string();
    let cfg_name = format!("{}.json", &sha(cfg.as_bytes())[7..]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&cfg_name, cfg.as_bytes());
    add("abc/layer.tar", &l);
    let manifest = serde_json::json!([{"Config": cfg_name, "RepoTags": ["myapp:v1", "localhost:5000/myapp"], "Layers": ["abc/layer.tar"]}]);
    add("manifest.json", manifest.to_string().as_bytes());
    let tarball = tmp.path().join("docker.tar");
    fs::write(&tarball, b.into_inner().unwrap()).unwrap();

    let s = store(&tmp);
    let rec = s.load_archive(&tarball).unwrap().remove(0);
    assert_eq!(
        rec.names,
        ["docker.io/library/myapp:v1", "localhost:5000/myapp:latest"]
    );
    assert_eq!(rec.id, sha(cfg.as_bytes()));
    assert_eq!(
        fs::read(s.image_root(&rec).unwrap().join("hello")).unwrap(),
        b"hi"
    );

    s.remove("myapp:v1").unwrap();
    assert_eq!(s.resolve("myapp:v1").unwrap(), None);
    assert!(
        s.resolve("localhost:5000/myapp").unwrap().is_some(),
        "other name stays"
    );
    assert!(matches!(s.remove("myapp:v1"), Err(ImageError::NotFound(_))));
    s.remove(&rec.id).unwrap();
    assert!(s.list().unwrap().is_empty());
    let blobs = fs::read_dir(tmp.path().join("images/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "blobs collected");
    assert!(!tmp.path().join("images/roots").join(&rec.id[7..]).exists());
}

#[test]
fn concurrent_image_root_is_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp);
    let rec = s
        .load_archive(&built_images().join("busybox.tar"))
        .unwrap()
        .remove(0);
    let roots: Vec<PathBuf> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                sc.spawn(|| {
                    ImageStore::open(&tmp.path().join("images"))
                        .unwrap()
                        .image_root(&rec)
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
    let leftovers: Vec<_> = fs::read_dir(tmp.path().join("images/roots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

/// A registry mirrored by the store answers pulls from it and never from the network: the
/// loaded image for a name it holds, the registry's not-found error for one it does not.
#[test]
fn pulls_from_a_locally_mirrored_registry_resolve_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(&tmp);
    s.load_archive(&built_images().join("busybox.tar")).unwrap();
    let options = armorlet_images::RegistryOptions {
        local_mirrors: vec!["docker.io".into()],
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pulled = rt
        .block_on(armorlet_images::pull(&s, "busybox", &options, &[]))
        .unwrap();
    assert_eq!(pulled.reference, "docker.io/library/busybox:latest");
    assert_eq!(
        pulled.record.id,
        s.resolve("busybox:1.28").unwrap().unwrap().id
    );
    assert!(pulled.digest.starts_with("sha256:"), "{}", pulled.digest);
    let err = rt
        .block_on(armorlet_images::pull(&s, "nope:1", &options, &[]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        armorlet_images::ImageError::Pull {
            reference: "docker.io/library/nope:1".into(),
            reason: "failed to resolve reference \"docker.io/library/nope:1\": docker.io/library/nope:1: not found".into(),
            not_found: true,
        }
        .to_string()
    );
}
