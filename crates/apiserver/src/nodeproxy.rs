//! `pods/{name}/log`, `pods/{name}/exec` and `pods/{name}/attach`: checks done by kube-apiserver
//! (`pkg/registry/core/pod/strategy.go` `LogLocation`, `ExecLocation`, `AttachLocation`) and by
//! the kubelet before it reads a log (`pkg/kubelet/kubelet_pods.go`
//! `validateContainerLogStatus`, answered here from the stored pod status so the message is the
//! same whether or not the node is reachable), then a proxy to the node API of the pod's node:
//! logs streamed chunk by chunk, exec/attach/portforward by forwarding the upgrade (WebSocket,
//! or SPDY for port-forward) and splicing the two connections after the `101`. kube-apiserver
//! unwraps port-forward's SPDY-in-WebSocket tunnel itself and speaks SPDY to the kubelet
//! (`pkg/registry/core/pod/rest/subresources.go` with `PortForwardWebsockets`); here the node
//! unwraps it, so the client sees the same bytes.

use std::net::IpAddr;
use std::sync::Arc;

use armorlet_store::Gvr;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::body::Body;
use crate::error::ApiError;
use crate::handlers::State;

type Result<T> = std::result::Result<T, ApiError>;

/// The kubelet's default port, used when a Node does not publish one (kube-apiserver
/// `--kubelet-port`).
const DEFAULT_KUBELET_PORT: u64 = 10250;

/// Which subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// `log`
    Log,
    /// `exec`
    Exec,
    /// `attach`
    Attach,
    /// `portforward`
    PortForward,
}

impl Sub {
    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Sub> {
        match s {
            "log" => Some(Sub::Log),
            "exec" => Some(Sub::Exec),
            "attach" => Some(Sub::Attach),
            "portforward" => Some(Sub::PortForward),
            _ => None,
        }
    }

    fn node_prefix(self) -> &'static str {
        match self {
            Sub::Log => "containerLogs",
            Sub::Exec => "exec",
            Sub::Attach => "attach",
            Sub::PortForward => "portForward",
        }
    }
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request is for (`strategy.go`: the only one, or the named one).
fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String> {
    let containers = names(pod["spec"].get("containers"));
    let init = names(pod["spec"].get("initContainers"));
    let ephemeral = names(pod["spec"].get("ephemeralContainers"));
    match asked.filter(|c| !c.is_empty()) {
        Some(c)
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c) =>
        {
            Ok(c.to_string())
        }
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None if containers.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        None => {
            let mut m = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                m.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(m))
        }
    }
}

/// The kubelet's `validateContainerLogStatus`, over the stored status.
fn check_log_status(pod: &Value, name: &str, container: &str, previous: bool) -> Result<()> {
    let statuses = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ];
    let status = statuses
        .iter()
        .filter_map(|k| pod["status"].get(*k).and_then(Value::as_array))
        .flatten()
        .find(|s| s["name"].as_str() == Some(container));
    let bad = |m: String| Err(ApiError::bad_request(m));
    let Some(s) = status else {
        return bad(format!(
            "container {container:?} in pod {name:?} is not available"
        ));
    };
    let last_id = s["lastState"]["terminated"]["containerID"]
        .as_str()
        .unwrap_or("");
    let has_last = s["lastState"].get("terminated").is_some();
    let state = &s["state"];
    if previous {
        if last_id.is_empty() {
            return bad(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            ));
        }
        return Ok(());
    }
    if state.get("running").is_some() {
        return Ok(());
    }
    if let Some(t) = state.get("terminated") {
        if t["containerID"].as_str().unwrap_or("").is_empty() && last_id.is_empty() {
            return bad(format!(
                "container {container:?} in pod {name:?} is terminated"
            ));
        }
        return Ok(());
    }
    if has_last {
        if last_id.is_empty() {
            return bad(format!(
                "container {container:?} in pod {name:?} is terminated"
            ));
        }
        return Ok(());
    }
    if let Some(w) = state.get("waiting") {
        let why = match w["reason"].as_str().unwrap_or("") {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            r => r.to_string(),
        };
        return bad(format!(
            "container {container:?} in pod {name:?} is waiting to start: {why}"
        ));
    }
    bad(format!(
        "container {container:?} in pod {name:?} is waiting to start - no logs yet"
    ))
}

/// `host:port` of a node's API (`pkg/kubelet/client` `NodeConnectionInfoGetter`: the preferred
/// address type order is InternalIP then Hostname here).
fn node_endpoint(node: &Value) -> Option<(String, u16)> {
    let addrs = node["status"]["addresses"].as_array()?;
    let find = |ty: &str| {
        addrs
            .iter()
            .find(|a| a["type"].as_str() == Some(ty))
            .and_then(|a| a["address"].as_str())
            .filter(|a| !a.is_empty())
    };
    let host = find("InternalIP").or_else(|| find("Hostname"))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Some((host.to_string(), u16::try_from(port).ok()?))
}

/// What to proxy to: the node address and the node-API path and query.
struct Upstream {
    host: String,
    port: u16,
    path_and_query: String,
}

/// Looks up the pod and its node and validates the request; `None` means "empty log" (an
/// unscheduled pod's log request answers empty, as `LogLocation` returns no location).
fn resolve(
    state: &State,
    ns: &str,
    name: &str,
    sub: Sub,
    query: Option<&str>,
) -> Result<Option<Upstream>> {
    let pod = state.store.get(&Gvr::new("", "v1", "pods"), ns, name)?;
    let q = crate::http::Query::parse(query);
    // `PortForwardLocation` names no container.
    let container = match sub {
        Sub::PortForward => String::new(),
        _ => pick_container(&pod, name, q.get("container"))?,
    };
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        return match sub {
            Sub::Log => Ok(None),
            _ => Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            ))),
        };
    }
    if sub == Sub::Log {
        check_log_status(&pod, name, &container, q.flag("previous"))?;
    }
    let node = state
        .store
        .get(&Gvr::new("", "v1", "nodes"), "", node_name)?;
    let (host, port) = node_endpoint(&node).ok_or_else(|| {
        ApiError::internal(format!(
            "no preferred addresses found; known addresses: [] for node {node_name}"
        ))
    })?;
    let mut path_and_query = match sub {
        Sub::PortForward => format!("/{}/{ns}/{name}", sub.node_prefix()),
        _ => format!("/{}/{ns}/{name}/{container}", sub.node_prefix()),
    };
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    Ok(Some(Upstream {
        host,
        port,
        path_and_query,
    }))
}

/// Connects to a node API and performs the HTTP/1.1 handshake.
async fn connect(
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    up: &Upstream,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!(
            "error dialing backend: dial tcp {}:{}: {e}",
            up.host, up.port
        ))
    };
    let tcp = TcpStream::connect((up.host.as_str(), up.port))
        .await
        .map_err(|e| unreachable(&e))?;
    let server_name = match up.host.parse::<IpAddr>() {
        Ok(ip) => rustls_pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => {
            rustls_pki_types::ServerName::try_from(up.host.clone()).map_err(|e| unreachable(&e))?
        }
    };
    let stream = TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| unreachable(&e))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "node API connection ended with an error");
        }
    });
    Ok(sender)
}

/// Headers an upgrade request carries to the node (`X-Stream-Protocol-Version`: SPDY's).
const FORWARDED: [&str; 6] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// An error answer of the node as an API error: a Status is passed on; plain text becomes a
/// BadRequest with that text (as kube-apiserver's `LocationStreamer` does).
async fn node_error(resp: Response<hyper::body::Incoming>) -> ApiError {
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        if v["kind"] == "Status" {
            let mut e = ApiError::bad_request(v["message"].as_str().unwrap_or("").to_string());
            e.code = v["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(code);
            e.reason = match v["reason"].as_str() {
                Some("NotFound") => "NotFound",
                Some("InternalError") => "InternalError",
                _ => "BadRequest",
            };
            return e;
        }
    }
    ApiError::bad_request(String::from_utf8_lossy(&body).trim().to_string())
}

/// Serves one `pods/{name}/log|exec|attach` request. An exec or attach stream takes the
/// request's audit event (`record`) and writes it when the stream ends.
pub async fn handle(
    state: Arc<State>,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    req: Request<hyper::body::Incoming>,
    ns: String,
    name: String,
    sub: Sub,
    record: &mut Option<crate::audit::Record>,
) -> Result<Response<Body>> {
    let query = req.uri().query().map(String::from);
    let st = state.clone();
    let (n2, q2) = (name.clone(), query.clone());
    let up = state
        .blocking(move || resolve(&st, &ns, &n2, sub, q2.as_deref()))
        .await??;
    let Some(up) = up else {
        return Ok(crate::http::response(200, "text/plain", Bytes::new()));
    };
    let mut sender = connect(tls, &up).await?;
    let mut fwd = Request::builder()
        .method(req.method())
        .uri(&up.path_and_query);
    fwd = fwd.header(hyper::header::HOST, format!("{}:{}", up.host, up.port));
    if sub != Sub::Log {
        for h in FORWARDED.iter() {
            for v in req.headers().get_all(*h) {
                fwd = fwd.header(*h, v);
            }
        }
    }
    let fwd = fwd.body(Empty::new()).map_err(ApiError::internal)?;
    let resp = sender
        .send_request(fwd)
        .await
        .map_err(|e| ApiError::internal(format!("error talking to the node: {e}")))?;
    match sub {
        Sub::Log if resp.status() == StatusCode::OK => Ok(stream_log(resp)),
        Sub::Exec | Sub::Attach | Sub::PortForward
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS =>
        {
            Ok(splice(req, resp, record.take()))
        }
        _ => Err(node_error(resp).await),
    }
}

/// Streams a node log response, one chunk per node write.
fn stream_log(resp: Response<hyper::body::Incoming>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let mut body = resp.into_body();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                if tx.send(data).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut out = Response::new(Body::Stream(rx));
    out.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    out
}

/// Answers the client's upgrade with the node's `101` and splices the two upgraded connections.
fn splice(
    req: Request<hyper::body::Incoming>,
    mut resp: Response<hyper::body::Incoming>,
    record: Option<crate::audit::Record>,
) -> Response<Body> {
    let mut out = Response::new(Body::Full(None));
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in resp.headers() {
        out.headers_mut().append(k, v.clone());
    }
    let upstream = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (client, node) = match tokio::join!(hyper::upgrade::on(req), upstream) {
            (Ok(c), Ok(n)) => (c, n),
            (c, n) => {
                tracing::warn!(client = c.is_ok(), node = n.is_ok(), "exec upgrade failed");
                if let Some(r) = record {
                    r.finish(101, None);
                }
                return;
            }
        };
        let (mut client, mut node) = (TokioIo::new(client), TokioIo::new(node));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut node).await {
            tracing::debug!(error = %e, "exec stream ended with an error");
        }
        if let Some(r) = record {
            r.finish(101, None);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: Value) -> Value {
        json!({"spec": {"containers": [{"name": "c"}]}, "status": {"containerStatuses": [status]}})
    }

    #[test]
    fn log_status_messages_match_the_kubelet() {
        let waiting =
            pod(json!({"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}));
        assert_eq!(
            check_log_status(&waiting, "web", "c", false)
                .unwrap_err()
                .message,
            "container \"c\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            check_log_status(&waiting, "web", "c", true)
                .unwrap_err()
                .message,
            "previous terminated container \"c\" in pod \"web\" not found"
        );
        let running = pod(json!({"name": "c", "state": {"running": {}}}));
        assert!(check_log_status(&running, "web", "c", false).is_ok());
    }

    #[test]
    fn container_choice_and_endpoint() {
        let p = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            pick_container(&p, "web", None).unwrap_err().message,
            "a container name must be specified for pod web, choose one of: [a b]"
        );
        assert_eq!(
            pick_container(&p, "web", Some("x")).unwrap_err().message,
            "container x is not valid for pod web"
        );
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "10.0.0.1"}],
                          "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}}}});
        assert_eq!(node_endpoint(&node), Some(("10.0.0.1".into(), 10255)));
    }
}
