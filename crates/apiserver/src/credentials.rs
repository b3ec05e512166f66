//! First-start material in the data directory: a CA, a serving certificate, the admin token, and
//! the kubeconfig kubectl reads.
//!
//! | file | content |
//! |---|---|
//! | `pki/ca.crt`, `pki/ca.key` | the cluster CA |
//! | `pki/apiserver.crt`, `pki/apiserver.key` | serving certificate for localhost, 127.0.0.1, ::1 and the listen IP |
//! | `pki/apiserver-kubelet-client.crt`, `.key` | client certificate for the node API (`CN=kube-apiserver-kubelet-client`, `O=system:masters`) |
//! | `admin-token` | the admin bearer token (mode 0600) |
//! | `kubeconfig` | cluster, user and context for kubectl (mode 0600) |
//! | `pki/node-tokens/<node>` | node `<node>`'s bearer token (mode 0600; see [`issue_node_kubeconfig`]) |
//! | `nodes/<node>/kubeconfig` | node `<node>`'s kubeconfig, user `system:node:<node>` (mode 0600) |
//!
//! `pki/` and `pki/node-tokens/` are mode 0700.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

use crate::auth::{ADMIN_USER, NODE_USER_PREFIX};

/// Failures while preparing credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A PEM file could not be parsed.
    #[error("{path}: invalid PEM: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// rustls rejected the certificate or key.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A node credential was asked for a name that is not a node name.
    #[error("invalid node name {0:?}: must be a lowercase RFC 1123 subdomain")]
    InvalidNodeName(String),
    /// The admin kubeconfig, which says where the server is, is missing or unreadable.
    #[error("{path}: no server address (start the API server with this data directory first)")]
    NoServer { path: PathBuf },
}

type Result<T> = std::result::Result<T, CredentialsError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CredentialsError + '_ {
    move |source| CredentialsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` atomically (temp file, fsync, rename) with mode 0600: a failed write
/// (the disk full) leaves the file as it was, whole, and removes the temp file.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let written = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(contents).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Creates `dir` (and its parents) and makes it mode 0700.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// The credentials of a data directory.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The admin bearer token.
    pub admin_token: String,
    /// Path of the serving certificate.
    pub cert_path: PathBuf,
    /// Path of the serving key.
    pub key_path: PathBuf,
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Credentials {
    /// Loads the credentials from `data_dir`, generating whatever is missing. `listen` is added
    /// to the serving certificate's names when it is a specific address.
    pub fn load_or_create(data_dir: &Path, listen: SocketAddr) -> Result<Self> {
        let pki = data_dir.join("pki");
        private_dir(&pki)?;
        let ca_crt = pki.join("ca.crt");
        let ca_key = pki.join("ca.key");
        let cert_path = pki.join("apiserver.crt");
        let key_path = pki.join("apiserver.key");
        let have_all = [&ca_crt, &ca_key, &cert_path, &key_path]
            .iter()
            .all(|p| p.exists());
        if !have_all {
            let ca_kp = KeyPair::generate()?;
            let ca = ca_params()?.self_signed(&ca_kp)?;

            let mut names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ];
            let ip = listen.ip();
            if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
                names.push(ip.to_string());
            }
            let mut params = CertificateParams::new(names)?;
            params
                .distinguished_name
                .push(DnType::CommonName, "armorlet-apiserver");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            let kp = KeyPair::generate()?;
            let cert = params.signed_by(&kp, &ca, &ca_kp)?;
            write_private(&ca_key, ca_kp.serialize_pem().as_bytes())?;
            write_private(&key_path, kp.serialize_pem().as_bytes())?;
            write_private(&cert_path, cert.pem().as_bytes())?;
            write_private(&ca_crt, ca.pem().as_bytes())?;
        }
        let token_path = data_dir.join("admin-token");
        let admin_token = match std::fs::read_to_string(&token_path) {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = random_token();
                write_private(&token_path, format!("{t}\n").as_bytes())?;
                t
            }
        };
        Ok(Self {
            ca_pem: std::fs::read_to_string(&ca_crt).map_err(io(&ca_crt))?,
            admin_token,
            cert_path,
            key_path,
        })
    }

    /// The rustls configuration serving HTTP/1.1 only (the exec websocket offers no ALPN anyway).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let pem_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CredentialsError::Pem { path, source }
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_path)
            .map_err(pem_err(&self.cert_path))?
            .collect::<std::result::Result<_, _>>()
            .map_err(pem_err(&self.cert_path))?;
        let key = PrivateKeyDer::from_pem_file(&self.key_path).map_err(pem_err(&self.key_path))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Writes `data_dir/kubeconfig` for a server reachable at `addr`; returns its path.
    pub fn write_kubeconfig(&self, data_dir: &Path, addr: SocketAddr) -> Result<PathBuf> {
        let host = match addr.ip() {
            ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            ip => ip,
        };
        let server = match host {
            IpAddr::V6(ip) => format!("https://[{ip}]:{}", addr.port()),
            IpAddr::V4(ip) => format!("https://{ip}:{}", addr.port()),
        };
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        let path = data_dir.join("kubeconfig");
        write_private(
            &path,
            kubeconfig_text(&server, &ca, ADMIN_USER, &self.admin_token).as_bytes(),
        )?;
        Ok(path)
    }
}

/// A kubeconfig with one cluster (`armorlet`), one token user and one context.
fn kubeconfig_text(server: &str, ca_base64: &str, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: armorlet\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_base64}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: armorlet\n  context:\n    cluster: armorlet\n    user: {user}\n    namespace: default\ncurrent-context: armorlet\npreferences: {{}}\n"
    )
}

/// The directory of the node tokens: one file per node, named after it.
pub fn node_tokens_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pki").join("node-tokens")
}

/// Whether `name` can be a Node's name (a lowercase RFC 1123 subdomain), and so a file name.
pub fn valid_node_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && label.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// The node tokens of `dir` as `(token, node)`; none when the directory does not exist.
pub fn read_node_tokens(dir: &Path) -> Result<Vec<(String, String)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let Some(node) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !valid_node_name(&node) {
            continue; // temporary files start with a dot
        }
        let path = entry.path();
        let token = std::fs::read_to_string(&path).map_err(io(&path))?;
        let token = token.trim();
        if !token.is_empty() {
            out.push((token.to_owned(), node));
        }
    }
    Ok(out)
}

/// Node `node`'s token: the one issued before, or a new one. Safe against concurrent issuers
/// (the file appears whole, through a hard link that fails when it already exists).
pub fn node_token(data_dir: &Path, node: &str) -> Result<String> {
    if !valid_node_name(node) {
        return Err(CredentialsError::InvalidNodeName(node.to_owned()));
    }
    let dir = node_tokens_dir(data_dir);
    private_dir(&data_dir.join("pki"))?;
    private_dir(&dir)?;
    let path = dir.join(node);
    let existing = |path: &Path| -> Result<Option<String>> {
        match std::fs::read_to_string(path) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_owned())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    };
    if let Some(t) = existing(&path)? {
        return Ok(t);
    }
    let tmp = dir.join(format!(".{node}.{}", uuid::Uuid::new_v4().simple()));
    let written = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(format!("{}\n", random_token()).as_bytes())
                    .and_then(|()| f.sync_all())
            })
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(&path)(e)),
    }
    existing(&path)?.ok_or_else(|| {
        io(&path)(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "empty node token",
        ))
    })
}

/// Issues node `node`'s credential: its token (kept across calls) and its kubeconfig,
/// `D/nodes/<node>/kubeconfig` (user `system:node:<node>`, group `system:nodes`), for the
/// server and CA of the admin kubeconfig `D/kubeconfig`. A running server accepts the token
/// at once. Returns the kubeconfig's path.
///
/// `armorlet up` issues one for each node it runs; `armorlet node credential NAME` issues
/// one for a node started elsewhere with `armorlet node --kubeconfig`.
pub fn issue_node_kubeconfig(data_dir: &Path, node: &str) -> Result<PathBuf> {
    let admin = data_dir.join("kubeconfig");
    let text = std::fs::read_to_string(&admin).map_err(|_| CredentialsError::NoServer {
        path: admin.clone(),
    })?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (Some(server), Some(ca)) = (field("server:"), field("certificate-authority-data:")) else {
        return Err(CredentialsError::NoServer { path: admin });
    };
    let token = node_token(data_dir, node)?;
    let dir = data_dir.join("nodes").join(node);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join("kubeconfig");
    let user = format!("{NODE_USER_PREFIX}{node}");
    write_private(
        &path,
        kubeconfig_text(&server, &ca, &user, &token).as_bytes(),
    )?;
    Ok(path)
}

/// The CA's parameters; re-signing them with the CA key gives an issuer equal to the stored
/// CA (same subject and key), which is all that signing a new leaf needs.
fn ca_params() -> Result<CertificateParams> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "armorlet-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca_params)
}

/// Accepts any node serving certificate: kube-apiserver without
/// `--kubelet-certificate-authority` does not verify the kubelet's (self-signed) certificate
/// either. The node, in turn, requires and verifies our client certificate.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client configuration for connecting to node APIs: presents
/// `pki/apiserver-kubelet-client.crt` (created on first use, signed by the cluster CA).
pub fn kubelet_client_config(data_dir: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let pki = data_dir.join("pki");
    let crt = pki.join("apiserver-kubelet-client.crt");
    let key = pki.join("apiserver-kubelet-client.key");
    if !(crt.exists() && key.exists()) {
        let ca_key_path = pki.join("ca.key");
        let ca_key_pem = std::fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
        let ca_kp = KeyPair::from_pem(&ca_key_pem)?;
        let ca = ca_params()?.self_signed(&ca_kp)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver-kubelet-client");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let kp = KeyPair::generate()?;
        let cert = params.signed_by(&kp, &ca, &ca_kp)?;
        write_private(&key, kp.serialize_pem().as_bytes())?;
        write_private(&crt, cert.pem().as_bytes())?;
    }
    let pem_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CredentialsError::Pem { path, source }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&crt)
        .map_err(pem_err(&crt))?
        .collect::<std::result::Result<_, _>>()
        .map_err(pem_err(&crt))?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(pem_err(&key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_auth_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:6443".parse().unwrap();
        let a = Credentials::load_or_create(dir.path(), addr).unwrap();
        let b = Credentials::load_or_create(dir.path(), addr).unwrap();
        assert_eq!(a.admin_token, b.admin_token);
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.admin_token.len(), 64);
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        a.server_config().unwrap();
        let kc = a.write_kubeconfig(dir.path(), addr).unwrap();
        let text = std::fs::read_to_string(kc).unwrap();
        assert!(text.contains("server: https://127.0.0.1:6443\n"));
        assert!(text.contains(&format!("token: {}\n", a.admin_token)));
    }

    #[test]
    fn constant_time_eq_compares_contents_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
