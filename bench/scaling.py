"""The longer measurements: throughput vs download concurrency, time vs window length, 1 vs 4
`harvest serve` processes on one PostgreSQL, and peak memory of a 24 h x 3-rendition job."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harvest_run import ServeOptions, harvest_once
from bench.origin_setup import OriginProcess, recent_window

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def harvest_latest(
    work: Path, origin: OriginProcess, channels: Path, seconds: int, options: ServeOptions, label: str,
    processes: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """Harvest the latest `seconds` of the origin's (first) channel; the result as JSON."""
    channel = next(iter(origin.channels.values()))
    window = recent_window(seconds, channel.segment_seconds)
    result = harvest_once(work, channels, origin.pid, channel.name, window, options, processes, label)
    return {"window_s": window.seconds, "renditions": len(channel.renditions), **result.to_json()}


def concurrency_sweep(
    work: Path, origin: OriginProcess, channels: Path, seconds: int, levels: Sequence[int], workers: int
) -> list[dict[str, Any]]:
    """One harvest of the same window length per HARVEST_DOWNLOAD_CONCURRENCY level, each held fixed
    (HARVEST_DOWNLOAD_ADAPTIVE off: the sweep measures the levels the adaptive limit chooses among)."""
    fixed = {"HARVEST_DOWNLOAD_ADAPTIVE": "false"}
    return [
        {"download_concurrency": level}
        | harvest_latest(
            work, origin, channels, seconds, ServeOptions(workers, level, extra_env=fixed), f"sweep-c{level}"
        )
        for level in levels
    ]


def window_scaling(
    work: Path, origin: OriginProcess, channels: Path, windows: Sequence[int], workers: int
) -> list[dict[str, Any]]:
    """Harvest time as the window grows (same channel, same settings)."""
    return [
        harvest_latest(work, origin, channels, seconds, ServeOptions(workers), f"window-{seconds}")
        for seconds in windows
    ]


def memory_run(
    work: Path, origin: OriginProcess, channels: Path, seconds: int, workers: int
) -> dict[str, Any]:
    """Peak RSS of `harvest serve` harvesting a long window (24 h x every rendition)."""
    return harvest_latest(work, origin, channels, seconds, ServeOptions(workers), "memory")


def _drop_schema(url: str, schema: str) -> None:
    import psycopg  # only this measurement needs PostgreSQL

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def workers_scaling(
    work: Path,
    origin: OriginProcess,
    channels: Path,
    seconds: int,
    process_counts: Sequence[int],
    workers: int,
    postgres_url: str = POSTGRES_URL,
) -> list[dict[str, Any]]:
    """The same window length harvested by N `harvest serve` processes sharing one PostgreSQL schema."""
    rows = []
    for count in process_counts:
        schema = f"bench_{secrets.token_hex(4)}"
        options = ServeOptions(workers, database_url=f"{postgres_url}?schema={schema}")
        try:
            row = harvest_latest(work, origin, channels, seconds, options, f"pg-x{count}", processes=count)
        finally:
            _drop_schema(postgres_url, schema)
        rows.append({"processes": count, "workers_per_process": workers} | row)
    return rows
