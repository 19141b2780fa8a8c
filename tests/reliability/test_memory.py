"""Memory against big segments: `harvest serve` streams each segment to the store in small buffers.

A chunk of eight 64 MiB segments, fetched in parallel, must not hold them in memory: the peak
resident set of the `harvest serve` process (VmHWM, read from /proc when the job has ended) stays
under 300 MB, while the stored objects are byte-exact.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.reliability.table import Recorder
from tests.reliability.test_crashes import serve_params
from tests.reliability.test_hostile_origins import media_playlist
from tests.support.engine import BUCKET
from tests.support.recording_server import Server
from tests.support.serve_process import serve_env, start_serve

pytest_plugins = ("tests.support.recording_server",)

MiB = 1024 * 1024
SEGMENT_BYTES = 64 * MiB
SEGMENTS = 8
RSS_LIMIT_MB = 300


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


@pytest.mark.slow
def test_eight_64_mib_segments_pass_through_serve_in_bounded_memory(
    tmp_path: Path, servers: Callable[[str], Server], reliability_record: Recorder
) -> None:
    # GIVEN an origin whose media playlist lists eight 64 MiB segments, and `harvest serve` with the
    # default 16 parallel downloads (so all eight are in flight at once)
    body = hashlib.sha256(b"big").digest() * (SEGMENT_BYTES // 32)
    origin = servers("127.0.0.1")
    end = int(time.time()) - 60
    origin.routes["/big/master.m3u8"] = media_playlist([f"{n}.ts" for n in range(SEGMENTS)], end)
    origin.routes.update({f"/big/{n}.ts": body for n in range(SEGMENTS)})
    registry = tmp_path / "channels.yaml"
    registry.write_text(
        f"channels:\n  - name: big\n    endpoints:\n      - name: hls\n"
        f"        url: {origin.url}/big/master.m3u8\n        startover_window: 86400\n",
        encoding="utf-8",
    )
    data_dir = tmp_path / "data"
    process = start_serve(serve_env(data_dir, registry), data_dir)
    try:
        idle = peak_rss_mb(process.proc.pid)
        # WHEN a job harvests the 512 MiB
        started = time.monotonic()
        process.create({**serve_params("big", end - 2 * SEGMENTS, end, ""), "ChannelName": "big"})
        status = process.wait_until_ended("big", timeout=120)
        took = time.monotonic() - started
        peak = peak_rss_mb(process.proc.pid)
    finally:
        process.stop(10)
    # THEN it completed byte-exact, and the process never held more than 300 MB
    assert status == "Completed", process.log_text()[-3000:]
    stored = sorted((data_dir / "cos" / BUCKET).rglob("*.ts"))
    digest = hashlib.sha256(body).digest()
    assert len(stored) == SEGMENTS
    assert all(hashlib.sha256(path.read_bytes()).digest() == digest for path in stored)
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB"
    reliability_record(
        "Big segments, bounded memory",
        f"{SEGMENTS} x 64 MiB segments in one chunk, all in flight at once (HARVEST_DOWNLOAD_CONCURRENCY 16)",
        f"Completed in {took:.1f} s, {SEGMENTS}/{SEGMENTS} objects byte-exact; peak RSS of `harvest serve`"
        f" {peak:.0f} MB (idle {idle:.0f} MB; limit {RSS_LIMIT_MB} MB)",
    )
