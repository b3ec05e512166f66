//! Bounded in-suite fuzzing of image loading and unpacking: `ImageStore::load_archive` (OCI
//! layout directory or tar, docker-archive tar, plain or gzip) and `ImageStore::image_root`.
//!
//! Each case builds a small archive in a fresh case directory, from generated layers (regular
//! files, directories, symlinks and hard links with hostile targets, device nodes, fifos,
//! whiteouts, `..` and absolute names, GNU long names) and applies corruptions: bytes changed
//! in index.json, manifest.json, a manifest, a config or a layer; descriptors naming other
//! digests or sizes, malformed digests; truncated or byte-flipped outer tars; headers declaring
//! huge sizes; hostile extra entries in the outer tar. The seed manifests of
//! `testdata/fuzz/images/` are loaded as index.json/manifest.json too, and the layers of
//! `testdata/fuzz/images/regressions/` (inputs that once broke the store) are replayed.
//!
//! Properties, for every input: no panic, within a time bound; every failure is an error with
//! a message, and one of the expected kind (a changed blob is a digest mismatch, a `..` or a
//! device node in a layer is an unsafe layer); nothing is written outside the store directory
//! (a sentinel directory beside it keeps its one file, unchanged and with one link; a scan of
//! the case directory finds nothing else) and nothing outside the image's own root inside it
//! (another root stays); no temporary file is left behind, and a refused load leaves no blob.
//! `ARMORLET_FUZZ_SCALE` (default 1) scales the number of cases; the main test prints one
//! summary line.

use armorlet_fuzzkit::{bounded, corpus_dir, run, scale};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use armorlet_images::{ImageError, ImageStore};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Upper bound for one case (release or debug build, loaded 2-core machine).
const CASE_LIMIT: Duration = Duration::from_secs(30);

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// The harness.

/// A case's directory: `sentinel/keep` beside `store/`, and the input.
struct CaseDir {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

const SENTINEL_TEXT: &[u8] = b"sentinel: must never change";

impl CaseDir {
    fn new() -> CaseDir {
        // tmpfs when there is one: the store fsyncs its index on every load.
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() && fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly())
        {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let tmp = tempfile::Builder::new()
            .prefix("aif")
            .tempdir_in(parent)
            .expect("a scratch directory");
        let dir = tmp.path().to_path_buf();
        fs::create_dir(dir.join("sentinel")).unwrap();
        fs::write(dir.join("sentinel/keep"), SENTINEL_TEXT).unwrap();
        fs::set_permissions(dir.join("sentinel/keep"), fs::Permissions::from_mode(0o644)).unwrap();
        let store = ImageStore::open(&dir.join("store")).unwrap();
        drop(store);
        // Another image's unpacked root: nothing of this case may touch it.
        fs::create_dir_all(dir.join("store/roots/witness")).unwrap();
        fs::write(dir.join("store/roots/witness/keep"), SENTINEL_TEXT).unwrap();
        CaseDir { _tmp: tmp, dir }
    }

    fn sentinel(&self) -> PathBuf {
        self.dir.join("sentinel")
    }

    /// The containment and cleanup properties.
    fn check(&self) -> Result<(), String> {
        let s = self.sentinel();
        let names: Vec<String> = fs::read_dir(&s)
            .map_err(|e| format!("the sentinel directory is gone: {e}"))?
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if names != ["keep"] {
            return Err(format!("the sentinel directory now holds {names:?}"));
        }
        let keep = s.join("keep");
        let meta = fs::symlink_metadata(&keep).map_err(|e| e.to_string())?;
        if !meta.is_file() || meta.nlink() != 1 || meta.mode() & 0o7777 != 0o644 {
            return Err(format!(
                "the sentinel file changed: file {} links {} mode {:o}",
                meta.is_file(),
                meta.nlink(),
                meta.mode() & 0o7777
            ));
        }
        if fs::read(&keep).map_err(|e| e.to_string())? != SENTINEL_TEXT {
            return Err("the sentinel file's content changed".into());
        }
        if fs::read(self.dir.join("store/roots/witness/keep"))
            .ok()
            .as_deref()
            != Some(SENTINEL_TEXT)
        {
            return Err("another image's root (store/roots/witness) was touched".into());
        }
        for top in fs::read_dir(&self.dir).unwrap() {
            let name = top.unwrap().file_name().to_string_lossy().into_owned();
            if !matches!(name.as_str(), "sentinel" | "store" | "input" | "input.tar") {
                return Err(format!("{name} written beside the store"));
            }
        }
        let tmp: Vec<_> = fs::read_dir(self.dir.join("store/tmp"))
            .map_err(|e| format!("store/tmp: {e}"))?
            .collect();
        if !tmp.is_empty() {
            return Err(format!("{} staging leftovers in store/tmp", tmp.len()));
        }
        for sub in ["store/roots", "store/blobs/sha256", "store"] {
            for e in fs::read_dir(self.dir.join(sub)).map_err(|e| format!("{sub}: {e}"))? {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                if n.starts_with(".tmp") || n.contains(".tmp-") {
                    return Err(format!("temporary file {sub}/{n} left behind"));
                }
            }
        }
        if Path::new("/pwned").exists() {
            return Err("/pwned exists".into());
        }
        Ok(())
    }
}

/// What a case produced: images loaded and roots unpacked, or the error.
#[derive(Debug)]
enum Outcome {
    /// `load_archive` failed.
    LoadError(String, ErrKind),
    /// Loaded; per image, the root or the unpack error.
    Loaded(Vec<Result<(), (String, ErrKind)>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrKind {
    Io,
    Reference,
    Archive,
    Digest,
    Unsafe,
    NotFound,
    Json,
    Pull,
}

fn kind(e: &ImageError) -> ErrKind {
    match e {
        ImageError::Io { .. } => ErrKind::Io,
        ImageError::InvalidReference { .. } => ErrKind::Reference,
        ImageError::InvalidArchive { .. } => ErrKind::Archive,
        ImageError::DigestMismatch { .. } => ErrKind::Digest,
        ImageError::UnsafeLayer { .. } => ErrKind::Unsafe,
        ImageError::NotFound(_) => ErrKind::NotFound,
        ImageError::Json { .. } => ErrKind::Json,
        // Loading an archive never talks to a registry.
        ImageError::Pull { .. } => ErrKind::Pull,
    }
}

fn described(e: &ImageError) -> Result<(String, ErrKind), String> {
    let text = e.to_string();
    if text.trim().is_empty() {
        return Err(format!("an error without a message: {e:?}"));
    }
    Ok((text, kind(e)))
}

/// Loads `input` into the case's store, unpacks every image, checks containment.
fn load_and_unpack(case: &CaseDir, input: PathBuf) -> Result<Outcome, String> {
    let store_dir = case.dir.join("store");
    let outcome = bounded(CASE_LIMIT, move || -> Result<Outcome, String> {
        let store = ImageStore::open(&store_dir).map_err(|e| e.to_string())?;
        let records = match store.load_archive(&input) {
            Ok(r) => r,
            Err(e) => {
                let (t, k) = described(&e)?;
                return Ok(Outcome::LoadError(t, k));
            }
        };
        if records.is_empty() {
            return Err("load_archive succeeded with no image".into());
        }
        let mut roots = Vec::new();
        for r in &records {
            match store.image_root(r) {
                Ok(root) => {
                    if !root.starts_with(store_dir.join("roots")) || !root.is_dir() {
                        return Err(format!("image root at {}", root.display()));
                    }
                    roots.push(Ok(()));
                }
                Err(e) => roots.push(Err(described(&e)?)),
            }
        }
        Ok(Outcome::Loaded(roots))
    })??;
    case.check()?;
    // Each case has a fresh store: a refused load must leave it without any blob.
    if matches!(outcome, Outcome::LoadError(..)) {
        let left = fs::read_dir(case.dir.join("store/blobs/sha256"))
            .map_err(|e| format!("store/blobs/sha256: {e}"))?
            .count();
        if left > 0 {
            return Err(format!("a refused load left {left} blob(s) in the store"));
        }
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------
// Archive builders.

/// One layer entry. Names and targets are written raw; `SENTINEL` in a target is replaced
/// by the absolute path of the case's sentinel directory.
#[derive(Debug, Clone)]
enum Ent {
    Dir(String),
    File(String, usize),
    Symlink(String, String),
    Hard(String, String),
    Char(String),
    Block(String),
    Fifo(String),
    /// A regular file whose header declares this many bytes but carries 16.
    Lying(String, u64),
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Appends an entry with a raw name (GNU long name entry first when over 100 bytes).
fn append_raw(b: &mut Vec<u8>, mut h: tar::Header, name: &[u8], link: &[u8], data: &[u8]) {
    if name.len() > 100 {
        let mut l = header(tar::EntryType::GNULongName, 0o644, name.len() as u64 + 1);
        l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        l.set_cksum();
        b.extend_from_slice(l.as_bytes());
        let mut body = name.to_vec();
        body.push(0);
        body.resize(body.len().div_ceil(512) * 512, 0);
        b.extend_from_slice(&body);
    }
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    h.as_old_mut().linkname[..l].copy_from_slice(&link[..l]);
    h.set_cksum();
    b.extend_from_slice(h.as_bytes());
    let mut body = data.to_vec();
    body.resize(body.len().div_ceil(512) * 512, 0);
    b.extend_from_slice(&body);
}

fn finish_tar(mut b: Vec<u8>) -> Vec<u8> {
    b.extend_from_slice(&[0u8; 1024]);
    b
}

fn layer_tar(entries: &[Ent], sentinel: &str) -> Vec<u8> {
    use tar::EntryType as T;
    let mut b = Vec::new();
    let fix = |t: &str| t.replace("SENTINEL", sentinel);
    for e in entries {
        match e {
            Ent::Dir(n) => append_raw(
                &mut b,
                header(T::Directory, 0o755, 0),
                n.as_bytes(),
                b"",
                b"",
            ),
            Ent::File(n, size) => {
                let data: Vec<u8> = (0..*size).map(|i| b'a' + (i % 26) as u8).collect();
                append_raw(
                    &mut b,
                    header(T::Regular, 0o644, data.len() as u64),
                    n.as_bytes(),
                    b"",
                    &data,
                )
            }
            Ent::Symlink(n, t) => append_raw(
                &mut b,
                header(T::Symlink, 0o777, 0),
                n.as_bytes(),
                fix(t).as_bytes(),
                b"",
            ),
            Ent::Hard(n, t) => append_raw(
                &mut b,
                header(T::Link, 0o644, 0),
                n.as_bytes(),
                fix(t).as_bytes(),
                b"",
            ),
            Ent::Char(n) => append_raw(&mut b, header(T::Char, 0o666, 0), n.as_bytes(), b"", b""),
            Ent::Block(n) => append_raw(&mut b, header(T::Block, 0o666, 0), n.as_bytes(), b"", b""),
            Ent::Fifo(n) => append_raw(&mut b, header(T::Fifo, 0o644, 0), n.as_bytes(), b"", b""),
            Ent::Lying(n, size) => append_raw(
                &mut b,
                header(T::Regular, 0o644, *size),
                n.as_bytes(),
                b"",
                &[b'z'; 16],
            ),
        }
    }
    finish_tar(b)
}

/// The decompressed bytes of a gzip stream (`None` if it is not one or is corrupt).
fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OciDir,
    OciTar,
    OciTarGz,
    Docker,
    DockerGz,
}

/// Which document or blob a corruption hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Index,
    Manifest,
    Config,
    Layer(usize),
}

#[derive(Debug, Clone)]
enum Corruption {
    /// XOR a byte of a blob (or index.json / docker manifest.json) with a non-zero mask.
    Flip { part: Part, at: usize, mask: u8 },
    /// Cut a blob short.
    Truncate { part: Part, at: usize },
    /// A descriptor (or docker manifest entry) names a different, valid digest.
    OtherDigest { part: Part },
    /// A descriptor's size is off by `delta`.
    WrongSize { part: Part, delta: i64 },
    /// A descriptor's digest is malformed.
    BadDigest { part: Part, digest: &'static str },
    /// The outer tar is cut at `at`.
    TruncateTar { at: usize },
    /// A byte of the outer tar changes.
    FlipTar { at: usize, mask: u8 },
    /// An entry of the outer tar declares a huge size.
    HugeTarSize { entry: usize },
    /// A hostile entry is added at the front of the outer tar.
    Hostile(usize),
}

/// Hostile outer-tar entries: (name, link target, type). `SENTINEL` as above.
const HOSTILE: &[(&str, &str, u8)] = &[
    ("../escape", "", b'0'),
    ("/abs-file", "", b'0'),
    ("a/../../escape2", "", b'0'),
    ("index-link", "../../etc/passwd", b'1'),
    ("outside", "SENTINEL", b'2'),
    ("outside/pwned", "", b'0'),
    ("blobs", "/", b'2'),
    ("dev-null", "", b'3'),
    ("fifo", "", b'6'),
];

#[derive(Debug, Clone)]
struct Case {
    format: Format,
    layers: Vec<(Vec<Ent>, bool)>,
    corruptions: Vec<Corruption>,
    /// A seed manifest of the corpus used as index.json / manifest.json instead.
    seed_manifest: Option<usize>,
}

fn corpus_manifests() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir("images"))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus_dir("images").display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// The config's or a layer's item (`Layer(i)` wraps around), for blobs and descriptors.
fn blob_mut<'a, T>(part: Part, config: &'a mut T, layers: &'a mut [T]) -> Option<&'a mut T> {
    match part {
        Part::Config => Some(config),
        Part::Layer(i) if !layers.is_empty() => {
            let n = layers.len();
            Some(&mut layers[i % n])
        }
        _ => None,
    }
}

/// Builds the archive of `case` at `case_dir/input` (directory) or `input.tar`; returns
/// its path and the parts whose bytes were changed (these must give a digest mismatch).
fn build(case: &Case, dir: &Path) -> (PathBuf, Vec<Part>) {
    let sentinel = dir.join("sentinel").to_string_lossy().into_owned();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let layers: Vec<Vec<u8>> = case
        .layers
        .iter()
        .map(|(ents, gz)| {
            let t = layer_tar(ents, &sentinel);
            if *gz {
                gzip(&t)
            } else {
                t
            }
        })
        .collect();
    let diff_ids: Vec<String> = case
        .layers
        .iter()
        .map(|(ents, _)| sha(&layer_tar(ents, &sentinel)))
        .collect();
    let config = json!({"architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/app"], "Env": ["A=1"], "User": "65534"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let mut config = config.to_string().into_bytes();
    let mut layers = layers;
    let mut changed = Vec::new();
    // Blob content changes first (the documents name the original digests).
    let docker = matches!(case.format, Format::Docker | Format::DockerGz);
    let orig_config_digest = sha(&config);
    let orig_config_len = config.len();
    let orig_layer_digests: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let orig_layer_sizes: Vec<usize> = layers.iter().map(Vec::len).collect();
    let orig_layers = layers.clone();
    for c in &case.corruptions {
        let (Corruption::Flip { part, .. } | Corruption::Truncate { part, .. }) = *c else {
            continue;
        };
        let Some(blob) = blob_mut(part, &mut config, &mut layers) else {
            continue;
        };
        if blob.is_empty() {
            continue;
        }
        let n = blob.len();
        match *c {
            Corruption::Flip { at, mask, .. } => blob[at % n] ^= mask.max(1),
            Corruption::Truncate { at, .. } => blob.truncate(at % n),
            _ => unreachable!(),
        }
        changed.push(match part {
            Part::Layer(i) => Part::Layer(i % layers.len()),
            p => p,
        });
    }
    // A docker-archive names no compressed digest: only the uncompressed content (the diff
    // id) is verified, so a change in gzip metadata (mtime, OS byte) that leaves it as it was
    // is rightly accepted.
    if docker {
        changed.retain(|p| match *p {
            Part::Layer(i) => {
                gunzip(&layers[i]).is_none_or(|now| Some(now) != gunzip(&orig_layers[i]))
            }
            _ => true,
        });
    }
    let layer_digest = |i: usize| orig_layer_digests[i].clone();
    let mut manifest_bytes;
    let index_bytes;
    if docker {
        let cfg_name = format!("{}.json", &orig_config_digest[7..]);
        let mut entry = json!({"Config": cfg_name, "RepoTags": ["fuzz/img:1"],
            "Layers": (0..layers.len()).map(|i| format!("l{i}/layer.tar")).collect::<Vec<_>>()});
        for c in &case.corruptions {
            match *c {
                Corruption::OtherDigest { part: Part::Config } => {
                    entry["Config"] = json!(format!("{}.json", &sha(b"other")[7..]))
                }
                Corruption::OtherDigest {
                    part: Part::Layer(i),
                } if !layers.is_empty() => {
                    let i = i % layers.len();
                    entry["Layers"][i] = json!("missing/layer.tar")
                }
                Corruption::BadDigest {
                    part: Part::Config,
                    digest,
                } => entry["Config"] = json!(digest),
                _ => {}
            }
        }
        manifest_bytes = json!([entry]).to_string().into_bytes();
        files.push((
            entry["Config"].as_str().unwrap().to_string(),
            config.clone(),
        ));
        if entry["Config"].as_str() != Some(&cfg_name) {
            files.push((cfg_name, config.clone()));
        }
        for (i, l) in layers.iter().enumerate() {
            files.push((format!("l{i}/layer.tar"), l.clone()));
        }
        index_bytes = Vec::new();
    } else {
        let mut layer_descs: Vec<Value> = (0..layers.len())
            .map(|i| {
                let mt = if case.layers[i].1 {
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                } else {
                    "application/vnd.oci.image.layer.v1.tar"
                };
                json!({"mediaType": mt, "digest": layer_digest(i), "size": orig_layer_sizes[i]})
            })
            .collect();
        let mut config_desc = json!({"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": orig_config_digest, "size": orig_config_len});
        for c in &case.corruptions {
            let (Corruption::OtherDigest { part }
            | Corruption::WrongSize { part, .. }
            | Corruption::BadDigest { part, .. }) = *c
            else {
                continue;
            };
            let Some(d) = blob_mut(part, &mut config_desc, &mut layer_descs) else {
                continue;
            };
            match *c {
                Corruption::OtherDigest { .. } => d["digest"] = json!(sha(b"some other blob")),
                Corruption::WrongSize { delta, .. } => {
                    let s = d["size"].as_i64().unwrap_or(0);
                    d["size"] = json!(s + delta);
                }
                Corruption::BadDigest { digest, .. } => d["digest"] = json!(digest),
                _ => unreachable!(),
            }
        }
        manifest_bytes = json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc, "layers": layer_descs})
        .to_string()
        .into_bytes();
        let orig_manifest_digest = sha(&manifest_bytes);
        let orig_manifest_len = manifest_bytes.len();
        for c in &case.corruptions {
            match *c {
                Corruption::Flip {
                    part: Part::Manifest,
                    at,
                    mask,
                } => {
                    let n = manifest_bytes.len();
                    manifest_bytes[at % n] ^= mask.max(1);
                    changed.push(Part::Manifest);
                }
                Corruption::Truncate {
                    part: Part::Manifest,
                    at,
                } => {
                    let n = manifest_bytes.len();
                    manifest_bytes.truncate(at % n);
                    changed.push(Part::Manifest);
                }
                _ => {}
            }
        }
        let mut mdesc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": orig_manifest_digest, "size": orig_manifest_len,
            "annotations": {"io.containerd.image.name": "example.com/fuzz:1"}});
        for c in &case.corruptions {
            match *c {
                Corruption::OtherDigest {
                    part: Part::Manifest,
                } => mdesc["digest"] = json!(sha(b"another manifest")),
                Corruption::WrongSize {
                    part: Part::Manifest,
                    delta,
                } => mdesc["size"] = json!(orig_manifest_len as i64 + delta),
                Corruption::BadDigest {
                    part: Part::Manifest,
                    digest,
                } => mdesc["digest"] = json!(digest),
                _ => {}
            }
        }
        index_bytes = json!({"schemaVersion": 2, "manifests": [mdesc]})
            .to_string()
            .into_bytes();
        files.push((
            format!("blobs/sha256/{}", &orig_manifest_digest[7..]),
            manifest_bytes.clone(),
        ));
        files.push((
            format!("blobs/sha256/{}", &orig_config_digest[7..]),
            config.clone(),
        ));
        // Identical layers share a blob: a changed one is written last, so it is what all
        // of them read.
        let mut order: Vec<usize> = (0..layers.len()).collect();
        order.sort_by_key(|i| changed.contains(&Part::Layer(*i)));
        for i in order {
            files.push((
                format!("blobs/sha256/{}", &layer_digest(i)[7..]),
                layers[i].clone(),
            ));
        }
        files.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
    }
    // The top document: index.json or manifest.json, possibly a corpus seed or corrupted.
    let (top_name, mut top) = if docker {
        ("manifest.json".to_string(), manifest_bytes)
    } else {
        ("index.json".to_string(), index_bytes)
    };
    if let Some(i) = case.seed_manifest {
        let seeds = corpus_manifests();
        top = seeds[i % seeds.len()].1.clone();
    }
    for c in &case.corruptions {
        match *c {
            Corruption::Flip {
                part: Part::Index,
                at,
                mask,
            } if !top.is_empty() => {
                let n = top.len();
                top[at % n] ^= mask.max(1);
            }
            Corruption::Truncate {
                part: Part::Index,
                at,
            } if !top.is_empty() => {
                let n = top.len();
                top.truncate(at % n);
            }
            _ => {}
        }
    }
    files.push((top_name, top));

    if case.format == Format::OciDir {
        let root = dir.join("input");
        for (name, bytes) in &files {
            let p = root.join(name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, bytes).unwrap();
        }
        return (root, changed);
    }
    // A tar of the files, hostile entries first, then the outer corruptions.
    let mut t = Vec::new();
    let mut offsets = Vec::new();
    for c in &case.corruptions {
        if let Corruption::Hostile(i) = *c {
            let (name, link, ty) = HOSTILE[i % HOSTILE.len()];
            let link = link.replace("SENTINEL", &sentinel);
            let data: &[u8] = if ty == b'0' { b"hostile" } else { b"" };
            let h = header(tar::EntryType::new(ty), 0o644, data.len() as u64);
            offsets.push(t.len());
            append_raw(&mut t, h, name.as_bytes(), link.as_bytes(), data);
        }
    }
    for (name, bytes) in &files {
        offsets.push(t.len());
        append_raw(
            &mut t,
            header(tar::EntryType::Regular, 0o644, bytes.len() as u64),
            name.as_bytes(),
            b"",
            bytes,
        );
    }
    let mut t = finish_tar(t);
    for c in &case.corruptions {
        match *c {
            Corruption::HugeTarSize { entry } if !offsets.is_empty() => {
                let off = offsets[entry % offsets.len()];
                if off + 512 > t.len() {
                    continue;
                }
                let mut h = tar::Header::new_gnu();
                h.as_mut_bytes().copy_from_slice(&t[off..off + 512]);
                h.set_size(1 << 40);
                h.set_cksum();
                t[off..off + 512].copy_from_slice(h.as_bytes());
            }
            Corruption::TruncateTar { at } if !t.is_empty() => {
                let n = t.len();
                t.truncate(at % n);
            }
            Corruption::FlipTar { at, mask } if !t.is_empty() => {
                let n = t.len();
                t[at % n] ^= mask.max(1);
            }
            _ => {}
        }
    }
    if matches!(case.format, Format::OciTarGz | Format::DockerGz) {
        t = gzip(&t);
    }
    let path = dir.join("input.tar");
    fs::write(&path, t).unwrap();
    (path, changed)
}

// ---------------------------------------------------------------------------
// Strategies.

/// Entry names a layer may hold: plain, absolute, through symlinks, whiteouts, odd spellings.
const NAMES: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "bin/sh",
    "etc/passwd",
    "x",
    "./y",
    "/abs",
    "/abs/z",
    "a/./b",
    ".wh.a",
    "a/.wh.b",
    "a/.wh..wh..opq",
    ".wh..wh..opq",
    "evil",
    "evil/pwned",
    "evil/sub/pwned",
    "up",
    "up/pwned",
    "loop",
    "loop/x",
    "a//b",
    ".",
    "./",
    "",
];

/// Entry names that must be refused: `..` components and whiteouts of `.`/`..`/nothing.
const HOSTILE_NAMES: &[&str] = &[
    "../esc",
    "a/../../esc",
    "./../esc",
    ".wh...",
    "a/.wh...",
    ".wh..",
    ".wh.",
];

const LINK_TARGETS: &[&str] = &[
    "SENTINEL",
    "SENTINEL/keep",
    "/",
    "../../../..",
    "..",
    "a",
    "a/b",
    "loop",
    "evil",
    "/proc/self/root",
    "",
];

const HARD_TARGETS: &[&str] = &[
    "a",
    "a/b",
    "x",
    "bin/sh",
    "SENTINEL/keep",
    "/etc/passwd",
    "../../x",
    "evil/keep",
    "evil",
    "",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => prop::sample::select(NAMES).prop_map(str::to_owned),
        2 => prop::sample::select(HOSTILE_NAMES).prop_map(str::to_owned),
        1 => (1usize..5).prop_map(|n| format!("{}/f", "long-directory-name-".repeat(n * 2))),
        1 => (1usize..5).prop_map(|n| format!("{}esc", "../".repeat(n * 20))),
    ]
}

fn entry() -> impl Strategy<Value = Ent> {
    prop_oneof![
        3 => name().prop_map(Ent::Dir),
        5 => (name(), 0usize..2000).prop_map(|(n, s)| Ent::File(n, s)),
        3 => (name(), prop::sample::select(LINK_TARGETS)).prop_map(|(n, t)| Ent::Symlink(n, t.into())),
        2 => (name(), prop::sample::select(HARD_TARGETS)).prop_map(|(n, t)| Ent::Hard(n, t.into())),
        1 => (name(), any::<bool>()).prop_map(|(n, c)| if c { Ent::Char(n) } else { Ent::Block(n) }),
        1 => name().prop_map(Ent::Fifo),
        1 => (name(), prop_oneof![Just(17u64), Just(1 << 20), Just(1 << 40), Just(u64::MAX >> 4)])
            .prop_map(|(n, s)| Ent::Lying(n, s)),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        Just(Part::Index),
        Just(Part::Manifest),
        Just(Part::Config),
        (0usize..3).prop_map(Part::Layer),
    ]
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (part(), any::<usize>(), any::<u8>()).prop_map(|(part, at, mask)| Corruption::Flip {
            part,
            at,
            mask
        }),
        (part(), any::<usize>()).prop_map(|(part, at)| Corruption::Truncate { part, at }),
        part().prop_map(|part| Corruption::OtherDigest { part }),
        (part(), prop_oneof![Just(-1i64), Just(1), Just(1 << 40)])
            .prop_map(|(part, delta)| Corruption::WrongSize { part, delta }),
        (
            part(),
            prop::sample::select(
                &[
                    "sha256:xyz",
                    "sha256:../../../../etc/passwd",
                    "md5:d41d8cd98f00b204e9800998ecf8427e",
                    "sha256:",
                    "",
                    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                ][..]
            )
        )
            .prop_map(|(part, digest)| Corruption::BadDigest { part, digest }),
        any::<usize>().prop_map(|at| Corruption::TruncateTar { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, mask)| Corruption::FlipTar { at, mask }),
        any::<usize>().prop_map(|entry| Corruption::HugeTarSize { entry }),
        any::<usize>().prop_map(Corruption::Hostile),
    ]
}

fn format() -> impl Strategy<Value = Format> {
    prop::sample::select(
        &[
            Format::OciDir,
            Format::OciTar,
            Format::OciTarGz,
            Format::Docker,
            Format::DockerGz,
        ][..],
    )
}

fn case(max_corruptions: usize) -> impl Strategy<Value = Case> {
    (
        format(),
        prop::collection::vec((prop::collection::vec(entry(), 0..8), any::<bool>()), 1..4),
        prop::collection::vec(corruption(), 0..=max_corruptions),
        prop::option::weighted(0.05, any::<usize>()),
    )
        .prop_map(|(format, layers, corruptions, seed_manifest)| Case {
            format,
            layers,
            corruptions,
            seed_manifest,
        })
}

/// What the first entry of the first layer must make `image_root` do: a `..` component or a
/// device node (with a plain name) is refused before anything else happens.
fn layer_expectation(case: &Case) -> Option<ErrKind> {
    let first = case.layers.first()?.0.first()?;
    let (n, dev) = match first {
        Ent::Char(n) | Ent::Block(n) => (n, true),
        Ent::Dir(n) | Ent::File(n, _) | Ent::Symlink(n, _) | Ent::Fifo(n) | Ent::Lying(n, _) => {
            (n, false)
        }
        Ent::Hard(n, _) => (n, false),
    };
    let last = Path::new(n)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned());
    let dotdot = n.split('/').any(|c| c == "..");
    let device = dev && last.is_some_and(|f| !f.starts_with(".wh."));
    (dotdot || device).then_some(ErrKind::Unsafe)
}

/// The properties of one case beyond containment: digest changes are digest mismatches,
/// unsafe first layers are unsafe-layer errors.
fn check_case(case: &Case) -> Result<Outcome, String> {
    let dir = CaseDir::new();
    let (input, changed) = build(case, &dir.dir);
    let outcome = load_and_unpack(&dir, input)?;
    let only_blob_changes = case.seed_manifest.is_none()
        && case.corruptions.iter().all(|c| {
            matches!(
                c,
                Corruption::Flip {
                    part: Part::Config | Part::Layer(_) | Part::Manifest,
                    ..
                } | Corruption::Truncate {
                    part: Part::Config | Part::Layer(_) | Part::Manifest,
                    ..
                }
            )
        });
    if !changed.is_empty() && only_blob_changes {
        // Only blob bytes changed: the load must fail, on a digest (a gzip layer of a
        // docker-archive may fail decompressing first: an I/O error naming the layer).
        let docker_gz_layer = matches!(case.format, Format::Docker | Format::DockerGz)
            && changed.iter().any(|p| matches!(p, Part::Layer(_)));
        match &outcome {
            Outcome::LoadError(_, ErrKind::Digest) => {}
            Outcome::LoadError(_, ErrKind::Io) if docker_gz_layer => {}
            other => {
                return Err(format!(
                    "changed {changed:?}: expected a digest mismatch, got {other:?}"
                ))
            }
        }
    }
    if case.corruptions.is_empty() && case.seed_manifest.is_none() {
        // A well-formed archive loads; its first layer decides what unpacking must do.
        let Outcome::Loaded(roots) = &outcome else {
            return Err(format!("a well-formed archive was refused: {outcome:?}"));
        };
        if let Some(want) = layer_expectation(case) {
            match roots.first() {
                Some(Err((_, k))) if *k == want => {}
                other => return Err(format!("expected {want:?} from image_root, got {other:?}")),
            }
        }
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn fuzz_image_archives() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let start = Instant::now();
    let s = scale();
    let (cases, panics, loaded, unpacked) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let test = |c: Case| {
        cases.fetch_add(1, Ordering::Relaxed);
        let r = check_case(&c);
        match &r {
            Err(e) if e.contains("PANIC") => {
                panics.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Outcome::Loaded(roots)) => {
                loaded.fetch_add(1, Ordering::Relaxed);
                unpacked.fetch_add(
                    roots.iter().filter(|r| r.is_ok()).count(),
                    Ordering::Relaxed,
                );
            }
            _ => {}
        }
        r.map(|_| ())
    };
    let mut failures = Vec::new();
    failures.extend(run("well-formed archives", 1000 * s, case(0), test));
    failures.extend(run("corrupted archives", 3000 * s, case(3), test));
    let cases = cases.load(Ordering::Relaxed);
    let panics = panics.load(Ordering::Relaxed);
    let loaded = loaded.load(Ordering::Relaxed);
    println!(
        "fuzz: images: {cases} cases in {:.1} s, {panics} panics ({loaded} loaded, {} roots unpacked)",
        start.elapsed().as_secs_f64(),
        unpacked.load(Ordering::Relaxed)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(panics, 0);
    assert!(loaded * 5 >= cases, "only {loaded} of {cases} cases loaded");
}

fn one(entries: Vec<Ent>) -> Case {
    Case {
        format: Format::OciTar,
        layers: vec![(entries, false)],
        corruptions: Vec::new(),
        seed_manifest: None,
    }
}

fn unpack_error(case: Case) -> (String, ErrKind) {
    match check_case(&case).unwrap_or_else(|e| panic!("{case:?}: {e}")) {
        Outcome::Loaded(mut roots) => roots.remove(0).expect_err("unpacked"),
        other => panic!("{case:?}: {other:?}"),
    }
}

/// The hand-picked hostile layers, each with the error it must give (or contained).
#[test]
fn hostile_layers_are_refused_or_contained() {
    use Ent::*;
    let s = |x: &str| x.to_string();
    for (entries, want) in [
        (vec![File(s("../escape"), 3)], "'..' in a layer path"),
        (
            vec![File(s(&format!("{}escape", "../".repeat(40))), 3)],
            "'..' in a layer path",
        ),
        (
            vec![Hard(s("h"), s("../../../etc/passwd"))],
            "'..' in a layer path",
        ),
        (vec![Char(s("dev/null"))], "device nodes are not allowed"),
        (vec![Block(s("dev/sda"))], "device nodes are not allowed"),
        (vec![File(s(".wh..."), 0)], "whiteout"),
        (vec![Dir(s("a")), File(s("a/.wh..."), 0)], "whiteout"),
        (vec![File(s(".wh.."), 0)], "whiteout"),
        (vec![File(s(".wh."), 0)], "whiteout"),
    ] {
        let (e, k) = unpack_error(one(entries.clone()));
        assert!(k == ErrKind::Unsafe && e.contains(want), "{entries:?}: {e}");
    }
    // Absolute names, absolute and '..' symlinks followed by files, hard links through
    // them, fifos: all land inside the root (the case checks prove nothing left it).
    let case = one(vec![
        File(s("/abs/file"), 5),
        Symlink(s("evil"), s("SENTINEL")),
        File(s("evil/pwned"), 5),
        Symlink(s("up"), s("../../../..")),
        File(s("up/pwned"), 5),
        Symlink(s("root"), s("/")),
        Dir(s("root/tmp")),
        Hard(s("h"), s("evil/pwned")),
        Fifo(s("pipe")),
        Symlink(s("pipe2"), s("SENTINEL/keep")),
        Fifo(s("pipe2")),
    ]);
    match check_case(&case).unwrap_or_else(|e| panic!("{e}")) {
        Outcome::Loaded(roots) => assert!(roots[0].is_ok(), "{roots:?}"),
        other => panic!("{other:?}"),
    }
    // A hard link to a host file by absolute path names nothing inside the root.
    let (e, k) = unpack_error(one(vec![Hard(s("h"), s("SENTINEL/keep"))]));
    assert!(k == ErrKind::Io && e.contains("sentinel/keep"), "{e}");
}

/// Each kind of broken archive, with the error kind and words it must give.
#[test]
fn broken_archives_name_the_problem() {
    let layer = vec![(vec![Ent::File("f".into(), 100)], true)];
    let mk = |format, corruptions: Vec<Corruption>| Case {
        format,
        layers: layer.clone(),
        corruptions,
        seed_manifest: None,
    };
    for (case, want, words) in [
        (
            mk(
                Format::OciDir,
                vec![Corruption::Flip {
                    part: Part::Layer(0),
                    at: 20,
                    mask: 1,
                }],
            ),
            ErrKind::Digest,
            "digest mismatch",
        ),
        (
            mk(
                Format::OciTar,
                vec![Corruption::Flip {
                    part: Part::Config,
                    at: 3,
                    mask: 4,
                }],
            ),
            ErrKind::Digest,
            "digest mismatch",
        ),
        (
            mk(
                Format::OciTarGz,
                vec![Corruption::Flip {
                    part: Part::Manifest,
                    at: 3,
                    mask: 4,
                }],
            ),
            ErrKind::Digest,
            "digest mismatch",
        ),
        (
            mk(
                Format::Docker,
                vec![Corruption::Flip {
                    part: Part::Config,
                    at: 3,
                    mask: 4,
                }],
            ),
            ErrKind::Digest,
            "digest mismatch",
        ),
        (
            mk(
                Format::OciDir,
                vec![Corruption::OtherDigest {
                    part: Part::Layer(0),
                }],
            ),
            ErrKind::Archive,
            "is missing",
        ),
        (
            mk(
                Format::OciDir,
                vec![Corruption::WrongSize {
                    part: Part::Config,
                    delta: 1,
                }],
            ),
            ErrKind::Archive,
            "descriptor says",
        ),
        (
            mk(
                Format::OciDir,
                vec![Corruption::BadDigest {
                    part: Part::Layer(0),
                    digest: "sha256:../../../../etc/passwd",
                }],
            ),
            ErrKind::Reference,
            "invalid image reference",
        ),
        (
            mk(
                Format::OciDir,
                vec![Corruption::Truncate {
                    part: Part::Index,
                    at: 10,
                }],
            ),
            ErrKind::Json,
            "index.json",
        ),
        (
            mk(
                Format::Docker,
                vec![Corruption::Truncate {
                    part: Part::Index,
                    at: 10,
                }],
            ),
            ErrKind::Json,
            "manifest.json",
        ),
        (
            mk(Format::OciTar, vec![Corruption::Hostile(0)]),
            ErrKind::Archive,
            "unsafe path \"../escape\"",
        ),
        (
            mk(Format::OciTar, vec![Corruption::Hostile(3)]),
            ErrKind::Archive,
            "points outside the archive",
        ),
        (
            mk(Format::OciTar, vec![Corruption::TruncateTar { at: 700 }]),
            ErrKind::Io,
            "input.tar",
        ),
        (
            mk(Format::DockerGz, vec![Corruption::HugeTarSize { entry: 0 }]),
            ErrKind::Io,
            "input.tar",
        ),
    ] {
        let got = check_case(&case).unwrap_or_else(|e| panic!("{case:?}: {e}"));
        match &got {
            Outcome::LoadError(text, k) if *k == want && text.contains(words) => {}
            other => panic!("{case:?}: expected {want:?} with {words:?}, got {other:?}"),
        }
    }
}

/// A gzip bomb layer (64 MiB of zeros in 64 KiB): decompressed as a stream, verified against
/// its diff id and unpacked; memory stays flat (the file is written, not held).
#[test]
fn gzip_bomb_layer_is_streamed() {
    let size = 64usize << 20;
    let mut raw = Vec::new();
    append_raw(
        &mut raw,
        header(tar::EntryType::Regular, 0o644, size as u64),
        b"zeros",
        b"",
        b"",
    );
    raw.truncate(512); // the header alone; the data follows from the stream below
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&raw).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut hasher = Sha256::new();
    hasher.update(&raw);
    for _ in 0..(size >> 20) {
        enc.write_all(&zeros).unwrap();
        hasher.update(&zeros);
    }
    enc.write_all(&[0u8; 1024]).unwrap();
    hasher.update([0u8; 1024]);
    let layer = enc.finish().unwrap();
    assert!(layer.len() < size / 100, "{} bytes compressed", layer.len());
    let diff_id = format!("sha256:{}", hex(&hasher.finalize()));

    let dir = CaseDir::new();
    let input = oci_dir_with_layer(&dir, &layer, &diff_id);
    let before = peak_rss_kib();
    let got = load_and_unpack(&dir, input).unwrap();
    assert!(
        matches!(&got, Outcome::Loaded(r) if r[0].is_ok()),
        "{got:?}"
    );
    let root = fs::read_dir(dir.dir.join("store/roots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.ends_with("witness"))
        .unwrap();
    assert_eq!(fs::metadata(root.join("zeros")).unwrap().len(), size as u64);
    // The process's peak may include other tests of this binary; a held copy of the
    // layer would add 64 MiB at least.
    if let (Some(b), Some(a)) = (before, peak_rss_kib()) {
        assert!(
            a.saturating_sub(b) < 48 << 10,
            "peak RSS grew by {} KiB",
            a - b
        );
    }
}

/// An OCI layout directory at `case/input` with one image of the one layer given.
fn oci_dir_with_layer(case: &CaseDir, layer: &[u8], diff_id: &str) -> PathBuf {
    let input = case.dir.join("input");
    let blobs = input.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let d = sha(b);
        fs::write(blobs.join(&d[7..]), b).unwrap();
        (d, b.len())
    };
    let (ld, ln) = put(layer);
    let config = json!({"rootfs": {"type": "layers", "diff_ids": [diff_id]}}).to_string();
    let (cd, cn) = put(config.as_bytes());
    let manifest = json!({"schemaVersion": 2, "config": {"digest": cd, "size": cn},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ln}]})
    .to_string();
    let (md, mn) = put(manifest.as_bytes());
    let index = json!({"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": mn}]});
    fs::write(input.join("index.json"), index.to_string()).unwrap();
    input
}

/// The layers of `testdata/fuzz/images/regressions/` (inputs that broke the store once):
/// each is refused as an unsafe layer, with everything outside its root intact.
#[test]
fn regression_layers_are_refused() {
    let dir = corpus_dir("images").join("regressions");
    let mut layers: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    layers.sort();
    assert!(
        !layers.is_empty(),
        "no regression layers in {}",
        dir.display()
    );
    for p in layers {
        let layer = fs::read(&p).unwrap();
        let case = CaseDir::new();
        let input = oci_dir_with_layer(&case, &layer, &sha(&layer));
        match load_and_unpack(&case, input).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
            Outcome::Loaded(roots) => match &roots[0] {
                Err((e, ErrKind::Unsafe)) if e.contains("whiteout") => {}
                other => panic!("{}: {other:?}", p.display()),
            },
            other => panic!("{}: {other:?}", p.display()),
        }
    }
}

fn peak_rss_kib() -> Option<u64> {
    fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The seed manifests of the corpus parse as what they are (and are used above).
#[test]
fn corpus_seeds_are_present() {
    let seeds = corpus_manifests();
    assert!(seeds.len() >= 3, "{seeds:?}");
    for (name, bytes) in seeds {
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v.is_object() || v.is_array(), "{name}");
    }
}
