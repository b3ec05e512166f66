//! Cost of our BPF program vs libseccomp's for the moby default profile.
//!
//! Prints, never asserts: program size, instructions executed on the hot path
//! (getppid and the average over every allowed x86_64 syscall), and the
//! per-syscall cost of a tight getppid loop in a forked child under each
//! filter, with the unfiltered loop as the floor.
//!
//! `cargo bench -p armorlet-seccomp` (needs python3-seccomp, root not required
//! thanks to no_new_privs).

#[path = "../tests/common/mod.rs"]
mod common;

use armorlet_seccomp::bpf::{self, SockFilter};
use armorlet_seccomp::policy::ret;
use armorlet_seccomp::resolve::{ResolveContext, DEFAULT_CAPS};
use armorlet_seccomp::{arch::AUDIT_ARCH_X86_64, runtime_default, syscalls, Arch, SeccompData};
use common::child::{run_filtered, Shared, LOADED};

const ITERS: i64 = 200_000;
const ROUNDS: usize = 21;

/// The loops measured: (label, syscall, first argument).
const CASES: &[(&str, i64, i64)] = &[
    (
        "getppid (allowed; kernel action cache may skip the filter)",
        libc::SYS_getppid,
        0,
    ),
    (
        "personality(0xffffffff) (allowed by an argument rule: filter runs)",
        libc::SYS_personality,
        0xffff_ffff,
    ),
    (
        "keyctl(invalid op) (denied with EPERM: filter runs)",
        libc::SYS_keyctl,
        0x7fff_ffff,
    ),
];

fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer; vDSO call, not filtered by seccomp.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn spin(s: &Shared) {
    let n = s.get(63);
    let (nr, a0) = (s.get(61) as libc::c_long, s.get(62) as libc::c_long);
    let t0 = now_ns();
    for _ in 0..n {
        // SAFETY: the syscalls measured take integer arguments or NULL pointers.
        unsafe { libc::syscall(nr, a0, 0, 0, 0, 0) };
    }
    s.set(1, now_ns() - t0);
}

/// Nanoseconds per getppid under `prog` (None: no filter).
fn cost(prog: Option<&[SockFilter]>, case: usize) -> f64 {
    let shared = Shared::new();
    shared.set(63, ITERS);
    shared.set(61, CASES[case].1);
    shared.set(62, CASES[case].2);
    run_filtered(prog, 0, &shared, spin);
    assert_eq!(shared.get(LOADED), 0, "filter failed to load");
    shared.get(1) as f64 / ITERS as f64
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn steps(prog: &[SockFilter], nr: u32) -> usize {
    let d = SeccompData {
        nr,
        arch: AUDIT_ARCH_X86_64,
        ..Default::default()
    };
    bpf::interpret(prog, &d).expect("runs").steps
}

/// Compile time of the moby profile: ours (the resolved profile's decisions, then BPF), against
/// libseccomp building the same filter and exporting its BPF (through python3-seccomp, timed
/// inside the interpreter: start-up and JSON parsing excluded), each the median of 51 runs.
fn compile_time(resolved: &armorlet_seccomp::ResolvedProfile) {
    const REPS: usize = 51;
    let ours: Vec<f64> = (0..REPS)
        .map(|_| {
            let t = std::time::Instant::now();
            let prog = resolved
                .policy()
                .expect("policy")
                .compile()
                .expect("compile");
            std::hint::black_box(prog);
            t.elapsed().as_secs_f64()
        })
        .collect();
    let ours = median(&ours);
    let json = common::scratch("bench-compile.json");
    std::fs::write(&json, serde_json::to_vec(&resolved.to_profile()).unwrap()).unwrap();
    let out = std::process::Command::new(common::PYTHON)
        .arg(common::oracle_script())
        .arg("time")
        .arg(&json)
        .arg(REPS.to_string())
        .output()
        .expect("python3");
    assert!(out.status.success(), "libseccomp timing: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs = v["median_s"].as_f64().unwrap();
    println!(
        "compile time, moby default profile: ours {:.1} µs, libseccomp {:.1} µs (median of {REPS}); ratio ours/libseccomp {:.2}",
        ours * 1e6,
        theirs * 1e6,
        ours / theirs
    );
}

fn main() {
    let ctx = ResolveContext::new(
        Arch::X86_64,
        DEFAULT_CAPS.iter().copied(),
        ResolveContext::host_default().kernel_version,
    );
    let full = runtime_default().resolve(&ctx);
    let unknown: Vec<String> = full
        .rules
        .iter()
        .flat_map(|r| r.rule.all_names())
        .filter(|n| !syscalls::known_anywhere(n))
        .map(str::to_string)
        .collect();
    let resolved = common::without_names(&full, &unknown);
    let policy = resolved.policy().expect("policy");
    let ours = policy.compile().expect("compile");
    let (theirs, _) = common::libseccomp_bpf(&resolved, "bench-moby");
    compile_time(&resolved);

    let getppid = syscalls::resolve(Arch::X86_64, "getppid").unwrap();
    let allowed: Vec<u32> = syscalls::all(Arch::X86_64)
        .iter()
        .map(|(_, nr)| *nr)
        .filter(|nr| {
            policy
                .decide(&SeccompData {
                    nr: *nr,
                    arch: AUDIT_ARCH_X86_64,
                    ..Default::default()
                })
                .ret
                == ret::ALLOW
        })
        .collect();
    let avg = |p: &[SockFilter]| {
        allowed.iter().map(|nr| steps(p, *nr)).sum::<usize>() as f64 / allowed.len() as f64
    };
    let max = |p: &[SockFilter]| allowed.iter().map(|nr| steps(p, *nr)).max().unwrap_or(0);

    println!("moby default profile, x86_64 (+x86, x32), default capabilities");
    println!(
        "program length:            ours {:5}   libseccomp {:5}   ratio {:.2}",
        ours.len(),
        theirs.len(),
        ours.len() as f64 / theirs.len() as f64
    );
    println!(
        "executed for getppid:      ours {:5}   libseccomp {:5}   ratio {:.2}",
        steps(&ours, getppid),
        steps(&theirs, getppid),
        steps(&ours, getppid) as f64 / steps(&theirs, getppid) as f64
    );
    println!("executed, allowed avg:     ours {:5.1}   libseccomp {:5.1}   ratio {:.2}  ({} allowed syscalls)", avg(&ours), avg(&theirs), avg(&ours) / avg(&theirs), allowed.len());
    println!(
        "executed, allowed max:     ours {:5}   libseccomp {:5}",
        max(&ours),
        max(&theirs)
    );

    let allow_all = [SockFilter::ret(ret::ALLOW)];
    for (case, (label, _, _)) in CASES.iter().enumerate() {
        let (mut none, mut a, mut o, mut t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        cost(None, case); // warm up
        for _ in 0..ROUNDS {
            none.push(cost(None, case));
            a.push(cost(Some(&allow_all), case));
            o.push(cost(Some(&ours), case));
            t.push(cost(Some(&theirs), case));
        }
        println!("{label}: ns per call, min (median) of {ROUNDS} runs x {ITERS} calls");
        let floor = min(&none);
        for (name, v) in [
            ("unfiltered floor", &none),
            ("1-insn allow-all", &a),
            ("ours", &o),
            ("libseccomp", &t),
        ] {
            println!(
                "  {name:17} {:7.1} ({:7.1})   overhead over floor {:6.1}",
                min(v),
                median(v),
                min(v) - floor
            );
        }
        let (ov_o, ov_t) = (min(&o) - floor, min(&t) - floor);
        let (md_o, md_t) = (median(&o) - median(&none), median(&t) - median(&none));
        if ov_t > 10.0 {
            println!(
                "  overhead ratio ours/libseccomp {:.2} (medians: {:.2}); target <= 1.10",
                ov_o / ov_t,
                md_o / md_t
            );
        } else {
            println!(
                "  libseccomp's overhead is within noise of the floor (the kernel's action cache \
                 answers allowed syscalls without running either filter); total ratio \
                 ours/libseccomp {:.2} (medians: {:.2})",
                min(&o) / min(&t),
                median(&o) / median(&t)
            );
        }
    }
    common::remove_scratch();
}
