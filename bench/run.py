"""`make bench` (python -m bench.run): harvest speed and memory against the raw download limit and
against `ffmpeg -c copy`, planning speed, API load, and (with flags) the long runs.

Writes bench/out/results.json (every number) and bench/out/throughput.png, and prints a table.
See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api_load import measure_api
from bench.compare import compare_tools, harvest_dash, log
from bench.harvest_run import ServeOptions
from bench.media import PoolRequest, build_bench_pool
from bench.origin_setup import REPO_ROOT, BenchChannel, OriginProcess, recent_window
from bench.planning import measure_planning
from bench.plot import Reference, Series, line_chart
from bench.report import markdown, render
from bench.scaling import POSTGRES_URL, concurrency_sweep, memory_run, window_scaling, workers_scaling
from bench.scf_cost import cost_table
from harvest.cli.jobs import parse_duration
from harvest.settings import DEFAULT_REGION, Settings

PLANNING_TARGET_S = 0.15
MEMORY_RUN_SEGMENTS_PER_S = 1500.0  # at least, 24 h x 3 renditions
MEMORY_RUN_PEAK_MB = 250.0  # at most
API_TARGETS = {"describe": 500.0, "create": 200.0}  # requests/s, at least
API_P99_TARGET_MS = 50.0
# Extra DVR history beyond the window, so the window is still served when the last tool runs.
DVR_MARGIN_S = 3 * 3600


def _durations(text: str) -> list[int]:
    return [int(parse_duration(part)) for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark harvest against aria2c/curl (the raw limit) and ffmpeg -c copy."
        " See bench/README.md.",
    )
    p.add_argument("--window", type=parse_duration, default=900.0, help="harvested window (default 15m)")
    p.add_argument(
        "--segment-seconds",
        "--segments-seconds",
        dest="segment_seconds",
        type=int,
        default=6,
        help="segment duration in seconds (default 6)",
    )
    p.add_argument("--renditions", type=int, default=3, help="renditions in the channel, 1-6 (default 3)")
    p.add_argument("--segment-kb", type=int, default=1024, help="size of every segment in KB (default 1024)")
    p.add_argument("--pool-segments", type=int, default=10, help="distinct segments the origin loops")
    p.add_argument(
        "--latency-ms",
        type=_floats,
        default=[0.0, 20.0],
        help="origin time to first byte, comma-separated profiles (default 0,20)",
    )
    p.add_argument("--repeat", type=int, default=3, help="runs of (a)(b)(c) per profile; the median is kept")
    p.add_argument("--jobs", type=int, default=16, help="aria2c -j / curl --parallel-max (default 16)")
    p.add_argument("--workers", type=int, default=None, help="harvest serve --workers (default: product's)")
    p.add_argument(
        "--download-concurrency",
        type=int,
        default=None,
        help="HARVEST_DOWNLOAD_CONCURRENCY for (b) (default: the product's)",
    )
    p.add_argument("--ffmpeg-parallel", action="store_true", help="run one ffmpeg per rendition at once")
    p.add_argument(
        "--sweep",
        type=_ints,
        default=[1, 2, 4, 8, 16],
        help="download concurrency levels for the throughput plot (default 1,2,4,8,16)",
    )
    p.add_argument("--no-compare", action="store_true", help="skip (a)(b)(c) and the sweep (long runs only)")
    p.add_argument("--no-sweep", action="store_true", help="skip the throughput sweep and plot")
    p.add_argument("--no-dash", action="store_true", help="skip the DASH row of (b)")
    p.add_argument("--no-api", action="store_true", help="skip the API load")
    p.add_argument("--no-planning", action="store_true", help="skip the planning measurement")
    p.add_argument("--api-seconds", type=float, default=5.0, help="measured seconds per API action")
    p.add_argument("--api-processes", type=int, default=2, help="load generator processes (default 2)")
    p.add_argument("--api-threads", type=int, default=4, help="connections per load process (default 4)")
    p.add_argument("--planning-hours", type=float, default=24.0, help="planned window (default 24 h)")
    p.add_argument("--planning-runs", type=int, default=5)
    p.add_argument(
        "--no-memory-run", action="store_true", help="skip the 24 h x renditions harvest (speed and peak RSS)"
    )
    p.add_argument("--memory-window", type=parse_duration, default=86400.0)
    p.add_argument("--scaling", action="store_true", help="harvest time vs window length (long)")
    p.add_argument(
        "--scaling-windows",
        type=_durations,
        default=[900, 3600, 4 * 3600, 86400],
        help="windows for --scaling (default 15m,1h,4h,24h)",
    )
    p.add_argument(
        "--no-scale-out", action="store_true", help="skip 1, 2, 4 harvest serve processes on one PostgreSQL"
    )
    p.add_argument("--no-scf-cost", action="store_true", help="skip the SCF cost per harvested hour")
    p.add_argument(
        "--scf-window", type=parse_duration, default=3600.0, help="window measured for the SCF cost"
    )
    p.add_argument("--worker-processes", type=_ints, default=[1, 2, 4])
    p.add_argument("--workers-window", type=parse_duration, default=4 * 3600.0)
    p.add_argument(
        "--workers-latency-ms",
        type=float,
        default=20.0,
        help="origin latency of the scale-out run (default 20: latency-bound, not CPU-bound)",
    )
    p.add_argument(
        "--long-segment-kb",
        type=int,
        default=64,
        help="segment size of the memory, scaling and workers runs (default 64)",
    )
    p.add_argument("--long-latency-ms", type=float, default=0.0, help="origin latency of the long runs")
    p.add_argument("--postgres-url", default=POSTGRES_URL, help="for the scale-out run (a schema is added)")
    p.add_argument("--all", action="store_true", help="also --scaling")
    p.add_argument("--quick", action="store_true", help="a tiny run of everything (the smoke test uses it)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out", help="output directory")
    p.add_argument("--media-dir", type=Path, default=None, help="media cache (default OUT/media)")
    return p


def apply_quick(args: argparse.Namespace) -> None:
    """Tiny sizes that still exercise every measurement (not meaningful numbers)."""
    args.window, args.segment_seconds, args.renditions, args.segment_kb = 36.0, 6, 2, 64
    args.pool_segments, args.repeat, args.jobs = 3, 1, 4
    args.sweep = [1, 4]
    args.api_seconds, args.api_processes, args.api_threads = 1.0, 1, 2
    args.planning_hours, args.planning_runs = 1.0, 1
    args.memory_window, args.scaling_windows, args.workers_window = 60.0, [36, 60], 60.0
    args.scf_window = 60.0
    args.long_segment_kb = 16


def python_speed() -> float:
    """Seconds this Python takes for 10 million additions in a loop (best of 3), at the run's start:
    a reading of the CPU the run got then. On the shared virtual machines this runs on, two runs
    minutes apart read 0.665 and 0.373 s, so it shows how the machine moves rather than calibrating
    a whole run; the ratios against curl, measured side by side, move much less."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def machine_info() -> dict[str, Any]:
    def first_line(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
            return out.splitlines()[0] if out else "?"
        except OSError:
            return "missing"

    def proc_field(path: str, name: str) -> str:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return ""
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(name)), "")

    memory_kb = int((proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0])
    return {
        "python_loop_10m_s": python_speed(),
        "cpus": os.cpu_count(),
        "cpu_model": proc_field("/proc/cpuinfo", "model name") or "?",
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tools": "; ".join(
            " ".join(first_line(c).split()[:3])
            for c in (["aria2c", "--version"], ["curl", "--version"], ["ffmpeg", "-version"])
        ),
    }


@dataclass
class Bench:
    args: argparse.Namespace
    out: Path
    work: Path
    media: Path
    results: dict[str, Any]

    def save(self) -> None:
        self.results["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        path = self.out / "results.json"
        path.write_text(json.dumps(self.results, indent=2) + "\n", encoding="utf-8")

    def stage(self, name: str, func: Callable[[], None]) -> None:
        """Run one stage; a failure is recorded and reported, and the other stages still run."""
        log(f"{name} ...")
        began = time.monotonic()
        try:
            func()
        # Any failure: a broken stage must not hide the numbers of the others. Its traceback is
        # printed and the error recorded in the results.
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            error = {"stage": name, "error": f"{type(exc).__name__}: {exc}"}
            self.results.setdefault("errors", []).append(error)
        log(f"{name} done in {time.monotonic() - began:.0f} s")
        self.save()

    def pool(self, segment_kb: int) -> Any:
        a = self.args
        request = PoolRequest(a.renditions, a.segment_seconds, segment_kb, a.pool_segments)
        return build_bench_pool(self.media, request)

    def serve_options(self) -> ServeOptions:
        defaults = Settings()
        return ServeOptions(
            workers=self.args.workers or defaults.workers, download_concurrency=self.args.download_concurrency
        )


def run_comparison(bench: Bench) -> None:
    a = bench.args
    pool = bench.pool(a.segment_kb)
    channel = BenchChannel("bench", pool, int(a.window) + DVR_MARGIN_S)
    blocks, sweeps = [], []
    for latency in a.latency_ms:
        with OriginProcess([channel], bench.work, latency_ms=latency) as origin:
            channels = origin.write_channels(bench.work / "channels.yaml")
            window = recent_window(int(a.window), a.segment_seconds)
            log(f" origin latency {latency:g} ms: {window.seconds} s window, {a.renditions} renditions")
            block = compare_tools(
                bench.work, origin, channels, window, a.jobs, a.repeat, bench.serve_options(),
                a.ffmpeg_parallel,
            )  # fmt: skip
            blocks.append(block)
            bench.results["comparison"] = blocks
            bench.save()
            if not a.no_dash:
                dash_pool = build_bench_pool(
                    bench.media,
                    PoolRequest(
                        a.renditions, a.segment_seconds, a.segment_kb, a.pool_segments, container="fmp4"
                    ),
                )
                dash = BenchChannel("bench-dash", dash_pool, int(a.window) + DVR_MARGIN_S, dash=True)
                block["tools"]["harvest_dash"] = harvest_dash(
                    bench.work,
                    dash,
                    window,
                    latency,
                    a.repeat,
                    bench.serve_options(),
                    block["tools"]["harvest"],
                )
                bench.save()
            if not a.no_sweep:
                log(f" throughput sweep at {latency:g} ms: HARVEST_DOWNLOAD_CONCURRENCY {a.sweep}")
                rows = concurrency_sweep(
                    bench.work, origin, channels, int(a.window), a.sweep, bench.serve_options().workers
                )
                aria2c = block["tools"]["aria2c"]["mb_per_s"]
                sweeps.append({"latency_ms": latency, "aria2c_mb_per_s": aria2c, "rows": rows})
                bench.results["throughput"] = sweeps
    if sweeps:
        plot = line_chart(
            bench.out / "throughput.png",
            f"harvest throughput vs download concurrency ({a.renditions} x {int(a.window)} s,"
            f" {a.segment_kb} KB segments)",
            "HARVEST_DOWNLOAD_CONCURRENCY",
            "MB/s",
            [
                Series(
                    f"harvest serve, origin {s['latency_ms']:g} ms",
                    [(r["download_concurrency"], r["mb_per_s"]) for r in s["rows"]],
                    color=i,
                )
                for i, s in enumerate(sweeps)
            ],
            [
                Reference(f"aria2c -j {a.jobs}, origin {s['latency_ms']:g} ms", s["aria2c_mb_per_s"], color=i)
                for i, s in enumerate(sweeps)
            ],
        )
        bench.results["plot"] = str(plot)


def run_planning(bench: Bench) -> None:
    a = bench.args
    # Always 6 s segments: the target is about a 24 h playlist of 14,400 segments.
    pool = build_bench_pool(bench.media, PoolRequest(a.renditions, 6, 16, a.pool_segments))
    planning = measure_planning(pool, a.planning_hours, a.planning_runs, DEFAULT_REGION)
    row = planning["media_playlist"]
    row["pass"] = row["best_s"] <= PLANNING_TARGET_S
    planning["target_s"] = PLANNING_TARGET_S
    planning["runs"] = a.planning_runs
    bench.results["planning"] = planning


def run_api(bench: Bench) -> None:
    a = bench.args
    api = measure_api(bench.work, a.api_seconds, a.api_processes, a.api_threads)
    for key, floor in API_TARGETS.items():
        row = api[key]
        row["target"] = f">= {floor:g}/s"
        row["pass"] = row["requests_per_s"] >= floor and row["errors"] == 0
        paced = api.get(f"{key}_at_{floor:g}")
        if paced:  # the p99 target applies at the target rate
            paced["target"] = f"p99 <= {API_P99_TARGET_MS:g} ms at {floor:g}/s"
            paced["pass"] = paced["p99_ms"] <= API_P99_TARGET_MS and paced["errors"] == 0
    bench.results["api"] = api


def _long_origin(bench: Bench, seconds: int, latency_ms: float | None = None) -> OriginProcess:
    pool = bench.pool(bench.args.long_segment_kb)
    channel = BenchChannel("bench", pool, seconds + DVR_MARGIN_S)
    latency = bench.args.long_latency_ms if latency_ms is None else latency_ms
    return OriginProcess([channel], bench.work, latency_ms=latency)


def run_memory(bench: Bench) -> None:
    a = bench.args
    with _long_origin(bench, int(a.memory_window)) as origin:
        channels = origin.write_channels(bench.work / "channels-long.yaml")
        row = memory_run(bench.work, origin, channels, int(a.memory_window), bench.serve_options().workers)
    row["targets"] = {"segments_per_s": MEMORY_RUN_SEGMENTS_PER_S, "peak_rss_mb": MEMORY_RUN_PEAK_MB}
    bench.results["memory_run"] = row | {"segment_kb": a.long_segment_kb}


def run_scaling(bench: Bench) -> None:
    a = bench.args
    with _long_origin(bench, max(a.scaling_windows)) as origin:
        channels = origin.write_channels(bench.work / "channels-long.yaml")
        rows = window_scaling(bench.work, origin, channels, a.scaling_windows, bench.serve_options().workers)
    bench.results["scaling"] = {"segment_kb": a.long_segment_kb, "rows": rows}


def run_workers(bench: Bench) -> None:
    a = bench.args
    with _long_origin(bench, int(a.workers_window), a.workers_latency_ms) as origin:
        channels = origin.write_channels(bench.work / "channels-long.yaml")
        rows = workers_scaling(
            bench.work, origin, channels, int(a.workers_window), a.worker_processes,
            bench.serve_options().workers, a.postgres_url,
        )  # fmt: skip
    bench.results["workers_scaling"] = {
        "segment_kb": a.long_segment_kb,
        "window_s": int(a.workers_window),
        "latency_ms": a.workers_latency_ms,
        "rows": rows,
    }


def run_scf_cost(bench: Bench) -> None:
    bench.results["scf_cost"] = cost_table(bench.work, bench.media, int(bench.args.scf_window))


def _row(name: str, measured: str, target: str, ok: bool) -> dict[str, Any]:
    return {"name": name, "measured": measured, "target": target, "pass": ok}


def target_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue that this run measured, each with its ratio or value and verdict."""
    rows = []
    labels = {
        "harvest_over_fastest_raw": "harvest time / faster of aria2c and curl",
        "harvest_over_fastest_durable_raw": "the same, each tool's files then synced",
        "harvest_cpu_over_curl": "harvest CPU seconds / curl's",
        "ffmpeg_over_harvest": "ffmpeg -c copy time / harvest time",
    }
    for block in results.get("comparison", []):
        for key, label in labels.items():
            ratio = block["ratios"].get(key)
            if ratio and ratio["target"]:
                name = f"{label}, {block['latency_ms']:g} ms"
                rows.append(_row(name, f"{ratio['value']:.2f}x", ratio["target"], ratio["pass"]))
    memory = results.get("memory_run")
    if memory:
        span = memory["window_s"]
        length = f"{span // 3600} h" if span % 3600 == 0 else f"{span} s"
        what = f"{memory['renditions']} renditions x {length} ({memory['segments']} segments)"
        rate, peak = memory["segments_per_s"], memory["peak_rss_mb"]
        rows.append(
            _row(f"{what}: seg/s", f"{rate:,.0f}/s", f">= {MEMORY_RUN_SEGMENTS_PER_S:,.0f}/s",
                 rate >= MEMORY_RUN_SEGMENTS_PER_S)
        )  # fmt: skip
        rows.append(
            _row(
                f"{what}: peak RSS",
                f"{peak:,.0f} MB",
                f"<= {MEMORY_RUN_PEAK_MB:g} MB",
                peak <= MEMORY_RUN_PEAK_MB,
            )
        )
    planning = results.get("planning")
    if planning:
        row = planning["media_playlist"]
        name = f"planning a {row['segments']:,}-segment media playlist (best)"
        rows.append(_row(name, f"{row['best_s']:.3f} s", f"<= {PLANNING_TARGET_S} s", row["pass"]))
    return rows


def _stages(args: argparse.Namespace, bench: Bench) -> list[tuple[str, Callable[[], None]]]:
    """The stages the arguments ask for, in the order they run."""

    def scf_cost() -> None:
        bench.results["scf_cost"] = cost_table(bench.work, bench.media)

    stages = [
        (not args.no_compare, "(a)(b)(c) raw vs harvest vs ffmpeg", lambda: run_comparison(bench)),
        (not args.no_planning, "planning", lambda: run_planning(bench)),
        (not args.no_api, "API load", lambda: run_api(bench)),
        (not args.no_memory_run, "memory run", lambda: run_memory(bench)),
        (args.scaling, "window scaling", lambda: run_scaling(bench)),
        (not args.no_scale_out, "workers scaling", lambda: run_workers(bench)),
        (not args.no_scf_cost, "SCF cost", scf_cost),
    ]
    return [(name, run) for wanted, name, run in stages if wanted]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        apply_quick(args)
    if args.all:
        args.scaling = True
    for tool in ("aria2c", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"error: {tool} is not installed (`make system-deps` installs it)", file=sys.stderr)
            return 2
    out = args.out.resolve()
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    settings = Settings()
    config = {
        key: value for key, value in vars(args).items() if isinstance(value, (int, float, str, list, bool))
    }
    config.update(
        window_s=int(args.window),
        harvest_setup=(
            f"embedded default (SQLite + SQL queue + local disk), {args.workers or settings.workers} workers,"
            f" HARVEST_DOWNLOAD_CONCURRENCY {args.download_concurrency or settings.download_concurrency},"
            " rate limit off"
        ),
    )
    bench = Bench(args, out, work, (args.media_dir or out / "media").resolve(), {"config": config})
    bench.results["machine"] = machine_info()
    for name, run in _stages(args, bench):
        bench.stage(name, run)
    shutil.rmtree(work, ignore_errors=True)
    bench.results["targets"] = target_rows(bench.results)
    bench.save()
    print(render(bench.results))
    (out / "README-tables.md").write_text(markdown(bench.results), encoding="utf-8")
    print(f"results: {out / 'results.json'} (README tables: {out / 'README-tables.md'})")
    return 1 if bench.results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
