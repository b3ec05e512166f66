//! Pulls from OCI registries (the distribution API) into the store.
//!
//! A pull fetches the manifest (OCI image manifest or index, Docker v2 schema 2 manifest or
//! manifest list), follows an index to the entry for this node's platform, and downloads the
//! config and layer blobs into a private OCI image layout under `D/images/tmp`. That layout
//! then enters the store through [`ImageStore::load_archive`], the one import path: every
//! blob's digest and size, and the config's `rootfs.diff_ids` against the layers, are checked
//! there before the index names the image, and a refused import leaves no blob behind. The
//! store therefore never holds a partially pulled image.
//!
//! Transport: HTTPS, trusting the system roots plus the CAs of [`RegistryOptions::ca_files`];
//! plain HTTP only for the registries listed in [`RegistryOptions::insecure`]
//! (`--insecure-registry HOST:PORT`, containerd's and podman's notion of an insecure
//! registry, without their fallback from HTTPS to HTTP: a listed registry is spoken to in
//! plain HTTP only).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::archive::{choose_platform, hex, is_index, OciIndex, OciManifest};
use crate::reference::normalize_reference;
use crate::store::{tempdir_in, ImageRecord};
use crate::{ImageError, ImageStore};

/// Manifests larger than this are refused (the distribution spec's registries cap them at 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// The manifest media types a pull accepts.
const ACCEPTED: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// How the node reaches registries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Registries (`HOST:PORT` as in the image reference) spoken to in plain HTTP.
    pub insecure: Vec<String>,
    /// PEM files of CAs trusted for registries besides the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Registries (as normalized references name them: `docker.io`) whose mirror is the local
    /// store: a pull resolves against the images loaded with `armorlet image load` and never
    /// leaves the machine, as a containerd node configured with a mirror for the registry
    /// (`hosts.toml`, the air-gapped cluster's set-up) that holds exactly those images.
    pub local_mirrors: Vec<String>,
}

/// The registry of a normalized reference (`docker.io/library/busybox:1.28` → `docker.io`).
fn registry_of(normalized: &str) -> &str {
    normalized.split('/').next().unwrap_or("")
}

/// A pull from a registry mirrored by the local store: the stored image, or the registry's
/// not-found error (what a mirror without the image answers).
fn pull_from_local_mirror(store: &ImageStore, normalized: &str) -> Result<Pulled, ImageError> {
    match store.resolve(normalized)? {
        Some(record) => Ok(Pulled {
            digest: record
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map_or_else(|| record.id.clone(), |(_, d)| d.to_string()),
            reference: normalized.to_string(),
            record,
        }),
        None => Err(ImageError::Pull {
            reference: normalized.to_string(),
            reason: format!(
                "failed to resolve reference \"{normalized}\": {normalized}: not found"
            ),
            not_found: true,
        }),
    }
}

/// A registry credential, as a `kubernetes.io/dockerconfigjson` secret holds one.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// HTTP basic (and the token flow's basic-authenticated token request).
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// A registry token sent as a bearer token (`registrytoken`).
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username:?}, <redacted>)"),
            Credential::Bearer(_) => write!(f, "Bearer(<redacted>)"),
        }
    }
}

/// What a pull brought.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image as stored.
    pub record: ImageRecord,
    /// The digest the reference resolved to (an index's for a multi-platform image).
    pub digest: String,
    /// The normalized reference pulled.
    pub reference: String,
}

/// Pulls `reference` into the store with the first credential the registry accepts
/// (anonymously when `credentials` is empty), as the kubelet tries each matching
/// credential in turn (pkg/kubelet/kuberuntime/kuberuntime_image.go `PullImage`): the error
/// of the last one, or all of them (`[e1, e2]`) when several failed.
pub async fn pull(
    store: &ImageStore,
    reference: &str,
    options: &RegistryOptions,
    credentials: &[Credential],
) -> Result<Pulled, ImageError> {
    let normalized = normalize_reference(reference)?;
    if options
        .local_mirrors
        .iter()
        .any(|m| m == registry_of(&normalized))
    {
        return pull_from_local_mirror(store, &normalized);
    }
    let auths: Vec<RegistryAuth> = if credentials.is_empty() {
        vec![RegistryAuth::Anonymous]
    } else {
        credentials
            .iter()
            .map(|c| match c {
                Credential::Basic { username, password } => {
                    RegistryAuth::Basic(username.clone(), password.clone())
                }
                Credential::Bearer(t) => RegistryAuth::Bearer(t.clone()),
            })
            .collect()
    };
    let mut errors = Vec::new();
    for auth in &auths {
        match pull_once(store, &normalized, options, auth).await {
            Ok(p) => return Ok(p),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        return Err(errors.pop().expect("one error"));
    }
    let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    Err(ImageError::Pull {
        reference: normalized,
        reason: format!("[{}]", all.join(", ")),
        not_found: errors.iter().all(|e| {
            matches!(
                e,
                ImageError::Pull {
                    not_found: true,
                    ..
                }
            )
        }),
    })
}

/// The client for one pull (the client keeps one credential per registry).
fn client(options: &RegistryOptions) -> Result<Client, ImageError> {
    // reqwest's rustls without a built-in provider: ring, as the rest of the workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut extra = Vec::new();
    for path in &options.ca_files {
        extra.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data: fs::read(path).map_err(ImageError::io(path))?,
        });
    }
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(options.insecure.clone()),
        extra_root_certificates: extra,
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        user_agent: concat!("armorlet/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    Client::try_from(config).map_err(|e| ImageError::Pull {
        reference: String::new(),
        reason: format!("building the registry client: {e}"),
        not_found: false,
    })
}

async fn pull_once(
    store: &ImageStore,
    normalized: &str,
    options: &RegistryOptions,
    auth: &RegistryAuth,
) -> Result<Pulled, ImageError> {
    let fail = |reason: String, not_found: bool| ImageError::Pull {
        reference: normalized.to_string(),
        reason,
        not_found,
    };
    let image: Reference = normalized
        .parse()
        .map_err(|e| ImageError::InvalidReference {
            reference: normalized.to_string(),
            reason: format!("{e}"),
        })?;
    let client = client(options)?;
    let resolve_err = |e: OciDistributionError| {
        let not_found = is_not_found(&e);
        let detail = if not_found {
            format!("{normalized}: not found")
        } else {
            describe(&e)
        };
        fail(
            format!("failed to resolve reference \"{normalized}\": {detail}"),
            not_found,
        )
    };
    let (top, top_digest) = client
        .pull_manifest_raw(&image, auth, ACCEPTED)
        .await
        .map_err(resolve_err)?;
    check_manifest(&top, &top_digest, image.digest()).map_err(|r| fail(r, false))?;
    let top_type = media_type(&top);

    let staging = tempdir_in(&store.root().join("tmp"))?;
    let blobs = staging.0.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(ImageError::io(&blobs))?;
    write_blob(&blobs, &top_digest, &top)?;

    let manifest_bytes = if is_index(&top_type) {
        let index: OciIndex = serde_json::from_slice(&top).map_err(|error| ImageError::Json {
            what: format!("index {top_digest}"),
            error,
        })?;
        let chosen = choose_platform(index.manifests).ok_or_else(|| {
            fail(
                format!(
                    "no match for platform in manifest {top_digest}: linux/{} not found",
                    crate::archive::host_arch()
                ),
                false,
            )
        })?;
        if is_index(&chosen.media_type) {
            return Err(fail(
                format!("nested index {} is not supported", chosen.digest),
                false,
            ));
        }
        let by_digest = Reference::with_digest(
            image.registry().to_string(),
            image.repository().to_string(),
            chosen.digest.clone(),
        );
        let (bytes, digest) = client
            .pull_manifest_raw(&by_digest, auth, ACCEPTED)
            .await
            .map_err(|e| {
                fail(
                    format!(
                        "failed to fetch manifest {}: {}",
                        chosen.digest,
                        describe(&e)
                    ),
                    false,
                )
            })?;
        check_manifest(&bytes, &digest, Some(&chosen.digest)).map_err(|r| fail(r, false))?;
        write_blob(&blobs, &digest, &bytes)?;
        bytes
    } else {
        top.clone()
    };
    let manifest: OciManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|error| ImageError::Json {
            what: "manifest".to_string(),
            error,
        })?;
    for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let hexd = crate::store::id_hex(&desc.digest)?;
        let out = blobs.join(hexd);
        if out.exists() {
            continue;
        }
        // A blob the store already holds is linked, not downloaded; the import re-hashes it.
        if let Some(have) = store.blob_if_present(&desc.digest) {
            if fs::hard_link(&have, &out).is_ok() {
                continue;
            }
        }
        let file = tokio::fs::File::create(&out)
            .await
            .map_err(ImageError::io(&out))?;
        let oci_desc = OciDescriptor {
            media_type: desc.media_type.clone(),
            digest: desc.digest.clone(),
            size: desc.size.unwrap_or_default() as i64,
            ..OciDescriptor::default()
        };
        client
            .pull_blob(&image, &oci_desc, file)
            .await
            .map_err(|e| {
                fail(
                    format!("failed to copy {}: {}", desc.digest, describe(&e)),
                    false,
                )
            })?;
    }
    // The name the layout gives the image: its tag, or `repo@digest` when pulled by digest.
    let layout_index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": top_type,
            "digest": top_digest,
            "size": top.len(),
            "annotations": {"io.containerd.image.name": normalized},
        }],
    });
    let index_path = staging.0.join("index.json");
    fs::write(&index_path, layout_index.to_string()).map_err(ImageError::io(&index_path))?;
    fs::write(
        staging.0.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(ImageError::io(&staging.0))?;

    let store2 = store.clone();
    let dir = staging.0.clone();
    let loaded = tokio::task::spawn_blocking(move || store2.load_archive(&dir))
        .await
        .map_err(|e| fail(format!("import task failed: {e}"), false))?
        .map_err(|e| fail(e.to_string(), false))?;
    drop(staging);
    let record = loaded
        .into_iter()
        .next()
        .ok_or_else(|| fail("the pulled layout held no image".into(), false))?;
    Ok(Pulled {
        record,
        digest: top_digest,
        reference: normalized.to_string(),
    })
}

/// Checks a manifest's size and that its content has the digest it was fetched by.
fn check_manifest(bytes: &[u8], digest: &str, expected: Option<&str>) -> Result<(), String> {
    if bytes.len() > MAX_MANIFEST {
        return Err(format!(
            "manifest {digest} is {} bytes, over the limit of {MAX_MANIFEST}",
            bytes.len()
        ));
    }
    let actual = format!("sha256:{}", hex(&Sha256::digest(bytes)));
    if actual != digest || expected.is_some_and(|e| e != actual) {
        return Err(format!(
            "manifest digest mismatch: expected {}, got {actual}",
            expected.unwrap_or(digest)
        ));
    }
    Ok(())
}

/// The manifest's `mediaType`; without one, an index when it lists manifests.
fn media_type(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    match v["mediaType"].as_str() {
        Some(t) => t.to_string(),
        None if v["manifests"].is_array() => "application/vnd.oci.image.index.v1+json".into(),
        None => "application/vnd.oci.image.manifest.v1+json".into(),
    }
}

fn write_blob(dir: &Path, digest: &str, bytes: &[u8]) -> Result<(), ImageError> {
    let path = dir.join(crate::store::id_hex(digest)?);
    fs::write(&path, bytes).map_err(ImageError::io(&path))
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|err| {
            matches!(
                err.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// An error's text with its sources (reqwest hides the connection error in them).
fn describe(e: &OciDistributionError) -> String {
    if let OciDistributionError::UnauthorizedError { url } = e {
        return format!("unexpected status from GET request to {url}: 401 Unauthorized");
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// The credentials of `kubernetes.io/dockerconfigjson` (or `.dockercfg`) documents that apply
/// to `image`, the most specific match first, as the kubelet's keyring orders them
/// (pkg/credentialprovider/keyring.go `Lookup`, `URLsMatchStr`): a key matches when its
/// host (with `*` globs per label) and port equal the image's registry and its path is a
/// prefix of the repository path; `https://index.docker.io/v1/` stands for `docker.io`.
/// Entries without usable credentials are skipped.
pub fn credentials_for(configs: &[Value], image: &str) -> Result<Vec<Credential>, ImageError> {
    let normalized = normalize_reference(image)?;
    let repo = normalized
        .split('@')
        .next()
        .map(|n| {
            let slash = n.rfind('/').map_or(0, |i| i + 1);
            n[slash..].rfind(':').map_or(n, |i| &n[..slash + i])
        })
        .unwrap_or_default()
        .to_string();
    let (host, path) = repo.split_once('/').unwrap_or((&repo, ""));
    let mut found: Vec<(usize, Credential)> = Vec::new();
    for config in configs {
        let auths = config.get("auths").unwrap_or(config);
        let Some(map) = auths.as_object() else {
            continue;
        };
        for (key, entry) in map {
            let (khost, kpath) = registry_key(key);
            if !host_matches(&khost, host) {
                continue;
            }
            if !(kpath.is_empty() || path == kpath || path.starts_with(&format!("{kpath}/"))) {
                continue;
            }
            if let Some(c) = credential_of(entry) {
                found.push((khost.len() + kpath.len(), c));
            }
        }
    }
    // Longest key first; stable, so documents keep their order among equals.
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut out: Vec<Credential> = Vec::new();
    for (_, c) in found {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Host (with port) and path of a docker config key.
fn registry_key(key: &str) -> (String, String) {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    let path = if host == "docker.io" && (path == "v1" || path == "v2") {
        ""
    } else {
        path
    };
    (host.to_string(), path.to_string())
}

/// `*.example.com` matches `a.example.com`; ports must be equal.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (ph, pp) = pattern.split_once(':').unwrap_or((pattern, ""));
    let (hh, hp) = host.split_once(':').unwrap_or((host, ""));
    if pp != hp {
        return false;
    }
    let pl: Vec<&str> = ph.split('.').collect();
    let hl: Vec<&str> = hh.split('.').collect();
    pl.len() == hl.len() && pl.iter().zip(&hl).all(|(p, h)| glob(p, h))
}

/// A label glob with `*` (path.Match on one label).
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, rest)) => {
            if !s.starts_with(pre) {
                return false;
            }
            let tail = &s[pre.len()..];
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

fn credential_of(entry: &Value) -> Option<Credential> {
    let s = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
    if !s("username").is_empty() || !s("password").is_empty() {
        return Some(Credential::Basic {
            username: s("username").into(),
            password: s("password").into(),
        });
    }
    if !s("auth").is_empty() {
        let decoded = base64_decode(s("auth"))?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some(Credential::Basic {
            username: u.into(),
            password: p.into(),
        });
    }
    if !s("registrytoken").is_empty() {
        return Some(Credential::Bearer(s("registrytoken").into()));
    }
    None
}

/// Standard base64 (padding optional).
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let table: HashMap<u8, u32> = (b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .chain(b'0'..=b'9')
        .chain([b'+', b'/'])
        .enumerate()
        .map(|(i, c)| (c, i as u32))
        .collect();
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim().trim_end_matches('=').bytes() {
        acc = (acc << 6) | table.get(&c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn keyring_matches_host_port_and_path_most_specific_first() {
        let cfg = json!({"auths": {
            "localhost:5000": {"username": "a", "password": "1"},
            "http://localhost:5000/team": {"auth": "Yjoy"},
            "localhost:5001": {"username": "c", "password": "3"},
            "*.example.com": {"username": "d", "password": "4"},
            "https://index.docker.io/v1/": {"username": "e", "password": "5"},
        }});
        let c = |image: &str| credentials_for(std::slice::from_ref(&cfg), image).unwrap();
        assert_eq!(
            c("localhost:5000/team/app:1"),
            vec![basic("b", "2"), basic("a", "1")]
        );
        assert_eq!(c("localhost:5000/teamx/app:1"), vec![basic("a", "1")]);
        assert_eq!(c("localhost/app"), vec![]);
        assert_eq!(c("r.example.com/app"), vec![basic("d", "4")]);
        assert_eq!(c("a.b.example.com/app"), vec![]);
        assert_eq!(c("busybox"), vec![basic("e", "5")]);
    }

    #[test]
    fn dockercfg_without_auths_and_tokens() {
        let cfg = json!({"reg.io": {"registrytoken": "t"}, "other.io": {"email": "x"}});
        assert_eq!(
            credentials_for(std::slice::from_ref(&cfg), "reg.io/a").unwrap(),
            vec![Credential::Bearer("t".into())]
        );
        assert_eq!(credentials_for(&[cfg], "other.io/a").unwrap(), vec![]);
    }

    #[test]
    fn base64_and_manifest_checks() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("!!").is_none());
        let body = b"{}";
        let d = format!("sha256:{}", hex(&Sha256::digest(body)));
        assert!(check_manifest(body, &d, Some(&d)).is_ok());
        let other = format!("sha256:{}", "0".repeat(64));
        assert!(check_manifest(body, &d, Some(&other))
            .unwrap_err()
            .contains("mismatch"));
        assert_eq!(
            media_type(br#"{"manifests":[]}"#),
            "application/vnd.oci.image.index.v1+json"
        );
    }
}
