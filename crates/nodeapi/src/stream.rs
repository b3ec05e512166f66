//! `exec` and `attach` over WebSocket `v5.channel.k8s.io` (see `shared/docs/kubectl-wire.md`
//! §11 and client-go `tools/remotecommand`): binary frames whose first byte is the channel —
//! 0 stdin, 1 stdout, 2 stderr, 3 the final `Status`, 4 terminal resize, 255 close a channel.
//! After the process ends the server writes the `Status` on channel 3 (the kubelet's
//! `NonZeroExitCode` shape for a failing command) and closes with code 1000. Pings are answered.
//! Failures before the upgrade are `Status` responses. SPDY is not served.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::header::{SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{query_bool, query_pairs, status, Attached, Body, ExecProcess, ExecSpec, NodeBackend};

/// The only subprotocol kubectl 1.32 offers over WebSocket.
pub const PROTOCOL_V5: &str = "v5.channel.k8s.io";

/// Channel numbers of the v5 protocol.
pub mod channel {
    /// Client → server: stdin.
    pub const STDIN: u8 = 0;
    /// Server → client: stdout.
    pub const STDOUT: u8 = 1;
    /// Server → client: stderr.
    pub const STDERR: u8 = 2;
    /// Server → client: the final Status.
    pub const ERROR: u8 = 3;
    /// Client → server: terminal size.
    pub const RESIZE: u8 = 4;
    /// Client → server: close the channel named by the next byte.
    pub const CLOSE: u8 = 255;
}

/// After the process exits with a terminal, how long to wait for the pty to drain (the slave
/// may stay open in a background process, so EOF may never come).
const TTY_DRAIN: Duration = Duration::from_millis(300);

/// Which stream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Run a new process.
    Exec,
    /// Attach to the main process.
    Attach,
}

/// What the client asked for.
#[derive(Debug, Clone)]
struct Options {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn parse(kind: Kind, query: Option<&str>) -> Result<Options, String> {
    let q = query_pairs(query);
    let command: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let tty = query_bool(&q, "tty");
    let opts = Options {
        command,
        stdin: query_bool(&q, "stdin"),
        stdout: query_bool(&q, "stdout"),
        // With a terminal stderr is merged into stdout (remotecommand/constants.go).
        stderr: query_bool(&q, "stderr") && !tty,
        tty,
    };
    // Messages of pkg/kubelet/cri/streaming/remotecommand/httpstream.go.
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    if kind == Kind::Exec && opts.command.is_empty() {
        return Err("you must specify at least one command for the container".into());
    }
    Ok(opts)
}

/// The `Sec-WebSocket-Accept` value, or why the request is not a v5 WebSocket upgrade.
fn websocket_accept<B>(req: &Request<B>) -> Result<String, String> {
    let h = req.headers();
    let is_ws = h
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Err(format!(
            "only WebSocket upgrades with the {PROTOCOL_V5} subprotocol are supported (SPDY is not)"
        ));
    }
    let offers_v5 = h
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL_V5);
    if !offers_v5 {
        return Err(format!(
            "the WebSocket subprotocol {PROTOCOL_V5} is required"
        ));
    }
    let key = h
        .get(SEC_WEBSOCKET_KEY)
        .ok_or_else(|| "missing Sec-WebSocket-Key".to_string())?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// Serves one exec/attach request: validates, starts the process, upgrades, runs the session.
pub(crate) async fn handle(
    backend: Arc<dyn NodeBackend>,
    kind: Kind,
    ns: String,
    pod: String,
    container: String,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let opts = match parse(kind, req.uri().query()) {
        Ok(o) => o,
        Err(m) => return status::error(StatusCode::BAD_REQUEST, "BadRequest", &m),
    };
    let accept = match websocket_accept(&req) {
        Ok(a) => a,
        Err(m) => return status::error(StatusCode::BAD_REQUEST, "BadRequest", &m),
    };
    let o = opts.clone();
    let started = status::blocking(move || match kind {
        Kind::Exec => backend
            .exec(
                &ns,
                &pod,
                &container,
                ExecSpec {
                    args: o.command.clone(),
                    tty: o.tty,
                    stdin: o.stdin,
                    env: Vec::new(),
                },
            )
            .map(Proc::Exec),
        Kind::Attach => backend
            .attach(&ns, &pod, &container, o.stdin)
            .map(Proc::Attach),
    })
    .await;
    let process = match started {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                session(ws, process, kind, opts).await;
            }
            Err(e) => tracing::warn!(error = %e, "exec upgrade failed"),
        }
    });
    status::websocket_switch(PROTOCOL_V5, &accept)
}

/// Copies `file` to `tx` as messages of `channel` until EOF (EIO from a pty counts as EOF).
fn spawn_reader(
    mut file: std::fs::File,
    channel: u8,
    forward: bool,
    tx: mpsc::Sender<(u8, Vec<u8>)>,
) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if forward && tx.blocking_send((channel, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
}

/// Writes stdin chunks to `file`; dropping the sender closes the process' stdin.
fn spawn_stdin(mut file: std::fs::File) -> std::sync::mpsc::Sender<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        while let Ok(chunk) = rx.recv() {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    tx
}

/// The channel-3 Status for an exit code (the kubelet's `CodeExitError` rendering in
/// `pkg/kubelet/cri/streaming/remotecommand/websocket.go` / `httpstream.go`).
pub fn exit_status_json(kind: Kind, command: &[String], code: i32) -> String {
    if code == 0 {
        return r#"{"metadata":{},"status":"Success"}"#.to_string();
    }
    let what = match kind {
        Kind::Exec => format!(
            "error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        Kind::Attach => format!("error attaching to container, exit code {code}"),
    };
    serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: {what}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
    .to_string()
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// What a session streams: a new process, or the container's main process.
enum Proc {
    Exec(ExecProcess),
    Attach(Attached),
}

/// The parts of a [`Proc`] the session uses.
struct Streams {
    stdin: Option<std::fs::File>,
    stdout: Option<std::fs::File>,
    stderr: Option<std::fs::File>,
    resize: Option<Box<dyn Fn(u16, u16) + Send>>,
    /// Blocks until the process ends; its exit code.
    wait: Box<dyn FnOnce() -> i32 + Send>,
    /// Attach without `stdinOnce`: the client closing stdin ends the session (containerd's
    /// `ContainerIO.Attach` removes the session's outputs then).
    end_on_stdin_close: bool,
    /// Run when the session ends (detaches an attach session from the monitor).
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl Streams {
    fn new(p: Proc) -> Streams {
        match p {
            Proc::Exec(ExecProcess {
                stdin,
                stdout,
                stderr,
                pty,
                mut child,
            }) => Streams {
                stdin,
                stdout,
                stderr,
                resize: pty.map(|pty| {
                    Box::new(move |w, h| {
                        if let Err(e) = armorlet_runtime::resize_pty(pty.as_fd(), w, h) {
                            tracing::debug!(error = %e, "terminal resize failed");
                        }
                    }) as Box<dyn Fn(u16, u16) + Send>
                }),
                wait: Box::new(move || match child.wait() {
                    Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
                    Err(_) => 1,
                }),
                end_on_stdin_close: false,
                on_end: None,
            },
            Proc::Attach(mut a) => {
                let handle = a.handle();
                let done = a.take_done();
                let stdin_once = a.stdin_once;
                let resize = a.tty.then(|| a.handle()).flatten().map(|h| {
                    Box::new(move |w, h2| h.resize(w, h2)) as Box<dyn Fn(u16, u16) + Send>
                });
                Streams {
                    end_on_stdin_close: a.stdin.is_some() && !stdin_once,
                    stdin: a.stdin.take(),
                    stdout: Some(a.stdout),
                    stderr: a.stderr,
                    resize,
                    // The kubelet's attach ends with Success when the container's output does
                    // (containerd's attach returns no exit code).
                    wait: Box::new(move || {
                        if let Some(d) = done {
                            let _ = d.join();
                        }
                        0
                    }),
                    on_end: handle
                        .map(|h| Box::new(move || h.detach()) as Box<dyn FnOnce() + Send>),
                }
            }
        }
    }
}

/// Runs [`Streams::on_end`] when the session ends, however it ends.
struct EndGuard(Option<Box<dyn FnOnce() + Send>>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Runs the stream session until the process ends or the client goes away.
async fn session(mut ws: Ws, process: Proc, kind: Kind, opts: Options) {
    let Streams {
        stdin,
        stdout,
        stderr,
        resize,
        wait,
        end_on_stdin_close,
        on_end,
    } = Streams::new(process);
    let _guard = EndGuard(on_end);
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Vec<u8>)>(16);
    if let Some(f) = stdout {
        spawn_reader(f, channel::STDOUT, opts.stdout, out_tx.clone());
    }
    if let Some(f) = stderr {
        spawn_reader(f, channel::STDERR, opts.stderr, out_tx.clone());
    }
    drop(out_tx);
    let mut stdin_tx = stdin.map(spawn_stdin);
    let (exit_tx, mut exit_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = exit_tx.send(wait());
    });
    let mut readers_done = false;
    let mut exit: Option<i32> = None;
    let drain = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(drain);
    loop {
        if readers_done && exit.is_some() {
            break;
        }
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    let had_stdin = stdin_tx.is_some();
                    incoming(&b, &mut stdin_tx, resize.as_deref());
                    if end_on_stdin_close && had_stdin && stdin_tx.is_none() {
                        exit = Some(0);
                        break;
                    }
                }
                Some(Ok(Message::Ping(_))) => { let _ = ws.flush().await; }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            out = out_rx.recv(), if !readers_done => match out {
                Some((ch, data)) => {
                    let mut frame = Vec::with_capacity(data.len() + 1);
                    frame.push(ch);
                    frame.extend_from_slice(&data);
                    if ws.send(Message::Binary(Bytes::from(frame))).await.is_err() {
                        return;
                    }
                }
                None => readers_done = true,
            },
            code = &mut exit_rx, if exit.is_none() => {
                exit = Some(code.unwrap_or(1));
                if opts.tty && kind == Kind::Exec {
                    drain.as_mut().reset(tokio::time::Instant::now() + TTY_DRAIN);
                }
            },
            _ = &mut drain, if exit.is_some() && !readers_done => readers_done = true,
        }
    }
    finish(ws, kind, &opts.command, exit.unwrap_or(1)).await;
}

/// Handles one client frame.
fn incoming(
    frame: &[u8],
    stdin: &mut Option<std::sync::mpsc::Sender<Vec<u8>>>,
    resize: Option<&(dyn Fn(u16, u16) + Send)>,
) {
    let Some((&ch, payload)) = frame.split_first() else {
        return;
    };
    match ch {
        channel::STDIN => {
            if let Some(tx) = stdin {
                let _ = tx.send(payload.to_vec());
            }
        }
        channel::RESIZE => {
            let (Some(resize), Ok(size)) =
                (resize, serde_json::from_slice::<serde_json::Value>(payload))
            else {
                return;
            };
            let dim = |k: &str| {
                size.get(k)
                    .and_then(|v| v.as_u64())
                    .map(|v| v.min(u16::MAX as u64) as u16)
            };
            if let (Some(w), Some(h)) = (dim("Width"), dim("Height")) {
                resize(w, h);
            }
        }
        channel::CLOSE if payload.first() == Some(&channel::STDIN) => *stdin = None,
        _ => {}
    }
}

/// Sends the Status on channel 3 and a normal Close, then waits briefly for the client's Close.
async fn finish(mut ws: Ws, kind: Kind, command: &[String], code: i32) {
    let mut frame = vec![channel::ERROR];
    frame.extend_from_slice(exit_status_json(kind, command, code).as_bytes());
    if ws.send(Message::Binary(Bytes::from(frame))).await.is_err() {
        return;
    }
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if ws.send(Message::Close(Some(close))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_matches_the_kubelet() {
        assert_eq!(
            exit_status_json(Kind::Exec, &[], 0),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let cmd: Vec<String> = ["sh", "-c", "exit 3"].map(String::from).to_vec();
        let v: serde_json::Value =
            serde_json::from_str(&exit_status_json(Kind::Exec, &cmd, 3)).unwrap();
        assert_eq!(
            v["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
    }

    #[test]
    fn options_follow_the_kubelet_rules() {
        let o = parse(
            Kind::Exec,
            Some("command=sh&stdin=true&stdout=true&stderr=true&tty=true"),
        )
        .unwrap();
        assert!(o.tty && o.stdin && o.stdout && !o.stderr);
        assert!(parse(Kind::Exec, Some("stdout=true"))
            .unwrap_err()
            .contains("at least one command"));
        assert!(parse(Kind::Attach, Some("command=x"))
            .unwrap_err()
            .contains("at least 1 of"));
        assert!(parse(Kind::Attach, Some("stdout=true")).is_ok());
    }
}
