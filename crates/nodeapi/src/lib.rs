//! `armorlet-nodeapi`: the node's kubelet-like HTTPS API (port 10250 by default).
//!
//! It owns the node side of `kubectl logs`, `kubectl exec` and `kubectl attach`: the API server
//! proxies `pods/{name}/log|exec|attach` here (see `docs/node-design.md`). The routes follow the
//! kubelet's server (kubernetes/kubernetes `pkg/kubelet/server/server.go`):
//!
//! - `GET /healthz`
//! - `GET /containerLogs/{ns}/{pod}/{container}?follow&previous&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes`
//!   ([`logs`], reading CRI log files with [`crilog`])
//! - `GET|POST /exec/{ns}/{pod}/{container}?command=..&stdin&stdout&stderr&tty` and
//!   `/attach/{ns}/{pod}/{container}?stdin&stdout&stderr&tty`: WebSocket `v5.channel.k8s.io`
//!   ([`stream`]; the kubelet's `pkg/kubelet/cri/streaming`). SPDY is not served: kubectl 1.32
//!   tries the WebSocket first and only falls back to SPDY when the upgrade is refused.
//! - `GET|POST /portForward/{ns}/{pod}`: SPDY/3.1 `portforward.k8s.io`, tunnelled through a
//!   WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.32's first try) or plain
//!   ([`portforward`], [`spdy`]).
//!
//! Every client must present a certificate signed by the cluster CA ([`tls`]); the serving
//! certificate is self-signed and generated into `cert_dir` on first start, as the kubelet does
//! without `--tls-cert-file`. The node agent provides the pods through [`NodeBackend`].

pub mod crilog;
pub mod logs;
pub mod portforward;
pub mod spdy;
mod status;
pub mod stream;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use armorlet_runtime::{Attached, ExecProcess, ExecSpec};

/// The response body type of every route.
pub type Body = BoxBody<Bytes, Infallible>;

/// What the node agent provides to the API: where a container's log is, and how to run a
/// process in it. Implementations are synchronous; the server calls them on blocking threads.
pub trait NodeBackend: Send + Sync + 'static {
    /// The log file of a container (of its previous instance with `previous`).
    fn log_target(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogTarget, BackendError>;
    /// Starts `spec` in the container, with the container's confinement.
    fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        spec: ExecSpec,
    ) -> Result<ExecProcess, BackendError>;
    /// Attaches to the container's main process (its stdin with `stdin`, when it has one).
    fn attach(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        stdin: bool,
    ) -> Result<Attached, BackendError>;
    /// The pod's network namespace, for port-forward.
    fn port_forward(&self, namespace: &str, pod: &str) -> Result<PortForwardTarget, BackendError>;
}

/// Connects to ports inside a pod's network namespace.
pub struct PortForwardTarget {
    /// The sandbox id named in errors (the kubelet names the CRI sandbox).
    pub sandbox_id: String,
    /// Connects to `localhost:PORT` in the pod's network namespace; the runtime's error text.
    #[allow(clippy::type_complexity)]
    pub dial: Box<dyn Fn(u16) -> Result<std::net::TcpStream, String> + Send + Sync>,
}

impl std::fmt::Debug for PortForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForwardTarget")
            .field("sandbox_id", &self.sandbox_id)
            .finish_non_exhaustive()
    }
}

/// A container's CRI log file and whether the container still writes to it.
#[derive(Clone)]
pub struct LogTarget {
    /// The CRI-format log file.
    pub path: PathBuf,
    /// The runtime's container id.
    pub container_id: String,
    /// Whether the container is still running (a follow ends once it is not and the file is drained).
    pub running: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for LogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogTarget")
            .field("path", &self.path)
            .field("container_id", &self.container_id)
            .finish_non_exhaustive()
    }
}

/// A backend failure; it becomes a Kubernetes `Status` with the matching code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The pod or container does not exist (404 NotFound).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be served as asked (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// Anything else (500 InternalError).
    #[error("{0}")]
    Internal(String),
}

/// Settings of the node API server.
#[derive(Debug, Clone)]
pub struct NodeApiConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the self-signed serving certificate (`kubelet.crt`, `kubelet.key`).
    pub cert_dir: PathBuf,
    /// The cluster CA (PEM), which must have signed every client's certificate.
    pub client_ca_pem: Vec<u8>,
}

/// Failures starting the node API server.
#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    /// Certificates could not be prepared or were rejected.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Binding failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Serves the node API until `shutdown` completes.
pub async fn serve(
    cfg: NodeApiConfig,
    backend: Arc<dyn NodeBackend>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeApiError> {
    let listener =
        std::net::TcpListener::bind(cfg.listen).map_err(|source| NodeApiError::Listen {
            addr: cfg.listen,
            source,
        })?;
    serve_on(listener, cfg, backend, shutdown).await
}

/// [`serve`] on a socket bound by the caller (e.g. inside a node's network namespace).
pub async fn serve_on(
    listener: std::net::TcpListener,
    cfg: NodeApiConfig,
    backend: Arc<dyn NodeBackend>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeApiError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&cfg)?);
    let listen_err = |source| NodeApiError::Listen {
        addr: cfg.listen,
        source,
    };
    listener.set_nonblocking(true).map_err(listen_err)?;
    let listener = TcpListener::from_std(listener).map_err(listen_err)?;
    tracing::info!(addr = %cfg.listen, "node API listening");
    tokio::pin!(shutdown);
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let backend = backend.clone();
        conns.spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let svc = service_fn(move |req| {
                let backend = backend.clone();
                async move { Ok::<_, Infallible>(route(backend, req).await) }
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "node API connection ended with an error");
            }
        });
    }
    conns.abort_all();
    Ok(())
}

/// `{ns}/{pod}/{container}` after a route prefix.
fn pod_container(rest: &str) -> Option<(String, String, String)> {
    let mut parts = rest.split('/');
    let (ns, pod, container) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || ns.is_empty() || pod.is_empty() || container.is_empty() {
        return None;
    }
    Some((ns.to_string(), pod.to_string(), container.to_string()))
}

/// Dispatches one request.
async fn route(
    backend: Arc<dyn NodeBackend>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path == "/healthz" && method == Method::GET {
        return text(StatusCode::OK, "ok");
    }
    if let Some(rest) = path.strip_prefix("/portForward/") {
        let mut parts = rest.split('/');
        return match (parts.next(), parts.next(), parts.next(), &method) {
            (Some(ns), Some(pod), None, &Method::GET | &Method::POST)
                if !ns.is_empty() && !pod.is_empty() =>
            {
                portforward::handle(backend, ns.to_string(), pod.to_string(), req).await
            }
            (Some(_), Some(_), None, _) => status::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ),
            _ => status::error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            ),
        };
    }
    let target = path
        .strip_prefix("/containerLogs/")
        .map(|r| ("logs", r))
        .or_else(|| path.strip_prefix("/exec/").map(|r| ("exec", r)))
        .or_else(|| path.strip_prefix("/attach/").map(|r| ("attach", r)));
    let Some((kind, rest)) = target else {
        return status::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let Some((ns, pod, container)) = pod_container(rest) else {
        return status::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    match (kind, &method) {
        ("logs", &Method::GET) => {
            logs::handle(backend, &ns, &pod, &container, req.uri().query()).await
        }
        ("exec" | "attach", &Method::GET | &Method::POST) => {
            let kind = if kind == "exec" {
                stream::Kind::Exec
            } else {
                stream::Kind::Attach
            };
            stream::handle(backend, kind, ns, pod, container, req).await
        }
        _ => status::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
    }
}

/// A plain-text response.
fn text(code: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Decoded query parameters, in order (repeated keys kept).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (form encoding, as Go's url.ParseQuery).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a boolean query parameter is set (`1`, `true`, or present without a value).
pub fn query_bool(pairs: &[(String, String)], key: &str) -> bool {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .any(|(_, v)| v.is_empty() || v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The first value of a query parameter.
pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_keeps_repeats_and_escapes() {
        let q = query_pairs(Some(
            "command=sh&command=-c&command=echo+a%20b&stdin=true&tty",
        ));
        let cmds: Vec<_> = q
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cmds, ["sh", "-c", "echo a b"]);
        assert!(query_bool(&q, "stdin"));
        assert!(query_bool(&q, "tty"));
        assert!(!query_bool(&q, "stdout"));
        assert_eq!(percent_decode("%2Fproc%2"), "/proc%2");
    }

    #[test]
    fn pod_container_paths() {
        assert_eq!(
            pod_container("default/web/c"),
            Some(("default".into(), "web".into(), "c".into()))
        );
        assert_eq!(pod_container("default/web"), None);
        assert_eq!(pod_container("default/web/c/x"), None);
    }
}
