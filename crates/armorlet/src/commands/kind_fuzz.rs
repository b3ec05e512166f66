//! Bounded in-suite fuzzing of the kind `Cluster` config parser ([`KindCluster::parse`], what
//! `armorlet up --config` reads).
//!
//! Inputs: the seed configs of `testdata/fuzz/kind/` (the tutorials' and the tests' configs),
//! mutated as YAML trees (wrong types, unknown fields, huge lists, aliases, tags) and as bytes,
//! YAML-token soup inside a kind header, and the hand-written edge cases of
//! `testdata/fuzz/kind/edge/` with the outcome each must have (alias bombs among them: the
//! classic "billion laughs" and the quadratic expansion serde_yaml does not bound on its own).
//! Every case runs on a worker thread with panics caught and a time bound.
//!
//! Properties: no panic; an error has a message; an accepted config has nodes with unique
//! kind names, absolute `containerPath`s without `..`, existing absolute host paths, only the
//! feature gates armorlet implements, and the control-plane label on control-plane nodes.
//!
//! A small seeded generator (xorshift) drives the mutations (the binary crate has no proptest);
//! `ARMORLET_FUZZ_SEED` replays a run, `ARMORLET_FUZZ_SCALE` (default 1) scales it. The main
//! test prints one summary line (`--nocapture` shows it).

use armorlet_fuzzkit::{bounded, corpus_dir, scale};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_yaml::{Mapping, Value};

use super::{KindCluster, Role, CONTROL_PLANE_LABEL, KNOWN_GATES};

/// Upper bound for one input (release or debug build, loaded 2-core machine).
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// The `*.yaml` files of `dir` (none if it does not exist), sorted by name.
fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading {}: {e}", dir.display()),
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect()
}

fn seeds() -> Vec<(String, String)> {
    let s = yaml_files(&corpus_dir("kind"));
    assert!(
        s.len() >= 4,
        "expected the seed configs in {}, found {}",
        corpus_dir("kind").display(),
        s.len()
    );
    s
}

/// The directory configs are parsed in: `./profiles` exists, as in the tutorial.
fn cwd() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("a scratch directory");
    std::fs::create_dir(d.path().join("profiles")).expect("creating profiles/");
    d
}

// ---------------------------------------------------------------------------
// The harness.

/// What the parser made of an input: the cluster, or the error's full text.
type Parsed = Result<KindCluster, String>;

/// Parses `text` on a bounded worker and checks the properties of the result.
fn fuzz_one(text: String, cwd: &Path) -> Result<Parsed, String> {
    let dir = cwd.to_path_buf();
    let parsed = bounded(CASE_LIMIT, move || {
        KindCluster::parse(&text, &dir).map_err(|e| format!("{e:#}"))
    })?;
    match &parsed {
        Err(e) if e.trim().is_empty() => return Err("an error without a message".into()),
        Err(_) => {}
        Ok(c) => check_cluster(c)?,
    }
    Ok(parsed)
}

fn check_cluster(c: &KindCluster) -> Result<(), String> {
    if c.nodes.is_empty() {
        return Err("an accepted config without nodes".into());
    }
    let mut names = BTreeSet::new();
    for n in &c.nodes {
        let role = match n.role {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        };
        let base = format!("{}-{role}", c.name);
        let suffix = n.name.strip_prefix(&base);
        if !suffix.is_some_and(|s| s.is_empty() || s.parse::<u64>().is_ok_and(|i| i >= 2)) {
            return Err(format!("node name {:?} is not kind's {base}[N]", n.name));
        }
        if !names.insert(n.name.clone()) {
            return Err(format!("node name {:?} twice", n.name));
        }
        // (A node-labels flag may put the label on a worker too.)
        if n.role == Role::ControlPlane && !n.labels.contains_key(CONTROL_PLANE_LABEL) {
            return Err(format!("control-plane {} without its label", n.name));
        }
        for m in &n.mounts {
            let node_path = m.node_path.to_string_lossy();
            if !m.node_path.is_absolute() || node_path.split('/').any(|s| s == "..") {
                return Err(format!("{}: mount at {node_path:?}", n.name));
            }
            if !m.host_path.is_absolute() || !m.host_path.exists() {
                return Err(format!("{}: host path {:?}", n.name, m.host_path));
            }
        }
        for (g, _) in &n.feature_gates {
            if !KNOWN_GATES.contains(&g.as_str()) {
                return Err(format!("{}: unknown gate {g} kept", n.name));
            }
        }
    }
    for (g, _) in &c.feature_gates {
        if !KNOWN_GATES.contains(&g.as_str()) {
            return Err(format!("unknown cluster gate {g} kept"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The generator.

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    std::env::var("ARMORLET_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Field names of the kind config, of kubeadm patches and of nothing at all.
const FIELDS: &[&str] = &[
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "role",
    "image",
    "labels",
    "extraMounts",
    "hostPath",
    "containerPath",
    "readOnly",
    "propagation",
    "extraPortMappings",
    "featureGates",
    "networking",
    "serviceSubnet",
    "podSubnet",
    "apiServerAddress",
    "apiServerPort",
    "ipFamily",
    "kubeadmConfigPatches",
    "nodeRegistration",
    "kubeletExtraArgs",
    "seccompDefault",
    "SeccompDefault",
    "AppArmor",
    "frobnicate",
];

/// Values put in place of a node: wrong types, enum spellings, paths, patches, big things.
fn interesting(rng: &mut Rng) -> Value {
    let choice = rng.below(40);
    let s = |t: &str| Value::String(t.into());
    match choice {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => Value::Bool(false),
        3 => Value::from(0),
        4 => Value::from(-1),
        5 => Value::from(65535),
        6 => Value::from(65536),
        7 => Value::from(u64::MAX),
        8 => Value::from(1.5),
        9 => Value::from(f64::NAN),
        10 => s(""),
        11 => s("control-plane"),
        12 => s("worker"),
        13 => s("master"),
        14 => s("Cluster"),
        15 => s("kind.x-k8s.io/v1alpha4"),
        16 => s("./profiles"),
        17 => s("/"),
        18 => s("/var/lib/kubelet/seccomp/profiles"),
        19 => s("../.."),
        20 => s("/a/../b"),
        21 => s("relative/path"),
        22 => s("127.0.0.1"),
        23 => s("::1"),
        24 => s("10.96.0.0/12"),
        25 => s("ipv6"),
        26 => s("kind: KubeletConfiguration\nseccompDefault: true\nfeatureGates:\n  AppArmor: false\n"),
        27 => s("kind: JoinConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    feature-gates: A=true,SeccompDefault=false\n    node-labels: a=b,,c\n"),
        28 => s("kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n  - name: seccomp-default\n    value: \"true\"\n  - {}\n"),
        29 => s("kind: [\n"),
        30 => s("a: &a [x, x]\nb: [*a, *a]\n---\nkind: KubeletConfiguration\n"),
        31 => s(&"x".repeat(100_000)),
        32 => Value::Sequence(Vec::new()),
        33 => Value::Mapping(Mapping::new()),
        34 => Value::Sequence(vec![Value::Null; rng.below(5000)]),
        35 => Value::Sequence(
            (0..rng.below(3000))
                .map(|_| {
                    let mut m = Mapping::new();
                    m.insert(s("role"), s(if rng.below(2) == 0 { "worker" } else { "control-plane" }));
                    Value::Mapping(m)
                })
                .collect(),
        ),
        36 => Value::Mapping(
            (0..rng.below(3000))
                .map(|i| (s(&format!("k{i}")), s("v")))
                .collect(),
        ),
        37 => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new("Cluster"),
            value: s("worker"),
        })),
        38 => {
            let mut m = Mapping::new();
            m.insert(s("SeccompDefault"), Value::Bool(true));
            m.insert(s("Unknown"), s("true"));
            Value::Mapping(m)
        }
        _ => {
            let mut m = Mapping::new();
            m.insert(s("hostPath"), s("./profiles"));
            m.insert(s("containerPath"), s("/p"));
            Value::Sequence(vec![Value::Mapping(m)])
        }
    }
}

/// Every node of `v` as a path of keys and indexes.
#[derive(Debug, Clone)]
enum Step {
    Key(Value),
    Index(usize),
}

fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Mapping(m) => {
            for (k, c) in m {
                here.push(Step::Key(k.clone()));
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Sequence(s) => {
            for (i, c) in s.iter().enumerate() {
                here.push(Step::Index(i));
                paths(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut cur = v;
    for step in path {
        cur = match (step, cur) {
            (Step::Key(k), Value::Mapping(m)) => m.get_mut(k)?,
            (Step::Index(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A few random edits of a YAML tree.
fn mutate_tree(mut doc: Value, rng: &mut Rng) -> Value {
    for _ in 0..1 + rng.below(4) {
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        let path = rng.pick(&all).clone();
        match rng.below(6) {
            0 | 1 => {
                if let Some(slot) = at_mut(&mut doc, &path) {
                    *slot = interesting(rng);
                }
            }
            2 => {
                // Remove the node from its parent.
                if let Some((last, parent)) = path.split_last() {
                    match (last, at_mut(&mut doc, parent)) {
                        (Step::Key(k), Some(Value::Mapping(m))) => {
                            m.remove(k);
                        }
                        (Step::Index(i), Some(Value::Sequence(s))) if *i < s.len() => {
                            s.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            3 => {
                // Add a field (known or not) to the node or its parent mapping.
                let field = Value::String((*rng.pick(FIELDS)).into());
                let value = interesting(rng);
                let target = match at_mut(&mut doc, &path) {
                    Some(Value::Mapping(_)) => path.as_slice(),
                    _ => path.split_last().map_or(&[][..], |(_, p)| p),
                };
                if let Some(Value::Mapping(m)) = at_mut(&mut doc, target) {
                    m.insert(field, value);
                }
            }
            4 => {
                // Repeat a list's first element (huge node lists, duplicated mounts).
                let times = 1 + rng.below(2000);
                let target = match at_mut(&mut doc, &path) {
                    Some(Value::Sequence(_)) => path.as_slice(),
                    _ => path.split_last().map_or(&[][..], |(_, p)| p),
                };
                if let Some(Value::Sequence(s)) = at_mut(&mut doc, target) {
                    if let Some(first) = s.first().cloned() {
                        s.extend(std::iter::repeat_n(first, times));
                    }
                }
            }
            _ => {
                // Turn a scalar into a key of the same text (wrong-type keys).
                if let Some(slot) = at_mut(&mut doc, &path) {
                    let mut m = Mapping::new();
                    m.insert(slot.clone(), Value::Null);
                    *slot = Value::Mapping(m);
                }
            }
        }
    }
    doc
}

/// YAML syntax, kind words and anchors for the token soup and byte edits.
const TOKENS: &[&str] = &[
    "\n",
    "\n- ",
    "\n  ",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ", ",
    "? ",
    "|\n  ",
    ">-\n  ",
    "&a ",
    "*a",
    "&b [*a, *a, *a, *a]",
    "<<: *a",
    "!!str ",
    "!!binary ",
    "!Tag ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "# c\n",
    "\t",
    "'",
    "\"",
    "\\",
    "~",
    "null",
    "true",
    "yes",
    "0x1F",
    "1e400",
    ".nan",
    "role",
    "worker",
    "control-plane",
    "nodes",
    "extraMounts",
    "hostPath",
    "containerPath",
    "./profiles",
    "/var/lib/kubelet",
    "featureGates",
    "SeccompDefault",
    "networking",
    "apiServerPort",
    "kubeadmConfigPatches",
    "kubeletExtraArgs",
    "\u{feff}",
    "\u{1}",
    "é",
];

fn token_soup(rng: &mut Rng) -> String {
    let mut s = String::from("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n");
    for _ in 0..rng.below(120) {
        let t: &&str = rng.pick(TOKENS);
        s.push_str(t);
    }
    s
}

fn mutate_text(text: &str, rng: &mut Rng) -> String {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(5) {
        let n = b.len();
        let at = rng.below(n + 1);
        match rng.below(5) {
            0 => {
                let end = (at + 1 + rng.below(40)).min(n);
                b.drain(at..end);
            }
            1 => {
                let t = rng.pick(TOKENS).as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + 1 + rng.below(200)).min(n);
                let chunk = b[at..end].to_vec();
                b.splice(end..end, chunk);
            }
            3 if n > 0 => b[at % n] = rng.next() as u8,
            _ => b.truncate(at),
        }
    }
    // `parse` takes text: invalid UTF-8 is the loader's business (see `load_refuses_bad_files`).
    String::from_utf8_lossy(&b).into_owned()
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn fuzz_kind_config() {
    let start = Instant::now();
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = cwd();
    let seeds = seeds();
    let trees: Vec<Value> = seeds
        .iter()
        .map(|(n, t)| serde_yaml::from_str(t).unwrap_or_else(|e| panic!("seed {n}: {e}")))
        .collect();
    let (mut cases, mut accepted, mut panics) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let mut run = |what: &str, text: String| {
        cases += 1;
        match fuzz_one(text.clone(), dir.path()) {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(_)) => {}
            Err(e) => {
                if e.starts_with("PANIC") {
                    panics += 1;
                }
                if failures.len() < 5 {
                    let shown: String = text.chars().take(4000).collect();
                    failures.push(format!("{what}: {e}\ninput:\n{shown}"));
                }
            }
        }
    };
    for (name, text) in &seeds {
        run(&format!("seed {name}"), text.clone());
    }
    for (name, text) in yaml_files(&corpus_dir("kind").join("regressions")) {
        run(&format!("regression {name}"), text);
    }
    for _ in 0..1500 * scale() {
        let i = rng.below(trees.len());
        let doc = mutate_tree(trees[i].clone(), &mut rng);
        // (serde_yaml cannot write every tree, e.g. a tagged value as a key: skipped)
        if let Ok(text) = serde_yaml::to_string(&doc) {
            run(&format!("tree-mutated {}", seeds[i].0), text);
        }
    }
    for _ in 0..1500 * scale() {
        let i = rng.below(seeds.len());
        let text = mutate_text(&seeds[i].1, &mut rng);
        run(&format!("byte-mutated {}", seeds[i].0), text);
    }
    for _ in 0..1000 * scale() {
        let text = token_soup(&mut rng);
        run("token soup", text);
    }
    println!(
        "fuzz: kind: {cases} cases in {:.1} s, {panics} panics ({accepted} accepted; seed {seed})",
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "seed {seed} (ARMORLET_FUZZ_SEED={seed} replays it):\n{}",
        failures.join("\n\n")
    );
    // The tree mutations keep many configs valid: the checks on accepted configs ran.
    assert!(
        accepted * 20 >= cases,
        "only {accepted} of {cases} accepted"
    );
}

/// What each file of `testdata/fuzz/kind/edge/` must give: `err:` and parts of the error
/// (separated by `|`), `ok`, or `warn:` and a part of one warning.
const EDGE_EXPECTATIONS: &[(&str, &str)] = &[
    ("aliased-long-string.yaml", "err:not valid YAML|the YAML expands to more than|excessive aliasing"),
    ("bad-address.yaml", "err:networking.apiServerAddress: \"localhost\" is not an IP address"),
    ("bad-gate.yaml", "err:featureGates.SeccompDefault: expected true or false"),
    ("bad-port.yaml", "err:networking.apiServerPort: expected a port number"),
    ("billion-laughs.yaml", "err:not valid YAML|excessive aliasing"),
    ("control-character.yaml", "err:not valid YAML: control characters are not allowed"),
    ("deep-nesting.yaml", "err:not valid YAML: recursion limit exceeded"),
    ("dotdot-container-path.yaml", "err:must be an absolute path without \"..\""),
    ("duplicate-key.yaml", "err:not valid YAML: duplicate entry with key \"kind\""),
    ("empty-nodes.yaml", "err:nodes: expected a non-empty list of nodes"),
    ("empty.yaml", "err:the document: expected a mapping"),
    ("float-port.yaml", "err:networking.apiServerPort: expected a port number"),
    ("ipv6.yaml", "err:networking.ipFamily: \"ipv6\" is not supported"),
    ("kubelet-extra-args-wrong.yaml", "err:kubeletExtraArgs: expected a map or a list"),
    ("missing-host-path.yaml", "err:nodes[0].extraMounts[0].hostPath: \"./does-not-exist\""),
    ("multiple-documents.yaml", "err:not valid YAML: deserializing from YAML containing more than one document is not supported"),
    ("non-string-key.yaml", "err:a key is not a string"),
    ("not-a-mapping.yaml", "err:the document: expected a mapping"),
    ("null-nodes.yaml", "ok"),
    ("patch-alias-bomb.yaml", "err:kubeadmConfigPatches: a patch is not valid YAML|the YAML expands to more than"),
    ("patch-not-yaml.yaml", "err:kubeadmConfigPatches: a patch is not valid YAML"),
    ("quadratic-aliases.yaml", "err:not valid YAML|the YAML expands to more than 100000 values"),
    ("read-only-not-bool.yaml", "err:nodes[0].extraMounts[0].readOnly: expected true or false"),
    ("relative-container-path.yaml", "err:nodes[0].extraMounts[0].containerPath: \"var/lib\" must be an absolute path"),
    ("seccomp-default-bad.yaml", "err:--seccomp-default=\"maybe\": expected true or false"),
    ("tagged-role.yaml", "err:nodes[0].role: expected a string"),
    ("unknown-fields.yaml", "warn:nodes[0].extraMounts[0].nope: not used by armorlet (ignored)"),
    ("wrong-api-version.yaml", "err:apiVersion: expected \"kind.x-k8s.io/v1alpha4\""),
    ("wrong-type-nodes.yaml", "err:nodes: expected a non-empty list of nodes"),
    ("wrong-type-role.yaml", "err:nodes[0].role: expected a string"),
];

#[test]
fn edge_cases_have_their_outcome() {
    let dir = cwd();
    let files = yaml_files(&corpus_dir("kind").join("edge"));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<&str> = EDGE_EXPECTATIONS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected, "edge files and EDGE_EXPECTATIONS differ");
    for ((name, text), (_, want)) in files.into_iter().zip(EDGE_EXPECTATIONS) {
        let got = fuzz_one(text, dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ok = match (&got, want.split_once(':')) {
            (Err(e), Some(("err", parts))) => parts.split('|').all(|p| e.contains(p)),
            (Ok(_), None) => *want == "ok",
            (Ok(c), Some(("warn", part))) => c.warnings.iter().any(|w| w.contains(part)),
            _ => false,
        };
        assert!(ok, "{name}: expected {want}, got {got:?}");
    }
}

/// Every seed config is a valid config.
#[test]
fn seeds_are_accepted() {
    let dir = cwd();
    for (name, text) in seeds() {
        let got = fuzz_one(text, dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got.is_ok(), "seed {name}: {got:?}");
    }
}

/// Huge but honest configs: thousands of nodes and labels are accepted; past the value
/// budget the config is refused with a clear error, never an unbounded allocation.
#[test]
fn huge_lists_are_accepted_or_refused_clearly() {
    let dir = cwd();
    let head = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";
    let patch = "kubeadmConfigPatches:\n- |\n  kind: JoinConfiguration\n  nodeRegistration:\n    kubeletExtraArgs:\n      node-labels: a=b\n";
    let nodes = format!("{head}{patch}nodes:\n{}", "- role: worker\n".repeat(5000));
    let c = fuzz_one(nodes, dir.path())
        .unwrap_or_else(|e| panic!("5000 nodes: {e}"))
        .unwrap_or_else(|e| panic!("5000 nodes: {e}"));
    assert_eq!(c.nodes.len(), 5000);
    assert_eq!(c.nodes[4999].name, "kind-worker5000");
    assert_eq!(c.nodes[4999].labels.get("a").map(String::as_str), Some("b"));
    let labels: String = (0..5000).map(|i| format!("    l{i}: v{i}\n")).collect();
    let c = fuzz_one(
        format!("{head}nodes:\n- role: worker\n  labels:\n{labels}"),
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("5000 labels: {e}"))
    .unwrap_or_else(|e| panic!("5000 labels: {e}"));
    assert_eq!(c.nodes[0].labels.len(), 5000);
    let e = fuzz_one(
        format!("{head}x: [{}]\n", "1, ".repeat(200_000)),
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("200k values: {e}"))
    .unwrap_err();
    assert!(e.contains("expands to more than 100000 values"), "{e}");
}

/// A quadratic alias bomb of 120 KB: 400 million values for serde_yaml alone (tens of GB).
#[test]
fn a_large_alias_bomb_is_refused() {
    let dir = cwd();
    let n = 20_000;
    let text = format!(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\na: &a [{}x]\nb: [{}*a]\n",
        "x, ".repeat(n),
        "*a, ".repeat(n)
    );
    let e = fuzz_one(text, dir.path())
        .unwrap_or_else(|e| panic!("alias bomb: {e}"))
        .unwrap_err();
    assert!(e.contains("excessive aliasing"), "{e}");
}

#[test]
fn load_refuses_bad_files() {
    let dir = cwd();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        b"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: \xff\n",
    )
    .unwrap();
    let e = format!("{:#}", KindCluster::load(&bad, dir.path()).unwrap_err());
    assert!(e.contains("reading") && e.contains("UTF-8"), "{e}");
    let e = format!(
        "{:#}",
        KindCluster::load(dir.path(), dir.path()).unwrap_err()
    );
    assert!(e.contains("reading"), "{e}");
}
