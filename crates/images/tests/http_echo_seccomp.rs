//! The http-echo stand-in under the seccomp tutorial's profiles, installed for real with
//! armorlet-seccomp in the child between fork and exec: it must serve requests under
//! `fine-grained.json` (its syscalls stay inside the allow list) and under `audit.json`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use armorlet_seccomp::resolve::ResolveContext;
use armorlet_seccomp::{load, Profile};

fn profile(name: &str) -> (Vec<armorlet_seccomp::SockFilter>, u32) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../testdata/tutorial/profiles/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let policy = Profile::from_json(&text)
        .unwrap()
        .resolve(&ResolveContext::host_default())
        .policy()
        .unwrap();
    (policy.compile().unwrap(), policy.load_flags())
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_under(
    name: &str,
    port: u16,
    text: &str,
) -> (Server, BufReader<std::process::ChildStdout>) {
    let (prog, flags) = profile(name);
    let bin = common::built_images().join("http-echo");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("-text={text}"))
        .arg(format!("-listen=127.0.0.1:{port}"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: `install` only makes raw syscalls and does not allocate.
    unsafe {
        cmd.pre_exec(move || load::install(&prog, flags, true).map(|_| ()));
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    if !first.contains("server is listening on") {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!(
            "http-echo under {name} did not start: stdout {first:?} stderr {err:?} status {:?}",
            child.wait()
        );
    }
    (Server(child), stdout)
}

fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: curl/7.68.0\r\nAccept: */*\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

fn serves_under(name: &str) {
    let port = free_port();
    let (mut server, mut log) = start_under(name, port, "just made some syscalls!");
    for path in ["/", "/anything"] {
        let resp = get(port, path);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{name}: {resp:?}");
        assert!(
            resp.ends_with("\r\n\r\njust made some syscalls!\n"),
            "{name}: {resp:?}"
        );
        let mut line = String::new();
        log.read_line(&mut line).unwrap();
        let expected = format!("localhost:{port} 127.0.0.1:");
        assert!(line.contains(&expected), "{name}: log line {line:?}");
        assert!(
            line.contains(&format!("\"GET {path} HTTP/1.1\" 200 25 \"curl/7.68.0\"")),
            "{name}: {line:?}"
        );
    }
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "{name}: server exited"
    );
}

#[test]
fn http_echo_serves_under_fine_grained_profile() {
    serves_under("fine-grained");
}

#[test]
fn http_echo_serves_under_audit_profile() {
    serves_under("audit");
}

#[test]
fn http_echo_is_confined_by_violation_profile() {
    // Control: the tutorial's violation.json denies what it needs, so it cannot serve.
    let (prog, flags) = profile("violation");
    let bin = common::built_images().join("http-echo");
    let mut cmd = Command::new(bin);
    cmd.args(["-text=x", &format!("-listen=127.0.0.1:{}", free_port())]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: `install` only makes raw syscalls and does not allocate.
    unsafe {
        cmd.pre_exec(move || load::install(&prog, flags, true).map(|_| ()));
    }
    // execve itself is denied: either the spawn reports it or the child fails.
    if let Ok(out) = cmd.output() {
        assert!(!out.status.success(), "ran under violation.json: {out:?}");
    }
}

#[test]
fn http_echo_flags_like_hashicorp() {
    let bin = common::built_images().join("http-echo");
    let out = Command::new(&bin).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Missing -text option!\n"
    );
    let out = Command::new(&bin).arg("-version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("http-echo v0.2.3"));
}
