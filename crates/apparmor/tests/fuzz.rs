//! Property/fuzz tests on the parser: arbitrary bytes, AppArmor-like token
//! soup and mutated corpus files must never panic and must finish in
//! bounded time; pathological inputs (deep nesting, huge alternations,
//! variable blow-up, include cycles, 10 MB files, NUL bytes) must come back
//! as clear errors.
//!
//! The corpus is `shared/oracles/apparmor/simple_tests`, found at
//! `$CARGO_MANIFEST_DIR/../../../shared` or `$ARMORLET_SHARED`. The number
//! of generated cases is scaled by `ARMORLET_FUZZ_SCALE` (default 1: a few
//! thousand cases in total, well under a minute in a debug build).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use armorlet_apparmor::{load_file, parse_str, Diagnostic, ParseOptions, Severity};
use armorlet_fuzzkit::{bounded, scale};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Upper bound for one generated input. Generous: a debug build on a
/// shared 2-core machine; a hang or quadratic blow-up is far above it.
const CASE_LIMIT: Duration = Duration::from_secs(5);
/// Upper bound for one pathological input (wall clock, while the other
/// tests of this binary run in parallel on a loaded machine).
const PATHOLOGICAL_LIMIT: Duration = Duration::from_secs(60);

fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("ARMORLET_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    assert!(
        dir.join("oracles/apparmor/simple_tests").is_dir(),
        "the shared corpus is missing: {} has no oracles/apparmor/simple_tests \
         (set ARMORLET_SHARED to the shared/ directory)",
        dir.display()
    );
    dir
}

fn simple_tests() -> PathBuf {
    shared_dir().join("oracles/apparmor/simple_tests")
}

fn opts() -> ParseOptions {
    let mut o = ParseOptions::default();
    o.include_dirs.push(simple_tests());
    o
}

fn collect_sd(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_sd(&p, out);
        } else if p.extension().is_some_and(|e| e == "sd") {
            out.push(p);
        }
    }
}

/// Every corpus file, read once.
fn corpus() -> &'static [(PathBuf, Vec<u8>)] {
    static CORPUS: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut files = Vec::new();
        collect_sd(&simple_tests(), &mut files);
        assert!(
            files.len() > 1000,
            "expected the simple_tests corpus (~1800 .sd files), found {}",
            files.len()
        );
        files
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (p, b)
            })
            .collect()
    })
}

fn check_diags(diags: &[Diagnostic]) -> Result<(), String> {
    for d in diags {
        if d.message.trim().is_empty() {
            return Err(format!("diagnostic with an empty message at {}", d.span));
        }
    }
    Ok(())
}

fn parse_bounded(src: String, limit: Duration) -> Result<Vec<Diagnostic>, String> {
    let diags = bounded(limit, move || {
        let (_policy, diags) = parse_str(&src, "fuzz.sd", &opts());
        diags
    })?;
    check_diags(&diags)?;
    Ok(diags)
}

/// Loads a file; a [`armorlet_apparmor::LoadError`] is turned into an
/// error diagnostic so that callers see one kind of result.
fn load_diags(path: &Path, o: &ParseOptions) -> Vec<Diagnostic> {
    match load_file(path, o) {
        Ok((_policy, diags)) => diags,
        Err(e) => vec![Diagnostic {
            severity: Severity::Error,
            span: armorlet_apparmor::Span {
                file: path.display().to_string().into(),
                line: 0,
                column: 0,
            },
            message: e.to_string(),
        }],
    }
}

fn load_bounded(path: PathBuf, limit: Duration) -> Result<Vec<Diagnostic>, String> {
    let diags = bounded(limit, move || load_diags(&path, &opts()))?;
    check_diags(&diags)?;
    Ok(diags)
}

fn prop(r: Result<Vec<Diagnostic>, String>, input: &str) -> Result<(), TestCaseError> {
    r.map(|_| ())
        .map_err(|e| TestCaseError::fail(format!("{e}\ninput: {input:?}")))
}

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh scratch directory (removed by [`TempDir`]'s drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("armorlet-fuzz-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a scratch directory");
        TempDir(p)
    }
    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).expect("writing a scratch file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Tokens for the soup. Paths are chosen so that `include PATH` never
/// names an existing host file or directory (that would make the test
/// depend on the machine: `include /tmp/` reads every file in /tmp).
const TOKENS: &[&str] = &[
    "profile",
    "hat",
    "^",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "+=",
    "->",
    "<",
    ">",
    "\"",
    "#include",
    "include",
    "if exists",
    "abi",
    "<abi/4.0>",
    "<tunables/global>",
    "alias",
    "@{HOME}",
    "@{VAR}",
    "@{",
    "$",
    "$foo",
    "if",
    "else",
    "defined",
    "not",
    "and",
    "or",
    "true",
    "false",
    "flags=",
    "(complain)",
    "attach_disconnected",
    "audit",
    "deny",
    "allow",
    "owner",
    "other",
    "quiet",
    "priority=",
    "10",
    "-5",
    "file",
    "link",
    "subset",
    "capability",
    "sys_admin",
    "network",
    "inet",
    "stream",
    "tcp",
    "ip=",
    "port=",
    "peer=",
    "mount",
    "umount",
    "remount",
    "pivot_root",
    "options=",
    "fstype=",
    "signal",
    "set=",
    "ptrace",
    "unix",
    "dbus",
    "bus=",
    "rlimit",
    "set rlimit",
    "nofile",
    "<=",
    "change_profile",
    "userns",
    "io_uring",
    "mqueue",
    "all",
    "/x",
    "/**",
    "/*",
    "/nonexistent-dir/",
    "/{a,b}",
    "rw",
    "r",
    "w",
    "ix",
    "Px",
    "cx",
    "pix",
    "Cux",
    "mrwlk",
    "\\",
    "\n",
    " ",
    "\t",
    "#",
    "# comment\n",
    "\\\n",
    "\0",
    "é",
    "\u{fffd}",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(TOKENS).prop_map(str::to_owned),
            // no '/': `include /some/dir` would read a host directory
            1 => "[ -.0-~]{1,8}",
        ],
        0..120,
    )
    .prop_map(|toks| toks.join(" "))
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, tok: &'static str },
    Duplicate { at: usize, len: usize },
    Flip { at: usize, byte: u8 },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, prop::sample::select(TOKENS)).prop_map(|(at, tok)| Mutation::Insert { at, tok }),
        (at, 1..200usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = b.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
        match *m {
            Mutation::Delete { at, len } => {
                let s = pos(at);
                let e = (s + len).min(n);
                b.drain(s..e);
            }
            Mutation::Insert { at, tok } => {
                let s = pos(at);
                b.splice(s..s, tok.bytes());
            }
            Mutation::Duplicate { at, len } => {
                let s = pos(at);
                let e = (s + len).min(n);
                let chunk = b[s..e].to_vec();
                b.splice(e..e, chunk);
            }
            Mutation::Flip { at, byte } => {
                if n > 0 {
                    b[at % n] = byte;
                }
            }
            Mutation::Truncate { at } => b.truncate(pos(at)),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 768 * scale(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes, through the string entry point (lossy UTF-8).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let src = String::from_utf8_lossy(&bytes).into_owned();
        prop(parse_bounded(src.clone(), CASE_LIMIT), &src)?;
    }

    /// AppArmor-like tokens in random order.
    #[test]
    fn token_soup_never_panics(src in token_soup()) {
        prop(parse_bounded(src.clone(), CASE_LIMIT), &src)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1536 * scale(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Corpus files with a few random edits.
    #[test]
    fn mutated_corpus_never_panics(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = corpus();
        let (path, bytes) = &files[pick.index(files.len())];
        let src = String::from_utf8_lossy(&apply(bytes.clone(), &muts)).into_owned();
        let label = format!("{} with {:?}", path.display(), muts);
        prop(parse_bounded(src, CASE_LIMIT), &label)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128 * scale(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes through the file entry point (no UTF-8 guarantee).
    #[test]
    fn arbitrary_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = TempDir::new("bytes");
        let p = dir.write("input.sd", &bytes);
        prop(load_bounded(p, CASE_LIMIT), &String::from_utf8_lossy(&bytes))?;
    }
}

/// Every corpus file as is: no panic, bounded time.
#[test]
fn whole_corpus_parses_without_panic() {
    let mut failures = Vec::new();
    for (path, _) in corpus() {
        if let Err(e) = load_bounded(path.clone(), CASE_LIMIT) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn errors(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

/// Must be rejected with at least one error, without panic, in bounded time.
fn expect_error(what: &str, src: String) -> Vec<Diagnostic> {
    let diags = parse_bounded(src, PATHOLOGICAL_LIMIT).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        !errors(&diags).is_empty(),
        "{what}: expected an error, got {diags:?}"
    );
    diags
}

/// Must not panic and must finish; an error is fine, acceptance too.
fn expect_no_panic(what: &str, src: String) -> Vec<Diagnostic> {
    parse_bounded(src, PATHOLOGICAL_LIMIT).unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[test]
fn deep_brace_nesting_is_an_error() {
    expect_error("100k open braces", "{".repeat(100_000));
    expect_error(
        "100k nested profile blocks, unclosed",
        "profile a ".to_owned() + &"{ profile b ".repeat(100_000),
    );
    expect_error(
        "100k nested parentheses in flags",
        format!("profile a flags=({}) {{}}", "(".repeat(100_000)),
    );
    expect_error(
        "100k nested conditionals, unclosed",
        format!("$b = true\nprofile a {{ {} }}", "if $b { ".repeat(100_000)),
    );
}

#[test]
fn deep_hat_nesting_terminates() {
    let n = 10_000;
    let src = format!("profile a {{ {}{} }}", "^h { ".repeat(n), "} ".repeat(n));
    expect_no_panic("10k nested hats", src);
}

#[test]
fn deep_alternation_nesting_is_an_error() {
    // upstream stops at 50 levels ("Exceeded maximum nesting of {}")
    let n = 10_000;
    let src = format!(
        "profile a {{ /x/{}b{} r, }}",
        "{a,".repeat(n),
        "}".repeat(n)
    );
    expect_error("10k nested alternations in a path", src);
}

#[test]
fn huge_alternations_terminate() {
    let alts: Vec<String> = (0..100_000).map(|i| format!("f{i}")).collect();
    let src = format!("profile a {{ /data/{{{}}} r, }}", alts.join(","));
    expect_no_panic("100k-way alternation", src);
    // 2^40 combinations if expanded naively
    let src = format!("profile a {{ {} r, }}", "/{a,b}".repeat(40));
    expect_no_panic("40 chained 2-way alternations", src);
}

#[test]
fn variable_blowup_is_an_error() {
    // @{v0} has 2 values, @{vN} = @{vN-1}@{vN-1}... → 2^(2^k) words, or
    // with spaces 2^k values: unbounded if expanded naively.
    let mut src = String::from("@{v0} = a b\n");
    for i in 1..=40 {
        src.push_str(&format!("@{{v{i}}} = @{{v{j}}} @{{v{j}}}x\n", j = i - 1));
    }
    src.push_str("profile a { /@{v40} r, }\n");
    expect_error("2^40 variable values", src);
}

/// Upstream accepts recursive includes (each file is included once:
/// `include_tests/recursive_2.sd` and `recursive_3.sd` are PASS tests, and
/// apparmor_parser 3.0.8 accepts a two-file cycle too). So a cycle must
/// terminate, without panic, with the included rules present.
#[test]
fn include_cycles_terminate_and_are_accepted_like_upstream() {
    let dir = TempDir::new("cycle");
    dir.write("a", "include <b>\n");
    dir.write("b", "include <a>\n@{V} = /v\n");
    dir.write("self", "#include <self>\n/from/self r,\n");
    let main = dir.write("main.sd", "include <a>\nprofile p { @{V} r, }\n");
    let self_main = dir.write("self_main.sd", "profile p {\n #include <self>\n}\n");
    let mut o = ParseOptions::default();
    o.include_dirs.push(dir.0.clone());
    for (path, rule) in [(main, "@{V}"), (self_main, "/from/self")] {
        let o = o.clone();
        let shown = path.display().to_string();
        let result = bounded(PATHOLOGICAL_LIMIT, move || {
            load_file(&path, &o).map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
        let (policy, diags) = result.unwrap_or_else(|e| panic!("{shown}: {e}"));
        check_diags(&diags).unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert!(errors(&diags).is_empty(), "{shown}: {diags:?}");
        let profile = &policy.profiles[0];
        let found = profile.rules.iter().any(|r| match &r.kind {
            armorlet_apparmor::ast::RuleKind::File(f) => {
                f.path.as_ref().is_some_and(|p| p.raw == rule)
            }
            _ => false,
        });
        assert!(found, "{shown}: rule {rule} missing: {:?}", profile.rules);
    }
}

#[test]
fn ten_megabyte_junk_is_an_error() {
    let junk = "a".repeat(10 << 20);
    expect_error("10 MB of 'a'", junk.clone());
    let dir = TempDir::new("big");
    let p = dir.write("big.sd", junk.as_bytes());
    let diags = load_bounded(p, PATHOLOGICAL_LIMIT).unwrap_or_else(|e| panic!("10 MB file: {e}"));
    assert!(!errors(&diags).is_empty(), "10 MB junk file accepted");
}

#[test]
fn ten_megabyte_of_comments_terminates() {
    let mut src = "# a comment line that is long enough to fill the file quickly\n".repeat(180_000);
    src.push_str("profile big {\n  /srv/** r,\n}\n");
    assert!(src.len() > 10 << 20);
    expect_no_panic("10 MB of comments", src);
}

#[test]
fn one_megabyte_profile_terminates() {
    let mut src = String::from("profile big {\n");
    let mut i = 0;
    while src.len() < 1 << 20 {
        src.push_str(&format!("  /srv/data/dir{i}/** rw,\n"));
        i += 1;
    }
    src.push_str("}\n");
    expect_no_panic("1 MB profile", src);
}

/// A NUL byte outside a token is an error (apparmor_parser: "Lexer found
/// unexpected character ... (0x0)"). Inside a path apparmor_parser 3.0.8
/// accepts it, so there only termination without panic is required.
#[test]
fn nul_bytes_are_handled() {
    expect_error("only NULs", "\0".repeat(1000));
    expect_error(
        "NUL between rules",
        "profile a {\n \0 /tmp/x r,\n}\n".into(),
    );
    expect_no_panic("NUL in a path", "profile a { /tmp/\0x r, }".into());
    let dir = TempDir::new("nul");
    let p = dir.write("nul.sd", b"\0profile a {\n  /tmp/x r,\n}\n");
    let diags = load_bounded(p, PATHOLOGICAL_LIMIT).unwrap_or_else(|e| panic!("NUL file: {e}"));
    assert!(!errors(&diags).is_empty(), "NUL byte accepted: {diags:?}");
}

#[test]
fn invalid_utf8_file_is_handled() {
    let dir = TempDir::new("utf8");
    let p = dir.write("bad.sd", b"profile a {\n  /tmp/\xff\xfe r,\n}\n");
    load_bounded(p, PATHOLOGICAL_LIMIT).unwrap_or_else(|e| panic!("invalid UTF-8 file: {e}"));
}

#[test]
fn missing_file_is_an_error() {
    let dir = TempDir::new("missing");
    let diags = load_bounded(dir.0.join("nope.sd"), PATHOLOGICAL_LIMIT)
        .unwrap_or_else(|e| panic!("missing file: {e}"));
    assert!(!errors(&diags).is_empty(), "a missing file gave no error");
}
