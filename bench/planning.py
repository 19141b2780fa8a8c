"""Planning speed: a 24-hour media playlist of 6 s segments (14,400 segments), parsed, the window
selected, and the VOD playlist written, by harvest.engine.plan.build_plan (the code a job runs).

The playlists are fetched once from a LiveOrigin with a 24 h DVR window and then served from memory,
so only planning is timed (no HTTP). Reported: the best and the median of several runs, for the
single media playlist (the target) and for a master with every rendition (information), plus the
time to cut the plan into chunks and serialize it as JSON (what the worker stores next).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.origin_setup import http_get
from harvest.devtools.media import Pool
from harvest.devtools.origin import ChannelSpec, LiveOrigin
from harvest.domain.destination import parse_destination
from harvest.domain.registry import Endpoint
from harvest.engine.plan import Plan, build_plan
from harvest.errors import PlaylistError
from harvest.hls.parse import parse_media
from harvest.ports import FetchedPlaylist, T
from harvest.usecases.harvest import CHUNK_MAX_TASKS

DESTINATION = "https://bench-1250000000.cos.{region}.myqcloud.com/bench/"


class MemoryOrigin:
    """The Origin port over playlists fetched beforehand (looked up by path; the query is ignored)."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self._texts = dict(texts)

    def get_text(self, url: str, headers: Mapping[str, str]) -> str:
        try:
            return self._texts[urlsplit(url).path]
        except KeyError:
            raise PlaylistError(f"{url}: not fetched beforehand") from None

    def get_playlist(self, url: str, headers: Mapping[str, str]) -> FetchedPlaylist:
        return FetchedPlaylist(self.get_text(url, headers), url)

    def get_bytes(
        self, url: str, headers: Mapping[str, str], byte_range: tuple[int, int] | None = None
    ) -> bytes:
        raise PlaylistError("the planning benchmark downloads no segments")

    def stream(
        self,
        url: str,
        headers: Mapping[str, str],
        byte_range: tuple[int, int] | None,
        sink: Callable[[Iterator[bytes]], T],
    ) -> T:
        raise PlaylistError("the planning benchmark downloads no segments")


@dataclass(frozen=True)
class PlanTiming:
    segments: int
    renditions: int
    best: float
    median: float
    parse_best: float  # parse_media alone, largest playlist
    chunk_and_json: float  # Plan.chunks + json.dumps(plan.to_json())
    chunks: int
    runs: int

    def to_json(self) -> dict[str, Any]:
        return {
            "segments": self.segments,
            "renditions": self.renditions,
            "best_s": round(self.best, 4),
            "median_s": round(self.median, 4),
            "parse_only_best_s": round(self.parse_best, 4),
            "chunk_and_json_s": round(self.chunk_and_json, 4),
            "chunks": self.chunks,
            "runs": self.runs,
        }


def _time_plan(
    origin: MemoryOrigin, endpoint: Endpoint, start: float, end: float, now: float, region: str, runs: int
) -> tuple[list[float], Plan]:
    destination = parse_destination(DESTINATION.format(region=region), region, ())
    times: list[float] = []
    plan: Plan | None = None
    for _ in range(runs):
        began = time.perf_counter()
        plan = build_plan(origin, endpoint, start, end, destination, "plan/index.m3u8", now=now)
        times.append(time.perf_counter() - began)
    assert plan is not None
    return times, plan


def measure_planning(
    pool: Pool, hours: float = 24.0, runs: int = 5, region: str = "ap-singapore"
) -> dict[str, Any]:
    """Plan a `hours`-long window of every playlist of `pool`'s channel; timings as JSON."""
    d = pool.segment_seconds
    window = int(hours * 3600) // d * d
    spec = ChannelSpec("ts", pool, d, window)
    now = time.time()
    # A frozen clock: the live edge must not move between reading the window and the playlists.
    with LiveOrigin({"plan": spec}, clock=lambda: now) as live:
        first, last = live.live_window("plan")
        start, end = live.segment_start("plan", first), live.segment_start("plan", last + 1)
        paths = [f"/plan/{r.name}/index.m3u8" for r in pool.renditions]
        texts = {path: http_get(live.url + path).decode() for path in ["/plan/master.m3u8", *paths]}
    origin = MemoryOrigin(texts)
    results: dict[str, Any] = {}
    cases = {
        "media_playlist": (f"http://origin.invalid{paths[0]}", 1),
        "master_all_renditions": ("http://origin.invalid/plan/master.m3u8", len(pool.renditions)),
    }
    for name, (url, renditions) in cases.items():
        endpoint = Endpoint(name="hls", url=url, startover_window=window + 3600)
        times, plan = _time_plan(origin, endpoint, start, end, now, region, runs)
        began = time.perf_counter()
        chunks = plan.chunks(CHUNK_MAX_TASKS, 512 * 1024 * 1024)
        json.dumps(plan.to_json())
        chunk_and_json = time.perf_counter() - began
        parse_times = []
        for _ in range(runs):
            began = time.perf_counter()
            parse_media(texts[paths[0]], f"http://origin.invalid{paths[0]}")
            parse_times.append(time.perf_counter() - began)
        results[name] = PlanTiming(
            segments=plan.segment_count,
            renditions=renditions,
            best=min(times),
            median=statistics.median(times),
            parse_best=min(parse_times),
            chunk_and_json=chunk_and_json,
            chunks=len(chunks),
            runs=runs,
        ).to_json()
    return results
