//! Bounded in-suite fuzzing of the seccomp JSON loader and everything behind it:
//! `Profile::from_slice` → `validate` → `resolve` → `policy` → `compile`, and the
//! compiled program through the BPF interpreter.
//!
//! Inputs: arbitrary bytes, JSON-shaped token soup, byte-level and structure-aware
//! (JSON tree) mutations of the seed profiles in `testdata/fuzz/seccomp/` (moby's and
//! containers/common's defaults and moby's fixtures), randomly generated profiles, and
//! the hand-written edge cases of `testdata/fuzz/seccomp/edge/`, each with the outcome
//! it must have. Every case runs on a worker thread with panics caught and a time bound.
//!
//! Properties, for every input: no panic; an error is one of the crate's typed errors
//! with a non-empty message; a program, when one is produced, has 1..=4096
//! instructions, no jump leaves it and no instruction falls off its end, and the
//! interpreter ends in a `ret` whose value is the model's decision for every syscall
//! number tried. The number of generated cases is scaled by `ARMORLET_FUZZ_SCALE`
//! (default 1); the main test prints one summary line (`--nocapture` shows it).

use armorlet_fuzzkit::{bounded, corpus_dir, run, scale};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use armorlet_seccomp::bpf::{self, op, SockFilter, MAX_INSNS};
use armorlet_seccomp::record::Recording;
use armorlet_seccomp::resolve::{ResolveContext, ALL_CAPS, DEFAULT_CAPS};
use armorlet_seccomp::{syscalls, Arch, Error, Profile, SeccompData, MAX_PROFILE_BYTES};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Upper bound for one generated input (release or debug build, loaded 2-core machine).
const CASE_LIMIT: Duration = Duration::from_secs(10);
/// Upper bound for one pathological input (10 MB strings, 100k-deep nesting).
const PATHOLOGICAL_LIMIT: Duration = Duration::from_secs(60);

/// The `*.json` files of `dir` (none if it does not exist), sorted by name.
fn json_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading {}: {e}", dir.display()),
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// The seed profiles (top level of the corpus directory): real profiles that compile.
fn seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let s = json_files(&corpus_dir("seccomp"));
        assert!(
            s.len() >= 4,
            "expected the seed profiles in {}, found {}",
            corpus_dir("seccomp").display(),
            s.len()
        );
        s
    })
}

/// Every corpus file: seeds, edge cases and regression inputs.
fn corpus() -> &'static [(String, Vec<u8>)] {
    static ALL: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = seeds().to_vec();
        for sub in ["edge", "regressions"] {
            for (name, bytes) in json_files(&corpus_dir("seccomp").join(sub)) {
                all.push((format!("{sub}/{name}"), bytes));
            }
        }
        all
    })
}

// ---------------------------------------------------------------------------
// The harness: bounded cases, panic counting, one summary line.

/// Counts cases, panics and what the pipeline made of the inputs.
#[derive(Default)]
struct Stats {
    cases: AtomicUsize,
    panics: AtomicUsize,
    parse_errors: AtomicUsize,
    invalid: AtomicUsize,
    valid: AtomicUsize,
    /// Valid inputs that gave at least one program.
    compiled: AtomicUsize,
}

impl Stats {
    /// Counts one finished case.
    fn record(&self, r: &Result<Outcome, String>) {
        self.cases.fetch_add(1, Ordering::Relaxed);
        let counter = match r {
            Err(e) if e.starts_with("PANIC") => &self.panics,
            Err(_) => return,
            Ok(Outcome::Parse(_)) => &self.parse_errors,
            Ok(Outcome::Invalid(_)) => &self.invalid,
            Ok(Outcome::Valid { results }) => {
                if results.iter().any(Result::is_ok) {
                    self.compiled.fetch_add(1, Ordering::Relaxed);
                }
                &self.valid
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One input through the pipeline on a bounded worker.
fn fuzz_one(bytes: Vec<u8>, limit: Duration) -> Result<Outcome, String> {
    bounded(limit, move || pipeline(&bytes)).and_then(|r| r)
}

// ---------------------------------------------------------------------------
// The pipeline and its properties.

/// What the pipeline made of an input.
#[derive(Debug)]
enum Outcome {
    /// `from_slice` refused it (the error's text).
    Parse(String),
    /// `validate` refused it.
    Invalid(String),
    /// It validated; per context, the program's length or the compile error's text.
    Valid { results: Vec<Result<usize, String>> },
}

/// The contexts each validated profile is compiled for: the node's default container,
/// a privileged arm64 container on an old kernel, and a capability-less x86 one.
fn contexts() -> Vec<ResolveContext> {
    vec![
        ResolveContext::new(
            Arch::X86_64,
            DEFAULT_CAPS.iter().copied(),
            "6.1".parse().unwrap(),
        ),
        ResolveContext::new(
            Arch::Aarch64,
            ALL_CAPS.iter().copied(),
            "4.0".parse().unwrap(),
        ),
        ResolveContext::new(Arch::X86, Vec::<String>::new(), "3.10".parse().unwrap()),
    ]
}

fn pipeline(bytes: &[u8]) -> Result<Outcome, String> {
    let profile = match Profile::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => {
            let text = e.to_string();
            if text.trim().is_empty() {
                return Err(format!("parse error with an empty message: {e:?}"));
            }
            if !matches!(e, Error::Parse { .. } | Error::TooLarge { .. }) {
                return Err(format!("from_slice returned a non-parse error: {e:?}"));
            }
            return Ok(Outcome::Parse(text));
        }
    };
    // What the node's operator does with an unvalidated profile (merging recordings).
    let _ = Recording::from_profile(&profile, "fuzz");
    match profile.validate() {
        Err(e) => {
            let text = e.to_string();
            match &e {
                Error::Invalid { path, message } if !path.is_empty() && !message.is_empty() => {}
                _ => return Err(format!("validate returned {e:?}")),
            }
            // The unvalidated profile must still not crash resolve/policy/compile.
            for ctx in contexts() {
                let _refused_or_program = compile_checked(&profile, &ctx, false)?;
            }
            Ok(Outcome::Invalid(text))
        }
        Ok(warnings) => {
            for w in &warnings {
                if w.path.is_empty() || w.message.is_empty() {
                    return Err(format!("warning without path or message: {w:?}"));
                }
            }
            let mut results = Vec::new();
            for ctx in contexts() {
                results.push(compile_checked(&profile, &ctx, true)?);
            }
            Ok(Outcome::Valid { results })
        }
    }
}

/// Resolves, builds the model and compiles for `ctx`; checks the program. For a
/// validated profile the interpreter must also agree with the model.
fn compile_checked(
    profile: &Profile,
    ctx: &ResolveContext,
    validated: bool,
) -> Result<Result<usize, String>, String> {
    let resolved = profile.resolve(ctx);
    if resolved.architectures.first() != Some(&ctx.arch) {
        return Err(format!(
            "resolve: native {:?} is not first in {:?}",
            ctx.arch, resolved.architectures
        ));
    }
    let policy = match resolved.policy() {
        Ok(p) => p,
        Err(e @ Error::UnsupportedArch(_)) => return Ok(Err(e.to_string())),
        Err(e @ Error::Invalid { .. }) if !validated => return Ok(Err(e.to_string())),
        Err(e) => return Err(format!("policy() failed with an unexpected error: {e:?}")),
    };
    let prog = match policy.compile() {
        Ok(p) => p,
        Err(e @ Error::ProgramTooLong { .. }) => return Ok(Err(e.to_string())),
        Err(e) => return Err(format!("compile() failed with an unexpected error: {e:?}")),
    };
    check_shape(&prog)?;
    // What the node computes for loading.
    let _ = policy.load_flags();
    let mut tokens: Vec<u32> = policy.sections.iter().map(|s| s.audit_arch).collect();
    tokens.push(0xdead_beef); // an architecture the filter does not cover
    for &token in &tokens {
        let known: Vec<u32> = policy
            .sections
            .iter()
            .filter(|s| s.audit_arch == token)
            .flat_map(|s| s.syscalls.keys().copied())
            .take(48)
            .collect();
        for nr in known.into_iter().chain([
            0,
            1,
            2,
            59,
            231,
            0x3fff_ffff,
            0x4000_0000,
            0x4000_003b,
            u32::MAX,
        ]) {
            for args in [
                [0u64; 6],
                [1, 2, 3, 4, 5, 6],
                [u64::MAX; 6],
                [1 << 32, 0x7e02_0000, 1 << 63, 0xffff_ffff, 7, 1],
            ] {
                let d = SeccompData {
                    nr,
                    arch: token,
                    instruction_pointer: 0x1000,
                    args,
                };
                let run = bpf::interpret(&prog, &d).map_err(|e| {
                    format!(
                        "interpreting the program for nr {nr} arch {token:#x}: {e}\n{}",
                        bpf::disassemble(&prog)
                    )
                })?;
                if validated {
                    let model = policy.decide(&d);
                    if model.ret != run.ret {
                        return Err(format!(
                            "nr {nr} arch {token:#x} args {args:?}: BPF returns {:#x}, the model {:#x} ({:?})",
                            run.ret, model.ret, model.reason
                        ));
                    }
                }
            }
        }
    }
    Ok(Ok(prog.len()))
}

/// Static checks the kernel's `sk_chk_filter` also makes: a non-empty program within
/// the limit, known opcodes, loads inside `seccomp_data`, every jump target inside
/// the program, and no instruction but `ret` at the end (jumps only go forward, so
/// this means no path falls off).
fn check_shape(prog: &[SockFilter]) -> Result<(), String> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(format!("program of {} instructions", prog.len()));
    }
    let len = prog.len();
    for (pc, ins) in prog.iter().enumerate() {
        let bad = |what: &str| {
            Err(format!(
                "instruction {pc} ({ins:?}): {what}\n{}",
                bpf::disassemble(prog)
            ))
        };
        match ins.code & 0x07 {
            op::RET => continue,
            op::JMP => {
                let targets: Vec<usize> = if ins.code & 0xf0 == op::JA {
                    vec![pc + 1 + ins.k as usize]
                } else {
                    vec![pc + 1 + usize::from(ins.jt), pc + 1 + usize::from(ins.jf)]
                };
                if targets.iter().any(|&t| t >= len) {
                    return bad("jumps out of the program");
                }
                continue;
            }
            op::LD if ins.code == op::LD | op::W | op::ABS => {
                if ins.k % 4 != 0 || ins.k > 60 {
                    return bad("loads outside seccomp_data");
                }
            }
            op::ALU => {}
            _ => return bad("an opcode the compiler does not emit"),
        }
        if pc + 1 >= len {
            return bad("falls off the end of the program");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Input generators.

/// Tokens for the JSON-shaped soup: structure, every field name the model knows,
/// every action/operator/arch/flag spelling, and awkward numbers and strings.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"defaultAction\"",
    "\"defaultErrnoRet\"",
    "\"architectures\"",
    "\"archMap\"",
    "\"architecture\"",
    "\"subArchitectures\"",
    "\"syscalls\"",
    "\"names\"",
    "\"name\"",
    "\"action\"",
    "\"errnoRet\"",
    "\"args\"",
    "\"index\"",
    "\"value\"",
    "\"valueTwo\"",
    "\"op\"",
    "\"comment\"",
    "\"includes\"",
    "\"excludes\"",
    "\"caps\"",
    "\"arches\"",
    "\"minKernel\"",
    "\"flags\"",
    "\"listenerPath\"",
    "\"listenerMetadata\"",
    "\"SCMP_ACT_ALLOW\"",
    "\"SCMP_ACT_ERRNO\"",
    "\"SCMP_ACT_KILL\"",
    "\"SCMP_ACT_KILL_PROCESS\"",
    "\"SCMP_ACT_KILL_THREAD\"",
    "\"SCMP_ACT_TRAP\"",
    "\"SCMP_ACT_TRACE\"",
    "\"SCMP_ACT_LOG\"",
    "\"SCMP_ACT_NOTIFY\"",
    "\"SCMP_ACT_FOO\"",
    "\"SCMP_CMP_EQ\"",
    "\"SCMP_CMP_NE\"",
    "\"SCMP_CMP_LT\"",
    "\"SCMP_CMP_LE\"",
    "\"SCMP_CMP_GE\"",
    "\"SCMP_CMP_GT\"",
    "\"SCMP_CMP_MASKED_EQ\"",
    "\"SCMP_ARCH_X86_64\"",
    "\"SCMP_ARCH_X86\"",
    "\"SCMP_ARCH_X32\"",
    "\"SCMP_ARCH_AARCH64\"",
    "\"SCMP_ARCH_ARM\"",
    "\"SCMP_ARCH_S390X\"",
    "\"SCMP_ARCH_VAX\"",
    "\"amd64\"",
    "\"arm64\"",
    "\"SECCOMP_FILTER_FLAG_LOG\"",
    "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"",
    "\"CAP_SYS_ADMIN\"",
    "\"4.8\"",
    "\"5.x\"",
    "\"read\"",
    "\"socket\"",
    "\"ipc\"",
    "\"clone\"",
    "\"personality\"",
    "\"frobnicate\"",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\",
    "\"",
    "0",
    "1",
    "5",
    "6",
    "-1",
    "38",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e400",
    "1.5",
    "-0",
    "null",
    "true",
    "false",
    " ",
    "\n",
    "\u{feff}",
    "\0",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(TOKENS).prop_map(str::to_owned),
            1 => "[ -~]{1,8}",
        ],
        0..160,
    )
    .prop_map(|t| t.concat())
}

/// A soup wrapped in a profile's outer shape, so it gets past the first bytes more often.
fn shaped_soup() -> impl Strategy<Value = String> {
    token_soup()
        .prop_map(|s| format!("{{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{s}]}}"))
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Delete { at: usize, len: usize },
    Insert { at: usize, tok: &'static str },
    Duplicate { at: usize, len: usize },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..40usize).prop_map(|(at, len)| ByteEdit::Delete { at, len }),
        (at, prop::sample::select(TOKENS)).prop_map(|(at, tok)| ByteEdit::Insert { at, tok }),
        (at, 1..400usize).prop_map(|(at, len)| ByteEdit::Duplicate { at, len }),
        (at, any::<u8>()).prop_map(|(at, byte)| ByteEdit::Set { at, byte }),
        at.prop_map(|at| ByteEdit::Truncate { at }),
    ]
}

fn apply_bytes(mut b: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        let n = b.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
        match *e {
            ByteEdit::Delete { at, len } => {
                let s = pos(at);
                b.drain(s..(s + len).min(n));
            }
            ByteEdit::Insert { at, tok } => {
                let s = pos(at);
                b.splice(s..s, tok.bytes());
            }
            ByteEdit::Duplicate { at, len } => {
                let s = pos(at);
                let e = (s + len).min(n);
                let chunk = b[s..e].to_vec();
                b.splice(e..e, chunk);
            }
            ByteEdit::Set { at, byte } => {
                if n > 0 {
                    b[at % n] = byte;
                }
            }
            ByteEdit::Truncate { at } => b.truncate(pos(at)),
        }
    }
    b
}

/// Field names inserted by tree mutations.
const FIELDS: &[&str] = &[
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "archMap",
    "architecture",
    "subArchitectures",
    "syscalls",
    "names",
    "name",
    "action",
    "errnoRet",
    "args",
    "index",
    "value",
    "valueTwo",
    "op",
    "comment",
    "includes",
    "excludes",
    "caps",
    "arches",
    "minKernel",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "unknownField",
];

/// Values put in place of a node: wrong types, boundaries, other enum spellings.
fn interesting(pick: usize) -> Value {
    let all = [
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(5),
        json!(6),
        json!(255),
        json!(256),
        json!(65536),
        json!(u32::MAX),
        json!(u64::from(u32::MAX) + 1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5),
        json!(""),
        json!("SCMP_ACT_ALLOW"),
        json!("SCMP_ACT_ERRNO"),
        json!("SCMP_ACT_NOTIFY"),
        json!("SCMP_ACT_TRACE"),
        json!("SCMP_ACT_KILL_PROCESS"),
        json!("SCMP_ACT_FOO"),
        json!("SCMP_CMP_MASKED_EQ"),
        json!("SCMP_CMP_LT"),
        json!("SCMP_ARCH_X32"),
        json!("SCMP_ARCH_ARM"),
        json!("SCMP_ARCH_MIPS"),
        json!("arm64"),
        json!("4.8"),
        json!("4"),
        json!("99999999999.1"),
        json!("read"),
        json!("socketcall"),
        json!("ipc"),
        json!("shmat"),
        json!("frobnicate"),
        json!("CAP_SYS_ADMIN"),
        json!("SECCOMP_FILTER_FLAG_TSYNC"),
        json!("x".repeat(4096)),
        json!([]),
        json!({}),
        json!(["read", "read", "write", ""]),
        json!([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]),
        json!([{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]),
        json!([{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]),
        json!([{"index": 1, "value": 2, "op": "SCMP_CMP_NE"}, {"index": 1, "value": 3, "op": "SCMP_CMP_LE"}]),
        json!({"caps": ["CAP_SYS_ADMIN"], "arches": ["amd64"], "minKernel": "4.8"}),
        json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"}),
        json!([
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM"
        ]),
        json!([{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}]),
        // 100 levels: under serde_json's recursion limit of 128 when alone.
        serde_json::from_str(&format!("{}{}", "[".repeat(100), "]".repeat(100))).unwrap(),
    ];
    all[pick % all.len()].clone()
}

#[derive(Debug, Clone)]
enum TreeEdit {
    /// Replace the node with an interesting value.
    Replace { node: usize, value: usize },
    /// Remove the node from its parent.
    Remove { node: usize },
    /// Duplicate an array element (or the node's parent array's element) `times` times.
    Duplicate { node: usize, times: usize },
    /// Add a field to an object node (or its parent).
    AddField {
        node: usize,
        field: usize,
        value: usize,
    },
    /// Swap the node with another node's value.
    Swap { a: usize, b: usize },
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    let n = any::<usize>();
    prop_oneof![
        4 => (n, n).prop_map(|(node, value)| TreeEdit::Replace { node, value }),
        2 => n.prop_map(|node| TreeEdit::Remove { node }),
        2 => (n, 1..300usize).prop_map(|(node, times)| TreeEdit::Duplicate { node, times }),
        3 => (n, n, n).prop_map(|(node, field, value)| TreeEdit::AddField { node, field, value }),
        1 => (n, n).prop_map(|(a, b)| TreeEdit::Swap { a, b }),
    ]
}

/// JSON pointers of every node of `v`, root first.
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(c, format!("{here}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn parent_of(ptr: &str) -> Option<(&str, &str)> {
    ptr.rsplit_once('/')
}

fn apply_tree(mut doc: Value, edits: &[TreeEdit]) -> Value {
    for e in edits {
        let mut ptrs = Vec::new();
        pointers(&doc, String::new(), &mut ptrs);
        let at = |i: usize| ptrs[i % ptrs.len()].clone();
        match *e {
            TreeEdit::Replace { node, value } => {
                if let Some(slot) = doc.pointer_mut(&at(node)) {
                    *slot = interesting(value);
                }
            }
            TreeEdit::Remove { node } => {
                let p = at(node);
                let Some((parent, key)) = parent_of(&p) else {
                    continue;
                };
                match doc.pointer_mut(parent) {
                    Some(Value::Object(m)) => {
                        m.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(i) = key.parse::<usize>() {
                            if i < a.len() {
                                a.remove(i);
                            }
                        }
                    }
                    _ => {}
                }
            }
            TreeEdit::Duplicate { node, times } => {
                let p = at(node);
                let target = match doc.pointer(&p) {
                    Some(Value::Array(_)) => p.clone(),
                    _ => parent_of(&p)
                        .map(|(q, _)| q.to_string())
                        .unwrap_or_default(),
                };
                if let Some(Value::Array(a)) = doc.pointer_mut(&target) {
                    if let Some(first) = a.first().cloned() {
                        a.extend(std::iter::repeat_n(first, times));
                    }
                }
            }
            TreeEdit::AddField { node, field, value } => {
                let p = at(node);
                let target = match doc.pointer(&p) {
                    Some(Value::Object(_)) => p.clone(),
                    _ => parent_of(&p)
                        .map(|(q, _)| q.to_string())
                        .unwrap_or_default(),
                };
                if let Some(Value::Object(m)) = doc.pointer_mut(&target) {
                    m.insert(FIELDS[field % FIELDS.len()].into(), interesting(value));
                }
            }
            TreeEdit::Swap { a, b } => {
                let (pa, pb) = (at(a), at(b));
                // Only between nodes where neither contains the other.
                if pa.starts_with(&pb) || pb.starts_with(&pa) {
                    continue;
                }
                let (Some(va), Some(vb)) = (doc.pointer(&pa).cloned(), doc.pointer(&pb).cloned())
                else {
                    continue;
                };
                *doc.pointer_mut(&pa).unwrap() = vb;
                *doc.pointer_mut(&pb).unwrap() = va;
            }
        }
    }
    doc
}

fn seed_trees() -> &'static [(String, Value)] {
    static T: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    T.get_or_init(|| {
        seeds()
            .iter()
            .map(|(n, b)| {
                let v = serde_json::from_slice(b).unwrap_or_else(|e| panic!("seed {n}: {e}"));
                (n.clone(), v)
            })
            .collect()
    })
}

/// A random but well-formed profile: known and unknown names, every action and
/// operator, argument indexes around the limit, includes/excludes, several arches.
fn generated_profile() -> impl Strategy<Value = Value> {
    const ACTIONS: &[&str] = &[
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_LOG",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_NOTIFY",
    ];
    const OPS: &[&str] = &[
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    const ARCHES: &[&str] = &[
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
    ];
    let names: Vec<&'static str> = syscalls::all(Arch::X86_64)
        .iter()
        .map(|(n, _)| *n)
        .chain([
            "socketcall",
            "ipc",
            "shmat",
            "recvmmsg_time64",
            "frobnicate",
            "",
        ])
        .collect();
    let arg = (
        prop_oneof![4 => 0u32..6, 1 => 6u32..8],
        prop_oneof![Just(0u64), Just(u64::MAX), Just(1u64 << 32), any::<u64>()],
        any::<u64>(),
        prop::sample::select(OPS),
    )
        .prop_map(|(i, v, v2, op)| json!({"index": i, "value": v, "valueTwo": v2, "op": op}));
    let rule = (
        prop::collection::vec(prop::sample::select(names), 0..4),
        prop::sample::select(ACTIONS),
        prop::option::of(0u32..70_000),
        prop::collection::vec(arg, 0..4),
        prop::option::of(prop_oneof![
            Just(json!({"caps": ["CAP_SYS_ADMIN"]})),
            Just(json!({"arches": ["arm64"]})),
            Just(json!({"minKernel": "5.8"})),
        ]),
    )
        .prop_map(|(names, action, errno, args, cond)| {
            let mut r = json!({"names": names, "action": action, "args": args});
            if let Some(e) = errno {
                r["errnoRet"] = json!(e);
            }
            if let Some(c) = cond {
                r["includes"] = c;
            }
            r
        });
    (
        prop::sample::select(&ACTIONS[..7]),
        prop::collection::vec(prop::sample::select(ARCHES), 0..4),
        prop::collection::vec(rule, 0..24),
    )
        .prop_map(|(default, arches, rules)| {
            json!({"defaultAction": default, "architectures": arches, "syscalls": rules})
        })
}

// ---------------------------------------------------------------------------
// The tests.

/// The main fuzz run: every generator, then the whole corpus; one summary line.
#[test]
fn fuzz_seccomp_pipeline() {
    let start = Instant::now();
    let s = scale();
    let mut failures = Vec::new();
    let st = Stats::default();
    let as_prop = |bytes: Vec<u8>| {
        let r = fuzz_one(bytes, CASE_LIMIT);
        st.record(&r);
        r.map(|_| ())
    };

    failures.extend(run(
        "arbitrary bytes",
        1000 * s,
        prop::collection::vec(any::<u8>(), 0..2048),
        as_prop,
    ));
    failures.extend(run("token soup", 1200 * s, token_soup(), |t| {
        as_prop(t.into_bytes())
    }));
    failures.extend(run("shaped token soup", 1200 * s, shaped_soup(), |t| {
        as_prop(t.into_bytes())
    }));
    failures.extend(run(
        "byte-mutated seeds",
        1500 * s,
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(byte_edit(), 1..6),
        ),
        |(pick, edits)| {
            let (_, bytes) = &seeds()[pick.index(seeds().len())];
            as_prop(apply_bytes(bytes.clone(), &edits))
        },
    ));
    failures.extend(run(
        "tree-mutated seeds",
        2000 * s,
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(tree_edit(), 1..5),
        ),
        |(pick, edits)| {
            let (_, tree) = &seed_trees()[pick.index(seed_trees().len())];
            as_prop(serde_json::to_vec(&apply_tree(tree.clone(), &edits)).unwrap())
        },
    ));
    failures.extend(run(
        "generated profiles",
        1000 * s,
        generated_profile(),
        |v| as_prop(serde_json::to_vec(&v).unwrap()),
    ));
    for (name, bytes) in corpus() {
        if let Err(e) = as_prop(bytes.clone()) {
            failures.push(format!("corpus {name}: {e}"));
        }
    }

    let cases = st.cases.load(Ordering::Relaxed);
    let panics = st.panics.load(Ordering::Relaxed);
    let compiled = st.compiled.load(Ordering::Relaxed);
    println!(
        "fuzz: seccomp: {cases} cases in {:.1} s, {panics} panics ({} parse errors, {} invalid, {compiled} compiled)",
        start.elapsed().as_secs_f64(),
        st.parse_errors.load(Ordering::Relaxed),
        st.invalid.load(Ordering::Relaxed),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(panics, 0);
    // The structure-aware generators must reach the compiler, not only the JSON parser
    // (about one case in nine does; one in twenty is the floor).
    assert!(
        compiled * 20 >= cases,
        "only {compiled} of {cases} cases reached the compiler"
    );
}

/// The seed profiles are real profiles: each compiles for every context.
#[test]
fn seeds_compile() {
    for (name, bytes) in seeds() {
        match fuzz_one(bytes.clone(), CASE_LIMIT) {
            Ok(Outcome::Valid { results }) => {
                for r in results {
                    assert!(r.is_ok(), "{name}: {r:?}");
                }
            }
            other => panic!("seed {name}: {other:?}"),
        }
    }
}

/// What each hand-written edge case of `testdata/fuzz/seccomp/edge/` must give:
/// `parse:`/`invalid:` and the start of the error, `compiled` (a program for every
/// context) or `refused:` and what every context's compile error says.
const EDGE_EXPECTATIONS: &[(&str, &str)] = &[
    (
        "arg-index-6.json",
        "invalid:syscalls[0].args[0].index: argument index 6 is out of range 0..=5",
    ),
    (
        "arg-index-u32-max.json",
        "invalid:syscalls[0].args[0].index: argument index 4294967295 is out of range 0..=5",
    ),
    (
        "arg-index-overflow.json",
        "parse:syscalls[0].args[0].index: invalid value",
    ),
    (
        "arg-value-negative.json",
        "parse:syscalls[0].args[0].value: invalid value",
    ),
    (
        "arg-value-float.json",
        "parse:syscalls[0].args[0].value: invalid type",
    ),
    (
        "unknown-action.json",
        "parse:syscalls[1].action: unknown action \"SCMP_ACT_FOO\"",
    ),
    (
        "unknown-default-action.json",
        "parse:defaultAction: unknown action",
    ),
    (
        "unknown-operator.json",
        "parse:syscalls[0].args[0].op: unknown operator",
    ),
    (
        "unknown-arch.json",
        "parse:architectures[0]: unknown architecture",
    ),
    (
        "notify-default.json",
        "invalid:defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
    ),
    (
        "errnoret-on-allow.json",
        "invalid:syscalls[0].errnoRet: an errno value is not allowed with action SCMP_ACT_ALLOW",
    ),
    (
        "default-errnoret-on-allow.json",
        "invalid:defaultErrnoRet: an errno value is not allowed with default action SCMP_ACT_ALLOW",
    ),
    (
        "errnoret-negative.json",
        "parse:syscalls[0].errnoRet: invalid value",
    ),
    ("errnoret-huge.json", "compiled"),
    (
        "empty-names.json",
        "invalid:syscalls[0].names: a rule needs at least one syscall name",
    ),
    ("empty-name-string.json", "compiled"),
    ("duplicated-syscalls.json", "compiled"),
    (
        "duplicate-key.json",
        "parse:duplicate field `defaultAction`",
    ),
    ("null-fields.json", "compiled"),
    (
        "missing-default-action.json",
        "parse:missing field `defaultAction`",
    ),
    (
        "wrong-type-names.json",
        "parse:syscalls[0].names: invalid type",
    ),
    (
        "unsupported-arch.json",
        "refused:no syscall table for architecture SCMP_ARCH_S390X",
    ),
    ("masked-eq-zero-mask.json", "compiled"),
    (
        "bad-min-kernel.json",
        "parse:syscalls[0].includes.minKernel: invalid kernel version",
    ),
    ("trailing-garbage.json", "parse:trailing characters"),
    ("empty.json", "parse:EOF while parsing"),
];

fn expect(name: &str, bytes: Vec<u8>, want: &str, limit: Duration) {
    let got = fuzz_one(bytes, limit).unwrap_or_else(|e| panic!("{name}: {e}"));
    let ok = match (&got, want.split_once(':')) {
        (Outcome::Parse(m), Some(("parse", prefix))) => m.starts_with(prefix),
        (Outcome::Invalid(m), Some(("invalid", prefix))) => m.starts_with(prefix),
        (Outcome::Valid { results }, None) => {
            want == "compiled" && results.iter().all(Result::is_ok)
        }
        (Outcome::Valid { results }, Some(("refused", text))) => results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.contains(text))),
        _ => false,
    };
    assert!(ok, "{name}: expected {want}, got {got:?}");
}

/// Every edge-case file has an expectation and meets it.
#[test]
fn edge_cases_have_their_outcome() {
    let dir = corpus_dir("seccomp").join("edge");
    let files = json_files(&dir);
    let expected: BTreeMap<&str, &str> = EDGE_EXPECTATIONS.iter().copied().collect();
    for (name, _) in &files {
        assert!(
            expected.contains_key(name.as_str()),
            "{}/{name} has no expectation in EDGE_EXPECTATIONS",
            dir.display()
        );
    }
    assert_eq!(
        files.len(),
        expected.len(),
        "files missing from {}",
        dir.display()
    );
    for (name, bytes) in files {
        expect(&name, bytes, expected[name.as_str()], CASE_LIMIT);
    }
}

/// Duplicated rules and every syscall of an arch with arguments: compiles or is too
/// long for the kernel, never a broken program.
#[test]
fn huge_rule_sets_compile_or_are_too_long() {
    let rule = json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"});
    let dup = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": vec![rule; 5000]});
    expect(
        "5000 identical rules",
        serde_json::to_vec(&dup).unwrap(),
        "compiled",
        PATHOLOGICAL_LIMIT,
    );
    let names: Vec<&str> = syscalls::all(Arch::X86_64)
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let rules: Vec<Value> = (0..6)
        .map(|i| {
            json!({"names": names, "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": i, "value": i + 1, "op": "SCMP_CMP_NE"}]})
        })
        .collect();
    let all = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules});
    let got = fuzz_one(serde_json::to_vec(&all).unwrap(), PATHOLOGICAL_LIMIT)
        .unwrap_or_else(|e| panic!("every syscall with arguments: {e}"));
    let Outcome::Valid { results } = got else {
        panic!("every syscall with arguments: {got:?}")
    };
    assert!(
        results.iter().any(|r| r
            .as_ref()
            .is_err_and(|e| e.contains("more than the kernel's limit of 4096"))),
        "expected ProgramTooLong for some context: {results:?}"
    );
}

#[test]
fn ten_megabyte_strings_are_refused_before_parsing() {
    let big = "a".repeat(10 << 20);
    for (what, text) in [
        (
            "10 MB comment",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "comment": big}).to_string(),
        ),
        (
            "10 MB syscall name",
            json!({"defaultAction": "SCMP_ACT_ERRNO",
                   "syscalls": [{"names": [big], "action": "SCMP_ACT_ALLOW"}]})
            .to_string(),
        ),
        (
            "10 MB of whitespace",
            format!(
                "{{\"defaultAction\":\"SCMP_ACT_ERRNO\"{}}}",
                " ".repeat(10 << 20)
            ),
        ),
    ] {
        expect(
            what,
            text.into_bytes(),
            "parse:profile is 104",
            PATHOLOGICAL_LIMIT,
        );
    }
    // Just under the limit: a 1000 KB name is an unknown syscall (a warning), not a crash.
    let name = "b".repeat(MAX_PROFILE_BYTES - 1000);
    let text = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": [name], "action": "SCMP_ACT_ALLOW"}]})
    .to_string();
    assert!(text.len() <= MAX_PROFILE_BYTES);
    expect(
        "1000 KB syscall name",
        text.into_bytes(),
        "compiled",
        PATHOLOGICAL_LIMIT,
    );
}

#[test]
fn deep_nesting_is_a_parse_error() {
    let n = 100_000;
    let cases = [
        ("100k [", "[".repeat(n)),
        ("100k {\"a\":", "{\"a\":".repeat(n)),
        (
            "deep comment",
            format!(
                "{{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"comment\":{}{}}}",
                "{\"a\":".repeat(n),
                "}".repeat(n)
            ),
        ),
    ];
    for (what, text) in cases {
        let got = fuzz_one(text.into_bytes(), PATHOLOGICAL_LIMIT)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(matches!(got, Outcome::Parse(_)), "{what}: {got:?}");
    }
    // serde_json skips an unknown field without recursion: 100k levels there are
    // accepted (the 1 MiB input limit bounds them), without a stack overflow.
    let text = format!(
        "{{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"x\":{}1{}}}",
        "[".repeat(n),
        "]".repeat(n)
    );
    let got = fuzz_one(text.into_bytes(), PATHOLOGICAL_LIMIT)
        .unwrap_or_else(|e| panic!("deep unknown field: {e}"));
    assert!(
        matches!(&got, Outcome::Valid { results } if results.iter().all(Result::is_ok)),
        "deep unknown field: {got:?}"
    );
}

#[test]
fn non_json_encodings_are_parse_errors() {
    let profile = r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#;
    let utf16: Vec<u8> = profile.encode_utf16().flat_map(u16::to_le_bytes).collect();
    for (what, bytes) in [
        ("UTF-8 BOM", [b"\xef\xbb\xbf".as_slice(), profile.as_bytes()].concat()),
        ("UTF-16", utf16),
        ("NUL bytes", vec![0; 4096]),
        ("invalid UTF-8 in a string", br#"{"defaultAction":"SCMP_ACT_ERRNO","comment":"\xff\xfe"}"#.to_vec()),
        ("lone surrogate", br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["\ud800"],"action":"SCMP_ACT_ALLOW"}]}"#.to_vec()),
    ] {
        let got = fuzz_one(bytes, CASE_LIMIT).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(matches!(got, Outcome::Parse(_)), "{what}: {got:?}");
    }
}

/// Found by this fuzzer: a profile that skipped `validate` with an argument index past 5
/// compiled to a program loading outside `seccomp_data` (and `decide` indexed out of range).
/// `policy()` now refuses it with validate's error.
#[test]
fn unvalidated_argument_indexes_are_refused_by_policy() {
    let dir = corpus_dir("seccomp").join("regressions");
    let bytes = std::fs::read(dir.join("unvalidated-arg-index-6.json")).unwrap();
    let profile = Profile::from_slice(&bytes).unwrap();
    assert!(profile.validate().is_err());
    for ctx in contexts() {
        match profile.resolve(&ctx).policy() {
            Err(Error::Invalid { path, message }) => {
                assert_eq!(path, "syscalls[0].args[0].index");
                assert_eq!(message, "argument index 6 is out of range 0..=5");
            }
            other => panic!("{:?}: {other:?}", ctx.arch),
        }
    }
}
