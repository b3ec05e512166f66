//! The real kubectl (/usr/bin/kubectl, v1.32 dispatcher) against `armorlet up` (issue 5).
//!
//! Every test starts its own server as a child process on an ephemeral port with its own data
//! directory and its own HOME (kubectl caches discovery under ~/.kube), and kills it on drop.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const KUBECTL: &str = "/usr/bin/kubectl";
/// Upper bound for anything that should happen "soon" (server start, a watch line); only a guard
/// against hanging forever, never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(60);

// `armorlet up`, killed on drop.
use common::UpProcess as Server;

/// A server plus a scratch directory for HOME and manifests.
struct Cluster {
    dir: tempfile::TempDir,
    server: Option<Server>,
}

/// A running `kubectl get -w`, its output lines read on a thread; killed when dropped.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    /// The next line starting with `needle`, skipping others; panics after [`PATIENCE`].
    fn wait_for(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no watch line containing {needle:?}"));
            if line.starts_with(needle) {
                return line;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster::with_args(&[])
    }

    /// A cluster whose `armorlet up` gets `extra` flags. These tests exercise the API server
    /// alone, so no node agent is started (`--nodes 0`); the node has its own suites.
    fn with_args(extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["--nodes", "0"];
        args.extend_from_slice(extra);
        let server = Server::start_with(&dir.path().join("data"), &args);
        Cluster {
            dir,
            server: Some(server),
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.server
            .as_ref()
            .expect("server running")
            .kubeconfig
            .clone()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KUBECTL);
        c.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .current_dir(self.dir.path());
        c
    }

    /// Starts `kubectl ARGS` (a `get -w`) and follows its output.
    fn watch(&self, args: &[&str]) -> Watch {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kubectl get -w");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    fn kubectl(&self, args: &[&str]) -> Out {
        let mut all = vec!["--request-timeout=60s"];
        all.extend_from_slice(args);
        let out = self.command(&all).output().expect("run kubectl");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl and requires exit code 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert_eq!(out.code, 0, "kubectl {args:?} failed: {out:#?}");
        out.stdout
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write manifest");
        p.to_string_lossy().into_owned()
    }
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: c
    image: busybox:1.28
    ports:
    - containerPort: 80
";

/// `POD` for another scheduler, so the built-in scheduler leaves it alone and the only events
/// are the ones a test writes (kube-scheduler likewise ignores foreign `schedulerName`s).
fn unscheduled_pod() -> String {
    POD.replace("spec:\n", "spec:\n  schedulerName: manual\n")
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: \"1\"
  b: \"2\"
";

/// Splits a table into rows of whitespace-separated cells (cells here contain no spaces).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn version_reports_the_emulated_kubernetes_release() {
    let c = Cluster::new();
    let out = c.ok(&["version"]);
    assert!(out.contains("Server Version: v1.32.0+armorlet."), "{out}");
}

#[test]
fn apply_create_and_get_in_every_output_format() {
    let c = Cluster::new();
    let ns = c.write(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
    );
    assert_eq!(c.ok(&["create", "-f", &ns]), "namespace/team created\n");
    let pod = c.write("pod.yaml", POD);
    assert_eq!(c.ok(&["apply", "-f", &pod]), "pod/web created\n");
    assert_eq!(c.ok(&["apply", "-f", &pod]), "pod/web unchanged\n");
    let cm = c.write("cm.yaml", CONFIGMAP);
    assert_eq!(c.ok(&["create", "-f", &cm]), "configmap/cfg created\n");
    let again = c.kubectl(&["create", "-f", &cm]);
    assert_eq!(again.code, 1);
    assert!(
        again
            .stderr
            .contains("Error from server (AlreadyExists): error when creating \"")
            && again.stderr.contains("configmaps \"cfg\" already exists"),
        "{again:#?}"
    );

    let table = rows(&c.ok(&["get", "pods"]));
    assert_eq!(table[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(table[1][..4], ["web", "0/1", "Pending", "0"]);
    let wide = c.ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.starts_with("NAME   READY   STATUS    RESTARTS   AGE   IP       NODE     NOMINATED NODE   READINESS GATES\n"), "{wide}");
    assert!(rows(&wide)[1].ends_with(&[
        "<none>".to_string(),
        "<none>".into(),
        "<none>".into(),
        "<none>".into()
    ]));
    let cms = rows(&c.ok(&["get", "configmap", "cfg"]));
    assert_eq!(cms[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(cms[1][..2], ["cfg", "2"]);
    let nss = rows(&c.ok(&["get", "namespaces"]));
    let names: Vec<&str> = nss[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "team"
        ]
    );
    assert!(nss[1..].iter().all(|r| r[1] == "Active"));

    let json: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "pod", "web", "-o", "json"])).unwrap();
    assert_eq!(json["kind"], "Pod");
    assert_eq!(json["status"]["phase"], "Pending");
    assert_eq!(json["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(json["metadata"]["uid"].as_str().map(str::len), Some(36));
    assert!(
        json["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    let yaml = c.ok(&["get", "configmap", "cfg", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap\n") && yaml.contains("  a: \"1\"\n"),
        "{yaml}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "pods", "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    assert_eq!(c.ok(&["get", "pods", "-o", "name"]), "pod/web\n");

    let describe = c.ok(&["describe", "pod", "web"]);
    for want in [
        // ServiceAccount admission adds "Service Account:", which widens the top block.
        "Name:             web",
        "Namespace:        default",
        "Service Account:  default",
        "Status:           Pending",
        "Image:        busybox:1.28",
        "Port:         80/TCP",
        "QoS Class:                   BestEffort",
    ] {
        assert!(
            describe.contains(want),
            "describe lacks {want:?}:\n{describe}"
        );
    }
}

#[test]
fn missing_objects_and_bad_names_print_kubernetes_errors() {
    let c = Cluster::new();
    let out = c.kubectl(&["get", "pod", "nope"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error from server (NotFound): pods \"nope\" not found\n"
    );
    let bad = c.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    );
    let out = c.kubectl(&["create", "-f", &bad]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{out:#?}");
    let out = c.kubectl(&["-n", "ghost", "apply", "-f", &c.write("cm.yaml", CONFIGMAP)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("namespaces \"ghost\" not found"),
        "{out:#?}"
    );
}

#[test]
fn label_annotate_and_patch_change_the_stored_object() {
    let c = Cluster::new();
    c.ok(&["apply", "-f", &c.write("pod.yaml", POD)]);
    assert_eq!(
        c.ok(&["label", "pod", "web", "tier=front"]),
        "pod/web labeled\n"
    );
    assert_eq!(
        c.ok(&["annotate", "pod", "web", "note=hi"]),
        "pod/web annotated\n"
    );
    assert_eq!(
        c.ok(&[
            "patch",
            "pod",
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"m":"1"}}}"#
        ]),
        "pod/web patched\n"
    );
    assert_eq!(
        c.ok(&[
            "patch",
            "pod",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#
        ]),
        "pod/web patched\n"
    );
    assert_eq!(
        c.ok(&[
            "patch",
            "pod",
            "web",
            "-p",
            r#"{"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}}"#
        ]),
        "pod/web patched\n"
    );
    let out = c.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.labels}|{.metadata.annotations.note}|{.spec.containers[*].image}",
    ]);
    assert_eq!(
        out,
        r#"{"app":"web","j":"2","m":"1","tier":"front"}|hi|busybox:1.36"#
    );
    let shown = rows(&c.ok(&["get", "pod", "web", "-L", "tier,j"]));
    assert_eq!(shown[0][5..], ["TIER", "J"]);
    assert_eq!(shown[1][5..], ["front", "2"]);
    assert_eq!(
        c.ok(&["label", "pod", "web", "tier-"]),
        "pod/web unlabeled\n"
    );
    // A changed manifest is applied as a strategic merge patch computed by kubectl.
    let changed = POD.replace("app: web", "app: web2");
    assert_eq!(
        c.ok(&["apply", "-f", &c.write("pod.yaml", &changed)]),
        "pod/web configured\n"
    );
    assert_eq!(
        c.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.labels.app}"]),
        "web2"
    );
    let out = c.kubectl(&[
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/nope"}]"#,
    ]);
    assert_eq!(out.code, 1, "{out:#?}");
}

#[test]
fn delete_waits_until_the_object_is_gone() {
    let c = Cluster::new();
    c.ok(&["apply", "-f", &c.write("pod.yaml", POD)]);
    c.ok(&["create", "-f", &c.write("cm.yaml", CONFIGMAP)]);
    assert_eq!(
        c.ok(&["delete", "pod", "web", "--wait"]),
        "pod \"web\" deleted\n"
    );
    let out = c.kubectl(&["get", "pod", "web"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error from server (NotFound): pods \"web\" not found\n")
    );
    assert_eq!(
        c.ok(&[
            "delete",
            "-f",
            &c.dir.path().join("cm.yaml").to_string_lossy()
        ]),
        "configmap \"cfg\" deleted\n"
    );
    let out = c.kubectl(&["delete", "configmap", "cfg"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error from server (NotFound): configmaps \"cfg\" not found\n"
    );
}

#[test]
fn deleting_a_namespace_deletes_its_content() {
    let c = Cluster::new();
    c.ok(&[
        "create",
        "-f",
        &c.write(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: gone\n",
        ),
    ]);
    c.ok(&["-n", "gone", "apply", "-f", &c.write("pod.yaml", POD)]);
    c.ok(&["-n", "gone", "apply", "-f", &c.write("cm.yaml", CONFIGMAP)]);
    assert_eq!(
        c.ok(&["delete", "namespace", "gone"]),
        "namespace \"gone\" deleted\n"
    );
    let out = c.kubectl(&["get", "namespace", "gone"]);
    assert_eq!(out.code, 1, "{out:#?}");
    let out = c.kubectl(&["get", "configmaps", "-A", "-o", "name"]);
    assert_eq!(out.stdout, "");
    let out = c.kubectl(&["delete", "namespace", "default"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may not be deleted\n"));
}

#[test]
fn get_watch_prints_objects_created_later() {
    let c = Cluster::new();
    c.ok(&["create", "-f", &c.write("cm.yaml", CONFIGMAP)]);
    let watch = c.watch(&["get", "configmaps", "-w"]);
    let wait_for = |needle: &str| watch.wait_for(needle);
    assert!(wait_for("NAME").contains("DATA"));
    wait_for("cfg ");
    c.ok(&[
        "create",
        "-f",
        &c.write("cm2.yaml", &CONFIGMAP.replace("name: cfg", "name: second")),
    ]);
    let line = wait_for("second ");
    assert_eq!(rows(&line)[0][..2], ["second", "2"]);
}

#[test]
fn tutorial_jsonpath_reads_node_status() {
    let c = Cluster::new();
    let node = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"vm"},
      "status":{"nodeInfo":{"kubeletVersion":"v1.32.0+armorlet.0.1.0","osImage":"Debian GNU/Linux 12 (bookworm)","kernelVersion":"6.1.0","containerRuntimeVersion":"armorlet://0.1.0"},
        "conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}],
        "addresses":[{"type":"InternalIP","address":"192.0.2.2"}]}}"#;
    assert_eq!(
        c.ok(&["create", "-f", &c.write("node.json", node)]),
        "node/vm created\n"
    );
    assert_eq!(
        c.ok(&["get", "nodes", "-o=jsonpath={range .items[*]}{@.metadata.name}: {@.status.nodeInfo.kubeletVersion}\n{end}"]),
        "vm: v1.32.0+armorlet.0.1.0\n"
    );
    assert_eq!(
        c.ok(&["get", "nodes", r#"-o=jsonpath={range .items[*]}{@.metadata.name}: {.status.conditions[?(@.reason=="KubeletReady")].message}{"\n"}{end}"#]),
        "vm: kubelet is posting ready status\n"
    );
    let table = rows(&c.ok(&["get", "nodes"]));
    assert_eq!(table[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(table[1][..3], ["vm", "Ready", "<none>"]);
    assert_eq!(table[1][4], "v1.32.0+armorlet.0.1.0");
    let wide = c.ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        wide.contains("192.0.2.2")
            && wide.contains("Debian GNU/Linux 12 (bookworm)")
            && wide.contains("armorlet://0.1.0"),
        "{wide}"
    );
}

#[test]
fn a_wrong_token_is_unauthorized() {
    let c = Cluster::new();
    // Without cached discovery the 401 arrives on /api first; client-go words it itself.
    let out = c.kubectl(&["--token=wrong", "get", "pods"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.lines().last(),
        Some("error: You must be logged in to the server (the server has asked for the client to provide credentials)"),
        "{out:#?}"
    );
    // With discovery cached by a good call, the request itself gets the Status message.
    c.ok(&["get", "pods"]);
    let out = c.kubectl(&["--token=wrong", "get", "pods"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: You must be logged in to the server (Unauthorized)\n"
    );
}

#[test]
fn api_resources_lists_the_served_kinds() {
    let c = Cluster::new();
    let table = rows(&c.ok(&["api-resources"]));
    assert_eq!(
        table[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    for want in [
        vec!["pods", "po", "v1", "true", "Pod"],
        vec!["nodes", "no", "v1", "false", "Node"],
        vec!["namespaces", "ns", "v1", "false", "Namespace"],
        vec!["daemonsets", "ds", "apps/v1", "true", "DaemonSet"],
        vec!["leases", "coordination.k8s.io/v1", "true", "Lease"],
        vec!["events", "ev", "events.k8s.io/v1", "true", "Event"],
    ] {
        assert!(
            table.iter().any(|r| *r == want),
            "api-resources lacks {want:?}"
        );
    }
}

#[test]
fn server_dry_run_and_generate_name() {
    let c = Cluster::new();
    let cm = c.write("cm.yaml", CONFIGMAP);
    assert_eq!(
        c.ok(&["create", "-f", &cm, "--dry-run=server"]),
        "configmap/cfg created (server dry run)\n"
    );
    assert_eq!(c.kubectl(&["get", "configmap", "cfg"]).code, 1);
    let gen = c.write(
        "gen.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\n",
    );
    let out = c.ok(&["create", "-f", &gen]);
    let name = out
        .strip_prefix("configmap/")
        .and_then(|s| s.strip_suffix(" created\n"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert_eq!(
        c.ok(&["get", "configmap", name, "-o", "name"]),
        format!("configmap/{name}\n")
    );
}

#[test]
fn objects_and_resource_versions_survive_kill_9_and_watches_resume() {
    let mut c = Cluster::new();
    c.ok(&["create", "-f", &c.write("cm.yaml", CONFIGMAP)]);
    let before = c.ok(&[
        "get",
        "configmap",
        "cfg",
        "-o",
        "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
    ]);
    let (uid, rv1) = before.split_once(' ').unwrap();
    let (uid, rv1) = (uid.to_string(), rv1.parse::<u64>().unwrap());
    c.ok(&["label", "configmap", "cfg", "after=restart"]);
    let rv2: u64 = c
        .ok(&[
            "get",
            "configmap",
            "cfg",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(rv2 > rv1);

    // kill -9, then start again on the same data directory.
    let mut server = c.server.take().unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    c.server = Some(Server::control_plane(&c.dir.path().join("data")));

    let after = c.ok(&[
        "get",
        "configmap",
        "cfg",
        "-o",
        "jsonpath={.metadata.uid} {.metadata.resourceVersion} {.metadata.labels.after}",
    ]);
    assert_eq!(after, format!("{uid} {rv2} restart"));
    // The watch from before the label change replays it from the persisted event log.
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv1}&timeoutSeconds=1"
    );
    let events: Vec<serde_json::Value> = c
        .ok(&["get", "--raw", &path])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(
        events[0]["object"]["metadata"]["resourceVersion"],
        rv2.to_string()
    );
    // The counter continues after the restart.
    c.ok(&[
        "create",
        "-f",
        &c.write("cm2.yaml", &CONFIGMAP.replace("name: cfg", "name: newer")),
    ]);
    let rv3: u64 = c
        .ok(&[
            "get",
            "configmap",
            "newer",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(rv3 > rv2, "{rv3} > {rv2}");
}

#[test]
fn oversized_bodies_are_rejected_with_a_status() {
    let c = Cluster::new();
    let big = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"x\":\"{}\"}}}}",
        "a".repeat(4 * 1024 * 1024)
    );
    let file = c.write("big.json", &big);
    let out = c.kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        &file,
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("Request entity too large: limit is 3145728"),
        "{out:#?}"
    );
}

#[test]
fn status_is_written_only_through_the_status_subresource() {
    let c = Cluster::new();
    c.ok(&["apply", "-f", &c.write("pod.yaml", POD)]);
    let patch = r#"{"status":{"phase":"Running"}}"#;
    assert_eq!(
        c.ok(&["patch", "pod", "web", "--type=merge", "-p", patch]),
        "pod/web patched (no change)\n"
    );
    assert_eq!(
        c.ok(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]),
        "Pending"
    );
    assert_eq!(
        c.ok(&[
            "patch",
            "pod",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            patch
        ]),
        "pod/web patched\n"
    );
    assert_eq!(rows(&c.ok(&["get", "pod", "web"]))[1][2], "Running");
}

#[test]
fn scheduled_pods_terminate_gracefully_until_force_deleted() {
    let c = Cluster::new();
    let bound = POD.replace("spec:\n", "spec:\n  nodeName: vm\n");
    c.ok(&["apply", "-f", &c.write("pod.yaml", &bound)]);
    assert_eq!(
        c.ok(&["delete", "pod", "web", "--wait=false"]),
        "pod \"web\" deleted\n"
    );
    let out = c.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.deletionGracePeriodSeconds}",
    ]);
    assert_eq!(out, "30");
    assert_eq!(rows(&c.ok(&["get", "pod", "web"]))[1][2], "Terminating");
    let out = c.kubectl(&["delete", "pod", "web", "--grace-period=0", "--force"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.stdout, "pod \"web\" force deleted\n");
    assert_eq!(c.kubectl(&["get", "pod", "web"]).code, 1);
}

#[test]
fn finalizers_hold_an_object_until_they_are_removed() {
    let c = Cluster::new();
    let held = CONFIGMAP.replace(
        "  name: cfg\n",
        "  name: cfg\n  finalizers:\n  - example.com/hold\n",
    );
    c.ok(&["create", "-f", &c.write("cm.yaml", &held)]);
    assert_eq!(
        c.ok(&["delete", "configmap", "cfg", "--wait=false"]),
        "configmap \"cfg\" deleted\n"
    );
    let ts = c.ok(&[
        "get",
        "configmap",
        "cfg",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    c.ok(&[
        "patch",
        "configmap",
        "cfg",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let out = c.kubectl(&["get", "configmap", "cfg"]);
    assert_eq!(out.code, 1, "{out:#?}");
}

#[test]
fn replace_with_a_stale_resource_version_conflicts() {
    let c = Cluster::new();
    c.ok(&["create", "-f", &c.write("cm.yaml", CONFIGMAP)]);
    let stale = c.ok(&["get", "configmap", "cfg", "-o", "json"]);
    c.ok(&["label", "configmap", "cfg", "bump=1"]);
    let out = c.kubectl(&["replace", "-f", &c.write("stale.json", &stale)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Error from server (Conflict): error when replacing \"")
            && out.stderr.contains("Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again"),
        "{out:#?}"
    );
}

#[test]
fn daemonsets_events_and_describe_show_the_usual_columns() {
    let c = Cluster::new();
    let ds = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},
      "spec":{"selector":{"matchLabels":{"app":"agent"}},
        "template":{"metadata":{"labels":{"app":"agent"}},"spec":{"containers":[{"name":"a","image":"busybox:1.28"}]}}}}"#;
    assert_eq!(
        c.ok(&["apply", "-f", &c.write("ds.json", ds)]),
        "daemonset.apps/agent created\n"
    );
    let table = rows(&c.ok(&["get", "ds"]));
    assert_eq!(
        table[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE"
        ]
    );
    assert_eq!(table[1][..7], ["agent", "0", "0", "0", "0", "0", "<none>"]);
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "agent",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "1"
    );

    c.ok(&["apply", "-f", &c.write("pod.yaml", &unscheduled_pod())]);
    let uid = c.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"web.1"}},
          "involvedObject":{{"kind":"Pod","namespace":"default","name":"web","uid":"{uid}","apiVersion":"v1"}},
          "reason":"Scheduled","message":"Successfully assigned default/web to vm","type":"Normal",
          "source":{{"component":"default-scheduler"}},"count":1}}"#
    );
    c.ok(&["create", "-f", &c.write("ev.json", &event)]);
    let other = event
        .replace("web.1", "other.1")
        .replace(&uid, "someone-else");
    c.ok(&["create", "-f", &c.write("ev2.json", &other)]);
    let events = c.ok(&["get", "events"]);
    assert!(
        events.starts_with("LAST SEEN   TYPE     REASON      OBJECT    MESSAGE\n"),
        "{events}"
    );
    assert!(
        events.contains("Normal   Scheduled   pod/web   Successfully assigned default/web to vm"),
        "{events}"
    );
    let describe = c.ok(&["describe", "pod", "web"]);
    assert!(
        describe.contains("Normal  Scheduled")
            && describe.contains("default-scheduler  Successfully assigned default/web to vm"),
        "{describe}"
    );
    // Only the event whose involvedObject.uid matches is shown.
    assert_eq!(
        describe.matches("Successfully assigned").count(),
        1,
        "{describe}"
    );
}

#[test]
fn typed_client_creates_travel_as_protobuf_and_are_stored_as_json() {
    let c = Cluster::new();
    assert_eq!(
        c.ok(&["create", "namespace", "team"]),
        "namespace/team created\n"
    );
    assert_eq!(
        c.ok(&[
            "-n",
            "team",
            "create",
            "configmap",
            "x",
            "--from-literal=a=b",
            "--from-literal=c=d"
        ]),
        "configmap/x created\n"
    );
    assert_eq!(
        c.ok(&[
            "-n",
            "team",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=p=q"
        ]),
        "secret/s created\n"
    );
    assert_eq!(
        c.ok(&["-n", "team", "create", "serviceaccount", "bot"]),
        "serviceaccount/bot created\n"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "namespace",
            "team",
            "-o",
            "jsonpath={.metadata.labels}|{.status.phase}|{.metadata.generateName}"
        ]),
        r#"{"kubernetes.io/metadata.name":"team"}|Active|"#
    );
    assert_eq!(
        c.ok(&["-n", "team", "get", "cm", "x", "-o", "jsonpath={.data}"]),
        r#"{"a":"b","c":"d"}"#
    );
    // "q" base64-encoded, and the default type.
    assert_eq!(
        c.ok(&[
            "-n",
            "team",
            "get",
            "secret",
            "s",
            "-o",
            "jsonpath={.data.p} {.type}"
        ]),
        "cQ== Opaque"
    );
    let table = rows(&c.ok(&["-n", "team", "get", "secrets"]));
    assert_eq!(table[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(table[1][..3], ["s", "Opaque", "1"]);
}

#[test]
fn sigterm_ends_open_watches_and_exits_cleanly() {
    let mut c = Cluster::new();
    c.ok(&["create", "-f", &c.write("cm.yaml", CONFIGMAP)]);
    let mut watcher = c
        .command(&["get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl get -w");
    // kubectl prints the listed row and then opens the watch; seeing the row means the watch
    // request is at most a moment away (if it lost the race, kubectl fails to connect and exits,
    // which the checks below accept too).
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("kubectl get -w prints the listed row");
        if line.starts_with("cfg ") {
            break;
        }
    }
    let mut server = c.server.take().unwrap();
    let pid = server.child.id().to_string();
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + PATIENCE;
    let exit = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "armorlet up did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
    // The watcher sees its stream end; `get -w` then exits on its own.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if watcher.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let _ = watcher.kill();
            panic!("kubectl get -w kept running after the server stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The data directory still opens: restart and read the object back.
    c.server = Some(Server::control_plane(&c.dir.path().join("data")));
    assert_eq!(
        c.ok(&["get", "configmap", "cfg", "-o", "name"]),
        "configmap/cfg\n"
    );
}

#[test]
fn expose_allocates_distinct_cluster_ips_and_node_ports() {
    let c = Cluster::new();
    c.ok(&["apply", "-f", &c.write("pod.yaml", POD)]);
    assert_eq!(
        c.ok(&["expose", "pod", "web", "--port=5678", "--type=NodePort"]),
        "service/web exposed\n"
    );
    assert_eq!(
        c.ok(&["expose", "pod", "web", "--port=80", "--name=web2"]),
        "service/web2 exposed\n"
    );
    let table = rows(&c.ok(&["get", "services", "-o", "wide"]));
    assert_eq!(
        table[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let (a, b) = (&table[1], &table[2]);
    assert_eq!((a[0].as_str(), a[1].as_str()), ("web", "NodePort"));
    assert_eq!(
        (b[0].as_str(), b[1].as_str(), b[4].as_str()),
        ("web2", "ClusterIP", "80/TCP")
    );
    assert_ne!(a[2], b[2]);
    for ip in [&a[2], &b[2]] {
        assert!(
            ip.starts_with("10.9") && ip.parse::<std::net::Ipv4Addr>().is_ok(),
            "{ip}"
        );
    }
    let node_port: u16 = a[4]
        .strip_prefix("5678:")
        .and_then(|p| p.strip_suffix("/TCP"))
        .unwrap_or_else(|| panic!("{:?}", a[4]))
        .parse()
        .unwrap();
    assert!((30000..=32767).contains(&node_port));
    assert_eq!(a[6], "app=web");
    // A label change through apply keeps the allocated address.
    let before = c.ok(&["get", "svc", "web2", "-o", "jsonpath={.spec.clusterIP}"]);
    c.ok(&["label", "svc", "web2", "x=y"]);
    assert_eq!(
        c.ok(&["get", "svc", "web2", "-o", "jsonpath={.spec.clusterIP}"]),
        before
    );
}

#[test]
fn events_k8s_io_and_core_events_are_the_same_objects() {
    let c = Cluster::new();
    c.ok(&["apply", "-f", &c.write("pod.yaml", &unscheduled_pod())]);
    let ev = r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"web.2"},
      "eventTime":"2026-11-23T10:00:00.000000Z","reportingController":"armorlet/node","reportingInstance":"vm",
      "action":"Pulling","reason":"Pulling","type":"Normal","note":"Pulling image busybox:1.28",
      "regarding":{"kind":"Pod","namespace":"default","name":"web","apiVersion":"v1"}}"#;
    assert_eq!(
        c.ok(&["create", "-f", &c.write("ev.json", ev)]),
        "event.events.k8s.io/web.2 created\n"
    );
    // The core API reads it with core field names.
    assert_eq!(
        c.ok(&[
            "get",
            "events.v1.",
            "web.2",
            "-o",
            "jsonpath={.apiVersion} {.involvedObject.name} {.message} {.reportingComponent}"
        ]),
        "v1 web Pulling image busybox:1.28 armorlet/node"
    );
    // The events.k8s.io API reads it back as written, and selects on its own field names.
    assert_eq!(
        c.ok(&[
            "get",
            "events.v1.events.k8s.io",
            "--field-selector=regarding.name=web",
            "-o",
            "jsonpath={.items[*].note}"
        ]),
        "Pulling image busybox:1.28"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "events.v1.events.k8s.io",
            "--field-selector=regarding.name=other",
            "-o",
            "name"
        ]),
        ""
    );
}

const SECCOMP_LOCALHOST_NO_PROFILE: &str = "apiVersion: v1
kind: Pod
metadata:
  name: inv-seccomp-localhost-noprofile
spec:
  securityContext:
    seccompProfile:
      type: Localhost
  containers:
  - name: hello
    image: busybox:1.28
";

const SECCOMP_ANNOTATION: &str = "apiVersion: v1
kind: Pod
metadata:
  name: seccomp-annotation
  annotations:
    seccomp.security.alpha.kubernetes.io/pod: runtime/default
spec:
  containers:
  - name: hello
    image: busybox:1.28
";

const AA_MISMATCH: &str = "apiVersion: v1
kind: Pod
metadata:
  name: inv-aa-mismatch
  annotations:
    container.apparmor.security.beta.kubernetes.io/hello: localhost/profile-a
spec:
  containers:
  - name: hello
    image: busybox:1.28
    securityContext:
      appArmorProfile:
        type: Localhost
        localhostProfile: profile-b
";

#[test]
fn invalid_seccomp_profile_is_rejected_with_the_kubernetes_message() {
    let c = Cluster::new();
    let f = c.write(
        "inv-seccomp-localhost-noprofile.yaml",
        SECCOMP_LOCALHOST_NO_PROFILE,
    );
    let out = c.kubectl(&["apply", "-f", &f]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.stderr,
        "The Pod \"inv-seccomp-localhost-noprofile\" is invalid: spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost\n"
    );
    assert_eq!(out.stdout, "");
    let missing = c.kubectl(&["get", "pod", "inv-seccomp-localhost-noprofile"]);
    assert_eq!(missing.code, 1, "{missing:#?}");
}

#[test]
fn apparmor_annotation_field_mismatch_is_rejected() {
    let c = Cluster::new();
    let f = c.write("inv-aa-mismatch.yaml", AA_MISMATCH);
    let out = c.kubectl(&["apply", "-f", &f]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.stderr,
        "The Pod \"inv-aa-mismatch\" is invalid: spec.containers[0].securityContext.appArmorProfile.localhostProfile: Forbidden: apparmor profile in annotation and field must match\n"
    );
}

#[test]
fn seccomp_annotation_warns_and_is_created() {
    let c = Cluster::new();
    let f = c.write("seccomp-annotation.yaml", SECCOMP_ANNOTATION);
    let out = c.kubectl(&["apply", "-f", &f]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.stderr,
        "Warning: metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the \"seccompProfile\" field instead\n"
    );
    assert_eq!(out.stdout, "pod/seccomp-annotation created\n");
    let field = c.ok(&[
        "get",
        "pod",
        "seccomp-annotation",
        "-o",
        "jsonpath={.spec.securityContext.seccompProfile}",
    ]);
    assert_eq!(field, "");
}

#[test]
fn emulated_1_26_copies_the_seccomp_annotation_to_the_field() {
    let c = Cluster::with_args(&["--emulated-version", "1.26"]);
    let f = c.write("seccomp-annotation.yaml", SECCOMP_ANNOTATION);
    let out = c.kubectl(&["apply", "-f", &f]);
    assert_eq!(out.code, 0, "{out:#?}");
    let field = c.ok(&[
        "get",
        "pod",
        "seccomp-annotation",
        "-o",
        "jsonpath={.spec.securityContext.seccompProfile.type}",
    ]);
    assert_eq!(field, "RuntimeDefault");
}

#[test]
fn a_bad_emulated_version_is_a_usage_error_naming_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_armorlet"))
        .args(["up", "--emulated-version", "banana"])
        .output()
        .expect("run armorlet up");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--emulated-version"), "{stderr}");
}

const CRONTAB_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec: {type: string, pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'}
              image: {type: string}
              replicas: {type: integer, minimum: 1, maximum: 10, default: 1}
"#;

/// CustomResourceDefinitions (issue 5): a definition is served at once, its objects are
/// pruned, defaulted and validated against the schema with kube-apiserver's messages, the
/// table has its printer columns, and deleting it removes the resource and its objects.
#[test]
fn custom_resource_definitions_serve_validated_objects() {
    let c = Cluster::new();
    // The Security Profiles Operator's definitions are installed by `armorlet up`.
    let crds = c.ok(&["get", "crd", "-o", "name"]);
    for plural in [
        "seccompprofiles",
        "apparmorprofiles",
        "profilebindings",
        "profilerecordings",
        "securityprofilenodestatuses",
    ] {
        let want = format!(
            "customresourcedefinition.apiextensions.k8s.io/{plural}.security-profiles-operator.x-k8s.io"
        );
        assert!(crds.lines().any(|l| l == want), "{crds}");
    }
    let crd = c.write("crd.yaml", CRONTAB_CRD);
    c.ok(&["apply", "-f", &crd]);
    let status = c.ok(&[
        "get",
        "crd",
        "crontabs.stable.example.com",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status} {.status.storedVersions}",
    ]);
    assert_eq!(status, "True [\"v1\"]");
    let ct = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: cron\nspec:\n  cronSpec: \"* * * * */5\"\n  image: img\n";
    let f = c.write("ct.yaml", ct);
    assert_eq!(
        c.ok(&["apply", "-f", &f]),
        "crontab.stable.example.com/cron created\n"
    );
    let table = c.ok(&["get", "ct"]);
    assert_eq!(
        rows(&table),
        [
            vec!["NAME", "SPEC", "REPLICAS"],
            vec!["cron", "*", "*", "*", "*", "*/5", "1"]
        ],
        "{table}"
    );
    // Unknown fields: refused under kubectl's default strict validation, dropped otherwise.
    let bogus = c.write("bogus.yaml", &format!("{ct}  bogus: 1\n"));
    let out = c.kubectl(&["apply", "-f", &bogus]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("CronTab in version \"v1\" cannot be handled as a CronTab: strict decoding error: unknown field \"spec.bogus\""),
        "{out:#?}"
    );
    c.ok(&["apply", "--validate=false", "-f", &bogus]);
    let spec = c.ok(&["get", "ct", "cron", "-o", "jsonpath={.spec}"]);
    assert!(!spec.contains("bogus"), "{spec}");
    // Schema violations: 422 with the field paths.
    let bad = c.write(
        "bad.yaml",
        &ct.replace("*/5\"", "*/5\"\n  replicas: 11")
            .replace("image: img", "image: 3"),
    );
    let out = c.kubectl(&["apply", "-f", &bad]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("The CronTab \"cron\" is invalid: \n* spec.image: Invalid value: \"integer\": spec.image in body must be of type string: \"integer\"\n* spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
        "{out:#?}"
    );
    let out = c.kubectl(&[
        "apply",
        "-f",
        &c.write("pat.yaml", &ct.replace("* * * * */5", "never")),
    ]);
    assert!(
        out.stderr.contains(
            "spec.cronSpec: Invalid value: \"never\": spec.cronSpec in body should match"
        ),
        "{out:#?}"
    );
    // A definition kube-apiserver would refuse.
    let out = c.kubectl(&[
        "apply",
        "-f",
        &c.write(
            "badcrd.yaml",
            &CRONTAB_CRD.replace("scope: Namespaced", "scope: Galaxy"),
        ),
    ]);
    assert!(
        out.stderr.contains("spec.scope: Unsupported value: \"Galaxy\": supported values: \"Cluster\", \"Namespaced\""),
        "{out:#?}"
    );
    // `kubectl explain` reads the definition's schema from the OpenAPI v3 document.
    let explain = c.ok(&["explain", "ct.spec.replicas"]);
    assert!(explain.contains("KIND:       CronTab"), "{explain}");
    assert!(explain.contains("FIELD: replicas <integer>"), "{explain}");
    c.ok(&["delete", "crd", "crontabs.stable.example.com"]);
    let out = c.kubectl(&["get", "crontabs.stable.example.com"]);
    assert_eq!(out.code, 1, "{out:#?}");
    // Re-created, it starts empty: the objects went with the definition.
    c.ok(&["apply", "-f", &crd]);
    let out = c.ok(&["get", "crontabs.stable.example.com", "-o", "name"]);
    assert_eq!(out, "");
}

/// `kubectl explain` of built-in kinds: kubectl reads the server's OpenAPI v3 documents
/// (the kinds' schemas from k8s-openapi, named as kube-apiserver names them) and prints their
/// descriptions.
#[test]
fn explain_prints_the_upstream_documentation_of_built_in_kinds() {
    let c = Cluster::new();
    let pods = c.ok(&["explain", "pods"]);
    for line in [
        "KIND:       Pod",
        "VERSION:    v1",
        "DESCRIPTION:",
        "    Pod is a collection of containers that can run on a host. This resource is",
        "FIELDS:",
        "  apiVersion\t<string>",
        "  spec\t<PodSpec>",
        "  status\t<PodStatus>",
    ] {
        assert!(
            pods.lines().any(|l| l == line),
            "no line {line:?} in:\n{pods}"
        );
    }
    let sc = c.ok(&["explain", "pod.spec.securityContext"]);
    assert!(
        sc.contains("FIELD: securityContext <PodSecurityContext>"),
        "{sc}"
    );
    assert!(
        sc.contains("PodSecurityContext holds pod-level security attributes and common container"),
        "{sc}"
    );
    for field in [
        "  appArmorProfile\t<AppArmorProfile>",
        "  seccompProfile\t<SeccompProfile>",
        "  runAsNonRoot\t<boolean>",
    ] {
        assert!(sc.lines().any(|l| l == field), "no {field:?} in:\n{sc}");
    }
    let sp = c.ok(&[
        "explain",
        "pod.spec.containers.securityContext.seccompProfile",
    ]);
    assert!(
        sp.contains("FIELD: seccompProfile <SeccompProfile>"),
        "{sp}"
    );
    assert!(
        sp.lines().any(|l| l == "  type\t<string> -required-"),
        "{sp}"
    );
    assert!(
        sp.contains("RuntimeDefault - the container runtime default profile should be used."),
        "{sp}"
    );
    // --recursive lists the nested fields, without descriptions.
    let rec = c.ok(&["explain", "pod.spec.securityContext", "--recursive"]);
    let fields = rec.split("FIELDS:\n").nth(1).expect("FIELDS section");
    let expected_start = "  appArmorProfile\t<AppArmorProfile>\n    localhostProfile\t<string>\n    type\t<string> -required-\n  fsGroup\t<integer>\n";
    assert!(fields.starts_with(expected_start), "{rec}");
    assert!(!fields.contains("indicates"), "no descriptions: {rec}");
    // Named groups.
    for (kind, lines) in [
        ("deployment", ["GROUP:      apps", "KIND:       Deployment"]),
        ("daemonset", ["GROUP:      apps", "KIND:       DaemonSet"]),
        (
            "lease",
            ["GROUP:      coordination.k8s.io", "KIND:       Lease"],
        ),
        (
            "clusterrole",
            [
                "GROUP:      rbac.authorization.k8s.io",
                "KIND:       ClusterRole",
            ],
        ),
    ] {
        let out = c.ok(&["explain", kind]);
        for l in lines {
            assert!(out.lines().any(|x| x == l), "no {l:?} in:\n{out}");
        }
    }
    let ds = c.ok(&[
        "explain",
        "daemonset.spec.template.spec.containers.securityContext.appArmorProfile.type",
    ]);
    assert!(ds.contains("FIELD: type <string>"), "{ds}");
    // A field that does not exist: kubectl's error, exit 1.
    let out = c.kubectl(&["explain", "pod.spec.bogus"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("field \"bogus\" does not exist"),
        "{out:#?}"
    );
}

/// The documents follow `--emulated-version`: `appArmorProfile` (1.30) is not there before.
#[test]
fn explain_follows_the_emulated_release() {
    for (version, has) in [("1.29", false), ("1.30", true)] {
        let c = Cluster::with_args(&["--emulated-version", version]);
        for what in [
            "pod.spec.securityContext",
            "pod.spec.containers.securityContext",
        ] {
            let out = c.ok(&["explain", what]);
            assert_eq!(
                out.lines()
                    .any(|l| l == "  appArmorProfile\t<AppArmorProfile>"),
                has,
                "{version} {what}:\n{out}"
            );
            assert!(
                out.lines()
                    .any(|l| l == "  seccompProfile\t<SeccompProfile>"),
                "{out}"
            );
        }
        let out = c.kubectl(&["explain", "pod.spec.securityContext.appArmorProfile"]);
        assert_eq!(out.code == 0, has, "{version}: {out:#?}");
        if !has {
            assert!(
                out.stderr
                    .contains("field \"appArmorProfile\" does not exist"),
                "{out:#?}"
            );
        }
    }
}

const EVENT: &str = "apiVersion: v1
kind: Event
metadata:
  name: ev
involvedObject:
  kind: Pod
  name: web
  namespace: default
reason: Testing
message: expires
type: Normal
";

/// `--event-ttl`: an Event is deleted its TTL after its last write, and watchers see it
/// `DELETED`, as the expiry of the Event's etcd lease shows.
#[test]
fn events_expire_after_the_event_ttl() {
    let c = Cluster::with_args(&["--event-ttl", "2s"]);
    // `-o json` prints one line per event: `{"type":"ADDED","object":{...}}`.
    let watch = c.watch(&["get", "events", "-w", "--output-watch-events", "-o", "json"]);
    let wait_for = |needle: &str| watch.wait_for(needle);
    c.ok(&["create", "-f", &c.write("ev.yaml", EVENT)]);
    assert!(wait_for("{\"type\":\"ADDED\"").contains("\"name\":\"ev\""));
    // The same storage through events.k8s.io/v1.
    c.ok(&[
        "create",
        "-f",
        &c.write(
            "ev2.yaml",
            "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: ev2\nregarding:\n  kind: Pod\n  name: web\n  namespace: default\nreason: Testing\nnote: expires too\ntype: Normal\naction: Test\nreportingController: test\nreportingInstance: test\neventTime: \"2026-01-01T00:00:00.000000Z\"\n",
        ),
    ]);
    let deleted = [
        wait_for("{\"type\":\"DELETED\""),
        wait_for("{\"type\":\"DELETED\""),
    ];
    for name in ["\"name\":\"ev\"", "\"name\":\"ev2\""] {
        assert!(deleted.iter().any(|l| l.contains(name)), "{deleted:?}");
    }
    let out = c.kubectl(&["get", "events", "-A", "-o", "name"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:#?}");
    let out = c.kubectl(&["get", "event", "ev"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("Error from server (NotFound): events \"ev\" not found"),
        "{out:#?}"
    );
    // A TTL under a second keeps events (no lease at all).
    let c = Cluster::with_args(&["--event-ttl", "0s"]);
    c.ok(&["create", "-f", &c.write("ev.yaml", EVENT)]);
    assert!(c
        .ok(&["get", "event", "ev", "-o", "name"])
        .contains("event/ev"));
}

/// Unknown fields of a built-in kind, as kube-apiserver's decoder treats them: kubectl's
/// default `--validate=strict` gets the strict decoding error, `--validate=warn` a warning per
/// field and the object without them, `--validate=false` the object without them and no word.
#[test]
fn unknown_fields_of_built_in_kinds_follow_field_validation() {
    let c = Cluster::new();
    let bogus = unscheduled_pod()
        .replace("  name: web\n", "  name: web\n  colour: red\n")
        .replace(
            "    - containerPort: 80\n",
            "    - containerPort: 80\n      portal: 1\n",
        );
    let f = c.write("bogus.yaml", &bogus);
    let out = c.kubectl(&["apply", "-f", &f]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("Error from server (BadRequest): error when creating \"")
            && out.stderr.contains("\": Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"metadata.colour\", unknown field \"spec.containers[0].ports[0].portal\""),
        "{out:#?}"
    );
    assert_eq!(c.kubectl(&["get", "pod", "web"]).code, 1);
    let out = c.kubectl(&["apply", "--validate=warn", "-f", &f]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.stdout, "pod/web created\n");
    assert!(
        out.stderr
            .contains("Warning: unknown field \"metadata.colour\"")
            && out
                .stderr
                .contains("Warning: unknown field \"spec.containers[0].ports[0].portal\""),
        "{out:#?}"
    );
    // (kubectl's last-applied-configuration annotation keeps them, as upstream.)
    let stored = c.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.colour}|{.spec.containers[0].ports}",
    ]);
    assert_eq!(stored, "|[{\"containerPort\":80,\"protocol\":\"TCP\"}]");
    // A merge patch with an unknown field (kubectl patch sends no fieldValidation: the server's
    // default, Warn): dropped with a warning.
    let out = c.kubectl(&[
        "patch",
        "pod",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"nonsense":true},"metadata":{"labels":{"x":"y"}}}"#,
    ]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.stderr, "Warning: unknown field \"spec.nonsense\"\n",
        "{out:#?}"
    );
    let stored = c.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.spec.nonsense}|{.metadata.labels.x}",
    ]);
    assert_eq!(stored, "|y");
}
