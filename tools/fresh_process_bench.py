#!/usr/bin/env python3
"""Runs a classic GC benchmark the way a user runs a program: once per process.

  tools/fresh_process_bench.py gcbench      [--runs N] [--allocators a,b] [-- extra args]
  tools/fresh_process_bench.py binary_trees [--runs N] [--allocators a,b] [-- --depth 20 --threads 2]

Each sample is one fresh process of build/release/bench/shoal_<program> with
`--runs 1 --allocators <one allocator>`: a cold heap, nothing warmed up by an earlier
run in the same process. The allocators' processes are interleaved (run 1 of every
allocator, then run 2, ...), so drift on a shared machine hits all of them alike. For
each sample it records the time the program reports for its workload, and - from
wait4() on that one process - its wall time, CPU time (user + system, every thread)
and peak RSS. It prints medians and ratios to the first allocator (`--baseline` picks
another), and `--json FILE` writes every sample.

This is the measuring harness of issue 12 ("Collector, round two, measured as a user
runs it"); the programs' own --runs N reports warm in-process repeats, which is what
docs/performance.md showed before.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_one(binary, allocator, extra):
    """One fresh process: (reported workload ms, wall s, cpu s, peak RSS MiB)."""
    cmd = [binary, "--runs", "1", "--allocators", allocator] + extra
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit("%s failed (exit %d):\n%s" % (" ".join(cmd), proc.returncode, out[-2000:]))
    reported = []
    for line in out.splitlines():
        if line.startswith("run "):
            reported += [float(ms) for name, ms in re.findall(r"([\w-]+) (\d+(?:\.\d+)?) ms", line) if name == allocator]
    if not reported:
        sys.exit("no '%s N ms' in the output of %s" % (allocator, " ".join(cmd)))
    return {
        "reported_ms": sum(reported),  # one run; several thread counts add up
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024.0,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", choices=["gcbench", "binary_trees"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--allocators", default="shoal,boehm,jemalloc,mimalloc")
    p.add_argument("--baseline", help="the allocator the ratios are to (default: the first)")
    p.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    p.add_argument("--also-build", action="append", default=[], metavar="LABEL=DIR",
                   help="also run Shoal from another build directory (e.g. the commit before a "
                        "change), interleaved with the rest, as the row 'shoal (LABEL)'")
    p.add_argument("--also-flags", action="append", default=[], metavar="LABEL=FLAGS",
                   help="also run Shoal with these extra program flags (space-separated, e.g. "
                        "'no-assists=--shoal-no-mark-assists'), interleaved, as the row 'shoal (LABEL)'")
    p.add_argument("--json")
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:  # everything after -- goes to the program
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = p.parse_args(argv)
    args.extra = extra
    binary = os.path.join(args.build, "bench", "shoal_" + args.program)
    if not os.access(binary, os.X_OK):
        sys.exit("%s not found: cmake --build %s --target shoal_%s" % (binary, args.build, args.program))
    # (row name, program binary, allocator)
    entries = [(a, binary, a) for a in args.allocators.split(",") if a]
    for spec in args.also_build:
        label, _, build = spec.partition("=")
        other = os.path.join(build, "bench", "shoal_" + args.program)
        if not label or not os.access(other, os.X_OK):
            sys.exit("--also-build %s: want LABEL=DIR with DIR/bench/shoal_%s built" % (spec, args.program))
        entries.append(("shoal (%s)" % label, other, "shoal"))
    flags = {}
    for spec in args.also_flags:
        label, _, more = spec.partition("=")
        if not label or not more:
            sys.exit("--also-flags %s: want LABEL=FLAGS" % spec)
        entries.append(("shoal (%s)" % label, binary, "shoal"))
        flags["shoal (%s)" % label] = more.split()
    allocators = [name for name, _, _ in entries]
    baseline = args.baseline or allocators[0]
    samples = {a: [] for a in allocators}
    for r in range(args.runs):
        for name, program, allocator in entries:
            samples[name].append(run_one(program, allocator, args.extra + flags.get(name, [])))
            if sys.stderr.isatty():
                print("\rrun %d/%d %-10s" % (r + 1, args.runs, name), end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print("\r" + " " * 30 + "\r", end="", file=sys.stderr)

    def med(a, key):
        return statistics.median(s[key] for s in samples[a])

    print("shoal_%s %s: %d fresh processes per allocator, interleaved; medians"
          % (args.program, " ".join(args.extra), args.runs))
    print()
    print("| allocator | workload ms | min..max ms | vs %s | process wall s | CPU s | CPU vs %s | peak RSS MiB |"
          % (baseline, baseline))
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for a in allocators:
        ms = [s["reported_ms"] for s in samples[a]]
        print("| %s | %.0f | %.0f..%.0f | %.2fx | %.3f | %.3f | %.2fx | %.0f |" % (
            a, med(a, "reported_ms"), min(ms), max(ms),
            med(a, "reported_ms") / med(baseline, "reported_ms"), med(a, "wall_s"), med(a, "cpu_s"),
            med(a, "cpu_s") / med(baseline, "cpu_s"), med(a, "rss_mib")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"program": args.program, "extra": args.extra, "samples": samples}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
