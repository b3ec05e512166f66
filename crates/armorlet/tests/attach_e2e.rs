//! `kubectl attach`, `kubectl port-forward` and `kubectl cp` end to end: the real kubectl against
//! `armorlet up`, real crun containers. Attach streams the container's main process live from
//! its monitor (stdin through the FIFO, `stdinOnce`, terminals and their size); port-forward
//! tunnels SPDY through the WebSocket kubectl 1.32 opens and dials inside the pod's network
//! namespace; cp is exec plus the image's tar.
//!
//! Needs root, crun and kubectl; every missing piece fails the test loudly.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn kubectl_cmd(c: &Cluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(KUBECTL);
    cmd.args(args)
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path());
    cmd
}

/// Lines of a child's pipe, on a thread (so reads can be bounded by PATIENCE). The pipe is
/// drained to its end even when nobody takes the lines any more, so the child never gets
/// SIGPIPE (kubectl port-forward prints a line per connection).
fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            let _ = tx.send(l);
        }
    });
    rx
}

/// Waits for a line satisfying `f`; panics with what was seen after PATIENCE.
fn expect_line(rx: &mpsc::Receiver<String>, what: &str, f: impl Fn(&str) -> bool) -> String {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if f(&l) => return l,
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    panic!("no line {what}; saw {seen:?}");
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "kubectl did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pod(name: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.28\n{container}",
        node = hostname()
    )
}

#[test]
fn attach_streams() {
    require_root();
    let c = Cluster::new("crun");
    c.apply(&pod(
        "talker",
        "    command: [\"sh\", \"-c\", \"i=0; while true; do echo tick $i; echo err $i >&2; i=$((i+1)); sleep 0.2; done\"]\n",
    ));
    c.apply(&pod(
        "once",
        "    stdin: true\n    stdinOnce: true\n    command: [\"sh\", \"-c\", \"while read l; do echo got $l; done; echo eof\"]\n",
    ));
    c.apply(&pod("cat", "    stdin: true\n    command: [\"cat\"]\n"));
    c.apply(&pod(
        "term",
        "    stdin: true\n    stdinOnce: true\n    tty: true\n    command: [\"sh\"]\n",
    ));
    for p in ["talker", "once", "cat", "term"] {
        c.wait_running(p);
    }

    // Output, live: stdout and stderr as the process writes them; kubectl's own notices on
    // stderr. -t on a container without a terminal is refused by kubectl, which goes on.
    let mut talker = kubectl_cmd(&c, &["attach", "-t", "talker"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(talker.stdout.take().unwrap());
    let err = lines(talker.stderr.take().unwrap());
    expect_line(&err, "about the TTY", |l| {
        l == "error: Unable to use a TTY - container c did not allocate one"
    });
    expect_line(&err, "about the prompt", |l| {
        l == "If you don't see a command prompt, try pressing enter."
    });
    let first = expect_line(&out, "tick", |l| l.starts_with("tick "));
    let n: u64 = first[5..].parse().unwrap();
    expect_line(&out, "the next tick", |l| l == format!("tick {}", n + 1));
    expect_line(&err, "stderr", |l| l.starts_with("err "));
    talker.kill().unwrap();
    talker.wait().unwrap();

    // -i to a container without stdin: as with containerd, the input is dropped and the
    // output keeps streaming, also after the client's stdin ended.
    let mut deaf = kubectl_cmd(&c, &["attach", "-i", "talker"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(deaf.stdout.take().unwrap());
    deaf.stdin.take().unwrap().write_all(b"ignored\n").unwrap();
    let first = expect_line(&out, "tick", |l| l.starts_with("tick "));
    let n: u64 = first[5..].parse().unwrap();
    expect_line(&out, "a tick after stdin closed", |l| {
        l == format!("tick {}", n + 2)
    });
    assert!(deaf.try_wait().unwrap().is_none(), "the session goes on");
    deaf.kill().unwrap();
    deaf.wait().unwrap();

    // stdin without stdinOnce: each session writes to the same stdin; closing the client's
    // stdin ends the session (kubectl exits 0) and leaves the container running.
    for word in ["hello", "again"] {
        let mut s = kubectl_cmd(&c, &["attach", "-i", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = lines(s.stdout.take().unwrap());
        let mut stdin = s.stdin.take().unwrap();
        stdin.write_all(format!("{word}\n").as_bytes()).unwrap();
        expect_line(&out, word, |l| l == word);
        drop(stdin);
        assert!(wait_exit(&mut s).success());
    }
    assert!(c.pod("cat")["status"]["containerStatuses"][0]["state"]["running"].is_object());

    // stdinOnce: the container gets EOF when the session closes stdin, the session lasts
    // until the container's output ends, and the pod completes.
    let mut s = kubectl_cmd(&c, &["attach", "-i", "once"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = s.stdin.take().unwrap();
    stdin.write_all(b"a\nb\n").unwrap();
    drop(stdin);
    let out = s.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got a\ngot b\neof\n");
    c.wait_for("once Succeeded", || {
        (c.pod("once")["status"]["phase"] == "Succeeded").then_some(())
    });
    let again = c.kubectl(&["attach", "-i", "once"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "error: cannot attach a container in a completed pod; current phase is Succeeded"
    );

    // A terminal: kubectl (itself under a pty of 123x45) sends its size, the container's
    // terminal takes it, and the shell's exit ends the session.
    let line = format!(
        "stty cols 123 rows 45; HOME={} KUBECONFIG={} {KUBECTL} attach -it term",
        c.dir.path().display(),
        c.kubeconfig().display()
    );
    let mut s = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(s.stdout.take().unwrap());
    let mut stdin = s.stdin.take().unwrap();
    stdin
        .write_all(
            b"while [ \"$(stty size)\" != \"45 123\" ]; do sleep 0.1; done; echo size=$(stty size | tr ' ' x); exit\n",
        )
        .unwrap();
    expect_line(&out, "the terminal size", |l| l.contains("size=45x123"));
    assert!(wait_exit(&mut s).success());
    drop(stdin);
}

/// Starts `kubectl port-forward TARGET LOCAL:REMOTE` and waits for its "Forwarding from" line
/// naming the pod's port `to`.
fn port_forward(
    c: &Cluster,
    target: &str,
    remote: u16,
    to: u16,
) -> (Child, u16, mpsc::Receiver<String>) {
    let local = common::free_port();
    let mut pf = kubectl_cmd(
        c,
        &[
            "port-forward",
            "--address",
            "127.0.0.1",
            target,
            &format!("{local}:{remote}"),
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = lines(pf.stdout.take().unwrap());
    let err = lines(pf.stderr.take().unwrap());
    expect_line(&out, "Forwarding from", |l| {
        l == format!("Forwarding from 127.0.0.1:{local} -> {to}")
    });
    (pf, local, err)
}

#[test]
fn port_forward_and_cp() {
    require_root();
    let c = Cluster::new("crun");
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: echo\n  labels:\n    app: echo\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: hashicorp/http-echo:0.2.3\n    args: [\"-text=hello from the pod\", \"-listen=:5678\"]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: echo-svc\nspec:\n  selector:\n    app: echo\n  ports:\n  - port: 80\n    targetPort: 5678\n",
        node = hostname()
    ));
    c.apply(&pod("files", "    command: [\"sleep\", \"3600\"]\n"));
    c.wait_running("echo");
    c.wait_running("files");

    // pod/NAME: each local connection is its own pair of streams to 127.0.0.1:5678 in the
    // pod's network namespace (the pod listens on all addresses; the host reaches it only
    // through the forward's local port).
    let (mut pf, local, _err) = port_forward(&c, "pod/echo", 5678, 5678);
    for _ in 0..3 {
        assert_eq!(
            http_get(&format!("127.0.0.1:{local}")).as_deref(),
            Some("hello from the pod")
        );
    }
    pf.kill().unwrap();
    pf.wait().unwrap();

    // svc/NAME: kubectl resolves the Service to a pod and the target port itself.
    let (mut pf, local, _err) = port_forward(&c, "svc/echo-svc", 80, 5678);
    assert_eq!(
        http_get(&format!("127.0.0.1:{local}")).as_deref(),
        Some("hello from the pod")
    );
    pf.kill().unwrap();
    pf.wait().unwrap();

    // A closed port: the connection is closed and kubectl reports the kubelet's error-stream
    // text (with containerd's dial errors) and gives up.
    let (mut pf, local, err) = port_forward(&c, "pod/echo", 9999, 9999);
    assert_eq!(http_get(&format!("127.0.0.1:{local}")).as_deref(), None);
    let line = expect_line(&err, "the forwarding error", |l| {
        l.contains("an error occurred forwarding")
    });
    assert!(
        line.contains(&format!(
            "an error occurred forwarding {local} -> 9999: error forwarding port 9999 to pod "
        )) && line.contains("failed to connect to localhost:9999 inside namespace")
            && line.contains("IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused"),
        "{line}"
    );
    let status = wait_exit(&mut pf);
    let rest: Vec<String> = err.try_iter().collect();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert!(
        rest.iter().any(|l| l == "error: lost connection to pod"),
        "{rest:?}"
    );

    // cp in (a file and a directory) and out: exec with tar on both sides.
    let local_dir = c.dir.path().join("cp");
    std::fs::create_dir_all(local_dir.join("tree/sub")).unwrap();
    std::fs::write(local_dir.join("in.txt"), "into the pod\n").unwrap();
    std::fs::write(local_dir.join("tree/a"), "A\n").unwrap();
    std::fs::write(local_dir.join("tree/sub/b"), "B\n").unwrap();
    let path = |p: &str| local_dir.join(p).to_str().unwrap().to_owned();
    c.kubectl_ok(&["cp", &path("in.txt"), "files:/tmp/in.txt"]);
    c.kubectl_ok(&["cp", &path("tree"), "files:/tmp/tree"]);
    assert_eq!(
        c.kubectl_ok(&[
            "exec",
            "files",
            "--",
            "cat",
            "/tmp/in.txt",
            "/tmp/tree/a",
            "/tmp/tree/sub/b"
        ]),
        "into the pod\nA\nB\n"
    );
    c.kubectl_ok(&[
        "exec",
        "files",
        "--",
        "sh",
        "-c",
        "mkdir -p /tmp/made/deep && echo made in the pod > /tmp/made/deep/f",
    ]);
    c.kubectl_ok(&["cp", "files:/tmp/made", &path("out")]);
    assert_eq!(
        std::fs::read_to_string(local_dir.join("out/deep/f")).unwrap(),
        "made in the pod\n"
    );
    c.kubectl_ok(&["cp", "files:/tmp/in.txt", &path("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(local_dir.join("back.txt")).unwrap(),
        "into the pod\n"
    );
}
