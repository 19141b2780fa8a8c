"""A harvest engine on one machine for tests: real handlers, real pump, SQLite, local disk, HTTP origin.

Jobs are created through the real create use case; the pump runs messages through the real
worker's and finalizer's record loop, exactly as `harvest serve` does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from tests.support.polling import eventually

from harvest.adapters.sql import SqlQueue
from harvest.composition import Backend, build_backend, build_harvest_deps, lease_queue
from harvest.devtools import LiveOrigin, write_channels_yaml
from harvest.domain.job import TOPIC_CALLBACK, TOPIC_FINALIZE, TOPIC_WORK, HarvestJob, JobStatus
from harvest.domain.registry import load_registry
from harvest.domain.validation import CreateParams
from harvest.handlers import finalizer, worker
from harvest.local.pump import PumpConfig, QueuePump
from harvest.local.serve import _dead_letter_handler
from harvest.ports import ObjectStore
from harvest.settings import Settings
from harvest.usecases.api_jobs import create_job
from harvest.usecases.harvest import HarvestDeps

REGION = "ap-singapore"
BUCKET = "vod-1250000000"
DESTINATION = f"https://{BUCKET}.cos.{REGION}.myqcloud.com/out/"


def create(
    deps: HarvestDeps, now: float, job_id: str, channel: str, start: float, end: float, **extra: Any
) -> HarvestJob:
    """A job on the "hls" endpoint of `channel`, through the real create use case."""
    params = CreateParams(
        id=job_id,
        channel_name=channel,
        endpoint_name="hls",
        time_format="Epoch seconds",
        start_time=str(int(start)),
        end_time=str(int(end)),
        destination=extra.get("destination", DESTINATION),
        manifest=extra.get("manifest", f"{job_id}/index.m3u8"),
        callback_url=extra.get("callback_url"),
    )
    return create_job(deps.store, deps.relay, deps.registry, deps.settings, params, now)


@dataclass
class Engine:
    settings: Settings
    deps: HarvestDeps
    pump: QueuePump
    origin: LiveOrigin
    clock: Callable[[], float]
    queue: SqlQueue  # the queue the pump leases from, typed for its counts

    @property
    def bucket_root(self) -> Path:
        return self.settings.data_dir / "cos" / BUCKET

    def create(self, job_id: str, channel: str, start: float, end: float, **extra: Any) -> HarvestJob:
        return create(self.deps, self.clock(), job_id, channel, start, end, **extra)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every message is acked (a job ends before the pump acks its last message)."""
        eventually(lambda: self.queue.pending_count() == 0, timeout, "the queue to drain")

    def wait(self, job_id: str, timeout: float = 60.0) -> HarvestJob:
        """Wait until the job is no longer Running; its record."""

        def ended() -> HarvestJob | None:
            job = self.deps.store.get(job_id)
            return None if job.status is JobStatus.RUNNING else job

        return eventually(ended, timeout, lambda: f"job {job_id} to end: {self.deps.store.get(job_id)}")


def make_deps(
    tmp_path: Path, origin: LiveOrigin, clock: Callable[[], float], **overrides: Any
) -> tuple[Backend, HarvestDeps]:
    """What the functions run on, on `origin`, with no pump: SQLite, local disk; `overrides` Settings."""
    registry_file = tmp_path / "channels.yaml"
    write_channels_yaml(registry_file, origin.url, origin.channels)
    options: dict[str, Any] = {
        "region": REGION,
        "data_dir": tmp_path / "data",
        "channels_file": registry_file,
        "credentials": {"AKIDtest": "secret"},
        "workers": 2,
        "fetch_backoff": 0.01,
    }
    settings = Settings(**{**options, **overrides})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = build_backend(settings)
    return backend, replace(build_harvest_deps(settings, backend, load_registry(registry_file)), clock=clock)


def make_engine(
    tmp_path: Path,
    origin: LiveOrigin,
    clock: Callable[[], float],
    *,
    objects: ObjectStore | None = None,
    lease_seconds: float = 10,
    **overrides: Any,
) -> tuple[Engine, Callable[[], None]]:
    """An engine on `origin`; `objects` replaces the local-disk bucket (COS tests), `overrides` Settings."""
    backend, deps = make_deps(tmp_path, origin, clock, **overrides)
    settings = deps.settings
    if objects is not None:
        deps = replace(deps, objects=objects)
    handlers = {
        TOPIC_WORK: worker.record_handler(deps),
        TOPIC_FINALIZE: finalizer.record_handler(deps),
        TOPIC_CALLBACK: finalizer.record_handler(deps),
    }
    queue = lease_queue(backend)
    assert isinstance(queue, SqlQueue)  # a local engine always leases from its SQL queue
    pump = QueuePump(
        queue,
        backend.relay,
        handlers,
        _dead_letter_handler(deps),
        PumpConfig(
            consumers=settings.workers,
            lease_seconds=lease_seconds,
            retry_base_delay=0.05,
            retry_max_delay=0.2,
        ),
    )
    pump.start()

    def stop() -> None:
        pump.stop(10)
        backend.db.close()

    return Engine(settings, deps, pump, origin, clock, queue), stop


@pytest.fixture
def engine_factory(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    stops: list[Callable[[], None]] = []

    def factory(origin: LiveOrigin, clock: Callable[[], float], **overrides: Any) -> Engine:
        engine, stop = make_engine(tmp_path, origin, clock, **overrides)
        stops.append(stop)
        return engine

    yield factory
    for stop in stops:
        stop()


def ffmpeg_decode_errors(master: Path) -> str:
    """What ffmpeg says (at warning level, stopping at the first error) decoding every rendition."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-xerror",
            "-allowed_extensions",
            "ALL",
            "-protocol_whitelist",
            "file,http,tcp,crypto,data",
            "-i",
            str(master),
            "-map",
            "0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return (result.stderr.strip() + (f"\nexit {result.returncode}" if result.returncode else "")).strip()
