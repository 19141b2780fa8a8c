"""Measurements (a), (b), (c): one window, downloaded by aria2c and curl (the raw limit), harvested
by `harvest serve`, and remuxed by `ffmpeg -c copy`; each repeated, the median run reported."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ffmpeg_copy import run_ffmpeg
from bench.harvest_run import BenchError, ServeOptions, harvest_once
from bench.measure import Measured, cpu_seconds
from bench.origin_setup import BenchChannel, OriginProcess, Window
from bench.raw import run_aria2c, run_curl

TARGET_HARVEST_OVER_FASTEST_RAW = 1.1  # at most: time, against the faster of aria2c and curl
TARGET_CPU_OVER_CURL = 2.0  # at most: harvest's CPU seconds against curl's, same bytes
TARGET_FFMPEG_OVER_HARVEST = 10.0  # at least, where the origin has latency (ffmpeg's weak spot)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def settle() -> None:
    """Write back the previous run's dirty pages first, so no run pays for another's disk writes."""
    os.sync()


def _tool_row(
    measured: Measured, files: int, size: int, payload: int, segments: int, origin_cpu: float
) -> dict[str, Any]:
    # MB/s and segments/s are of the window's payload (the same bytes for every tool), so the
    # rates compare like with like even where a tool writes fewer bytes (ffmpeg drops TS padding).
    durable = (
        {"sync_seconds": round(measured.sync_seconds, 3),
         "durable_seconds": round(measured.seconds + measured.sync_seconds, 3)}
        if measured.sync_seconds
        else {}
    )  # fmt: skip
    return {
        "seconds": round(measured.seconds, 3),
        **durable,
        "mb": round(payload / 1e6, 2),
        "mb_per_s": round(payload / 1e6 / measured.seconds, 2),
        "segments": segments,
        "segments_per_s": round(segments / measured.seconds, 1),
        "peak_rss_mb": round(measured.peak_rss / 1e6, 1),
        "cpu_seconds": round(measured.cpu_seconds, 2),
        "origin_cpu_seconds": round(origin_cpu, 2),
        "files_written": files,
        "bytes_written": size,
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs_s"] = [r["seconds"] for r in runs]
    if len(runs) > 1:
        chosen["stdev_s"] = round(statistics.stdev(r["seconds"] for r in runs), 3)
    return chosen


def harvest_dash(
    work: Path,
    channel: BenchChannel,
    window: Window,
    latency_ms: float,
    repeat: int,
    options: ServeOptions,
    hls: dict[str, Any],
) -> dict[str, Any]:
    """(b) again on the same window from a DASH endpoint: the same content as CMAF segments padded
    to the same size, read through a live MPD (SegmentTemplate + SegmentTimeline) and written as a
    static MPD. `hls` is the HLS harvest row it is compared with (segments and bytes must match)."""
    rows = []
    with OriginProcess([channel], work, latency_ms=latency_ms) as origin:
        channels = origin.write_channels(work / "channels-dash.yaml")
        for i in range(repeat):
            log(f"  run {i + 1}/{repeat}: harvest serve, DASH endpoint")
            settle()
            result = harvest_once(
                work,
                channels,
                origin.pid,
                channel.name,
                window,
                options,
                label="harvest-dash",
                endpoint="dash",
            )
            if result.segments != hls["segments"]:
                raise BenchError(f"the DASH harvest stored {result.segments} segments, HLS {hls['segments']}")
            row = result.to_json()
            row["same_bytes_as_hls"] = round(result.bytes / 1e6, 2) == hls["mb"]
            rows.append(row)
    return _median(rows)


def _ratio(value: float, target: str | None = None, ok: bool | None = None) -> dict[str, Any]:
    return {"value": round(value, 2), "target": target, "pass": ok}


def block_ratios(tools: dict[str, dict[str, Any]], latency_ms: float) -> dict[str, dict[str, Any]]:
    """The issue's targets for one latency profile, each with its measured ratio (medians of runs)."""
    raw = tools["aria2c"]["seconds"]
    fastest = min(tools[name]["seconds"] for name in ("aria2c", "curl") if name in tools)
    harvest, ffmpeg = tools["harvest"]["seconds"], tools["ffmpeg"]["seconds"]
    over_fastest = harvest / fastest
    speedup = ffmpeg / harvest
    ratios = {
        "harvest_over_raw": _ratio(harvest / raw),
        "harvest_over_fastest_raw": _ratio(
            over_fastest,
            f"<= {TARGET_HARVEST_OVER_FASTEST_RAW}",
            over_fastest <= TARGET_HARVEST_OVER_FASTEST_RAW,
        ),
        # At 0 ms a request costs only CPU and ffmpeg's C demuxer is not slowed by anything: the
        # target is about origins with latency, which every real one has.
        "ffmpeg_over_harvest": _ratio(speedup)
        if latency_ms <= 0
        else _ratio(speedup, f">= {TARGET_FFMPEG_OVER_HARVEST:g}", speedup >= TARGET_FFMPEG_OVER_HARVEST),
    }
    raw_rows = [tools[name] for name in ("aria2c", "curl") if name in tools]
    durable = [row["durable_seconds"] for row in raw_rows if "durable_seconds" in row]
    if durable:
        # The same guarantee on both sides: harvest's Completed means its segments are on disk (each
        # chunk syncs before it is recorded); a raw tool's exit means they are in the page cache.
        over_durable = harvest / min(durable)
        ratios["harvest_over_fastest_durable_raw"] = _ratio(
            over_durable,
            f"<= {TARGET_HARVEST_OVER_FASTEST_RAW}",
            over_durable <= TARGET_HARVEST_OVER_FASTEST_RAW,
        )
    if "curl" in tools and tools["curl"]["cpu_seconds"] > 0:
        cpu = tools["harvest"]["cpu_seconds"] / tools["curl"]["cpu_seconds"]
        ratios["harvest_cpu_over_curl"] = _ratio(
            cpu, f"<= {TARGET_CPU_OVER_CURL:g}", cpu <= TARGET_CPU_OVER_CURL
        )
    return ratios


def compare_tools(
    work: Path,
    origin: OriginProcess,
    channels: Path,
    window: Window,
    jobs: int,
    repeat: int,
    options: ServeOptions,
    ffmpeg_parallel: bool,
) -> dict[str, Any]:
    channel = next(iter(origin.channels.values()))
    urls = origin.segment_urls(channel.name, window)
    expected = len(channel.renditions) * window.segments_per_rendition
    if len(urls) != expected:
        raise BenchError(f"the origin listed {len(urls)} segments for the window, expected {expected}")
    playlists = [(r, origin.playlist_url(channel.name, r, window)) for r in channel.renditions]
    payload = 0  # bytes of the window's segments, set by the first raw download

    def timed(run: Callable[[], tuple[Measured, int, int]], name: str) -> dict[str, Any]:
        nonlocal payload
        settle()
        before = cpu_seconds([origin.pid])
        measured, files, size = run()
        origin_cpu = cpu_seconds([origin.pid]) - before
        if measured.returncode != 0:
            raise BenchError(f"{name} failed ({measured.returncode}): {measured.stderr}")
        payload = payload or size
        return _tool_row(measured, files, size, payload, len(urls), origin_cpu)

    # curl is only a second opinion on the raw limit: minimal images may lack it.
    with_curl = shutil.which("curl") is not None
    runs: dict[str, list[dict[str, Any]]] = {"aria2c": [], "curl": [], "harvest": [], "ffmpeg": []}
    for i in range(repeat):
        log(f"  run {i + 1}/{repeat}: aria2c -j {jobs}")
        runs["aria2c"].append(timed(lambda: run_aria2c(urls, work, jobs), "aria2c"))
        if with_curl:
            log(f"  run {i + 1}/{repeat}: curl --parallel-max {jobs}")
            runs["curl"].append(timed(lambda: run_curl(urls, work, jobs), "curl"))
        log(f"  run {i + 1}/{repeat}: harvest serve")
        result = harvest_once(work, channels, origin.pid, channel.name, window, options, label="harvest")
        row = result.to_json()
        if result.segments != len(urls) or result.bytes != payload:
            raise BenchError(
                f"harvest stored {result.segments} segments / {result.bytes} bytes;"
                f" the raw download got {len(urls)} / {payload}"
            )
        runs["harvest"].append(row)
        log(f"  run {i + 1}/{repeat}: ffmpeg -c copy ({'parallel' if ffmpeg_parallel else 'sequential'})")
        runs["ffmpeg"].append(timed(lambda: run_ffmpeg(playlists, work, ffmpeg_parallel), "ffmpeg"))
    tools = {name: _median(rows) for name, rows in runs.items() if rows}
    ratios = block_ratios(tools, origin.latency_ms)
    return {
        "latency_ms": origin.latency_ms,
        "window": {"start": window.start, "end": window.end, "seconds": window.seconds},
        "segments": len(urls),
        "mb": round(payload / 1e6, 2),
        "tools": tools,
        "ratios": ratios,
        "ffmpeg_mode": "parallel" if ffmpeg_parallel else "sequential",
        "jobs": jobs,
    }
