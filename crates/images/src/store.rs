//! The store itself: blobs, the reference index, and unpacked roots.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::archive::{self, LoadedImage};
use crate::reference::{is_hex64, normalize_reference};
use crate::{unpack, ImageError};

/// The image configuration fields a container needs (from the OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// `config.Env` (`KEY=value`).
    pub env: Vec<String>,
    /// `config.WorkingDir` (empty: `/`).
    pub working_dir: String,
    /// `config.User` (empty: root).
    pub user: String,
}

/// One image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<config digest>`.
    pub id: String,
    /// Normalized references (`docker.io/library/busybox:1.28`).
    pub names: Vec<String>,
    /// `name@sha256:<manifest digest>` for images loaded with a manifest digest.
    pub repo_digests: Vec<String>,
    /// Sum of the config and (compressed) layer blob sizes, as containerd reports it.
    pub size: u64,
    /// The image configuration.
    pub config: ImageConfig,
}

/// What the index keeps per image: the record plus the layer blobs in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    pub record: ImageRecord,
    /// Layer blob digests (`sha256:…`), bottom first.
    pub layers: Vec<String>,
    /// The manifest blob digest, when the image came with one.
    #[serde(default)]
    pub manifest: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    images: Vec<IndexEntry>,
}

/// The image store rooted at `D/images`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        for dir in [
            root.to_path_buf(),
            root.join("blobs/sha256"),
            root.join("roots"),
            root.join("tmp"),
        ] {
            fs::create_dir_all(&dir).map_err(ImageError::io(&dir))?;
        }
        Ok(ImageStore {
            root: root.to_path_buf(),
        })
    }

    /// Loads every image of an OCI image layout (directory or tar) or docker-archive tar,
    /// verifying every digest; returns the records as stored. A load that fails (a digest
    /// mismatch, a full disk) changes nothing: the index is replaced only once every image
    /// is verified, and the blobs it added are removed again. A blob already in the store
    /// is replaced by the verified copy, so loading the archive again repairs a blob
    /// corrupted on disk.
    pub fn load_archive(&self, path: &Path) -> Result<Vec<ImageRecord>, ImageError> {
        let staging = tempdir_in(&self.root.join("tmp"))?;
        // Under the lock: a concurrent remove must not collect blobs not yet indexed.
        let _lock = self.lock()?;
        let mut created = Vec::new();
        let result =
            archive::load(path, &staging.0, &self.blob_dir(), &mut created).and_then(|loaded| {
                let mut index = self.read_index()?;
                let out: Vec<ImageRecord> = loaded
                    .into_iter()
                    .map(|image| merge(&mut index, image))
                    .collect();
                self.write_index(&index)?;
                Ok(out)
            });
        if result.is_err() {
            for blob in created {
                let _ = fs::remove_file(blob);
            }
        }
        result
    }

    /// The store's root directory (`D/images`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a blob the store holds (`sha256:<hex>`), if it holds it.
    pub(crate) fn blob_if_present(&self, digest: &str) -> Option<PathBuf> {
        self.blob_path(digest).ok().filter(|p| p.is_file())
    }

    /// All images, in load order.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self
            .read_index()?
            .images
            .into_iter()
            .map(|e| e.record)
            .collect())
    }

    /// Removes a reference (the name only, while the image has other names) or an image by id.
    pub fn remove(&self, reference: &str) -> Result<(), ImageError> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let pos = find(&index, reference)?.ok_or_else(|| ImageError::NotFound(reference.into()))?;
        let by_name = normalize_reference(reference)
            .ok()
            .filter(|n| index.images[pos].record.names.contains(n));
        let entry = &mut index.images[pos];
        if let Some(name) = by_name {
            entry.record.names.retain(|n| *n != name);
            let repo = crate::reference::repository(&name).to_string();
            if !entry
                .record
                .names
                .iter()
                .any(|n| crate::reference::repository(n) == repo)
            {
                entry
                    .record
                    .repo_digests
                    .retain(|d| crate::reference::repository(d) != repo);
            }
            if !entry.record.names.is_empty() {
                return self.write_index(&index);
            }
        }
        let removed = index.images.remove(pos);
        self.write_index(&index)?;
        self.collect_garbage(&index, &removed)
    }

    /// Finds the image a reference names: a name (normalized), `name@digest`, an id
    /// (`sha256:<hex>`, `<hex>`) or a unique id prefix of at least 12 hex digits.
    pub fn resolve(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        let index = self.read_index()?;
        Ok(find(&index, reference)?.map(|i| index.images[i].record.clone()))
    }

    /// The unpacked root filesystem of an image: all layers applied in order (OCI whiteouts
    /// honoured) into `roots/<config hex>`, once, shared by every caller.
    ///
    /// Unpacking verifies the blobs again, as they are on disk now: the config against the
    /// image id, each layer against its digest before anything of it is applied, and what was
    /// applied against the config's `rootfs.diff_ids` (containerd's unpacker: "wrong diff id
    /// calculated on extraction", core/unpack/unpacker.go). A blob corrupted since it was
    /// loaded is a [`ImageError::DigestMismatch`] naming it, and no root is published;
    /// `load_archive` of a good copy repairs it.
    pub fn image_root(&self, image: &ImageRecord) -> Result<PathBuf, ImageError> {
        let hex = id_hex(&image.id)?;
        let target = self.root.join("roots").join(hex);
        if target.is_dir() {
            return Ok(target);
        }
        let _lock = self.lock()?;
        if target.is_dir() {
            return Ok(target);
        }
        let index = self.read_index()?;
        let entry = index
            .images
            .iter()
            .find(|e| e.record.id == image.id)
            .ok_or_else(|| ImageError::NotFound(image.id.clone()))?;
        let staging = self
            .root
            .join("roots")
            .join(format!(".tmp-{hex}-{}", std::process::id()));
        remove_any(&staging)?;
        fs::create_dir(&staging).map_err(ImageError::io(&staging))?;
        let applied = self.diff_ids(entry).and_then(|diff_ids| {
            entry
                .layers
                .iter()
                .zip(&diff_ids)
                .try_for_each(|(layer, diff_id)| {
                    let blob = self.blob_path(layer)?;
                    archive::expect_digest(
                        &format!("layer {layer} in the image store"),
                        layer,
                        &archive::blob_digest(&blob)?,
                    )?;
                    unpack::apply_layer(&blob, layer, diff_id, &staging)
                })
        });
        if let Err(e) = applied {
            remove_any(&staging)?;
            return Err(e);
        }
        fs::rename(&staging, &target).map_err(ImageError::io(&target))?;
        Ok(target)
    }

    /// The `rootfs.diff_ids` of an image's config blob, verified against the image id.
    fn diff_ids(&self, entry: &IndexEntry) -> Result<Vec<String>, ImageError> {
        let path = self.blob_path(&entry.record.id)?;
        let bytes = fs::read(&path).map_err(ImageError::io(&path))?;
        archive::expect_digest(
            &format!("image config {} in the image store", entry.record.id),
            &entry.record.id,
            &format!("sha256:{}", archive::hex(&sha2::Sha256::digest(&bytes))),
        )?;
        let config: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|error| ImageError::Json {
                what: format!("config {}", entry.record.id),
                error,
            })?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != entry.layers.len() {
            return Err(ImageError::DigestMismatch {
                what: format!("the layers of image {}", entry.record.id),
                expected: format!("{} diff_ids", entry.layers.len()),
                actual: format!("{} in its config", diff_ids.len()),
            });
        }
        Ok(diff_ids)
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.blob_dir().join(id_hex(digest)?))
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// An exclusive lock over index updates and unpacking (across processes).
    fn lock(&self) -> Result<File, ImageError> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ImageError::io(&path))?;
        file.lock().map_err(ImageError::io(&path))?;
        Ok(file)
    }

    fn read_index(&self) -> Result<Index, ImageError> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| ImageError::Json {
                what: path.display().to_string(),
                error,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(ImageError::io(&path)(e)),
        }
    }

    /// Replaces the index atomically (write, fsync, rename).
    fn write_index(&self, index: &Index) -> Result<(), ImageError> {
        let path = self.index_path();
        let tmp = self
            .root
            .join(format!("index.json.tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(index).expect("index serializes");
        let mut file = File::create(&tmp).map_err(ImageError::io(&tmp))?;
        file.write_all(&bytes).map_err(ImageError::io(&tmp))?;
        file.sync_all().map_err(ImageError::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(ImageError::io(&path))
    }

    /// Deletes the blobs and unpacked root of a removed image that nothing else uses.
    fn collect_garbage(&self, index: &Index, removed: &IndexEntry) -> Result<(), ImageError> {
        let used: BTreeSet<&String> = index
            .images
            .iter()
            .flat_map(|e| {
                e.layers
                    .iter()
                    .chain(e.manifest.iter())
                    .chain(std::iter::once(&e.record.id))
            })
            .collect();
        let mine = removed
            .layers
            .iter()
            .chain(removed.manifest.iter())
            .chain(std::iter::once(&removed.record.id));
        for digest in mine.filter(|d| !used.contains(d)) {
            remove_any(&self.blob_path(digest)?)?;
        }
        if !index
            .images
            .iter()
            .any(|e| e.record.id == removed.record.id)
        {
            remove_any(&self.root.join("roots").join(id_hex(&removed.record.id)?))?;
        }
        Ok(())
    }
}

/// Adds a loaded image to the index: its names move to it from any older image.
fn merge(index: &mut Index, image: LoadedImage) -> ImageRecord {
    for other in &mut index.images {
        other
            .record
            .names
            .retain(|n| !image.record.names.contains(n));
    }
    match index
        .images
        .iter_mut()
        .find(|e| e.record.id == image.record.id)
    {
        Some(existing) => {
            let rec = &mut existing.record;
            for n in &image.record.names {
                if !rec.names.contains(n) {
                    rec.names.push(n.clone());
                }
            }
            for d in &image.record.repo_digests {
                if !rec.repo_digests.contains(d) {
                    rec.repo_digests.push(d.clone());
                }
            }
            if existing.manifest.is_none() {
                existing.manifest = image.manifest;
            }
            existing.record.clone()
        }
        None => {
            let rec = image.record.clone();
            index.images.push(IndexEntry {
                record: image.record,
                layers: image.layers,
                manifest: image.manifest,
            });
            rec
        }
    }
}

/// The position of the image a reference names.
fn find(index: &Index, reference: &str) -> Result<Option<usize>, ImageError> {
    if let Ok(name) = normalize_reference(reference) {
        let hit = index
            .images
            .iter()
            .position(|e| e.record.names.contains(&name) || e.record.repo_digests.contains(&name));
        if hit.is_some() {
            return Ok(hit);
        }
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !is_hex || hex.len() < 12 {
        normalize_reference(reference)?;
        return Ok(None);
    }
    let hits: Vec<usize> = index
        .images
        .iter()
        .enumerate()
        .filter(|(_, e)| e.record.id["sha256:".len()..].starts_with(hex))
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [one] => Ok(Some(*one)),
        [] => Ok(None),
        _ => Err(ImageError::InvalidReference {
            reference: reference.into(),
            reason: "ambiguous image id prefix".into(),
        }),
    }
}

/// The 64 hex digits of `sha256:<hex>`.
pub(crate) fn id_hex(digest: &str) -> Result<&str, ImageError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| is_hex64(h))
        .ok_or_else(|| ImageError::InvalidReference {
            reference: digest.into(),
            reason: "expected sha256:<64 hex digits>".into(),
        })
}

/// Removes a file or directory tree if present.
pub(crate) fn remove_any(path: &Path) -> Result<(), ImageError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(ImageError::io(path))
}

/// A private directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Creates a fresh directory under `parent`.
pub(crate) fn tempdir_in(parent: &Path) -> Result<TempDir, ImageError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = parent.join(format!("load-{}-{n}", std::process::id()));
    remove_any(&dir)?;
    fs::create_dir(&dir).map_err(ImageError::io(&dir))?;
    Ok(TempDir(dir))
}
