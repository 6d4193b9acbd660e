"""Run every ddi-lite benchmark and print one Markdown table (and write it with --out).

    .venv/bin/python tests/bench/run.py [--quick] [--out FILE] [--only NAME ...] [--threads N]

Each benchmark measures ddi-lite and its baseline in the same run, back to back, so the ratio
holds on a noisy machine. Everything runs on 127.0.0.1 in a scratch directory under the
system's temporary directory that is removed at the end. Load comes from `wrk`
(`apt-get install wrk`); without it a slower Python client stands in.
"""

import argparse
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

import bench_support
from bench_support import MiB, Plan

import bench_artifacts
import bench_feedback
import bench_gateway
import bench_memory
import bench_poll
import bench_postgres
import bench_scale
import bench_startup
import bench_threads
import bench_workers

BENCHMARKS = (
    ("poll", bench_poll),
    ("feedback", bench_feedback),
    ("artifacts", bench_artifacts),
    ("memory", bench_memory),
    ("startup", bench_startup),
    ("scale", bench_scale),
    ("threads", bench_threads),
    ("workers", bench_workers),
    ("postgres", bench_postgres),
    ("gateway", bench_gateway),
)
ARTIFACT_SIZE = 200 * MiB
# The Waitress thread count of ddi-lite's own default, for ddi-lite and every baseline.
THREADS = bench_support.DEFAULT_THREADS


def machine():
    """One line about the machine the figures come from."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    wrk = "no wrk (Python client)"
    if bench_support.have_wrk():
        completed = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        wrk = (completed.stdout + completed.stderr).split("[")[0].strip() or "wrk"
    return ("%d cores (`nproc`), %s, %.0f GiB RAM, Linux %s, Python %s, SQLite %s, %s"
            % (os.cpu_count(), model, total_kib / 1024 / 1024, platform.release(),
               platform.python_version(), sqlite3.sqlite_version, wrk))


def revision():
    """The commit measured, and whether the server's code differs from it."""
    def git(*words):
        completed = subprocess.run(["git", "-C", bench_support.PROJECT_DIR] + list(words),
                                   capture_output=True, text=True)
        return completed.stdout.strip() if completed.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    if git("status", "--porcelain", "--", "ddi_lite.py", "storage", "artifacts"):
        commit += " with uncommitted changes"
    return commit


def load_average():
    """The 1-minute load average: other work on the machine shows in absolute figures."""
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().split()[0]


def markdown(rows):
    lines = ["| benchmark | ddi-lite | baseline | ratio | target | met? |",
             "|---|---:|---:|---:|---|---|"]
    for row in rows:
        ratio = "%.2fx" % row.ratio if row.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append("| %s | %s | %s | %s | %s | %s |" % (row.benchmark, row.ddi, row.baseline,
                                                          ratio, row.target, met))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="short runs and a single round (about two minutes in all)")
    parser.add_argument("--out", help="also write the report (Markdown) to this file")
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in BENCHMARKS],
                        help="run only these benchmarks")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="Waitress threads of ddi-lite and every baseline (default: %d, "
                             "ddi-lite's own default)" % THREADS)
    args = parser.parse_args(argv)
    # A plain `kill` must still stop the servers and remove the scratch directory.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    selected = [(name, module) for name, module in BENCHMARKS
                if not args.only or name in args.only]
    scratch = tempfile.mkdtemp(prefix="ddi-lite-bench-")
    started = time.monotonic()
    load_before = load_average()
    rows, notes, failures = [], [], []
    try:
        artifact = None
        if any(getattr(module, "NEEDS_ARTIFACT", False) for _, module in selected):
            print("writing a %d MiB artifact ..." % (ARTIFACT_SIZE // MiB), file=sys.stderr)
            artifact = bench_support.ArtifactFile(scratch, ARTIFACT_SIZE)
        plan = Plan(quick=args.quick, seconds=2.0 if args.quick else 5.0,
                    rounds=1 if args.quick else 3, threads=args.threads, scratch=scratch,
                    artifact=artifact)
        for name, module in selected:
            print("running %s ..." % name, file=sys.stderr)
            try:
                more_rows, more_notes = module.run(plan)
            except Exception as error:  # one broken benchmark must not hide the others
                traceback.print_exc()
                failures.append("%s: %s" % (name, str(error).splitlines()[0]))
                continue
            rows += more_rows
            notes += more_notes
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    command = ".venv/bin/python tests/bench/run.py" + (" --quick" if args.quick else "") + (
        " --threads %d" % args.threads if args.threads != THREADS else "")
    report = ["Machine: " + machine(), "", "Measured: ddi-lite %s." % revision(), "",
              "Command: `%s` (%.0f s; load average before %s, after %s)" % (
                  command, time.monotonic() - started, load_before, load_average()),
              "", markdown(rows), ""]
    report += ["- " + note for note in notes]
    report += ["- FAILED %s" % failure for failure in failures]
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
