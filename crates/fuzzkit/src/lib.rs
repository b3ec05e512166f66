//! The harness the bounded fuzz tests share (`crates/*/tests/fuzz.rs`, the kind config's
//! `kind_fuzz.rs`): how many cases to run, where the corpora are, one input on a worker that
//! must neither panic nor hang, and a proptest run that reports its shrunk failing input.
//! A dev-dependency only; nothing in the binary uses it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// The case-count multiplier, `ARMORLET_FUZZ_SCALE` (default 1).
pub fn scale() -> u32 {
    std::env::var("ARMORLET_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The repository's corpus `testdata/fuzz/<name>`.
pub fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/fuzz")
        .join(name)
}

/// Runs `f` on a worker thread with a 16 MiB stack; its result, or an error if it panicked
/// (`PANIC: message`) or took longer than `limit` (the worker is then abandoned, and the test
/// fails).
pub fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .map_err(|e| format!("spawning the worker: {e}"))?;
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(panic)) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            Err(format!("PANIC: {msg}"))
        }
        Err(_) => Err(format!("did not finish within {limit:?}")),
    }
}

/// Runs `strategy` for `cases` cases through `test`; `None` when every case passed, else a
/// report naming `name`, the failure and the shrunk input (its first 3,000 characters).
pub fn run<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), String>,
) -> Option<String>
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // Shrinking re-runs the input; a few hundred steps find a small one.
        max_shrink_iters: 512,
        ..Config::default()
    });
    match runner.run(&strategy, |v| test(v).map_err(TestCaseError::fail)) {
        Ok(()) => None,
        Err(TestError::Fail(why, input)) => {
            let shown: String = format!("{input:?}").chars().take(3000).collect();
            Some(format!("{name}: {why}\nminimal input: {shown}"))
        }
        Err(TestError::Abort(why)) => Some(format!("{name}: aborted: {why}")),
    }
}
