#!/usr/bin/python3
"""Oracle for the equivalence tests and the benchmark: builds a filter with
libseccomp (Debian's python3-seccomp) the way crun does and exports its BPF.

  libseccomp_oracle.py bpf PROFILE.json OUT.bpf [foreign-native]
                                                  -> prints {"skipped": [...]} as JSON
  (foreign-native: the node is not x86_64, so this machine's native arch is
  removed from the filter after the profile's architectures are added)
  libseccomp_oracle.py resolve NAMES.txt          -> prints {arch: {name: nr}} as JSON

PROFILE.json is an OCI linux.seccomp object (includes/excludes already
resolved). Mirrors crun's libcrun_generate_seccomp: EPERM when errnoRet is
absent, rules whose action equals the default skipped, unknown names skipped,
several comparisons on one argument split into one rule each.
"""
import json
import os
import time
import sys

import seccomp  # python3-seccomp; an ImportError here must fail the caller

EPERM = 1
ARCHES = {
    "SCMP_ARCH_X86_64": seccomp.Arch.X86_64,
    "SCMP_ARCH_X86": seccomp.Arch.X86,
    "SCMP_ARCH_X32": seccomp.Arch.X32,
    "SCMP_ARCH_AARCH64": seccomp.Arch.AARCH64,
    "SCMP_ARCH_ARM": seccomp.Arch.ARM,
}
OPS = {
    "SCMP_CMP_NE": seccomp.NE,
    "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ,
    "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}


def action(name, errno_ret):
    return {
        "SCMP_ACT_ALLOW": lambda: seccomp.ALLOW,
        "SCMP_ACT_ERRNO": lambda: seccomp.ERRNO(errno_ret),
        "SCMP_ACT_KILL": lambda: seccomp.KILL,
        "SCMP_ACT_KILL_THREAD": lambda: seccomp.KILL,
        "SCMP_ACT_KILL_PROCESS": lambda: seccomp.KILL_PROCESS,
        "SCMP_ACT_LOG": lambda: seccomp.LOG,
        "SCMP_ACT_TRAP": lambda: seccomp.TRAP,
        "SCMP_ACT_TRACE": lambda: seccomp.TRACE(errno_ret),
        "SCMP_ACT_NOTIFY": lambda: seccomp.NOTIFY,
    }[name]()


def bpf(profile_path, out_path, foreign_native=False):
    with open(profile_path) as f:
        p = json.load(f)
    skipped = build_and_export(p, out_path, foreign_native)
    json.dump({"skipped": sorted(set(skipped))}, sys.stdout)


def timed(profile_path, reps):
    """Median seconds of building the filter and exporting its BPF (what crun does per
    container), JSON parsing and interpreter start-up excluded."""
    with open(profile_path) as f:
        p = json.load(f)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        build_and_export(p, os.devnull)
        times.append(time.perf_counter() - start)
    times.sort()
    json.dump({"median_s": times[len(times) // 2], "min_s": times[0]}, sys.stdout)


def build_and_export(p, out_path, foreign_native=False):
    default = action(p["defaultAction"], p.get("defaultErrnoRet", EPERM))
    filt = seccomp.SyscallFilter(default)
    for arch in p.get("architectures") or []:
        try:
            filt.add_arch(ARCHES[arch])
        except RuntimeError:
            pass  # already present (the native one): crun ignores EEXIST
    if foreign_native:
        filt.remove_arch(seccomp.Arch.NATIVE)
    skipped = []
    for rule in p.get("syscalls") or []:
        act = action(rule["action"], rule.get("errnoRet", EPERM))
        if act == default:
            continue
        args = rule.get("args") or []
        cmps = [
            seccomp.Arg(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0))
            for a in args
        ]
        indexes = [a["index"] for a in args]
        groups = [[c] for c in cmps] if len(set(indexes)) != len(indexes) else [cmps]
        names = list(rule.get("names") or []) + ([rule["name"]] if rule.get("name") else [])
        for name in names:
            try:
                nr = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
            except Exception:
                nr = None
            if nr is None or nr == -1:
                skipped.append(name)
                continue
            for g in groups:
                try:
                    filt.add_rule(act, nr, *g)
                except Exception as e:
                    # crun fails the container here too; the caller counts these.
                    print(f"libseccomp rejected rule for {name}: {e}", file=sys.stderr)
                    sys.exit(3)
    with open(out_path, "wb") as f:
        filt.export_bpf(f)
    return skipped


def resolve(names_path):
    with open(names_path) as f:
        names = [l.strip() for l in f if l.strip()]
    out = {}
    for label in ARCHES:
        table = {}
        for n in names:
            try:
                nr = seccomp.resolve_syscall(ARCHES[label], n)
            except Exception:
                continue
            if nr >= 0:
                table[n] = nr
        out[label] = table
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "bpf":
        bpf(sys.argv[2], sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "foreign-native")
    elif sys.argv[1] == "resolve":
        resolve(sys.argv[2])
    elif sys.argv[1] == "time":
        timed(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: libseccomp_oracle.py bpf PROFILE OUT | resolve NAMES | time PROFILE REPS")
