//! Clock jumps (issue 12): the machine's wall clock (CLOCK_REALTIME) jumps an hour forward and
//! back, then an hour back (below the cluster's start) and forward again, while a cluster runs
//! a pod with an exec liveness probe and a crash-looping pod. The node stays Ready (the node
//! lifecycle controller judges heartbeats by monotonic time, as kube-controller-manager does),
//! the running pod is neither probed to death nor restarted, the crash-looping pod keeps being
//! restarted with its back-off (monotonic timers), and kubectl (TLS) and `kubectl logs` keep
//! working.
//!
//! One test only: setting the clock affects every process on the machine, so nothing else of
//! this binary runs meanwhile, each jump is held briefly, and the clock is restored exactly
//! (monotonic time plus the offset measured before the first jump), also from a `Drop` guard so
//! a failing assertion never leaves the machine's clock wrong.

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Jumps CLOCK_REALTIME relative to its state when the guard was made; restores it when
/// dropped.
struct ClockGuard {
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, in nanoseconds, before any jump.
    offset: i128,
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl ClockGuard {
    fn new() -> ClockGuard {
        // The two readings are taken back to back; their gap is the only error of a restore.
        let mono = now_ns(libc::CLOCK_MONOTONIC);
        let real = now_ns(libc::CLOCK_REALTIME);
        ClockGuard {
            offset: real - mono,
        }
    }

    /// Sets the wall clock to where it would be now, plus `by_secs`.
    fn set(&self, by_secs: i64) {
        let target = now_ns(libc::CLOCK_MONOTONIC) + self.offset + by_secs as i128 * 1_000_000_000;
        let ts = libc::timespec {
            tv_sec: (target / 1_000_000_000) as libc::time_t,
            tv_nsec: (target % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: clock_settime reads the timespec we own.
        let rc = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) };
        assert_eq!(rc, 0, "clock_settime: {}", std::io::Error::last_os_error());
    }

    fn jump(&self, by_secs: i64) {
        self.set(by_secs);
        println!("wall clock jumped by {by_secs:+} s");
    }

    fn restore(&self) {
        self.set(0);
        println!("wall clock restored");
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// Problems seen while the clock is off: the node not Ready or tainted unreachable, kubectl
/// failing, the steady pod restarted or its logs unreadable.
#[derive(Default)]
struct Watch {
    problems: Vec<String>,
    checks: usize,
}

impl Watch {
    fn check(&mut self, c: &Cluster, when: &str) {
        self.checks += 1;
        let node = c.kubectl(&["get", "node", &hostname(), "-o", "json"]);
        if !node.status.success() {
            self.problems.push(format!(
                "{when}: kubectl get node: {}",
                String::from_utf8_lossy(&node.stderr)
            ));
            return;
        }
        let node: Value = serde_json::from_slice(&node.stdout).unwrap();
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .cloned()
            .unwrap_or(Value::Null);
        if ready["status"] != "True" {
            self.problems.push(format!("{when}: node Ready is {ready}"));
        }
        if let Some(taints) = node["spec"]["taints"].as_array() {
            if !taints.is_empty() {
                self.problems
                    .push(format!("{when}: node taints {taints:?}"));
            }
        }
        let steady = c.pod("steady")["status"]["containerStatuses"][0].clone();
        if steady["restartCount"] != 0 || !steady["state"]["running"].is_object() {
            self.problems.push(format!("{when}: steady is {steady}"));
        }
        let logs = c.kubectl(&["logs", "steady"]);
        if !logs.status.success() || logs.stdout != b"steady\n" {
            self.problems.push(format!(
                "{when}: kubectl logs steady: {:?} {}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            ));
        }
    }

    /// Checks about every second for `hold`, or (with `until`) until it holds, at most `hold`.
    fn hold(
        &mut self,
        c: &Cluster,
        when: &str,
        hold: Duration,
        mut until: impl FnMut() -> bool,
    ) -> bool {
        let start = Instant::now();
        loop {
            self.check(c, when);
            if until() {
                return true;
            }
            if start.elapsed() >= hold {
                return false;
            }
            std::thread::sleep(Duration::from_millis(700));
        }
    }
}

fn restarts(c: &Cluster, name: &str) -> u64 {
    c.pod(name)["status"]["containerStatuses"][0]["restartCount"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn wall_clock_jumps_change_nothing_the_cluster_does() {
    let c = Cluster::new("crun");
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: steady\nspec:\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sh\", \"-c\", \"echo steady; touch /tmp/healthy; exec sleep 3641\"]\n    livenessProbe:\n      exec:\n        command: [\"cat\", \"/tmp/healthy\"]\n      periodSeconds: 2\n      timeoutSeconds: 10\n      failureThreshold: 1\n",
    );
    let steady = c.wait_running("steady");
    let steady_id = steady["status"]["containerStatuses"][0]["containerID"].clone();
    // Crash-looping from just before the first jump, so back-off restarts fall due while the
    // clock is off.
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: crashy\nspec:\n  containers:\n  - name: c\n    image: busybox:1.28\n    command: [\"sh\", \"-c\", \"echo crashing; exit 1\"]\n",
    );
    c.wait_for("crashy restarted once", || {
        (restarts(&c, "crashy") >= 1).then_some(())
    });

    let clock = ClockGuard::new();
    let mut watch = Watch::default();
    let forward_from = restarts(&c, "crashy");
    clock.jump(3600);
    watch.hold(&c, "+1h", Duration::from_secs(10), || false);
    clock.restore();
    watch.check(&c, "after +1h");

    // Below the cluster's start: every timestamp it wrote so far is in the future now. The
    // next back-off restart still comes when due.
    let backward_from = restarts(&c, "crashy");
    clock.jump(-3600);
    let restarted = watch.hold(&c, "-1h", Duration::from_secs(50), || {
        restarts(&c, "crashy") > backward_from
    });
    let held_back = restarts(&c, "crashy");
    clock.restore();
    drop(clock);
    // Heartbeats written during the backward jump are an hour old now: the node must still
    // count as Ready through its next heartbeats.
    watch.hold(&c, "after -1h", Duration::from_secs(15), || false);

    assert!(
        watch.problems.is_empty(),
        "{} problems in {} checks:\n{}",
        watch.problems.len(),
        watch.checks,
        watch.problems.join("\n")
    );
    assert!(
        restarted,
        "crashy was not restarted while the clock was an hour back (restarts {backward_from} -> {held_back})"
    );
    let reason =
        c.pod("crashy")["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].clone();
    assert!(
        reason == "CrashLoopBackOff" || reason.is_null(),
        "crashy: {reason}"
    );
    // The steady pod: same container, never probed to death.
    let s = c.pod("steady");
    assert_eq!(
        s["status"]["containerStatuses"][0]["containerID"],
        steady_id
    );
    assert_eq!(s["status"]["containerStatuses"][0]["restartCount"], 0);
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=steady",
    ]);
    assert!(
        !events.contains("Unhealthy") && !events.contains("Killing"),
        "{events}"
    );
    println!(
        "{} checks while the clock was off; crashy restarts: {forward_from} before +1h, {backward_from} before -1h, {held_back} at the restore",
        watch.checks
    );
}
