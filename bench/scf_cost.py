"""What a harvested hour costs on SCF, from measured worker time and memory.

Measured here: one `harvest serve --workers 1` (so chunks run one after another, as one SCF worker
instance runs them) harvests one hour of one rendition from the benchmark origin with 20 ms
latency, at 6 s segments of 1 MB and at 2 s segments of a third of that (the same bit rate). From
that run: wall seconds per segment inside a chunk, CPU seconds, planning time and peak RSS.

Computed from those, per harvested hour and rendition count: invocations (Create on the api
function, one plan message and one message per chunk on the worker, one finalize, one callback),
GB-seconds (each function's memory x its measured duration) and the price at SCF's published
pay-as-you-go unit prices (PRICES below: source and date there).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.harvest_run import ServeOptions
from bench.media import PoolRequest, build_bench_pool
from bench.origin_setup import BenchChannel, OriginProcess
from bench.scaling import harvest_latest
from harvest.settings import Settings
from harvest.usecases.harvest import chunk_size

# SCF pay-as-you-go unit prices (Tencent Cloud International, USD), from the "Billing Overview"
# page of SCF's documentation (intl.cloud.tencent.com/document/product/583/17299, its Pricing
# section; the copy read was last updated 2023-02-01). Read 2026-11-30 from a stored copy: this
# machine cannot reach the live page, so a change since then would not show here.
PRICES = {
    "usd_per_gb_s": 0.0000167,
    "usd_per_invocation": 0.002 / 10_000,
    "source": "SCF Billing Overview, Pricing (tencentcloud.com/document/product/583/17299), 2023-02-01",
}
# serverless.yml's memory of the functions other than the worker (MB).
API_MB, FINALIZER_MB = 256, 512
# SCF memory sizes: 64 MB, then steps of 128 MB up to 3,072 MB.
SCF_SIZES_MB = [64, *range(128, 3072 + 1, 128)]
HEADROOM = 1.5  # memory over the measured peak RSS: a bigger segment or a slower COS holds more
# The worker also plans: the largest plan the defaults allow (HARVEST_MAX_PLAN_TASKS, 150,000 tasks
# in one rendition) peaked at 260 MB RSS in one `harvest serve` (tests/reliability/test_memory.py).
# A worker sized for harvesting alone (256 MB) would be killed planning it, so this is a floor.
PLAN_AT_CAP_RSS_MB = 260
CALLS_PER_JOB = 4  # Create (api), plan (worker), finalize (finalizer), callback (finalizer)
HOUR = 3600


def measure_worker(
    work: Path, media: Path, segment_seconds: int, segment_kb: int, window_s: int = HOUR
) -> dict[str, Any]:
    """One worker harvesting `window_s` (1 h) x 1 rendition at 20 ms origin latency: per-segment numbers."""
    pool = build_bench_pool(media, PoolRequest(1, segment_seconds, segment_kb, 10))
    with OriginProcess([BenchChannel("bench", pool, window_s + 3 * HOUR)], work, latency_ms=20.0) as origin:
        channels = origin.write_channels(work / f"channels-scf-{segment_seconds}.yaml")
        options = ServeOptions(workers=1)
        row = harvest_latest(work, origin, channels, window_s, options, f"scf-{segment_seconds}s")
    plan = row["plan_seconds"] or 0.0
    return {
        "segment_seconds": segment_seconds,
        "segment_kb": segment_kb,
        "segments": row["segments"],
        "seconds": row["seconds"],
        "plan_seconds": plan,
        "worker_s_per_segment": (row["seconds"] - plan) / row["segments"],
        "cpu_s_per_segment": row["cpu_seconds"] / row["segments"],
        "peak_rss_mb": row["peak_rss_mb"],
    }


def worker_memory_mb(peak_rss_mb: float, segment_kb: int) -> int:
    """The smallest SCF size with HEADROOM over what a worker holds, harvesting a chunk or planning
    the largest job the defaults allow: the cheapest at equal wall time that never runs out.

    The measured peak is on the local disk; COS's put_stream holds a segment below its 16 MiB
    multipart threshold whole, once as a buffer and once as the PUT body, in each download thread,
    so that is added. Bigger segments need more: about HARVEST_DOWNLOAD_CONCURRENCY x 2 x the size.
    """
    cos_buffers_mb = Settings().download_concurrency * 2 * segment_kb / 1024
    need = max(peak_rss_mb + cos_buffers_mb, PLAN_AT_CAP_RSS_MB) * HEADROOM
    return next(size for size in SCF_SIZES_MB if size >= need)


def hour_cost(measured: dict[str, Any], renditions: int, worker_mb: int) -> dict[str, Any]:
    tasks = renditions * HOUR // measured["segment_seconds"]
    chunks = math.ceil(tasks / chunk_size(tasks))
    worker_s = tasks * measured["worker_s_per_segment"] + measured["plan_seconds"]
    # api and finalizer: the measured planning time bounds both (each parses or writes the plan once)
    other_gb_s = (API_MB + FINALIZER_MB) / 1024 * measured["plan_seconds"]
    gb_s = worker_mb / 1024 * worker_s + other_gb_s
    invocations = chunks + CALLS_PER_JOB
    usd = gb_s * PRICES["usd_per_gb_s"] + invocations * PRICES["usd_per_invocation"]
    return {
        "renditions": renditions,
        "segment_seconds": measured["segment_seconds"],
        "segments": tasks,
        "chunks": chunks,
        "invocations": invocations,
        "worker_seconds": round(worker_s, 2),
        "gb_s": round(gb_s, 2),
        "usd": usd,
    }


def cost_table(work: Path, media: Path, window_s: int = HOUR) -> dict[str, Any]:
    runs = [
        measure_worker(work, media, 6, 1024, window_s),
        measure_worker(work, media, 2, 1024 // 3, window_s),
    ]
    worker_mb = max(worker_memory_mb(run["peak_rss_mb"], run["segment_kb"]) for run in runs)
    rows = [hour_cost(run, r, worker_mb) for run in runs for r in (1, 3, 6)]
    # At equal wall time the cost grows with the size: what the choice saves, 3 renditions, 6 s segments.
    by_size = {size: hour_cost(runs[0], 3, size)["usd"] for size in sorted({worker_mb, 512, 1024, 2048})}
    return {
        "measured": runs,
        "worker_memory_mb": worker_mb,
        "headroom": HEADROOM,
        "prices": PRICES,
        "rows": rows,
        "usd_per_hour_3x6s_by_worker_mb": by_size,
    }
