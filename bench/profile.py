"""`python -m bench.profile`: where a harvest spends its CPU, sampled by py-spy.

Starts the benchmark's origin and one `harvest serve`, attaches `py-spy record` (all threads, idle
frames dropped) to the serve process, harvests one window, and prints the top entries by own
samples and by samples including callees, as a Markdown table (what bench/README.md shows).
py-spy is not a project dependency: `pip install py-spy` first (it needs ptrace on the process).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from bench.harvest_run import ServeOptions, ServeProcess, run_job
from bench.media import PoolRequest, build_bench_pool
from bench.origin_setup import REPO_ROOT, BenchChannel, OriginProcess, recent_window
from harvest.cli.jobs import parse_duration


def _frame(frame: str) -> str:
    """'func (path/to/module.py:12)' -> 'func (module.py)': lines differ per call site, modules do not."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    parts = Path(file).parts
    return f"{name} ({'/'.join(parts[-2:])})"


def summarize(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")[1:]]  # the first entry is the thread
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"{total} samples (100 per second, every thread, idle excluded)", ""]
    lines += ["| own % | function |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{name}` |" for name, n in own.most_common(top)]
    lines += ["", "| incl. % | function |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{name}` |" for name, n in inclusive.most_common(2 * top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--window", type=parse_duration, default=900.0)
    p.add_argument("--renditions", type=int, default=3)
    p.add_argument("--segment-kb", type=int, default=1024)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--top", type=int, default=15)
    p.add_argument(
        "--gil", action="store_true", help="only samples holding the GIL (Python CPU, no I/O waits)"
    )
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    args = p.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    work = args.out.resolve() / "profile-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    request = PoolRequest(args.renditions, 6, args.segment_kb, 10)
    pool = build_bench_pool(args.out.resolve() / "media", request)
    raw = args.out.resolve() / "profile.txt"
    channel = BenchChannel("bench", pool, int(args.window) + 3 * 3600)
    with OriginProcess([channel], work, args.latency_ms) as origin:
        channels = origin.write_channels(work / "channels.yaml")
        serve = ServeProcess(work / "serve", channels, ServeOptions(), work / "serve.log").start()
        spy = subprocess.Popen(
            [pyspy, "record", "--pid", str(serve.pid), "--format", "raw", "--output", str(raw),
             "--rate", "100", "--nonblocking", *(["--gil"] if args.gil else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            window = recent_window(int(args.window), 6)
            result = run_job([serve], origin.pid, "bench", window, f"profile-{os.getpid()}", 600)
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            serve.stop()
    shutil.rmtree(work, ignore_errors=True)
    print(f"harvest {result.segments} segments in {result.seconds:.2f} s, {result.cpu_seconds:.2f} CPU s")
    print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
