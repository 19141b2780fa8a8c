"""The benchmark's live origin, in a process of its own: `python -m bench.origin_proc SPEC.json`.

It runs harvest.devtools.origin.LiveOrigin (in-memory, threaded, keep-alive) so that the origin's
Python work never shares a GIL with the process being measured.

`latency_ms` in the spec makes every playlist and segment request wait that long before it is
answered (the origin's STALL fault on every request, never failing), the time to first byte of an
origin across a network or a CDN fetching from its parent. On loopback a request costs nothing but
CPU, which hides what sequential downloaders lose on a real network. Protocol on stdio, one JSON object
per line: it prints {"url": ...} once it listens, then answers "stats" (the origin's counters and
its CPU seconds) and "reset" lines; "quit" or end of input stops it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.media import load_bench_pool
from harvest.devtools.faults import FaultPlan
from harvest.devtools.origin import ChannelSpec, LiveOrigin


def channel_specs(spec: dict[str, Any]) -> dict[str, ChannelSpec]:
    return {
        channel["name"]: ChannelSpec(
            kind="fmp4" if channel.get("dash") else "ts",
            pool=load_bench_pool(Path(channel["pool_dir"])),
            segment_seconds=int(channel["segment_seconds"]),
            dvr_window=int(channel["dvr_window"]),
            dash="number-timeline" if channel.get("dash") else None,
        )
        for channel in spec["channels"]
    }


def latency_plan(spec: dict[str, Any]) -> FaultPlan | None:
    latency = float(spec.get("latency_ms", 0)) / 1000
    if latency <= 0:
        return None
    return FaultPlan(
        stall_rate=1.0,
        stall_seconds=latency,
        max_failures_per_path=2**62,  # a stall is not a failure here: every request waits, each time
        targets=frozenset({"master", "playlist", "segment"}),
    )


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    host, port = spec.get("host", "127.0.0.1"), int(spec.get("port", 0))
    origin = LiveOrigin(channel_specs(spec), host=host, port=port, faults=latency_plan(spec))
    origin.start()
    try:
        print(json.dumps({"url": origin.url, "pid": os.getpid()}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps({**origin.stats.snapshot(), "cpu_seconds": _cpu_seconds()}), flush=True)
            elif command == "reset":
                origin.stats.reset()
                print("{}", flush=True)
            elif command == "quit":
                break
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    finally:
        origin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
