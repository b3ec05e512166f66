//! `/portForward/{ns}/{pod}`: the kubelet's port-forward (`pkg/kubelet/cri/streaming/portforward`
//! `httpstream.go`) over SPDY/3.1 with the `portforward.k8s.io` protocol ([`crate::spdy`]).
//!
//! kubectl 1.32 first opens a WebSocket with the subprotocol `SPDY/3.1+portforward.k8s.io` and
//! tunnels SPDY through its binary messages (client-go `tools/portforward/tunneling_connection.go`);
//! kube-apiserver takes the tunnel apart and speaks plain SPDY to the kubelet. Here the API server
//! forwards the upgrade unchanged and the node serves both forms: the tunnel, and plain SPDY
//! (`Upgrade: SPDY/3.1`, kubectl's fallback). The client creates an error stream and a data
//! stream per connection (headers `streamtype`, `port`, `requestid`); the node dials
//! `localhost:PORT` inside the pod's network namespace and splices, and a failure is written on
//! the error stream as the kubelet words it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::spdy::{self, Frame, Outbox, FLAG_FIN};
use crate::{status, Body, NodeBackend, PortForwardTarget};

/// The port-forward protocol name (`X-Stream-Protocol-Version`).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of SPDY tunnelled through a WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// How the client asked to upgrade.
enum Upgrade {
    /// SPDY in WebSocket binary messages; the `Sec-WebSocket-Accept` value.
    Tunnel(String),
    /// Plain SPDY.
    Spdy,
}

fn upgrade_kind<B>(req: &Request<B>) -> Result<Upgrade, String> {
    let h = req.headers();
    let upgrade = h
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let values = |name: &str| -> Vec<String> {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .collect()
    };
    if upgrade == "websocket" {
        if !values(SEC_WEBSOCKET_PROTOCOL.as_str())
            .iter()
            .any(|p| p == TUNNEL_PROTOCOL)
        {
            return Err(format!(
                "the WebSocket subprotocol {TUNNEL_PROTOCOL} is required"
            ));
        }
        let key = h
            .get(SEC_WEBSOCKET_KEY)
            .ok_or_else(|| "missing Sec-WebSocket-Key".to_string())?;
        return Ok(Upgrade::Tunnel(derive_accept_key(key.as_bytes())));
    }
    if upgrade == "spdy/3.1" {
        if !values("x-stream-protocol-version")
            .iter()
            .any(|p| p == PROTOCOL)
        {
            // httpstream.Handshake: no protocol in common.
            return Err(format!(
                "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports [\"{PROTOCOL}\"]",
                values("x-stream-protocol-version")
            ));
        }
        return Ok(Upgrade::Spdy);
    }
    Err("unable to upgrade: missing upgrade headers in request".into())
}

/// Serves one port-forward request.
pub(crate) async fn handle(
    backend: Arc<dyn NodeBackend>,
    ns: String,
    pod: String,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let kind = match upgrade_kind(&req) {
        Ok(k) => k,
        Err(m) => return status::error(StatusCode::BAD_REQUEST, "BadRequest", &m),
    };
    let target = match status::blocking(move || backend.port_forward(&ns, &pod)).await {
        Ok(t) => Arc::new(t),
        Err(resp) => return resp,
    };
    let (resp, tunnel) = match kind {
        Upgrade::Tunnel(accept) => (status::websocket_switch(TUNNEL_PROTOCOL, &accept), true),
        Upgrade::Spdy => {
            let mut resp = Response::new(Empty::new().boxed());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
            h.insert(
                "X-Stream-Protocol-Version",
                HeaderValue::from_static(PROTOCOL),
            );
            (resp, false)
        }
    };
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::warn!(error = %e, "port-forward upgrade failed");
                return;
            }
        };
        if tunnel {
            let ws = WebSocketStream::from_raw_socket(upgraded, Role::Server, None).await;
            let (near, far) = tokio::io::duplex(256 * 1024);
            tokio::spawn(untunnel(ws, far));
            session(near, target).await;
        } else {
            session(upgraded, target).await;
        }
    });
    resp
}

/// Carries the bytes of binary WebSocket messages to `io` and back (client-go's
/// `TunnelingConnection`); answers pings.
async fn untunnel<S>(mut ws: WebSocketStream<S>, io: tokio::io::DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    let _ = ws.flush().await;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = ws.close(None).await;
                    break;
                }
                Ok(n) => {
                    if ws.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = wr.shutdown().await;
}

/// The streams of one forwarded connection as they arrive.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<(u32, mpsc::Receiver<Option<Vec<u8>>>)>,
    port: u16,
}

/// Runs the SPDY session until the client goes away.
async fn session<S>(io: S, target: Arc<PortForwardTarget>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(io);
    let out = spdy::spawn_writer(wr);
    let mut headers_in = spdy::HeaderReader::default();
    let mut headers_out = spdy::HeaderWriter::default();
    let mut inbound: HashMap<u32, mpsc::Sender<Option<Vec<u8>>>> = HashMap::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    loop {
        while forwards.try_join_next().is_some() {}
        let frame = match spdy::read_frame(&mut rd).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "port-forward session ended");
                break;
            }
        };
        match frame {
            Frame::Control(spdy::kind::SYN_STREAM, _, payload) => {
                let (id, h) = match spdy::syn_stream_headers(&mut headers_in, &payload) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(error = %e, "bad SYN_STREAM");
                        break;
                    }
                };
                // httpStreamReceived: the stream type, port and request id must be valid.
                let port = h.get("port").and_then(|p| p.parse::<u16>().ok());
                let (Some(kind), Some(port), Some(request)) =
                    (h.get("streamtype"), port, h.get("requestid"))
                else {
                    let _ = out.send(rst(id)).await;
                    continue;
                };
                let mut reply = id.to_be_bytes().to_vec();
                reply.extend(headers_out.write(&[]));
                if out
                    .send(spdy::control(spdy::kind::SYN_REPLY, 0, &reply))
                    .await
                    .is_err()
                {
                    break;
                }
                let pair = pairs.entry(request.clone()).or_default();
                pair.port = port;
                match kind.as_str() {
                    "error" => pair.error = Some(id),
                    "data" => {
                        let (tx, rx) = mpsc::channel(64);
                        inbound.insert(id, tx);
                        pair.data = Some((id, rx));
                    }
                    _ => {
                        let _ = out.send(rst(id)).await;
                        continue;
                    }
                }
                if pair.error.is_some() && pair.data.is_some() {
                    let pair = pairs.remove(request).unwrap_or_default();
                    if let (Some(error), Some((data, rx))) = (pair.error, pair.data) {
                        forwards.spawn(forward(
                            out.clone(),
                            target.clone(),
                            pair.port,
                            error,
                            data,
                            rx,
                        ));
                    }
                }
            }
            Frame::Control(spdy::kind::PING, _, payload) => {
                if out
                    .send(spdy::control(spdy::kind::PING, 0, &payload))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Frame::Control(spdy::kind::RST_STREAM, _, payload) => {
                if let Some(id) = spdy::stream_id(&payload) {
                    inbound.remove(&id);
                }
            }
            Frame::Control(spdy::kind::GOAWAY, _, _) => break,
            Frame::Control(..) => {}
            Frame::Data(id, flags, payload) => {
                if let Some(tx) = inbound.get(&id) {
                    if !payload.is_empty() && tx.send(Some(payload)).await.is_err() {
                        inbound.remove(&id);
                    }
                    if flags & FLAG_FIN != 0 {
                        if let Some(tx) = inbound.remove(&id) {
                            let _ = tx.send(None).await;
                        }
                    }
                }
            }
        }
    }
    forwards.abort_all();
}

/// RST_STREAM with status PROTOCOL_ERROR.
fn rst(id: u32) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&1u32.to_be_bytes());
    spdy::control(spdy::kind::RST_STREAM, 0, &p)
}

/// How long the other direction gets once one has ended (containerd's port-forward).
const OTHER_DIRECTION: Duration = Duration::from_secs(1);

/// One forwarded connection: dial, splice, then close both streams (the kubelet's
/// `httpStreamHandler.portForward`).
async fn forward(
    out: Outbox,
    target: Arc<PortForwardTarget>,
    port: u16,
    error: u32,
    data: u32,
    mut rx: mpsc::Receiver<Option<Vec<u8>>>,
) {
    let t = target.clone();
    let dialed = tokio::task::spawn_blocking(move || (t.dial)(port))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match dialed.and_then(|s| {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        tokio::net::TcpStream::from_std(s).map_err(|e| e.to_string())
    }) {
        Err(msg) => {
            let msg = format!(
                "error forwarding port {port} to pod {}, uid : {msg}",
                target.sandbox_id
            );
            tracing::info!(%msg, "port-forward failed");
            let _ = out.send(spdy::data(error, 0, msg.as_bytes())).await;
        }
        Ok(conn) => {
            let (mut from_pod, mut to_pod) = conn.into_split();
            let out2 = out.clone();
            let mut up = tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match from_pod.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out2.send(spdy::data(data, 0, &buf[..n])).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let mut down = tokio::spawn(async move {
                while let Some(Some(chunk)) = rx.recv().await {
                    if to_pod.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                let _ = to_pod.shutdown().await;
            });
            tokio::select! {
                _ = &mut up => { let _ = tokio::time::timeout(OTHER_DIRECTION, &mut down).await; }
                _ = &mut down => { let _ = tokio::time::timeout(OTHER_DIRECTION, &mut up).await; }
            }
            up.abort();
            down.abort();
        }
    }
    let _ = out.send(spdy::data(error, FLAG_FIN, &[])).await;
    let _ = out.send(spdy::data(data, FLAG_FIN, &[])).await;
}
