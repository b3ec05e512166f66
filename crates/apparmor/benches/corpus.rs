//! Corpus benchmark: parse+validate every `simple_tests` profile with our
//! library (in process), with `apparmor_parser -QK`, and with our binary
//! (`armorlet apparmor check`, one process per file, to compare like with
//! like since apparmor_parser pays process start-up), all in the same run.
//! Prints per-profile mean and median for each and the ratios.
//!
//! Run: `cargo build --release -p armorlet && cargo bench -p armorlet-apparmor`.
//!
//! Environment:
//! - `ARMORLET_SHARED`: the shared/ directory (default
//!   `$CARGO_MANIFEST_DIR/../../../shared`);
//! - `ARMORLET_BIN`: the armorlet binary (default: `armorlet` next to the
//!   bench's target profile directory, i.e. `target/release/armorlet`);
//! - `ARMORLET_BENCH_ITERS`: in-process repetitions per file (default 5);
//! - `ARMORLET_BENCH_ONLY`: only files whose path contains this string.
//!
//! Both tools run from a scratch `tst/` directory laid out like
//! `run-oracle` does (`simple_tests`, `features_files`, `parser.conf`), so
//! the relative includes of the corpus resolve the same way for both.
//! Nothing here asserts on time; it only prints.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use armorlet_apparmor::{load_file, ParseOptions, Severity};

const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn collect_sd(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_sd(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "sd") {
            out.push(p);
        }
    }
    Ok(())
}

/// Outcome of one external run.
enum Run {
    Done { accepted: bool, time: Duration },
    TimedOut,
}

fn run_process(cmd: &mut Command) -> std::io::Result<Run> {
    let start = Instant::now();
    // Its own process group: apparmor_parser forks workers, and a timed-out one must not stay
    // behind (one kept a core busy for 13 minutes after a run, skewing what ran next).
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Run::Done {
                accepted: status.success(),
                time: start.elapsed(),
            });
        }
        if start.elapsed() > PROCESS_TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Run::TimedOut);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

struct Stats {
    mean: Duration,
    median: Duration,
    p95: Duration,
    max: Duration,
    total: Duration,
}

fn stats(times: &[Duration]) -> Stats {
    let mut v = times.to_vec();
    v.sort();
    let total: Duration = v.iter().sum();
    let n = v.len().max(1);
    Stats {
        mean: total / n as u32,
        median: v.get(v.len() / 2).copied().unwrap_or_default(),
        p95: v.get(v.len() * 95 / 100).copied().unwrap_or_default(),
        max: v.last().copied().unwrap_or_default(),
        total,
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn print_stats(label: &str, s: &Stats) {
    println!(
        "{label:<40} mean {:>12}  median {:>12}  p95 {:>12}  max {:>12}  total {:>9.3} s",
        us(s.mean),
        us(s.median),
        us(s.p95),
        us(s.max),
        s.total.as_secs_f64()
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

fn find_armorlet() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARMORLET_BIN") {
        return Some(PathBuf::from(p));
    }
    // target/<profile>/deps/corpus-HASH → target/<profile>/armorlet
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("armorlet");
    candidate.is_file().then_some(candidate)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("corpus bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let filter = std::env::var("ARMORLET_BENCH_ONLY").ok();
    let shared = match std::env::var_os("ARMORLET_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let oracle = shared
        .join("oracles/apparmor")
        .canonicalize()
        .map_err(|e| {
            format!(
                "the oracle directory {}/oracles/apparmor is missing ({e}); set ARMORLET_SHARED",
                shared.display()
            )
        })?;
    let testdir = oracle.join("simple_tests");
    let mut files = Vec::new();
    collect_sd(&testdir, &mut files).map_err(|e| format!("{}: {e}", testdir.display()))?;
    let mut rels: Vec<String> = Vec::new();
    let mut disabled = 0;
    for f in &files {
        let text = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        if text
            .split(|&b| b == b'\n')
            .any(|l| l.starts_with(b"#=DISABLED"))
        {
            disabled += 1;
            continue;
        }
        let rel = f
            .strip_prefix(&testdir)
            .expect("collected under testdir")
            .to_string_lossy()
            .into_owned();
        if filter.as_deref().is_some_and(|s| !rel.contains(s)) {
            continue;
        }
        rels.push(format!("simple_tests/{rel}"));
    }
    if rels.is_empty() {
        return Err("no corpus file selected".into());
    }

    // Scratch tst/ directory, as run-oracle lays it out.
    let scratch = std::env::temp_dir().join(format!("armorlet-bench-{}", std::process::id()));
    let tst = scratch.join("tst");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&tst).map_err(|e| format!("{}: {e}", tst.display()))?;
    for (name, target) in [
        ("simple_tests", testdir.clone()),
        ("features_files", oracle.join("features_files")),
        ("parser.conf", oracle.join("parser.conf")),
    ] {
        std::os::unix::fs::symlink(&target, tst.join(name))
            .map_err(|e| format!("linking {}: {e}", target.display()))?;
    }
    std::env::set_current_dir(&tst).map_err(|e| format!("{}: {e}", tst.display()))?;
    let result = measure(&rels, disabled);
    let _ = std::env::set_current_dir(std::env::temp_dir());
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Evaluator cost on moby's docker-default profile: compiling the profile
/// and answering file requests.
fn evaluator_figures() -> Result<(), String> {
    use armorlet_apparmor::eval::{Evaluator, FileAccess, FileRequest, Request};
    let golden = Path::new("simple_tests/../docker-default/default.golden");
    let (policy, _) =
        load_file(golden, &ParseOptions::default()).map_err(|e| format!("docker-default: {e}"))?;
    let profile = armorlet_apparmor::eval::find_profile(&policy, Some("default"))
        .map_err(|e| format!("docker-default: {e}"))?;
    let n = 20;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(Evaluator::new(profile).map_err(|e| e.to_string())?);
    }
    let compile = start.elapsed() / n;
    let ev = Evaluator::new(profile).map_err(|e| e.to_string())?;
    let reqs: Vec<Request> = [
        ("/proc/sys/kernel/shmmax", "w"),
        ("/proc/sys/kernel/core_pattern", "w"),
        ("/sys/fs/cgroup/memory.max", "w"),
        ("/sys/kernel/security/apparmor/profiles", "r"),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "mr"),
        ("/home/user/.config/app/settings.json", "rw"),
    ]
    .iter()
    .map(|(p, a)| {
        Request::File(FileRequest {
            path: (*p).into(),
            access: FileAccess::parse(a).expect("valid access"),
            owner: true,
            link_target: None,
        })
    })
    .collect();
    let rounds = 5000;
    let start = Instant::now();
    for _ in 0..rounds {
        for r in &reqs {
            std::hint::black_box(ev.evaluate(r));
        }
    }
    let per = start.elapsed() / (rounds * reqs.len() as u32);
    println!(
        "evaluator on docker-default ({} rules): compile {}, file request {}",
        profile.rules.len(),
        us(compile),
        us(per)
    );
    Ok(())
}

fn measure(rels: &[String], disabled: usize) -> Result<ExitCode, String> {
    let iters = env_num("ARMORLET_BENCH_ITERS", 5).max(1);
    println!(
        "corpus: {} profiles (simple_tests, {} DISABLED left out); in-process repetitions: {iters}",
        rels.len(),
        disabled
    );

    // 1. Our library, in process (warm-up pass first).
    let mut opts = ParseOptions::default();
    opts.include_dirs.push(PathBuf::from("simple_tests"));
    let mut ours_ok = Vec::with_capacity(rels.len());
    for rel in rels {
        let ok = match load_file(Path::new(rel), &opts) {
            Ok((_, diags)) => !diags.iter().any(|d| d.severity == Severity::Error),
            Err(_) => false,
        };
        ours_ok.push(ok);
    }
    let mut ours = Vec::with_capacity(rels.len());
    for rel in rels {
        let start = Instant::now();
        for _ in 0..iters {
            let r = load_file(Path::new(rel), &opts);
            std::hint::black_box(&r);
        }
        ours.push(start.elapsed() / iters as u32);
    }

    // 2. apparmor_parser -QK, one process per profile.
    let probe = Command::new("apparmor_parser")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return Err(
            "apparmor_parser is not installed (apt-get install apparmor); it is the reference \
             this benchmark compares against"
                .into(),
        );
    }
    let mut theirs: Vec<Option<(bool, Duration)>> = Vec::with_capacity(rels.len());
    for rel in rels {
        let r = run_process(Command::new("apparmor_parser").args([
            "--config-file=./parser.conf",
            "-M",
            "features_files/features.all",
            "-QK",
            "-I",
            "simple_tests",
            rel,
        ]))
        .map_err(|e| format!("running apparmor_parser: {e}"))?;
        theirs.push(match r {
            Run::Done { accepted, time } => Some((accepted, time)),
            Run::TimedOut => None,
        });
    }

    // 3. Our binary, one process per profile.
    let bin = find_armorlet();
    let mut ours_proc: Vec<Option<Duration>> = Vec::new();
    if let Some(bin) = &bin {
        for rel in rels {
            let r = run_process(Command::new(bin).args([
                "apparmor",
                "check",
                "-I",
                "simple_tests",
                rel,
            ]))
            .map_err(|e| format!("running {}: {e}", bin.display()))?;
            ours_proc.push(match r {
                Run::Done { time, .. } => Some(time),
                Run::TimedOut => None,
            });
        }
    }

    // 4. Process start-up baseline: an empty program, as many times.
    let mut baseline = Vec::with_capacity(rels.len().min(300));
    for _ in 0..rels.len().min(300) {
        if let Run::Done { time, .. } =
            run_process(&mut Command::new("true")).map_err(|e| format!("running true: {e}"))?
        {
            baseline.push(time);
        }
    }

    // Statistics over the profiles apparmor_parser finished.
    let common: Vec<usize> = (0..rels.len()).filter(|&i| theirs[i].is_some()).collect();
    let timed_out: Vec<&str> = (0..rels.len())
        .filter(|&i| theirs[i].is_none())
        .map(|i| rels[i].as_str())
        .collect();
    if !timed_out.is_empty() {
        println!(
            "apparmor_parser timed out ({PROCESS_TIMEOUT:?}) on {} profiles, left out of every figure: {}",
            timed_out.len(),
            timed_out.join(", ")
        );
    }
    let ours_t: Vec<Duration> = common.iter().map(|&i| ours[i]).collect();
    let theirs_t: Vec<Duration> = common
        .iter()
        .map(|&i| theirs[i].expect("common").1)
        .collect();
    let so = stats(&ours_t);
    let st = stats(&theirs_t);
    println!();
    println!(
        "per-profile parse+validate time over {} profiles:",
        common.len()
    );
    print_stats("armorlet (library, in process)", &so);
    print_stats("apparmor_parser -QK (process)", &st);
    let proc_stats = if bin.is_some() {
        let t: Vec<Duration> = common.iter().filter_map(|&i| ours_proc[i]).collect();
        let s = stats(&t);
        print_stats("armorlet apparmor check (process)", &s);
        Some(s)
    } else {
        println!(
            "armorlet apparmor check (process): NOT MEASURED, no armorlet binary found; \
             build it first with `cargo build --release -p armorlet` or set ARMORLET_BIN"
        );
        None
    };
    print_stats("process start-up baseline (`true`)", &stats(&baseline));
    println!();
    println!(
        "ratio apparmor_parser / armorlet in process: mean {:.1}x, median {:.1}x (target: >= 10x)",
        ratio(st.mean, so.mean),
        ratio(st.median, so.median)
    );
    if let Some(sp) = &proc_stats {
        println!(
            "ratio apparmor_parser / armorlet as a process: mean {:.1}x, median {:.1}x",
            ratio(st.mean, sp.mean),
            ratio(st.median, sp.median)
        );
    }
    let agree = common
        .iter()
        .filter(|&&i| theirs[i].expect("common").0 == ours_ok[i])
        .count();
    let ours_acc = common.iter().filter(|&&i| ours_ok[i]).count();
    let theirs_acc = common
        .iter()
        .filter(|&&i| theirs[i].expect("common").0)
        .count();
    println!(
        "accepted: armorlet {ours_acc}, apparmor_parser 3.x {theirs_acc}; same verdict on {agree}/{} \
         (apparmor_parser is older than the corpus, see the oracle README)",
        common.len()
    );
    evaluator_figures()?;
    let mut slow: Vec<usize> = common.clone();
    slow.sort_by_key(|&i| std::cmp::Reverse(ours[i]));
    println!("slowest profiles for armorlet (in process):");
    for &i in slow.iter().take(5) {
        println!(
            "  {:>12}  (apparmor_parser {:>12})  {}",
            us(ours[i]),
            us(theirs[i].expect("common").1),
            rels[i]
        );
    }
    Ok(ExitCode::SUCCESS)
}
