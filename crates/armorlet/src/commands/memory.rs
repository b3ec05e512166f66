//! Giving freed memory back to the kernel while the process is quiet.
//!
//! glibc's allocator keeps what a burst freed (a `kubectl apply` of 110 pods, a list of 1,000,
//! an OpenAPI document built once) in its per-thread arenas: measured with 110 pods running,
//! `armorlet up` held 43 MiB of anonymous memory, of which `malloc_trim(0)` returned 20 MiB.
//! glibc trims an arena only from its top, and only on `free`, so without this the resident
//! size stays at the high-water mark of the busiest moment. Trimming walks every arena under
//! its lock, so it runs only when the process has been quiet for a whole interval; under load
//! nothing is trimmed (the memory is about to be reused anyway).

use std::time::Duration;

/// Caps glibc's malloc arenas at one per core, at least 2 (as many as the async runtime's
/// workers), unless `MALLOC_ARENA_MAX` is set (the operator's choice wins).
///
/// glibc gives a thread that meets a locked arena a new one, up to 8 per core, and each arena
/// keeps its own high-water mark: with the blocking pool's dozens of threads during a pod
/// churn (60 s, about 100 pods in flight, some 1,000 pods; `tests/load.rs`), `armorlet up` used
/// all 16 arenas of a 2-core machine and its RSS climbed for the whole run, 112 → 130 MiB in
/// the second half alone and 146 MiB in another run. Measured on 2 cores:
/// - 2 arenas: 64–74 MiB from the first quarter on (+1 to +7 MiB over the second half); with
///   110 pods running 43.7 MiB instead of 51.0 (`scripts/bench`). The cost: 4 clients' concurrent gets and patches
///   (`cargo bench --bench node -- --only api`) 1,807–1,932 requests/s against 1,979–2,141
///   with 16 arenas; single-request latencies and the pod rate of the churn unchanged.
/// - 4 arenas: 1,950–2,082 requests/s, but the churn's RSS 80 → 85 MiB, still climbing.
///
/// Memory that stays flat under churn is worth the tenth of peak API throughput; each thread's
/// tcache still serves most small allocations without taking an arena's lock.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets a parameter of the allocator under its own lock; M_ARENA_MAX
    // limits the arenas created from now on (mallopt(3)).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas()) } != 1 {
        tracing::warn!("cannot limit malloc's arenas; continuing with glibc's default");
    }
}

/// How often the thread looks.
const INTERVAL: Duration = Duration::from_secs(5);
/// Quiet: less CPU than this over the last interval (a tenth of one core; with 110 pods
/// running and nothing else to do, the agent's periodic pod syncs take about 8%).
const QUIET: Duration = Duration::from_millis(500);

/// User plus system CPU time of the whole process.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// One arena per core, at least 2.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn arenas() -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    i32::try_from(cores).unwrap_or(i32::MAX).max(2)
}

/// Returns the free pages of every malloc arena to the kernel.
fn trim() {
    // SAFETY: malloc_trim only takes the allocator's own locks; it is safe to call from any
    // thread at any time (glibc's malloc(3)).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Starts the thread that trims while the process is quiet; it lives as long as the process.
pub fn trim_when_quiet() {
    let spawned = std::thread::Builder::new()
        .name("memory-trim".into())
        .spawn(|| {
            let mut last = cpu_time();
            loop {
                std::thread::sleep(INTERVAL);
                let now = cpu_time();
                if now.saturating_sub(last) < QUIET {
                    trim();
                }
                // After the trim: its own CPU time does not count against the next interval.
                last = cpu_time();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the memory trim thread; continuing without");
    }
}
