//! The node API's TLS: a self-signed serving certificate created on first start in `cert_dir`
//! (`kubelet.crt`, `kubelet.key`, as the kubelet writes into its `pki` directory), and a
//! REQUIRED client certificate verified against the cluster CA.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

use crate::NodeApiConfig;

/// Certificate failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Generating the serving certificate failed.
    #[error("generating the serving certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A PEM input could not be parsed.
    #[error("{what}: invalid PEM: {source}")]
    Pem {
        /// Which input.
        what: String,
        /// The cause.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The client CA has no certificate.
    #[error("client CA: no certificate in the PEM data")]
    EmptyCa,
    /// rustls rejected the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Paths of the serving certificate and key in `cert_dir`, created when missing.
pub fn ensure_serving_cert(cert_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(cert_dir).map_err(io(cert_dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // The serving key's directory is private, as the API server's `pki/`.
        std::fs::set_permissions(cert_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(cert_dir))?;
    }
    let crt = cert_dir.join("kubelet.crt");
    let key = cert_dir.join("kubelet.key");
    if crt.exists() && key.exists() {
        return Ok((crt, key));
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let mut names = vec![host, "localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.dedup();
    let certified = rcgen::generate_simple_self_signed(names)?;
    write_private(&key, certified.key_pair.serialize_pem().as_bytes()).map_err(io(&key))?;
    write_private(&crt, certified.cert.pem().as_bytes()).map_err(io(&crt))?;
    Ok((crt, key))
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The rustls server configuration: HTTP/1.1, client certificate required and verified.
pub fn server_config(cfg: &NodeApiConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (crt, key) = ensure_serving_cert(&cfg.cert_dir)?;
    let pem = |what: &Path| {
        let what = what.display().to_string();
        move |source| TlsError::Pem { what, source }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&crt)
        .map_err(pem(&crt))?
        .collect::<Result<_, _>>()
        .map_err(pem(&crt))?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(pem(&key))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&cfg.client_ca_pem) {
        let ca = ca.map_err(|source| TlsError::Pem {
            what: "client CA".into(),
            source,
        })?;
        roots.add(ca)?;
    }
    if roots.is_empty() {
        return Err(TlsError::EmptyCa);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
