"""Memory against hostile origins: each case keeps the peak RSS of one `harvest serve` under 300 MB.

- Big segments: a chunk of eight 64 MiB segments, fetched in parallel, is streamed to the store in
  small buffers, never held; the stored objects are byte-exact.
- Plans at the task cap: masters whose windows need as many downloads as the HARVEST_MAX_PLAN_TASKS
  default allows, over 10 variants or in one, are planned one rendition at a time, their tasks
  made as their chunks are written. The segments answer 404, so the job ends at its first chunk:
  what is measured is the plan (the downloads themselves are the big-segment case).
- A huge playlist: 63 MiB of short lines is refused at the line limit by the streaming parser.

The peak is the process's VmHWM, read from /proc when the job has ended.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.reliability.table import Recorder
from tests.reliability.test_crashes import serve_params
from tests.reliability.test_hostile_origins import media_playlist
from tests.support.engine import BUCKET
from tests.support.recording_server import Server
from tests.support.serve_process import ServeProcess, serve_env, start_serve

from harvest.devtools.origin import format_pdt
from harvest.engine.context import MAX_PLAN_TASKS

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
        f"{SEGMENTS} x 64 MiB segments in one chunk, all in flight at once"
        " (HARVEST_DOWNLOAD_CONCURRENCY 16, the default)",
        f"Completed in {took:.1f} s, {SEGMENTS}/{SEGMENTS} objects byte-exact; peak RSS of `harvest serve`"
        f" {peak:.0f} MB (idle {idle:.0f} MB; limit {RSS_LIMIT_MB} MB)",
    )


# --- many variants: the plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class LongCase:
    variants: int
    segments: int  # per variant, every URI unique, all inside the window
    seconds: float  # per segment

    @property
    def tasks(self) -> int:
        return self.variants * self.segments

    @property
    def window(self) -> int:
        return round(self.segments * self.seconds)

    def __str__(self) -> str:
        return f"{self.variants} x {self.segments:,} x {self.seconds} s"


# The plans the default caps allow at their biggest: HARVEST_MAX_PLAN_TASKS downloads, spread over
# many renditions, or in one (a 21 h window of 0.5 s segments), where one parsed playlist is biggest.
LONG_CASES = [LongCase(10, 15_000, 2.0), LongCase(1, 150_000, 0.5)]


def long_media_playlist(case: LongCase, variant: int, end: int) -> bytes:
    """The case's segments with PDT, every URI unique, the last ending at `end`."""
    first = end - case.window
    duration = f"{case.seconds:.3f}"
    target = math.ceil(case.seconds)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0"]
    for n in range(case.segments):
        pdt = format_pdt(first + case.seconds * n)
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:{pdt}", f"#EXTINF:{duration},", f"v{variant}/segment-{n:08d}.ts"]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


def channel_registry(tmp_path: Path, name: str, url: str) -> Path:
    registry = tmp_path / "channels.yaml"
    registry.write_text(
        f"channels:\n  - name: {name}\n    endpoints:\n      - name: hls\n"
        f"        url: {url}\n        startover_window: 86400\n",
        encoding="utf-8",
    )
    return registry


def run_job(process: ServeProcess, name: str, start: int, end: int, timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    process.create({**serve_params(name, start, end, ""), "ChannelName": name})
    status = process.wait_until_ended(name, timeout=timeout)
    return status, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("case", LONG_CASES, ids=str)
def test_a_plan_at_the_task_cap_is_made_in_bounded_memory(
    case: LongCase, tmp_path: Path, servers: Callable[[str], Server], reliability_record: Recorder
) -> None:
    # GIVEN an origin whose master lists the case's variants, as many downloads in all as the default
    # HARVEST_MAX_PLAN_TASKS allows, segments answering 404
    assert case.tasks == MAX_PLAN_TASKS
    origin = servers("127.0.0.1")
    end = int(time.time()) - 60
    lines = ["#EXTM3U"]
    for v in range(case.variants):
        lines += [f"#EXT-X-STREAM-INF:BANDWIDTH={1_000_000 + v},RESOLUTION=640x360", f"v{v}.m3u8"]
    origin.routes["/many/master.m3u8"] = ("\n".join(lines) + "\n").encode()
    origin.routes.update(
        {f"/many/v{v}.m3u8": long_media_playlist(case, v, end) for v in range(case.variants)}
    )
    registry = channel_registry(tmp_path, "many", f"{origin.url}/many/master.m3u8")
    data_dir = tmp_path / "data"
    process = start_serve(serve_env(data_dir, registry), data_dir)
    try:
        idle = peak_rss_mb(process.proc.pid)
        # WHEN a job asks for every segment
        status, took = run_job(process, "many", end - case.window, end, timeout=240)
        peak = peak_rss_mb(process.proc.pid)
        error = str(process.describe("many").ErrMessage)
    finally:
        process.stop(10)
    # THEN it was planned whole (every task, in chunks), ended at its first missing segment, and
    # the process never held more than 300 MB
    assert f"planned {case.tasks} tasks" in process.log_text(), process.log_text()[-3000:]
    assert status == "Failed", error
    assert "HTTP 404" in error, error
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB"
    reliability_record(
        "Plans at the task cap, bounded memory",
        f"a master of {case.variants} variant{'s' if case.variants > 1 else ''} x {case.segments:,}"
        f" unique {case.seconds} s segments"
        f" ({case.tasks:,} downloads, the HARVEST_MAX_PLAN_TASKS default), segments 404",
        f"planned {case.tasks:,} tasks, then Failed at the first segment in {took:.0f} s; peak RSS of"
        f" `harvest serve` {peak:.0f} MB (idle {idle:.0f} MB; limit {RSS_LIMIT_MB} MB)",
    )


# --- a huge playlist of short lines -----------------------------------------------------------------

HUGE_PLAYLIST_BYTES = 63 * MiB


@pytest.mark.slow
def test_a_63_mib_playlist_of_short_lines_is_refused_in_bounded_memory(
    tmp_path: Path, servers: Callable[[str], Server], reliability_record: Recorder
) -> None:
    # GIVEN an origin whose media playlist is 63 MiB of short comment lines after a valid header
    origin = servers("127.0.0.1")
    end = int(time.time()) - 60
    header = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
    filler = b"#x\n" * ((HUGE_PLAYLIST_BYTES - len(header)) // 3)
    origin.routes["/huge/master.m3u8"] = header + filler
    registry = channel_registry(tmp_path, "huge", f"{origin.url}/huge/master.m3u8")
    data_dir = tmp_path / "data"
    process = start_serve(serve_env(data_dir, registry), data_dir)
    try:
        idle = peak_rss_mb(process.proc.pid)
        # WHEN a job asks for a minute of it
        status, took = run_job(process, "huge", end - 60, end, timeout=120)
        peak = peak_rss_mb(process.proc.pid)
        error = str(process.describe("huge").ErrMessage)
    finally:
        process.stop(10)
    # THEN it fails at the line limit, naming it, and the process never held more than 300 MB
    assert status == "Failed", error
    assert "lines" in error, error
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB"
    reliability_record(
        "Huge playlist, bounded memory",
        f"a {(len(header) + len(filler)) / MiB:.0f} MiB media playlist of 3-byte lines",
        f"Failed in {took:.1f} s: '{error.replace(origin.url, '<origin>')}';"
        f" peak RSS of `harvest serve` {peak:.0f} MB (idle {idle:.0f} MB; limit {RSS_LIMIT_MB} MB)",
    )
