//! Reading image archives: OCI image layouts (directory or tar) and docker-archive tars.
//!
//! A tar archive is first staged (regular files only, paths checked) so that both formats are
//! read from a directory. Every blob is copied into the store while its sha256 is computed;
//! a mismatch with the digest the manifest (or `rootfs.diff_ids`) names refuses the load.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::reference::{check_digest, normalize_reference};
use crate::store::{id_hex, ImageConfig, ImageRecord};
use crate::ImageError;

/// JSON documents (index, manifests, configs) larger than this are refused.
const MAX_JSON: u64 = 8 << 20;

/// One image read from an archive, its blobs already in the store.
pub(crate) struct LoadedImage {
    pub record: ImageRecord,
    pub layers: Vec<String>,
    pub manifest: Option<String>,
}

/// The files of an archive: a directory plus symlinks recorded from a tar.
struct Source {
    dir: PathBuf,
    links: HashMap<PathBuf, PathBuf>,
    archive: PathBuf,
}

/// Loads all images of the archive at `path`, copying blobs into `blob_dir`. The blobs this
/// call added to `blob_dir` (ones that were not there before) are appended to `created`, also
/// when it fails, so that the caller can remove them again when the images are not indexed.
pub(crate) fn load(
    path: &Path,
    staging: &Path,
    blob_dir: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<Vec<LoadedImage>, ImageError> {
    let new_blobs = std::cell::RefCell::new(Vec::new());
    let result = load_into(path, staging, blob_dir, &new_blobs);
    created.extend(new_blobs.into_inner());
    result
}

fn load_into(
    path: &Path,
    staging: &Path,
    blob_dir: &Path,
    created: &std::cell::RefCell<Vec<PathBuf>>,
) -> Result<Vec<LoadedImage>, ImageError> {
    let meta = fs::metadata(path).map_err(ImageError::io(path))?;
    let src = if meta.is_dir() {
        Source {
            dir: path.to_path_buf(),
            links: HashMap::new(),
            archive: path.to_path_buf(),
        }
    } else {
        stage_tar(path, staging)?
    };
    let ctx = Loader {
        src: &src,
        blob_dir,
        created,
    };
    if src.exists("index.json") {
        ctx.load_oci()
    } else if src.exists("manifest.json") {
        ctx.load_docker()
    } else {
        Err(src.invalid(
            "neither index.json (OCI image layout) nor manifest.json (docker-archive) found",
        ))
    }
}

/// Unpacks the regular files of a (possibly gzip-compressed) tar into `staging`.
fn stage_tar(path: &Path, staging: &Path) -> Result<Source, ImageError> {
    let mut src = Source {
        dir: staging.to_path_buf(),
        links: HashMap::new(),
        archive: path.to_path_buf(),
    };
    let mut archive = tar::Archive::new(maybe_gunzip(
        File::open(path).map_err(ImageError::io(path))?,
        path,
    )?);
    let entries = archive.entries().map_err(ImageError::io(path))?;
    for entry in entries {
        let mut entry = entry.map_err(ImageError::io(path))?;
        let name = entry.path().map_err(ImageError::io(path))?.into_owned();
        let rel = clean_relative(&name)
            .ok_or_else(|| src.invalid(&format!("unsafe path {name:?} in archive")))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || rel.as_os_str().is_empty() {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(ImageError::io(path))?
                .unwrap_or_default()
                .into_owned();
            let base = if kind.is_symlink() {
                rel.parent().unwrap_or(Path::new(""))
            } else {
                Path::new("")
            };
            let joined = clean_relative(&base.join(&target))
                .ok_or_else(|| src.invalid(&format!("link {name:?} points outside the archive")))?;
            src.links.insert(rel, joined);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let out = staging.join(&rel);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(ImageError::io(parent))?;
        }
        let mut file = File::create(&out).map_err(ImageError::io(&out))?;
        io::copy(&mut entry, &mut file).map_err(ImageError::io(&out))?;
    }
    Ok(src)
}

/// Wraps a reader in a gzip decoder when it starts with the gzip magic.
pub(crate) fn maybe_gunzip(mut file: File, path: &Path) -> Result<Box<dyn Read>, ImageError> {
    use std::io::{Seek, SeekFrom};
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(ImageError::io(path))?;
    file.seek(SeekFrom::Start(0))
        .map_err(ImageError::io(path))?;
    let reader = BufReader::new(file);
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// Normalizes an archive-relative path; `None` if it is absolute-escaping or has `..`.
fn clean_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

impl Source {
    fn resolve(&self, rel: &str) -> Result<PathBuf, ImageError> {
        let mut rel = clean_relative(Path::new(rel))
            .ok_or_else(|| self.invalid(&format!("unsafe path {rel:?}")))?;
        for _ in 0..16 {
            match self.links.get(&rel) {
                Some(target) => rel = target.clone(),
                None => return Ok(self.dir.join(rel)),
            }
        }
        Err(self.invalid("too many levels of links"))
    }

    fn exists(&self, rel: &str) -> bool {
        self.resolve(rel).is_ok_and(|p| p.is_file())
    }

    fn open(&self, rel: &str) -> Result<File, ImageError> {
        let path = self.resolve(rel)?;
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => self.invalid(&format!("{rel} is missing")),
            _ => ImageError::io(&path)(e),
        })
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, rel: &str) -> Result<T, ImageError> {
        let mut bytes = Vec::new();
        self.open(rel)?
            .take(MAX_JSON)
            .read_to_end(&mut bytes)
            .map_err(ImageError::io(rel))?;
        serde_json::from_slice(&bytes).map_err(|error| ImageError::Json {
            what: format!("{}: {rel}", self.archive.display()),
            error,
        })
    }

    fn invalid(&self, reason: &str) -> ImageError {
        ImageError::InvalidArchive {
            path: self.archive.clone(),
            reason: reason.to_string(),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
pub(crate) struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
pub(crate) struct OciIndex {
    pub(crate) manifests: Vec<Descriptor>,
}

/// An OCI image manifest or a Docker v2 schema 2 manifest (the same shape).
#[derive(Deserialize)]
pub(crate) struct OciManifest {
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

struct Loader<'a> {
    src: &'a Source,
    blob_dir: &'a Path,
    /// Blobs this load added to `blob_dir`.
    created: &'a std::cell::RefCell<Vec<PathBuf>>,
}

/// The OCI platform architecture name of this machine.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

impl Loader<'_> {
    fn load_oci(&self) -> Result<Vec<LoadedImage>, ImageError> {
        let index: OciIndex = self.src.read_json("index.json")?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let names = names_of(desc);
            let manifest_desc = self.pick_platform(desc)?;
            // The repo digest is the digest the entry names (an index's, for a multi-platform
            // image), as containerd records a pulled or imported image's target.
            out.push(self.load_oci_manifest(&manifest_desc, &desc.digest, names)?);
        }
        if out.is_empty() {
            return Err(self.src.invalid("index.json lists no manifests"));
        }
        Ok(out)
    }

    /// Follows nested indexes down to this machine's linux manifest.
    fn pick_platform(&self, desc: &Descriptor) -> Result<Descriptor, ImageError> {
        if !is_index(&desc.media_type) {
            return Ok(Descriptor {
                annotations: HashMap::new(),
                platform: None,
                media_type: desc.media_type.clone(),
                digest: desc.digest.clone(),
                size: desc.size,
            });
        }
        let nested: OciIndex =
            serde_json::from_slice(&self.verified_bytes(desc)?).map_err(|error| {
                ImageError::Json {
                    what: desc.digest.clone(),
                    error,
                }
            })?;
        let chosen = choose_platform(nested.manifests);
        let chosen = chosen.ok_or_else(|| {
            self.src.invalid(&format!(
                "no linux/{} manifest in {}",
                host_arch(),
                desc.digest
            ))
        })?;
        self.pick_platform(&chosen)
    }

    fn load_oci_manifest(
        &self,
        desc: &Descriptor,
        repo_digest: &str,
        names: Vec<String>,
    ) -> Result<LoadedImage, ImageError> {
        let bytes = self.verified_bytes(desc)?;
        let manifest: OciManifest =
            serde_json::from_slice(&bytes).map_err(|error| ImageError::Json {
                what: desc.digest.clone(),
                error,
            })?;
        self.store_bytes(&desc.digest, &bytes)?;
        let config_bytes = self.verified_bytes(&manifest.config)?;
        self.store_bytes(&manifest.config.digest, &config_bytes)?;
        let mut layers = Vec::new();
        let mut size = config_bytes.len() as u64;
        for layer in &manifest.layers {
            if layer.media_type.contains("zstd") {
                return Err(self.src.invalid(&format!(
                    "unsupported layer media type {}",
                    layer.media_type
                )));
            }
            size += self
                .ingest(&blob_rel(&layer.digest)?, Some(&layer.digest), layer.size)?
                .1;
            layers.push(layer.digest.clone());
        }
        // A name with a digest (`repo@sha256:…`, an image pulled by digest) is a repo digest,
        // not a tag.
        let (digested, names): (Vec<String>, Vec<String>) =
            names.into_iter().partition(|n| n.contains('@'));
        let mut repo_digests: Vec<String> = names
            .iter()
            .map(|n| format!("{}@{repo_digest}", repo_of(n)))
            .collect();
        for d in digested {
            if !repo_digests.contains(&d) {
                repo_digests.push(d);
            }
        }
        self.finish(
            &manifest.config.digest,
            &config_bytes,
            layers,
            names,
            repo_digests,
            size,
            Some(desc.digest.clone()),
        )
    }

    fn load_docker(&self) -> Result<Vec<LoadedImage>, ImageError> {
        let manifests: Vec<DockerManifest> = self.src.read_json("manifest.json")?;
        let mut out = Vec::new();
        for m in manifests {
            let mut config_bytes = Vec::new();
            self.src
                .open(&m.config)?
                .take(MAX_JSON)
                .read_to_end(&mut config_bytes)
                .map_err(ImageError::io(&m.config))?;
            let config_digest = format!("sha256:{}", hex(&Sha256::digest(&config_bytes)));
            if let Some(named) = Path::new(&m.config)
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|s| s.len() == 64)
            {
                expect_digest(&m.config, &format!("sha256:{named}"), &config_digest)?;
            }
            self.store_bytes(&config_digest, &config_bytes)?;
            let mut layers = Vec::new();
            let mut size = config_bytes.len() as u64;
            for rel in &m.layers {
                let (digest, n) = self.ingest(rel, None, None)?;
                size += n;
                layers.push(digest);
            }
            let mut names = Vec::new();
            for tag in m.repo_tags.unwrap_or_default() {
                names.push(normalize_reference(&tag)?);
            }
            out.push(self.finish(
                &config_digest,
                &config_bytes,
                layers,
                names,
                Vec::new(),
                size,
                None,
            )?);
        }
        Ok(out)
    }

    /// Parses the config, checks `rootfs.diff_ids` against the layers, builds the record.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        config_digest: &str,
        config_bytes: &[u8],
        layers: Vec<String>,
        names: Vec<String>,
        repo_digests: Vec<String>,
        size: u64,
        manifest: Option<String>,
    ) -> Result<LoadedImage, ImageError> {
        let config: Value =
            serde_json::from_slice(config_bytes).map_err(|error| ImageError::Json {
                what: format!("config {config_digest}"),
                error,
            })?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != layers.len() {
            return Err(self.src.invalid(&format!(
                "config {config_digest} lists {} diff_ids for {} layers",
                diff_ids.len(),
                layers.len()
            )));
        }
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            let actual = uncompressed_digest(&self.blob_dir.join(id_hex(layer)?))?;
            expect_digest(&format!("uncompressed layer {layer}"), diff_id, &actual)?;
        }
        let record = ImageRecord {
            id: config_digest.to_string(),
            names,
            repo_digests,
            size,
            config: image_config(&config),
        };
        Ok(LoadedImage {
            record,
            layers,
            manifest,
        })
    }

    /// Reads a small blob (manifest, index, config) and checks its digest.
    fn verified_bytes(&self, desc: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let rel = blob_rel(&desc.digest)?;
        let mut bytes = Vec::new();
        self.src
            .open(&rel)?
            .take(MAX_JSON)
            .read_to_end(&mut bytes)
            .map_err(ImageError::io(&rel))?;
        expect_digest(
            &rel,
            &desc.digest,
            &format!("sha256:{}", hex(&Sha256::digest(&bytes))),
        )?;
        if let Some(size) = desc.size.filter(|s| *s != bytes.len() as u64) {
            return Err(self.src.invalid(&format!(
                "{rel}: size {} but descriptor says {size}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn store_bytes(&self, digest: &str, bytes: &[u8]) -> Result<(), ImageError> {
        let path = self.blob_dir.join(id_hex(digest)?);
        let tmp = unique_tmp(self.blob_dir);
        if let Err(e) = fs::write(&tmp, bytes) {
            let _ = fs::remove_file(&tmp);
            return Err(ImageError::io(&tmp)(e));
        }
        self.publish(&tmp, &path)
    }

    /// Moves a verified blob to its place (replacing a copy there, which repairs a blob
    /// corrupted on disk), remembering it when it is new.
    fn publish(&self, tmp: &Path, path: &Path) -> Result<(), ImageError> {
        let new = !path.exists();
        if let Err(e) = fs::rename(tmp, path) {
            let _ = fs::remove_file(tmp);
            return Err(ImageError::io(path)(e));
        }
        if new {
            self.created.borrow_mut().push(path.to_path_buf());
        }
        Ok(())
    }

    /// Copies a blob into the store while hashing it; returns its digest and size.
    fn ingest(
        &self,
        rel: &str,
        expected: Option<&str>,
        size: Option<u64>,
    ) -> Result<(String, u64), ImageError> {
        let mut input = self.src.open(rel)?;
        let tmp = unique_tmp(self.blob_dir);
        let mut out = HashingWriter {
            inner: File::create(&tmp).map_err(ImageError::io(&tmp))?,
            hasher: Sha256::new(),
        };
        let n = match io::copy(&mut input, &mut out) {
            Ok(n) => n,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(ImageError::io(rel)(e));
            }
        };
        let digest = format!("sha256:{}", hex(&out.hasher.finalize()));
        let checked = match expected {
            Some(e) => expect_digest(rel, e, &digest),
            None => Ok(()),
        };
        let checked = checked.and_then(|()| match size {
            Some(s) if s != n => Err(self
                .src
                .invalid(&format!("{rel}: size {n} but descriptor says {s}"))),
            _ => Ok(()),
        });
        if let Err(e) = checked {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let path = self.blob_dir.join(id_hex(&digest)?);
        self.publish(&tmp, &path)?;
        Ok((digest, n))
    }
}

/// The entry of an index this node runs: the first one without a platform or for linux on
/// this machine's architecture (containerd's default platform matcher, without variants).
/// Pulls choose with the same function, so the store loads what was pulled.
pub(crate) fn choose_platform(manifests: Vec<Descriptor>) -> Option<Descriptor> {
    manifests.into_iter().find(|m| {
        m.platform
            .as_ref()
            .is_none_or(|p| p.os == "linux" && p.architecture == host_arch())
    })
}

/// A temporary name in `dir`, unique across processes and threads.
fn unique_tmp(dir: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The names an index entry carries in its annotations.
fn names_of(desc: &Descriptor) -> Vec<String> {
    let full = desc
        .annotations
        .get("io.containerd.image.name")
        .or_else(|| {
            desc.annotations
                .get("org.opencontainers.image.ref.name")
                .filter(|r| r.contains(['/', ':']))
        });
    full.and_then(|r| normalize_reference(r).ok())
        .into_iter()
        .collect()
}

/// `blobs/sha256/<hex>` of a digest.
fn blob_rel(digest: &str) -> Result<String, ImageError> {
    check_digest(digest).map_err(|reason| ImageError::InvalidReference {
        reference: digest.into(),
        reason,
    })?;
    Ok(format!("blobs/sha256/{}", &digest["sha256:".len()..]))
}

fn repo_of(name: &str) -> &str {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    name[slash..]
        .rfind(':')
        .map_or(name, |i| &name[..slash + i])
}

pub(crate) fn expect_digest(what: &str, expected: &str, actual: &str) -> Result<(), ImageError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ImageError::DigestMismatch {
            what: what.into(),
            expected: expected.into(),
            actual: actual.into(),
        })
    }
}

/// The sha256 of a blob file as stored (its digest).
pub(crate) fn blob_digest(path: &Path) -> Result<String, ImageError> {
    let mut file = File::open(path).map_err(ImageError::io(path))?;
    let mut hasher = HashingWriter {
        inner: io::sink(),
        hasher: Sha256::new(),
    };
    io::copy(&mut file, &mut hasher).map_err(ImageError::io(path))?;
    Ok(format!("sha256:{}", hex(&hasher.hasher.finalize())))
}

/// The sha256 of a layer blob after gzip decompression (the diff id).
fn uncompressed_digest(path: &Path) -> Result<String, ImageError> {
    let mut reader = maybe_gunzip(File::open(path).map_err(ImageError::io(path))?, path)?;
    let mut hasher = HashingWriter {
        inner: io::sink(),
        hasher: Sha256::new(),
    };
    io::copy(&mut reader, &mut hasher).map_err(ImageError::io(path))?;
    Ok(format!("sha256:{}", hex(&hasher.hasher.finalize())))
}

fn image_config(config: &Value) -> ImageConfig {
    let strings = |key: &str| -> Vec<String> {
        config
            .pointer(&format!("/config/{key}"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let string = |key: &str| {
        config
            .pointer(&format!("/config/{key}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    ImageConfig {
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        env: strings("Env"),
        working_dir: string("WorkingDir"),
        user: string("User"),
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes what is read through it.
pub(crate) struct HashingReader<R> {
    pub inner: R,
    pub hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    /// `sha256:<hex>` of everything read so far.
    pub fn digest(self) -> String {
        format!("sha256:{}", hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
